import Foundation

/// The transformer families irm runs. Raw values are Hugging Face `model_type` strings.
public enum Architecture: String, CaseIterable, Sendable, Codable {
    case gpt2
    case gptNeoX = "gpt_neox"
    case llama
    case mistral
    case qwen2

    public static var supportedList: String { allCases.map(\.rawValue).joined(separator: ", ") }

    /// The Hugging Face classes each architecture is imported from, for messages.
    var huggingFaceClasses: [String] {
        switch self {
        case .gpt2: ["GPT2LMHeadModel", "GPT2ForSequenceClassification"]
        case .gptNeoX: ["GPTNeoXForCausalLM", "GPTNeoXForSequenceClassification"]
        case .llama: ["LlamaForCausalLM", "LlamaForSequenceClassification"]
        case .mistral: ["MistralForCausalLM", "MistralForSequenceClassification"]
        case .qwen2: ["Qwen2ForCausalLM", "Qwen2ForSequenceClassification"]
        }
    }

    /// Whether this is one of the RMSNorm / RoPE / SwiGLU families.
    public var isLlamaFamily: Bool { self == .llama || self == .mistral || self == .qwen2 }
}

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
/// every key, its default and its meaning); `json` keeps the original for display.
public struct ModelConfig: Sendable, Equatable {
    public var architecture: Architecture
    public var vocabSize: Int
    public var hiddenSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var headDim: Int
    public var intermediateSize: Int
    public var maxPositions: Int
    /// LayerNorm epsilon (GPT-2, NeoX) or RMSNorm epsilon (Llama family).
    public var normEpsilon: Double
    /// Hugging Face activation name: `gelu_new` (GPT-2), `gelu` (NeoX), `silu` (Llama family).
    public var activation: String
    public var tiedEmbeddings: Bool
    /// Number of leading dimensions of each head that RoPE rotates (0 for GPT-2).
    public var rotaryDim: Int
    public var ropeTheta: Double
    /// A RoPE scaling type other than `default`, which irm records but does not compute.
    /// RoPE scaling (linear, dynamic, yarn, longrope, llama3); nil for plain RoPE.
    public var ropeScaling: RopeScaling?
    public var ropeScalingType: String? { ropeScaling?.kind.rawValue }
    /// The longest sequence irm scores: `maxPositions`, or less where the RoPE scaling changes with
    /// the sequence's length beyond some point (longrope past its original context).
    public var scoringContext: Int { min(maxPositions, ropeScaling?.uniformLength ?? maxPositions) }
    /// NeoX: `x + attn(ln1 x) + mlp(ln2 x)` instead of two sequential residual steps.
    public var useParallelResidual: Bool
    /// Biases on the q/k/v projections (NeoX fused qkv, Llama `attention_bias`, always for Qwen2).
    public var qkvBias: Bool
    /// Bias on the attention output projection (NeoX `dense`, Llama `attention_bias`).
    public var attentionOutputBias: Bool
    /// Biases on the MLP projections (GPT-2 and NeoX always; Llama `mlp_bias`).
    public var mlpBias: Bool
    /// Mistral/Qwen2 sliding-window length, when one is configured and enabled.
    public var slidingWindow: Int?
    /// The sliding window of each layer (nil: full attention): Mistral's applies to every layer;
    /// Qwen2's to the layers that `layer_types` marks `sliding_attention` (or, without that key,
    /// those from `max_window_layers` on), as transformers does.
    public var layerSlidingWindows: [Int?] = []
    /// GPT-2's `scale_attn_by_inverse_layer_idx` (scales scores by 1/(layer+1)).
    public var scaleAttentionByInverseLayerIndex: Bool
    /// Number of reward outputs for a reward model (`num_labels`).
    public var labelCount: Int
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
        } else {
            labelCount = 1
        }
        slidingWindow = nil
        scaleAttentionByInverseLayerIndex = false
        ropeScaling = nil

        switch architecture {
        case .gpt2:
            vocabSize = try reader.int("vocab_size")
            hiddenSize = try reader.int("n_embd")
            layerCount = try reader.int("n_layer")
            headCount = try reader.int("n_head")
            kvHeadCount = headCount
            maxPositions = try reader.int("n_positions")
            intermediateSize = try reader.optionalInt("n_inner") ?? 4 * hiddenSize
            normEpsilon = try reader.double("layer_norm_epsilon", default: 1e-5)
            activation = try reader.string("activation_function", default: "gelu_new")
            tiedEmbeddings = try reader.bool("tie_word_embeddings", default: true)
            rotaryDim = 0
            ropeTheta = 0
            useParallelResidual = false
            qkvBias = true
            attentionOutputBias = true
            mlpBias = true
            scaleAttentionByInverseLayerIndex = try reader.bool("scale_attn_by_inverse_layer_idx", default: false)
            guard headCount > 0, hiddenSize % headCount == 0 else {
                throw IRMError("\(source): n_embd (\(hiddenSize)) must be a positive multiple of n_head (\(headCount))")
            }
            headDim = hiddenSize / headCount
        case .gptNeoX:
            vocabSize = try reader.int("vocab_size")
            hiddenSize = try reader.int("hidden_size")
            layerCount = try reader.int("num_hidden_layers")
            headCount = try reader.int("num_attention_heads")
            kvHeadCount = headCount
            maxPositions = try reader.int("max_position_embeddings")
            intermediateSize = try reader.int("intermediate_size")
            normEpsilon = try reader.double("layer_norm_eps", default: 1e-5)
            activation = try reader.string("hidden_act", default: "gelu")
            tiedEmbeddings = try reader.bool("tie_word_embeddings", default: false)
            useParallelResidual = try reader.bool("use_parallel_residual", default: true)
            let bias = try reader.bool("attention_bias", default: true)
            qkvBias = bias
            attentionOutputBias = bias
            mlpBias = true
            guard headCount > 0, hiddenSize % headCount == 0 else {
                throw IRMError("\(source): hidden_size (\(hiddenSize)) must be a positive multiple of num_attention_heads (\(headCount))")
            }
            headDim = hiddenSize / headCount
            let rope = try reader.rope(defaultTheta: 10000)
            // Pythia configs say rotary_pct / rotary_emb_base; transformers 5 writes rope_parameters.
            let fraction = try rope.partialRotaryFactor ?? reader.double("rotary_pct", default: 0.25)
            ropeTheta = try rope.theta ?? reader.double("rotary_emb_base", default: 10000)
            rotaryDim = Int(Double(headDim) * fraction)
            ropeScaling = try rope.scaling(source: source, maxPositions: maxPositions, rotaryDim: rotaryDim)
        case .llama, .mistral, .qwen2:
            vocabSize = try reader.int("vocab_size")
            hiddenSize = try reader.int("hidden_size")
            layerCount = try reader.int("num_hidden_layers")
            headCount = try reader.int("num_attention_heads")
            kvHeadCount = try reader.optionalInt("num_key_value_heads") ?? headCount
            maxPositions = try reader.int("max_position_embeddings")
            intermediateSize = try reader.int("intermediate_size")
            normEpsilon = try reader.double("rms_norm_eps", default: 1e-6)
            activation = try reader.string("hidden_act", default: "silu")
            tiedEmbeddings = try reader.bool("tie_word_embeddings", default: false)
            useParallelResidual = false
            guard headCount > 0, kvHeadCount > 0, headCount % kvHeadCount == 0 else {
                throw IRMError("\(source): num_attention_heads (\(headCount)) must be a positive multiple of num_key_value_heads (\(kvHeadCount))")
            }
            if let explicit = try reader.optionalInt("head_dim") {
                headDim = explicit
            } else {
                guard hiddenSize % headCount == 0 else {
                    throw IRMError("\(source): hidden_size (\(hiddenSize)) is not a multiple of num_attention_heads (\(headCount)) and no head_dim is given")
                }
                headDim = hiddenSize / headCount
            }
            rotaryDim = headDim
            let rope = try reader.rope(defaultTheta: 10000)
            ropeTheta = rope.theta ?? 10000
            if let factor = rope.partialRotaryFactor { rotaryDim = Int(Double(headDim) * factor) }
            ropeScaling = try rope.scaling(source: source, maxPositions: maxPositions, rotaryDim: rotaryDim)
            switch architecture {
            case .qwen2:
                qkvBias = true
                attentionOutputBias = false
                mlpBias = false
                if try reader.bool("use_sliding_window", default: false) {
                    slidingWindow = try reader.optionalInt("sliding_window")
                }
            case .mistral:
                qkvBias = false
                attentionOutputBias = false
                mlpBias = false
                slidingWindow = try reader.optionalInt("sliding_window")
            default:
                let bias = try reader.bool("attention_bias", default: false)
                qkvBias = bias
                attentionOutputBias = bias
                mlpBias = try reader.bool("mlp_bias", default: false)
            }
        }
        for (name, value) in [("vocab size", vocabSize), ("hidden size", hiddenSize), ("layer count", layerCount),
                              ("intermediate size", intermediateSize), ("max positions", maxPositions), ("head dim", headDim)]
        where value <= 0 {
            throw IRMError("\(source): the \(name) must be positive, found \(value)")
        }
        if labelCount <= 0 { throw IRMError("\(source): num_labels must be positive, found \(labelCount)") }
        layerSlidingWindows = try Self.slidingWindows(window: slidingWindow, architecture: architecture, layerCount: layerCount,
                                                      config: object, source: source)
        try checkForwardPass(source: source)
    }

    private static func slidingWindows(window: Int?, architecture: Architecture, layerCount: Int,
                                       config: [String: JSONValue], source: String) throws -> [Int?] {
        guard let window else { return Array(repeating: nil, count: layerCount) }
        guard window > 0 else { throw IRMError("\(source): sliding_window must be positive, found \(window)") }
        if architecture == .mistral { return Array(repeating: window, count: layerCount) }
        if let types = config["layer_types"]?.arrayValue {
            guard types.count == layerCount else {
                throw IRMError("\(source): layer_types has \(types.count) entries, expected \(layerCount) (num_hidden_layers)")
            }
            return types.map { $0.stringValue == "sliding_attention" ? window : nil }
        }
        let firstWindowed = config["max_window_layers"]?.intValue ?? 0
        return (0..<layerCount).map { $0 >= firstWindowed ? window : nil }
    }

    /// What the forward passes compute, checked when the config is read, so that `convert` and
    /// `inspect` refuse what `score` would: the activation of each architecture, and full-width
    /// rotary embeddings for the Llama family.
    private func checkForwardPass(source: String) throws {
        switch architecture {
        case .gpt2:
            guard activation == "gelu_new" || activation == "gelu_pytorch_tanh" else {
                throw IRMError("\(source): activation_function \"\(activation)\" is not supported for gpt2; irm computes gelu_new (tanh approximation)")
            }
        case .gptNeoX:
            guard activation == "gelu" else {
                throw IRMError("\(source): hidden_act \"\(activation)\" is not supported for gpt_neox; irm computes the exact (erf) gelu")
            }
        case .llama, .mistral, .qwen2:
            guard activation == "silu" else {
                throw IRMError("\(source): hidden_act \"\(activation)\" is not supported for \(architecture.rawValue); irm computes SwiGLU with silu")
            }
            guard rotaryDim == headDim else {
                throw IRMError("\(source): partial rotary embeddings (\(rotaryDim) of \(headDim) dimensions) are not supported for \(architecture.rawValue)")
            }
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

        func scaling(source: String, maxPositions: Int, rotaryDim: Int) throws -> RopeScaling? {
            guard let (key, values) = scalingParameters else { return nil }
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
