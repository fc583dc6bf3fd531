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
    /// Why the checkpoint's template cannot be used (it does not parse); reported only when a
    /// sample needs the template, so that text data still runs.
    public var templateProblem: String?

    public var bosToken: String? { specialTokens["bos_token"] }
    public var eosToken: String? { specialTokens["eos_token"] }

    public init(template: ChatTemplate?, templateSource: String?, specialTokens: [String: String], date: Date,
                templateProblem: String? = nil) {
        self.templateProblem = templateProblem
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
        if let text = checkpoint.tokenizerConfigJSON {
            let config = try JSONValue.parse(text, source: "\(checkpoint.path): /tokenizer/tokenizer_config.json")
            for (key, value) in config.objectValue ?? [:] where key.hasSuffix("_token") {
                if let token = value.stringValue ?? value["content"]?.stringValue { tokens[key] = token }
            }
        }
        let stored = try checkpoint.storedChatTemplate()
        var templateText = stored?.text
        var source = stored?.origin
        if let templatePath {
            let data = try InputFile.contents(templatePath, what: "the --chat-template file")
            try JSONValue.refuseByteOrderMark(data, source: "--chat-template \(templatePath)",
                                              why: templatePath.hasSuffix(".json") ? JSONValue.jsonWhy : JSONValue.templateWhy)
            guard let text = String(data: data, encoding: .utf8) else {
                throw IRMError("--chat-template \(templatePath): cannot be read as UTF-8 text")
            }
            if templatePath.hasSuffix(".json") {
                let config = try JSONValue.parse(text, source: templatePath)
                guard let t = try Checkpoint.chatTemplate(in: config, source: templatePath) else {
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
        var template: ChatTemplate? = nil, problem: String? = nil
        if let templateText {
            do {
                template = try ChatTemplate(source: templateText)
            } catch {
                problem = "\(source ?? "the chat template"): \(error.description)"
            }
        }
        self.init(template: template, templateSource: source, specialTokens: tokens, date: date, templateProblem: problem)
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

    /// Renders messages as transformers' `apply_chat_template(messages, tokenize=False, ...)` does
    /// (`chatContext` normalises the messages as transformers does).
    public func render(_ messages: [TemplateValue], addGenerationPrompt: Bool, tools: [TemplateValue]?, sample: String) throws -> String {
        guard let template else {
            if let templateProblem { throw IRMError("\(sample): the chat template cannot be used: \(templateProblem)") }
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
