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

/// Text from anywhere (a feature name from a features file, a data field's value, a path, our own
/// prose) made safe as Markdown inline content: it cannot open raw HTML, a link or an image, start
/// a block, or end the block it is in. Only what could act as such markup changes, so prose that
/// uses none of it passes through unchanged:
///
/// - `<` before a letter, `/`, `!` or `?` (an HTML tag, comment or declaration, or an autolink)
///   becomes `&lt;`, and `&` before a letter or `#` (an entity) becomes `&amp;`;
///   with `everyAngleAndAmpersand`, every `<` and `&` is written so (free text such as prompts).
/// - In `](` and `][` (an inline link or image, a reference link) the second character is
///   written as a numeric character reference (`&#40;`, `&#91;`).
/// - At the start of a block (`atBlockStart`: a paragraph, a list item, a heading) a `[` (a link
///   reference definition), `#` (a heading), `>` (a quote), or `-`, `+`, `*` before a space (a
///   list) is written as a numeric character reference.
///
/// References rather than backslashes, because a table cell's backslashes are themselves escaped
/// (`MarkdownTable.escape`).
/// - Line breaks become spaces.
///
/// Backticks are left alone: a code span shows its text literally, so it cannot inject anything.
/// GitHub's autolinking of bare `www.` and `http://` text is not prevented.
public enum MarkdownText {
    public static func escape(_ text: String, everyAngleAndAmpersand: Bool = false, atBlockStart: Bool = false) -> String {
        let scalars = Array(text.replacingOccurrences(of: "\r\n", with: " ").unicodeScalars)
        var out = String.UnicodeScalarView()
        func isLetter(_ s: Unicode.Scalar?) -> Bool {
            guard let s else { return false }
            return ("a"..."z").contains(s) || ("A"..."Z").contains(s)
        }
        var skipNext = false
        for (i, scalar) in scalars.enumerated() {
            if skipNext {
                skipNext = false
                continue
            }
            let next: Unicode.Scalar? = i + 1 < scalars.count ? scalars[i + 1] : nil
            if scalar == "\n" || scalar == "\r" {
                out.append(" ")
            } else if scalar == "<", everyAngleAndAmpersand || isLetter(next) || next == "/" || next == "!" || next == "?" {
                out.append(contentsOf: "&lt;".unicodeScalars)
            } else if scalar == "&", everyAngleAndAmpersand || isLetter(next) || next == "#" {
                out.append(contentsOf: "&amp;".unicodeScalars)
            } else if scalar == "]", let next, next == "(" || next == "[" {
                out.append("]")
                out.append(contentsOf: numericReference(next).unicodeScalars)
                skipNext = true
            } else if atBlockStart, i == 0,
                      scalar == "[" || scalar == "#" || scalar == ">" || ("-+*".unicodeScalars.contains(scalar) && (next == " " || next == "\t")) {
                out.append(contentsOf: numericReference(scalar).unicodeScalars)
            } else {
                out.append(scalar)
            }
        }
        return String(out)
    }

    /// `&#N;`: shows the character, and Markdown never reads it as markup.
    static func numericReference(_ scalar: Unicode.Scalar) -> String { "&#\(scalar.value);" }
}
