import Foundation

/// What a checkpoint's head computes.
public enum CheckpointKind: String, CaseIterable, Sendable, Codable {
    /// A causal language model: logits over the vocabulary at every position.
    case policy
    /// A sequence-classification model: `score.weight` applied to the final hidden state of the
    /// last token gives one scalar reward per sequence.
    case rewardModel = "reward-model"
}

/// The configuration of a model, normalised across architectures. It is parsed from the Hugging
/// Face `config.json` keys that the checkpoint stores verbatim (see docs/checkpoint-format.md for
/// every key, its default and its meaning); each architecture reads its own keys
/// (`ArchitectureDefinition.readConfig`), and `json` keeps the original for display and for
/// family-specific settings.
public struct ModelConfig: Sendable, Equatable {
    public var architecture: Architecture
    public var vocabSize = 0
    public var hiddenSize = 0
    public var layerCount = 0
    public var headCount = 0
    public var kvHeadCount = 0
    public var headDim = 0
    public var intermediateSize = 0
    public var maxPositions = 0
    /// Width of the final hidden states that the output head reads: `hiddenSize`, or OPT's
    /// `word_embed_proj_dim` when it projects out.
    public var finalHiddenSize = 0
    /// LayerNorm epsilon (GPT-2, NeoX, OPT) or RMSNorm epsilon (the RMSNorm families).
    public var normEpsilon = 1e-5
    /// Hugging Face activation name: `gelu_new` (GPT-2), `gelu` (NeoX), `silu` (Llama family),
    /// `gelu_pytorch_tanh` (Gemma), `relu` (OPT).
    public var activation = ""
    public var tiedEmbeddings = false
    /// Number of leading dimensions of each head that RoPE rotates (0 without RoPE).
    public var rotaryDim = 0
    public var ropeTheta = 0.0
    /// RoPE scaling (linear, dynamic, yarn, longrope, llama3); nil for plain RoPE.
    public var ropeScaling: RopeScaling?
    public var ropeScalingType: String? { ropeScaling?.kind.rawValue }
    /// The longest sequence irm scores: `maxPositions`, or `factor × maxPositions` for dynamic
    /// (NTK) RoPE, which extends the context.
    public var scoringContext: Int { ropeScaling?.extendedContext ?? maxPositions }
    /// NeoX: `x + attn(ln1 x) + mlp(ln2 x)` instead of two sequential residual steps.
    public var useParallelResidual = false
    /// Biases on the q/k/v projections (NeoX fused qkv, Llama `attention_bias`, always for Qwen2).
    public var qkvBias = false
    /// Bias on the attention output projection (NeoX `dense`, Llama `attention_bias`).
    public var attentionOutputBias = false
    /// Biases on the MLP projections (GPT-2 and NeoX always; Llama `mlp_bias`).
    public var mlpBias = false
    /// The sliding window of each layer (nil: full attention): a query at position i sees the keys
    /// at j with i - j < window. Mistral's applies to every layer; Qwen2's and Gemma 2's to the
    /// layers that `layer_types` marks `sliding_attention`, as transformers does.
    public var layerSlidingWindows: [Int?] = []
    /// Gemma 2's `final_logit_softcapping`: logits become `c·tanh(logits/c)` before the softmax.
    public var finalLogitSoftCap: Double?
    /// Number of reward outputs for a reward model (`num_labels`).
    public var labelCount = 1
    public var bosTokenID: Int?
    public var eosTokenID: Int?
    public var padTokenID: Int?
    /// The config object as stored.
    public var json: JSONValue

    /// Parses a Hugging Face-style config object. `source` names the file for messages.
    /// `tensorCount`, the number of tensors the weights beside it hold, bounds the layer count
    /// before anything is allocated per layer (every layer has a tensor of its own); nil where no
    /// weights are at hand.
    public init(json: JSONValue, source: String, tensorCount: Int? = nil) throws {
        guard let object = json.objectValue else {
            throw IRMError("\(source): expected a JSON object for the model configuration, found \(json.brief)")
        }
        let reader = ConfigReader(object: object, source: source, layerLimit: tensorCount)
        guard let modelType = object["model_type"]?.stringValue else {
            throw IRMError("\(source): the configuration has no \"model_type\"; expected one of \(Architecture.supportedList)")
        }
        guard let architecture = Architecture(rawValue: modelType) else {
            throw IRMError("\(source): unsupported model_type \"\(modelType)\"; irm supports \(Architecture.supportedList)")
        }
        self.architecture = architecture
        self.json = json
        bosTokenID = try reader.tokenID("bos_token_id")
        eosTokenID = try reader.tokenID("eos_token_id")
        padTokenID = try reader.tokenID("pad_token_id")
        if let labels = try reader.optionalSize("num_labels") {
            labelCount = labels
        } else if let id2label = object["id2label"]?.objectValue {
            labelCount = id2label.count
        }
        try architecture.definition.readConfig(reader, modelType: modelType, into: &self)
        if finalHiddenSize == 0 { finalHiddenSize = hiddenSize }
        if layerSlidingWindows.isEmpty { layerSlidingWindows = Array(repeating: nil, count: layerCount) }
        try checkBounds(source: source)
    }

