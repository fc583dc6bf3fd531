import Foundation
import XCTest
@testable import IRMKit

/// `irm score` as a user runs it, on pre-tokenised fixture data (the text path needs the tokenizer).
final class ScoreCommandTests: XCTestCase {
    func writeData(_ lines: [String], in dir: URL) throws -> String {
        let path = dir.appendingPathComponent("data.jsonl").path
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func idsLine(_ sample: LogProbFixture.Sample, extra: String = "") -> String {
        "{\"id\": \"\(sample.id)\", \"prompt_ids\": \(sample.promptIds), \"response_ids\": \(sample.responseIds)\(extra)}"
    }

    func readLines(_ path: String) throws -> [JSONValue] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { try JSONValue.parse(String($0), source: path) }
    }

    func testPolicyScoresMatchTheReference() throws {
        let dir = try Fixtures.temporaryDirectory(for: self)
        let fixture = try LogProbFixture.load("sharp-llama")
        let model = try ModelFixtures.checkpointPath(fixture.modelDir, for: self)
        let pair = fixture.samples.prefix(2)
        let data = try writeData(fixture.samples.map { idsLine($0) } + [
            "{\"id\": \"pref\", \"prompt_ids\": \(pair.first!.promptIds), \"chosen_ids\": \(pair.first!.responseIds), \"rejected_ids\": \(pair.last!.responseIds)}",
        ], in: dir)
        let out = dir.appendingPathComponent("scores.jsonl").path
        let result = try CommandRunner.run(["score", "--model", model, "--data", data, "--out", out])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stderr, "", "quiet when stderr is not a terminal")
        let lines = try readLines(out)
        XCTAssertEqual(lines.count, fixture.samples.count + 2)
        for (line, expected) in zip(lines, fixture.samples) {
            XCTAssertEqual(line["id"]?.stringValue, expected.id)
            XCTAssertEqual(line["prompt_ids"]?.arrayValue?.compactMap(\.intValue), expected.promptIds.map(Int.init))
            let logprobs = try XCTUnwrap(line["logprobs"]?.arrayValue).map { $0.doubleValue ?? .nan }
            assertClose(logprobs, withMissingAsNaN(try XCTUnwrap(expected.logprobs)), absolute: 1e-4, expected.id)
            assertClose(try XCTUnwrap(line["logprob_sum"]?.doubleValue), try XCTUnwrap(expected.logprobSum), absolute: 1e-3)
            XCTAssertEqual(line["logprob_mean"]?.isNull, expected.logprobMean == nil)
        }
        XCTAssertEqual(lines[fixture.samples.count]["role"]?.stringValue, "chosen")
        XCTAssertEqual(lines[fixture.samples.count + 1]["role"]?.stringValue, "rejected")
        XCTAssertEqual(lines[fixture.samples.count + 1]["id"]?.stringValue, "pref")

