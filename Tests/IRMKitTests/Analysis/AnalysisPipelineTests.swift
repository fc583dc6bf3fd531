import Foundation
import XCTest
@testable import IRMKit

/// The analysis pipeline on the fixture checkpoints (sharp-neox before, sharp-neox-sequential
/// after, neox-rm as the reward model) and Tests/Fixtures/analysis/pairs.jsonl, against values
/// transformers computed in float64 (scripts/fixtures/make_analysis_fixtures.py).
final class AnalysisPipelineTests: XCTestCase {
    struct Expected: Decodable {
        struct Sample: Decodable {
            let id: String
            let role: String
            let promptIds: [Int32]
            let responseIds: [Int32]
            let logprobAfter: Double
            let logprobBefore: Double
            let klSum: Double
            let rewardModel: Double
            let hiddenStateCosine: Double
        }
        let samples: [Sample]

        static func load() throws -> Expected {
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            return try decoder.decode(Expected.self, from: Data(contentsOf: Fixtures.url("analysis/expected.json")))
        }
    }

    /// Checkpoints converted once per test case class run.
    struct Checkpoints {
        let before: String
        let after: String
        let rewardModel: String
    }

    func makeCheckpoints() throws -> Checkpoints {
        Checkpoints(before: try ModelFixtures.checkpointPath("logprobs/models/sharp-neox", for: self),
                    after: try ModelFixtures.checkpointPath("logprobs/models/sharp-neox-sequential", for: self),
                    rewardModel: try ModelFixtures.checkpointPath("hf/neox-rm", for: self))
    }

    func options(_ c: Checkpoints, beta: Double = 0.5) -> AnalysisOptions {
        var options = AnalysisOptions(beforePath: c.before, afterPath: c.after, dataPath: Fixtures.path("analysis/pairs.jsonl"))
        options.reward = .rewardModel(path: c.rewardModel)
        options.beta = beta
        options.bootstrapReplicates = 50
        options.beforeLabel = "sharp-neox"
        options.afterLabel = "sharp-neox-sequential"
        // The fixture's log-probs are of the prompt and response tokenised apart (make_analysis_fixtures.py).
        options.sequences.convention = .separate
        return options
    }

    func testImplicitRewardKLRewardModelAndHiddenStatesMatchTransformers() throws {
        let expected = try Expected.load()
        let checkpoints = try makeCheckpoints()
        let result = try AnalysisPipeline.run(options(checkpoints, beta: 0.5))
        XCTAssertEqual(result.samples.count, expected.samples.count)
        XCTAssertEqual(result.pairs.count, 60)
        let cosines = try XCTUnwrap(result.features.column(named: "hidden_state_cosine"))
        for (i, (row, want)) in zip(result.samples, expected.samples).enumerated() {
            XCTAssertEqual(row.id, want.id)
            XCTAssertEqual(row.role?.rawValue, want.role)
            XCTAssertEqual(row.promptTokens, want.promptIds.count)
            XCTAssertEqual(row.responseTokens, want.responseIds.count)
            // fp32 engine against float64 transformers: 1e-3 per sum, as the engine's parity tests.
            assertClose(row.logProbAfter, want.logprobAfter, absolute: 1e-3)
            assertClose(row.logProbBefore, want.logprobBefore, absolute: 1e-3)
            assertClose(row.implicitReward.sum, 0.5 * (want.logprobAfter - want.logprobBefore), absolute: 1e-3)
            assertClose(row.implicitReward.mean ?? .nan, 0.5 * (want.logprobAfter - want.logprobBefore) / Double(want.responseIds.count), absolute: 1e-4)
            assertClose(row.kl, want.klSum, absolute: 1e-3)
            assertClose(try XCTUnwrap(row.rewardModel), want.rewardModel, absolute: 1e-4)
            assertClose(cosines[i], want.hiddenStateCosine, absolute: 1e-5)
        }
        // The sharp models differ, so the rewards spread: the test is not comparing zeros.
        let sums = result.samples.map(\.implicitReward.sum)
        XCTAssertGreaterThan((sums.max() ?? 0) - (sums.min() ?? 0), 5)
    }

