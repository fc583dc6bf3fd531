import ChatTemplate
import Foundation

/// How prompt and response become the token sequence that is scored: the rule of the trainer or
/// benchmark whose numbers irm should reproduce (docs/scoring.md, "Conventions").
public enum ScoringConvention: String, Sendable, CaseIterable {
    /// TRL ≥ 1.0's DPOTrainer: prompt + completion tokenised together (with the tokenizer's special
    /// tokens), the completion starting where the tokenised prompt stops being a prefix of it, the
    /// EOS string appended to text completions; chat data rendered by the chat template.
    case trl
    /// Prompt tokenised with special tokens, response tokenised alone, no EOS (irm before 0.3).
    case separate
    /// RewardBench 0.1.4's DPO scoring, quirks included.
    case rewardbench
}

/// Whether an EOS token ends each response.
public enum EOSRule: String, Sendable, CaseIterable {
    /// The convention's rule: TRL appends one to text completions (not to chat data, whose template
    /// closes the turn), RewardBench always, `separate` never.
    case auto
    case always
    case never
}

/// The options that decide the scored sequences.
public struct SequenceOptions: Sendable {
    public var convention: ScoringConvention = .trl
    public var eos: EOSRule = .auto
    /// The trainer's `max_length`; longer sequences are reported (TRL truncates them in training).
    /// nil: the convention's default (TRL 1024, RewardBench 2048, none for `separate`).
    public var maxLength: Int?

    public init() {}

    var resolvedMaxLength: Int? {
        maxLength ?? (convention == .trl ? 1024 : convention == .rewardbench ? 2048 : nil)
    }
}

/// Builds, for every sample, the prompt and response token ids that its convention scores.
///
/// Ids given in the data (`prompt_ids`, `response_ids`, …) are used verbatim under every
/// convention. A BOS is never doubled under `trl` and `separate`: when text already starts with the
/// BOS string, the tokenizer's own is left out, with a warning. RewardBench's double BOS on
/// templated prompts is its documented behaviour and is kept.
public struct TrainingSequences {
    public let tokenizer: Tokenizer?
    public let formatting: ChatFormatting?
    public let options: SequenceOptions
    /// The data file, for messages.
    public let source: String

    public init(tokenizer: Tokenizer?, formatting: ChatFormatting?, options: SequenceOptions, source: String) {
        self.tokenizer = tokenizer
        self.formatting = formatting
        self.options = options
        self.source = source
    }

    /// The sequences, one per sample in order, warnings about what was done to them, and whether a
    /// chat template was rendered (so that its date matters).
    public func build(_ samples: [Sample]) throws -> (sequences: [ScoringSample], warnings: [String], renderedTemplate: Bool) {
        var notes = Notes()
        var out: [ScoringSample] = []
        out.reserveCapacity(samples.count)
        var i = 0
        while i < samples.count {
            // The two sides of a pair share their prompt's tokens (TRL takes the shorter common prefix).
            var group = [samples[i]]
            if samples[i].role == .chosen, i + 1 < samples.count, samples[i + 1].role == .rejected, samples[i + 1].line == samples[i].line {
                group.append(samples[i + 1])
            }
            out += try sequences(group, notes: &notes)
            i += group.count
        }
        if let maxLength = options.resolvedMaxLength {
            checkLength(out, samples: samples, maxLength: maxLength, notes: &notes)
        }
        return (out, notes.messages(convention: options.convention), notes.renderedTemplate)
    }

    // MARK: Conventions

    private func sequences(_ group: [Sample], notes: inout Notes) throws -> [ScoringSample] {
        let names = group.map { "\(source): \($0.label)" }
        let usesIDs = group.contains { $0.promptIDs != nil || $0.responseIDs != nil }
        if usesIDs || group.allSatisfy({ $0.prompt == nil && $0.response == nil }) {
            return try zip(group, names).map { try givenIDs($0, name: $1) }
        }
        let tokenizer = try requireTokenizer(names[0])
        switch options.convention {
        case .trl: return try trl(group, names: names, tokenizer: tokenizer, notes: &notes)
        case .separate: return try separate(group, names: names, tokenizer: tokenizer, notes: &notes)
        case .rewardbench: return try rewardBench(group, names: names, tokenizer: tokenizer, notes: &notes)
        }
    }

