/// The tensors each architecture expects, under their Hugging Face names, with their shapes.
///
/// Shapes are as PyTorch stores them: `nn.Linear` weights are `[out, in]`; GPT-2's `Conv1D` weights
/// are `[in, out]`. This table is the single source for validation (`irm inspect`, `irm convert`)
/// and for the tables in docs/checkpoint-format.md.
public enum TensorLayout {
    /// Every tensor of the architecture (`ArchitectureDefinition.backboneTensors`) plus the head:
    /// `score.weight` for a reward model, the untied language-model head for a policy.
    public static func expectedShapes(for config: ModelConfig, kind: CheckpointKind) -> [String: [Int]] {
        var shapes = config.architecture.definition.backboneTensors(config)
        switch kind {
        case .policy:
            if !config.tiedEmbeddings { shapes[outputHeadName(config.architecture)] = [config.vocabSize, config.finalHiddenSize] }
        case .rewardModel:
            shapes["score.weight"] = [config.labelCount, config.finalHiddenSize]
        }
        return shapes
    }

    /// The name of the untied output projection.
    public static func outputHeadName(_ architecture: Architecture) -> String {
        architecture.definition.outputHeadName
    }

    /// The name of the input embedding, which also serves as the output head when tied.
    public static func inputEmbeddingName(_ architecture: Architecture) -> String {
        architecture.definition.inputEmbeddingName
    }

    /// The prefix of the backbone's tensors in the causal-LM and sequence-classification classes.
    static func backbonePrefix(_ architecture: Architecture) -> String {
        architecture.definition.backbonePrefix
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
        if name == outputHeadName(architecture) || name.hasPrefix("score.") { return name }
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
