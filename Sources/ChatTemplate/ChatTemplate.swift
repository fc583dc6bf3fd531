import Foundation

/// A parsed Hugging Face chat template (a Jinja2 template from `tokenizer_config.json`) that renders
/// byte for byte like transformers' `apply_chat_template(..., tokenize=False)`.
///
/// The template is parsed once; rendering is a pure function of the context (and of `now`, which
/// only `strftime_now` reads). Templates come from untrusted checkpoints, so parsing and rendering
/// never crash: unsupported syntax, runtime errors and exhausted limits are `ChatTemplateError`s.
public struct ChatTemplate: Sendable {
    /// The template source as given.
    public let source: String
    private let body: [Statement]

    /// Parses `source`. Unsupported syntax (an unknown tag, filter or test, `{% include %}`,
    /// `{% call %}`, ...) is an error naming the construct with its line and column.
    public init(source: String) throws(ChatTemplateError) {
        self.source = source
        body = try Parser.parse(source)
    }

    /// Renders the template with `context` as its variables (on top of the globals
    /// `raise_exception`, `strftime_now`, `range`, `namespace` and `dict`).
    ///
    /// `now` is the time `strftime_now` formats, in UTC (transformers uses the local time; pass a
    /// fixed date for reproducible output). A template's `raise_exception(message)` becomes an error
    /// with `isRaisedByTemplate` set and `message` exactly the template's text.
    public func render(_ context: TemplateObject, now: Date? = nil) throws(ChatTemplateError) -> String {
        let state = RenderState(now: now ?? Date())
        let contextScope = Scope(parent: Globals.scope())
        for (key, value) in context.pairs {
            if case .undefined = value { continue }
            contextScope.assign(key, try Value(value))
        }
        var output = ""
        _ = try Renderer(state: state).execute(body, in: Scope(parent: contextScope), into: &output)
        guard output.utf8.count <= RenderLimits.maximumOutputBytes else {
            throw ChatTemplateError(message: "rendered text exceeds \(RenderLimits.maximumOutputBytes) bytes")
        }
        return output
    }

    /// The variables transformers' `apply_chat_template` gives a template: `messages`, `tools`,
    /// `documents` (None unless `extra` sets it), `add_generation_prompt`, the special-token strings
    /// (`bos_token`, `eos_token`, ... pass only the tokens the tokenizer has; a missing one stays
    /// undefined, as in transformers), then `extra` (keyword arguments such as `enable_thinking`),
    /// which overrides the others.
    ///
    /// Messages are normalised as transformers 5 does: keys whose value is None are dropped, and a
    /// message with `reasoning_content`, `thinking` or `reasoning` gets the first of those under both
    /// `thinking` (placed first) and `reasoning_content`.
    public static func chatContext(
        messages: [TemplateValue], addGenerationPrompt: Bool, specialTokens: [String: String],
        tools: [TemplateValue]? = nil, extra: [(String, TemplateValue)] = []
    ) -> TemplateObject {
        var context = TemplateObject()
        context["messages"] = .array(messages.map(normalizedMessage))
        context["tools"] = tools.map { .array($0) } ?? TemplateValue.none
        context["documents"] = TemplateValue.none
        context["add_generation_prompt"] = .bool(addGenerationPrompt)
        for key in specialTokens.keys.sorted() {
            if let token = specialTokens[key] { context[key] = .string(token) }
        }
        for (key, value) in extra { context[key] = value }
        return context
    }

    private static func normalizedMessage(_ message: TemplateValue) -> TemplateValue {
        guard case .object(let object) = message else { return message }
        let kept = object.pairs.filter { $0.1 != .none }
        let reasoning = ["reasoning_content", "thinking", "reasoning"].lazy.compactMap { key in
            kept.first(where: { $0.0 == key })?.1
        }.first
        guard let reasoning else { return .object(TemplateObject(kept)) }
        var aliased = TemplateObject([("thinking", reasoning)])
        for (key, value) in kept where key != "thinking" { aliased[key] = value }
        aliased["thinking"] = reasoning
        aliased["reasoning_content"] = reasoning
        return .object(aliased)
    }
}
