import Foundation
import XCTest
@testable import IRMKit

final class FeatureSpecificationTests: XCTestCase {
    private let yaml = """
    features:
      - name: mentions_price
        regex: "\\\\$\\\\d+|price"
        case_insensitive: true
        target: response
      - name: prompt_questions
        regex: "\\\\?"
        target: prompt
    numeric_fields: [helpfulness_label]
    include_builtins: [length, vader_sum]
    """

    func testYAMLFileParsesAndDrivesTheExtractor() throws {
        let dir = try Fixtures.temporaryDirectory(for: self)
        let path = dir.appendingPathComponent("features.yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        let spec = try FeatureSpecification.load(path: path)
        XCTAssertEqual(spec.regexFeatures, [
            RegexFeature(name: "mentions_price", pattern: "\\$\\d+|price", caseInsensitive: true, target: .response),
            RegexFeature(name: "prompt_questions", pattern: "\\?", caseInsensitive: false, target: .prompt),
        ])
        XCTAssertEqual(spec.numericFields, ["helpfulness_label"])
        XCTAssertEqual(spec.builtIns, .only(["length", "vader_sum"]))

        let inputs = [
            FeatureInput(prompt: "How much? Really?", response: "The PRICE is $5, the Price was $10.",
                         numericFields: ["helpfulness_label": 3]),
            FeatureInput(prompt: "Hi", response: "Free!", numericFields: ["helpfulness_label": -1.5]),
        ]
        let table = try FeatureExtractor(fittingOn: inputs, specification: spec).extract(inputs)
        // Length group without token counts (skipped), then vader_sum, then the custom columns.
        XCTAssertEqual(table.names, ["response_words", "response_chars", "length_incentive", "vader_sum",
                                     "mentions_price", "prompt_questions", "helpfulness_label"])
        XCTAssertEqual(table.groups.suffix(3), [.custom, .custom, .custom])
        // PRICE, $5, Price, $10 → 4 (case-insensitive); "?" twice in the first prompt.
        XCTAssertEqual(table.column(named: "mentions_price"), [4, 0])
        XCTAssertEqual(table.column(named: "prompt_questions"), [2, 0])
        XCTAssertEqual(table.column(named: "helpfulness_label"), [3, -1.5])

        var missing = inputs
        missing[1].numericFields = [:]
        XCTAssertThrowsError(try FeatureExtractor(fittingOn: missing, specification: spec).extract(missing)) { error in
            XCTAssertTrue("\(error)".contains("sample 2 has no numeric field \"helpfulness_label\""), "\(error)")
        }
    }

    func testJSONFileParses() throws {
        let json = """
        {"features": [{"name": "has_code", "regex": "```"}], "include_builtins": false}
        """
        let spec = try FeatureSpecification.parse(json, format: .json, source: "f.json")
        XCTAssertEqual(spec.builtIns, BuiltInSelection.none)
        XCTAssertEqual(spec.regexFeatures.first?.target, .response)
        XCTAssertEqual(spec.regexFeatures.first?.caseInsensitive, false)
        let inputs = [FeatureInput(prompt: "", response: "```x```")]
        let table = try FeatureExtractor(fittingOn: inputs, specification: spec).extract(inputs)
        XCTAssertEqual(table.names, ["has_code"])
        XCTAssertEqual(table.column(named: "has_code"), [2])
    }

    func testBadFilesGiveActionableErrors() {
        func message(_ text: String, _ format: FeatureSpecification.Format = .yaml) -> String {
            do {
                _ = try FeatureSpecification.parse(text, format: format, source: "bad.yaml")
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        let cases: [(String, FeatureSpecification.Format, [String])] = [
            ("features:\n  - name: broken\n    regex: \"([a-z\"\n", .yaml, ["bad.yaml", "broken", "does not compile", "([a-z"]),
            ("features:\n  - name: empty_match\n    regex: \"a*\"\n", .yaml, ["empty_match", "matches the empty string"]),
            ("features:\n  - name: BadName\n    regex: x\n", .yaml, ["BadName", "snake_case"]),
            ("features:\n  - name: vader_sum\n    regex: x\n", .yaml, ["vader_sum", "built-in"]),
            ("features:\n  - name: a\n    regex: x\n  - name: a\n    regex: y\n", .yaml, ["\"a\"", "twice"]),
            ("features:\n  - name: a\n    regex: x\n    target: title\n", .yaml, ["\"a\"", "target", "title"]),
            ("features:\n  - name: a\n    regx: x\n", .yaml, ["\"a\"", "unknown key \"regx\""]),
            ("features:\n  - name: a\n", .yaml, ["\"a\"", "no \"regex\""]),
            ("features:\n  - name: a\n    regex: x\n    case_insensitive: maybe\n", .yaml, ["case_insensitive", "true or false"]),
            ("include_builtins: [lengthy]\n", .yaml, ["include_builtins", "lengthy", "neither a group"]),
            ("include_builtins: 3\n", .yaml, ["include_builtins", "3"]),
            ("numeric_fields: label\n", .yaml, ["numeric_fields", "list"]),
            ("feature: []\n", .yaml, ["unknown key \"feature\""]),
            ("features: [\n", .yaml, ["bad.yaml", "not valid YAML"]),
            ("- a\n- b\n", .yaml, ["top level"]),
            ("", .yaml, ["empty"]),
            ("{\"features\": 1", .json, ["bad.yaml"]),
        ]
        for (text, format, needles) in cases {
            let m = message(text, format)
            for needle in needles {
                XCTAssertTrue(m.contains(needle), "for \(text.debugDescription): expected \"\(needle)\" in: \(m)")
            }
        }
    }

    func testFileExtensionAndMissingFile() {
        XCTAssertThrowsError(try FeatureSpecification.load(path: "/tmp/features.txt")) { error in
            XCTAssertTrue("\(error)".contains(".yaml, .yml or .json"), "\(error)")
        }
        XCTAssertThrowsError(try FeatureSpecification.load(path: "/nonexistent/features.yml")) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/features.yml"), "\(error)")
        }
    }
}
