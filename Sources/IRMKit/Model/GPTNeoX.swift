import Foundation

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
    public let outputHead: DenseWeight
    private let embedding: [Float]
    private let layers: [Layer]
    private let finalNorm: LayerNormWeights
    private let geometry: AttentionGeometry

    private struct LayerNormWeights {
        let weight: [Float]
        let bias: [Float]
    }

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
        let d = config.hiddenSize, inner = config.intermediateSize, hd = config.headDim, heads = config.headCount
        // The config was checked when read (ModelConfig.checkForwardPass).
        func norm(_ name: String) throws -> LayerNormWeights {
            LayerNormWeights(weight: try weights.take(name + ".weight", shape: [d]), bias: try weights.take(name + ".bias", shape: [d]))
        }
        /// Regroups per-head `[q_h | k_h | v_h]` rows into `[Q | K | V]`.
        func regroup(_ values: [Float], rowWidth: Int) -> [Float] {
            var out = [Float](repeating: 0, count: values.count)
            values.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    for h in 0..<heads {
                        for part in 0..<3 {
                            for i in 0..<hd {
                                let from = (h * 3 * hd + part * hd + i) * rowWidth
                                let to = (part * d + h * hd + i) * rowWidth
                                (dst.baseAddress! + to).update(from: src.baseAddress! + from, count: rowWidth)
                            }
                        }
                    }
                }
            }
            return out
        }
        var layers: [Layer] = []
        for layer in 0..<config.layerCount {
            let p = "gpt_neox.layers.\(layer)."
            let qkvWeight = regroup(try weights.take(p + "attention.query_key_value.weight", shape: [3 * d, d]), rowWidth: d)
            let qkvBias = try config.qkvBias ? regroup(weights.take(p + "attention.query_key_value.bias", shape: [3 * d]), rowWidth: 1) : nil
            layers.append(Layer(
                inputNorm: try norm(p + "input_layernorm"),
                postAttentionNorm: try norm(p + "post_attention_layernorm"),
                queryKeyValue: Linear(weight: DenseWeight(values: qkvWeight, outFeatures: 3 * d, inFeatures: d, layout: .outByIn), bias: qkvBias),
                dense: try weights.linear(p + "attention.dense", out: d, in: d, bias: config.attentionOutputBias),
                up: try weights.linear(p + "mlp.dense_h_to_4h", out: inner, in: d, bias: true),
                down: try weights.linear(p + "mlp.dense_4h_to_h", out: d, in: inner, bias: true)))
        }
        self.layers = layers
        finalNorm = try norm("gpt_neox.final_layer_norm")
        let embedding = try weights.take("gpt_neox.embed_in.weight", shape: [config.vocabSize, d])
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
        let rotary = Kernels.RotaryTable(config: config, positions: batch.positionLimit)

        embedding.withUnsafeBufferPointer { e in
            for r in 0..<n { (x.pointer + r * d).update(from: e.baseAddress! + Int(batch.tokens[r]) * d, count: d) }
        }
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
                                    positions: positions.baseAddress!, table: rotary)
                CausalAttention.run(qkv: qkv, batch: batch, layer: index, geometry: geometry, output: attended, profile: profile)
                layer.dense.apply(attended.pointer, rows: n, into: x.pointer, accumulate: true, profile: profile)
                if !config.useParallelResidual {
                    Kernels.layerNorm(x.pointer, rows: n, width: d, weight: layer.postAttentionNorm.weight,
                                      bias: layer.postAttentionNorm.bias, epsilon: config.normEpsilon, output: mlpInput.pointer)
                }
                layer.up.apply(mlpInput.pointer, rows: n, into: hidden.pointer, profile: profile)
                Kernels.geluErf(hidden.pointer, count: n * inner)
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
