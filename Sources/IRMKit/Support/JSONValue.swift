import Foundation

/// A parsed JSON document, for formats whose keys vary (Hugging Face configs, tokenizer.json,
/// safetensors headers). Numbers keep their integer-ness so that `1` and `1.0` are told apart
/// where it matters.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Parses UTF-8 JSON text. `source` names the file (and object) in error messages, which give
    /// the line and column of the first problem.
    public static func parse(_ data: Data, source: String) throws -> JSONValue {
        try parseTree(data, source: source)
    }

    /// Parses UTF-8 JSON text into any `JSONTree` (for example one that keeps the order of keys).
    ///
    /// A leading byte-order mark is refused with a message that names it, as Python's `json.loads`
    /// refuses one ("Unexpected UTF-8 BOM"): RFC 8259 §8.1 forbids it in JSON text, and the
    /// parser's plain complaint about the character 'ï' would not say what is wrong. (Data files
    /// skip it before their records are parsed: `DataRecords`.)
    static func parseTree<Tree: JSONTree>(_ data: Data, source: String) throws -> Tree {
        let bytes = [UInt8](data)
        try refuseByteOrderMark(data, source: source)
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw IRMError("\(source): expected UTF-8 JSON text, found bytes that are not valid UTF-8")
        }
        var parser = JSONParser<Tree>(bytes: bytes, source: source)
        return try parser.parseDocument()
    }

    /// The UTF-8 encoding of U+FEFF, which some Windows editors put at the start of a text file.
    static let byteOrderMark: [UInt8] = [0xEF, 0xBB, 0xBF]

    /// Throws, naming `source`, when `data` starts with a byte-order mark. JSON text must not
    /// (`parseTree`); call this too before Foundation decodes a file's bytes into a `String`, which
    /// drops the mark without a word (`String(data:encoding:)`, `String(contentsOfFile:)`).
    static let jsonWhy = ", which JSON text must not have"
    /// transformers reads a template file as UTF-8 and keeps the mark, which then renders as text.
    static let templateWhy = ", which Hugging Face would keep as the template's first character"

    static func refuseByteOrderMark(_ data: Data, source: String, why: String = jsonWhy) throws {
        guard data.starts(with: byteOrderMark) else { return }
        throw IRMError("\(source): starts with a UTF-8 byte-order mark (bytes EF BB BF)\(why); save the file as UTF-8 without it")
    }

    public static func parse(_ text: String, source: String) throws -> JSONValue {
        try parse(Data(text.utf8), source: source)
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let dict) = self { return dict[key] }
        return nil
    }

    public var objectValue: [String: JSONValue]? { if case .object(let d) = self { d } else { nil } }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { a } else { nil } }
    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    public var boolValue: Bool? { if case .bool(let b) = self { b } else { nil } }
    public var isNull: Bool { self == .null }

    /// An integer, also from a float with an integral value (configs written by hand do that).
    public var intValue: Int? {
        switch self {
        case .int(let v): Int(exactly: v)
        case .double(let d) where d.rounded() == d && abs(d) < 9.0e15: Int(d)
        default: nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .int(let v): Double(v)
        case .double(let d): d
        default: nil
        }
    }

    /// A short rendering for error messages.
    public var brief: String {
        switch self {
        case .null: "null"
        case .bool(let b): "\(b)"
        case .int(let v): "\(v)"
        case .double(let d): "\(d)"
        case .string(let s): "\"\(s.count > 40 ? String(s.prefix(40)) + "…" : s)\""
        case .array(let a): "an array of \(a.count)"
        case .object(let o): "an object with \(o.count) keys"
        }
    }

    /// Serialises with sorted keys, so that the same value always gives the same bytes.
    public func serialized(pretty: Bool = false) -> String {
        var out = ""
        write(into: &out, pretty: pretty, indent: 0)
        return out
    }

    private func write(into out: inout String, pretty: Bool, indent: Int) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let v): out += String(v)
        case .double(let d): out += JSONValue.format(d)
        case .string(let s): JSONValue.writeString(s, into: &out)
        case .array(let items):
            if items.isEmpty { out += "[]"; return }
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                if pretty { out += "\n" + String(repeating: "  ", count: indent + 1) }
                item.write(into: &out, pretty: pretty, indent: indent + 1)
            }
            if pretty { out += "\n" + String(repeating: "  ", count: indent) }
            out += "]"
        case .object(let dict):
            if dict.isEmpty { out += "{}"; return }
            out += "{"
            for (i, entry) in dict.sorted(by: { $0.key < $1.key }).enumerated() {
                if i > 0 { out += "," }
                if pretty { out += "\n" + String(repeating: "  ", count: indent + 1) }
                JSONValue.writeString(entry.key, into: &out)
                out += pretty ? ": " : ":"
                entry.value.write(into: &out, pretty: pretty, indent: indent + 1)
            }
            if pretty { out += "\n" + String(repeating: "  ", count: indent) }
            out += "}"
        }
    }

    /// Shortest round-tripping decimal for finite values; JSON has no NaN or infinity, so those
    /// become null.
    public static func format(_ d: Double) -> String {
        guard d.isFinite else { return "null" }
        if d == d.rounded(), abs(d) < 1e15 { return String(format: "%.1f", d) }
        return "\(d)"
    }

    public static func writeString(_ s: String, into out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
