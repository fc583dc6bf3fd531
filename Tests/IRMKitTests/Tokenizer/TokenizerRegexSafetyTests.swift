import Foundation
import XCTest
@testable import IRMKit

/// tokenizer.json comes with the checkpoint, so its `Split` and `Replace` patterns are untrusted:
/// they run on the linear-time matcher, and what it refuses is a one-line error naming the field.
final class TokenizerRegexSafetyTests: XCTestCase {
    private func splitConfig(_ pattern: String) -> String {
        TokenizerConfigurationTests.config(preTokenizer: """
            {"type": "Sequence", "pretokenizers": [
              {"type": "Split", "pattern": {"String": " "}, "behavior": "Isolated", "invert": false},
              {"type": "Split", "pattern": {"Regex": \(JSONValue.string(pattern).serialized(pretty: false))}, "behavior": "Isolated", "invert": false},
              {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]}
            """)
    }

    private func loadError(_ json: String) -> String? {
        do {
            _ = try Tokenizer(json: json, sourceDescription: "tokenizer.json")
            return nil
        } catch {
            return "\(error)"
        }
    }

    func testCatastrophicSplitPatternTokenizesWithTheRightAnswer() throws {
        // Backtracking engines need minutes for (a+)+$ on 40 characters.
        let tokenizer = try Tokenizer(json: splitConfig("(a+)+$"), sourceDescription: "tokenizer.json")
        let long = String(repeating: "a", count: 10_000) + "b"
        let encoding = tokenizer.encode(long, addSpecialTokens: false)
        XCTAssertEqual(encoding.ids, Array(repeating: 0, count: 9_999) + [2])
        XCTAssertEqual(tokenizer.decode(encoding.ids, skipSpecialTokens: true), long)
        XCTAssertEqual(tokenizer.encode(String(repeating: "a", count: 40), addSpecialTokens: false).ids, Array(repeating: 0, count: 40))
    }

    func testRefusedPatternsAreOneLineErrorsNamingTheField() {
        XCTAssertEqual(loadError(splitConfig(#"(a)\1"#)),
                       #"tokenizer.json: pre_tokenizer.pretokenizers[1].pattern.Regex: backreferences are not supported: \1 at character 4 (irm runs untrusted patterns on a linear-time matcher)"#)
        XCTAssertEqual(loadError(TokenizerConfigurationTests.config(normalizer: #"{"type": "Replace", "pattern": {"Regex": "a*+"}, "content": "b"}"#)),
                       "tokenizer.json: normalizer.pattern.Regex: possessive quantifiers are not supported: *+ at character 2 (irm runs untrusted patterns on a linear-time matcher)")
        XCTAssertEqual(loadError(TokenizerConfigurationTests.config(decoder: #"{"type": "Replace", "pattern": {"Regex": "(?=a+)b"}, "content": " "}"#)),
                       "tokenizer.json: decoder.pattern.Regex: lookaheads with an unbounded body are not supported (the body may match at most 64 characters): (?=a+) at character 1 (irm runs untrusted patterns on a linear-time matcher)")
        XCTAssertEqual(loadError(splitConfig("(unclosed")),
                       #"tokenizer.json: pre_tokenizer.pretokenizers[1].pattern.Regex: the regex "(unclosed" does not parse: missing ) for the group opened at character 1"#)
        XCTAssertEqual(loadError(splitConfig("(a{100}){200}")),
                       "tokenizer.json: pre_tokenizer.pretokenizers[1].pattern.Regex: the pattern needs more than 10000 matcher states (a repetition {n,m} copies what it repeats m times); irm refuses larger patterns so that matching stays fast")
    }
}