    /// The bounds every configuration meets, whichever family read it and from which keys: what
    /// the tensor table and the kernels rely on. The families read each key through `ConfigReader`,
    /// whose bounded readers name the key; this step also covers the values a family derives
    /// (`4 × n_embd`, `heads × head_dim`, the rotary width), so that no size computed later
    /// overflows and no kernel writes past a buffer.
    private func checkBounds(source: String) throws {
        let limit = ConfigReader.sizeLimit
        for (name, value) in [("vocabulary size", vocabSize), ("hidden size", hiddenSize), ("layer count", layerCount),
                              ("intermediate size", intermediateSize), ("max positions", maxPositions), ("head dim", headDim),
                              ("head count", headCount), ("key/value head count", kvHeadCount), ("final hidden size", finalHiddenSize),
                              ("label count (num_labels)", labelCount)]
        where !(1...limit).contains(value) {
            throw IRMError("\(source): the \(name) is \(value); expected a whole number from 1 to \(limit)")
        }
        for (name, heads) in [("query", headCount), ("key/value", kvHeadCount)] {
            let (width, overflow) = heads.multipliedReportingOverflow(by: headDim)
            guard !overflow, width <= limit else {
                throw IRMError("\(source): the \(name) width (\(heads) heads × head dim \(headDim)) exceeds \(limit)")
            }
        }
        guard rotaryDim >= 0, rotaryDim <= headDim, rotaryDim % 2 == 0 else {
            throw IRMError("\(source): the rotary width is \(rotaryDim); expected an even number from 0 to the head dim \(headDim)")
        }
        guard normEpsilon.isFinite, normEpsilon > 0 else {
            throw IRMError("\(source): the norm epsilon is \(normEpsilon); expected a finite number > 0")
        }
        if rotaryDim > 0, !(ropeTheta.isFinite && ropeTheta > 0) {
            throw IRMError("\(source): the RoPE base θ is \(ropeTheta); expected a finite number > 0")
        }
        guard layerSlidingWindows.count == layerCount, layerSlidingWindows.allSatisfy({ ($0 ?? 1) >= 1 }) else {
            throw IRMError("\(source): expected one sliding window (or none) per layer, each of at least one position")
        }
        if let cap = finalLogitSoftCap, !(cap.isFinite && cap > 0) {
            throw IRMError("\(source): final_logit_softcapping is \(cap); expected a finite number > 0, or null")
        }
        guard scoringContext <= limit else {
            throw IRMError("\(source): the context (\(scoringContext) positions) exceeds \(limit)")
        }
    }

    /// Parameters in the attention block's q, k and v outputs.
    public var qDim: Int { headCount * headDim }
    public var kvDim: Int { kvHeadCount * headDim }
}

/// Typed access to config keys, with messages that name the file and the key and say what is
/// allowed. Every number of a checkpoint's config comes through one of the bounded readers
/// (`size`, `layerCount`, `positiveNumber`, `fraction`, `tokenID`): the file is untrusted, and
/// a size that overflows later arithmetic, or a rotary width past the head, would crash irm or
/// corrupt its memory instead of failing with a message.
struct ConfigReader {
    let object: [String: JSONValue]
    let source: String
    /// The most layers the configuration may declare: the number of tensors in the weights (each
    /// layer has at least one). nil where no weights are at hand.
    var layerLimit: Int? = nil
    /// Written before key names in messages: `rope_parameters.` for that object's entries.
    var keyPrefix = ""

    /// The largest size irm takes: BLAS takes 32-bit dimensions, and positions and token ids are
    /// `Int32`.
    static let sizeLimit = Int(Int32.max)

