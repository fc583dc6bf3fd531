import ChatTemplate
import Foundation

/// What a sample's prompt or response is: text, or chat messages that a chat template renders.
public enum SampleContent: Sendable, Equatable {
    case text(String)
    /// Each message an object with a `role` and usually a `content` (and maybe `tool_calls`, …), in
    /// the data's key order.
    case messages([TemplateValue])

    public var isConversational: Bool { if case .messages = self { true } else { false } }

    /// The text a reader sees: the text itself, or the messages' contents (text parts of a list
    /// content included) joined by blank lines, without roles, markup or special tokens.
    public var plainText: String {
        switch self {
        case .text(let text): return text
        case .messages(let messages): return messages.map(Self.content(of:)).joined(separator: "\n\n")
        }
    }

    static func content(of message: TemplateValue) -> String {
        guard case .object(let object) = message else { return "" }
        switch object["content"] {
        case .string(let text)?: return text
        case .array(let parts)?:
            return parts.compactMap { part -> String? in
                guard case .object(let p) = part, case .string(let text)? = p["text"] else { return nil }
                return text
            }.joined(separator: "\n")
        default: return ""
        }
    }
}

/// One prompt/response pair read from a data file.
///
/// The data formats (docs/data-formats.md): `prompt` + `response` (irm's own), `prompt` +
/// `completion` (unpaired, text or messages), and preference pairs: TRL standard (`prompt`,
/// `chosen`, `rejected` strings), TRL implicit prompt (`chosen` and `rejected` strings sharing a
/// prefix), TRL conversational (each a list of messages), message pairs (two whole conversations),
/// and Anthropic HH-RLHF transcripts. A pair gives two samples with roles. Any text field may
/// instead, or as well, be given as token ids: `prompt_ids`, `response_ids`, `completion_ids`,
/// `chosen_ids`, `rejected_ids` (used verbatim). Other keys are kept in `fields`; on a preference
/// line, `chosen_NAME` and `rejected_NAME` give a per-response value of field NAME (`field(_:)`),
/// and UltraFeedback's `score_chosen`/`score_rejected` are the per-response `reward`.
public struct Sample: Sendable, Equatable {
    public enum Role: String, Sendable, Equatable { case chosen, rejected }

    /// How the record spelled its prompt and response(s).
    public enum Format: String, Sendable, Equatable, CaseIterable {
        case promptResponse = "prompt/response"
        case promptCompletion = "prompt/completion"
        case conversationalCompletion = "conversational prompt/completion"
        case standard = "TRL standard"
        case implicitPrompt = "TRL implicit prompt"
        case conversational = "TRL conversational"
        case messagePairs = "message pairs"
        case hhTranscript = "HH-RLHF transcript"
        case tokenIDs = "token ids"
    }

    /// The record's `id`, or `line-N` when it has none. Integer ids become their decimal text.
    public var id: String
    /// `chosen` or `rejected` for a preference pair; `nil` for an unpaired prompt/response.
    public var role: Role?
    /// 1-based number of the record (its line in a JSON-lines file).
    public var line: Int
    /// Where the record is, for messages: `line 12`, `record 3`, `row 5`.
    public var location: String
    public var format: Format
    public var prompt: SampleContent?
    public var response: SampleContent?
    public var promptIDs: [Int32]?
    public var responseIDs: [Int32]?
    /// Tool definitions for the chat template (`tools`), as TRL passes them.
    public var tools: [TemplateValue]?
    /// The prompt and response as a reader sees them: message contents without roles or markup, an
    /// HH transcript without its `Human:`/`Assistant:` markers.
    public var promptText: String?
    public var responseText: String?
    /// The whole JSON object of the record.
    public var fields: [String: JSONValue]

