import ChatTemplate
import Foundation
import CSV

/// One record of a data file: a JSON object, with the order of its keys kept (Python's `json.loads`
/// keeps it too, and chat templates that print a message's tool calls depend on it).
public struct DataRecord: Sendable {
    /// 1-based: the line of a JSON-lines file, the element of a JSON array, the data row of a CSV file.
    public var number: Int
    public var object: TemplateObject
    /// Why the record could not be read (malformed JSON, not an object); `object` is then empty.
    /// Reported with the other bad records, in order.
    public var problem: String? = nil

    /// The record's fields as `JSONValue`s, for the stages that look fields up by name.
    public var fields: [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        for key in object.keys { if let value = object[key] { out[key] = JSONValue(value) } }
        return out
    }
}

/// Reads the data files people have into records: JSON lines, a JSON array, CSV or TSV, from a file
/// or from standard input (`-`). A UTF-8 byte-order mark is skipped. Binary formats (Parquet,
/// Arrow, pickles, compressed files) are refused with the pandas line that converts them.
public enum DataRecords {
    /// How the records of a file were written.
    public enum Layout: String, Sendable {
        case jsonLines = "JSON lines", jsonArray = "a JSON array", csv = "CSV", tsv = "TSV"

        /// What a record is called in messages.
        var recordName: String {
            switch self {
            case .jsonLines: "line"
            case .jsonArray: "record"
            case .csv, .tsv: "row"
            }
        }
    }

    /// Reads `path` (`-` for standard input). Errors name the file and, for a bad record, its number.
    public static func read(path: String) throws -> (records: [DataRecord], layout: Layout) {
        try parse(try contents(of: path), source: sourceName(path), fileExtension: fileExtension(path))
    }