    /// The reader of the object under `key`, whose messages name its entries `key.entry`.
    func nested(_ key: String, _ entries: [String: JSONValue]) -> ConfigReader {
        ConfigReader(object: entries, source: source, layerLimit: layerLimit, keyPrefix: "\(keyPrefix)\(key).")
    }

    /// The key as messages quote it.
    func quoted(_ key: String) -> String { "\"\(keyPrefix)\(key)\"" }

    /// `FILE: "key" is VALUE; expected WHAT`.
    func refusal(_ key: String, _ value: JSONValue, expected: String) -> IRMError {
        IRMError("\(source): \(quoted(key)) is \(value.brief); expected \(expected)")
    }

    private func value(_ key: String) -> JSONValue? {
        guard let value = object[key], !value.isNull else { return nil }
        return value
    }

    private func missing(_ key: String, _ expected: String) -> IRMError {
        IRMError("\(source): missing required key \(quoted(key)) (\(expected))")
    }

    /// A whole number, also one written as a JSON float with an integral value; nil when absent.
    /// A list (some configs give eos_token_id so) is read as its first entry.
    func optionalInt(_ key: String) throws -> Int? {
        guard let value = value(key) else { return nil }
        if let list = value.arrayValue, let first = list.first?.intValue { return first }
        guard let int = value.intValue else { throw refusal(key, value, expected: "an integer") }
        return int
    }

    /// A size: a whole number from 1 to `sizeLimit` (1e300 or 2^62 written as a float are refused
    /// here, before any conversion could trap).
    func size(_ key: String) throws -> Int {
        guard let size = try optionalSize(key) else { throw missing(key, "a whole number from 1 to \(Self.sizeLimit)") }
        return size
    }

    func optionalSize(_ key: String) throws -> Int? {
        guard let value = value(key) else { return nil }
        guard let int = value.intValue, (1...Self.sizeLimit).contains(int) else {
            throw refusal(key, value, expected: "a whole number from 1 to \(Self.sizeLimit)")
        }
        return int
    }

    /// A layer count: a size, and at most `layerLimit`, so that nothing is allocated per layer for
    /// layers the weights cannot hold.
    func layerCount(_ key: String) throws -> Int {
        let count = try size(key)
        if let layerLimit, count > layerLimit {
            throw IRMError("\(source): \(quoted(key)) is \(count); expected at most \(layerLimit), the number of tensors the weights hold (every layer has its own)")
        }
        return count
    }

    /// A token id: an integer that fits `Int32`, as token ids are stored (negative ids, which
    /// some configs use for "none", are kept).
    func tokenID(_ key: String) throws -> Int? {
        guard let id = try optionalInt(key) else { return nil }
        guard let narrow = Int32(exactly: id) else {
            throw IRMError("\(source): \(quoted(key)) is \(id); expected a token id from \(Int32.min) to \(Int32.max)")
        }
        return Int(narrow)
    }

    /// A finite number > 0 (epsilons, bases, scales); `fallback` when absent.
    func positiveNumber(_ key: String, default fallback: Double) throws -> Double {
        try optionalPositiveNumber(key) ?? fallback
    }

    func optionalPositiveNumber(_ key: String, expected: String = "a finite number > 0") throws -> Double? {
        guard let value = value(key) else { return nil }
        guard let number = value.doubleValue, number.isFinite, number > 0 else {
            throw refusal(key, value, expected: expected)
        }
        return number
    }

    /// A soft cap `c` (scores become `c·tanh(s/c)`): a finite number > 0, `fallback` when absent,
    /// nil (no cap) when null.
    func softCap(_ key: String, default fallback: Double) throws -> Double? {
        if let value = object[key], value.isNull { return nil }
        return try optionalPositiveNumber(key, expected: "a finite number > 0, or null for no cap") ?? fallback
    }

    /// A fraction in (0, 1]; nil when absent.
    func fraction(_ key: String) throws -> Double? {
        guard let value = value(key) else { return nil }
        guard let number = value.doubleValue, number > 0, number <= 1 else {
            throw refusal(key, value, expected: "a number in (0, 1]")
        }
        return number
    }

    func bool(_ key: String, default fallback: Bool) throws -> Bool {
        guard let value = value(key) else { return fallback }
        guard let bool = value.boolValue else { throw refusal(key, value, expected: "true or false") }
        return bool
    }

    func string(_ key: String, default fallback: String) throws -> String {
        guard let value = value(key) else { return fallback }
        guard let string = value.stringValue else { throw refusal(key, value, expected: "a string") }
        return string
    }

