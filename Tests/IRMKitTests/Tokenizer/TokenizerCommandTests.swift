import Foundation
import XCTest
@testable import IRMKit

/// `irm tokenize`: its core in IRMKit (records in, JSON lines out) and the command as a user runs it.
final class TokenizerCommandTests: XCTestCase {
    func testTextGivesOneJSONLineWithIdsTokensAndOffsets() throws {
        let tokenizer = try TokenizerParityTests.loadTokenizer("gpt2")
        let line = TokenizationJSONLines.line(for: .text("Hello world"), tokenizer: tokenizer, addSpecialTokens: true)
        XCTAssertEqual(line, #"{"ids":[15496,995],"offsets":[[0,5],[5,11]],"tokens":["Hello","Ġworld"]}"#)
    }

    func testPromptAndResponseShowTheBoundary() throws {
        let tokenizer = try TokenizerParityTests.loadTokenizer("llama2-style")
        let line = TokenizationJSONLines.line(for: .promptResponse(prompt: "Hi", response: " there"), tokenizer: tokenizer,
                                              addSpecialTokens: true)
        let json = try JSONValue.parse(line, source: "line")
        let promptIDs = json["prompt"]?["ids"]?.arrayValue?.compactMap(\.intValue) ?? []
        let responseIDs = json["response"]?["ids"]?.arrayValue?.compactMap(\.intValue) ?? []
        XCTAssertEqual(promptIDs.first, 1, "the prompt starts with <s>")
        XCTAssertEqual(promptIDs, tokenizer.encode("Hi").ids.map(Int.init))
        XCTAssertEqual(responseIDs, tokenizer.encode(" there", addSpecialTokens: false).ids.map(Int.init))
        XCTAssertFalse(responseIDs.contains(1), "the response has no <s>")
        let noSpecial = TokenizationJSONLines.line(for: .text("Hi"), tokenizer: tokenizer, addSpecialTokens: false)
        XCTAssertFalse(noSpecial.contains("\"<s>\""), noSpecial)
    }

    func testJSONLRecordsAndTheirErrors() throws {
        let records = try TokenizationJSONLines.records(
            fromJSONL: "{\"text\": \"a\"}\n\n{\"prompt\": \"p\", \"response\": \"r\", \"id\": 3}\n", source: "in.jsonl")
        XCTAssertEqual(records, [.text("a"), .promptResponse(prompt: "p", response: "r")])
        XCTAssertThrowsError(try TokenizationJSONLines.records(fromJSONL: "{\"text\": \"a\"}\n{\"prompt\": \"p\"}", source: "in.jsonl")) {
            XCTAssertEqual("\($0)", "in.jsonl: line 2: expected an object with a string \"text\", or strings \"prompt\" and \"response\"; found an object with 1 keys")
        }
        XCTAssertThrowsError(try TokenizationJSONLines.records(fromJSONL: "{\"text\": ", source: "in.jsonl")) {
            XCTAssertTrue("\($0)".hasPrefix("in.jsonl: line 1: malformed JSON"), "\($0)")
        }
        XCTAssertThrowsError(try TokenizationJSONLines.loadTokenizer(jsonPath: "/nonexistent/tokenizer.json")) {
            XCTAssertTrue("\($0)".hasPrefix("/nonexistent/tokenizer.json: cannot read"), "\($0)")
        }
    }

    func testBenchmarkCountsBytesAndTokens() throws {
        let tokenizer = try TokenizerParityTests.loadTokenizer("gpt2")
        let result = TokenizationJSONLines.benchmark([.text("Hello world"), .promptResponse(prompt: "a", response: " b")],
                                                     tokenizer: tokenizer, addSpecialTokens: true)
        XCTAssertEqual(result.byteCount, 14)
        XCTAssertEqual(result.tokenCount, 4)
    }

    /// The command itself, once it is registered in IRM.swift's subcommands.
    func testCommandPrintsJSONLines() throws {
        let help = try CommandRunner.run(["tokenize", "--help"])
        guard help.status == 0, help.stdout.contains("irm tokenize") else {
            throw XCTSkip("`irm tokenize` is not registered yet: add TokenizeCommand.self to IRM.swift's subcommands")
        }
        let dir = try Fixtures.temporaryDirectory(for: self)
        let input = dir.appendingPathComponent("in.jsonl")
        try Data("{\"text\": \"Hello world\"}\n{\"prompt\": \"Hi\", \"response\": \" there\"}\n".utf8).write(to: input)
        let tokenizerPath = Fixtures.path("tokenizers/gpt2.tokenizer.json")
        let fromFile = try CommandRunner.run(["tokenize", "--tokenizer", tokenizerPath, "--file", input.path])
        XCTAssertEqual(fromFile.status, 0, fromFile.stderr)
        let lines = fromFile.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
        XCTAssertEqual(lines.first.map(String.init), #"{"ids":[15496,995],"offsets":[[0,5],[5,11]],"tokens":["Hello","Ġworld"]}"#)
        XCTAssertTrue(lines.last?.hasPrefix("{\"prompt\":") ?? false, fromFile.stdout)

        let fromText = try CommandRunner.run(["tokenize", "--tokenizer", tokenizerPath, "--text", "Hello world", "--no-special"])
        XCTAssertEqual(fromText.stdout, #"{"ids":[15496,995],"offsets":[[0,5],[5,11]],"tokens":["Hello","Ġworld"]}"# + "\n")

        let bad = try CommandRunner.run(["tokenize", "--tokenizer", "/nonexistent.json", "--text", "x"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.hasPrefix("irm: error: /nonexistent.json: cannot read"), bad.stderr)
    }
}
