import Foundation

/// OPT, the base of DeepSpeed-Chat's RLHF examples: learned absolute positions stored with an
/// offset of 2 (position p reads row p + 2), LayerNorm before each block (`do_layer_norm_before`,
/// OPT-125m and most sizes) or after it (OPT-350m), ReLU, biases on every projection
/// (`enable_bias`), queries scaled by `head_dim^-½`, and, where `word_embed_proj_dim` differs
/// from `hidden_size` (OPT-350m), embeddings of that width projected in and the final hidden
/// states projected out. The head (tied to the embedding by default) and a reward model's score
/// read the projected-out width.
///
/// ```
/// x = project_in?(embed_tokens[token]) + embed_positions[position + 2]
/// for each layer, pre-LN:   x += out_proj(attention(q, k, v of self_attn_layer_norm x));  x += fc2(relu(fc1(final_layer_norm x)))
///                 post-LN:  x = self_attn_layer_norm(x + out_proj(attention(q, k, v of x)));  x = final_layer_norm(x + fc2(relu(fc1 x)))
/// hidden = project_out?(decoder.final_layer_norm? x)        (the final norm exists only with pre-LN
///                                                            and without _remove_final_layer_norm)
/// ```
/// Config keys: `vocab_size`, `hidden_size`, `num_hidden_layers`, `num_attention_heads`,
/// `ffn_dim`, `max_position_embeddings`, `do_layer_norm_before` (true), `_remove_final_layer_norm`
/// (false), `word_embed_proj_dim` (hidden_size), `activation_function` (relu), `enable_bias`
/// (true), `layer_norm_elementwise_affine` (true), `tie_word_embeddings` (true). LayerNorm ε is
/// PyTorch's 1e-5.
struct OPTArchitecture: ArchitectureDefinition {
    var backbonePrefix: String { "model." }
    var inputEmbeddingName: String { "model.decoder.embed_tokens.weight" }
    var otherEmbeddingModules: [String] { ["model.decoder.embed_positions"] }
    func huggingFaceClasses(stem: String) -> [String] { ["OPTForCausalLM", "OPTForSequenceClassification"] }

    /// The family's own settings, read from config.json by `readConfig` and by `makeModel`.
    fileprivate struct Settings {
        var preNorm: Bool
        var finalNorm: Bool
        var projectedWidth: Int?
        var affineNorms: Bool

        init(_ reader: ConfigReader, hiddenSize: Int) throws {
            preNorm = try reader.bool("do_layer_norm_before", default: true)
            finalNorm = try preNorm && !reader.bool("_remove_final_layer_norm", default: false)
            let width = try reader.optionalSize("word_embed_proj_dim") ?? hiddenSize
            projectedWidth = width == hiddenSize ? nil : width
            affineNorms = try reader.bool("layer_norm_elementwise_affine", default: true)
        }
    }

    private func settings(_ c: ModelConfig) throws -> Settings {
        guard let object = c.json.objectValue else { throw IRMError("the OPT configuration is not a JSON object") }
        return try Settings(ConfigReader(object: object, source: "config"), hiddenSize: c.hiddenSize)
    }

    func readConfig(_ reader: ConfigReader, modelType: String, into c: inout ModelConfig) throws {
        c.vocabSize = try reader.size("vocab_size")
        c.hiddenSize = try reader.size("hidden_size")
        c.layerCount = try reader.layerCount("num_hidden_layers")
        c.headCount = try reader.size("num_attention_heads")
        c.kvHeadCount = c.headCount
        c.intermediateSize = try reader.size("ffn_dim")
        c.maxPositions = try reader.size("max_position_embeddings")
        c.normEpsilon = 1e-5
        c.activation = try reader.activation("activation_function", default: "relu", supported: ["relu"], family: "opt", computes: "relu")
        c.tiedEmbeddings = try reader.bool("tie_word_embeddings", default: true)
        let bias = try reader.bool("enable_bias", default: true)
        c.qkvBias = bias
        c.attentionOutputBias = bias
        c.mlpBias = bias
        try reader.readHeadDim(into: &c, hiddenKey: "hidden_size", headsKey: "num_attention_heads")
        let settings = try Settings(reader, hiddenSize: c.hiddenSize)
        c.finalHiddenSize = settings.projectedWidth ?? c.hiddenSize
    }