    /// Ids from the data, verbatim; a text field beside them is tokenised as `separate` does.
    private func givenIDs(_ sample: Sample, name: String) throws -> ScoringSample {
        func ids(_ given: [Int32]?, _ content: SampleContent?, special: Bool, field: String) throws -> [Int32] {
            if let given { return given }
            guard let content else { return [] }
            guard case .text(let text) = content else {
                throw IRMError("\(name): \"\(field)_ids\" is given for one part but \"\(field)\" is a list of messages; give ids for both, or messages for both")
            }
            return try requireTokenizer(name).encode(text, addSpecialTokens: special).ids
        }
        var response = try ids(sample.responseIDs, sample.response, special: false, field: sample.role?.rawValue ?? "response")
        if options.eos == .always, sample.responseIDs == nil, let eos = try eosID(name), response.last != eos { response.append(eos) }
        return ScoringSample(name: name, promptIDs: try ids(sample.promptIDs, sample.prompt, special: true, field: "prompt"),
                             responseIDs: response)
    }

    /// TRL 1.16 `DPOTrainer._prepare_dataset` and `tokenize_fn`.
    private func trl(_ group: [Sample], names: [String], tokenizer: Tokenizer, notes: inout Notes) throws -> [ScoringSample] {
        let promptIDs: [Int32]
        var fullIDs: [[Int32]] = []
        switch group[0].prompt {
        case .messages(let prompt)?:
            let formatting = try requireFormatting(names[0], notes: &notes)
            promptIDs = tokenizer.encode(try formatting.render(prompt, addGenerationPrompt: true, tools: group[0].tools, sample: names[0]),
                                         addSpecialTokens: false).ids
            for (sample, name) in zip(group, names) {
                guard case .messages(let response)? = sample.response else { throw mixed(name) }
                var ids = tokenizer.encode(try formatting.render(prompt + response, addGenerationPrompt: false, tools: sample.tools, sample: name),
                                           addSpecialTokens: false).ids
                if options.eos == .always, let eos = try eosID(name), ids.last != eos { ids.append(eos) }
                fullIDs.append(ids)
            }
        case .text(let prompt)?:
            promptIDs = encodeGuardingBOS(prompt, tokenizer: tokenizer, notes: &notes)
            let eosText = options.eos == .never ? nil : try eosString(names[0])
            for (sample, name) in zip(group, names) {
                guard case .text(var response)? = sample.response else { throw mixed(name) }
                if let eosText, !response.hasSuffix(eosText) { response += eosText }
                fullIDs.append(encodeGuardingBOS(prompt + response, tokenizer: tokenizer, notes: &notes))
            }
        case nil:
            throw IRMError("\(names[0]): no prompt")
        }
        let promptLength = fullIDs.map { Self.commonPrefixLength(promptIDs, $0) }.min() ?? promptIDs.count
        if promptLength < promptIDs.count { notes.boundaryMoved += group.count }
        return zip(names, fullIDs).map { name, full in
            ScoringSample(name: name, promptIDs: Array(promptIDs[..<promptLength]), responseIDs: Array(full[promptLength...]))
        }
    }

    /// Prompt with special tokens, response alone; chat data split where the rendered prompt stops
    /// being a prefix of the rendered conversation.
    private func separate(_ group: [Sample], names: [String], tokenizer: Tokenizer, notes: inout Notes) throws -> [ScoringSample] {
        try zip(group, names).map { sample, name in
            var promptIDs: [Int32], responseIDs: [Int32]
            switch (sample.prompt, sample.response) {
            case (.text(let prompt)?, .text(let response)?):
                promptIDs = encodeGuardingBOS(prompt, tokenizer: tokenizer, notes: &notes)
                responseIDs = tokenizer.encode(response, addSpecialTokens: false).ids
            case (.messages(let prompt)?, .messages(let response)?):
                let formatting = try requireFormatting(name, notes: &notes)
                let promptText = try formatting.render(prompt, addGenerationPrompt: true, tools: sample.tools, sample: name)
                let fullText = try formatting.render(prompt + response, addGenerationPrompt: false, tools: sample.tools, sample: name)
                let split = Self.commonPrefixLength(Array(promptText.unicodeScalars), Array(fullText.unicodeScalars))
                let scalars = Array(fullText.unicodeScalars)
                promptIDs = tokenizer.encode(String(String.UnicodeScalarView(scalars[..<split])), addSpecialTokens: false).ids
                responseIDs = tokenizer.encode(String(String.UnicodeScalarView(scalars[split...])), addSpecialTokens: false).ids
            default:
                throw mixed(name)
            }
            if options.eos == .always, let eos = try eosID(name), responseIDs.last != eos { responseIDs.append(eos) }
            return ScoringSample(name: name, promptIDs: promptIDs, responseIDs: responseIDs)
        }
    }

