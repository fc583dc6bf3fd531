import Foundation
import XCTest
@testable import IRMKit

/// kill -9 during `irm analyze` (a directory output) and `irm convert` (a file output), each over an
/// existing old output (issue 14, "Keep it true"). After every kill the target is, byte for byte,
/// the old output or the complete new one, never a mix or a partial file; the same command run
/// again then completes, removes what the kill left (temporaries, the lock file) and writes the
/// new output.
///
/// The kill points: two that the product offers as test-only switches, so that they are hit
/// without a race (`IRM_TEST_HOLD_BEFORE_PUBLISH`: the temporary output complete, the old one in
/// place; `IRM_TEST_HOLD_AFTER_PUBLISH`: the new output in place, the old directory still at its
/// temporary name, the lock held), and five after fixed delays spread over an uninterrupted run's
/// wall time. A delay may land anywhere, or after the run ended; the assertions are invariants
/// that hold wherever it lands, none is about timing.
final class InterruptionTests: XCTestCase {
    enum KillPoint: CustomStringConvertible {
        case beforePublishing
        case afterPublishing
        /// This fraction of an uninterrupted run's wall time after the start.
        case after(fraction: Double)

        static let all: [KillPoint] = [.beforePublishing, .afterPublishing] + [0.05, 0.25, 0.45, 0.65, 0.85].map { .after(fraction: $0) }

        var description: String {
            switch self {
            case .beforePublishing: "at the hold before publishing"
            case .afterPublishing: "at the hold after publishing"
            case .after(let fraction): "after \(Int(fraction * 100))% of a run's time"
            }
        }

        /// The switch that makes a run wait at this point, and the start of the line it then says
        /// on stderr (followed by a path).
        var hold: (variable: String, line: String)? {
            switch self {
            case .beforePublishing: ("IRM_TEST_HOLD_BEFORE_PUBLISH", "irm: test hold: ")
            case .afterPublishing: ("IRM_TEST_HOLD_AFTER_PUBLISH", "irm: test hold after publish: ")
            case .after: nil
            }
        }
    }

