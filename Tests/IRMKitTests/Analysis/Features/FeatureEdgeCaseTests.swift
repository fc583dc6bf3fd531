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
        // Nothing replaces a non-finite value any more (the extractor and FeatureMatrix both refuse
        // one), so building the table checks that every cell is finite by construction.
        let table = try FeatureExtractor(fittingOn: inputs).extract(inputs)
        XCTAssertEqual(table.matrix.rowCount, responses.count)
        XCTAssertTrue(table.matrix.values.allSatisfy(\.isFinite))
        XCTAssertEqual(table.column(named: "response_words")?[6], 45000)
        XCTAssertEqual(table.column(named: "longest_repeated_ngram")?[8], 2999)
        // A blank reference does not make an item closed-ended.
        XCTAssertEqual(table.column(named: "closed_ended"), [0, 0, 0, 0, 1, 0, 0, 0, 0, 0])
        // The documented values where a ratio's denominator is 0: responses 1 (blank), 4 (control
        // characters) and 5 (punctuation) have no word, and the even-numbered prompts are empty.
        func column(_ name: String) throws -> [Double] { try XCTUnwrap(table.column(named: name), name) }
        for i in [0, 1, 4, 5] {
            XCTAssertEqual(try column("response_words")[i], 0, "response \(i)")
            XCTAssertEqual(try column("distinct_1")[i], 1, "response \(i): no word, nothing repeats")
            XCTAssertEqual(try column("distinct_2")[i], 1, "response \(i)")
            XCTAssertEqual(try column("first_person_rate")[i], 0, "response \(i)")
            XCTAssertEqual(try column("second_person_rate")[i], 0, "response \(i)")
            XCTAssertEqual(try column("words_per_sentence")[i], 0, "response \(i)")
            XCTAssertEqual(try column("flesch_reading_ease")[i], 0, "response \(i)")
            XCTAssertEqual(try column("prompt_tfidf_cosine")[i], 0, "response \(i)")
        }
        for i in stride(from: 0, to: responses.count, by: 2) {
            XCTAssertEqual(try column("prompt_word_recall")[i], 0, "empty prompt \(i)")
            XCTAssertEqual(try column("prompt_tfidf_cosine")[i], 0, "empty prompt \(i)")
        }
        // Fewer than three wordpunct tokens: no trigram, so nothing repeats.
        XCTAssertEqual(try column("unique_trigram_ratio")[5], 1)
        XCTAssertEqual(try column("questions")[5], 1)
        XCTAssertEqual(try column("exclamations")[5], 1)
    }

    /// The extractor's row used to replace NaN and ±∞ by 0 when a value was stored, which hid
    /// bugs (issue 14, item 4); a value is now kept as computed and checked when the table is built.
    func testAValueIsKeptAsComputed() {
        var row = BuiltinValues()
        row[.distinct1] = .nan
        row[.vaderSum] = -.infinity
        XCTAssertTrue(row[.distinct1].isNaN)
        XCTAssertEqual(row[.vaderSum], -.infinity)
        XCTAssertEqual(try FeatureExtractor.checked(0.5, .distinct1, sample: "s"), 0.5)
        XCTAssertThrowsError(try FeatureExtractor.checked(.nan, .distinct1, sample: "d.jsonl: line 3 (id \"x\")")) { error in
            XCTAssertEqual("\(error)", "features: d.jsonl: line 3 (id \"x\"): distinct_1 is nan; every built-in feature is finite by its definition (docs/features.md), so this is a bug in irm: please report it")
        }
    }

    /// A hidden-state cosine that is not finite (the before-policy's states overflowed) used to
    /// become 0, or, on every sample, to skip the feature quietly; it is an error naming the
    /// feature and the sample.
    func testNonFiniteHiddenStateCosineIsAnErrorNamingTheFeatureAndTheSample() {
        var inputs = [FeatureInput(prompt: "a", response: "b", hiddenStateCosine: 0.25, name: "d.jsonl: line 1 (id \"a\")"),
                      FeatureInput(prompt: "c", response: "d", hiddenStateCosine: .nan, name: "d.jsonl: line 2 (id \"b\")")]
        XCTAssertThrowsError(try FeatureExtractor(fittingOn: inputs).extract(inputs)) { error in
            XCTAssertEqual("\(error)", "features: d.jsonl: line 2 (id \"b\"): hidden_state_cosine is nan (its input hiddenStateCosine); expected a finite cosine")
        }
        inputs[0].hiddenStateCosine = .infinity
        XCTAssertThrowsError(try FeatureExtractor(fittingOn: inputs).extract(inputs)) { error in
            XCTAssertTrue("\(error)".hasPrefix("features: d.jsonl: line 1 (id \"a\"): hidden_state_cosine is inf"), "\(error)")
        }
        // The reference cosine, on a closed-ended item; unnamed inputs are named by their place.
        let closed = [FeatureInput(prompt: "a", response: "b", reference: "b", hiddenStateCosine: 0.1, referenceHiddenStateCosine: -.infinity),
                      FeatureInput(prompt: "c", response: "d", hiddenStateCosine: 0.2)]
        XCTAssertThrowsError(try FeatureExtractor(fittingOn: closed).extract(closed)) { error in
            XCTAssertEqual("\(error)", "features: sample 1: reference_hidden_state_cosine is -inf (its input referenceHiddenStateCosine); expected a finite cosine")
        }
        // A cosine missing everywhere still skips the feature, with the reason.
        let none = [FeatureInput(prompt: "a", response: "b"), FeatureInput(prompt: "c", response: "d")]
        XCTAssertEqual(try FeatureExtractor(fittingOn: none).extract(none).skipped.first { $0.name == "hidden_state_cosine" }?.reason,
                       "no sample has hiddenStateCosine")
        // The cosine of vectors with a non-finite value is NaN (it was 0), so the above names it.
        XCTAssertTrue(HiddenStateRelevance.cosine([1, .nan], [1, 1]).isNaN)
        XCTAssertTrue(HiddenStateRelevance.cosine([1, 1], [.infinity, 1]).isNaN)
        XCTAssertEqual(HiddenStateRelevance.cosine([0, 0], [.greatestFiniteMagnitude, 1]), 0)
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
