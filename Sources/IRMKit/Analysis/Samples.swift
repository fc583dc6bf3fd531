import Foundation

/// One prompt/response pair read from a JSONL data file.
///
/// A line holds `prompt` and `response`, or `prompt`, `chosen` and `rejected` (a preference pair,
/// which gives two samples with roles), and optionally an `id` (a string or an integer). Any text
/// field may instead, or as well, be given as token ids: `prompt_ids`, `response_ids`, `chosen_ids`,
/// `rejected_ids` (arrays of integers, used verbatim: nothing is added to them). Other keys are kept
/// in `fields` for later stages; on a preference line, `chosen_NAME` and `rejected_NAME` give a
/// per-response value of field NAME (`field(_:)`).
public struct Sample: Sendable, Equatable {
    public enum Role: String, Sendable, Equatable { case chosen, rejected }

    /// The record's `id`, or `line-N` when the line has none. Integer ids become their decimal text.
    public var id: String
    /// `chosen` or `rejected` for a preference pair; `nil` for a plain prompt/response line.
    public var role: Role?
    /// 1-based line number in the file.
    public var line: Int
    public var prompt: String?
    public var response: String?
    public var promptIDs: [Int32]?
    public var responseIDs: [Int32]?
    /// The whole JSON object of the line.
    public var fields: [String: JSONValue]

    /// Names the sample in messages: `line 12 (id "q7", chosen)`.
    public var label: String {
        "line \(line) (id \"\(id)\"\(role.map { ", \($0.rawValue)" } ?? ""))"
    }

    /// The value of a data field for this sample. On a preference line a per-response value
    /// `chosen_NAME` / `rejected_NAME` is used for that side when present, else the line's `NAME`
    /// (shared by both sides, like a `qtype`). nil when absent or JSON null.
    public func field(_ name: String) -> JSONValue? {
        if let role, let value = fields["\(role.rawValue)_\(name)"], !value.isNull { return value }
        if let value = fields[name], !value.isNull { return value }
        return nil
    }

    /// The sample's numeric fields by name, with per-response `chosen_`/`rejected_` values folded
    /// into their plain names for the side they describe (see `field(_:)`).
    public var numericFields: [String: Double] {
        var out: [String: Double] = [:]
        let ownPrefix = role.map { "\($0.rawValue)_" }
        let otherPrefix = role.map { $0 == .chosen ? "rejected_" : "chosen_" }
        for (key, value) in fields {
            guard let number = value.doubleValue else { continue }
            if let otherPrefix, key.hasPrefix(otherPrefix) { continue }
            if let ownPrefix, key.hasPrefix(ownPrefix) {
                out[String(key.dropFirst(ownPrefix.count))] = number
            } else if out[key] == nil {
                out[key] = number
            }
        }
        return out
    }
}