    /// What is at `url`: a file as `["": bytes]`, a directory as its files by relative path, nil
    /// when nothing is there.
    func output(at url: URL) throws -> [String: Data]? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else { return nil }
        return isDirectory.boolValue ? try Fixtures.files(in: url) : ["": try Data(contentsOf: url)]
    }

    /// Puts `output` (as `output(at:)` reads it) at `url`, replacing what is there.
    func put(_ output: [String: Data], at url: URL) throws {
        if FileManager.default.fileExists(atPath: url.path) { try FileManager.default.removeItem(at: url) }
        if let data = output[""] { return try data.write(to: url) }
        for (path, data) in output {
            let file = url.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try data.write(to: file)
        }
    }

    /// Where `found` differs from the old output and from the new one, for a failure message.
    func describe(_ found: [String: Data]?, old: [String: Data], new: [String: Data]) -> String {
        guard let found else { return "nothing" }
        let paths = Set(found.keys).union(old.keys).union(new.keys).sorted()
        return "\(found.count) files; not as in the old output: \(paths.filter { found[$0] != old[$0] }); not as in the new one: \(paths.filter { found[$0] != new[$0] })"
    }

    /// Every temporary or lock file of irm's naming below `directory`, by relative path.
    func irmNamedLeftovers(in directory: URL) throws -> [String] {
        try FileManager.default.subpathsOfDirectory(atPath: directory.path).filter { path in
            let name = (path as NSString).lastPathComponent
            return name.hasPrefix(".irm-tmp-") || name.hasSuffix(".irm-lock")
        }.sorted()
    }

    /// Runs `arguments` to the end (killed after 120 s) and says how long the process ran, polled
    /// each millisecond: waiting for the end would add the wait's own granularity.
    func runToTheEnd(_ arguments: [String]) throws -> (status: Int32, stderr: String, seconds: TimeInterval) {
        let started = Date()
        let run = try RunningCommand(arguments)
        while run.process.isRunning, Date().timeIntervalSince(started) < 120 { usleep(1000) }
        let seconds = Date().timeIntervalSince(started)
        if run.process.isRunning { run.signal(SIGKILL) }
        let end = run.finish()
        return (end.reason == .exit ? end.status : 128 + end.status, end.stderr, seconds)
    }

    /// Writes the old output with `oldRun`, the new one with `newRun` (timed, the reference), then
    /// for each kill point: puts the old output back, starts `newRun`, kills it with SIGKILL there,
    /// checks the target, runs `newRun` again to the end and checks what is left.
    func assertKillsLeaveTheOldOrTheNewOutput(oldRun: [String], newRun: [String], target: URL,
                                              file: StaticString = #filePath, line: UInt = #line) throws {
        let directory = target.deletingLastPathComponent()
        let madeOld = try CommandRunner.run(oldRun, timeout: 120)
        XCTAssertEqual(madeOld.status, 0, madeOld.stderr, file: file, line: line)
        let old = try XCTUnwrap(try output(at: target), file: file, line: line)
        // The shortest uninterrupted run so far (this one, then each run after a kill) sets the
        // delays: a first run is often slower than the next ones.
        let reference = try runToTheEnd(newRun)
        var duration = reference.seconds
        XCTAssertEqual(reference.status, 0, reference.stderr, file: file, line: line)
        let new = try XCTUnwrap(try output(at: target), file: file, line: line)
        // A mix of the two would differ from both only where they differ: they must differ in
        // every file they share, and the old one must have a file the new one lacks.
        for (path, data) in new { XCTAssertNotEqual(old[path], data, "old and new differ in \(path)", file: file, line: line) }
        if new[""] == nil {
            XCTAssertFalse(Set(old.keys).isSubset(of: Set(new.keys)), "the old output has a file the new one does not write", file: file, line: line)
        }
        XCTAssertEqual(try irmNamedLeftovers(in: directory), [], "an uninterrupted run leaves nothing", file: file, line: line)

        var landed: [String] = []
        for point in KillPoint.all {
            try put(old, at: target)
            let run = try RunningCommand(newRun, environment: point.hold.map { [$0.variable: "300"] } ?? [:])
            var held: String? = nil
            if let hold = point.hold {
                let said = try XCTUnwrap(run.waitForStderrLine(containing: hold.line), "\(point): the run reached the hold", file: file, line: line)
                held = String(said.dropFirst(hold.line.count))
            } else if case .after(let fraction) = point {
                Thread.sleep(forTimeInterval: duration * fraction)
            }
            run.signal(SIGKILL)
            let end = run.finish()
            let found = try output(at: target)
            XCTAssertTrue(found == old || found == new, "\(point): the target is the old output or the new one; found \(describe(found, old: old, new: new))",
                          file: file, line: line)
            let left = try irmNamedLeftovers(in: directory)
            let lock = "." + target.lastPathComponent + ".irm-lock"
            switch point {
            case .beforePublishing:
                XCTAssertEqual(end.reason, .uncaughtSignal, "\(point): \(end.stderr)", file: file, line: line)
                XCTAssertEqual(found, old, "\(point): the old output is untouched", file: file, line: line)
                let temporary = URL(fileURLWithPath: try XCTUnwrap(held))
                XCTAssertEqual(try output(at: temporary), new, "\(point): the temporary is the complete new output", file: file, line: line)
                XCTAssertEqual(Set(left), [lock, temporary.lastPathComponent], "\(point)", file: file, line: line)
            case .afterPublishing:
                XCTAssertEqual(end.reason, .uncaughtSignal, "\(point): \(end.stderr)", file: file, line: line)
                XCTAssertEqual(found, new, "\(point): the new output is in place", file: file, line: line)
                let leftover = URL(fileURLWithPath: try XCTUnwrap(held))
                if leftover.path == target.path {
                    XCTAssertEqual(left, [lock], "\(point): a file output leaves only the lock", file: file, line: line)
                } else {
                    XCTAssertEqual(try output(at: leftover), old, "\(point): the old directory, exchanged to a temporary name", file: file, line: line)
                    XCTAssertEqual(Set(left), [lock, leftover.lastPathComponent], "\(point)", file: file, line: line)
                }
            case .after:
                XCTAssertTrue(left.allSatisfy { !$0.contains("/") }, "\(point): nothing of irm's naming inside the target: \(left)", file: file, line: line)
                landed.append("\(point): \(end.reason == .uncaughtSignal ? "killed" : "had ended"), \(found == old ? "old" : "new") output, \(left.count) left")
            }

            let again = try runToTheEnd(newRun)
            duration = min(duration, again.seconds)
            XCTAssertEqual(again.status, 0, "\(point): \(again.stderr)", file: file, line: line)
            for name in left where name.hasPrefix(".irm-tmp-") {
                XCTAssertTrue(again.stderr.contains("/\(name), a temporary file of an irm run that was interrupted"),
                              "\(point): the next run says it removed \(name): \(again.stderr)", file: file, line: line)
            }
            XCTAssertEqual(try irmNamedLeftovers(in: directory), [], "\(point): no temporary or lock file survives the next run", file: file, line: line)
            XCTAssertEqual(try output(at: target), new, "\(point): the next run writes the complete new output", file: file, line: line)
        }
        // Where the delays landed this time, for a reader of the log (never asserted).
        print("InterruptionTests: \(newRun[0]) ran in \(String(format: "%.2f", duration)) s at best; \(landed.joined(separator: "; "))")
    }

    /// The old analysis has other data and a lexicon comparison (lexicon.csv, which the new one
    /// does not write); all of analyze's outputs are deterministic, so every file is compared.
    func testKillingAnalyzeLeavesTheOldOrTheNewAnalysis() throws {
        let dir = try Fixtures.temporaryDirectory(for: self)
        let features = try Fixtures.oneFeatureFile(for: self)
        let oldData = try Fixtures.demoPrompts(6, in: dir, name: "old.jsonl"), newData = try Fixtures.demoPrompts(in: dir, name: "new.jsonl")
        let target = dir.appendingPathComponent("analysis")
        // Not quiet, so that the warnings about removed temporaries are printed.
        func arguments(_ data: String) -> [String] {
            Fixtures.quickAnalyzeArguments(data: data, features: features, out: target.path).filter { $0 != "--quiet" }
        }
        try assertKillsLeaveTheOldOrTheNewOutput(oldRun: arguments(oldData) + ["--lexicon", "vader"], newRun: arguments(newData), target: target)
    }

    /// The old checkpoint is another model's (GPT-2), the new one GPT-NeoX.
    func testKillingConvertLeavesTheOldOrTheNewCheckpoint() throws {
        let dir = try Fixtures.temporaryDirectory(for: self)
        let target = dir.appendingPathComponent("model.h5")
        try assertKillsLeaveTheOldOrTheNewOutput(oldRun: ["convert", Fixtures.path("hf/gpt2"), target.path],
                                                 newRun: ["convert", Fixtures.path("hf/neox"), target.path], target: target)
    }
}
