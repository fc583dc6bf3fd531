import Foundation
import XCTest
@testable import IRMKit

/// `irm score --estimate`: the calibration blocks, the FLOP count and the report.
final class ScoringEstimateTests: XCTestCase {
    func demo(_ name: String) -> String { Fixtures.repositoryPath("checkpoints/demo/\(name)") }

    func testCalibrationBlocksAreSpreadOverTheData() {
        let samples = (0..<100).map { ScoringSample(name: "s\($0)", promptIDs: [Int32($0), 1], responseIDs: [2, 3, 4]) }
        let plan = ShardPlan(samples)
        XCTAssertEqual(plan.blocks.count, 7)
        let four = ScoringEstimate.calibrationBlocks(plan, count: 4)
        XCTAssertEqual(four.count, 4)
        XCTAssertEqual(Set(four.map(\.lowerBound)).count, 4, "distinct blocks")
        XCTAssertTrue(four.first!.lowerBound < 32 && four.last!.upperBound > 68, "from the start to the end: \(four)")
        XCTAssertEqual(ScoringEstimate.calibrationBlocks(plan, count: 10), plan.blocks, "all blocks when there are fewer")
    }

    /// The FLOP count's GEMM part (trunk and head) against what the scorer's kernels count while
    /// scoring the same data (`ComputeProfile`), which is an independent tally; attention is not
    /// among the profile's GEMMs.
    func testTheFLOPCountMatchesTheKernelsTally() throws {
        let checkpoint = try Checkpoint.open(path: demo("base.h5"))
        let lines = try String(contentsOfFile: demo("prompts.jsonl"), encoding: .utf8).split(separator: "\n").prefix(20)
        let work = try Fixtures.temporaryDirectory(for: self)
        let path = work.appendingPathComponent("p.jsonl").path
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        var sequenceOptions = SequenceOptions()
        sequenceOptions.convention = .separate
        let data = try PreparedData(dataPath: path, checkpoint: checkpoint, sequenceOptions: sequenceOptions, chatTemplatePath: nil, templateDate: Date())
        let model = try ModelLoading.load(checkpoint: checkpoint)
        let count = ScoringEstimate.flopCount(checkpoint, data.sequences, plan: data.plan, outputWidth: model.outputWidth)
        let profile = ComputeProfile()
        let scorer = LogProbScorer(options: ScoringOptions(threads: 1), profile: profile)
        for block in data.plan.blocks { _ = try scorer.logProbs(of: Array(data.sequences[block]), under: model) }
        XCTAssertEqual(count.trunk, profile.gemmFlops, accuracy: 0.02 * profile.gemmFlops, "trunk GEMMs")
        // An upper bound: the scorer runs the head once for rows that responses to one prompt share
        // (an identical first token after the same prompt), which the count does not look for.
        XCTAssertGreaterThanOrEqual(count.head, profile.headFlops, "head GEMMs")
        XCTAssertEqual(count.head, profile.headFlops, accuracy: 0.1 * profile.headFlops, "head GEMMs")
        XCTAssertGreaterThan(count.attention, 0)
        XCTAssertEqual(ScoringEstimate.flops(checkpoint, data.sequences, plan: data.plan, outputWidth: model.outputWidth),
                       count.trunk + count.attention + count.head)
    }

    func testTheEstimateCommandPrintsTheWholeDataAndWritesNothing() throws {
        let run = try CommandRunner.run(["score", "--model", demo("rlhf.h5"), "--reference", demo("base.h5"), "--data", demo("prompts.jsonl"),
                                         "--convention", "separate", "--estimate", "--estimate-tokens", "300", "--threads", "1"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("data: 596 samples in 149 prompt groups"), run.stdout)
        XCTAssertTrue(run.stdout.contains("core-hours"), run.stdout)
        XCTAssertTrue(run.stdout.contains("memory per task: peak RSS"), run.stdout)
        XCTAssertTrue(run.stdout.contains("--shard K/4"), run.stdout)
        let both = try CommandRunner.run(["score", "--model", demo("rm.h5"), "--data", demo("prompts.jsonl"), "--estimate", "--out", "x.jsonl"])
        XCTAssertEqual(both.status, 64, both.stderr)
        XCTAssertTrue(both.stderr.contains("--estimate writes nothing"), both.stderr)
    }
}
