/// The tensors each architecture expects, under their Hugging Face names, with their shapes.
///
/// Shapes are as PyTorch stores them: `nn.Linear` weights are `[out, in]`; GPT-2's `Conv1D` weights
/// are `[in, out]`. This table is the single source for validation (`irm inspect`, `irm convert`)
/// and for the tables in docs/checkpoint-format.md.
public enum TensorLayout {
    public static func expectedShapes(for config: ModelConfig, kind: CheckpointKind) -> [String: [Int]] {
        var shapes: [String: [Int]] = [:]
        let d = config.hiddenSize, v = config.vocabSize, i = config.intermediateSize
        switch config.architecture {
        case .gpt2:
            shapes["transformer.wte.weight"] = [v, d]
            shapes["transformer.wpe.weight"] = [config.maxPositions, d]
            for layer in 0..<config.layerCount {
                let p = "transformer.h.\(layer)."
                shapes[p + "ln_1.weight"] = [d]
                shapes[p + "ln_1.bias"] = [d]
                shapes[p + "attn.c_attn.weight"] = [d, 3 * d]
                shapes[p + "attn.c_attn.bias"] = [3 * d]
                shapes[p + "attn.c_proj.weight"] = [d, d]
                shapes[p + "attn.c_proj.bias"] = [d]
                shapes[p + "ln_2.weight"] = [d]
                shapes[p + "ln_2.bias"] = [d]
                shapes[p + "mlp.c_fc.weight"] = [d, i]
                shapes[p + "mlp.c_fc.bias"] = [i]
                shapes[p + "mlp.c_proj.weight"] = [i, d]
                shapes[p + "mlp.c_proj.bias"] = [d]
            }
            shapes["transformer.ln_f.weight"] = [d]
            shapes["transformer.ln_f.bias"] = [d]
        case .gptNeoX:
            shapes["gpt_neox.embed_in.weight"] = [v, d]
            for layer in 0..<config.layerCount {
                let p = "gpt_neox.layers.\(layer)."
                shapes[p + "input_layernorm.weight"] = [d]
                shapes[p + "input_layernorm.bias"] = [d]
                shapes[p + "post_attention_layernorm.weight"] = [d]
                shapes[p + "post_attention_layernorm.bias"] = [d]
                shapes[p + "attention.query_key_value.weight"] = [3 * d, d]
                if config.qkvBias { shapes[p + "attention.query_key_value.bias"] = [3 * d] }
                shapes[p + "attention.dense.weight"] = [d, d]
                if config.attentionOutputBias { shapes[p + "attention.dense.bias"] = [d] }
                shapes[p + "mlp.dense_h_to_4h.weight"] = [i, d]
                shapes[p + "mlp.dense_h_to_4h.bias"] = [i]
                shapes[p + "mlp.dense_4h_to_h.weight"] = [d, i]
                shapes[p + "mlp.dense_4h_to_h.bias"] = [d]
            }
            shapes["gpt_neox.final_layer_norm.weight"] = [d]
            shapes["gpt_neox.final_layer_norm.bias"] = [d]
        case .llama, .mistral, .qwen2:
            shapes["model.embed_tokens.weight"] = [v, d]
            let q = config.qDim, kv = config.kvDim
            for layer in 0..<config.layerCount {
                let p = "model.layers.\(layer)."
                shapes[p + "input_layernorm.weight"] = [d]
                shapes[p + "post_attention_layernorm.weight"] = [d]
                shapes[p + "self_attn.q_proj.weight"] = [q, d]
                shapes[p + "self_attn.k_proj.weight"] = [kv, d]
                shapes[p + "self_attn.v_proj.weight"] = [kv, d]
                shapes[p + "self_attn.o_proj.weight"] = [d, q]
                if config.qkvBias {
                    shapes[p + "self_attn.q_proj.bias"] = [q]
                    shapes[p + "self_attn.k_proj.bias"] = [kv]
                    shapes[p + "self_attn.v_proj.bias"] = [kv]
                }
                if config.attentionOutputBias { shapes[p + "self_attn.o_proj.bias"] = [d] }
                shapes[p + "mlp.gate_proj.weight"] = [i, d]
                shapes[p + "mlp.up_proj.weight"] = [i, d]
                shapes[p + "mlp.down_proj.weight"] = [d, i]
                if config.mlpBias {
                    shapes[p + "mlp.gate_proj.bias"] = [i]
                    shapes[p + "mlp.up_proj.bias"] = [i]
                    shapes[p + "mlp.down_proj.bias"] = [d]
                }
            }
            shapes["model.norm.weight"] = [d]
        }
        switch kind {
        case .policy:
            if !config.tiedEmbeddings { shapes[outputHeadName(config.architecture)] = [v, d] }
        case .rewardModel:
            shapes["score.weight"] = [config.labelCount, d]
        }
        return shapes
    }

