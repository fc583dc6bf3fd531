import Foundation
import XCTest
@testable import IRMKit

/// Reading data files and their formats (Sources/IRMKit/DataInput).
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
        XCTAssertEqual(samples[0].response, .text(" there"))
        XCTAssertEqual(samples[1].id, "7")
        XCTAssertEqual(samples[1].role, .chosen)
        XCTAssertEqual(samples[1].response, .text(" yes"))
        XCTAssertEqual(samples[2].role, .rejected)
        XCTAssertEqual(samples[2].response, .text(" no"))
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
            XCTAssertTrue(message.contains("data.jsonl: line 2: missing \"response\" (or \"chosen\" and \"rejected\", or \"completion\")"), message)
            XCTAssertTrue(message.contains("data.jsonl: line 3: malformed JSON at column 1"), message)
            XCTAssertTrue(message.contains("data.jsonl: line 4: \"response\" should be a string or a list of messages, found 3"), message)
            XCTAssertTrue(message.contains("4 more bad lines (5, 6, 7, 8)"), message)
        }
        XCTAssertThrowsError(try parse("{\"prompt\": \"a\", \"response\": \"b\", \"id\": \"x\"}\n{\"prompt\": \"c\", \"response\": \"d\", \"id\": \"x\"}")) {
            XCTAssertTrue("\($0)".contains("line 2: duplicate id \"x\" (first used on line 1)"), "\($0)")
        }
        XCTAssertThrowsError(try parse("\n\n")) { XCTAssertTrue("\($0)".contains("no samples"), "\($0)") }
    }

    // MARK: Formats

    func testTRLImplicitPromptFollowsExtractPrompt() throws {
        // The common start, less the space that ends it (trl.data_utils.extract_prompt).
        let samples = try parse(#"{"chosen": "The sky is blue.", "rejected": "The sky is green."}"#)
        XCTAssertEqual(samples[0].format, .implicitPrompt)
        XCTAssertEqual(samples[0].prompt, .text("The sky is"))
        XCTAssertEqual(samples[0].response, .text(" blue."))
        XCTAssertEqual(samples[1].response, .text(" green."))
        // One a prefix of the other: Python's loop stops one character short.
        let prefix = try parse(#"{"chosen": "abc", "rejected": "abcd"}"#)
        XCTAssertEqual(prefix[0].prompt, .text("ab"))
        XCTAssertEqual(prefix[0].response, .text("c"))
        XCTAssertEqual(prefix[1].response, .text("cd"))
    }

    func testHHRLHFTranscriptsSplitAtTheLastAssistantTurn() throws {
        let line = #"{"chosen": "\n\nHuman: Hi there\n\nAssistant: Hello!\n\nHuman: How are you?\n\nAssistant: Fine, thanks.", "rejected": "\n\nHuman: Hi there\n\nAssistant: Hello!\n\nHuman: How are you?\n\nAssistant: Go away."}"#
        let samples = try parse(line)
        XCTAssertEqual(samples[0].format, .hhTranscript)
        XCTAssertEqual(samples[0].prompt, .text("\n\nHuman: Hi there\n\nAssistant: Hello!\n\nHuman: How are you?\n\nAssistant:"))
        XCTAssertEqual(samples[0].response, .text(" Fine, thanks."))
        XCTAssertEqual(samples[1].response, .text(" Go away."))
        // Features see the turns without the markers.
        XCTAssertEqual(samples[0].promptText, "Hi there\n\nHello!\n\nHow are you?")
        XCTAssertEqual(samples[1].responseText, "Go away.")
    }

    func testConversationalAndMessagePairs() throws {
        let conversational = try parse(#"{"prompt": [{"role": "user", "content": "Sky?"}], "chosen": [{"role": "assistant", "content": "Blue."}], "rejected": [{"role": "assistant", "content": "Green."}]}"#)
        XCTAssertEqual(conversational[0].format, .conversational)
        XCTAssertEqual(conversational[0].promptText, "Sky?")
        XCTAssertEqual(conversational[1].responseText, "Green.")
        // Two whole conversations: the prompt is the messages they share.
        let pairs = try parse(#"{"chosen": [{"role": "user", "content": "Sky?"}, {"role": "assistant", "content": "Blue."}], "rejected": [{"role": "user", "content": "Sky?"}, {"role": "assistant", "content": "Green."}]}"#)
        XCTAssertEqual(pairs[0].format, .messagePairs)
        guard case .messages(let prompt)? = pairs[0].prompt, case .messages(let chosen)? = pairs[0].response else {
            return XCTFail("expected messages")
        }
        XCTAssertEqual(prompt.count, 1)
        XCTAssertEqual(chosen.count, 1)
        XCTAssertEqual(pairs[1].responseText, "Green.")
        // UltraFeedback: a text prompt beside conversational responses is ignored (maybe_extract_prompt),
        // and score_chosen / score_rejected are the per-response rewards.
        let ultra = try parse(#"{"prompt": "Sky?", "chosen": [{"role": "user", "content": "Sky?"}, {"role": "assistant", "content": "Blue."}], "rejected": [{"role": "user", "content": "Sky?"}, {"role": "assistant", "content": "Green."}], "score_chosen": 8.5, "score_rejected": 3}"#)
        XCTAssertEqual(ultra[0].format, .messagePairs)
        XCTAssertEqual(ultra[0].field("reward"), .double(8.5))
        XCTAssertEqual(ultra[1].field("reward"), .int(3))
    }

    func testUnpairedPromptCompletionInBothForms() throws {
        let samples = try parse("""
            {"prompt": "The sky is", "completion": " blue.", "label": true}
            {"prompt": [{"role": "user", "content": "Sky?"}], "completion": [{"role": "assistant", "content": "Blue."}]}
            """)
        XCTAssertEqual(samples[0].format, .promptCompletion)
        XCTAssertNil(samples[0].role)
        XCTAssertEqual(samples[0].response, .text(" blue."))
        XCTAssertEqual(samples[1].format, .conversationalCompletion)
        XCTAssertEqual(samples[1].responseText, "Blue.")
        XCTAssertThrowsError(try parse(#"{"prompt": [{"role": "user", "content": "Sky?"}], "completion": " blue"}"#)) {
            XCTAssertTrue("\($0)".contains("line 1: \"prompt\" is a list of messages but \"completion\" is text"), "\($0)")
        }
        XCTAssertThrowsError(try parse(#"{"prompt": "Q", "chosen": [{"content": "x"}], "rejected": [{"role": "assistant", "content": "y"}]}"#)) {
            XCTAssertTrue("\($0)".contains("line 1: \"chosen\"[0] has no \"role\" string"), "\($0)")
        }
    }

    // MARK: File layouts

    func testByteOrderMarkJSONArrayAndStandardInputLayouts() throws {
        let bom = Data([0xEF, 0xBB, 0xBF]) + Data(#"{"prompt": "a", "response": "b"}"#.utf8)
        XCTAssertEqual(try SampleFile.parse(bom, source: "bom.jsonl")[0].prompt, .text("a"))
        let array = try parse(#"[{"prompt": "a", "response": "b"}, {"prompt": "c", "chosen": "d", "rejected": "e", "id": "x"}]"#)
        XCTAssertEqual(array.count, 3)
        XCTAssertEqual(array[1].label, "record 2 (id \"x\", chosen)")
        XCTAssertThrowsError(try parse(#"[{"prompt": "a", "response": "b"}, 3]"#)) {
            XCTAssertTrue("\($0)".contains("data.jsonl: record 2: expected a JSON object"), "\($0)")
        }
    }

    func testCSVAndTSVWithQuotedNewlinesAndTypedCells() throws {
        let csv = "id,prompt,chosen,rejected,reward,prompt_ids\nq1,\"Say \"\"hi\"\"\",\" hi,\nthere\", no,0.5,\n"
        let samples = try SampleFile.parse(Data(csv.utf8), source: "pairs.csv", fileExtension: "csv")
        XCTAssertEqual(samples.count, 2)
        XCTAssertEqual(samples[0].prompt, .text("Say \"hi\""))
        XCTAssertEqual(samples[0].response, .text(" hi,\nthere"))
        XCTAssertEqual(samples[1].response, .text(" no"))
        XCTAssertEqual(samples[0].field("reward"), .double(0.5))
        XCTAssertEqual(samples[0].label, "row 1 (id \"q1\", chosen)")
        let tsv = "prompt\tresponse\tscore\n1 + 1 =\t 2\t7\n"
        let rows = try SampleFile.parse(Data(tsv.utf8), source: "d.tsv", fileExtension: "tsv")
        XCTAssertEqual(rows[0].prompt, .text("1 + 1 ="), "a text column stays text even when it looks like a number")
        XCTAssertEqual(rows[0].field("score"), .int(7))
        XCTAssertThrowsError(try SampleFile.parse(Data("prompt,response\na,b,c\n".utf8), source: "bad.csv", fileExtension: "csv")) {
            XCTAssertTrue("\($0)".contains("bad.csv: row 1: expected 2 cells"), "\($0)")
        }
    }

    func testBinaryFilesAndDirectoriesAreNamed() throws {
        XCTAssertThrowsError(try SampleFile.parse(Data("PAR1\u{0}\u{0}\u{1}".utf8), source: "train.parquet")) {
            let message = "\($0)"
            XCTAssertTrue(message.contains("train.parquet: is Parquet, not text"), message)
            XCTAssertTrue(message.contains("pd.read_parquet('IN').to_json('OUT.jsonl', orient='records', lines=True"), message)
        }
        XCTAssertThrowsError(try SampleFile.parse(Data([0x1F, 0x8B, 0x08, 0x00]), source: "d.jsonl.gz")) {
            XCTAssertTrue("\($0)".contains("d.jsonl.gz: is gzip-compressed, not text"), "\($0)")
        }
        let directory = try Fixtures.temporaryDirectory(for: self)
        XCTAssertThrowsError(try SampleFile.read(path: directory.path)) {
            XCTAssertTrue("\($0)".contains("\(directory.path): is a directory"), "\($0)")
        }
    }
}