    /// The bytes of `path`, or of standard input for `-` (read once: keep them to hash them).
    public static func contents(of path: String) throws -> Data {
        let data: Data
        if path == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw IRMError("\(path): no such file")
            }
            if isDirectory.boolValue {
                throw IRMError("\(path): is a directory; --data takes one file (JSON lines, a JSON array, CSV or TSV)")
            }
            data = try InputFile.contents(path, what: "the data file; to read a pipe, pass --data - and pipe it into standard input")
        }
        return data
    }

    /// How messages name `path`.
    public static func sourceName(_ path: String) -> String { path == "-" ? "standard input" : path }

    /// The lower-case extension that picks CSV or TSV.
    public static func fileExtension(_ path: String) -> String { URL(fileURLWithPath: path).pathExtension.lowercased() }

    /// Parses file contents. `fileExtension` (lower case, without the dot) picks CSV or TSV; any
    /// other content is JSON, an array when its first character is `[`, else one object per line.
    public static func parse(_ data: Data, source: String, fileExtension: String = "") throws -> (records: [DataRecord], layout: Layout) {
        var bytes = [UInt8](data)
        if bytes.starts(with: JSONValue.byteOrderMark) { bytes.removeFirst(3) }
        try refuseBinary(bytes, source: source, fileExtension: fileExtension)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw IRMError("\(source): expected UTF-8 text (JSON lines, a JSON array, CSV or TSV), found bytes that are not valid UTF-8")
        }
        switch fileExtension {
        case "csv": return (try delimited(text, delimiter: ",", layout: .csv, source: source), .csv)
        case "tsv", "tab": return (try delimited(text, delimiter: "\t", layout: .tsv, source: source), .tsv)
        default: break
        }
        if bytes.first(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }) == UInt8(ascii: "[") {
            return (try jsonArray(bytes, source: source), .jsonArray)
        }
        return (try jsonLines(bytes, source: source), .jsonLines)
    }

    // MARK: JSON

    private static func jsonLines(_ bytes: [UInt8], source: String) throws -> [DataRecord] {
        var records: [DataRecord] = []
        var lineNumber = 0
        // Split bytes, not Characters: "\r\n" is one Character, and JSON strings may hold U+2028.
        for rawLine in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.last == UInt8(ascii: "\r") ? rawLine.dropLast() : rawLine
            if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }) { continue }
            let here = "\(source): line \(lineNumber)"
            do {
                let value: TemplateValue = try JSONValue.parseTree(Data(line), source: here)
                records.append(DataRecord(number: lineNumber, object: try object(value, here)))
            } catch let error as IRMError {
                // The parser counts lines within the one line it was given.
                let message = error.message.replacingOccurrences(of: "malformed JSON at line 1, column", with: "malformed JSON at column")
                records.append(DataRecord(number: lineNumber, object: TemplateObject(), problem: message))
            }
        }
        return records
    }

    private static func jsonArray(_ bytes: [UInt8], source: String) throws -> [DataRecord] {
        let value: TemplateValue = try JSONValue.parseTree(Data(bytes), source: source)
        guard case .array(let items) = value else {
            throw IRMError("\(source): expected a JSON array of objects")
        }
        return try items.enumerated().map { index, item in
            DataRecord(number: index + 1, object: try object(item, "\(source): record \(index + 1)"))
        }
    }

    private static func object(_ value: TemplateValue, _ here: String) throws -> TemplateObject {
        guard case .object(let object) = value else {
            throw IRMError("\(here): expected a JSON object with \"prompt\" and \"response\" (or \"chosen\" and \"rejected\"), found \(JSONValue(value).brief)")
        }
        return object
    }

    // MARK: CSV and TSV

    /// Columns whose cells are always text, whatever they look like.
    static let textColumns: Set<String> = ["id", "prompt", "response", "completion", "chosen", "rejected", "reference", "qtype", "policy", "system"]

    /// A CSV/TSV file with a header row. A cell of a text column stays a string; in other columns an
    /// empty cell is null, `true`/`false` are booleans, a number is a number, and a cell of a
    /// `*_ids` column is read as a JSON array.
    private static func delimited(_ text: String, delimiter: Character, layout: Layout, source: String) throws -> [DataRecord] {
        let reader: CSVReader
        do {
            reader = try CSVReader(string: text, hasHeaderRow: true, trimFields: false, delimiter: delimiter.unicodeScalars.first ?? ",")
        } catch {
            throw IRMError("\(source): malformed \(layout.rawValue): \(error)")
        }
        guard let header = reader.headerRow, !header.isEmpty, header != [""] else {
            throw IRMError("\(source): expected a header row naming the columns (prompt, chosen, rejected, …)")
        }
        if let duplicate = Dictionary(grouping: header, by: { $0 }).first(where: { $0.value.count > 1 })?.key {
            throw IRMError("\(source): the header names the column \"\(duplicate)\" twice")
        }
        var records: [DataRecord] = []
        var index = -1
        while let row = reader.next() {
            index += 1
            let here = "\(source): row \(index + 1)"
            if row.allSatisfy({ $0.isEmpty }) { continue }
            guard row.count == header.count else {
                throw IRMError("\(here): expected \(header.count) cells (one per column of the header), found \(row.count)")
            }
            var members: [(String, TemplateValue)] = []
            for (column, cell) in zip(header, row) {
                members.append((column, try cellValue(cell, column: column, here: here)))
            }
            records.append(DataRecord(number: index + 1, object: TemplateObject(members)))
        }
        if let error = reader.error { throw IRMError("\(source): malformed \(layout.rawValue) after row \(index + 1): \(error)") }
        return records
    }

    private static func cellValue(_ cell: String, column: String, here: String) throws -> TemplateValue {
        if textColumns.contains(column) { return .string(cell) }
        if column.hasSuffix("_ids") {
            guard !cell.isEmpty else { return .none }
            do {
                return try JSONValue.parseTree(Data(cell.utf8), source: "\(here): column \"\(column)\"")
            } catch let error as IRMError {
                throw IRMError("\(error.message) (a token-id column holds a JSON array such as [1, 2, 3])")
            }
        }
        let trimmed = cell.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty { return .none }
        if trimmed == "true" || trimmed == "True" { return .bool(true) }
        if trimmed == "false" || trimmed == "False" { return .bool(false) }
        if let integer = Int(trimmed) { return .int(integer) }
        if let number = Double(trimmed), number.isFinite, trimmed.allSatisfy({ "0123456789+-.eE".contains($0) }) { return .double(number) }
        return .string(cell)
    }

    // MARK: Binary files

    /// Magic numbers of binary formats that data sets are saved in, with the pandas reader for each.
    private static let binaryFormats: [(magic: [UInt8], name: String, reader: String)] = [
        (Array("PAR1".utf8), "Parquet", "read_parquet"),
        (Array("ARROW1".utf8), "Arrow IPC (Feather)", "read_feather"),
        ([0x1F, 0x8B], "gzip-compressed", "read_json(PATH, lines=True, compression='gzip')"),
        ([0x50, 0x4B, 0x03, 0x04], "zip-compressed", "read_json(PATH, lines=True, compression='zip')"),
        ([0x28, 0xB5, 0x2F, 0xFD], "zstd-compressed", "read_json(PATH, lines=True, compression='zstd')"),
        ([0x80], "a Python pickle", "read_pickle"),
        ([0xFF, 0xFE], "UTF-16 text", "read_json(PATH, lines=True, encoding='utf-16')"),
        ([0xFE, 0xFF], "UTF-16 text", "read_json(PATH, lines=True, encoding='utf-16')"),
    ]

    private static func refuseBinary(_ bytes: [UInt8], source: String, fileExtension: String) throws {
        var name: String? = nil, reader = "read_parquet"
        if let format = binaryFormats.first(where: { bytes.starts(with: $0.magic) }) {
            name = format.name
            reader = format.reader
        } else if ["parquet", "arrow", "feather", "pkl", "pickle"].contains(fileExtension) {
            name = fileExtension
        } else if bytes.prefix(4096).contains(0) {
            name = "binary data"
        }
        guard let name else { return }
        let call = reader.contains("(") ? reader.replacingOccurrences(of: "PATH", with: "'IN'") : "\(reader)('IN')"
        throw IRMError("\(source): is \(name), not text; irm reads JSON lines, a JSON array, CSV or TSV. Convert it with pandas: python -c \"import pandas as pd; pd.\(call).to_json('OUT.jsonl', orient='records', lines=True, force_ascii=False)\"")
    }
}

extension JSONValue {
    /// The JSON value of a template value (undefined becomes null; key order is dropped).
    init(_ value: TemplateValue) {
        switch value {
        case .undefined, .none: self = .null
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(Int64(i))
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .array(let items): self = .array(items.map(JSONValue.init))
        case .object(let object):
            var out: [String: JSONValue] = [:]
            for key in object.keys { if let v = object[key] { out[key] = JSONValue(v) } }
            self = .object(out)
        }
    }
}

extension TemplateValue: JSONTree {
    static var jsonNull: TemplateValue { .none }
    static func jsonBool(_ value: Bool) -> TemplateValue { .bool(value) }
    static func jsonInteger(_ value: Int64) -> TemplateValue { Int(exactly: value).map { .int($0) } ?? .double(Double(value)) }
    static func jsonDouble(_ value: Double) -> TemplateValue { .double(value) }
    static func jsonString(_ value: String) -> TemplateValue { .string(value) }
    static func jsonArray(_ items: [TemplateValue]) -> TemplateValue { .array(items) }
    static func jsonObject(_ members: [(String, TemplateValue)]) -> TemplateValue { .object(TemplateObject(members)) }
}
