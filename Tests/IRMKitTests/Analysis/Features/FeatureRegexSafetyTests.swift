import Foundation
import XCTest
@testable import IRMKit

/// Features-file regexes run on the linear-time matcher (Python syntax): a pattern that makes a
/// backtracking engine hang still counts correctly, and refused constructs are one-line errors.
final class FeatureRegexSafetyTests: XCTestCase {
    private func counts(_ yaml: String, _ responses: [String]) throws -> [Double]? {
        let specification = try FeatureSpecification.parse(yaml, format: .yaml, source: "features.yaml")
        let inputs = responses.map { FeatureInput(prompt: "a prompt", response: $0) }
        let table = try FeatureExtractor(fittingOn: inputs, specification: specification).extract(inputs)
        return table.column(named: specification.regexFeatures[0].name)
    }

    func testCatastrophicFeatureRegexCountsWithTheRightAnswer() throws {
        let yaml = "features:\n  - name: trailing_as\n    regex: \"(a+)+$\"\ninclude_builtins: false\n"
        XCTAssertEqual(try counts(yaml, [String(repeating: "a", count: 10_000) + "b", String(repeating: "a", count: 40),
                                         String(repeating: "a", count: 40) + "b", "b aaa\n"]), [0, 1, 0, 1])
    }

    func testCaseInsensitiveFlagStillApplies() throws {
        let yaml = "features:\n  - name: thanks\n    regex: \"\\\\b(thanks|thank you)\\\\b\"\n    case_insensitive: true\ninclude_builtins: false\n"
        XCTAssertEqual(try counts(yaml, ["Thanks! THANK YOU. thankful", "no"]), [2, 0])
    }

    func testRefusedFeatureRegexIsAOneLineError() {
        XCTAssertThrowsError(try FeatureSpecification.parse("features:\n  - name: doubled\n    regex: \"(a)\\\\1\"\n", format: .yaml, source: "features.yaml")) { error in
            XCTAssertEqual("\(error)", #"features.yaml: feature "doubled": regex "(a)\1" is refused: backreferences are not supported: \1 at character 4 (irm runs untrusted patterns on a linear-time matcher)"#)
        }
    }
}