        // Same input, same output, byte for byte.
        let again = dir.appendingPathComponent("again.jsonl").path
        XCTAssertEqual(try CommandRunner.run(["score", "--model", model, "--data", data, "--out", again]).status, 0)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out)), try Data(contentsOf: URL(fileURLWithPath: again)))
    }

    /// Text in, through the checkpoint's own tokenizer: the ids are the ones transformers'
    /// tokenizer produced for the fixture (BOS on the prompt only, for Llama), and the scores match.
    func testTextIsTokenisedByTheCheckpointsTokenizer() throws {
        let dir = try Fixtures.temporaryDirectory(for: self)
        for name in ["sharp-llama", "sharp-gpt2", "sharp-qwen2"] {
            let fixture = try LogProbFixture.load(name)
            let model = try ModelFixtures.checkpointPath(fixture.modelDir, for: self)
            let lines = fixture.samples.map { sample -> String in
                var line = "{\"id\": "
                JSONValue.writeString(sample.id, into: &line)
                line += ", \"prompt\": "
                JSONValue.writeString(sample.prompt, into: &line)
                line += ", \"response\": "
                JSONValue.writeString(sample.response, into: &line)
                return line + "}"
            }
            let data = try writeData(lines, in: dir)
            let out = dir.appendingPathComponent("\(name).jsonl").path
            // The fixtures tokenise prompt and response apart (make_logprob_fixtures.py).
            let result = try CommandRunner.run(["score", "--model", model, "--data", data, "--out", out, "--convention", "separate"])
            XCTAssertEqual(result.status, 0, result.stderr)
            for (line, expected) in zip(try readLines(out), fixture.samples) {
                XCTAssertEqual(line["prompt_ids"]?.arrayValue?.compactMap(\.intValue), expected.promptIds.map(Int.init), "\(name) \(expected.id)")
                XCTAssertEqual(line["response_ids"]?.arrayValue?.compactMap(\.intValue), expected.responseIds.map(Int.init), "\(name) \(expected.id)")
                let logprobs = try XCTUnwrap(line["logprobs"]?.arrayValue).map { $0.doubleValue ?? .nan }
                assertClose(logprobs, withMissingAsNaN(try XCTUnwrap(expected.logprobs)), absolute: 1e-4, "\(name) \(expected.id)")
            }
        }
    }

    func testRewardModelAndReferenceComparison() throws {
        let dir = try Fixtures.temporaryDirectory(for: self)
        let fixture = try LogProbFixture.load("qwen2-rm")
        let data = try writeData(fixture.samples.map { idsLine($0) }, in: dir)
        let out = dir.appendingPathComponent("rm.jsonl").path
        let rm = try ModelFixtures.checkpointPath(fixture.modelDir, for: self)
        let result = try CommandRunner.run(["score", "--model", rm, "--data", data, "--out", out])
        XCTAssertEqual(result.status, 0, result.stderr)
        for (line, expected) in zip(try readLines(out), fixture.samples) {
            assertClose(try XCTUnwrap(line["score"]?.doubleValue), try XCTUnwrap(expected.score?.first), absolute: 1e-4)
            XCTAssertNil(line["logprobs"])
        }

        let pair = try XCTUnwrap(try KLFixture.load().pairs.first { $0.after == "sharp-qwen2" })
        let klData = try writeData(pair.samples.map { "{\"id\": \"\($0.id)\", \"prompt_ids\": \($0.promptIds), \"response_ids\": \($0.responseIds)}" }, in: dir)
        let klOut = dir.appendingPathComponent("kl.jsonl").path
        let compared = try CommandRunner.run(["score", "--model", ModelFixtures.checkpointPath(pair.afterDir, for: self),
                                              "--reference", ModelFixtures.checkpointPath(pair.beforeDir, for: self),
                                              "--data", klData, "--out", klOut, "--threads", "1"])
        XCTAssertEqual(compared.status, 0, compared.stderr)
        for (line, expected) in zip(try readLines(klOut), pair.samples) {
            let kl = try XCTUnwrap(line["kl"]?.arrayValue).map { $0.doubleValue ?? .nan }
            assertClose(kl, withMissingAsNaN(expected.kl), absolute: 1e-4, expected.id)
            let reference = try XCTUnwrap(line["reference_logprobs"]?.arrayValue).map { $0.doubleValue ?? .nan }
            assertClose(reference, withMissingAsNaN(expected.logprobsBefore), absolute: 1e-4, expected.id)
        }

        // A reward model as the reference is refused, and no output appears.
        let refused = dir.appendingPathComponent("refused.jsonl").path
        let bad = try CommandRunner.run(["score", "--model", ModelFixtures.checkpointPath("hf/qwen2", for: self), "--reference", rm,
                                         "--data", data, "--out", refused])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.hasPrefix("irm: error: \(rm): is a reward model; --reference needs a policy"), bad.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: refused))
    }

    func testBadInputIsReportedInOneLineAndWritesNothing() throws {
        let dir = try Fixtures.temporaryDirectory(for: self)
        let model = try ModelFixtures.checkpointPath("hf/gpt2", for: self)
        let out = dir.appendingPathComponent("scores.jsonl").path
        let cases: [([String], String)] = [
            (["{\"prompt_ids\": [1], \"response_ids\": [2]}", "{\"prompt_ids\": [1]}"], "data.jsonl: line 2: missing \"response\""),
            (["{\"id\": \"big\", \"prompt_ids\": [1], \"response_ids\": [2, 400]}"], "line 1 (id \"big\"): token id 400 at response position 1 is outside the model's vocabulary (ids 0..<320)"),
            (["{\"id\": \"long\", \"prompt_ids\": \(Array(repeating: 1, count: 510)), \"response_ids\": [2, 3, 4, 5]}"], "510 + 4), 2 more than the model's context of 512 positions"),
        ]
        for (lines, fragment) in cases {
            let data = try writeData(lines, in: dir)
            let result = try CommandRunner.run(["score", "--model", model, "--data", data, "--out", out])
            XCTAssertEqual(result.status, 1, fragment)
            XCTAssertTrue(result.stderr.hasPrefix("irm: error: "), result.stderr)
            XCTAssertTrue(result.stderr.contains(fragment), "missing «\(fragment)» in \(result.stderr)")
            XCTAssertEqual(result.stderr.filter { $0 == "\n" }.count, 1, "one line: \(result.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        }
    }
}
