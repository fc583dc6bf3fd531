/// A table written as RFC 4180 CSV: comma-separated, CRLF-free (`\n` line ends), fields quoted when
/// they contain a comma, quote, or line break, with quotes doubled.
///
/// Text cells are neutralised against formula injection: a spreadsheet runs a cell that starts
/// with `=`, `+`, `-` or `@` (and, in some programs, TAB or CR) as a formula, so an id such as
/// `=HYPERLINK(…)` in the data would run when the CSV is opened. Such a cell gets a leading `'`
/// (`neutralised`). Numbers are never changed: `-0.5` stays `-0.5`. docs/analysis-outputs.md states
/// the rule and how to undo it with pandas.
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

    /// The characters that make a spreadsheet read a cell as a formula.
    static let formulaTriggers: Set<Unicode.Scalar> = ["=", "+", "-", "@", "\t", "\r"]

    /// `cell` with one `'` put before it when, after any `'`s it already starts with, it starts
    /// with `=`, `+`, `-`, `@`, TAB or CR, unless it is a number (`isNumber`). Counting the quotes it
    /// already has makes the rule exactly reversible: remove one leading `'` from every text cell
    /// that matches `^'(?='*[=+\-@\t\r])`.
    public static func neutralised(_ cell: String) -> String {
        guard let first = cell.unicodeScalars.first(where: { $0 != "'" }), formulaTriggers.contains(first),
              !isNumber(cell) else { return cell }
        return "'" + cell
    }

    /// Whether `cell` is a number as irm writes them (`NumberFormat.exact`, integers): an optional
    /// `-`, digits, an optional fraction and exponent; or `inf`, `-inf`, `nan`.
    static func isNumber(_ cell: String) -> Bool {
        if cell == "inf" || cell == "-inf" || cell == "nan" { return true }
        var scalars = Substring(cell).unicodeScalars[...]
        func digits() -> Bool {
            let count = scalars.prefix { ("0"..."9").contains($0) }.count
            scalars = scalars.dropFirst(count)
            return count > 0
        }
        if scalars.first == "-" { scalars = scalars.dropFirst() }
        guard digits() else { return false }
        if scalars.first == "." {
            scalars = scalars.dropFirst()
            guard digits() else { return false }
        }
        if scalars.first == "e" || scalars.first == "E" {
            scalars = scalars.dropFirst()
            if scalars.first == "-" || scalars.first == "+" { scalars = scalars.dropFirst() }
            guard digits() else { return false }
        }
        return scalars.isEmpty
    }

    /// `field` neutralised, then quoted when it holds a comma, quote or line break. (Scalars, not
    /// Characters: "\r\n" is one Character, equal to neither "\r" nor "\n".)
    public static func escape(_ field: String) -> String {
        let field = neutralised(field)
        guard field.unicodeScalars.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return field }
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    public var text: String {
        var out = columns.map(Self.escape).joined(separator: ",") + "\n"
        for row in rows { out += row.map(Self.escape).joined(separator: ",") + "\n" }
        return out
    }
}
