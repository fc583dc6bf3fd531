import Foundation
import XCTest
@testable import IRMKit

/// The drift audit's own statistics on hand-computable data, the ordering of a series, and
/// `irm drift` on the bundled demo series as a user runs it.
final class DriftTests: XCTestCase {
    /// Two prompts of two responses. Step 1 triples the weight of response 1; step 2 also of
    /// response 3. Worked by hand in the comments (docs/drift.md's formula).
    func testSelfNormalisedTrajectoryMonotonicityAndOverOptimisation() throws {
        let ln3 = Foundation.log(3.0)
        let trajectory = try RewardTrajectory(
            logRatios: [[0, 0, 0, 0], [0, ln3, 0, 0], [0, ln3, 0, ln3]],
            proxy: [1, 3, 0, 2], gold: [2, 0, 1, 1], groups: [[0, 1], [2, 3]], bootstrapReplicates: 200, seed: 1)
        // R0 = mean(2, 1); R1 = mean((1 + 9)/4, 1); R2 = mean(2.5, (0 + 6)/4).
        XCTAssertEqual(trajectory.proxy.map(\.value), [1.5, 1.75, 2.0], accuracy: 1e-12)
        // G0 = mean(1, 1); G1 = mean((2 + 0)/4, 1); G2 = mean(0.5, (1 + 3)/4).
        XCTAssertEqual(try XCTUnwrap(trajectory.gold).map(\.value), [1, 0.75, 0.75], accuracy: 1e-12)
        XCTAssertEqual(trajectory.proxyGains, [0, 0.25, 0.25], accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(trajectory.goldGains), [0, -0.25, 0], accuracy: 1e-12)
        // Spearman of ranks [1, 2, 3] against [3, 1.5, 1.5]: −1.5 / √(2 · 1.5).
        let rho = try XCTUnwrap(trajectory.monotonicity?.value)
        XCTAssertEqual(rho.value, -1.5 / 3.0.squareRoot(), accuracy: 1e-12)
        // Gold is highest at the base and the proxy rises after it.
        let over = try XCTUnwrap(trajectory.overOptimisation?.value)
        XCTAssertEqual(over.peakStep, 0)
        XCTAssertEqual(over.goldChange, -0.25, accuracy: 1e-12)
        XCTAssertEqual(over.proxyChange, 0.5, accuracy: 1e-12)
        XCTAssertGreaterThan(over.support, 0)
        XCTAssertLessThanOrEqual(over.support, 1)
        // The same seed gives the same intervals.
        let again = try RewardTrajectory(
            logRatios: [[0, 0, 0, 0], [0, ln3, 0, 0], [0, ln3, 0, ln3]],
            proxy: [1, 3, 0, 2], gold: [2, 0, 1, 1], groups: [[0, 1], [2, 3]], bootstrapReplicates: 200, seed: 1)
        XCTAssertEqual(again.proxy.map(\.interval), trajectory.proxy.map(\.interval))
    }

    func testLargeLogRatiosDoNotOverflow() throws {
        let trajectory = try RewardTrajectory(logRatios: [[0, 0], [800, 0]], proxy: [1, 0], gold: nil, groups: [[0, 1]],
                                              bootstrapReplicates: 0, seed: 0)
        XCTAssertEqual(trajectory.proxy.map(\.value), [0.5, 1], accuracy: 1e-12)
        XCTAssertNil(trajectory.overOptimisation)
    }

    func testGoldStillRisingIsNotOverOptimisation() throws {
        let trajectory = try RewardTrajectory(logRatios: [[0, 0], [1, 0], [2, 0]], proxy: [1, 0], gold: [1, 0], groups: [[0, 1]],
                                              bootstrapReplicates: 0, seed: 0)
        XCTAssertNotNil(trajectory.overOptimisation?.undefinedReason)
        XCTAssertTrue(trajectory.overOptimisation?.undefinedReason?.contains("highest at the last step") ?? false)
    }

    // MARK: The series

    func demo(_ name: String) -> String { Fixtures.repositoryPath("checkpoints/demo/\(name).h5") }

