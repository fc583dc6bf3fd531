import Foundation
import XCTest
@testable import IRMKit

/// Outputs as a user meets them on the command line: the output path is checked before any work,
/// only what an output may replace is replaced, SIGINT, SIGTERM and SIGHUP leave no temporary file
/// and the old output intact, what SIGKILL leaves is swept by the next run, and a second run on the
/// same output refuses while the first writes. `IRM_TEST_HOLD_BEFORE_PUBLISH` makes a run wait,
/// output complete, right before publishing it, so that the tests interrupt it there without a race.
final class OutputSafetyTests: XCTestCase {
    func scoreArguments(data: String, out: String) -> [String] {
        ["score", "--model", Fixtures.demo("base.h5"), "--data", data, "--convention", "separate", "--threads", "1", "--out", out]
    }

    func entries(_ directory: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
    }

    static let hold = ["IRM_TEST_HOLD_BEFORE_PUBLISH": "300"]

    func testTheOutputPathIsCheckedBeforeAnyModelIsRead() throws {
        // The models do not exist: an error about them would mean the work started first.
        let missing = "/nonexistent/irm-model.h5"
        let runs: [[String]] = [
            ["analyze", "--before", missing, "--after", missing, "--data", missing, "--out", "/proc/irm-test/out"],
            ["drift", "--base", missing, "--checkpoint", missing, "--data", missing, "--out", "/proc/irm-test/out"],
            ["score", "--model", missing, "--data", missing, "--out", "/proc/irm-test.jsonl"],
            ["convert", "/nonexistent/irm-hf-model", "/proc/irm-test.h5"],
        ]
        for arguments in runs {
            let run = try CommandRunner.run(arguments, timeout: 120)
            XCTAssertEqual(run.status, 1, "\(arguments[0]): \(run.stderr)")
            XCTAssertTrue(run.stderr.hasPrefix("irm: error: ") && run.stderr.contains("/proc/irm-test"), "\(arguments[0]): \(run.stderr)")
            XCTAssertFalse(run.stderr.contains(missing) || run.stderr.contains("irm-hf-model"), "\(arguments[0]): \(run.stderr)")
            XCTAssertEqual(run.stderr.split(separator: "\n").count, 1, run.stderr)
        }
    }

    func testDevicesAndFIFOsAreNeverReplaced() throws {
        let dir = try Fixtures.temporaryDirectory(for: self)
        let data = try Fixtures.demoPrompts(in: dir)
        var targets: [(path: String, kind: InputFile.Kind)] = []
        let fifo = dir.appendingPathComponent("fifo.jsonl").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        targets.append((fifo, .fifo))
        // A copy of /dev/null's device node, where this user may make one (root, with CAP_MKNOD).
        let device = dir.appendingPathComponent("null-copy").path
        var null = stat()
        XCTAssertEqual(stat("/dev/null", &null), 0)
        if mknod(device, S_IFCHR | 0o666, null.st_rdev) == 0 {
            targets.append((device, .characterDevice))
        } else {
            print("OutputSafetyTests: no device-node copy (mknod: \(String(cString: strerror(errno)))); testing the FIFO only")
        }
        for (path, kind) in targets {
            let run = try CommandRunner.run(scoreArguments(data: data, out: path), timeout: 120)
            XCTAssertFalse(run.timedOut)
            XCTAssertEqual(run.status, 1, run.stderr)
            XCTAssertTrue(run.stderr.hasPrefix("irm: error: --out \(path): is \(kind.phrase); irm replaces only a regular file"), run.stderr)
            XCTAssertEqual(InputFile.kind(of: path), kind, "still what it was")
            let analyze = try CommandRunner.run(Fixtures.quickAnalyzeArguments(data: data, features: try Fixtures.oneFeatureFile(for: self), out: path), timeout: 120)
            XCTAssertEqual(analyze.status, 1, analyze.stderr)
            XCTAssertTrue(analyze.stderr.contains("irm replaces only a directory"), analyze.stderr)
            XCTAssertEqual(InputFile.kind(of: path), kind, "still what it was")
        }
        let left = try entries(dir)
        XCTAssertFalse(left.contains { $0.hasPrefix(".irm-tmp-") || $0.hasSuffix(".irm-lock") }, "\(left)")
    }

