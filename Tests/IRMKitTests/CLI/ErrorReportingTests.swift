import Foundation
import XCTest
@testable import IRMKit

/// What `irm: error:` lines quote from input files cannot drive the terminal or split the line.
final class ErrorReportingTests: XCTestCase {
    func testControlBytesFromAnInputFileAreEscapedInTheErrorLine() throws {
        let dir = try Fixtures.temporaryDirectory(for: self)
        var json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.url("tokenizers/gpt2.tokenizer.json"))) as? [String: Any])
        var model = try XCTUnwrap(json["model"] as? [String: Any])
        var merges = try XCTUnwrap(model["merges"] as? [Any])
        merges[0] = ["\u{1B}[2J\u{0B}x\ny", "t"]
        model["merges"] = merges
        json["model"] = model
        let path = dir.appendingPathComponent("tokenizer.json")
        try JSONSerialization.data(withJSONObject: json).write(to: path)

        let run = try CommandRunner.run(["tokenize", "--tokenizer", path.path, "--text", "hi"])
        XCTAssertEqual(run.status, 1, run.stderr)
        XCTAssertTrue(run.stderr.hasPrefix("irm: error: "), run.stderr)
        XCTAssertTrue(run.stderr.contains("\\u{1B}[2J\\u{B}x\\ny"), run.stderr)
        XCTAssertFalse(run.stderr.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x0B }, run.stderr)
        XCTAssertEqual(run.stderr.split(separator: "\n", omittingEmptySubsequences: false), [Substring(run.stderr.dropLast()), ""],
                       "one line, ended by its line feed")
    }
}
