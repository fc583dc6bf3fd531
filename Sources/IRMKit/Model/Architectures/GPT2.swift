import Foundation

/// GPT-2's config keys (`n_embd`, `n_layer`, `n_head`, `n_positions`, `n_inner`,
/// `layer_norm_epsilon`, `activation_function`, `scale_attn_weights`,
/// `scale_attn_by_inverse_layer_idx`) and tensors (`transformer.*`, `Conv1D` weights `[in, out]`).
struct GPT2Architecture: ArchitectureDefinition {
    var backbonePrefix: String { "transformer." }
    var inputEmbeddingName: String { "transformer.wte.weight" }
    var conv1DModuleSuffixes: [String] { [".attn.c_attn", ".attn.c_proj", ".mlp.c_fc", ".mlp.c_proj"] }
    var otherEmbeddingModules: [String] { ["transformer.wpe"] }
    func huggingFaceClasses(stem: String) -> [String] { ["GPT2LMHeadModel", "GPT2ForSequenceClassification"] }

    func readConfig(_ reader: ConfigReader, modelType: String, into c: inout ModelConfig) throws {
        c.vocabSize = try reader.size("vocab_size")
        c.hiddenSize = try reader.size("n_embd")
        c.layerCount = try reader.layerCount("n_layer")
        c.headCount = try reader.size("n_head")
        c.kvHeadCount = c.headCount
        c.maxPositions = try reader.size("n_positions")
        c.intermediateSize = try reader.optionalSize("n_inner") ?? 4 * c.hiddenSize
        c.normEpsilon = try reader.positiveNumber("layer_norm_epsilon", default: 1e-5)
        c.activation = try reader.activation("activation_function", default: "gelu_new", supported: ["gelu_new", "gelu_pytorch_tanh"],
                                             family: "gpt2", computes: "gelu_new (tanh approximation)")
        c.tiedEmbeddings = try reader.bool("tie_word_embeddings", default: true)
        c.qkvBias = true
        c.attentionOutputBias = true
        c.mlpBias = true
        _ = try reader.bool("scale_attn_weights", default: true)
        _ = try reader.bool("scale_attn_by_inverse_layer_idx", default: false)
        try reader.readHeadDim(into: &c, hiddenKey: "n_embd", headsKey: "n_head")
    }

    func backboneTensors(_ c: ModelConfig) -> [String: [Int]] {
        let d = c.hiddenSize, i = c.intermediateSize
        var shapes = ["transformer.wte.weight": [c.vocabSize, d], "transformer.wpe.weight": [c.maxPositions, d],
                      "transformer.ln_f.weight": [d], "transformer.ln_f.bias": [d]]
        for layer in 0..<c.layerCount {
            let p = "transformer.h.\(layer)."
            for (name, shape) in [("ln_1.weight", [d]), ("ln_1.bias", [d]), ("attn.c_attn.weight", [d, 3 * d]), ("attn.c_attn.bias", [3 * d]),
                                  ("attn.c_proj.weight", [d, d]), ("attn.c_proj.bias", [d]), ("ln_2.weight", [d]), ("ln_2.bias", [d]),
                                  ("mlp.c_fc.weight", [d, i]), ("mlp.c_fc.bias", [i]), ("mlp.c_proj.weight", [i, d]), ("mlp.c_proj.bias", [d])] {
                shapes[p + name] = shape
            }
        }
        return shapes
    }

    func makeModel(config: ModelConfig, kind: CheckpointKind, weights: inout CheckpointWeights) throws -> any TransformerModel {
        try GPT2Model(config: config, kind: kind, weights: &weights)
    }

    func details(_ c: ModelConfig) -> [(String, String)] {
        let scaled = c.json["scale_attn_by_inverse_layer_idx"]?.boolValue ?? false
        return scaled ? [("attention_scale", "1/sqrt(head_dim)/(layer+1) (scale_attn_by_inverse_layer_idx)")] : []
    }
}

/// GPT-2: learned absolute positions, pre-LayerNorm blocks, fused `[Q | K | V]` projection,
/// `Conv1D` weights stored `[in, out]` (used as stored), tanh-approximated gelu, and a head tied to
/// the token embedding.
///
/// ```
/// x = wte[token] + wpe[position]
/// for each block:  x += c_proj(attention(c_attn(ln_1 x)))
///                  x += mlp.c_proj(gelu_tanh(mlp.c_fc(ln_2 x)))
/// hidden = ln_f x
/// ```
public final class GPT2Model: TransformerModel {
    public let config: ModelConfig
    public let kind: CheckpointKind
    public let source: String
    public let outputHead: DenseWeight
    private let tokenEmbedding: DenseWeight
    private let positionEmbedding: DenseWeight
    private let blocks: [Block]
    private let finalNorm: LayerNormWeights