    func testTargetsFitsAndDivergenceAreAllPresent() throws {
        let checkpoints = try makeCheckpoints()
        var o = options(checkpoints)
        o.groupBy = "qtype"
        o.method = .vb
        let result = try AnalysisPipeline.run(o)
        XCTAssertEqual(result.targets.map(\.name), ["implicit_reward", "reward_model", "difference", "gold"])
        for target in result.targets {
            let fit = try XCTUnwrap(target.ols.value, target.name)
            XCTAssertEqual(fit.observationCount, 120)
            XCTAssertNotNil(target.lmg?.value, target.name)
            XCTAssertTrue(target.lmgByGroup, "37 built-ins are more than 15 LMG players, so groups are used")
            XCTAssertNotNil(target.ridge.value, target.name)
            XCTAssertNotNil(target.variationalBayes?.value, target.name)
            XCTAssertNotNil(target.grouped?.value, target.name)
            // LMG shares add up to the full R².
            let lmg = try XCTUnwrap(target.lmg?.value)
            assertClose(lmg.shares.reduce(0) { $0 + $1.share }, fit.rSquared, absolute: 1e-10)
        }
        // The gold target is the data's chosen_gold / rejected_gold per side.
        let gold = try XCTUnwrap(result.target("gold"))
        XCTAssertEqual(gold.values[0], 2.11)
        XCTAssertEqual(gold.values[1], -0.96)
        let divergence = try XCTUnwrap(result.divergence)
        XCTAssertNotNil(divergence.implicitVersusRewardModel.pearson.value)
        XCTAssertNotNil(divergence.implicitVersusGold)
        XCTAssertEqual(divergence.implicitPairAccuracy?.value?.total, 60)
        // Gold orders every pair as the data does, by construction of the fixture.
        XCTAssertEqual(divergence.goldPairAccuracy?.value?.correct, 60 - result.pairs.filter { result.samples[$0.chosen].gold == result.samples[$0.rejected].gold }.count)
        XCTAssertFalse(divergence.coefficientGaps.isEmpty)
        XCTAssertEqual(divergence.topDisagreements.count, 10)
        // Both policies generated responses, so the length-normalised gain exists for all three scores.
        XCTAssertEqual(result.lengthNormalizedGain.map(\.score), ["implicit_reward", "reward_model", "gold"])
        XCTAssertFalse(result.tokenReconstruction.effects.isEmpty)
        XCTAssertNil(result.lexiconRecovery)
        // Inputs are hashed.
        XCTAssertEqual(result.inputs.map(\.role), ["before", "after", "data", "reward-model"])
        XCTAssertTrue(result.inputs.allSatisfy { $0.sha256.count == 64 })
        XCTAssertEqual(result.inputs[2].sha256, SHA256.hex(try Data(contentsOf: Fixtures.url("analysis/pairs.jsonl"))))
    }

    func testRewardFieldVaderUtilityAndKimSeoSources() throws {
        let checkpoints = try makeCheckpoints()
        var o = options(checkpoints)
        o.bootstrapReplicates = 0
        o.reward = .field(name: "reward")
        let byField = try AnalysisPipeline.run(o)
        XCTAssertEqual(byField.rewardSource, .field(name: "reward"))
        XCTAssertEqual(byField.samples[0].rewardModel, 1.67501)
        XCTAssertEqual(byField.samples[1].rewardModel, -0.867537)

        o.reward = .vaderUtility
        let vader = try AnalysisPipeline.run(o)
        let inputs = vader.samples.map { FeatureInput(prompt: $0.prompt, response: $0.response) }
        XCTAssertEqual(vader.samples.map { $0.rewardModel ?? .nan }, VaderUtilityReward().rewards(for: inputs))
        XCTAssertNotNil(vader.lexiconRecovery, "vader-utility compares the token reconstruction with the lexicon")

        // Kim & Seo with the before-policy's hidden-state cosine as the relevance.
        o.reward = .kimSeo
        let kimSeo = try AnalysisPipeline.run(o)
        let samples = try SampleFile.read(path: o.dataPath)
        let cosines = try XCTUnwrap(kimSeo.features.column(named: "hidden_state_cosine"))
        let referenceCosines = try XCTUnwrap(kimSeo.features.column(named: "reference_hidden_state_cosine"))
        let kimSeoInputs = samples.indices.map { i in
            FeatureInput(prompt: samples[i].promptText ?? "", response: samples[i].responseText ?? "",
                         reference: samples[i].field("reference")?.stringValue, qtype: samples[i].field("qtype")?.stringValue,
                         hiddenStateCosine: cosines[i], referenceHiddenStateCosine: referenceCosines[i])
        }
        let want = try KimSeoReward(relevance: .hiddenStateCosine).rewards(for: kimSeoInputs)
        for (row, w) in zip(kimSeo.samples, want) { assertClose(row.rewardModel ?? .nan, w, relative: 1e-12) }
        XCTAssertGreaterThan(Set(want).count, 100, "the rewards vary")

        o.reward = .automatic
        XCTAssertEqual(try AnalysisPipeline.run(o).rewardSource, .field(name: "reward"), "the data's reward field is used when present")
    }

