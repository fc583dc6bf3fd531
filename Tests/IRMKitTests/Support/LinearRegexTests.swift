import Foundation
import XCTest
@testable import IRMKit

/// The linear-time matcher's guarantees (patterns that make backtracking engines hang finish with
/// the right answer), its refusals (one-line errors naming the construct), and the dialect rules
/// that the parity fixtures do not reach on their own.
final class LinearRegexTests: XCTestCase {
    private func matches(_ pattern: String, _ text: String, _ syntax: LinearRegex.Syntax = .oniguruma,
                         caseInsensitive: Bool = false, file: StaticString = #filePath, line: UInt = #line) throws -> [Range<Int>] {
        try LinearRegex(pattern, syntax: syntax, caseInsensitive: caseInsensitive).matches(in: text)
    }

    private func assertRefused(_ pattern: String, _ syntax: LinearRegex.Syntax = .oniguruma, contains fragments: [String],
                               file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try LinearRegex(pattern, syntax: syntax), "\(pattern)", file: file, line: line) { error in
            guard let error = error as? LinearRegexError else { return XCTFail("\(error)", file: file, line: line) }
            XCTAssertTrue(error.isRefusal, "\(pattern): «\(error.message)» should be a refusal", file: file, line: line)
            XCTAssertFalse(error.message.contains("\n"), "one line: «\(error.message)»", file: file, line: line)
            for fragment in fragments {
                XCTAssertTrue(error.message.contains(fragment), "«\(error.message)» should contain «\(fragment)»", file: file, line: line)
            }
        }
    }

    private func assertSyntaxError(_ pattern: String, _ syntax: LinearRegex.Syntax = .oniguruma, contains fragment: String,
                                   file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try LinearRegex(pattern, syntax: syntax), "\(pattern)", file: file, line: line) { error in
            guard let error = error as? LinearRegexError else { return XCTFail("\(error)", file: file, line: line) }
            XCTAssertFalse(error.isRefusal, "\(pattern): «\(error.message)»", file: file, line: line)
            XCTAssertTrue(error.message.contains(fragment), "«\(error.message)» should contain «\(fragment)»", file: file, line: line)
        }
    }

    // MARK: The bound

    func testCatastrophicBacktrackingPatternsFinishWithTheRightAnswer() throws {
        // Oniguruma takes 9.6 s for (a+)+$ on 16 characters and over 120 s on 40.
        for syntax in [LinearRegex.Syntax.oniguruma, .python] {
            let regex = try LinearRegex("(a+)+$", syntax: syntax)
            XCTAssertEqual(regex.matches(in: String(repeating: "a", count: 40)), [0..<40])
            XCTAssertEqual(regex.matches(in: String(repeating: "a", count: 16) + "b"), [])
            XCTAssertEqual(regex.matches(in: String(repeating: "a", count: 40) + "b"), [])
            XCTAssertEqual(regex.matches(in: String(repeating: "a", count: 10_000) + "b"), [])
            XCTAssertEqual(regex.matches(in: String(repeating: "a", count: 10_000) + "b\n" + "aaa"), [10_002..<10_005])
        }
        let long = String(repeating: "a", count: 10_000)
        XCTAssertEqual(try matches("(a|aa)*c", long), [])
        XCTAssertEqual(try matches("(x+x+)+y", String(repeating: "x", count: 10_000)), [])
        XCTAssertEqual(try matches("^(a?){40}a{40}$", String(repeating: "a", count: 40)), [0..<40])
        XCTAssertEqual(try matches("(\\w+\\s?)+$", String(repeating: "word ", count: 2_000) + "!"), [])
    }

    /// Patterns whose preferred alternative scans far and fails while a later one matches one
    /// character: a search per match would be quadratic; the dead-pair memo keeps it linear.
    func testFindingAllMatchesStaysLinearWhenSearchesLookFarAhead() throws {
        let spaces = String(repeating: " ", count: 100_000)
        let whitespace = try matches(#"\s*[\r\n]+|\s"#, spaces)
        XCTAssertEqual(whitespace.count, 100_000)
        XCTAssertTrue(whitespace.allSatisfy { $0.count == 1 })
        let letters = try matches("a*b|a", String(repeating: "a", count: 50_000), .python)
        XCTAssertEqual(letters.count, 50_000)
        XCTAssertEqual(letters.last, 49_999..<50_000)
        // With a match at the end, the first search takes the whole run instead.
        XCTAssertEqual(try matches("a*b|a", String(repeating: "a", count: 50_000) + "b", .python), [0..<50_001])
    }

    func testPatternSizeIsCapped() throws {
        assertRefused("(a{100}){101}", contains: ["more than 10000 matcher states"])
        assertRefused("a{10001}", contains: ["more than 10000 matcher states"])
        assertRefused("[a-z]{1,100000}", contains: ["more than 10000 matcher states"])
        assertRefused("a{100001}", contains: ["repetition counts above 100000"])
        XCTAssertNoThrow(try LinearRegex("(a{99}){100}", syntax: .oniguruma))
        XCTAssertEqual(try matches("(a{49}){50}", String(repeating: "a", count: 2_460)), [0..<2_450])
    }

    // MARK: Refusals and errors

    func testRefusedConstructsAreOneLineErrorsNamingTheConstruct() {
        let linear = "irm runs untrusted patterns on a linear-time matcher"
        assertRefused(#"(a)\1"#, contains: [#"backreferences are not supported: \1 at character 4 (irm runs"#, linear])
        assertRefused(#"(?<x>a)\k<x>"#, contains: ["backreferences are not supported", #"\k<x>"#])
        assertRefused("(?P<x>a)(?P=x)", .python, contains: ["backreferences are not supported"])
        assertRefused("a*+", contains: ["possessive quantifiers are not supported"])
        assertRefused("a++", .python, contains: ["possessive quantifiers are not supported"])
        assertRefused("a{2}+", .python, contains: ["possessive quantifiers are not supported"])
        assertRefused("(?>ab|a)c", contains: ["atomic groups are not supported"])
        assertRefused("(?R)", contains: ["recursion"])
        assertRefused(#"(a)\g<1>"#, contains: ["subroutine calls are not supported"])
        assertRefused("(a)?(?(1)b|c)", contains: ["conditional groups are not supported"])
        assertRefused("(?=a+)", contains: ["lookaheads with an unbounded body are not supported"])
        assertRefused("(?<=a*)b", contains: ["lookbehinds with an unbounded body are not supported"])
        assertRefused("(?=a{65})", contains: ["can match 65 characters", "at most 64"])
        assertRefused("(?=(?!a)b)", contains: ["lookarounds inside lookarounds are not supported"])
        assertRefused(#"\Gx"#, contains: [#"\G"#])
        assertRefused(#"a\Kb"#, contains: [#"\K"#])
        assertRefused(#"\X"#, contains: ["grapheme-cluster"])
        assertRefused("(?x) a", contains: ["extended (verbose) flag"])
    }

    func testMalformedPatternsAreSyntaxErrors() {
        assertSyntaxError("(abc", contains: "missing ) for the group opened at character 1")
        assertSyntaxError("abc)", contains: "unbalanced ) at character 4")
        assertSyntaxError("[a-", contains: "missing ] for the class opened at character 1")
        assertSyntaxError("*a", contains: "nothing to repeat at character 1")
        assertSyntaxError("a**", .python, contains: "multiple repeat")
        assertSyntaxError(#"\q"#, contains: #"unknown escape \q"#)
        assertSyntaxError("[z-a]", contains: "bad character range")
        assertSyntaxError(#"\p{NoSuchProperty}"#, contains: #"unknown Unicode property \p{NoSuchProperty}"#)
        assertSyntaxError(#"\pL"#, .oniguruma, contains: "need a name in braces")
        assertSyntaxError("a(?i)b", .python, contains: "must stand at the start")
        assertSyntaxError(#"\x4"#, .python, contains: "bad hexadecimal escape")
    }

    // MARK: Dialects

    func testAnchorsFollowEachDialect() throws {
        // Oniguruma's Ruby syntax: ^ and $ are line anchors; Python's: text anchors unless (?m).
        XCTAssertEqual(try matches("^a", "a\na"), [0..<1, 2..<3])
        XCTAssertEqual(try matches("^a", "a\na", .python), [0..<1])
        XCTAssertEqual(try matches("(?m)^a", "a\na", .python), [0..<1, 2..<3])
        XCTAssertEqual(try matches(#"\s+$"#, "a  \nb  "), [1..<3, 5..<7])
        XCTAssertEqual(try matches(#"\s+$"#, "a  \nb  ", .python), [5..<7])
        XCTAssertEqual(try matches("a$", "a\n", .python), [0..<1])
        XCTAssertEqual(try matches(#"a\Z"#, "a\n", .python), [])
        XCTAssertEqual(try matches(#"a\Z"#, "a\n"), [0..<1])
        XCTAssertEqual(try matches(#"a\z"#, "a\n"), [])
        XCTAssertEqual(try matches(".", "\r\n\u{2028}"), [0..<1, 2..<3])
        XCTAssertEqual(try matches("(?m).+", "ab\ncd"), [0..<5])
        XCTAssertEqual(try matches("(?s).+", "ab\ncd", .python), [0..<5])
    }

    func testEmptyMatchesFollowEachDialectsIteration() throws {
        // The onig crate (Hugging Face) drops an empty match where the previous match ended and moves
        // on one scalar, so `|b` never reaches the b's; Python allows an empty match after a
        // non-empty one and a non-empty match where an empty one was.
        XCTAssertEqual(try matches("|b", "abba"), [0..<0, 1..<1, 2..<2, 3..<3, 4..<4])
        XCTAssertEqual(try matches("|b", "abba", .python), [0..<0, 1..<1, 1..<2, 2..<2, 2..<3, 3..<3, 4..<4])
        XCTAssertEqual(try matches("a|", "aab", .python), [0..<1, 1..<2, 2..<2, 3..<3])
        XCTAssertEqual(try matches("a|", "aab"), [0..<1, 1..<2, 3..<3])
    }

    func testInlineFlagsAndCaseFolding() throws {
        // Oniguruma: (?i) runs to the end of the group, alternatives included: a(?i)b|c is a(?i:b|c).
        XCTAssertEqual(try matches("a(?i)b|c", "aB C aC"), [0..<2, 5..<7])
        XCTAssertEqual(try matches("x(?i:y)z", "xYz xYZ"), [0..<3])
        XCTAssertEqual(try matches("(?i)'S|'T", "'s 'ſ 'T"), [0..<2, 3..<5, 6..<8])
        // Simple folds only: ß does not match ss (Oniguruma's full folding would).
        XCTAssertEqual(try matches("(?i)ss", "ß SS"), [2..<4])
        XCTAssertEqual(try matches("(?i)k", "k K \u{212A}"), [0..<1, 2..<3, 4..<5])
        XCTAssertEqual(try matches("(?i)[^a]", "aAb"), [2..<3])
        // (?i) folds \p{Lu} in Python's regex module, not in Oniguruma.
        XCTAssertEqual(try matches(#"(?i)\p{Lu}"#, "aB"), [1..<2])
        XCTAssertEqual(try matches(#"\p{Lu}"#, "aB", .python, caseInsensitive: true), [0..<1, 1..<2])
        XCTAssertEqual(try matches(#"\b(thanks|thank you)\b"#, "Thanks! THANK YOU. thankful", .python, caseInsensitive: true),
                       [0..<6, 8..<17])
    }

    func testClassesEscapesAndProperties() throws {
        XCTAssertEqual(try matches(#"\p{Han}+|\p{Greek}+"#, "日本go αβ"), [0..<2, 5..<7])
        XCTAssertEqual(try matches(#"\p{Script=Latin}+"#, "abc日"), [0..<3])
        XCTAssertEqual(try matches(#"\P{L}+|\p{^N}"#, "a1"), [0..<1, 1..<2])
        XCTAssertEqual(try matches("[a-z&&[^aeiou]]+", "abcde"), [1..<4])
        XCTAssertEqual(try matches("[[:alpha:]]+", "ab1"), [0..<2])
        XCTAssertEqual(try matches(" ?[^(\\s|[.,!?…。，、।۔،])]+", "hi, (x) there."), [0..<2, 5..<6, 7..<13])
        XCTAssertEqual(try matches(#"\x{1F600}|\u00e9|\x41"#, "😀éA"), [0..<1, 1..<2, 2..<3])
        XCTAssertEqual(try matches(#"\U0001F600"#, "😀", .python), [0..<1])
        // Oniguruma's \w takes ² ³ ¹ ¼ ½ ¾ outside a class only; Python's takes the joiners.
        XCTAssertEqual(try matches(#"\w+"#, "a²"), [0..<2])
        XCTAssertEqual(try matches(#"[\w]+"#, "a²"), [0..<1])
        XCTAssertEqual(try matches(#"\w+"#, "a\u{200D}b", .python), [0..<3])
        XCTAssertEqual(try matches(#"\w+"#, "a\u{200D}b"), [0..<1, 2..<3])
    }

    func testLookaroundsAtEachPosition() throws {
        XCTAssertEqual(try matches(#"\s+(?!\S)|\s+"#, "a   b  "), [1..<3, 3..<4, 5..<7])
        XCTAssertEqual(try matches(#"(?<=\.)\s+"#, "a. b.  c"), [2..<3, 5..<7])
        XCTAssertEqual(try matches("(?<![a-z])[A-Z]", "aB C"), [3..<4])
        XCTAssertEqual(try matches(#"(?<=\p{Ll})(?=\p{Lu})"#, "camelCaseWord"), [5..<5, 9..<9])
        XCTAssertEqual(try matches("a(?=bc|d)", "abc ab ad"), [0..<1, 7..<8])
        XCTAssertEqual(try matches("(?<=ab|c)x", "abx cx bx"), [2..<3, 5..<6])
    }

    func testAnchoredMatchesRecordGroups() throws {
        let layer = try LinearRegex(#"(?:.*?\.)?(?:layers|h)\.(\d+)\."#, syntax: .python, captures: true)
        XCTAssertEqual(layer.prefixMatch("transformer.h.11.attn.c_attn")?[1], 14..<16)
        XCTAssertNil(layer.prefixMatch("lm_head"))
        let target = try LinearRegex(#".*\.(q_proj|v_proj)"#, syntax: .python)
        XCTAssertNotNil(target.wholeMatch("model.layers.0.self_attn.q_proj"))
        XCTAssertNil(target.wholeMatch("model.layers.0.self_attn.q_proj.lora_A"), "full match, not search")
    }
}
