import Foundation
import XCTest
@testable import IRMKit

/// `irm drift` on a series with a planted over-optimisation (scripts/fixtures/make_drift_fixtures.py,
/// Tests/Fixtures/drift): a tiny GPT-2 tuned in four steps, first towards positive words and a
/// few "!", then towards "!" whatever the sentiment, so the proxy (gold + 0.8 per "!") keeps rising
/// while gold (VADER valence) peaks at step 200. The references are float64 transformers (log-probs,
/// KL) and numpy/scipy (trajectories, Spearman), never irm.
final class DriftPlantedTests: XCTestCase {
    struct Expected: Decodable {
        let beta: Double
        let steps: [Int]
        let modelDirs: [String]
        let logRatio: [[Double]]
        let klSum: [[Double]]
        let klPerTokenMean: [Double]
        let proxyTrajectory: [Double]
        let goldTrajectory: [Double]
        let spearman: Double
        let goldPeakStepIndex: Int
        let spuriousFeature: String
    }

    func testThePlantedGoodhartStepAndSpuriousChannelAreFound() throws {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let expected = try decoder.decode(Expected.self, from: Data(contentsOf: Fixtures.url("drift/expected.json")))
        let work = try Fixtures.temporaryDirectory(for: self)
        var paths: [String] = []
        for (directory, step) in zip(expected.modelDirs, expected.steps) {
            var options = HuggingFaceImporter.Options()
            options.trainingStep = step
            options.beta = expected.beta
            let out = work.appendingPathComponent("step-\(step).h5").path
            _ = try HuggingFaceImporter.convert(directory: Fixtures.path(directory), output: out, options: options)
            paths.append(out)
        }
        // Given out of order: the recorded steps order them.
        var options = DriftOptions(basePath: paths[0], checkpointPaths: Array(paths.dropFirst().reversed()), dataPath: Fixtures.path("drift/pairs.jsonl"))
        options.reward = .field(name: "reward")
        options.sequences.convention = .separate
        options.bootstrapReplicates = 200
        options.seed = 3
        let result = try DriftPipeline.run(options)
        XCTAssertEqual(result.steps.map { $0.checkpoint.trainingStep }, expected.steps.dropFirst().map { Optional($0) })

        // Per step and sample: the implicit reward against float64 transformers (sums within 1e-3,
        // the engine's tolerance for sums), and the KL.
        for (k, step) in result.steps.enumerated() {
            XCTAssertEqual(step.beta, expected.beta)
            assertClose(step.logRatios.map { $0 / step.beta }, expected.logRatio[k], absolute: 1e-3, "step \(k + 1): log-ratio per sample")
            assertClose(step.klPerToken, expected.klPerTokenMean[k], absolute: 1e-4, "step \(k + 1): KL per token")
            let klPerResponse = expected.klSum[k].reduce(0, +) / Double(expected.klSum[k].count)
            assertClose(step.klPerResponse, klPerResponse, absolute: 1e-3, "step \(k + 1): KL per response")
        }
        // The trajectories, monotonicity and the peak, against numpy/scipy on the float64 log-ratios.
        let trajectory = try XCTUnwrap(result.trajectory)
        assertClose(trajectory.proxy.map(\.value), expected.proxyTrajectory, absolute: 1e-4, "proxy trajectory")
        assertClose(try XCTUnwrap(trajectory.gold).map(\.value), expected.goldTrajectory, absolute: 1e-4, "gold trajectory")
        let rho = try XCTUnwrap(trajectory.monotonicity?.value)
        XCTAssertEqual(rho.value, expected.spearman, accuracy: 1e-12)
        let over = try XCTUnwrap(trajectory.overOptimisation?.value, "\(String(describing: trajectory.overOptimisation?.undefinedReason))")
        XCTAssertEqual(over.peakStep, expected.goldPeakStepIndex)
        XCTAssertLessThan(over.goldChange, 0)
        XCTAssertGreaterThan(over.proxyChange, 0)
        XCTAssertTrue(over.isSignificant, "support \(over.support)")
        // The planted channel.
        XCTAssertTrue(result.spuriousFeatures.map(\.feature).contains(expected.spuriousFeature),
                      "spurious: \(result.spuriousFeatures.map(\.feature)); proxy-only: \(result.proxyOnlyFeatures.map { "\($0.feature) \($0.implicitTrajectory) ρ \($0.trend)" })")
        let summary = DriftReport.summaryLines(result).joined(separator: "\n")
        XCTAssertTrue(summary.contains("Over-optimisation: gold peaks at step 200"), summary)
        XCTAssertTrue(summary.contains("Spurious channel \(expected.spuriousFeature)"), summary)
    }
}