    func testNoRewardSourceAnalysesTheImplicitRewardAlone() throws {
        let checkpoints = try makeCheckpoints()
        var o = options(checkpoints)
        o.reward = .none
        o.bootstrapReplicates = 0
        let result = try AnalysisPipeline.run(o)
        XCTAssertNil(result.divergence)
        XCTAssertEqual(result.targets.map(\.name), ["implicit_reward", "gold"])
    }

    func testIdenticalPoliciesGiveAnUndefinedFitNotNaN() throws {
        let checkpoints = try makeCheckpoints()
        var o = options(checkpoints)
        o.afterPath = checkpoints.before
        o.bootstrapReplicates = 0
        let result = try AnalysisPipeline.run(o)
        XCTAssertTrue(result.samples.allSatisfy { $0.implicitReward.sum == 0 && $0.kl == 0 })
        let implicit = try XCTUnwrap(result.target("implicit_reward"))
        XCTAssertNotNil(implicit.ols.undefinedReason)
        XCTAssertNil(implicit.lmg)
        XCTAssertTrue(result.warnings.contains { $0.contains("undefined") }, "\(result.warnings)")
        XCTAssertNotNil(result.divergence?.implicitVersusRewardModel.pearson.undefinedReason)
    }

    func testBetaDefaultsToTheAfterCheckpointsRecordedBeta() throws {
        let checkpoints = try makeCheckpoints()
        var importOptions = HuggingFaceImporter.Options()
        importOptions.beta = 0.25
        let after = try Fixtures.temporaryDirectory(for: self).appendingPathComponent("after-beta.h5").path
        _ = try HuggingFaceImporter.convert(directory: Fixtures.path("logprobs/models/sharp-neox-sequential"), output: after, options: importOptions)
        var o = options(checkpoints)
        o.afterPath = after
        o.beta = nil
        o.bootstrapReplicates = 0
        let recorded = try AnalysisPipeline.run(o)
        XCTAssertEqual(recorded.beta, 0.25)
        XCTAssertTrue(recorded.warnings.contains { $0.contains("β = 0.25 is the β recorded in") }, "\(recorded.warnings)")
        o.beta = 0.5
        let given = try AnalysisPipeline.run(o)
        XCTAssertEqual(given.beta, 0.5)
        assertClose(given.samples[3].implicitReward.sum, 2 * recorded.samples[3].implicitReward.sum, relative: 1e-12)
        // No recorded β: 1, said in a warning.
        o.afterPath = checkpoints.after
        o.beta = nil
        let plain = try AnalysisPipeline.run(o)
        XCTAssertEqual(plain.beta, 1)
        XCTAssertTrue(plain.warnings.contains { $0.contains("records none, so β = 1") }, "\(plain.warnings)")
    }

