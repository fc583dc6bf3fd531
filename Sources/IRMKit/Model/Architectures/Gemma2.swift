import Foundation

/// Gemma 2: Gemma (GeGLU, `(1 + w)` RMSNorm, √d embedding scale, separate `head_dim`, tied head)
/// with norms after attention and around the MLP, attention scaled by `query_pre_attn_scalar^-½`,
/// attention scores and final logits soft-capped, and a sliding window on alternating layers.
///
/// ```
/// x = embed_tokens[token] · √d
/// for each layer:  x += post_attention_layernorm(o_proj(attention(rope q, rope k, v)))   from h = input_layernorm x
///                  x += post_feedforward_layernorm(down_proj(gelu_tanh(gate_proj h) * up_proj h)),  h = pre_feedforward_layernorm x
/// hidden = norm x
/// attention scores s = c_a · tanh((q·k / √query_pre_attn_scalar) / c_a), then the causal (or windowed) softmax
/// logits = c_f · tanh((head · hidden) / c_f)              (policies; the scorer applies it)
/// ```
/// Config keys: Gemma's, with `hidden_activation` for the activation, and
/// `query_pre_attn_scalar` (256), `attn_logit_softcapping` (50; null turns it off),
/// `final_logit_softcapping` (30; null turns it off), `sliding_window` (4096) and `layer_types`
/// (default: layers 0, 2, 4, … slide). A sliding layer lets position i see keys j with
/// i − j < sliding_window. A reward model's score is not soft-capped (transformers'
/// Gemma2ForSequenceClassification does not).
struct Gemma2Architecture: ArchitectureDefinition {
    var backbonePrefix: String { "model." }
    var inputEmbeddingName: String { "model.embed_tokens.weight" }

    /// The family's own settings, read from config.json by `readConfig` (to refuse bad values) and
    /// by `makeModel`.
    private struct Settings {
        var queryScale: Double
        var attentionSoftCap: Double?

        init(_ reader: ConfigReader) throws {
            queryScale = 1 / (try reader.positiveNumber("query_pre_attn_scalar", default: 256)).squareRoot()
            attentionSoftCap = try reader.softCap("attn_logit_softcapping", default: 50)
        }
    }

    func readConfig(_ reader: ConfigReader, modelType: String, into c: inout ModelConfig) throws {
        try GemmaArchitecture.readCommon(reader, modelType: modelType, activationKey: "hidden_activation", legacyGelu: false, into: &c)
        _ = try Settings(reader)
        c.finalLogitSoftCap = try reader.softCap("final_logit_softcapping", default: 30)
        let window = try reader.optionalSize("sliding_window") ?? 4096
        c.layerSlidingWindows = try reader.slidingWindows(window: window, layerCount: c.layerCount) { $0 % 2 == 0 }
    }

    func backboneTensors(_ c: ModelConfig) -> [String: [Int]] {
        GemmaArchitecture.tensors(c, extraLayerNorms: ["pre_feedforward_layernorm", "post_feedforward_layernorm"])
    }

    func makeModel(config c: ModelConfig, kind: CheckpointKind, weights: inout CheckpointWeights) throws -> any TransformerModel {
        guard let object = c.json.objectValue else { throw IRMError("\(weights.source): /config: expected a JSON object") }
        let settings = try Settings(ConfigReader(object: object, source: "\(weights.source): /config"))
        var layers: [GatedDecoderLayer] = []
        for layer in 0..<c.layerCount {
            let p = "model.layers.\(layer)."
            var geometry = AttentionGeometry(headCount: c.headCount, kvHeadCount: c.kvHeadCount, headDim: c.headDim,
                                             scale: Float(settings.queryScale), window: c.layerSlidingWindows[layer])
            geometry.softCap = settings.attentionSoftCap.map { Float($0) }
            let attention = try weights.attentionProjections(p), mlp = try weights.gatedMLP(p)
            layers.append(GatedDecoderLayer(
                attentionInputNorm: try weights.rmsNorm(p + "input_layernorm.weight", offset: 1),
                queryKeyValue: attention.queryKeyValue, output: attention.output,
                attentionOutputNorm: try weights.rmsNorm(p + "post_attention_layernorm.weight", offset: 1),
                mlpInputNorm: try weights.rmsNorm(p + "pre_feedforward_layernorm.weight", offset: 1),
                gateUp: mlp.gateUp, down: mlp.down,
                mlpOutputNorm: try weights.rmsNorm(p + "post_feedforward_layernorm.weight", offset: 1),
                geometry: geometry))
        }
        return try GatedDecoderModel(config: c, kind: kind, embedding: try weights.matrix("model.embed_tokens.weight"), layers: layers,
                                     finalNorm: try weights.rmsNorm("model.norm.weight", offset: 1),
                                     options: GatedDecoderOptions(activation: .geluTanh, embeddingScale: Float(Double(c.hiddenSize).squareRoot())),
                                     weights: &weights)
    }

    func details(_ c: ModelConfig) -> [(String, String)] {
        var lines: [(String, String)] = [("norms", "RMSNorm with (1 + w), before and after attention and MLP")]
        if let object = c.json.objectValue, let s = try? Settings(ConfigReader(object: object, source: "")) {
            lines.append(("attention_scale", String(format: "%.6g (query_pre_attn_scalar^-1/2)", s.queryScale)))
            lines.append(("attn_softcap", s.attentionSoftCap.map { "\($0)" } ?? "none"))
        }
        lines.append(("final_softcap", c.finalLogitSoftCap.map { "\($0)" } ?? "none"))
        let windowed = c.layerSlidingWindows.compactMap { $0 }
        if let window = windowed.first { lines.append(("sliding_window", "\(window) on \(windowed.count) of \(c.layerCount) layers")) }
        return lines
    }
}
