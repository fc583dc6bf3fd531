import Foundation

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
    public let outputHead: DenseWeight
    private let tokenEmbedding: [Float]
    private let positionEmbedding: [Float]
    private let blocks: [Block]
    private let finalNorm: LayerNormWeights

    private struct LayerNormWeights {
        let weight: [Float]
        let bias: [Float]
    }

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
        let d = config.hiddenSize, inner = config.intermediateSize
        // The config was checked when read (ModelConfig.checkForwardPass).
        // The Conv1D weights stay [in, out]: sgemm reads them untransposed.
        func conv1D(_ name: String, in inFeatures: Int, out: Int) throws -> Linear {
            let w = try weights.take(name + ".weight", shape: [inFeatures, out])
            let b = try weights.take(name + ".bias", shape: [out])
            return Linear(weight: DenseWeight(values: w, outFeatures: out, inFeatures: inFeatures, layout: .inByOut), bias: b)
        }
        func norm(_ name: String) throws -> LayerNormWeights {
            LayerNormWeights(weight: try weights.take(name + ".weight", shape: [d]), bias: try weights.take(name + ".bias", shape: [d]))
        }
        let scaleWeights = config.json["scale_attn_weights"]?.boolValue ?? true
        var blocks: [Block] = []
        for layer in 0..<config.layerCount {
            let p = "transformer.h.\(layer)."
            var scale: Double = scaleWeights ? 1 / Double(config.headDim).squareRoot() : 1
            if config.scaleAttentionByInverseLayerIndex { scale /= Double(layer + 1) }
            blocks.append(Block(
                norm1: try norm(p + "ln_1"),
                attention: try conv1D(p + "attn.c_attn", in: d, out: 3 * d),
                attentionOutput: try conv1D(p + "attn.c_proj", in: d, out: d),
                norm2: try norm(p + "ln_2"),
                up: try conv1D(p + "mlp.c_fc", in: d, out: inner),
                down: try conv1D(p + "mlp.c_proj", in: inner, out: d),
                geometry: AttentionGeometry(headCount: config.headCount, kvHeadCount: config.headCount, headDim: config.headDim,
                                            scale: Float(scale), window: nil)))
        }
        self.blocks = blocks
        finalNorm = try norm("transformer.ln_f")
        positionEmbedding = try weights.take("transformer.wpe.weight", shape: [config.maxPositions, d])
        let embedding = try weights.take("transformer.wte.weight", shape: [config.vocabSize, d])
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

        tokenEmbedding.withUnsafeBufferPointer { wte in
            positionEmbedding.withUnsafeBufferPointer { wpe in
                for r in 0..<n {
                    let t = wte.baseAddress! + Int(batch.tokens[r]) * d, p = wpe.baseAddress! + Int(batch.positions[r]) * d
                    let row = x.pointer + r * d
                    for j in 0..<d { row[j] = t[j] + p[j] }
                }
            }
        }
        for (layer, block) in blocks.enumerated() {
            Kernels.layerNorm(x.pointer, rows: n, width: d, weight: block.norm1.weight, bias: block.norm1.bias,
                              epsilon: config.normEpsilon, output: normed.pointer)
            block.attention.apply(normed.pointer, rows: n, into: qkv.pointer, profile: profile)
            CausalAttention.run(qkv: qkv, batch: batch, layer: layer, geometry: block.geometry, output: attended, profile: profile)
            block.attentionOutput.apply(attended.pointer, rows: n, into: x.pointer, accumulate: true, profile: profile)
            Kernels.layerNorm(x.pointer, rows: n, width: d, weight: block.norm2.weight, bias: block.norm2.bias,
                              epsilon: config.normEpsilon, output: normed.pointer)
            block.up.apply(normed.pointer, rows: n, into: inner.pointer, profile: profile)
            Kernels.geluTanh(inner.pointer, count: n * config.intermediateSize)
            block.down.apply(inner.pointer, rows: n, into: x.pointer, accumulate: true, profile: profile)
        }
        let selected = batch.gatherOutputRows(x, width: d)
        let result = FloatBuffer(count: selected.count)
        Kernels.layerNorm(selected.pointer, rows: selected.count / d, width: d, weight: finalNorm.weight, bias: finalNorm.bias,
                          epsilon: config.normEpsilon, output: result.pointer)
        return result.array
    }
}