/// Reads prompt/response data files (JSONL).
public enum SampleFile {
    /// Reads and checks every line of `path`. Errors give the file and the line number of every bad
    /// line (the first few in full).
    public static func read(path: String) throws -> [Sample] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw IRMError("cannot read \(path): no such file or it is not readable")
        }
        return try parse(data, source: path)
    }

    public static func parse(_ data: Data, source: String) throws -> [Sample] {
        guard String(data: data, encoding: .utf8) != nil else {
            throw IRMError("\(source): expected UTF-8 JSON lines, found bytes that are not valid UTF-8")
        }
        var samples: [Sample] = []
        var problems: [String] = []
        var badLines: [Int] = []
        var firstLineOfID: [String: Int] = [:]
        var lineNumber = 0
        // Split bytes, not Characters: "\r\n" is one Character, and JSON strings may hold U+2028.
        for rawLine in [UInt8](data).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.last == UInt8(ascii: "\r") ? rawLine.dropLast() : rawLine
            if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }) { continue }
            do {
                let parsed = try parseLine(String(decoding: line, as: UTF8.self), number: lineNumber, source: source)
                if let first = firstLineOfID[parsed[0].id] {
                    throw IRMError("\(source): line \(lineNumber): duplicate id \"\(parsed[0].id)\" (first used on line \(first))")
                }
                firstLineOfID[parsed[0].id] = lineNumber
                samples += parsed
            } catch let error as IRMError {
                badLines.append(lineNumber)
                if problems.count < 3 { problems.append(error.message) }
            }
        }
        if !badLines.isEmpty {
            var message = problems.joined(separator: "; ")
            if badLines.count > problems.count {
                let more = badLines.dropFirst(problems.count)
                message += "; \(more.count) more bad line\(more.count == 1 ? "" : "s") (\(more.prefix(10).map(String.init).joined(separator: ", "))\(more.count > 10 ? ", …" : ""))"
            }
            throw IRMError(message)
        }
        if samples.isEmpty { throw IRMError("\(source): no samples; expected one JSON object per line") }
        return samples
    }

    private static func parseLine(_ line: String, number: Int, source: String) throws -> [Sample] {
        let here = "\(source): line \(number)"
        let value: JSONValue
        do {
            value = try JSONValue.parse(line, source: here)
        } catch let error as IRMError {
            // The parser counts lines within the one line it was given.
            throw IRMError(error.message.replacingOccurrences(of: "malformed JSON at line 1, column", with: "malformed JSON at column"))
        }
        guard let object = value.objectValue else {
            throw IRMError("\(here): expected a JSON object with \"prompt\" and \"response\" (or \"chosen\" and \"rejected\"), found \(value.brief)")
        }
        let id: String
        switch object["id"] {
        case nil, .null?: id = "line-\(number)"
        case .string(let s)?: id = s
        case .int(let i)?: id = String(i)
        case let other?: throw IRMError("\(here): \"id\" should be a string or an integer, found \(other.brief)")
        }

        func text(_ key: String) throws -> String? {
            switch object[key] {
            case nil, .null?: return nil
            case .string(let s)?: return s
            case let other?: throw IRMError("\(here): \"\(key)\" should be a string, found \(other.brief)")
            }
        }
        func ids(_ key: String) throws -> [Int32]? {
            switch object[key] {
            case nil, .null?: return nil
            case .array(let items)?:
                return try items.enumerated().map { index, item in
                    guard let v = item.intValue, let id = Int32(exactly: v), id >= 0 else {
                        throw IRMError("\(here): \"\(key)\"[\(index)] should be a non-negative token id, found \(item.brief)")
                    }
                    return id
                }
            case let other?: throw IRMError("\(here): \"\(key)\" should be an array of token ids, found \(other.brief)")
            }
        }

        let prompt = try text("prompt"), promptIDs = try ids("prompt_ids")
        guard prompt != nil || promptIDs != nil else {
            throw IRMError("\(here): missing \"prompt\" (a string; use \"\" for none) or \"prompt_ids\"")
        }
        let response = try text("response"), responseIDs = try ids("response_ids")
        let chosen = try text("chosen"), chosenIDs = try ids("chosen_ids")
        let rejected = try text("rejected"), rejectedIDs = try ids("rejected_ids")
        let hasResponse = response != nil || responseIDs != nil
        let hasChosen = chosen != nil || chosenIDs != nil, hasRejected = rejected != nil || rejectedIDs != nil
        if hasResponse && (hasChosen || hasRejected) {
            throw IRMError("\(here): give either \"response\" or \"chosen\" and \"rejected\", not both")
        }
        if hasResponse {
            return [Sample(id: id, role: nil, line: number, prompt: prompt, response: response, promptIDs: promptIDs,
                           responseIDs: responseIDs, fields: object)]
        }
        guard hasChosen && hasRejected else {
            let missing = hasChosen ? "\"rejected\"" : hasRejected ? "\"chosen\"" : "\"response\" (or \"chosen\" and \"rejected\")"
            throw IRMError("\(here): missing \(missing)")
        }
        return [
            Sample(id: id, role: .chosen, line: number, prompt: prompt, response: chosen, promptIDs: promptIDs, responseIDs: chosenIDs, fields: object),
            Sample(id: id, role: .rejected, line: number, prompt: prompt, response: rejected, promptIDs: promptIDs, responseIDs: rejectedIDs, fields: object),
        ]
    }
}
