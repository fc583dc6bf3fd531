import Foundation
import XCTest
@testable import IRMKit

/// `LinearRegex` against the reference engines, on the fixtures of
/// scripts/fixtures/make_regex_fixtures.py: Hugging Face tokenizers' Oniguruma for tokenizer.json
/// patterns (through irm's own `Split` code, so the splits are what a tokenizer would see), Python's
/// `regex` module for features-file patterns, Python's `re` for PEFT's anchored matches, and
/// Oniguruma's `(?i)` on every cased scalar. Every comparison must be exact.
final class LinearRegexParityTests: XCTestCase {
    struct Parity: Decodable {
        struct Oniguruma: Decodable { let pattern: String; let ends: [[Int]]; let kinds: [String] }
        struct Python: Decodable {
            let pattern: String
            let case_insensitive: Bool
            /// nil where the `regex` module goes beyond simple case folding (see the script).
            let spans: [[Int]?]
        }
        struct Anchored: Decodable { let pattern: String; let text: String; let fullmatch: [[Int]?]?; let match: [[Int]?]? }
        struct Folds: Decodable { let matches: [Int]; let misses: [Int] }
        let texts: [String]
        let oniguruma: [Oniguruma]
        let python: [Python]
        let anchored: [Anchored]
        let case_folds: Folds
    }

    static let parity: Parity? = try? JSONDecoder().decode(Parity.self, from: Data(contentsOf: Fixtures.url("regex/linear-regex-parity.json")))

    private func fixture() throws -> Parity {
        try XCTUnwrap(Self.parity, "Tests/Fixtures/regex/linear-regex-parity.json is missing or unreadable")
    }

    /// The pieces of `Split(pattern, "isolated")` as end offsets, and which are matches, from irm's
    /// split code (the removed behaviour tells matches from gaps, as the script does for Hugging Face).
    private func split(_ pattern: ScalarPattern, _ text: String) -> (ends: [Int], kinds: String) {
        let text = AlignedText(original: Array(text.unicodeScalars), startingAt: 0)
        var isolated = PreTokenSplits(text: text)
        isolated.split(on: pattern, behavior: .isolated)
        var removed = PreTokenSplits(text: text)
        removed.split(on: pattern, behavior: .removed)
        let gaps = Set(removed.pieces.map { [$0.lowerBound, $0.upperBound] })
        return (isolated.pieces.map(\.upperBound),
                String(isolated.pieces.map { gaps.contains([$0.lowerBound, $0.upperBound]) ? "g" : "m" }))
    }

    func testTokenizerPatternsSplitLikeHuggingFace() throws {
        let parity = try fixture()
        XCTAssertGreaterThan(parity.oniguruma.count, 50)
        for case_ in parity.oniguruma {
            let node = TokenizerConfigNode(value: .object(["Regex": .string(case_.pattern)]), path: "pattern", source: "fixture")
            // As a tokenizer loads it (the three recognised patterns then run on their scanners), and
            // always on the engine.
            let loaded = try ScalarPattern(node: node)
            let engine = ScalarPattern.regex(try LinearRegex(case_.pattern, syntax: .oniguruma))
            for pattern in [loaded, engine] {
                var failures = 0
                for (k, text) in parity.texts.enumerated() {
                    let (ends, kinds) = split(pattern, text)
                    if ends != case_.ends[k] || kinds != case_.kinds[k] {
                        failures += 1
                        if failures <= 2 {
                            XCTFail("\(case_.pattern) (\(pattern)) on \(text.debugDescription): Hugging Face \(case_.ends[k]) \(case_.kinds[k]), irm \(ends) \(kinds)")
                        }
                    }
                }
                XCTAssertEqual(failures, 0, "\(case_.pattern): \(failures) of \(parity.texts.count) texts differ")
            }
        }
    }

    func testFeaturePatternsMatchLikePythonsRegexModule() throws {
        let parity = try fixture()
        var compared = 0, skipped = 0
        for case_ in parity.python {
            let regex = try LinearRegex(case_.pattern, syntax: .python, caseInsensitive: case_.case_insensitive)
            var failures = 0
            for (k, text) in parity.texts.enumerated() {
                guard let expected = case_.spans[k] else { skipped += 1; continue }
                compared += 1
                let found = regex.matches(in: text).flatMap { [$0.lowerBound, $0.upperBound] }
                if found != expected {
                    failures += 1
                    if failures <= 2 {
                        XCTFail("\(case_.pattern) (case-insensitive: \(case_.case_insensitive)) on \(text.debugDescription): regex \(expected), irm \(found)")
                    }
                }
            }
            XCTAssertEqual(failures, 0, "\(case_.pattern): \(failures) texts differ")
        }
        XCTAssertGreaterThan(compared, 20_000)
        // Only texts with İ, ı or Latin ligatures are left out, and only for the case-insensitive cases.
        XCTAssertLessThan(skipped, compared / 50)
    }

    func testAnchoredMatchesAndGroupsLikePythonsRe() throws {
        let parity = try fixture()
        XCTAssertFalse(parity.anchored.isEmpty)
        func spans(_ groups: [Range<Int>?]?) -> [[Int]?]? {
            groups.map { $0.map { $0.map { [$0.lowerBound, $0.upperBound] } } }
        }
        for case_ in parity.anchored {
            let regex = try LinearRegex(case_.pattern, syntax: .python, captures: true)
            XCTAssertEqual(spans(regex.wholeMatch(case_.text)), case_.fullmatch, "fullmatch(\(case_.pattern), \(case_.text))")
            XCTAssertEqual(spans(regex.prefixMatch(case_.text)), case_.match, "match(\(case_.pattern), \(case_.text))")
        }
    }

    func testCaseInsensitiveMatchingFoldsEveryScalarLikeOniguruma() throws {
        let folds = try fixture().case_folds
        XCTAssertGreaterThan(folds.matches.count / 2, 2_500)
        for syntax in [LinearRegex.Syntax.oniguruma, .python] {
            for (pairs, expected) in [(folds.matches, true), (folds.misses, false)] {
                var failures = 0
                for k in stride(from: 0, to: pairs.count, by: 2) {
                    let pattern = "(?i)\\x{\(String(pairs[k], radix: 16))}"
                    let text = String(Character(try XCTUnwrap(Unicode.Scalar(UInt32(pairs[k + 1])))))
                    let found = try !LinearRegex(pattern, syntax: syntax).matches(in: text).isEmpty
                    if found != expected {
                        failures += 1
                        if failures <= 3 { XCTFail("\(syntax): (?i)U+\(String(pairs[k], radix: 16)) against U+\(String(pairs[k + 1], radix: 16)): expected \(expected)") }
                    }
                }
                XCTAssertEqual(failures, 0, "\(syntax)")
            }
        }
    }
}
