import Foundation
import XCTest
@testable import IRMKit

/// Reading prompt/response JSONL (Sources/IRMKit/Analysis/Samples.swift).
final class SampleFileTests: XCTestCase {
    func parse(_ text: String) throws -> [Sample] {
        try SampleFile.parse(Data(text.utf8), source: "data.jsonl")
    }

    func testPlainPairsAndPreferencePairs() throws {
        let samples = try parse("""
            {"id": "a", "prompt": "Hi", "response": " there"}

            {"prompt": "Q", "chosen": " yes", "rejected": " no", "id": 7, "extra": 1}\r
            {"prompt_ids": [1, 2], "response_ids": [3], "prompt": "x"}
            """)
        XCTAssertEqual(samples.count, 4)
        XCTAssertEqual(samples[0].id, "a")
        XCTAssertNil(samples[0].role)
        XCTAssertEqual(samples[0].response, " there")
        XCTAssertEqual(samples[1].id, "7")
        XCTAssertEqual(samples[1].role, .chosen)
        XCTAssertEqual(samples[1].response, " yes")
        XCTAssertEqual(samples[2].role, .rejected)
        XCTAssertEqual(samples[2].response, " no")
        XCTAssertEqual(samples[2].line, 3)
        XCTAssertEqual(samples[2].fields["extra"], .int(1))
        XCTAssertEqual(samples[3].id, "line-4")
        XCTAssertEqual(samples[3].promptIDs, [1, 2])
        XCTAssertEqual(samples[3].responseIDs, [3])
        XCTAssertEqual(samples[1].label, "line 3 (id \"7\", chosen)")
    }

    func testPerResponseFieldsOfPreferenceLines() throws {
        let samples = try parse("""
            {"prompt": "Q", "chosen": " yes", "rejected": " no", "gold": 0.5, "chosen_gold": 2, "qtype": "open", "chosen_len": 3, "rejected_len": 1.5, "shared": 7, "rejected_gold": null}
            {"prompt": "Q2", "response": " ok", "gold": 1, "chosen_gold": 9}
            """)
        // chosen_gold wins for the chosen side; the rejected side has a null override, so it falls
        // back to the shared value.
        XCTAssertEqual(samples[0].field("gold"), .int(2))
        XCTAssertEqual(samples[1].field("gold"), .double(0.5))
        XCTAssertEqual(samples[1].field("qtype"), .string("open"))
        XCTAssertNil(samples[0].field("missing"))
        // A plain response line has no side, so chosen_gold is just another field.
        XCTAssertEqual(samples[2].field("gold"), .int(1))
        XCTAssertEqual(samples[0].numericFields, ["gold": 2, "len": 3, "shared": 7])
        XCTAssertEqual(samples[1].numericFields, ["gold": 0.5, "len": 1.5, "shared": 7])
        XCTAssertEqual(samples[2].numericFields, ["gold": 1, "chosen_gold": 9])
    }

    func testBadLinesAreReportedWithTheirLineNumbers() {
        let text = """
            {"prompt": "a", "response": "b", "id": "x"}
            {"prompt": "a"}
            not json
            {"prompt": "a", "response": 3}
            {"prompt": "a", "chosen": "b"}
            {"prompt": "a", "response": "b", "id": "x"}
            {"prompt": "a", "response": "b", "chosen": "c", "rejected": "d"}
            {"prompt_ids": [1, -2], "response": "b"}
            """
        XCTAssertThrowsError(try parse(text)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("data.jsonl: line 2: missing \"response\" (or \"chosen\" and \"rejected\")"), message)
            XCTAssertTrue(message.contains("data.jsonl: line 3: malformed JSON at column 1"), message)
            XCTAssertTrue(message.contains("data.jsonl: line 4: \"response\" should be a string, found 3"), message)
            XCTAssertTrue(message.contains("4 more bad lines (5, 6, 7, 8)"), message)
        }
        XCTAssertThrowsError(try parse("{\"prompt\": \"a\", \"response\": \"b\", \"id\": \"x\"}\n{\"prompt\": \"c\", \"response\": \"d\", \"id\": \"x\"}")) {
            XCTAssertTrue("\($0)".contains("line 2: duplicate id \"x\" (first used on line 1)"), "\($0)")
        }
        XCTAssertThrowsError(try parse("\n\n")) { XCTAssertTrue("\($0)".contains("no samples"), "\($0)") }
    }
}
