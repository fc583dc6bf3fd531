import Foundation

/// Llama, Mistral and Qwen2: RMSNorm, rotate-half RoPE with `rope_theta` (and its scaling),
/// grouped-query attention, a SwiGLU MLP, and a head tied to the embedding or not. Qwen2 adds q/k/v
/// biases; Mistral (and Qwen2 when `use_sliding_window` is set, on the layers `layer_types` marks,
/// or from `max_window_layers` on) attends within a sliding window.
///
/// ```
/// x = embed_tokens[token]
/// for each layer:  x += o_proj(attention(rope(q_proj h), rope(k_proj h), v_proj h)),  h = input_layernorm x
///                  x += down_proj(silu(gate_proj h) * up_proj h),                    h = post_attention_layernorm x
/// hidden = norm x
/// ```
/// Config keys: `vocab_size`, `hidden_size`, `num_hidden_layers`, `num_attention_heads`,
/// `num_key_value_heads`, `head_dim`, `intermediate_size`, `max_position_embeddings`,
/// `rms_norm_eps`, `hidden_act` (silu), `tie_word_embeddings`, `rope_theta`/`rope_scaling` or
/// `rope_parameters`; Llama's `attention_bias` and `mlp_bias`; `sliding_window` (Mistral), and
/// `use_sliding_window`, `sliding_window`, `layer_types`, `max_window_layers` (Qwen2).
struct LlamaFamilyArchitecture: ArchitectureDefinition {
    var backbonePrefix: String { "model." }
    var inputEmbeddingName: String { "model.embed_tokens.weight" }

    func readConfig(_ reader: ConfigReader, modelType: String, into c: inout ModelConfig) throws {
        try reader.readDecoderSizes(into: &c)
        c.normEpsilon = try reader.positiveNumber("rms_norm_eps", default: 1e-6)
        c.activation = try reader.activation("hidden_act", default: "silu", supported: ["silu"], family: modelType, computes: "SwiGLU with silu")
        c.tiedEmbeddings = try reader.bool("tie_word_embeddings", default: false)
        try reader.readRotary(into: &c, defaultTheta: 10000, allowsPartial: false, family: modelType)
        switch modelType {
        case "qwen2":
            c.qkvBias = true
            var window: Int? = nil
            if try reader.bool("use_sliding_window", default: false) { window = try reader.optionalSize("sliding_window") }
            let first = try reader.optionalInt("max_window_layers") ?? 0
            c.layerSlidingWindows = try reader.slidingWindows(window: window, layerCount: c.layerCount) { $0 >= first }
        case "mistral":
            // Mistral windows every layer; it has no layer_types.
            c.layerSlidingWindows = try reader.uniformSlidingWindows(layerCount: c.layerCount)
        default:
            let bias = try reader.bool("attention_bias", default: false)
            c.qkvBias = bias
            c.attentionOutputBias = bias
            c.mlpBias = try reader.bool("mlp_bias", default: false)
        }
    }

    func backboneTensors(_ c: ModelConfig) -> [String: [Int]] {
        let d = c.hiddenSize
        var shapes = ["model.embed_tokens.weight": [c.vocabSize, d], "model.norm.weight": [d]]
        for layer in 0..<c.layerCount {
            let p = "model.layers.\(layer)."
            shapes[p + "input_layernorm.weight"] = [d]
            shapes[p + "post_attention_layernorm.weight"] = [d]
            GatedDecoderTensors.attention(p, c, into: &shapes)
            GatedDecoderTensors.mlp(p, c, into: &shapes)
        }
        return shapes
    }

    func makeModel(config c: ModelConfig, kind: CheckpointKind, weights: inout CheckpointWeights) throws -> any TransformerModel {
        var layers: [GatedDecoderLayer] = []
        for layer in 0..<c.layerCount {
            let p = "model.layers.\(layer)."
            let attention = try weights.attentionProjections(p), mlp = try weights.gatedMLP(p)
            layers.append(GatedDecoderLayer(
                attentionInputNorm: try weights.rmsNorm(p + "input_layernorm.weight"),
                queryKeyValue: attention.queryKeyValue, output: attention.output,
                mlpInputNorm: try weights.rmsNorm(p + "post_attention_layernorm.weight"),
                gateUp: mlp.gateUp, down: mlp.down,
                geometry: AttentionGeometry(headCount: c.headCount, kvHeadCount: c.kvHeadCount, headDim: c.headDim,
                                            scale: Float(1 / Double(c.headDim).squareRoot()), window: c.layerSlidingWindows[layer])))
        }
        return try GatedDecoderModel(config: c, kind: kind, embedding: try weights.matrix("model.embed_tokens.weight"), layers: layers,
                                     finalNorm: try weights.rmsNorm("model.norm.weight"), options: GatedDecoderOptions(), weights: &weights)
    }

    func details(_ c: ModelConfig) -> [(String, String)] {
        var lines: [(String, String)] = [("qkv_bias", "\(c.qkvBias)")]
        let windowed = c.layerSlidingWindows.compactMap { $0 }
        if let window = windowed.first {
            lines.append(("sliding_window", "\(window) on \(windowed.count) of \(c.layerCount) layers"))
        }
        return lines
    }
}
