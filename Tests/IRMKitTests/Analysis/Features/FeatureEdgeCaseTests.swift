import Foundation
import XCTest
@testable import IRMKit

final class FeatureEdgeCaseTests: XCTestCase {
    func testEmptyResponseConventions() throws {
        let f = try builtinFeatures(response: "", prompt: "Say something.", tokens: 0)
        let expected: [String: Double] = [
            "response_tokens": 0, "log_response_tokens": 0, "response_words": 0, "response_chars": 0,
            "length_incentive": 0, "unique_trigram_ratio": 1, "distinct_1": 1, "distinct_2": 1,
            "longest_repeated_ngram": 0, "prompt_word_recall": 0, "prompt_tfidf_cosine": 0,
            "list_items": 0, "numbered_items": 0, "markdown_headers": 0, "bold_spans": 0, "code_blocks": 0,
            "line_breaks": 0, "paragraphs": 0, "vader_sum": 0, "positive_words": 0, "negative_words": 0,
            "refusal_markers": 0, "apology_markers": 0, "hedging_markers": 0, "first_person_rate": 0,
            "second_person_rate": 0, "questions": 0, "exclamations": 0, "words_per_sentence": 0,
            "flesch_reading_ease": 0, "ends_cleanly": 0, "has_stop_marker": 0,
        ]
        XCTAssertEqual(f, expected)
    }

    func testAwkwardInputsGiveFiniteValuesForEveryFeature() throws {
        let long = String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 5000)
        let responses = [
            "", "   \n\t  ", "😀😀😀 👍🏽🇫🇷", "日本語の文です。中文，测试！", "\u{0}\u{1}\u{7F}", "?!.,;:", long,
            "nai\u{308}ve \r\n\r\n", String(repeating: "a ", count: 3000), "# \n- \n1. \n**\n```",
        ]
        let inputs = responses.enumerated().map { i, r in
            FeatureInput(prompt: i % 2 == 0 ? "" : "Explain 日本 please", response: r,
                         reference: i == 3 ? "" : (i == 4 ? "ref" : nil), responseTokenCount: r.utf8.count / 4,
                         hiddenStateCosine: 0.1)
        }
        // FeatureMatrix rejects any non-finite value, so building the table checks every cell.
        let table = try FeatureExtractor(fittingOn: inputs).extract(inputs)
        XCTAssertEqual(table.matrix.rowCount, responses.count)
        XCTAssertTrue(table.matrix.values.allSatisfy(\.isFinite))
        XCTAssertEqual(table.column(named: "response_words")?[6], 45000)
        XCTAssertEqual(table.column(named: "longest_repeated_ngram")?[8], 2999)
        // A blank reference does not make an item closed-ended.
        XCTAssertEqual(table.column(named: "closed_ended"), [0, 0, 0, 0, 1, 0, 0, 0, 0, 0])
    }

    func testExtractorOnNoSamples() throws {
        let table = try FeatureExtractor(fittingOn: []).extract([])
        XCTAssertEqual(table.matrix.rowCount, 0)
        XCTAssertFalse(table.names.isEmpty)
    }

    func testTableIsColumnMajorWithDefinitions() throws {
        let inputs = [FeatureInput(prompt: "p", response: "one two"), FeatureInput(prompt: "p", response: "three")]
        let table = try FeatureExtractor(fittingOn: inputs).extract(inputs)
        let j = try XCTUnwrap(table.names.firstIndex(of: "response_words"))
        XCTAssertEqual(table.matrix.values[0 + j * 2], 2)
        XCTAssertEqual(table.matrix.values[1 + j * 2], 1)
        XCTAssertEqual(table.definitions.map(\.name), table.names)
        XCTAssertEqual(table.groups[j], .length)
    }
}
