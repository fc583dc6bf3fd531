import Foundation
import XCTest
@testable import IRMKit

/// The score store as a user meets it: a second run reads instead of scoring, a run killed with
/// SIGKILL and started again completes with outputs identical to an uninterrupted run, and a
/// damaged block is recomputed with a warning.
final class StoreCommandTests: XCTestCase {
    func demo(_ name: String) -> String { Fixtures.repositoryPath("checkpoints/demo/\(name)") }

    func analyzeArguments(out: URL, store: URL?) -> [String] {
        ["analyze", "--before", demo("base.h5"), "--after", demo("rlhf.h5"), "--data", demo("prompts.jsonl"),
         "--reward-model", demo("rm.h5"), "--convention", "separate", "--bootstrap", "20", "--out", out.path, "--quiet"]
            + (store.map { ["--store", $0.path] } ?? ["--no-store"])
    }

    func files(_ directory: URL) throws -> [String: Data] {
        var out: [String: Data] = [:]
        let enumerator = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: nil)
        while let url = enumerator?.nextObject() as? URL {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            out[String(url.path.dropFirst(directory.path.count))] = try Data(contentsOf: url)
        }
        return out
    }

    /// The file without the lines that report the score store's repairs.
    func withoutStoreWarnings(_ data: Data) -> Data {
        guard let text = String(data: data, encoding: .utf8), text.contains("score store: ") else { return data }
        return Data(text.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.contains("score store: ") }
            .joined(separator: "\n").utf8)
    }

    func blockFiles(_ store: URL) -> [URL] {
        let enumerator = FileManager.default.enumerator(at: store, includingPropertiesForKeys: nil)
        var found: [URL] = []
        while let url = enumerator?.nextObject() as? URL {
            if url.lastPathComponent.hasPrefix("block-") && url.pathExtension == "h5" { found.append(url) }
        }
        return found.sorted { $0.path < $1.path }
    }

    func testKilledRunResumesToTheSameOutputs() throws {
        let work = try Fixtures.temporaryDirectory(for: self)
        let reference = work.appendingPathComponent("reference")
        let plain = try CommandRunner.run(analyzeArguments(out: reference, store: nil))
        XCTAssertEqual(plain.status, 0, plain.stderr)

        // Kill a run once it has committed its first block, then run it again.
        let store = work.appendingPathComponent("store")
        let killed = work.appendingPathComponent("killed")
        let process = Process()
        process.executableURL = CommandRunner.executable
        process.arguments = analyzeArguments(out: killed, store: store)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(120)
        while blockFiles(store).isEmpty && process.isRunning && Date() < deadline { usleep(20_000) }
        let committedBeforeKill = blockFiles(store).count
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        XCTAssertGreaterThan(committedBeforeKill, 0, "the run committed a block before it was killed")
        XCTAssertEqual(process.terminationReason, .uncaughtSignal, "the run was killed, not finished")
        XCTAssertFalse(FileManager.default.fileExists(atPath: killed.appendingPathComponent("report.md").path), "a killed run writes no report")

        let resumed = try CommandRunner.run(analyzeArguments(out: killed, store: store))
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        // Byte for byte, but for the store's own warnings: a write the kill interrupted leaves a
        // temporary file, which the resumed run removes and reports.
        XCTAssertEqual(try files(killed).mapValues(withoutStoreWarnings), try files(reference).mapValues(withoutStoreWarnings),
                       "resumed outputs equal an uninterrupted run's")

        // Everything is in the store now: a run with other fit options reads it. A damaged block
        // is reported and recomputed, with the same results.
        let blocks = blockFiles(store)
        XCTAssertGreaterThanOrEqual(blocks.count, 4 * 3, "log-probs of both policies, KL and the reward model, 3 blocks each")
        // A log-prob block: the base's final hidden states are read only when a comparison must be
        // computed, so damage there would go unread by this run.
        let victim = try XCTUnwrap(blocks.first { $0.deletingLastPathComponent().lastPathComponent.hasPrefix("logprobs-") })
        let bytes = try Data(contentsOf: victim)
        try bytes.prefix(bytes.count / 2).write(to: victim)
        let again = work.appendingPathComponent("again")
        let repaired = try CommandRunner.run(analyzeArguments(out: again, store: store))
        XCTAssertEqual(repaired.status, 0, repaired.stderr)
        // The numbers are the same; the documents also carry the store's warning.
        let expected = try files(reference), found = try files(again)
        for name in ["/samples.csv", "/attribution.csv", "/tokens.csv"] { XCTAssertEqual(found[name], expected[name], name) }
        XCTAssertEqual(try Data(contentsOf: victim), bytes, "the damaged block was recomputed to the same bytes")
        let report = try String(contentsOf: again.appendingPathComponent("report.md"), encoding: .utf8)
        XCTAssertTrue(report.contains("score store: "), "the damaged block is reported in the warnings")
    }

    func testStoreOptionsAreExclusive() throws {
        let out = try Fixtures.temporaryDirectory(for: self).appendingPathComponent("x")
        let result = try CommandRunner.run(analyzeArguments(out: out, store: nil) + ["--store", "/tmp/s"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("give --store or --no-store, not both"), result.stderr)
    }
}
