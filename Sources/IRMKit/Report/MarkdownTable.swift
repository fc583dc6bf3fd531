/// A GitHub-flavoured Markdown table. Cells are escaped so that `|` and line breaks in data cannot
/// break the table.
public struct MarkdownTable: Sendable {
    public enum Alignment: Sendable { case left, right, center }

    public let header: [String]
    public let alignments: [Alignment]
    public private(set) var rows: [[String]] = []

    /// `alignments` defaults to left for the first column and right for the others (numbers).
    public init(header: [String], alignments: [Alignment]? = nil) {
        self.header = header
        self.alignments = alignments ?? header.indices.map { $0 == 0 ? .left : .right }
    }

    public mutating func append(_ row: [String]) {
        var cells = Array(row.prefix(header.count))
        while cells.count < header.count { cells.append("") }
        rows.append(cells)
    }

    public static func escape(_ cell: String) -> String {
        cell.replacingOccurrences(of: "\\", with: "\\\\")
            .replacingOccurrences(of: "|", with: "\\|")
            .replacingOccurrences(of: "\r\n", with: " ")
            .replacingOccurrences(of: "\n", with: " ")
            .replacingOccurrences(of: "\r", with: " ")
    }

    public var text: String {
        func line(_ cells: [String]) -> String { "| " + cells.map(Self.escape).joined(separator: " | ") + " |" }
        let rule = "|" + alignments.map { alignment -> String in
            switch alignment {
            case .left: ":---"
            case .right: "---:"
            case .center: ":---:"
            }
        }.joined(separator: "|") + "|"
        return ([line(header), rule] + rows.map(line)).joined(separator: "\n") + "\n"
    }
}
