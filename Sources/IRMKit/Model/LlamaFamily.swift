import Foundation

/// Llama, Mistral and Qwen2: RMSNorm, rotate-half RoPE with `rope_theta`, grouped-query attention,
/// a SwiGLU MLP, and a head tied to the embedding or not. Qwen2 adds q/k/v biases; Mistral (and
/// Qwen2 when `use_sliding_window` is set, on the layers `layer_types` marks) attends within a
/// sliding window.
///
/// ```
/// x = embed_tokens[token]
/// for each layer:  x += o_proj(attention(rope(q_proj h), rope(k_proj h), v_proj h)),  h = input_layernorm x
///                  x += down_proj(silu(gate_proj h) * up_proj h),                    h = post_attention_layernorm x
/// hidden = norm x
/// ```
/// At load time q/k/v become one `[Q | K | V]` projection and gate/up one `[gate | up]` projection,
/// so each step is a single GEMM.
public final class LlamaFamilyModel: TransformerModel {
    public let config: ModelConfig
    public let kind: CheckpointKind
    public let outputHead: DenseWeight
    private let embedding: [Float]
    private let layers: [Layer]
    private let finalNorm: [Float]

    private struct Layer {
        let inputNorm: [Float]
        let postAttentionNorm: [Float]
        let queryKeyValue: Linear
        let output: Linear
        let gateUp: Linear
        let down: Linear
        let geometry: AttentionGeometry
    }

    init(config: ModelConfig, kind: CheckpointKind, weights: inout CheckpointWeights) throws {
        self.config = config
        self.kind = kind
        let d = config.hiddenSize, inner = config.intermediateSize
        let q = config.qDim, kv = config.kvDim
        // The config was checked when read (ModelConfig.checkForwardPass).
        let windows = config.layerSlidingWindows

        var layers: [Layer] = []
        for layer in 0..<config.layerCount {
            let p = "model.layers.\(layer)."
            var qkvWeight = try weights.take(p + "self_attn.q_proj.weight", shape: [q, d])
            qkvWeight += try weights.take(p + "self_attn.k_proj.weight", shape: [kv, d])
            qkvWeight += try weights.take(p + "self_attn.v_proj.weight", shape: [kv, d])
            var qkvBias: [Float]? = nil
            if config.qkvBias {
                qkvBias = try weights.take(p + "self_attn.q_proj.bias", shape: [q])
                    + weights.take(p + "self_attn.k_proj.bias", shape: [kv])
                    + weights.take(p + "self_attn.v_proj.bias", shape: [kv])
            }
            var gateUpWeight = try weights.take(p + "mlp.gate_proj.weight", shape: [inner, d])
            gateUpWeight += try weights.take(p + "mlp.up_proj.weight", shape: [inner, d])
            var gateUpBias: [Float]? = nil
            if config.mlpBias {
                gateUpBias = try weights.take(p + "mlp.gate_proj.bias", shape: [inner]) + weights.take(p + "mlp.up_proj.bias", shape: [inner])
            }
            layers.append(Layer(
                inputNorm: try weights.take(p + "input_layernorm.weight", shape: [d]),
                postAttentionNorm: try weights.take(p + "post_attention_layernorm.weight", shape: [d]),
                queryKeyValue: Linear(weight: DenseWeight(values: qkvWeight, outFeatures: q + 2 * kv, inFeatures: d, layout: .outByIn), bias: qkvBias),
                output: try weights.linear(p + "self_attn.o_proj", out: d, in: q, bias: config.attentionOutputBias),
                gateUp: Linear(weight: DenseWeight(values: gateUpWeight, outFeatures: 2 * inner, inFeatures: d, layout: .outByIn), bias: gateUpBias),
                down: try weights.linear(p + "mlp.down_proj", out: d, in: inner, bias: config.mlpBias),
                geometry: AttentionGeometry(headCount: config.headCount, kvHeadCount: config.kvHeadCount, headDim: config.headDim,
                                            scale: Float(1 / Double(config.headDim).squareRoot()), window: windows[layer])))
        }
        self.layers = layers
        finalNorm = try weights.take("model.norm.weight", shape: [d])
        let embedding = try weights.take("model.embed_tokens.weight", shape: [config.vocabSize, d])
        self.embedding = embedding
        outputHead = try weights.outputHead(config: config, kind: kind, embedding: embedding)
    }

    public func finalHiddenStates(_ batch: PackedBatch, profile: ComputeProfile?) -> [Float] {
        let n = batch.rowCount, d = config.hiddenSize, inner = config.intermediateSize
        guard n > 0 else { return [] }
        let qkvWidth = config.qDim + 2 * config.kvDim
        let x = FloatBuffer(count: n * d)
        let normed = FloatBuffer(count: n * d)
        let qkv = FloatBuffer(count: n * qkvWidth)
        let attended = FloatBuffer(count: n * config.qDim)
        let gateUp = FloatBuffer(count: n * 2 * inner)
        let activated = FloatBuffer(count: n * inner)
        let rotary = Kernels.RotaryTable(config: config, positions: batch.positionLimit)

        embedding.withUnsafeBufferPointer { e in
            for r in 0..<n { (x.pointer + r * d).update(from: e.baseAddress! + Int(batch.tokens[r]) * d, count: d) }
        }
        batch.positions.withUnsafeBufferPointer { positions in
            for (index, layer) in layers.enumerated() {
                Kernels.rmsNorm(x.pointer, rows: n, width: d, weight: layer.inputNorm, epsilon: config.normEpsilon, output: normed.pointer)
                layer.queryKeyValue.apply(normed.pointer, rows: n, into: qkv.pointer, profile: profile)
                Kernels.applyRotary(qkv.pointer, rows: n, rowStride: qkvWidth, headCount: config.headCount + config.kvHeadCount,
                                    headDim: config.headDim, positions: positions.baseAddress!, table: rotary)
                CausalAttention.run(qkv: qkv, batch: batch, layer: index, geometry: layer.geometry, output: attended, profile: profile)
                layer.output.apply(attended.pointer, rows: n, into: x.pointer, accumulate: true, profile: profile)
                Kernels.rmsNorm(x.pointer, rows: n, width: d, weight: layer.postAttentionNorm, epsilon: config.normEpsilon, output: normed.pointer)
                layer.gateUp.apply(normed.pointer, rows: n, into: gateUp.pointer, profile: profile)
                Kernels.siluGate(gateUp.pointer, rows: n, width: inner, output: activated.pointer)
                layer.down.apply(activated.pointer, rows: n, into: x.pointer, accumulate: true, profile: profile)
            }
        }
        let selected = batch.gatherOutputRows(x, width: d)
        let result = FloatBuffer(count: selected.count)
        Kernels.rmsNorm(selected.pointer, rows: selected.count / d, width: d, weight: finalNorm, epsilon: config.normEpsilon,
                        output: result.pointer)
        return result.array
    }
}
