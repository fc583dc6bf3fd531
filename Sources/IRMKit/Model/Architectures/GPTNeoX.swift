import Foundation

/// GPT-NeoX's config keys (`hidden_size`, `num_hidden_layers`, `num_attention_heads`,
/// `intermediate_size`, `max_position_embeddings`, `layer_norm_eps`, `hidden_act`,
/// `use_parallel_residual`, `attention_bias`, `rotary_pct`/`rotary_emb_base` or
/// `rope_parameters`) and tensors (`gpt_neox.*`, the untied `embed_out`).
struct GPTNeoXArchitecture: ArchitectureDefinition {
    var backbonePrefix: String { "gpt_neox." }
    var inputEmbeddingName: String { "gpt_neox.embed_in.weight" }
    var outputHeadName: String { "embed_out.weight" }

    func readConfig(_ reader: ConfigReader, modelType: String, into c: inout ModelConfig) throws {
        c.vocabSize = try reader.size("vocab_size")
        c.hiddenSize = try reader.size("hidden_size")
        c.layerCount = try reader.layerCount("num_hidden_layers")
        c.headCount = try reader.size("num_attention_heads")
        c.kvHeadCount = c.headCount
        c.maxPositions = try reader.size("max_position_embeddings")
        c.intermediateSize = try reader.size("intermediate_size")
        c.normEpsilon = try reader.positiveNumber("layer_norm_eps", default: 1e-5)
        c.activation = try reader.activation("hidden_act", default: "gelu", supported: ["gelu"], family: "gpt_neox", computes: "the exact (erf) gelu")
        c.tiedEmbeddings = try reader.bool("tie_word_embeddings", default: false)
        c.useParallelResidual = try reader.bool("use_parallel_residual", default: true)
        let bias = try reader.bool("attention_bias", default: true)
        c.qkvBias = bias
        c.attentionOutputBias = bias
        c.mlpBias = true
        try reader.readHeadDim(into: &c, hiddenKey: "hidden_size", headsKey: "num_attention_heads")
        // Pythia configs say rotary_pct / rotary_emb_base; transformers 5 writes rope_parameters.
        try reader.readRotary(into: &c, defaultTheta: 10000, allowsPartial: true, family: "gpt_neox",
                              thetaKeys: ["rope_theta", "rotary_emb_base"], fractionKeys: ["partial_rotary_factor", "rotary_pct"],
                              defaultFraction: 0.25)
    }

    func backboneTensors(_ c: ModelConfig) -> [String: [Int]] {
        let d = c.hiddenSize, i = c.intermediateSize
        var shapes = ["gpt_neox.embed_in.weight": [c.vocabSize, d], "gpt_neox.final_layer_norm.weight": [d], "gpt_neox.final_layer_norm.bias": [d]]
        for layer in 0..<c.layerCount {
            let p = "gpt_neox.layers.\(layer)."
            for (name, shape) in [("input_layernorm.weight", [d]), ("input_layernorm.bias", [d]), ("post_attention_layernorm.weight", [d]),
                                  ("post_attention_layernorm.bias", [d]), ("attention.query_key_value.weight", [3 * d, d]),
                                  ("attention.dense.weight", [d, d]), ("mlp.dense_h_to_4h.weight", [i, d]), ("mlp.dense_h_to_4h.bias", [i]),
                                  ("mlp.dense_4h_to_h.weight", [d, i]), ("mlp.dense_4h_to_h.bias", [d])] {
                shapes[p + name] = shape
            }
            if c.qkvBias { shapes[p + "attention.query_key_value.bias"] = [3 * d] }
            if c.attentionOutputBias { shapes[p + "attention.dense.bias"] = [d] }
        }
        return shapes
    }

    func makeModel(config: ModelConfig, kind: CheckpointKind, weights: inout CheckpointWeights) throws -> any TransformerModel {
        try GPTNeoXModel(config: config, kind: kind, weights: &weights)
    }

    func details(_ c: ModelConfig) -> [(String, String)] {
        [("parallel_residual", "\(c.useParallelResidual)"), ("qkv_bias", "\(c.qkvBias)")]
    }
}

/// GPT-NeoX / Pythia: a fused qkv projection interleaved per head (rows `[q_h | k_h | v_h]` for each
/// head in turn, regrouped at load time into `[Q | K | V]`), partial rotary embedding on the first
/// `rotary_pct · headDim` dimensions of each head, exact-erf gelu, LayerNorm, and an untied
/// `embed_out` head whose vocabulary may be padded beyond the tokenizer's.
///
/// ```
/// x = embed_in[token]
/// for each layer:
///   parallel:    x = x + dense(attention(rope(qkv(ln1 x)))) + mlp(ln2 x)
///   sequential:  x += dense(attention(rope(qkv(ln1 x))));  x += mlp(ln2 x)
/// hidden = final_layer_norm x
/// ```
public final class GPTNeoXModel: TransformerModel {
    public let config: ModelConfig
    public let kind: CheckpointKind
    public let source: String
    public let outputHead: DenseWeight
    private let embedding: DenseWeight
    private let layers: [Layer]
    private let finalNorm: LayerNormWeights
    private let geometry: AttentionGeometry

    private struct Layer {
        let inputNorm: LayerNormWeights
        let postAttentionNorm: LayerNormWeights
        let queryKeyValue: Linear
        let dense: Linear
        let up: Linear
        let down: Linear
    }