    func backboneTensors(_ c: ModelConfig) -> [String: [Int]] {
        let d = c.hiddenSize, i = c.intermediateSize
        let s = try? settings(c)
        let affine = s?.affineNorms ?? true
        var shapes = ["model.decoder.embed_tokens.weight": [c.vocabSize, c.finalHiddenSize],
                      "model.decoder.embed_positions.weight": [c.maxPositions + 2, d]]
        func norm(_ name: String) {
            guard affine else { return }
            shapes[name + ".weight"] = [d]
            shapes[name + ".bias"] = [d]
        }
        if let width = s?.projectedWidth {
            shapes["model.decoder.project_in.weight"] = [d, width]
            shapes["model.decoder.project_out.weight"] = [width, d]
        }
        if s?.finalNorm ?? true { norm("model.decoder.final_layer_norm") }
        for layer in 0..<c.layerCount {
            let p = "model.decoder.layers.\(layer)."
            for (name, out, inFeatures) in [("self_attn.q_proj", d, d), ("self_attn.k_proj", d, d), ("self_attn.v_proj", d, d),
                                            ("self_attn.out_proj", d, d), ("fc1", i, d), ("fc2", d, i)] {
                shapes[p + name + ".weight"] = [out, inFeatures]
                if c.qkvBias { shapes[p + name + ".bias"] = [out] }
            }
            norm(p + "self_attn_layer_norm")
            norm(p + "final_layer_norm")
        }
        return shapes
    }

    func makeModel(config: ModelConfig, kind: CheckpointKind, weights: inout CheckpointWeights) throws -> any TransformerModel {
        try OPTModel(config: config, kind: kind, settings: settings(config), weights: &weights)
    }

    func details(_ c: ModelConfig) -> [(String, String)] {
        guard let s = try? settings(c) else { return [] }
        var lines: [(String, String)] = [("layer_norm", s.preNorm ? "before each block" : "after each block (post-LN)"),
                                         ("final_layer_norm", "\(s.finalNorm)"), ("positions", "learned, offset 2")]
        if let width = s.projectedWidth { lines.append(("word_embed_proj", "\(width) (project_in / project_out)")) }
        return lines
    }
}

/// The forward pass of `OPTArchitecture`.
final class OPTModel: TransformerModel {
    let config: ModelConfig
    let kind: CheckpointKind
    let source: String
    let outputHead: DenseWeight
    private let tokenEmbedding: DenseWeight
    private let positionEmbedding: DenseWeight
    private let projectIn: Linear?
    private let projectOut: Linear?
    private let finalNorm: LayerNormWeights?
    private let layers: [Layer]
    private let preNorm: Bool

    private struct Layer {
        let attentionNorm: LayerNormWeights
        let queryKeyValue: Linear
        let output: Linear
        let mlpNorm: LayerNormWeights
        let up: Linear
        let down: Linear
    }

    private let geometry: AttentionGeometry

    fileprivate init(config: ModelConfig, kind: CheckpointKind, settings: OPTArchitecture.Settings, weights: inout CheckpointWeights) throws {
        self.config = config
        self.kind = kind
        source = weights.source
        preNorm = settings.preNorm
        let d = config.hiddenSize
        func norm(_ name: String) throws -> LayerNormWeights {
            guard settings.affineNorms else { return LayerNormWeights(weight: Array(repeating: 1, count: d), bias: Array(repeating: 0, count: d)) }
            return try weights.layerNorm(name)
        }
        var layers: [Layer] = []
        for layer in 0..<config.layerCount {
            let p = "model.decoder.layers.\(layer)."
            layers.append(Layer(
                attentionNorm: try norm(p + "self_attn_layer_norm"),
                queryKeyValue: try weights.stacked([p + "self_attn.q_proj", p + "self_attn.k_proj", p + "self_attn.v_proj"]),
                output: try weights.linear(p + "self_attn.out_proj"),
                mlpNorm: try norm(p + "final_layer_norm"),
                up: try weights.linear(p + "fc1"),
                down: try weights.linear(p + "fc2")))
        }
        self.layers = layers
        finalNorm = settings.finalNorm ? try norm("model.decoder.final_layer_norm") : nil
        projectIn = settings.projectedWidth == nil ? nil : try weights.linear("model.decoder.project_in")
        projectOut = settings.projectedWidth == nil ? nil : try weights.linear("model.decoder.project_out")
        positionEmbedding = try weights.matrix("model.decoder.embed_positions.weight")
        let embedding = try weights.matrix("model.decoder.embed_tokens.weight")
        tokenEmbedding = embedding
        outputHead = try weights.outputHead(config: config, kind: kind, embedding: embedding)
        geometry = AttentionGeometry(headCount: config.headCount, kvHeadCount: config.headCount, headDim: config.headDim,
                                     scale: Float(1 / Double(config.headDim).squareRoot()), window: nil)
    }