    /// The object under `key`; nil when absent.
    func optionalObject(_ key: String) throws -> [String: JSONValue]? {
        guard let value = value(key) else { return nil }
        guard let object = value.objectValue else { throw refusal(key, value, expected: "an object") }
        return object
    }

    struct Rope {
        /// θ and the fraction of the head that rotates, with the keys (as messages quote them) they came from.
        var theta: (key: String, value: Double)?
        var fraction: (key: String, value: Double)?
        /// The object that holds the scaling type and its parameters, and its key.
        var scalingParameters: (key: String, values: [String: JSONValue])?

        func scaling(source: String, maxPositions: Int, rotaryDim: Int, originalOverride: Int? = nil) throws -> RopeScaling? {
            guard let (key, stored) = scalingParameters else { return nil }
            var values = stored
            if let originalOverride { values["original_max_position_embeddings"] = .int(Int64(originalOverride)) }
            return try RopeScaling.parse(values, source: source, key: key, maxPositions: maxPositions, rotaryDim: rotaryDim)
        }
    }

    /// Reads RoPE settings from either `rope_parameters` (transformers 5) or the older top-level
    /// keys: θ from the first of `thetaKeys`, the rotary fraction from the first of
    /// `fractionKeys`, each looked up in `rope_parameters` first, and the scaling from
    /// `rope_parameters` or `rope_scaling`.
    func rope(thetaKeys: [String] = ["rope_theta"], fractionKeys: [String] = ["partial_rotary_factor"]) throws -> Rope {
        var rope = Rope()
        var readers = [self]
        if let parameters = try optionalObject("rope_parameters") {
            readers.insert(nested("rope_parameters", parameters), at: 0)
            if parameters["rope_type"] != nil || parameters["type"] != nil { rope.scalingParameters = ("rope_parameters", parameters) }
        }
        for reader in readers {
            for key in thetaKeys where rope.theta == nil {
                if let theta = try reader.optionalPositiveNumber(key) { rope.theta = (reader.quoted(key), theta) }
            }
            for key in fractionKeys where rope.fraction == nil {
                if let fraction = try reader.fraction(key) { rope.fraction = (reader.quoted(key), fraction) }
            }
        }
        if rope.scalingParameters == nil, let scaling = try optionalObject("rope_scaling") {
            rope.scalingParameters = ("rope_scaling", scaling)
        }
        return rope
    }
}

// MARK: - Keys shared by several families

extension ConfigReader {
    /// The sizes of a Llama-style config: `vocab_size`, `hidden_size`, `num_hidden_layers`,
    /// `num_attention_heads`, `num_key_value_heads` (default: the head count),
    /// `max_position_embeddings`, `intermediate_size` and `head_dim` (default: `defaultHeadDim`,
    /// else hidden / heads).
    func readDecoderSizes(into config: inout ModelConfig, defaultHeadDim: Int? = nil) throws {
        config.vocabSize = try size("vocab_size")
        config.hiddenSize = try size("hidden_size")
        config.layerCount = try layerCount("num_hidden_layers")
        config.headCount = try size("num_attention_heads")
        config.kvHeadCount = try optionalSize("num_key_value_heads") ?? config.headCount
        config.maxPositions = try size("max_position_embeddings")
        config.intermediateSize = try size("intermediate_size")
        guard config.headCount % config.kvHeadCount == 0 else {
            throw IRMError("\(source): \(quoted("num_attention_heads")) (\(config.headCount)) must be a multiple of \(quoted("num_key_value_heads")) (\(config.kvHeadCount))")
        }
        if let explicit = try optionalSize("head_dim") ?? defaultHeadDim {
            config.headDim = explicit
            let (width, overflow) = config.headCount.multipliedReportingOverflow(by: explicit)
            guard !overflow, width <= Self.sizeLimit else {
                throw IRMError("\(source): \(quoted("num_attention_heads")) × \(quoted("head_dim")) (\(config.headCount) × \(explicit)) exceeds \(Self.sizeLimit)")
            }
        } else {
            try readHeadDim(into: &config, hiddenKey: "hidden_size", headsKey: "num_attention_heads", explicitKey: "head_dim")
        }
    }

