import CBLAS
import Foundation

/// One layer of the RMSNorm / RoPE / gated-MLP decoder that Llama, Mistral, Qwen2, Gemma,
/// Gemma 2, Phi-3 and OLMo 2 share. The families differ in which norms they have and where:
///
/// ```
/// h = attentionInputNorm? x                          (Llama: input_layernorm; OLMo 2: none)
/// q, k, v = split(queryKeyValue h);  q = queryNorm? q;  k = keyNorm? k    (OLMo 2: over all heads)
/// a = output(attention(rope q, rope k, v))
/// x = x + attentionOutputNorm? a                     (Gemma 2, OLMo 2: post_attention_layernorm)
/// h = mlpInputNorm? x                                (Llama: post_attention_layernorm; Gemma 2: pre_feedforward_layernorm)
/// m = down(act(gate h) * up h)
/// x = x + mlpOutputNorm? m                           (Gemma 2, OLMo 2: post_feedforward_layernorm)
/// ```
/// Each norm is RMSNorm, `w ⊙ x / √(mean(x²) + ε)`; Gemma's `(1 + w)` is folded into `w` at load.
struct GatedDecoderLayer: Sendable {
    var attentionInputNorm: [Float]?
    var queryNorm: [Float]?
    var keyNorm: [Float]?
    /// Rows `[Q | K | V]`.
    var queryKeyValue: Linear
    var output: Linear
    var attentionOutputNorm: [Float]?
    var mlpInputNorm: [Float]?
    /// Rows `[gate | up]`.
    var gateUp: Linear
    var down: Linear
    var mlpOutputNorm: [Float]?
    var geometry: AttentionGeometry
}

/// What a family sets beyond its layers.
struct GatedDecoderOptions: Sendable {
    enum Activation: Sendable {
        /// SwiGLU: `silu(gate) * up`.
        case silu
        /// GeGLU with the tanh-approximated gelu (`gelu_pytorch_tanh`): `gelu(gate) * up`.
        case geluTanh
    }

    var activation: Activation = .silu
    /// Gemma multiplies the embeddings by √hidden_size, rounded to the compute type (float32).
    var embeddingScale: Float?
}

/// The forward pass of the gated-decoder families; the architecture files build its layers.
final class GatedDecoderModel: TransformerModel {
    let config: ModelConfig
    let kind: CheckpointKind
    let source: String
    let outputHead: DenseWeight
    private let embedding: DenseWeight
    private let layers: [GatedDecoderLayer]
    private let finalNorm: [Float]
    private let options: GatedDecoderOptions

    /// `embedding` is `[vocab, hidden]`; the output head is taken from `weights` after it (or is
    /// the embedding, when tied).
    init(config: ModelConfig, kind: CheckpointKind, embedding: DenseWeight, layers: [GatedDecoderLayer], finalNorm: [Float],
         options: GatedDecoderOptions, weights: inout CheckpointWeights) throws {
        self.config = config
        self.kind = kind
        source = weights.source
        self.embedding = embedding
        self.layers = layers
        self.finalNorm = finalNorm
        self.options = options
        outputHead = try weights.outputHead(config: config, kind: kind, embedding: embedding)
    }

