/// A table written as RFC 4180 CSV: comma-separated, CRLF-free (`\n` line ends), fields quoted when
/// they contain a comma, quote, or line break, with quotes doubled.
public struct CSVTable: Sendable {
    public let columns: [String]
    public private(set) var rows: [[String]] = []

    public init(columns: [String]) { self.columns = columns }

    /// Appends a row; it must have one cell per column.
    public mutating func append(_ row: [String]) throws {
        guard row.count == columns.count else {
            throw IRMError("CSV row has \(row.count) cells, expected \(columns.count) (\(columns.joined(separator: ",")))")
        }
        rows.append(row)
    }

    public static func escape(_ field: String) -> String {
        guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return field }
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    public var text: String {
        var out = columns.map(Self.escape).joined(separator: ",") + "\n"
        for row in rows { out += row.map(Self.escape).joined(separator: ",") + "\n" }
        return out
    }
}