    init(config: ModelConfig, kind: CheckpointKind, weights: inout CheckpointWeights) throws {
        self.config = config
        self.kind = kind
        source = weights.source
        let d = config.hiddenSize, hd = config.headDim, heads = config.headCount
        // The config was checked when read (GPTNeoXArchitecture.readConfig).
        func norm(_ name: String) throws -> LayerNormWeights {
            try weights.layerNorm(name)
        }
        /// Per-head `[q_h | k_h | v_h]` rows, regrouped into `[Q | K | V]` as slabs of `headDim`
        /// rows each (in place when the tensor is mapped).
        func regroupedRows(_ tensor: StoredTensor, rowWidth: Int) -> [DenseWeight.Slab] {
            var slabs: [DenseWeight.Slab] = []
            for part in 0..<3 {
                for h in 0..<heads { slabs.append(DenseWeight.Slab(tensor: tensor, firstElement: (h * 3 + part) * hd * rowWidth, rows: hd)) }
            }
            return slabs
        }
        /// The same regrouping of a bias.
        func regroup(_ values: [Float]) -> [Float] {
            var out: [Float] = []
            out.reserveCapacity(values.count)
            for part in 0..<3 {
                for h in 0..<heads { out += values[((h * 3 + part) * hd)..<((h * 3 + part + 1) * hd)] }
            }
            return out
        }
        var layers: [Layer] = []
        for layer in 0..<config.layerCount {
            let p = "gpt_neox.layers.\(layer)."
            let qkvWeight = DenseWeight(outByInSlabs: regroupedRows(try weights.stored(p + "attention.query_key_value.weight"), rowWidth: d),
                                        inFeatures: d)
            let qkvBias = try weights.takeIfDeclared(p + "attention.query_key_value.bias").map(regroup)
            layers.append(Layer(
                inputNorm: try norm(p + "input_layernorm"),
                postAttentionNorm: try norm(p + "post_attention_layernorm"),
                queryKeyValue: Linear(weight: qkvWeight, bias: qkvBias),
                dense: try weights.linear(p + "attention.dense"),
                up: try weights.linear(p + "mlp.dense_h_to_4h"),
                down: try weights.linear(p + "mlp.dense_4h_to_h")))
        }
        self.layers = layers
        finalNorm = try norm("gpt_neox.final_layer_norm")
        let embedding = try weights.matrix("gpt_neox.embed_in.weight")
        self.embedding = embedding
        outputHead = try weights.outputHead(config: config, kind: kind, embedding: embedding)
        geometry = AttentionGeometry(headCount: heads, kvHeadCount: heads, headDim: hd, scale: Float(1 / Double(hd).squareRoot()), window: nil)
    }

    public func finalHiddenStates(_ batch: PackedBatch, profile: ComputeProfile?) -> [Float] {
        let n = batch.rowCount, d = config.hiddenSize, inner = config.intermediateSize
        guard n > 0 else { return [] }
        let x = FloatBuffer(count: n * d)
        let normed = FloatBuffer(count: n * d)
        let mlpInput = FloatBuffer(count: n * d)
        let qkv = FloatBuffer(count: n * 3 * d)
        let attended = FloatBuffer(count: n * d)
        let hidden = FloatBuffer(count: n * inner)
        let rotary = batch.rotarySchedule(config: config)

        for r in 0..<n { embedding.widenRow(Int(batch.tokens[r]), into: x.pointer + r * d) }
        batch.positions.withUnsafeBufferPointer { positions in
            for (index, layer) in layers.enumerated() {
                Kernels.layerNorm(x.pointer, rows: n, width: d, weight: layer.inputNorm.weight, bias: layer.inputNorm.bias,
                                  epsilon: config.normEpsilon, output: normed.pointer)
                if config.useParallelResidual {
                    // Both branches read the same x, so the MLP's input is normalised before x changes.
                    Kernels.layerNorm(x.pointer, rows: n, width: d, weight: layer.postAttentionNorm.weight,
                                      bias: layer.postAttentionNorm.bias, epsilon: config.normEpsilon, output: mlpInput.pointer)
                }
                layer.queryKeyValue.apply(normed.pointer, rows: n, into: qkv.pointer, profile: profile)
                Kernels.applyRotary(qkv.pointer, rows: n, rowStride: 3 * d, headCount: 2 * config.headCount, headDim: config.headDim,
                                    positions: positions.baseAddress!, schedule: rotary)
                CausalAttention.run(qkv: qkv, batch: batch, layer: index, geometry: geometry, output: attended, profile: profile)
                layer.dense.apply(attended.pointer, rows: n, into: x.pointer, accumulate: true, profile: profile)
                if !config.useParallelResidual {
                    Kernels.layerNorm(x.pointer, rows: n, width: d, weight: layer.postAttentionNorm.weight,
                                      bias: layer.postAttentionNorm.bias, epsilon: config.normEpsilon, output: mlpInput.pointer)
                }
                layer.up.apply(mlpInput.pointer, rows: n, into: hidden.pointer, activation: .geluErf, profile: profile)
                layer.down.apply(hidden.pointer, rows: n, into: x.pointer, accumulate: true, profile: profile)
            }
        }
        let selected = batch.gatherOutputRows(x, width: d)
        let result = FloatBuffer(count: selected.count)
        Kernels.layerNorm(selected.pointer, rows: selected.count / d, width: d, weight: finalNorm.weight, bias: finalNorm.bias,
                          epsilon: config.normEpsilon, output: result.pointer)
        return result.array
    }
}