    func testSeriesOrderAndBadSeries() throws {
        let base = try Checkpoint.open(path: demo("base"))
        let ordered = try DriftPipeline.orderedSeries([demo("rlhf"), demo("rlhf-step-0050"), demo("rlhf-step-0150")], base: base)
        XCTAssertEqual(ordered.map { $0.provenance.trainingStep }, [50, 150, 200])
        XCTAssertThrowsError(try DriftPipeline.orderedSeries([demo("rlhf")], base: base)) {
            XCTAssertTrue("\($0)".contains("needs at least two checkpoints besides the base") && "\($0)".contains("irm analyze"), "\($0)")
        }
        XCTAssertThrowsError(try DriftPipeline.orderedSeries([demo("rlhf"), demo("rlhf")], base: base)) {
            XCTAssertTrue("\($0)".contains("is given twice"), "\($0)")
        }
        XCTAssertThrowsError(try DriftPipeline.orderedSeries([demo("rlhf"), demo("base")], base: base)) {
            XCTAssertTrue("\($0)".contains("is the base itself"), "\($0)")
        }
        // Two checkpoints that record the same step cannot be ordered.
        let work = try Fixtures.temporaryDirectory(for: self)
        let copy = work.appendingPathComponent("again.h5").path
        try FileManager.default.copyItem(atPath: demo("rlhf-step-0050"), toPath: copy)
        XCTAssertThrowsError(try DriftPipeline.orderedSeries([demo("rlhf-step-0050"), copy, demo("rlhf")], base: base)) {
            XCTAssertTrue("\($0)".contains("both record training step 50") && "\($0)".contains("irm convert --step"), "\($0)")
        }
    }

    func testAReviewModelInTheSeriesIsRefusedByName() throws {
        let out = try Fixtures.temporaryDirectory(for: self).appendingPathComponent("drift").path
        // The series from a glob (three files) plus one --checkpoint.
        let result = try CommandRunner.run(["drift", "--base", demo("base"), "--checkpoints", demo("rlhf-step-0*"), "--checkpoint", demo("rm"),
                                            "--data", Fixtures.repositoryPath("checkpoints/demo/prompts.jsonl"),
                                            "--out", out])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("rm.h5: is a reward model"), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        let none = try CommandRunner.run(["drift", "--base", demo("base"), "--checkpoints", "/nonexistent/step-*.h5",
                                          "--data", Fixtures.repositoryPath("checkpoints/demo/prompts.jsonl"), "--out", out])
        XCTAssertEqual(none.status, 1)
        XCTAssertTrue(none.stderr.contains("--checkpoints /nonexistent/step-*.h5: no file matches"), none.stderr)
    }

    /// The bundled series end to end: every file, the per-step numbers consistent with
    /// `irm analyze` of the last step, and the layer table.
    func testDriftOnTheDemoSeries() throws {
        let work = try Fixtures.temporaryDirectory(for: self)
        let out = work.appendingPathComponent("drift")
        let data = Fixtures.repositoryPath("checkpoints/demo/prompts.jsonl")
        let result = try CommandRunner.run(["drift", "--base", demo("base"), "--checkpoint", demo("rlhf"), "--checkpoint", demo("rlhf-step-0100"),
                                            "--checkpoint", demo("rlhf-step-0050"), "--checkpoint", demo("rlhf-step-0150"),
                                            "--data", data, "--reward-model", demo("rm"), "--convention", "separate",
                                            "--bootstrap", "50", "--out", out.path])
        XCTAssertEqual(result.status, 0, result.stderr)
        for file in ["drift.md", "drift.html", "drift.csv", "layers.csv", "drift.json", "manifest.json", "plots/trajectory.svg",
                     "plots/kl.svg", "plots/features.svg", "plots/layers.svg"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(file).path), file)
        }
        let json = try JSONValue.parse(Data(contentsOf: out.appendingPathComponent("drift.json")), source: "drift.json")
        let steps = try XCTUnwrap(json["steps"]?.arrayValue)
        XCTAssertEqual(steps.compactMap { $0["checkpoint"]?["training_step"]?.intValue }, [50, 100, 150, 200])
        // The last step against the base is what `irm analyze --before base --after rlhf` computes.
        let analysis = work.appendingPathComponent("analysis")
        let analyze = try CommandRunner.run(["analyze", "--before", demo("base"), "--after", demo("rlhf"), "--data", data,
                                             "--reward-model", demo("rm"), "--convention", "separate", "--bootstrap", "0", "--out", analysis.path])
        XCTAssertEqual(analyze.status, 0, analyze.stderr)
        let divergence = try JSONValue.parse(Data(contentsOf: analysis.appendingPathComponent("divergence.json")), source: "divergence.json")
        let analyzeKL = try XCTUnwrap(divergence["kl"]?["mean"]?.doubleValue)
        let driftKL = try XCTUnwrap(steps.last?["kl_per_response"]?.doubleValue)
        XCTAssertEqual(driftKL, analyzeKL, accuracy: 1e-9 * abs(analyzeKL))
        let analyzeMargin = try XCTUnwrap(divergence["trl_rewards"]?["rewards/margins"]?["value"]?.doubleValue)
        let driftMargin = try XCTUnwrap(steps.last?["trl_rewards"]?["rewards/margins"]?["value"]?.doubleValue)
        XCTAssertEqual(driftMargin, analyzeMargin, accuracy: 1e-12)
        // The trajectory has the base and four steps; the base's proxy is the plain per-prompt mean.
        let proxy = try XCTUnwrap(json["trajectory"]?["proxy"]?.arrayValue)
        XCTAssertEqual(proxy.count, 5)
        let csv = try String(contentsOf: out.appendingPathComponent("drift.csv"), encoding: .utf8)
        XCTAssertTrue(csv.hasPrefix("step_index,label,training_step,metric,value,ci_low,ci_high\n"), csv)
        XCTAssertTrue(csv.contains("\n4,step 200,200,kl_per_token,"), "per-step metrics")
        XCTAssertTrue(csv.contains(",coef:exclamations,"), "feature trajectories")
        let layers = try String(contentsOf: out.appendingPathComponent("layers.csv"), encoding: .utf8)
        XCTAssertTrue(layers.hasPrefix("step,label,comparison,group,tensor,relative,absolute,base_norm\n"), String(layers.prefix(200)))
        // The demo's reward model pays for "!", gold (VADER) does not, and the implicit reward weights it.
        let proxyOnly = try XCTUnwrap(json["proxy_only_features"]?.arrayValue).compactMap { $0["feature"]?.stringValue }
        XCTAssertTrue(proxyOnly.contains("exclamations"), "\(proxyOnly)")
        // Deterministic: the same run gives the same bytes.
        let again = work.appendingPathComponent("again")
        XCTAssertEqual(try CommandRunner.run(["drift", "--base", demo("base"), "--checkpoint", demo("rlhf"), "--checkpoint", demo("rlhf-step-0100"),
                                              "--checkpoint", demo("rlhf-step-0050"), "--checkpoint", demo("rlhf-step-0150"),
                                              "--data", data, "--reward-model", demo("rm"), "--convention", "separate",
                                              "--bootstrap", "50", "--out", again.path, "--quiet"]).status, 0)
        for file in ["drift.md", "drift.csv", "drift.json", "layers.csv"] {
            XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent(file)), try Data(contentsOf: again.appendingPathComponent(file)), file)
        }
    }
}

