import Foundation
import XCTest
@testable import IRMKit

/// The bundled RLHF demo (checkpoints/demo, made by make_demo.py): irm must recover what was planted.
///
/// Planted: the reward model was trained on utility(response) + 0.5 × (number of "!"), utility being
/// Marks et al.'s VADER utility; gold is the utility alone. The policy was tuned against that RM with
/// REINFORCE and a KL penalty (β = 0.1). So fine-tuning should reward positive sentiment (what gold
/// wants) and exclamation marks (the RM's stated quirk, which gold does not share).
///
/// Thresholds sit well inside the values measured on the committed checkpoints (irm 0.1.0, 596
/// samples, 1000 bootstrap resamples; with the 200 used here the intervals move by a few thousandths):
/// vader_sum std β +0.237 [CI of the raw coefficient 0.0167, 0.0679], third by |std β|; sentiment
/// group LMG 0.368 of R² 0.896, the largest; exclamations std β +0.544 (implicit), +0.493 (RM);
/// Pearson implicit~RM 0.906 [0.894, 0.918], implicit~gold 0.848 [0.826, 0.867]; lexicon Kendall τ-b
/// 0.644 [0.562, 0.721] over 64 words; coefficient gap of exclamations +0.119 (p 0.028 HC3).
final class DemoAnalysisTests: XCTestCase {
    static func options() -> AnalysisOptions {
        var options = AnalysisOptions(beforePath: Fixtures.repositoryPath("checkpoints/demo/base.h5"),
                                      afterPath: Fixtures.repositoryPath("checkpoints/demo/rlhf.h5"),
                                      dataPath: Fixtures.repositoryPath("checkpoints/demo/prompts.jsonl"))
        options.reward = .rewardModel(path: Fixtures.repositoryPath("checkpoints/demo/rm.h5"))
        options.compareWithLexicon = true
        options.bootstrapReplicates = 200
        options.sequences.convention = .separate  // as scripts/demo: the demo's RL scored responses apart
        return options
    }

    func testThePlantedRuleIsRecovered() throws {
        let result = try AnalysisPipeline.run(Self.options())
        XCTAssertEqual(result.beta, 0.1, "β comes from rlhf.h5's provenance")
        XCTAssertGreaterThan(result.samples.count, 500)

        // 1. Sentiment is among the top attributed features of the implicit reward, positive, with a
        //    CI that excludes 0; its group holds the largest LMG share.
        let implicitFit = try XCTUnwrap(result.target("implicit_reward")?.ols.value)
        let ranked = implicitFit.coefficients.sorted { abs($0.standardizedEstimate ?? 0) > abs($1.standardizedEstimate ?? 0) }
        let vader = try XCTUnwrap(implicitFit.coefficients.first { $0.name == "vader_sum" })
        XCTAssertTrue(ranked.prefix(3).contains { $0.name == "vader_sum" }, "\(ranked.prefix(5).map(\.name))")
        XCTAssertGreaterThan(vader.standardizedEstimate ?? 0, 0.1)
        XCTAssertGreaterThan(vader.confidenceLower, 0)
        let lmg = try XCTUnwrap(result.target("implicit_reward")?.lmg?.value)
        XCTAssertEqual(lmg.shares.max { $0.share < $1.share }?.name, "sentiment")

        // 2. The implicit reward correlates positively with the RM and with gold.
        let divergence = try XCTUnwrap(result.divergence)
        let withRM = try XCTUnwrap(divergence.implicitVersusRewardModel.pearson.value)
        let withGold = try XCTUnwrap(divergence.implicitVersusGold?.pearson.value)
        XCTAssertGreaterThan(withRM.value, 0.6)
        XCTAssertGreaterThan(withGold.value, 0.5)
        XCTAssertGreaterThan(try XCTUnwrap(withRM.interval).lower, 0.5)
        XCTAssertGreaterThan(try XCTUnwrap(withGold.interval).lower, 0.4)

        // 3. The token-level reconstruction ranks the lexicon words like VADER does.
        let recovery = try XCTUnwrap(result.lexiconRecovery)
        let tau = try XCTUnwrap(recovery.kendall.value)
        XCTAssertGreaterThan(recovery.matches.count, 30)
        XCTAssertGreaterThan(tau.value, 0.4)
        XCTAssertGreaterThan(try XCTUnwrap(tau.interval).lower, 0.3)
        XCTAssertGreaterThan(recovery.signAgreement ?? 0, 0.8)

        // 4. The planted divergence. The RM rewards "!" and so does the tuned policy, while gold has no
        //    "!" channel at all: gold is exactly the VADER utility, vader_sum / 5 here (no text reaches
        //    the clip). irm flags the quirk: exclamations is the implicit reward's top feature, the RM's
        //    fit weighs it too, and the policy weighs it even more than the RM (a positive gap).
        let vaderColumn = try XCTUnwrap(result.features.column(named: "vader_sum"))
        for (row, v) in zip(result.samples, vaderColumn) {
            assertClose(try XCTUnwrap(row.gold), min(max(v / 5, -10), 10), absolute: 1e-9)
        }
        let goldReason = try XCTUnwrap(result.target("gold")?.ols.undefinedReason, "gold is reproduced exactly by vader_sum")
        XCTAssertTrue(goldReason.contains("target = 0 + 0.2·vader_sum;"), goldReason)
        XCTAssertEqual(ranked.first?.name, "exclamations")
        let rmFit = try XCTUnwrap(result.target("reward_model")?.ols.value)
        let rmExclamations = try XCTUnwrap(rmFit.coefficients.first { $0.name == "exclamations" })
        XCTAssertGreaterThan(rmExclamations.standardizedEstimate ?? 0, 0.3)
        XCTAssertGreaterThan(rmExclamations.confidenceLower, 0)
        let gap = try XCTUnwrap(divergence.coefficientGaps.first { $0.feature == "exclamations" })
        XCTAssertGreaterThan(gap.gap, 0)

        // The policy's responses gained under every score, and not through length.
        let gains = Dictionary(uniqueKeysWithValues: result.lengthNormalizedGain.map { ($0.score, $0) })
        for score in ["implicit_reward", "reward_model", "gold"] {
            let gain = try XCTUnwrap(gains[score], score)
            XCTAssertGreaterThan(gain.rawGain, 0, score)
            XCTAssertGreaterThan(gain.ratio ?? 0, 0.5, score)
        }
    }

    /// The committed report is the one the README's command produces (regenerate with scripts/demo
    /// after changing any output). Compared on the manifest, whose options and input digests pin the run.
    func testCommittedReportMatchesTheDemoInputs() throws {
        let manifest = try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: Fixtures.repositoryPath("analyses/demo/manifest.json"))),
                                           source: "analyses/demo/manifest.json")
        XCTAssertEqual(manifest["version"]?.stringValue, IRMVersion.string)
        for input in try XCTUnwrap(manifest["inputs"]?.arrayValue) {
            let path = try XCTUnwrap(input["path"]?.stringValue)
            XCTAssertEqual(input["sha256"]?.stringValue, try SHA256.hex(ofFile: Fixtures.repositoryPath(path)), path)
        }
    }
}