    /// Names the sample in messages: `line 12 (id "q7", chosen)`.
    public var label: String {
        "\(location) (id \"\(id)\"\(role.map { ", \($0.rawValue)" } ?? ""))"
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

/// Reads prompt/response data files (see `DataRecords` for the file layouts, `Sample` for the
/// record formats).
public enum SampleFile {
    /// Reads and checks every record of `path` (`-`: standard input). Errors give the file and the
    /// number of every bad record (the first few in full).
    public static func read(path: String) throws -> [Sample] {
        let (records, layout) = try DataRecords.read(path: path)
        return try samples(records, layout: layout, source: DataRecords.sourceName(path))
    }

    /// Parses JSON-lines text (or any layout `DataRecords.parse` recognises).
    public static func parse(_ data: Data, source: String, fileExtension: String = "") throws -> [Sample] {
        let (records, layout) = try DataRecords.parse(data, source: source, fileExtension: fileExtension)
        return try samples(records, layout: layout, source: source)
    }

    static func samples(_ records: [DataRecord], layout: DataRecords.Layout, source: String) throws -> [Sample] {
        var samples: [Sample] = []
        var problems: [String] = []
        var bad: [Int] = []
        var firstOfID: [String: Int] = [:]
        for record in records {
            let location = "\(layout.recordName) \(record.number)"
            do {
                if let problem = record.problem { throw IRMError(problem) }
                let parsed = try RecordInterpreter(record: record, location: location, source: source).samples()
                if let first = firstOfID[parsed[0].id] {
                    throw IRMError("\(source): \(location): duplicate id \"\(parsed[0].id)\" (first used on \(layout.recordName) \(first))")
                }
                firstOfID[parsed[0].id] = record.number
                samples += parsed
            } catch let error as IRMError {
                bad.append(record.number)
                if problems.count < 3 { problems.append(error.message) }
            }
        }
        if !bad.isEmpty {
            var message = problems.joined(separator: "; ")
            if bad.count > problems.count {
                let more = bad.dropFirst(problems.count)
                let name = layout.recordName
                message += "; \(more.count) more bad \(name)\(more.count == 1 ? "" : "s") (\(more.prefix(10).map(String.init).joined(separator: ", "))\(more.count > 10 ? ", …" : ""))"
            }
            throw IRMError(message)
        }
        if samples.isEmpty { throw IRMError("\(source): no samples; expected one JSON object per line (or a JSON array, CSV or TSV) with \"prompt\" and \"response\", or \"chosen\" and \"rejected\"") }
        return samples
    }
}

/// Turns one record into samples, recognising its format.
private struct RecordInterpreter {
    let object: TemplateObject
    let fields: [String: JSONValue]
    let number: Int
    let location: String
    let here: String

    init(record: DataRecord, location: String, source: String) {
        object = record.object
        fields = record.fields
        number = record.number
        self.location = location
        here = "\(source): \(location)"
    }

    func samples() throws -> [Sample] {
        let id: String
        switch object["id"] {
        case nil, .none?: id = "line-\(number)"
        case .string(let s)?: id = s
        case .int(let i)?: id = String(i)
        case let other?: throw IRMError("\(here): \"id\" should be a string or an integer, found \(JSONValue(other).brief)")
        }
        var fields = self.fields
        // UltraFeedback's per-response scores are the training reward of each side.
        for side in ["chosen", "rejected"] where fields["\(side)_reward"] == nil {
            if let score = fields["score_\(side)"], score.doubleValue != nil { fields["\(side)_reward"] = score }
        }
        let tools = try self.tools()

        var prompt = try content("prompt")
        let promptIDs = try ids("prompt_ids")
        let response = try content("response"), responseIDs = try ids("response_ids")
        let completion = try content("completion"), completionIDs = try ids("completion_ids")
        var chosen = try content("chosen"), chosenIDs = try ids("chosen_ids")
        var rejected = try content("rejected"), rejectedIDs = try ids("rejected_ids")
        let hasResponse = response != nil || responseIDs != nil
        let hasCompletion = completion != nil || completionIDs != nil
        let hasChosen = chosen != nil || chosenIDs != nil, hasRejected = rejected != nil || rejectedIDs != nil

        func sample(_ role: Sample.Role?, _ format: Sample.Format, _ prompt: SampleContent?, _ response: SampleContent?,
                    _ responseIDs: [Int32]?, promptText: String? = nil, responseText: String? = nil) -> Sample {
            let givenFormat = prompt == nil && response == nil ? Sample.Format.tokenIDs : format
            return Sample(id: id, role: role, line: number, location: location, format: givenFormat, prompt: prompt, response: response,
                          promptIDs: promptIDs, responseIDs: responseIDs, tools: tools,
                          promptText: promptText ?? prompt?.plainText, responseText: responseText ?? response?.plainText, fields: fields)
        }

        if hasResponse || hasCompletion {
            if hasResponse && hasCompletion { throw IRMError("\(here): give either \"response\" or \"completion\", not both") }
            if hasChosen || hasRejected {
                throw IRMError("\(here): give either \"\(hasResponse ? "response" : "completion")\" or \"chosen\" and \"rejected\", not both")
            }
            guard prompt != nil || promptIDs != nil else {
                throw IRMError("\(here): missing \"prompt\" (a string or a list of messages; use \"\" for none) or \"prompt_ids\"")
            }
            let body = hasResponse ? response : completion
            try checkSameKind(prompt, body, hasResponse ? "response" : "completion")
            let format: Sample.Format = prompt?.isConversational == true ? .conversationalCompletion
                : hasResponse ? .promptResponse : .promptCompletion
            return [sample(nil, format, prompt, body, hasResponse ? responseIDs : completionIDs)]
        }
        guard hasChosen && hasRejected else {
            let missing = hasChosen ? "\"rejected\"" : hasRejected ? "\"chosen\"" : "\"response\" (or \"chosen\" and \"rejected\", or \"completion\")"
            throw IRMError("\(here): missing \(missing)")
        }
        if let c = chosen, let r = rejected, c.isConversational != r.isConversational {
            throw IRMError("\(here): \"chosen\" is \(c.isConversational ? "a list of messages" : "text") but \"rejected\" is \(r.isConversational ? "a list of messages" : "text"); give both in one form")
        }

        var format: Sample.Format = (chosen ?? rejected)?.isConversational == true ? .conversational : .standard
        var promptText: String? = nil
        var responseTexts: (String?, String?) = (nil, nil)
        let pairIsConversational = (chosen ?? rejected)?.isConversational == true
        // TRL's maybe_extract_prompt: a prompt of the other kind than the responses is ignored, and
        // the prompt is taken from the responses' common start.
        if let p = prompt, p.isConversational != pairIsConversational, chosen != nil, rejected != nil {
            guard pairIsConversational else {
                throw IRMError("\(here): \"prompt\" is a list of messages but \"chosen\" and \"rejected\" are text; give all three as messages, or all three as text")
            }
            prompt = nil
        }
        if prompt == nil && promptIDs == nil {
            guard let c = chosen, let r = rejected else {
                throw IRMError("\(here): missing \"prompt\" (or \"prompt_ids\"): the prompt can be left out only when \"chosen\" and \"rejected\" hold it as text or messages")
            }
            switch (c, r) {
            case (.text(let ct), .text(let rt)):
                if let transcript = try HHTranscript.split(chosen: ct, rejected: rt, here: here) {
                    format = .hhTranscript
                    prompt = .text(transcript.prompt)
                    chosen = .text(transcript.chosen)
                    rejected = .text(transcript.rejected)
                    promptText = HHTranscript.plainText(transcript.prompt)
                    responseTexts = (HHTranscript.plainText(transcript.chosen), HHTranscript.plainText(transcript.rejected))
                } else {
                    format = .implicitPrompt
                    let (p, cc, rr) = try ImplicitPrompt.extract(Array(ct.unicodeScalars), Array(rt.unicodeScalars), here: here)
                    prompt = .text(String(String.UnicodeScalarView(p)))
                    chosen = .text(String(String.UnicodeScalarView(cc)))
                    rejected = .text(String(String.UnicodeScalarView(rr)))
                }
            case (.messages(let cm), .messages(let rm)):
                format = .messagePairs
                let (p, cc, rr) = try ImplicitPrompt.extract(cm, rm, here: here)
                prompt = .messages(p)
                chosen = .messages(cc)
                rejected = .messages(rr)
            default:
                break
            }
        }
        return [
            sample(.chosen, format, prompt, chosen, chosenIDs, promptText: promptText, responseText: responseTexts.0),
            sample(.rejected, format, prompt, rejected, rejectedIDs, promptText: promptText, responseText: responseTexts.1),
        ]
    }

    private func checkSameKind(_ prompt: SampleContent?, _ body: SampleContent?, _ key: String) throws {
        if let prompt, let body, prompt.isConversational != body.isConversational {
            throw IRMError("\(here): \"prompt\" is \(prompt.isConversational ? "a list of messages" : "text") but \"\(key)\" is \(body.isConversational ? "a list of messages" : "text"); give both in one form")
        }
    }

    /// A string, a list of messages, or absent.
    private func content(_ key: String) throws -> SampleContent? {
        switch object[key] {
        case nil, .none?: return nil
        case .string(let s)?: return .text(s)
        case .array(let items)?:
            guard !items.isEmpty else {
                throw IRMError("\(here): \"\(key)\" is an empty list; expected text or a list of messages")
            }
            for (index, item) in items.enumerated() {
                guard case .object(let message) = item else {
                    throw IRMError("\(here): \"\(key)\"[\(index)] should be a message object with \"role\" and \"content\", found \(JSONValue(item).brief)")
                }
                guard case .string? = message["role"] else {
                    throw IRMError("\(here): \"\(key)\"[\(index)] has no \"role\" string; a message is {\"role\": \"user\", \"content\": \"…\"}")
                }
                switch message["content"] {
                case nil, .none?, .string?, .array?: break
                case let other?: throw IRMError("\(here): \"\(key)\"[\(index)].content should be text, a list of parts or null, found \(JSONValue(other).brief)")
                }
            }
            return .messages(items)
        case let other?:
            throw IRMError("\(here): \"\(key)\" should be a string or a list of messages, found \(JSONValue(other).brief)")
        }
    }

    private func ids(_ key: String) throws -> [Int32]? {
        switch fields[key] {
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

    /// `tools` as TRL reads it: a list of tool definitions, or that list as a JSON string.
    private func tools() throws -> [TemplateValue]? {
        switch object["tools"] {
        case nil, .none?: return nil
        case .array(let items)?: return items
        case .string(let text)?:
            let value: TemplateValue = try JSONValue.parseTree(Data(text.utf8), source: "\(here): \"tools\"")
            guard case .array(let items) = value else { throw IRMError("\(here): \"tools\" should be a list of tool definitions") }
            return items
        case let other?: throw IRMError("\(here): \"tools\" should be a list of tool definitions, found \(JSONValue(other).brief)")
        }
    }
}

/// TRL's `extract_prompt`: the prompt is the longest common start of `chosen` and `rejected`
/// (characters of text, or whole messages), less a space that ends it.
enum ImplicitPrompt {
    /// Follows TRL 1.16 `trl.data_utils.extract_prompt` to the letter, including its corner cases:
    /// when one response is a prefix of the other, Python's loop ends one element short of it; and
    /// a prompt that would be empty keeps Python's negative index (`[:-1]`).
    static func extract<Element: Equatable>(_ chosen: [Element], _ rejected: [Element], here: String) throws
        -> (prompt: [Element], chosen: [Element], rejected: [Element]) {
        let shorter = min(chosen.count, rejected.count)
        guard shorter > 0 else {
            throw IRMError("\(here): no \"prompt\", and \"chosen\" or \"rejected\" is empty, so there is no common start to take as the prompt")
        }
        var idx = shorter - 1
        for i in 0..<shorter where chosen[i] != rejected[i] {
            idx = i
            if isSpace(chosen[(i - 1 + chosen.count) % chosen.count]) { idx -= 1 }
            break
        }
        // Python slicing with a possibly negative index.
        func cut(_ a: [Element]) -> (head: [Element], tail: [Element]) {
            let k = idx < 0 ? max(a.count + idx, 0) : min(idx, a.count)
            return (Array(a[..<k]), Array(a[k...]))
        }
        let c = cut(chosen), r = cut(rejected)
        return (c.head, c.tail, r.tail)
    }

    private static func isSpace<Element>(_ e: Element) -> Bool {
        (e as? Unicode.Scalar) == " "
    }
}

/// Anthropic HH-RLHF transcripts: `\n\nHuman: … \n\nAssistant: …`, one string per response.
enum HHTranscript {
    static let assistantMarker = "\n\nAssistant:"
    static let humanMarker = "\n\nHuman:"

    /// Splits both transcripts after their last `\n\nAssistant:`; nil when the texts are not HH
    /// transcripts. The two prompts must agree.
    static func split(chosen: String, rejected: String, here: String) throws -> (prompt: String, chosen: String, rejected: String)? {
        guard chosen.hasPrefix(humanMarker) || chosen.hasPrefix("Human:"),
              let c = chosen.range(of: assistantMarker, options: .backwards),
              let r = rejected.range(of: assistantMarker, options: .backwards) else { return nil }
        let prompt = String(chosen[..<c.upperBound]), other = String(rejected[..<r.upperBound])
        guard prompt == other else {
            throw IRMError("\(here): an HH-RLHF transcript pair whose conversations differ before the last \"\\n\\nAssistant:\"; the prompt must be the same for \"chosen\" and \"rejected\"")
        }
        return (prompt, String(chosen[c.upperBound...]), String(rejected[r.upperBound...]))
    }

    /// The turns' text without the role markers, joined by blank lines.
    static func plainText(_ transcript: String) -> String {
        var text = transcript
        for marker in [humanMarker, assistantMarker] { text = text.replacingOccurrences(of: marker, with: "\n\n") }
        if text.hasPrefix("Human:") { text.removeFirst("Human:".count) }
        return text.components(separatedBy: "\n\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.joined(separator: "\n\n")
    }
}
