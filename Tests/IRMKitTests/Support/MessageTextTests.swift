import XCTest
@testable import IRMKit

final class MessageTextTests: XCTestCase {
    func testControlCharactersAreEscaped() {
        XCTAssertEqual(MessageText.oneLine("a\u{1B}[31mb\u{0B}c\nd\te\r\u{7F}\u{85}\u{2028}\u{0}é"),
                       "a\\u{1B}[31mb\\u{B}c\\nd\\te\\r\\u{7F}\\u{85}\\u{2028}\\u{0}é")
    }

    func testOtherTextIsUnchanged() {
        let text = "data.jsonl: line 3: \"prompt\" should be text, found 3 — ✓ \\ “quoted” 日本語"
        XCTAssertEqual(MessageText.oneLine(text), text)
    }
}