    func finalHiddenStates(_ batch: PackedBatch, profile: ComputeProfile?) -> [Float] {
        let n = batch.rowCount, d = config.hiddenSize, inner = config.intermediateSize, eps = config.normEpsilon
        guard n > 0 else { return [] }
        let qDim = config.qDim, kvDim = config.kvDim
        let qkvWidth = qDim + 2 * kvDim
        let x = FloatBuffer(count: n * d)
        let normed = FloatBuffer(count: n * d)
        let branch = FloatBuffer(count: n * d)
        let qkv = FloatBuffer(count: n * qkvWidth)
        let attended = FloatBuffer(count: n * qDim)
        let gateUp = FloatBuffer(count: n * 2 * inner)
        let activated = FloatBuffer(count: n * inner)
        let rotary = batch.rotarySchedule(config: config)

        for r in 0..<n { embedding.widenRow(Int(batch.tokens[r]), into: x.pointer + r * d) }
        ComputeThreads.requireSingleThreadedBLAS()
        if let scale = options.embeddingScale { cblas_sscal(Int32(n * d), scale, x.pointer, 1) }

        /// Adds `f(input)` to x, through `norm` when the layer has one there.
        func residual(_ norm: [Float]?, _ apply: (UnsafeMutablePointer<Float>, Bool) -> Void) {
            if let norm {
                apply(branch.pointer, false)
                Kernels.rmsNorm(branch.pointer, rows: n, width: d, weight: norm, epsilon: eps, output: branch.pointer)
                cblas_saxpy(Int32(n * d), 1, branch.pointer, 1, x.pointer, 1)
            } else {
                apply(x.pointer, true)
            }
        }
        /// The block's input: x through `norm`, or x itself.
        func input(_ norm: [Float]?) -> UnsafeMutablePointer<Float> {
            guard let norm else { return x.pointer }
            Kernels.rmsNorm(x.pointer, rows: n, width: d, weight: norm, epsilon: eps, output: normed.pointer)
            return normed.pointer
        }

        batch.positions.withUnsafeBufferPointer { positions in
            for (index, layer) in layers.enumerated() {
                layer.queryKeyValue.apply(input(layer.attentionInputNorm), rows: n, into: qkv.pointer, profile: profile)
                if let q = layer.queryNorm {
                    Kernels.rmsNorm(qkv.pointer, rows: n, width: qDim, weight: q, epsilon: eps, output: qkv.pointer, rowStride: qkvWidth)
                }
                if let k = layer.keyNorm {
                    Kernels.rmsNorm(qkv.pointer + qDim, rows: n, width: kvDim, weight: k, epsilon: eps, output: qkv.pointer + qDim,
                                    rowStride: qkvWidth)
                }
                Kernels.applyRotary(qkv.pointer, rows: n, rowStride: qkvWidth, headCount: config.headCount + config.kvHeadCount,
                                    headDim: config.headDim, positions: positions.baseAddress!, schedule: rotary)
                CausalAttention.run(qkv: qkv, batch: batch, layer: index, geometry: layer.geometry, output: attended, profile: profile)
                residual(layer.attentionOutputNorm) { out, accumulate in
                    layer.output.apply(attended.pointer, rows: n, into: out, accumulate: accumulate, profile: profile)
                }
                layer.gateUp.apply(input(layer.mlpInputNorm), rows: n, into: gateUp.pointer, profile: profile)
                switch options.activation {
                case .silu: Kernels.siluGate(gateUp.pointer, rows: n, width: inner, output: activated.pointer)
                case .geluTanh: Kernels.geluTanhGate(gateUp.pointer, rows: n, width: inner, output: activated.pointer)
                }
                residual(layer.mlpOutputNorm) { out, accumulate in
                    layer.down.apply(activated.pointer, rows: n, into: out, accumulate: accumulate, profile: profile)
                }
            }
        }
        let selected = batch.gatherOutputRows(x, width: d)
        let result = FloatBuffer(count: selected.count)
        Kernels.rmsNorm(selected.pointer, rows: selected.count / d, width: d, weight: finalNorm, epsilon: eps, output: result.pointer)
        return result.array
    }
}

extension CheckpointWeights {
    /// An RMSNorm weight as the forward pass uses it: `w`, or `1 + w` for Gemma's norms.
    mutating func rmsNorm(_ name: String, offset: Float = 0) throws -> [Float] {
        let w = try take(name)
        return offset == 0 ? w : w.map { $0 + offset }
    }
}

/// The tensor names the gated-decoder families share (Hugging Face's Llama naming), for their
/// tables and their loaders.
enum GatedDecoderTensors {
    /// `self_attn.{q,k,v,o}_proj` of the layer at `p`: q/k/v biases with `qkvBias`, the o bias with
    /// `attentionOutputBias`.
    static func attention(_ p: String, _ c: ModelConfig, into shapes: inout [String: [Int]]) {
        let d = c.hiddenSize, q = c.qDim, kv = c.kvDim
        shapes[p + "self_attn.q_proj.weight"] = [q, d]
        shapes[p + "self_attn.k_proj.weight"] = [kv, d]
        shapes[p + "self_attn.v_proj.weight"] = [kv, d]
        shapes[p + "self_attn.o_proj.weight"] = [d, q]
        if c.qkvBias {
            shapes[p + "self_attn.q_proj.bias"] = [q]
            shapes[p + "self_attn.k_proj.bias"] = [kv]
            shapes[p + "self_attn.v_proj.bias"] = [kv]
        }
        if c.attentionOutputBias { shapes[p + "self_attn.o_proj.bias"] = [d] }
    }

    /// `mlp.{gate,up,down}_proj` of the layer at `p`, with biases when `mlpBias`.
    static func mlp(_ p: String, _ c: ModelConfig, into shapes: inout [String: [Int]]) {
        let d = c.hiddenSize, i = c.intermediateSize
        shapes[p + "mlp.gate_proj.weight"] = [i, d]
        shapes[p + "mlp.up_proj.weight"] = [i, d]
        shapes[p + "mlp.down_proj.weight"] = [d, i]
        if c.mlpBias {
            shapes[p + "mlp.gate_proj.bias"] = [i]
            shapes[p + "mlp.up_proj.bias"] = [i]
            shapes[p + "mlp.down_proj.bias"] = [d]
        }
    }
}

extension CheckpointWeights {
    /// The layer's q, k and v projections as one `[Q | K | V]` projection, and its o projection.
    mutating func attentionProjections(_ p: String) throws -> (queryKeyValue: Linear, output: Linear) {
        (try stacked([p + "self_attn.q_proj", p + "self_attn.k_proj", p + "self_attn.v_proj"]), try linear(p + "self_attn.o_proj"))
    }

    /// The layer's gate and up projections as one `[gate | up]` projection, and its down projection.
    mutating func gatedMLP(_ p: String) throws -> (gateUp: Linear, down: Linear) {
        (try stacked([p + "mlp.gate_proj", p + "mlp.up_proj"]), try linear(p + "mlp.down_proj"))
    }
}