    /// The name of the untied output projection.
    public static func outputHeadName(_ architecture: Architecture) -> String {
        architecture == .gptNeoX ? "embed_out.weight" : "lm_head.weight"
    }

    /// The name of the input embedding, which also serves as the output head when tied.
    public static func inputEmbeddingName(_ architecture: Architecture) -> String {
        switch architecture {
        case .gpt2: "transformer.wte.weight"
        case .gptNeoX: "gpt_neox.embed_in.weight"
        case .llama, .mistral, .qwen2: "model.embed_tokens.weight"
        }
    }

    /// The prefix of the backbone's tensors in the causal-LM and sequence-classification classes.
    static func backbonePrefix(_ architecture: Architecture) -> String {
        switch architecture {
        case .gpt2: "transformer."
        case .gptNeoX: "gpt_neox."
        case .llama, .mistral, .qwen2: "model."
        }
    }

    /// Whether a Hugging Face tensor name is a buffer rather than a weight: attention masks and
    /// rotary frequency tables, which older checkpoints save and irm recomputes.
    public static func isNonWeightBuffer(_ name: String) -> Bool {
        if name.hasSuffix(".rotary_emb.inv_freq") { return true }
        if name.hasSuffix(".attn.bias") || name.hasSuffix(".attn.masked_bias") { return true }
        if name.hasSuffix(".attention.bias") || name.hasSuffix(".attention.masked_bias") { return true }
        return false
    }

    /// Maps a name saved by a Hugging Face base model (no task prefix, e.g. GPT-2's `h.0.ln_1.weight`)
    /// onto the canonical name used by the causal-LM classes (`transformer.h.0.ln_1.weight`).
    public static func canonicalName(_ name: String, architecture: Architecture) -> String {
        let prefix = backbonePrefix(architecture)
        if name.hasPrefix(prefix) { return name }
        if name == "lm_head.weight" || name == "embed_out.weight" || name.hasPrefix("score.") { return name }
        return prefix + name
    }
}

/// One finding of checkpoint validation.
public struct TensorProblem: Sendable, Equatable, CustomStringConvertible, Codable {
    public enum Kind: String, Sendable, Codable { case missing, unexpected, wrongShape = "wrong-shape", unsupportedDType = "unsupported-dtype" }
    public let kind: Kind
    public let name: String
    public let expected: [Int]?
    public let found: [Int]?
    public let detail: String?

    public var description: String {
        switch kind {
        case .missing: "missing tensor \(name) (expected shape \(expected ?? []))"
        case .unexpected: "unexpected tensor \(name) (shape \(found ?? [])); the architecture has no such weight"
        case .wrongShape: "tensor \(name) has shape \(found ?? []), expected \(expected ?? [])"
        case .unsupportedDType: "tensor \(name) has dtype \(detail ?? "?"); expected f32, f16 or bf16"
        }
    }
}

extension TensorLayout {
    /// Compares the tensors present with the ones the architecture expects. The result is sorted by
    /// tensor name.
    public static func validate(present: [String: [Int]], config: ModelConfig, kind: CheckpointKind) -> [TensorProblem] {
        let expected = expectedShapes(for: config, kind: kind)
        var problems: [TensorProblem] = []
        for (name, shape) in expected {
            guard let found = present[name] else {
                problems.append(TensorProblem(kind: .missing, name: name, expected: shape, found: nil, detail: nil))
                continue
            }
            if found != shape {
                problems.append(TensorProblem(kind: .wrongShape, name: name, expected: shape, found: found, detail: nil))
            }
        }
        for (name, shape) in present where expected[name] == nil {
            problems.append(TensorProblem(kind: .unexpected, name: name, expected: nil, found: shape, detail: nil))
        }
        return problems.sorted { ($0.name, $0.kind.rawValue) < ($1.name, $1.kind.rawValue) }
    }
}
