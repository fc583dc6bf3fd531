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
    public init(json: JSONValue, source: String) throws {
        guard let object = json.objectValue else {
            throw IRMError("\(source): expected a JSON object for the model configuration, found \(json.brief)")
        }
        let reader = ConfigReader(object: object, source: source)
        guard let modelType = object["model_type"]?.stringValue else {
            throw IRMError("\(source): the configuration has no \"model_type\"; expected one of \(Architecture.supportedList)")
        }
        guard let architecture = Architecture(rawValue: modelType) else {
            throw IRMError("\(source): unsupported model_type \"\(modelType)\"; irm supports \(Architecture.supportedList)")
        }
        self.architecture = architecture
        self.json = json
        bosTokenID = try reader.optionalInt("bos_token_id")
        eosTokenID = try reader.optionalInt("eos_token_id")
        padTokenID = try reader.optionalInt("pad_token_id")
        if let labels = try reader.optionalInt("num_labels") {
            labelCount = labels
        } else if let id2label = object["id2label"]?.objectValue {
            labelCount = id2label.count
        }
        try architecture.definition.readConfig(reader, modelType: modelType, into: &self)
        if finalHiddenSize == 0 { finalHiddenSize = hiddenSize }
        for (name, value) in [("vocab size", vocabSize), ("hidden size", hiddenSize), ("layer count", layerCount),
                              ("intermediate size", intermediateSize), ("max positions", maxPositions), ("head dim", headDim),
                              ("head count", headCount), ("key/value head count", kvHeadCount), ("final hidden size", finalHiddenSize)]
        where value <= 0 {
            throw IRMError("\(source): the \(name) must be positive, found \(value)")
        }
        if labelCount <= 0 { throw IRMError("\(source): num_labels must be positive, found \(labelCount)") }
        if layerSlidingWindows.isEmpty { layerSlidingWindows = Array(repeating: nil, count: layerCount) }
        if let cap = finalLogitSoftCap, !(cap > 0) {
            throw IRMError("\(source): final_logit_softcapping must be positive, found \(cap)")
        }
    }

    /// Parameters in the attention block's q, k and v outputs.
    public var qDim: Int { headCount * headDim }
    public var kvDim: Int { kvHeadCount * headDim }
}

/// Typed access to config keys, with messages that name the file and the key.
struct ConfigReader {
    let object: [String: JSONValue]
    let source: String

    func int(_ key: String) throws -> Int {
        guard let value = object[key], !value.isNull else {
            throw IRMError("\(source): missing required key \"\(key)\" (an integer)")
        }
        guard let int = value.intValue else {
            throw IRMError("\(source): \"\(key)\" should be an integer, found \(value.brief)")
        }
        return int
    }

    func optionalInt(_ key: String) throws -> Int? {
        guard let value = object[key], !value.isNull else { return nil }
        // Some configs give eos_token_id as a list; the first entry is the primary one.
        if let list = value.arrayValue, let first = list.first?.intValue { return first }
        guard let int = value.intValue else {
            throw IRMError("\(source): \"\(key)\" should be an integer, found \(value.brief)")
        }
        return int
    }

    func double(_ key: String, default fallback: Double) throws -> Double {
        guard let value = object[key], !value.isNull else { return fallback }
        guard let double = value.doubleValue else {
            throw IRMError("\(source): \"\(key)\" should be a number, found \(value.brief)")
        }
        return double
    }

    func bool(_ key: String, default fallback: Bool) throws -> Bool {
        guard let value = object[key], !value.isNull else { return fallback }
        guard let bool = value.boolValue else {
            throw IRMError("\(source): \"\(key)\" should be true or false, found \(value.brief)")
        }
        return bool
    }

    func string(_ key: String, default fallback: String) throws -> String {
        guard let value = object[key], !value.isNull else { return fallback }
        guard let string = value.stringValue else {
            throw IRMError("\(source): \"\(key)\" should be a string, found \(value.brief)")
        }
        return string
    }

    struct Rope {
        var theta: Double?
        var partialRotaryFactor: Double?
        /// The object that holds the scaling type and its parameters, and its key.
        var scalingParameters: (key: String, values: [String: JSONValue])?

        func scaling(source: String, maxPositions: Int, rotaryDim: Int, originalOverride: Int? = nil) throws -> RopeScaling? {
            guard let (key, stored) = scalingParameters else { return nil }
            var values = stored
            if let originalOverride { values["original_max_position_embeddings"] = .int(Int64(originalOverride)) }
            return try RopeScaling.parse(values, source: source, key: key, maxPositions: maxPositions, rotaryDim: rotaryDim)
        }
    }

