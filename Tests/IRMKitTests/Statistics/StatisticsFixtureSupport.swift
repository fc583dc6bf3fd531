import Foundation
import XCTest
@testable import IRMKit

/// Reads `Tests/Fixtures/statistics/<name>` (made by scripts/fixtures/make_statistics_fixtures.py).
func statisticsFixture(_ name: String) throws -> JSONValue {
    let path = Fixtures.path("statistics/\(name)")
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    return try JSONValue.parse(data, source: path)
}

extension JSONValue {
    /// The member `key`, or a thrown error naming it (so a renamed fixture field fails loudly).
    func required(_ key: String) throws -> JSONValue {
        guard let value = self[key] else { throw IRMError("fixture: missing key \"\(key)\" in \(brief)") }
        return value
    }

    func double(_ key: String) throws -> Double {
        guard let v = try required(key).doubleValue else { throw IRMError("fixture: \"\(key)\" is not a number") }
        return v
    }

    func doubles(_ key: String) throws -> [Double] {
        guard let items = try required(key).arrayValue else { throw IRMError("fixture: \"\(key)\" is not an array") }
        return try items.map {
            guard let v = $0.doubleValue else { throw IRMError("fixture: \"\(key)\" holds \($0.brief)") }
            return v
        }
    }

    func strings(_ key: String) throws -> [String] {
        guard let items = try required(key).arrayValue else { throw IRMError("fixture: \"\(key)\" is not an array") }
        return try items.map {
            guard let v = $0.stringValue else { throw IRMError("fixture: \"\(key)\" holds \($0.brief)") }
            return v
        }
    }

    func rows(_ key: String) throws -> [JSONValue] {
        guard let items = try required(key).arrayValue else { throw IRMError("fixture: \"\(key)\" is not an array") }
        return items
    }
}

/// A fixture design: named feature columns and a target.
struct FixtureDesign {
    let features: FeatureMatrix
    let target: [Double]
    let json: JSONValue

    init(_ name: String) throws {
        json = try statisticsFixture(name)
        let names = try json.strings("names")
        let columns = try json.rows("columns").map { column -> [Double] in
            guard let items = column.arrayValue else { throw IRMError("fixture: a column is not an array") }
            return items.compactMap(\.doubleValue)
        }
        features = try FeatureMatrix(names: names, columns: columns)
        target = try json.doubles("y")
    }
}