    private struct Block {
        let norm1: LayerNormWeights
        let attention: Linear
        let attentionOutput: Linear
        let norm2: LayerNormWeights
        let up: Linear
        let down: Linear
        let geometry: AttentionGeometry
    }

    init(config: ModelConfig, kind: CheckpointKind, weights: inout CheckpointWeights) throws {
        self.config = config
        self.kind = kind
        source = weights.source
        // The config was checked when read (GPT2Architecture.readConfig).
        // The Conv1D weights stay [in, out]: sgemm reads them untransposed.
        func conv1D(_ name: String) throws -> Linear {
            Linear(weight: try weights.matrix(name + ".weight", layout: .inByOut), bias: try weights.take(name + ".bias"))
        }
        func norm(_ name: String) throws -> LayerNormWeights {
            try weights.layerNorm(name)
        }
        let scaleWeights = config.json["scale_attn_weights"]?.boolValue ?? true
        let scaleByLayer = config.json["scale_attn_by_inverse_layer_idx"]?.boolValue ?? false
        var blocks: [Block] = []
        for layer in 0..<config.layerCount {
            let p = "transformer.h.\(layer)."
            var scale: Double = scaleWeights ? 1 / Double(config.headDim).squareRoot() : 1
            if scaleByLayer { scale /= Double(layer + 1) }
            blocks.append(Block(
                norm1: try norm(p + "ln_1"),
                attention: try conv1D(p + "attn.c_attn"),
                attentionOutput: try conv1D(p + "attn.c_proj"),
                norm2: try norm(p + "ln_2"),
                up: try conv1D(p + "mlp.c_fc"),
                down: try conv1D(p + "mlp.c_proj"),
                geometry: AttentionGeometry(headCount: config.headCount, kvHeadCount: config.headCount, headDim: config.headDim,
                                            scale: Float(scale), window: nil)))
        }
        self.blocks = blocks
        finalNorm = try norm("transformer.ln_f")
        positionEmbedding = try weights.matrix("transformer.wpe.weight")
        let embedding = try weights.matrix("transformer.wte.weight")
        tokenEmbedding = embedding
        outputHead = try weights.outputHead(config: config, kind: kind, embedding: embedding)
    }

    public func finalHiddenStates(_ batch: PackedBatch, profile: ComputeProfile?) -> [Float] {
        let n = batch.rowCount, d = config.hiddenSize
        guard n > 0 else { return [] }
        let x = FloatBuffer(count: n * d)
        let normed = FloatBuffer(count: n * d)
        let qkv = FloatBuffer(count: n * 3 * d)
        let attended = FloatBuffer(count: n * d)
        let inner = FloatBuffer(count: n * config.intermediateSize)

        let position = FloatBuffer(count: d)
        for r in 0..<n {
            let row = x.pointer + r * d
            tokenEmbedding.widenRow(Int(batch.tokens[r]), into: row)
            positionEmbedding.widenRow(Int(batch.positions[r]), into: position.pointer)
            for j in 0..<d { row[j] += position.pointer[j] }
        }
        for (layer, block) in blocks.enumerated() {
            Kernels.layerNorm(x.pointer, rows: n, width: d, weight: block.norm1.weight, bias: block.norm1.bias,
                              epsilon: config.normEpsilon, output: normed.pointer)
            block.attention.apply(normed.pointer, rows: n, into: qkv.pointer, profile: profile)
            CausalAttention.run(qkv: qkv, batch: batch, layer: layer, geometry: block.geometry, output: attended, profile: profile)
            block.attentionOutput.apply(attended.pointer, rows: n, into: x.pointer, accumulate: true, profile: profile)
            Kernels.layerNorm(x.pointer, rows: n, width: d, weight: block.norm2.weight, bias: block.norm2.bias,
                              epsilon: config.normEpsilon, output: normed.pointer)
            block.up.apply(normed.pointer, rows: n, into: inner.pointer, activation: .geluTanh, profile: profile)
            block.down.apply(inner.pointer, rows: n, into: x.pointer, accumulate: true, profile: profile)
        }
        let selected = batch.gatherOutputRows(x, width: d)
        let result = FloatBuffer(count: selected.count)
        Kernels.layerNorm(selected.pointer, rows: selected.count / d, width: d, weight: finalNorm.weight, bias: finalNorm.bias,
                          epsilon: config.normEpsilon, output: result.pointer)
        return result.array
    }
}