    /// RewardBench 0.1.4 (`rewardbench/utils.py` `prepare_dialogue_from_tokenizer`,
    /// `rewardbench/dpo.py` `tokenize_row` and `build_tokenized_answer`).
    private func rewardBench(_ group: [Sample], names: [String], tokenizer: Tokenizer, notes: inout Notes) throws -> [ScoringSample] {
        let formatting = try requireFormatting(names[0], notes: &notes)
        // The prompt's turns, with roles reassigned user, assistant, user, … as RewardBench does.
        var turns: [TemplateValue]
        switch group[0].prompt {
        case .text(let text)?:
            turns = [Self.message("user", text)]
        case .messages(let messages)?:
            turns = messages.enumerated().map { index, message in
                Self.message(index % 2 == 0 ? "user" : "assistant", SampleContent.content(of: message))
            }
            guard messages.count % 2 == 1 else {
                throw IRMError("\(names[0]): RewardBench needs the prompt's last turn to be the user's (it numbers turns user, assistant, …), found \(messages.count) turns")
            }
        case nil:
            throw IRMError("\(names[0]): no prompt")
        }
        let promptText = try formatting.render(turns, addGenerationPrompt: false, tools: nil, sample: names[0])
        guard let bos = try bosID(tokenizer: tokenizer) else {
            throw IRMError("\(names[0]): RewardBench puts the tokenizer's BOS before every prompt, and this tokenizer has none (no bos_token in tokenizer_config.json); use --convention trl or separate")
        }
        let appendEOS = options.eos != .never
        let eos = appendEOS ? try eosID(names[0]) : nil
        var built: [(prompt: [Int32], answer: [Int32])] = []
        for (sample, name) in zip(group, names) {
            let answer: String
            switch sample.response {
            case .text(let text)?: answer = text
            case .messages(let messages)?:
                guard messages.count == 1 else {
                    throw IRMError("\(name): RewardBench scores one assistant reply, found \(messages.count) messages")
                }
                answer = SampleContent.content(of: messages[0])
            case nil: throw IRMError("\(name): no response")
            }
            let fullText = try formatting.render(turns + [Self.message("assistant", answer)], addGenerationPrompt: false, tools: nil, sample: name)
            // `chosen.replace(prompt, "")`: every occurrence of the rendered prompt is removed.
            let rest = promptText.isEmpty ? fullText : fullText.replacingOccurrences(of: promptText, with: "")
            let full = tokenizer.encode(promptText + rest, addSpecialTokens: false).ids
            let alone = tokenizer.encode(promptText, addSpecialTokens: false).ids
            if alone.contains(bos) { notes.rewardBenchDoubleBOS += 1 }
            var start = min(alone.count, full.count)
            // The boundary fix moves back one token only, however far the two disagree.
            if Array(full.prefix(alone.count)) != alone { start = max(start - 1, 0) }
            var answerIDs = Array(full[start...])
            if let eos { answerIDs.append(eos) }
            built.append(([bos] + Array(full[..<start]), answerIDs))
        }
        // RewardBench's truncation: past max_length the prompt keeps its last 128 tokens, and the
        // responses then their first max_length - 128.
        let maxLength = options.resolvedMaxLength ?? 2048, promptKeep = 128
        let longer = built.map(\.answer.count).max() ?? 0
        for k in built.indices where built[k].prompt.count + longer > maxLength {
            notes.rewardBenchTruncated += 1
            built[k].prompt = Array(built[k].prompt.suffix(promptKeep))
        }
        for k in built.indices where built[k].prompt.count + longer > maxLength {
            built[k].answer = Array(built[k].answer.prefix(max(maxLength - promptKeep, 0)))
        }
        return zip(names, built).map { ScoringSample(name: $0, promptIDs: $1.prompt, responseIDs: $1.answer) }
    }

    // MARK: Pieces

    /// `encode(text, addSpecialTokens: true)`, without the tokenizer's BOS when the text already
    /// starts with the BOS string (which the tokenizer then reads as the BOS token itself).
    private func encodeGuardingBOS(_ text: String, tokenizer: Tokenizer, notes: inout Notes) -> [Int32] {
        var ids = tokenizer.encode(text, addSpecialTokens: true).ids
        let prefix = tokenizer.prefixSpecialTokenIds
        if !prefix.isEmpty, ids.count >= 2 * prefix.count, Array(ids[prefix.count..<(2 * prefix.count)]) == prefix,
           let bosText = tokenizer.tokenString(prefix[0]), text.hasPrefix(bosText) {
            ids.removeFirst(prefix.count)
            notes.bosAlreadyPresent += 1
        }
        return ids
    }

    /// Length of the longest common prefix (TRL's `common_prefix_length`).
    static func commonPrefixLength<T: Equatable>(_ a: [T], _ b: [T]) -> Int {
        var n = 0
        while n < a.count, n < b.count, a[n] == b[n] { n += 1 }
        return n
    }

