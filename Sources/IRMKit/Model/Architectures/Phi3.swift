import Foundation

/// Phi-3 and Phi-3.5 (and Phi-4-mini, which shares `model_type` phi3): the Llama layout with the
/// q/k/v projections fused in one `qkv_proj` (rows `[Q | K | V]`) and the gate and up projections in
/// one `gate_up_proj` (rows `[gate | up]`), no biases, optionally partial rotary embeddings, and
/// the `longrope` scaling of the 128k models.
///
/// ```
/// x = embed_tokens[token]
/// for each layer:  x += o_proj(attention(rope Q, rope K, V)),    [Q | K | V] = qkv_proj(input_layernorm x)
///                  x += down_proj(silu(gate) * up),               [gate | up] = gate_up_proj(post_attention_layernorm x)
/// hidden = norm x
/// ```
/// Config keys: the Llama sizes, `rms_norm_eps` (1e-5), `hidden_act` (silu),
/// `tie_word_embeddings`, `rope_theta`, `partial_rotary_factor`, `rope_scaling`/`rope_parameters`
/// (`longrope`; the legacy `su` and `yarn` mean longrope, as transformers reads them),
/// `original_max_position_embeddings` (the top-level key, default 4096, which transformers uses
/// over any value inside the scaling object) and `sliding_window` (every layer:
/// position i sees keys j with i − j < sliding_window).
struct Phi3Architecture: ArchitectureDefinition {
    var backbonePrefix: String { "model." }
    var inputEmbeddingName: String { "model.embed_tokens.weight" }

    func readConfig(_ reader: ConfigReader, modelType: String, into c: inout ModelConfig) throws {
        try reader.readDecoderSizes(into: &c)
        c.normEpsilon = try reader.positiveNumber("rms_norm_eps", default: 1e-5)
        c.activation = try reader.activation("hidden_act", default: "silu", supported: ["silu"], family: modelType, computes: "SwiGLU with silu")
        c.tiedEmbeddings = try reader.bool("tie_word_embeddings", default: false)
        try reader.readRotary(into: &c, defaultTheta: 10000, allowsPartial: true, family: modelType,
                              originalOverride: try reader.optionalSize("original_max_position_embeddings") ?? 4096,
                              typeAliases: ["su": "longrope", "yarn": "longrope"])
        if let kind = c.ropeScaling?.kind, kind != .longrope {
            throw IRMError("\(reader.source): Phi-3 takes longrope scaling only (as transformers does), found \"\(kind.rawValue)\"")
        }
        c.layerSlidingWindows = try reader.uniformSlidingWindows(layerCount: c.layerCount)
    }

    func backboneTensors(_ c: ModelConfig) -> [String: [Int]] {
        let d = c.hiddenSize, i = c.intermediateSize, q = c.qDim, kv = c.kvDim
        var shapes = ["model.embed_tokens.weight": [c.vocabSize, d], "model.norm.weight": [d]]
        for layer in 0..<c.layerCount {
            let p = "model.layers.\(layer)."
            for (name, shape) in [("input_layernorm.weight", [d]), ("post_attention_layernorm.weight", [d]),
                                  ("self_attn.qkv_proj.weight", [q + 2 * kv, d]), ("self_attn.o_proj.weight", [d, q]),
                                  ("mlp.gate_up_proj.weight", [2 * i, d]), ("mlp.down_proj.weight", [d, i])] {
                shapes[p + name] = shape
            }
        }
        return shapes
    }

    func makeModel(config c: ModelConfig, kind: CheckpointKind, weights: inout CheckpointWeights) throws -> any TransformerModel {
        var layers: [GatedDecoderLayer] = []
        for layer in 0..<c.layerCount {
            let p = "model.layers.\(layer)."
            layers.append(GatedDecoderLayer(
                attentionInputNorm: try weights.rmsNorm(p + "input_layernorm.weight"),
                queryKeyValue: try weights.linear(p + "self_attn.qkv_proj"),
                output: try weights.linear(p + "self_attn.o_proj"),
                mlpInputNorm: try weights.rmsNorm(p + "post_attention_layernorm.weight"),
                gateUp: try weights.linear(p + "mlp.gate_up_proj"),
                down: try weights.linear(p + "mlp.down_proj"),
                geometry: AttentionGeometry(headCount: c.headCount, kvHeadCount: c.kvHeadCount, headDim: c.headDim,
                                            scale: Float(1 / Double(c.headDim).squareRoot()), window: c.layerSlidingWindows[layer])))
        }
        return try GatedDecoderModel(config: c, kind: kind, embedding: try weights.matrix("model.embed_tokens.weight"), layers: layers,
                                     finalNorm: try weights.rmsNorm("model.norm.weight"), options: GatedDecoderOptions(), weights: &weights)
    }

    func details(_ c: ModelConfig) -> [(String, String)] {
        var lines: [(String, String)] = [("fused", "qkv_proj, gate_up_proj")]
        if let window = c.layerSlidingWindows.compactMap({ $0 }).first { lines.append(("sliding_window", "\(window) on every layer")) }
        return lines
    }
}