    func finalHiddenStates(_ batch: PackedBatch, profile: ComputeProfile?) -> [Float] {
        let n = batch.rowCount, d = config.hiddenSize, inner = config.intermediateSize, eps = config.normEpsilon
        let e = config.finalHiddenSize
        guard n > 0 else { return [] }
        let x = FloatBuffer(count: n * d)
        let normed = FloatBuffer(count: n * d)
        let qkv = FloatBuffer(count: n * 3 * d)
        let attended = FloatBuffer(count: n * d)
        let hidden = FloatBuffer(count: n * inner)

        let embedded = projectIn == nil ? x : FloatBuffer(count: n * e)
        for r in 0..<n { tokenEmbedding.widenRow(Int(batch.tokens[r]), into: embedded.pointer + r * e) }
        projectIn?.apply(embedded.pointer, rows: n, into: x.pointer, profile: profile)
        let position = FloatBuffer(count: d)
        for r in 0..<n {
            let row = x.pointer + r * d
            positionEmbedding.widenRow(Int(batch.positions[r]) + 2, into: position.pointer)
            for j in 0..<d { row[j] += position.pointer[j] }
        }
        for (index, layer) in layers.enumerated() {
            var input = x.pointer
            if preNorm {
                Kernels.layerNorm(x.pointer, rows: n, width: d, weight: layer.attentionNorm.weight, bias: layer.attentionNorm.bias,
                                  epsilon: eps, output: normed.pointer)
                input = normed.pointer
            }
            layer.queryKeyValue.apply(input, rows: n, into: qkv.pointer, profile: profile)
            CausalAttention.run(qkv: qkv, batch: batch, layer: index, geometry: geometry, output: attended, profile: profile)
            layer.output.apply(attended.pointer, rows: n, into: x.pointer, accumulate: true, profile: profile)
            if !preNorm {
                Kernels.layerNorm(x.pointer, rows: n, width: d, weight: layer.attentionNorm.weight, bias: layer.attentionNorm.bias,
                                  epsilon: eps, output: x.pointer)
            }
            input = x.pointer
            if preNorm {
                Kernels.layerNorm(x.pointer, rows: n, width: d, weight: layer.mlpNorm.weight, bias: layer.mlpNorm.bias,
                                  epsilon: eps, output: normed.pointer)
                input = normed.pointer
            }
            layer.up.apply(input, rows: n, into: hidden.pointer, activation: .relu, profile: profile)
            layer.down.apply(hidden.pointer, rows: n, into: x.pointer, accumulate: true, profile: profile)
            if !preNorm {
                Kernels.layerNorm(x.pointer, rows: n, width: d, weight: layer.mlpNorm.weight, bias: layer.mlpNorm.bias,
                                  epsilon: eps, output: x.pointer)
            }
        }
        let selected = batch.gatherOutputRows(x, width: d)
        let rows = selected.count / d
        if let finalNorm {
            Kernels.layerNorm(selected.pointer, rows: rows, width: d, weight: finalNorm.weight, bias: finalNorm.bias,
                              epsilon: eps, output: selected.pointer)
        }
        guard let projectOut else { return selected.array }
        let projected = FloatBuffer(count: rows * e)
        projectOut.apply(selected.pointer, rows: rows, into: projected.pointer, profile: profile)
        return projected.array
    }
}