    /// Reads RoPE settings from either `rope_parameters` (transformers 5) or the older
    /// `rope_theta` + `rope_scaling` keys.
    func rope(defaultTheta: Double) throws -> Rope {
        var rope = Rope()
        if let parameters = object["rope_parameters"], !parameters.isNull {
            guard let dict = parameters.objectValue else {
                throw IRMError("\(source): \"rope_parameters\" should be an object, found \(parameters.brief)")
            }
            rope.theta = dict["rope_theta"]?.doubleValue
            rope.partialRotaryFactor = dict["partial_rotary_factor"]?.doubleValue
            if dict["rope_type"] != nil || dict["type"] != nil { rope.scalingParameters = ("rope_parameters", dict) }
        }
        if rope.theta == nil, let theta = object["rope_theta"]?.doubleValue { rope.theta = theta }
        if rope.partialRotaryFactor == nil, let factor = object["partial_rotary_factor"]?.doubleValue {
            rope.partialRotaryFactor = factor
        }
        if rope.scalingParameters == nil, let value = object["rope_scaling"], !value.isNull {
            guard let scaling = value.objectValue else {
                throw IRMError("\(source): \"rope_scaling\" should be an object, found \(value.brief)")
            }
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
        config.vocabSize = try int("vocab_size")
        config.hiddenSize = try int("hidden_size")
        config.layerCount = try int("num_hidden_layers")
        config.headCount = try int("num_attention_heads")
        config.kvHeadCount = try optionalInt("num_key_value_heads") ?? config.headCount
        config.maxPositions = try int("max_position_embeddings")
        config.intermediateSize = try int("intermediate_size")
        guard config.headCount > 0, config.kvHeadCount > 0, config.headCount % config.kvHeadCount == 0 else {
            throw IRMError("\(source): num_attention_heads (\(config.headCount)) must be a positive multiple of num_key_value_heads (\(config.kvHeadCount))")
        }
        if let explicit = try optionalInt("head_dim") ?? defaultHeadDim {
            config.headDim = explicit
        } else {
            guard config.hiddenSize % config.headCount == 0 else {
                throw IRMError("\(source): hidden_size (\(config.hiddenSize)) is not a multiple of num_attention_heads (\(config.headCount)) and no head_dim is given")
            }
            config.headDim = config.hiddenSize / config.headCount
        }
    }

    /// RoPE over the whole head (or `partial_rotary_factor` of it where `allowsPartial`):
    /// `rope_theta` (default `defaultTheta`) and the scaling, from either spelling.
    /// `originalOverride` replaces the scaling object's `original_max_position_embeddings` (Phi-3
    /// reads its top-level key, default 4096, whatever the object says); `typeAliases` renames
    /// scaling types (Phi-3's legacy `su` and `yarn` mean `longrope`).
    func readRotary(into config: inout ModelConfig, defaultTheta: Double, allowsPartial: Bool, family: String,
                    originalOverride: Int? = nil, typeAliases: [String: String] = [:]) throws {
        var rope = try rope(defaultTheta: defaultTheta)
        if let (key, stored) = rope.scalingParameters {
            var values = stored
            for typeKey in ["rope_type", "type"] {
                if let name = values[typeKey]?.stringValue, let alias = typeAliases[name] { values[typeKey] = .string(alias) }
            }
            rope.scalingParameters = (key, values)
        }
        config.ropeTheta = rope.theta ?? defaultTheta
        guard config.ropeTheta > 0, config.ropeTheta.isFinite else {
            throw IRMError("\(source): rope_theta must be a positive number, found \(config.ropeTheta)")
        }
        config.rotaryDim = config.headDim
        if let factor = rope.partialRotaryFactor {
            guard factor > 0, factor <= 1 else {
                throw IRMError("\(source): partial_rotary_factor must be in (0, 1], found \(factor)")
            }
            config.rotaryDim = Int(Double(config.headDim) * factor)
            guard allowsPartial || config.rotaryDim == config.headDim else {
                throw IRMError("\(source): partial rotary embeddings (\(config.rotaryDim) of \(config.headDim) dimensions, partial_rotary_factor) are not supported for \(family)")
            }
        }
        guard config.rotaryDim % 2 == 0 else {
            throw IRMError("\(source): the rotary width must be even, found \(config.rotaryDim) of \(config.headDim) dimensions")
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

    /// The window of each layer: `window` on the layers that `layer_types` marks
    /// `sliding_attention`, or, without that key, on those `defaultSliding` picks.
    func slidingWindows(window: Int?, layerCount: Int, defaultSliding: (Int) -> Bool) throws -> [Int?] {
        guard let window else { return Array(repeating: nil, count: layerCount) }
        guard window > 0 else { throw IRMError("\(source): sliding_window must be positive, found \(window)") }
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