extension DriftTests {
    /// A reward-model series of four identical versions: consecutive correlations of 1, no feature
    /// started or stopped, and the same trajectory as the committed single-RM demo drift.
    func testARewardModelSeries() throws {
        let work = try Fixtures.temporaryDirectory(for: self)
        for k in 1...4 { try FileManager.default.copyItem(atPath: demo("rm"), toPath: work.appendingPathComponent("rm-\(k).h5").path) }
        let out = work.appendingPathComponent("drift")
        let result = try CommandRunner.run(["drift", "--base", demo("base"), "--checkpoints", demo("rlhf*"),
                                            "--data", Fixtures.repositoryPath("checkpoints/demo/prompts.jsonl"),
                                            "--reward-models", work.appendingPathComponent("rm-*.h5").path, "--convention", "separate",
                                            "--bootstrap", "20", "--no-store", "--out", out.path, "--quiet"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let json = try JSONValue.parse(Data(contentsOf: out.appendingPathComponent("drift.json")), source: "drift.json")
        let series = try XCTUnwrap(json["reward_model_series"])
        XCTAssertEqual(series["models"]?.arrayValue?.count, 4)
        for c in series["consecutive"]?.arrayValue ?? [] {
            XCTAssertEqual(try XCTUnwrap(c["pearson"]?["value"]?.doubleValue), 1, accuracy: 1e-12)
        }
        XCTAssertEqual(series["changes"]?.arrayValue?.count, 0)
        let committed = try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: Fixtures.repositoryPath("analyses/demo-drift/drift.json"))),
                                            source: "analyses/demo-drift/drift.json")
        let proxy = try XCTUnwrap(json["trajectory"]?["proxy"]?.arrayValue).compactMap { $0["value"]?.doubleValue }
        let single = try XCTUnwrap(committed["trajectory"]?["proxy"]?.arrayValue).compactMap { $0["value"]?.doubleValue }
        XCTAssertEqual(proxy, single, accuracy: 1e-6)
        // One reward model too many is refused before any scoring.
        try FileManager.default.copyItem(atPath: demo("rm"), toPath: work.appendingPathComponent("rm-5.h5").path)
        let mismatch = try CommandRunner.run(["drift", "--base", demo("base"), "--checkpoints", demo("rlhf*"),
                                              "--data", Fixtures.repositoryPath("checkpoints/demo/prompts.jsonl"),
                                              "--reward-models", work.appendingPathComponent("rm-*.h5").path, "--out", out.path + "2"])
        XCTAssertEqual(mismatch.status, 1)
        XCTAssertTrue(mismatch.stderr.contains("one reward model per checkpoint: 5 given for 4 checkpoints"), mismatch.stderr)
    }
}

private func XCTAssertEqual(_ a: [Double], _ b: [Double], accuracy: Double, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, file: file, line: line) }
}