    /// `head_dim = hidden / heads` for the families without a `head_dim` key of their own (the
    /// sizes already read); the heads must divide the hidden size.
    func readHeadDim(into config: inout ModelConfig, hiddenKey: String, headsKey: String, explicitKey: String? = nil) throws {
        guard config.hiddenSize % config.headCount == 0 else {
            let hint = explicitKey.map { " and no \(quoted($0)) is given" } ?? ""
            throw IRMError("\(source): \(quoted(hiddenKey)) (\(config.hiddenSize)) is not a multiple of \(quoted(headsKey)) (\(config.headCount))\(hint)")
        }
        config.headDim = config.hiddenSize / config.headCount
    }

    /// RoPE over the whole head, or over a fraction of it where `allowsPartial`: θ (default
    /// `defaultTheta`) from the first of `thetaKeys`, the fraction (default `defaultFraction`) from
    /// the first of `fractionKeys` (see `rope`), and the scaling. The rotary width is
    /// `floor(head_dim × fraction)`, as transformers takes it, and must be even.
    /// `originalOverride` replaces the scaling object's `original_max_position_embeddings` (Phi-3
    /// reads its top-level key, default 4096, whatever the object says); `typeAliases` renames
    /// scaling types (Phi-3's legacy `su` and `yarn` mean `longrope`).
    func readRotary(into config: inout ModelConfig, defaultTheta: Double, allowsPartial: Bool, family: String,
                    thetaKeys: [String] = ["rope_theta"], fractionKeys: [String] = ["partial_rotary_factor"], defaultFraction: Double = 1,
                    originalOverride: Int? = nil, typeAliases: [String: String] = [:]) throws {
        var rope = try rope(thetaKeys: thetaKeys, fractionKeys: fractionKeys)
        if let (key, stored) = rope.scalingParameters {
            var values = stored
            for typeKey in ["rope_type", "type"] {
                if let name = values[typeKey]?.stringValue, let alias = typeAliases[name] { values[typeKey] = .string(alias) }
            }
            rope.scalingParameters = (key, values)
        }
        config.ropeTheta = rope.theta?.value ?? defaultTheta
        let fraction = rope.fraction?.value ?? defaultFraction
        config.rotaryDim = Int(Double(config.headDim) * fraction)
        let fractionKey = rope.fraction?.key ?? "the default fraction \(defaultFraction)"
        guard allowsPartial || config.rotaryDim == config.headDim else {
            throw IRMError("\(source): partial rotary embeddings (\(config.rotaryDim) of \(config.headDim) dimensions, \(fractionKey)) are not supported for \(family)")
        }
        guard config.rotaryDim % 2 == 0 else {
            let origin = fraction == 1 ? "the whole head" : "\(fractionKey) \(fraction) of the head"
            throw IRMError("\(source): the rotary width must be even, found \(config.rotaryDim) of \(config.headDim) dimensions (\(origin))")
        }
        config.ropeScaling = try rope.scaling(source: source, maxPositions: config.maxPositions, rotaryDim: config.rotaryDim,
                                              originalOverride: originalOverride)
    }

    /// The activation under `key` (default `fallback`), which must be one of `supported`.
    func activation(_ key: String, default fallback: String, supported: [String], family: String, computes: String) throws -> String {
        let name = try string(key, default: fallback)
        guard supported.contains(name) else {
            throw IRMError("\(source): \(key) \"\(name)\" is not supported for \(family); irm computes \(computes)")
        }
        return name
    }

    /// `sliding_window` on every layer (nil when absent).
    func uniformSlidingWindows(layerCount: Int) throws -> [Int?] {
        Array(repeating: try optionalSize("sliding_window"), count: layerCount)
    }

    /// The window of each layer: `window` on the layers that `layer_types` marks
    /// `sliding_attention`, or, without that key, on those `defaultSliding` picks.
    func slidingWindows(window: Int?, layerCount: Int, defaultSliding: (Int) -> Bool) throws -> [Int?] {
        guard let window else { return Array(repeating: nil, count: layerCount) }
        if let value = object["layer_types"], !value.isNull {
            guard let types = value.arrayValue, types.count == layerCount else {
                throw IRMError("\(source): layer_types should list \(layerCount) entries (num_hidden_layers), found \(value.brief)")
            }
            return try types.enumerated().map { index, type in
                switch type.stringValue {
                case "sliding_attention": return window
                case "full_attention": return nil
                default: throw IRMError("\(source): layer_types[\(index)] should be \"sliding_attention\" or \"full_attention\", found \(type.brief)")
                }
            }
        }
        return (0..<layerCount).map { defaultSliding($0) ? window : nil }
    }
}
