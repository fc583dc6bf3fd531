import Foundation
import XCTest
@testable import IRMKit

final class JSONValueTests: XCTestCase {
    func testParsesTheJSONGrammar() throws {
        let text = #"{"a": [1, -2, 3.5, 1e3, -0.25E-2, true, false, null], "s": "q\"\\\/\b\f\n\r\t\u00e9\ud83d\udc4d", "o": {}, "e": []}"#
        let value = try JSONValue.parse(text, source: "t")
        XCTAssertEqual(value["a"], .array([.int(1), .int(-2), .double(3.5), .double(1000), .double(-0.0025), .bool(true), .bool(false), .null]))
        XCTAssertEqual(value["s"]?.stringValue, "q\"\\/\u{8}\u{c}\n\r\té👍")
        XCTAssertEqual(value["o"], .object([:]))
        XCTAssertEqual(value["e"], .array([]))
        XCTAssertEqual(JSONValue.int(7).intValue, 7)
        XCTAssertEqual(JSONValue.double(7.0).intValue, 7)
        XCTAssertNil(JSONValue.double(7.5).intValue)
        XCTAssertEqual(try JSONValue.parse("9223372036854775808", source: "t"), .double(9223372036854775808))
    }

    func testErrorsGiveLineAndColumn() {
        let cases: [(String, String)] = [
            ("{\n  \"a\": 1,\n  \"b\": }", "line 3, column 8: unexpected character '}'"),
            ("[1, 2", "unterminated array"),
            ("{\"a\": 1} x", "unexpected text after the JSON value"),
            ("{\"a\": 1, \"a\": 2}", "duplicate key \"a\""),
            ("[NaN]", "NaN and Infinity are not JSON"),
            ("\"tab\tinside\"", "unescaped control character"),
            ("01", "unexpected text after the JSON value"),
            ("", "expected a value, found the end of the text"),
        ]
        for (text, fragment) in cases {
            XCTAssertThrowsError(try JSONValue.parse(text, source: "f.json")) { error in
                XCTAssertTrue("\(error)".hasPrefix("f.json: malformed JSON at line "), "\(error)")
                XCTAssertTrue("\(error)".contains(fragment), "«\(error)» should contain «\(fragment)»")
            }
        }
        XCTAssertThrowsError(try JSONValue.parse(Data([0x22, 0xC3, 0x28, 0x22]), source: "b.json")) { error in
            XCTAssertEqual("\(error)", "b.json: expected UTF-8 JSON text, found bytes that are not valid UTF-8")
        }
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        XCTAssertThrowsError(try JSONValue.parse(deep, source: "d")) { XCTAssertTrue("\($0)".contains("nesting deeper")) }
    }

    func testSerialisationIsSortedAndRoundTrips() throws {
        let value = JSONValue.object(["b": .array([.int(1), .double(0.5), .null]), "a": .string("x\"\n\u{1}"), "c": .bool(true)])
        let compact = value.serialized()
        XCTAssertEqual(compact, #"{"a":"x\"\n\u0001","b":[1,0.5,null],"c":true}"#)
        XCTAssertEqual(try JSONValue.parse(compact, source: "t"), value)
        XCTAssertEqual(try JSONValue.parse(value.serialized(pretty: true), source: "t"), value)
        XCTAssertEqual(JSONValue.double(.nan).serialized(), "null")
        XCTAssertEqual(JSONValue.double(2).serialized(), "2.0")
    }
}
