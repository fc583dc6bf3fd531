import Foundation
import XCTest
@testable import IRMKit

/// `irm analyze` end to end on the fixture checkpoints: the files, their determinism, the summary,
/// and bad input.
final class AnalyzeCommandTests: XCTestCase {
    func arguments(_ before: String, _ after: String, _ rm: String, out: String, data: String = Fixtures.path("analysis/pairs.jsonl")) -> [String] {
        ["analyze", "--before", before, "--after", after, "--data", data, "--reward-model", rm, "--beta", "0.5",
         "--bootstrap", "100", "--group-by", "qtype", "--method", "vb", "--out", out,
         "--before-label", "sharp-neox", "--after-label", "sharp-neox-sequential", "--threads", "2"]
    }

    func testWritesEveryOutputDeterministically() throws {
        let before = try ModelFixtures.checkpointPath("logprobs/models/sharp-neox", for: self)
        let after = try ModelFixtures.checkpointPath("logprobs/models/sharp-neox-sequential", for: self)
        let rm = try ModelFixtures.checkpointPath("hf/neox-rm", for: self)
        let dir = try Fixtures.temporaryDirectory(for: self)
        let first = dir.appendingPathComponent("run1").path, second = dir.appendingPathComponent("run2").path

        let run = try CommandRunner.run(arguments(before, after, rm, out: first))
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("implicit"), run.stdout)
        for name in ["report.md", "report.html", "attribution.csv", "samples.csv", "tokens.csv", "divergence.json", "manifest.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: first + "/" + name), name)
        }
        // attribution.csv has the columns the issue asks for, and one block per target.
        let attribution = try String(contentsOfFile: first + "/attribution.csv", encoding: .utf8)
        let header = try XCTUnwrap(attribution.split(separator: "\n").first).split(separator: ",").map(String.init)
        for column in ["target", "feature", "coef", "std_err", "hc3_std_err", "t", "p_value", "ci_low", "ci_high", "std_coef", "lmg_share"] {
            XCTAssertTrue(header.contains(column), column)
        }
        for target in ["implicit_reward", "reward_model", "difference", "gold"] {
            XCTAssertTrue(attribution.contains("\n\(target),"), target)
        }
        // samples.csv: a header and 120 rows.
        let samples = try String(contentsOfFile: first + "/samples.csv", encoding: .utf8)
        XCTAssertEqual(samples.split(separator: "\n").count, 121)
        // The manifest records the inputs' SHA-256.
        let manifest = try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: first + "/manifest.json")), source: "manifest")
        let inputs = try XCTUnwrap(manifest["inputs"]?.arrayValue)
        XCTAssertEqual(inputs.count, 4)
        XCTAssertEqual(inputs[2]["sha256"]?.stringValue, SHA256.hex(try Data(contentsOf: Fixtures.url("analysis/pairs.jsonl"))))
        // The report names the formula and β.
        let report = try String(contentsOfFile: first + "/report.md", encoding: .utf8)
        XCTAssertTrue(report.contains("0.5"), "β in the report")
        XCTAssertFalse(report.lowercased().contains("nan"), "no NaN in the report")

        // Same inputs, same options: byte-identical files.
        let again = try CommandRunner.run(arguments(before, after, rm, out: second))
        XCTAssertEqual(again.status, 0, again.stderr)
        let names = try FileManager.default.subpathsOfDirectory(atPath: first).sorted()
        XCTAssertEqual(names, try FileManager.default.subpathsOfDirectory(atPath: second).sorted())
        for name in names {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: first + "/" + name, isDirectory: &isDirectory), isDirectory.boolValue { continue }
            XCTAssertEqual(FileManager.default.contents(atPath: first + "/" + name), FileManager.default.contents(atPath: second + "/" + name), name)
        }
    }

    /// The thread count changes no output: the demo's first 30 prompts, with the reward model, the
    /// lexicon and a bootstrap, at 1, 2 and 3 threads give the same bytes in every file, except
    /// that the manifest records the thread count (`blas.threads`).
    func testOutputsDoNotDependOnTheThreadCount() throws {
        let dir = try Fixtures.temporaryDirectory(for: self)
        let data = try Fixtures.demoPrompts(30, in: dir)
        var outputs: [Int: [String: Data]] = [:]
        for threads in [1, 2, 3] {
            let out = dir.appendingPathComponent("threads-\(threads)")
            let run = try CommandRunner.run(["analyze", "--before", Fixtures.demo("base.h5"), "--after", Fixtures.demo("rlhf.h5"), "--data", data,
                                             "--reward-model", Fixtures.demo("rm.h5"), "--lexicon", "vader", "--convention", "separate",
                                             "--bootstrap", "50", "--no-store", "--quiet", "--threads", "\(threads)", "--out", out.path])
            XCTAssertEqual(run.status, 0, run.stderr)
            var files = try Fixtures.files(in: out)
            let manifest = try JSONValue.parse(XCTUnwrap(files["manifest.json"]), source: "manifest.json")
            XCTAssertEqual(manifest["blas"]?["threads"]?.intValue, threads)
            var fields = try XCTUnwrap(manifest.objectValue), blas = try XCTUnwrap(manifest["blas"]?.objectValue)
            blas["threads"] = nil
            fields["blas"] = .object(blas)
            files["manifest.json"] = Data(JSONValue.object(fields).serialized(pretty: true).utf8)
            outputs[threads] = files
        }
        let one = try XCTUnwrap(outputs[1])
        XCTAssertGreaterThan(one.count, 10)
        for threads in [2, 3] {
            let other = try XCTUnwrap(outputs[threads])
            XCTAssertEqual(Set(other.keys), Set(one.keys))
            for (name, bytes) in one.sorted(by: { $0.key < $1.key }) {
                XCTAssertTrue(other[name] == bytes, "\(name) differs between 1 and \(threads) threads")
            }
        }
    }

    func testBadInputIsOneLineAndWritesNothing() throws {
        let before = try ModelFixtures.checkpointPath("logprobs/models/sharp-neox", for: self)
        let after = try ModelFixtures.checkpointPath("logprobs/models/sharp-neox-sequential", for: self)
        let rm = try ModelFixtures.checkpointPath("hf/neox-rm", for: self)
        let dir = try Fixtures.temporaryDirectory(for: self)

        // --out is a regular file.
        let file = dir.appendingPathComponent("taken")
        try Data("x".utf8).write(to: file)
        var run = try CommandRunner.run(arguments(before, after, rm, out: file.path))
        XCTAssertEqual(run.status, 1)
        XCTAssertTrue(run.stderr.hasPrefix("irm: error: --out"), run.stderr)
        XCTAssertEqual(run.stderr.split(separator: "\n").count, 1, run.stderr)

        // A malformed data line: the line number, and no output directory.
        let bad = dir.appendingPathComponent("bad.jsonl")
        var lines = try String(contentsOf: Fixtures.url("analysis/pairs.jsonl"), encoding: .utf8).split(separator: "\n").map(String.init)
        lines[6] = "{\"prompt\": \"x\", \"response\": 3}"
        try (lines.joined(separator: "\n") + "\n").write(to: bad, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("never").path
        run = try CommandRunner.run(arguments(before, after, rm, out: out, data: bad.path))
        XCTAssertEqual(run.status, 1)
        XCTAssertTrue(run.stderr.contains("line 7"), run.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))

        // Two reward sources.
        run = try CommandRunner.run(arguments(before, after, rm, out: out) + ["--reward", "vader-utility"])
        XCTAssertNotEqual(run.status, 0)
        XCTAssertTrue(run.stderr.contains("at most one of"), run.stderr)
    }
}