    /// The directory output of analyze, interrupted right before it is published: each catchable
    /// signal ends the run, leaves the old analysis as it was, and removes the temporary directory
    /// and the lock.
    func testCatchableSignalsLeaveTheOldOutputAndNoTemporary() throws {
        let dir = try Fixtures.temporaryDirectory(for: self)
        let data = try Fixtures.demoPrompts(in: dir), features = try Fixtures.oneFeatureFile(for: self)
        let out = dir.appendingPathComponent("analysis")
        let first = try CommandRunner.run(Fixtures.quickAnalyzeArguments(data: data, features: features, out: out.path))
        XCTAssertEqual(first.status, 0, first.stderr)
        let before = try Fixtures.files(in: out)
        XCTAssertNotNil(before["report.md"])
        let beside = try entries(dir)

        for signal in [SIGTERM, SIGINT, SIGHUP] {
            let run = try RunningCommand(Fixtures.quickAnalyzeArguments(data: data, features: features, out: out.path) + ["--seed", "\(signal)"],
                                         environment: Self.hold)
            let line = try XCTUnwrap(run.waitForStderrLine(containing: "irm: test hold: "), "the run reached the hold")
            let temporary = String(line.dropFirst("irm: test hold: ".count))
            XCTAssertTrue(FileManager.default.fileExists(atPath: temporary + "/report.md"), "the new output is built: \(temporary)")
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent(".analysis.irm-lock").path))
            run.signal(signal)
            let end = run.finish()
            XCTAssertEqual(end.reason, .uncaughtSignal, "signal \(signal): \(end.stderr)")
            XCTAssertEqual(end.status, signal)
            XCTAssertEqual(try entries(dir), beside, "signal \(signal): no temporary directory or lock file left")
            XCTAssertEqual(try Fixtures.files(in: out), before, "signal \(signal): the old output is untouched")
        }
    }

    /// `irm score`'s single file, the same way.
    func testSIGTERMDuringAFileOutputLeavesNoTemporary() throws {
        let dir = try Fixtures.temporaryDirectory(for: self)
        let data = try Fixtures.demoPrompts(in: dir)
        let out = dir.appendingPathComponent("scores.jsonl")
        try Data("old\n".utf8).write(to: out)
        let run = try RunningCommand(scoreArguments(data: data, out: out.path), environment: Self.hold)
        let line = try XCTUnwrap(run.waitForStderrLine(containing: "irm: test hold: "))
        XCTAssertTrue(FileManager.default.fileExists(atPath: String(line.dropFirst("irm: test hold: ".count))))
        run.signal(SIGTERM)
        let end = run.finish()
        XCTAssertEqual(end.reason, .uncaughtSignal, end.stderr)
        XCTAssertEqual(try entries(dir), ["prompts.jsonl", "scores.jsonl"])
        XCTAssertEqual(try Data(contentsOf: out), Data("old\n".utf8))
    }

    /// SIGKILL cannot be caught: the temporary directory and the lock file stay, and the next run
    /// removes the temporary (saying so), takes the lock over, and writes the output.
    func testWhatSIGKILLLeavesIsSweptByTheNextRun() throws {
        let dir = try Fixtures.temporaryDirectory(for: self)
        let data = try Fixtures.demoPrompts(in: dir), features = try Fixtures.oneFeatureFile(for: self)
        let out = dir.appendingPathComponent("analysis")
        let run = try RunningCommand(Fixtures.quickAnalyzeArguments(data: data, features: features, out: out.path), environment: Self.hold)
        let line = try XCTUnwrap(run.waitForStderrLine(containing: "irm: test hold: "))
        let temporary = String(line.dropFirst("irm: test hold: ".count))
        run.signal(SIGKILL)
        _ = run.finish()
        XCTAssertTrue(FileManager.default.fileExists(atPath: temporary), "SIGKILL leaves the temporary directory")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))

        let next = try CommandRunner.run(Fixtures.quickAnalyzeArguments(data: data, features: features, out: out.path).filter { $0 != "--quiet" })
        XCTAssertEqual(next.status, 0, next.stderr)
        XCTAssertTrue(next.stderr.contains("irm: warning: removed \(temporary), a temporary file of an irm run that was interrupted"), next.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: temporary))
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("report.md").path))
        let left = try entries(dir)
        XCTAssertFalse(left.contains { $0.hasPrefix(".irm-tmp-") || $0.hasSuffix(".irm-lock") }, "\(left)")
    }

    func testASecondRunOnTheSameOutputRefusesWhileTheFirstWrites() throws {
        let dir = try Fixtures.temporaryDirectory(for: self)
        let data = try Fixtures.demoPrompts(in: dir), features = try Fixtures.oneFeatureFile(for: self)
        let out = dir.appendingPathComponent("analysis")
        let first = try RunningCommand(Fixtures.quickAnalyzeArguments(data: data, features: features, out: out.path), environment: Self.hold)
        XCTAssertNotNil(first.waitForStderrLine(containing: "irm: test hold: "))
        let second = try CommandRunner.run(Fixtures.quickAnalyzeArguments(data: data, features: features, out: out.path), timeout: 120)
        first.signal(SIGTERM)
        _ = first.finish()
        XCTAssertEqual(second.status, 1, second.stderr)
        XCTAssertTrue(second.stderr.hasPrefix("irm: error: --out \(out.path): another irm run (pid \(first.pid) on "), second.stderr)
        XCTAssertTrue(second.stderr.contains("is writing this output now"), second.stderr)
        XCTAssertEqual(second.stderr.split(separator: "\n").count, 1, second.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
    }

    func testARerunLeavesNoFileOfTheEarlierAnalysis() throws {
        let dir = try Fixtures.temporaryDirectory(for: self)
        let data = try Fixtures.demoPrompts(in: dir), features = try Fixtures.oneFeatureFile(for: self)
        let out = dir.appendingPathComponent("analysis")
        XCTAssertEqual(try CommandRunner.run(Fixtures.quickAnalyzeArguments(data: data, features: features, out: out.path)).status, 0)
        let written = try Fixtures.files(in: out)
        // What an earlier run (another version, other options) wrote and this one does not.
        try Data("old".utf8).write(to: out.appendingPathComponent("lexicon.csv"))
        try Data("<svg/>".utf8).write(to: out.appendingPathComponent("plots/old.svg"))
        let again = try CommandRunner.run(Fixtures.quickAnalyzeArguments(data: data, features: features, out: out.path))
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(try Fixtures.files(in: out), written)
        // A directory of other files is never replaced, and the store may not live inside the output.
        let foreign = dir.appendingPathComponent("foreign")
        try FileManager.default.createDirectory(at: foreign, withIntermediateDirectories: false)
        try Data("mine".utf8).write(to: foreign.appendingPathComponent("notes.txt"))
        let refused = try CommandRunner.run(Fixtures.quickAnalyzeArguments(data: data, features: features, out: foreign.path))
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("no irm manifest.json"), refused.stderr)
        XCTAssertEqual(try entries(foreign), ["notes.txt"])
        let inside = try CommandRunner.run(Fixtures.quickAnalyzeArguments(data: data, features: features, out: out.path).filter { $0 != "--no-store" }
            + ["--store", out.appendingPathComponent("store").path])
        XCTAssertEqual(inside.status, 1)
        XCTAssertTrue(inside.stderr.contains("--store \(out.path)/store lies inside the output directory"), inside.stderr)
        XCTAssertEqual(try Fixtures.files(in: out), written)
    }
}