    private static func message(_ role: String, _ content: String) -> TemplateValue {
        .object(TemplateObject([("role", .string(role)), ("content", .string(content))]))
    }

    private func requireTokenizer(_ name: String) throws -> Tokenizer {
        guard let tokenizer else {
            throw IRMError("\(name): the data is text, but no tokenizer is available; give \"prompt_ids\" and \"response_ids\" instead")
        }
        return tokenizer
    }

    private func requireFormatting(_ name: String, notes: inout Notes) throws -> ChatFormatting {
        if let problem = formatting?.templateProblem, formatting?.template == nil {
            throw IRMError("\(name): the chat template cannot be used: \(problem)")
        }
        guard let formatting, formatting.template != nil else {
            let why = options.convention == .rewardbench ? "RewardBench renders every prompt with the chat template" : "conversational data is rendered with the chat template"
            throw IRMError("\(name): \(why), and the checkpoint has none (no \"chat_template\" in its tokenizer_config.json); pass --chat-template FILE (a .jinja file or a tokenizer_config.json)")
        }
        notes.renderedTemplate = true
        return formatting
    }

    private func mixed(_ name: String) -> IRMError {
        IRMError("\(name): the prompt and the response are of different kinds (text and messages); give both as text or both as messages")
    }

    /// The EOS string the trainer appends: the tokenizer configuration's `eos_token`.
    private func eosString(_ name: String) throws -> String {
        if let text = formatting?.eosToken { return text }
        throw IRMError("\(name): the \(options.convention.rawValue) convention appends the EOS token, and the checkpoint names none (no eos_token in tokenizer_config.json, no eos_token_id in config.json); pass --eos never")
    }

    private func eosID(_ name: String) throws -> Int32? {
        let text = try eosString(name)
        guard let id = tokenizer?.id(forToken: text) else {
            throw IRMError("\(name): the EOS token \"\(text)\" is not in the tokenizer's vocabulary; pass --eos never")
        }
        return id
    }

    private func bosID(tokenizer: Tokenizer) throws -> Int32? {
        if let text = formatting?.bosToken { return tokenizer.id(forToken: text) }
        return tokenizer.bosTokenId
    }

    private func checkLength(_ sequences: [ScoringSample], samples: [Sample], maxLength: Int, notes: inout Notes) {
        let long = sequences.indices.filter { sequences[$0].tokenCount > maxLength }
        guard !long.isEmpty, options.convention == .trl else { return }
        let listed = long.prefix(3).map { samples[$0].label }.joined(separator: ", ") + (long.count > 3 ? ", …" : "")
        notes.longerThanMaxLength = (long.count, maxLength, listed)
    }

    /// Counts of what was done, turned into one warning each.
    private struct Notes {
        var bosAlreadyPresent = 0
        var boundaryMoved = 0
        var rewardBenchDoubleBOS = 0
        var rewardBenchTruncated = 0
        var longerThanMaxLength: (count: Int, maxLength: Int, listed: String)? = nil
        var renderedTemplate = false

        func messages(convention: ScoringConvention) -> [String] {
            var out: [String] = []
            if bosAlreadyPresent > 0 {
                out.append("\(bosAlreadyPresent) text\(bosAlreadyPresent == 1 ? "" : "s") already start with the BOS string, so the tokenizer's BOS was not added again")
            }
            if boundaryMoved > 0 {
                out.append("for \(boundaryMoved) response\(boundaryMoved == 1 ? "" : "s") the tokenised prompt is not a prefix of the tokenised prompt + response (tokens merge across the boundary, or the template renders the prompt differently alone); as TRL does, the response starts where they diverge")
            }
            if rewardBenchDoubleBOS > 0 {
                out.append("RewardBench puts a BOS before the templated prompt, which already holds one: \(rewardBenchDoubleBOS) sequence\(rewardBenchDoubleBOS == 1 ? " has" : "s have") two (its behaviour, kept by --convention rewardbench)")
            }
            if rewardBenchTruncated > 0 {
                out.append("\(rewardBenchTruncated) prompt\(rewardBenchTruncated == 1 ? " was" : "s were") cut to their last 128 tokens, as RewardBench does past 2048 tokens")
            }
            if let long = longerThanMaxLength {
                out.append("\(long.count) sequence\(long.count == 1 ? " is" : "s are") longer than max_length \(long.maxLength) (TRL's default; \(long.listed)): TRL truncates them in training (keep_start), irm scores them whole. Pass --max-length with your trainer's setting")
            }
            return out
        }
    }
}
