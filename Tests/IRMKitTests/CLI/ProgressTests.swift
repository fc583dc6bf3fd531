import Foundation
import XCTest
@testable import IRMKit

/// Progress lines: shown with --progress (or on a terminal), silent otherwise; --quiet prints only errors.
final class ProgressTests: XCTestCase {
    final class Captured: @unchecked Sendable {
        var text = ""
        let lock = NSLock()
        func append(_ s: String) { lock.lock(); text += s; lock.unlock() }
    }

    func testProgressLinesAndTheirSilence() {
        let captured = Captured()
        let output = ProgressOutput(enabled: true, write: { captured.append($0) })
        output.stage("scoring")
        let task = output.task("scoring", total: 4)
        task.update(done: 1, tokens: 100)
        task.update(done: 4, tokens: 400)
        task.finish()
        XCTAssertTrue(captured.text.hasPrefix("irm: scoring…\n"), captured.text)
        XCTAssertTrue(captured.text.contains("\rscoring: 1/4"), captured.text)
        XCTAssertTrue(captured.text.contains("ETA"), captured.text)
        XCTAssertTrue(captured.text.contains("\rscoring: 4/4"), captured.text)
        XCTAssertTrue(captured.text.hasSuffix("\n"), captured.text)
        let silent = Captured()
        let off = ProgressOutput(enabled: false, write: { silent.append($0) })
        off.stage("x")
        let quietTask = off.task("x", total: 2)
        quietTask.update(done: 2)
        quietTask.finish()
        XCTAssertEqual(silent.text, "")
        XCTAssertEqual(ProgressOutput.Task.duration(65), "1m05s")
        XCTAssertEqual(ProgressOutput.Task.duration(3725), "1h02m")
    }

    func testAnalyzeProgressAndQuiet() throws {
        let dir = try Fixtures.temporaryDirectory(for: self)
        let model = dir.appendingPathComponent("m.h5").path
        _ = try HuggingFaceImporter.convert(directory: Fixtures.path("trl/llama/before"), output: model)
        let features = try Fixtures.oneFeatureFile(for: self)
        func analyze(_ extra: [String]) throws -> CommandRunner.Result {
            try CommandRunner.run(["analyze", "--before", model, "--after", model, "--data", Fixtures.path("trl/llama/standard.jsonl"),
                                   "--reward", "none", "--features", features, "--bootstrap", "0",
                                   "--out", dir.appendingPathComponent("out-\(extra.joined())").path] + extra)
        }
        let plain = try analyze([])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertEqual(plain.stderr, "", "no progress when stderr is not a terminal")
        XCTAssertFalse(plain.stdout.isEmpty)
        let shown = try analyze(["--progress"])
        XCTAssertEqual(shown.status, 0, shown.stderr)
        XCTAssertTrue(shown.stderr.contains("irm: scoring 16 responses under both policies…"), shown.stderr)
        XCTAssertTrue(shown.stderr.contains("\rscoring: 16/16"), shown.stderr)
        let quiet = try analyze(["--quiet", "--progress"])
        XCTAssertEqual(quiet.status, 0, quiet.stderr)
        XCTAssertEqual(quiet.stdout + quiet.stderr, "", "--quiet prints nothing but errors")
    }
}
