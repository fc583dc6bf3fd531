import Foundation
import XCTest
@testable import IRMKit

/// The hand-written split scanners against their plain reference: the same pattern run by the
/// general engine (`LinearRegex`, Oniguruma syntax, itself checked against Hugging Face in
/// `LinearRegexParityTests`), on the fixture corpus and on seeded random strings.
final class TokenizerSplitScannerTests: XCTestCase {
    static let alphabet: [Unicode.Scalar] = [
        "a", "Z", "s", "S", "t", "l", "L", "r", "e", "v", "m", "d", "'", " ", " ", "\n", "\r", "\t", "1", "7",
        "\u{a0}", "\u{3000}", "\u{2028}", "\u{85}", "\u{1c}", ".", ",", "!", "-", "_", "é", "\u{301}", "日", "本",
        "😀", "\u{200d}", "٣", "½", "Ⅻ", "ſ", "K", "<", "|", "\u{0}", "\u{7f}",
    ]

    func testScannersAgreeWithTheRegexEngine() throws {
        var texts = try TokenizerParityTests.loadCorpus()
        var random = SeededRandom(seed: 42)
        for _ in 0..<2000 {
            let length = random.index(below: 12)
            texts.append(String(String.UnicodeScalarView((0..<length).map { _ in Self.alphabet[random.index(below: Self.alphabet.count)] })))
        }
        let cases: [(String, ScalarPattern)] = [
            (ScalarPattern.gpt2Source, .gpt2),
            (ScalarPattern.llama3Source, .llama3(maximumDigits: 3)),
            (ScalarPattern.qwen2Source, .llama3(maximumDigits: 1)),
        ]
        for (source, scanner) in cases {
            let reference = ScalarPattern.regex(try LinearRegex(source, syntax: .oniguruma))
            var disagreements = 0
            for text in texts {
                let scalars = Array(text.unicodeScalars)
                let fast = scanner.matches(in: scalars, range: 0..<scalars.count)
                let slow = reference.matches(in: scalars, range: 0..<scalars.count)
                if fast != slow {
                    disagreements += 1
                    if disagreements <= 3 {
                        XCTFail("\(scanner) on \(text.debugDescription): \(fast) vs regex \(slow)")
                    }
                }
            }
            XCTAssertEqual(disagreements, 0, "\(scanner): \(disagreements) of \(texts.count) strings")
        }
    }

    func testRecognisedPatternsUseTheScanners() throws {
        for (source, expected) in [(ScalarPattern.gpt2Source, "gpt2"), (ScalarPattern.llama3Source, "llama3(maximumDigits: 3)"),
                                   (ScalarPattern.qwen2Source, "llama3(maximumDigits: 1)")] {
            let node = TokenizerConfigNode(value: .object(["Regex": .string(source)]), path: "p", source: "s")
            XCTAssertEqual("\(try ScalarPattern(node: node))", expected)
        }
        let other = TokenizerConfigNode(value: .object(["Regex": .string("\\d+")]), path: "p", source: "s")
        guard case .regex = try ScalarPattern(node: other) else { return XCTFail("an unknown regex should use the regex engine") }
    }
}
