import Foundation
import XCTest
@testable import IRMKit

/// Every corpus string through every fixture tokenizer must give Hugging Face's ids, tokens, offsets
/// and decoded text exactly (Tests/Fixtures/tokenizers, made by
/// scripts/fixtures/make_tokenizer_fixtures.py with tokenizers 0.23.3).
final class TokenizerParityTests: XCTestCase {
    static let tokenizerNames = ["gpt2", "gpt2-trained", "gpt2-prefix-space", "neox-style", "llama3-style", "qwen2-style",
                                 "llama2-style", "mistral-style", "metaspace-unk", "split-behaviours"]

    struct ExpectedRow {
        let ids: [Int32]
        let idsWithoutSpecial: [Int32]
        let tokens: [String]
        let offsets: [Range<Int>]
        let decoded: String
        let decodedSkippingSpecial: String
        let decodedFirstHalf: String
    }

    static func loadCorpus() throws -> [String] {
        let json = try JSONValue.parse(try Data(contentsOf: Fixtures.url("tokenizers/corpus.json")), source: "corpus.json")
        return (json["strings"]?.arrayValue ?? []).compactMap(\.stringValue)
    }

    static func loadTokenizer(_ name: String) throws -> Tokenizer {
        try TokenizationJSONLines.loadTokenizer(jsonPath: Fixtures.path("tokenizers/\(name).tokenizer.json"))
    }

    static func loadExpected(_ name: String) throws -> (vocabularySize: Int, rows: [ExpectedRow]) {
        let source = "\(name).expected.json"
        let json = try JSONValue.parse(try Data(contentsOf: Fixtures.url("tokenizers/\(source)")), source: source)
        func ids(_ value: JSONValue?) -> [Int32] { (value?.arrayValue ?? []).compactMap { $0.intValue.map(Int32.init) } }
        let rows = (json["rows"]?.arrayValue ?? []).map { row in
            ExpectedRow(
                ids: ids(row["ids"]),
                idsWithoutSpecial: row["ids_without_special"] == nil ? ids(row["ids"]) : ids(row["ids_without_special"]),
                tokens: (row["tokens"]?.arrayValue ?? []).compactMap(\.stringValue),
                offsets: (row["offsets"]?.arrayValue ?? []).compactMap { pair in
                    guard let start = pair.arrayValue?.first?.intValue, let end = pair.arrayValue?.last?.intValue else { return nil }
                    return start..<end
                },
                decoded: row["decoded"]?.stringValue ?? "",
                decodedSkippingSpecial: row["decoded_skipping_special"]?.stringValue ?? "",
                decodedFirstHalf: row["decoded_first_half"]?.stringValue ?? "")
        }
        return (json["vocabulary_size"]?.intValue ?? -1, rows)
    }

    func testEveryTokenizerMatchesHuggingFaceOnEveryString() throws {
        let corpus = try Self.loadCorpus()
        XCTAssertGreaterThanOrEqual(corpus.count, 500)
        for name in Self.tokenizerNames {
            let tokenizer = try Self.loadTokenizer(name)
            let expected = try Self.loadExpected(name)
            XCTAssertEqual(expected.rows.count, corpus.count, "\(name): fixture rows")
            XCTAssertEqual(tokenizer.vocabularySize, expected.vocabularySize, "\(name): vocabulary size")
            var failures = 0
            for (text, row) in zip(corpus, expected.rows) {
                let encoding = tokenizer.encode(text)
                let plain = tokenizer.encode(text, addSpecialTokens: false)
                var problems: [String] = []
                if encoding.ids != row.ids { problems.append("ids \(encoding.ids) vs \(row.ids)") }
                if encoding.tokens != row.tokens { problems.append("tokens \(encoding.tokens) vs \(row.tokens)") }
                if encoding.offsets != row.offsets {
                    problems.append("offsets \(encoding.offsets.map { [$0.lowerBound, $0.upperBound] }) vs \(row.offsets.map { [$0.lowerBound, $0.upperBound] })")
                }
                if plain.ids != row.idsWithoutSpecial { problems.append("ids without special \(plain.ids) vs \(row.idsWithoutSpecial)") }
                let decoded = tokenizer.decode(row.ids, skipSpecialTokens: false)
                if !decoded.unicodeScalars.elementsEqual(row.decoded.unicodeScalars) { problems.append("decoded \(decoded.debugDescription) vs \(row.decoded.debugDescription)") }
                let skipping = tokenizer.decode(row.ids, skipSpecialTokens: true)
                if !skipping.unicodeScalars.elementsEqual(row.decodedSkippingSpecial.unicodeScalars) {
                    problems.append("decoded skipping special \(skipping.debugDescription) vs \(row.decodedSkippingSpecial.debugDescription)")
                }
                let half = tokenizer.decode(Array(row.ids.prefix(row.ids.count / 2)), skipSpecialTokens: false)
                if !half.unicodeScalars.elementsEqual(row.decodedFirstHalf.unicodeScalars) {
                    problems.append("decoded first half \(half.debugDescription) vs \(row.decodedFirstHalf.debugDescription)")
                }
                if !problems.isEmpty {
                    failures += 1
                    if failures <= 5 {
                        XCTFail("\(name) on \(text.debugDescription): " + problems.joined(separator: "; "))
                    }
                }
            }
            XCTAssertEqual(failures, 0, "\(name): \(failures) of \(corpus.count) strings differ from Hugging Face")
        }
    }

    /// Where Hugging Face's decode gives back the input (byte-level tokenizers without normalization
    /// do so for every string), ours must too.
    func testByteLevelDecodeRoundTrips() throws {
        let corpus = try Self.loadCorpus()
        for name in ["gpt2", "gpt2-trained", "llama3-style"] {
            let tokenizer = try Self.loadTokenizer(name)
            let expected = try Self.loadExpected(name)
            var roundTrips = 0
            for (text, row) in zip(corpus, expected.rows) where row.decodedSkippingSpecial.unicodeScalars.elementsEqual(text.unicodeScalars) {
                let plain = tokenizer.encode(text, addSpecialTokens: false)
                let decoded = tokenizer.decode(plain.ids, skipSpecialTokens: false)
                XCTAssertTrue(decoded.unicodeScalars.elementsEqual(text.unicodeScalars),
                              "\(name) round trip of \(text.debugDescription) gave \(decoded.debugDescription)")
                roundTrips += 1
            }
            XCTAssertGreaterThan(roundTrips, corpus.count / 2, "\(name): Hugging Face round-trips most strings")
        }
    }
}
