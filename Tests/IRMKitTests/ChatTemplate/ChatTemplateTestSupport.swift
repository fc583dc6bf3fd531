import ChatTemplate
import Foundation
import XCTest
@testable import IRMKit

/// Shared pieces of the chat-template tests: fixture loading and a diff that shows where two
/// renderings part.
enum ChatTemplateFixtures {
    /// The clock transformers' `strftime_now` was pinned to when the goldens were made
    /// (2025-03-14 09:26:53, see scripts/fixtures/make_chat_template_fixtures.py).
    static let fixedNow: Date = {
        var components = DateComponents()
        (components.year, components.month, components.day) = (2025, 3, 14)
        (components.hour, components.minute, components.second) = (9, 26, 53)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: 0) ?? .current
        return calendar.date(from: components) ?? Date(timeIntervalSince1970: 0)
    }()

    static func json(_ relativePath: String) throws -> TemplateValue {
        try parseOrderedJSON(try Data(contentsOf: Fixtures.url("chat-templates/" + relativePath)))
    }

    /// JSON with the order of object keys kept (IRMKit's reader of data files), as Python's
    /// `json.loads` reads the goldens.
    static func parseOrderedJSON(_ data: Data) throws -> TemplateValue {
        try JSONValue.parseTree(data, source: "test JSON")
    }

    static func templateSource(_ name: String) throws -> String {
        try String(contentsOf: Fixtures.url("chat-templates/templates/\(name).jinja"), encoding: .utf8)
    }
}

/// nil when equal; otherwise the first differing offset (in Unicode scalars) and the text around
/// it on both sides.
func firstDifference(_ actual: String, _ expected: String) -> String? {
    let a = Array(actual.unicodeScalars), e = Array(expected.unicodeScalars)
    guard a != e else { return nil }
    var i = 0
    while i < a.count && i < e.count && a[i] == e[i] { i += 1 }
    func context(_ s: [Unicode.Scalar]) -> String {
        let lower = max(0, i - 40), upper = min(s.count, i + 40)
        var view = String.UnicodeScalarView()
        view.append(contentsOf: s[lower..<upper])
        return String(view).debugDescription
    }
    return "first difference at scalar offset \(i) (lengths \(a.count) vs \(e.count))\n  actual:   \(context(a))\n  expected: \(context(e))"
}
