import Foundation

/// Gemma: the Llama layout with a GeGLU MLP (`gelu_pytorch_tanh`), RMSNorm that scales by
/// `(1 + w)`, embeddings multiplied by √hidden_size (rounded to float32, as transformers rounds it
/// to the compute type), a `head_dim` of its own (256 in the released models, not
/// hidden/heads), and the head tied to the embedding.
///
/// ```
/// x = embed_tokens[token] · √d
/// for each layer:  x += o_proj(attention(rope(q_proj h), rope(k_proj h), v_proj h)),  h = input_layernorm x
///                  x += down_proj(gelu_tanh(gate_proj h) * up_proj h),               h = post_attention_layernorm x
/// hidden = norm x                                       (every norm: (1 + w) ⊙ x / √(mean(x²) + ε))
/// ```
/// Config keys: the Llama sizes (`head_dim` default 256), `rms_norm_eps` (1e-6), `hidden_act`
/// (`gelu_pytorch_tanh`; the legacy `gelu` means the same, as transformers rewrites it),
/// `attention_bias`, `tie_word_embeddings` (true), `rope_theta`/`rope_parameters`, and
/// `use_bidirectional_attention`, which irm refuses.
struct GemmaArchitecture: ArchitectureDefinition {
    var backbonePrefix: String { "model." }
    var inputEmbeddingName: String { "model.embed_tokens.weight" }

    func readConfig(_ reader: ConfigReader, modelType: String, into c: inout ModelConfig) throws {
        try Self.readCommon(reader, modelType: modelType, activationKey: "hidden_act", legacyGelu: true, into: &c)
    }

    /// What Gemma and Gemma 2 read alike.
    static func readCommon(_ reader: ConfigReader, modelType: String, activationKey: String, legacyGelu: Bool,
                           into c: inout ModelConfig) throws {
        try reader.readDecoderSizes(into: &c, defaultHeadDim: 256)
        c.normEpsilon = try reader.positiveNumber("rms_norm_eps", default: 1e-6)
        let supported = legacyGelu ? ["gelu_pytorch_tanh", "gelu_new", "gelu"] : ["gelu_pytorch_tanh", "gelu_new"]
        c.activation = try reader.activation(activationKey, default: "gelu_pytorch_tanh", supported: supported, family: modelType,
                                             computes: "GeGLU with the tanh-approximated gelu")
        c.tiedEmbeddings = try reader.bool("tie_word_embeddings", default: true)
        let bias = try reader.bool("attention_bias", default: false)
        c.qkvBias = bias
        c.attentionOutputBias = bias
        if try reader.bool("use_bidirectional_attention", default: false) {
            throw IRMError("\(reader.source): use_bidirectional_attention is true; irm scores causal language models only")
        }
        try reader.readRotary(into: &c, defaultTheta: 10000, allowsPartial: false, family: modelType)
    }

    /// The Gemma tensors; Gemma 2 adds `extraLayerNorms` to each layer.
    static func tensors(_ c: ModelConfig, extraLayerNorms: [String] = []) -> [String: [Int]] {
        let d = c.hiddenSize
        var shapes = ["model.embed_tokens.weight": [c.vocabSize, d], "model.norm.weight": [d]]
        for layer in 0..<c.layerCount {
            let p = "model.layers.\(layer)."
            for norm in ["input_layernorm", "post_attention_layernorm"] + extraLayerNorms { shapes[p + norm + ".weight"] = [d] }
            GatedDecoderTensors.attention(p, c, into: &shapes)
            GatedDecoderTensors.mlp(p, c, into: &shapes)
        }
        return shapes
    }

    func backboneTensors(_ c: ModelConfig) -> [String: [Int]] { Self.tensors(c) }

    func makeModel(config c: ModelConfig, kind: CheckpointKind, weights: inout CheckpointWeights) throws -> any TransformerModel {
        var layers: [GatedDecoderLayer] = []
        for layer in 0..<c.layerCount {
            let p = "model.layers.\(layer)."
            let attention = try weights.attentionProjections(p), mlp = try weights.gatedMLP(p)
            layers.append(GatedDecoderLayer(
                attentionInputNorm: try weights.rmsNorm(p + "input_layernorm.weight", offset: 1),
                queryKeyValue: attention.queryKeyValue, output: attention.output,
                mlpInputNorm: try weights.rmsNorm(p + "post_attention_layernorm.weight", offset: 1),
                gateUp: mlp.gateUp, down: mlp.down,
                geometry: AttentionGeometry(headCount: c.headCount, kvHeadCount: c.kvHeadCount, headDim: c.headDim,
                                            scale: Float(1 / Double(c.headDim).squareRoot()), window: nil)))
        }
        return try GatedDecoderModel(config: c, kind: kind, embedding: try weights.matrix("model.embed_tokens.weight"), layers: layers,
                                     finalNorm: try weights.rmsNorm("model.norm.weight", offset: 1),
                                     options: GatedDecoderOptions(activation: .geluTanh, embeddingScale: Float(Double(c.hiddenSize).squareRoot())),
                                     weights: &weights)
    }

    func details(_ c: ModelConfig) -> [(String, String)] {
        [("norms", "RMSNorm with (1 + w)"), ("embedding_scale", "sqrt(hidden_size)")]
    }
}
