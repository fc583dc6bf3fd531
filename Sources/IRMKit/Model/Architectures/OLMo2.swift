import Foundation

/// OLMo 2: the Llama layout with the norms moved after each block (no norm on a block's input) and
/// RMSNorm on the queries and keys across all heads at once (`q_norm` over heads·head_dim,
/// `k_norm` over kv_heads·head_dim), before RoPE.
///
/// ```
/// x = embed_tokens[token]
/// for each layer:  x += post_attention_layernorm(o_proj(attention(rope(q_norm(q_proj x)), rope(k_norm(k_proj x)), v_proj x)))
///                  x += post_feedforward_layernorm(down_proj(silu(gate_proj x) * up_proj x))
/// hidden = norm x
/// ```
/// Config keys: the Llama sizes, `rms_norm_eps` (1e-5), `hidden_act` (silu), `attention_bias`
/// (q/k/v/o biases), `tie_word_embeddings`, `rope_theta`/`rope_scaling` or `rope_parameters`.
struct OLMo2Architecture: ArchitectureDefinition {
    var backbonePrefix: String { "model." }
    var inputEmbeddingName: String { "model.embed_tokens.weight" }

    func readConfig(_ reader: ConfigReader, modelType: String, into c: inout ModelConfig) throws {
        try reader.readDecoderSizes(into: &c)
        c.normEpsilon = try reader.positiveNumber("rms_norm_eps", default: 1e-5)
        c.activation = try reader.activation("hidden_act", default: "silu", supported: ["silu"], family: modelType, computes: "SwiGLU with silu")
        c.tiedEmbeddings = try reader.bool("tie_word_embeddings", default: false)
        let bias = try reader.bool("attention_bias", default: false)
        c.qkvBias = bias
        c.attentionOutputBias = bias
        try reader.readRotary(into: &c, defaultTheta: 10000, allowsPartial: false, family: modelType)
    }

    func backboneTensors(_ c: ModelConfig) -> [String: [Int]] {
        let d = c.hiddenSize
        var shapes = ["model.embed_tokens.weight": [c.vocabSize, d], "model.norm.weight": [d]]
        for layer in 0..<c.layerCount {
            let p = "model.layers.\(layer)."
            shapes[p + "post_attention_layernorm.weight"] = [d]
            shapes[p + "post_feedforward_layernorm.weight"] = [d]
            shapes[p + "self_attn.q_norm.weight"] = [c.qDim]
            shapes[p + "self_attn.k_norm.weight"] = [c.kvDim]
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
                queryNorm: try weights.rmsNorm(p + "self_attn.q_norm.weight"),
                keyNorm: try weights.rmsNorm(p + "self_attn.k_norm.weight"),
                queryKeyValue: attention.queryKeyValue, output: attention.output,
                attentionOutputNorm: try weights.rmsNorm(p + "post_attention_layernorm.weight"),
                gateUp: mlp.gateUp, down: mlp.down,
                mlpOutputNorm: try weights.rmsNorm(p + "post_feedforward_layernorm.weight"),
                geometry: AttentionGeometry(headCount: c.headCount, kvHeadCount: c.kvHeadCount, headDim: c.headDim,
                                            scale: Float(1 / Double(c.headDim).squareRoot()), window: nil)))
        }
        return try GatedDecoderModel(config: c, kind: kind, embedding: try weights.matrix("model.embed_tokens.weight"), layers: layers,
                                     finalNorm: try weights.rmsNorm("model.norm.weight"), options: GatedDecoderOptions(), weights: &weights)
    }

    func details(_ c: ModelConfig) -> [(String, String)] {
        [("norms", "after attention and MLP, QK-norm over all heads"), ("qkv_bias", "\(c.qkvBias)")]
    }
}
