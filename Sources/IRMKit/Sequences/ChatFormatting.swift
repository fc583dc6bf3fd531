import ChatTemplate
import Foundation

/// What a checkpoint's tokenizer configuration says about formatting text for it: the chat
/// template and the special-token strings (`bos_token`, `eos_token`, …) that transformers puts in
/// the template's context.
public struct ChatFormatting: Sendable {
    /// The parsed chat template, when the checkpoint (or `--chat-template`) has one.
    public var template: ChatTemplate?
    /// Where the template came from, for messages and the manifest.
    public var templateSource: String?
    /// `bos_token`, `eos_token`, `unk_token`, `pad_token`, … as strings.
    public var specialTokens: [String: String]
    /// The date `strftime_now` renders (templates such as Llama 3.1's print today's date).
    public var date: Date

    public var bosToken: String? { specialTokens["bos_token"] }
    public var eosToken: String? { specialTokens["eos_token"] }

    public init(template: ChatTemplate?, templateSource: String?, specialTokens: [String: String], date: Date) {
        self.template = template
        self.templateSource = templateSource
        self.specialTokens = specialTokens
        self.date = date
    }

    /// Reads a checkpoint's chat template (its `chat_template.jinja`, else the `chat_template` of its
    /// `tokenizer_config.json`: a string, or a list of named templates of which `default` is used)
    /// and the special tokens of its `tokenizer_config.json`. `templatePath`, when
    /// given, replaces the template with that file's text (a `.jinja` file, or a
    /// tokenizer_config.json holding one).
    public init(checkpoint: Checkpoint, templatePath: String? = nil, date: Date) throws {
        var tokens: [String: String] = [:]
        var templateText: String? = nil
        var source: String? = nil
        if let text = checkpoint.tokenizerConfigJSON {
            let where_ = "\(checkpoint.path): /tokenizer/tokenizer_config.json"
            let config = try JSONValue.parse(text, source: where_)
            for (key, value) in config.objectValue ?? [:] where key.hasSuffix("_token") {
                if let token = value.stringValue ?? value["content"]?.stringValue { tokens[key] = token }
            }
            if let t = try Self.templateText(config, source: where_) {
                templateText = t
                source = "\(where_): chat_template"
            }
        }
        // As in transformers, a chat_template.jinja file takes priority over tokenizer_config.json.
        if let stored = checkpoint.chatTemplate {
            templateText = stored
            source = "\(checkpoint.path): /tokenizer/chat_template.jinja"
        }
        if let templatePath {
            guard let data = FileManager.default.contents(atPath: templatePath), let text = String(data: data, encoding: .utf8) else {
                throw IRMError("--chat-template \(templatePath): cannot be read as UTF-8 text")
            }
            if templatePath.hasSuffix(".json") {
                let config = try JSONValue.parse(text, source: templatePath)
                guard let t = try Self.templateText(config, source: templatePath) else {
                    throw IRMError("\(templatePath): has no \"chat_template\"")
                }
                templateText = t
            } else {
                templateText = text
            }
            source = templatePath
        }
        if tokens["eos_token"] == nil, let id = checkpoint.config.eosTokenID, let tokenizer = try? Tokenizer(json: checkpoint.tokenizerJSON, sourceDescription: checkpoint.path),
           let token = tokenizer.tokenString(Int32(truncatingIfNeeded: id)) {
            tokens["eos_token"] = token
        }
        let template = try templateText.map { try Self.parse($0, origin: source ?? "chat template") }
        self.init(template: template, templateSource: source, specialTokens: tokens, date: date)
    }

    private static func parse(_ text: String, origin: String) throws -> ChatTemplate {
        do {
            return try ChatTemplate(source: text)
        } catch {
            throw IRMError("\(origin): \(error.description)")
        }
    }

    /// `YYYY-MM-DD` in UTC.
    public static func dateText(_ date: Date) -> String {
        let c = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(secondsFromGMT: 0) ?? .current, from: date)
        return String(format: "%04d-%02d-%02d", c.year ?? 1970, c.month ?? 1, c.day ?? 1)
    }

    /// Reads `YYYY-MM-DD` as midnight UTC.
    public static func date(fromText text: String) throws -> Date {
        let parts = text.split(separator: "-").map { Int($0) }
        guard parts.count == 3, let y = parts[0], let m = parts[1], let d = parts[2], (1...12).contains(m), (1...31).contains(d),
              let date = DateComponents(calendar: Calendar(identifier: .gregorian), timeZone: TimeZone(secondsFromGMT: 0),
                                        year: y, month: m, day: d).date else {
            throw IRMError("--template-date: expected a date as YYYY-MM-DD, found \"\(text)\"")
        }
        return date
    }

    private static func templateText(_ config: JSONValue, source: String) throws -> String? {
        switch config["chat_template"] {
        case nil, .null?: return nil
        case .string(let text)?: return text
        case .array(let named)?:
            let templates = named.compactMap { entry -> (String, String)? in
                guard let name = entry["name"]?.stringValue, let text = entry["template"]?.stringValue else { return nil }
                return (name, text)
            }
            guard let chosen = templates.first(where: { $0.0 == "default" }) ?? templates.first else {
                throw IRMError("\(source): \"chat_template\" is a list without {\"name\", \"template\"} entries")
            }
            return chosen.1
        case let other?:
            throw IRMError("\(source): \"chat_template\" should be a string or a list of named templates, found \(other.brief)")
        }
    }

    /// Renders messages as transformers' `apply_chat_template(messages, tokenize=False, ...)` does
    /// (`chatContext` normalises the messages as transformers does).
    public func render(_ messages: [TemplateValue], addGenerationPrompt: Bool, tools: [TemplateValue]?, sample: String) throws -> String {
        guard let template else {
            throw IRMError("\(sample): conversational data needs a chat template, and the checkpoint has none (no \"chat_template\" in its tokenizer_config.json); pass --chat-template FILE")
        }
        let context = ChatTemplate.chatContext(messages: messages, addGenerationPrompt: addGenerationPrompt,
                                               specialTokens: specialTokens, tools: tools)
        do {
            return try template.render(context, now: date)
        } catch {
            let origin = templateSource ?? "the chat template"
            if error.isRaisedByTemplate {
                throw IRMError("\(sample): \(origin) refused the conversation: \(error.message)")
            }
            throw IRMError("\(sample): \(origin): \(error.description)")
        }
    }
}