    func testBadInputs() throws {
        let checkpoints = try makeCheckpoints()
        let dir = try Fixtures.temporaryDirectory(for: self)

        // A reward model where a policy belongs.
        var o = options(checkpoints)
        o.afterPath = checkpoints.rewardModel
        XCTAssertThrowsError(try AnalysisPipeline.run(o)) { error in
            XCTAssertTrue("\(error)".contains("--after needs a policy"), "\(error)")
        }
        // A policy where the reward model belongs.
        o = options(checkpoints)
        o.reward = .rewardModel(path: checkpoints.before)
        XCTAssertThrowsError(try AnalysisPipeline.run(o)) { error in
            XCTAssertTrue("\(error)".contains("--reward-model needs a reward model"), "\(error)")
        }
        // A policy with another tokenizer.
        o = options(checkpoints)
        o.afterPath = try ModelFixtures.checkpointPath("hf/llama", for: self)
        XCTAssertThrowsError(try AnalysisPipeline.run(o)) { error in
            XCTAssertTrue("\(error)".contains("different tokenizers"), "\(error)")
            XCTAssertTrue("\(error)".contains("--allow-tokenizer-mismatch"), "\(error)")
        }
        // Fewer samples than features + 2.
        let lines = try String(contentsOf: Fixtures.url("analysis/pairs.jsonl"), encoding: .utf8).split(separator: "\n").prefix(10)
        let small = dir.appendingPathComponent("small.jsonl")
        try (lines.joined(separator: "\n") + "\n").write(to: small, atomically: true, encoding: .utf8)
        o = options(checkpoints)
        o.dataPath = small.path
        XCTAssertThrowsError(try AnalysisPipeline.run(o)) { error in
            XCTAssertTrue("\(error)".contains("20 samples for"), "\(error)")
            XCTAssertTrue("\(error)".contains("--features"), "\(error)")
        }
        // A reward field missing on one line names the line.
        var edited = try String(contentsOf: Fixtures.url("analysis/pairs.jsonl"), encoding: .utf8).split(separator: "\n").map(String.init)
        edited[4] = edited[4].replacingOccurrences(of: "\"rejected_reward\"", with: "\"rejected_score\"")
        let missing = dir.appendingPathComponent("missing.jsonl")
        try (edited.joined(separator: "\n") + "\n").write(to: missing, atomically: true, encoding: .utf8)
        o = options(checkpoints)
        o.dataPath = missing.path
        o.reward = .field(name: "reward")
        XCTAssertThrowsError(try AnalysisPipeline.run(o)) { error in
            XCTAssertTrue("\(error)".contains("line 5"), "\(error)")
            XCTAssertTrue("\(error)".contains("rejected_reward"), "\(error)")
        }
        // β must be positive.
        o = options(checkpoints)
        o.beta = 0
        XCTAssertThrowsError(try AnalysisPipeline.run(o)) { error in
            XCTAssertTrue("\(error)".contains("--beta"), "\(error)")
        }
    }

    func testEmptyResponseIsKeptAndFlagged() throws {
        let checkpoints = try makeCheckpoints()
        var lines = try String(contentsOf: Fixtures.url("analysis/pairs.jsonl"), encoding: .utf8).split(separator: "\n").map(String.init)
        var first = try XCTUnwrap(JSONValue.parse(lines[0], source: "test").objectValue)
        first["rejected"] = .string("")
        lines[0] = JSONValue.object(first).serialized()
        let path = try Fixtures.temporaryDirectory(for: self).appendingPathComponent("empty.jsonl")
        try (lines.joined(separator: "\n") + "\n").write(to: path, atomically: true, encoding: .utf8)
        var o = options(checkpoints)
        o.dataPath = path.path
        o.bootstrapReplicates = 0
        let result = try AnalysisPipeline.run(o)
        XCTAssertEqual(result.samples.count, 120)
        XCTAssertTrue(result.samples[1].isEmptyResponse)
        XCTAssertEqual(result.samples[1].implicitReward.sum, 0)
        XCTAssertTrue(result.warnings.contains { $0.contains("1 empty response") && $0.contains("q000 rejected") }, "\(result.warnings)")
    }

    func testMeanPooledHiddenStatesDeduplicateAndBatch() throws {
        let model = try ModelFixtures.load("logprobs/models/sharp-neox", for: self)
        let sequences: [[Int32]] = [[5, 6, 7], [], [5, 6, 7], [8, 9], [10]]
        let together = try LogProbScorer().meanPooledHiddenStates(of: sequences, under: model)
        let oneByOne = try LogProbScorer(options: ScoringOptions(tokensPerBatch: 1)).meanPooledHiddenStates(of: sequences, under: model)
        XCTAssertEqual(together.count, 5)
        XCTAssertEqual(together[1], [Double](repeating: 0, count: model.config.hiddenSize))
        XCTAssertEqual(together[0], together[2])
        for (a, b) in zip(together, oneByOne) {
            for (x, y) in zip(a, b) { assertClose(x, y, absolute: 2e-5) }
        }
        XCTAssertThrowsError(try LogProbScorer().meanPooledHiddenStates(of: [[Int32(model.config.vocabSize)]], under: model))
    }
}
