import ChatTemplate
import Foundation

/// Everything `irm inspect` reports about a checkpoint, as a value that renders to text or JSON.
public struct CheckpointInspection: Sendable, Codable {
    public struct Configuration: Sendable, Codable {
        public let vocabSize: Int
        public let hiddenSize: Int
        public let layers: Int
        public let heads: Int
        public let kvHeads: Int
        public let headDim: Int
        public let intermediateSize: Int
        public let maxPositions: Int
        public let normEpsilon: Double
        public let activation: String
        public let tiedEmbeddings: Bool
        public let rotaryDim: Int
        public let ropeTheta: Double
        public let ropeScaling: String?
        public let parallelResidual: Bool
        public let qkvBias: Bool
        /// Width of the final hidden states the head reads (OPT's word_embed_proj_dim).
        public let finalHiddenSize: Int
        /// The architecture's own settings (norm placement, soft-capping, windows...), by key.
        public let details: [String: String]
        public let labels: Int
        public let bosTokenID: Int?
        public let eosTokenID: Int?
        public let padTokenID: Int?
    }

    /// NaN and infinity counts for one tensor (only tensors with any are listed).
    public struct NonFinite: Sendable, Codable, Equatable {
        public let name: String
        public let nan: Int
        public let infinite: Int
    }

    /// The tensors' stored bytes against their `crc32` attributes.
    public struct Checksums: Sendable, Codable, Equatable {
        /// Tensors that carry a `crc32` (all of them in files irm wrote in format 1.1 or later).
        public let checked: Int
        public let mismatches: [ChecksumMismatch]
    }

    public let path: String
    public let format: String
    public let formatVersion: Int
    public let formatMinorVersion: Int
    public let architecture: String
    public let kind: String
    public let configuration: Configuration
    public let parameterCount: Int
    public let tensors: [TensorInfo]
    /// How the tensors are stored and whether a model maps them in place (`Checkpoint.storageSummary`).
    public let storage: String
    public let tokenizer: TokenizerSummary
    /// Where the chat template is and how long it is, e.g. `chat_template.jinja, 1820 characters`;
    /// nil without one.
    public let chatTemplate: String?
    public let provenance: Provenance
    public let problems: [TensorProblem]
    /// Warnings that do not make the checkpoint unusable.
    public let warnings: [String]
    /// Present only when values were scanned.
    public let nonFinite: [NonFinite]?
    /// Present only when values were scanned.
    public let checksums: Checksums?

    public var isValid: Bool { problems.isEmpty && (nonFinite?.isEmpty ?? true) && (checksums?.mismatches.isEmpty ?? true) }

    /// Reads the checkpoint's metadata; with `checkValues`, also reads every tensor, counts NaN and
    /// infinite values, and compares each tensor's bytes with its stored CRC-32.
    public init(checkpoint: Checkpoint, checkValues: Bool) throws {
        let c = checkpoint.config
        path = checkpoint.path
        format = CheckpointFormat.name
        formatVersion = checkpoint.formatVersion
        formatMinorVersion = checkpoint.formatMinorVersion
        architecture = checkpoint.architecture.rawValue
        kind = checkpoint.kind.rawValue
        configuration = Configuration(
            vocabSize: c.vocabSize, hiddenSize: c.hiddenSize, layers: c.layerCount, heads: c.headCount, kvHeads: c.kvHeadCount,
            headDim: c.headDim, intermediateSize: c.intermediateSize, maxPositions: c.maxPositions, normEpsilon: c.normEpsilon,
            activation: c.activation, tiedEmbeddings: c.tiedEmbeddings, rotaryDim: c.rotaryDim, ropeTheta: c.ropeTheta,
            ropeScaling: c.ropeScalingType, parallelResidual: c.useParallelResidual, qkvBias: c.qkvBias,
            finalHiddenSize: c.finalHiddenSize,
            details: Dictionary(c.architecture.definition.details(c), uniquingKeysWith: { first, _ in first }), labels: c.labelCount,
            bosTokenID: c.bosTokenID, eosTokenID: c.eosTokenID, padTokenID: c.padTokenID)
        parameterCount = checkpoint.parameterCount
        tensors = checkpoint.tensors
        storage = checkpoint.storageSummary
        tokenizer = try checkpoint.tokenizerSummary()
        var templateWarning: String? = nil
        if let (origin, text) = try checkpoint.storedChatTemplate() {
            let shown = origin.replacingOccurrences(of: "\(checkpoint.path): /tokenizer/", with: "")
            chatTemplate = "\(shown), \(text.count) characters"
            do {
                _ = try ChatTemplate(source: text)
            } catch {
                templateWarning = "the chat template (\(origin)) cannot be used: \(error.description); conversational data needs --chat-template"
            }
        } else {
            chatTemplate = nil
        }
        provenance = checkpoint.provenance
        problems = checkpoint.tensorProblems()
        var warnings: [String] = []
        if tokenizer.maxTokenID >= c.vocabSize {
            warnings.append("the tokenizer can produce token id \(tokenizer.maxTokenID), but the embedding has only \(c.vocabSize) rows")
        }
        if let scaling = c.ropeScaling, let limit = scaling.uniformLength {
            let change = scaling.kind == .dynamic ? "recomputes θ from each sequence's length" : "switches to its long factors"
            warnings.append("RoPE scaling \"\(scaling.kind.rawValue)\" \(change) past \(limit) tokens, per sequence (as transformers does for a batch of one); irm scores up to \(c.scoringContext) tokens")
        }
        if let templateWarning { warnings.append(templateWarning) }
        self.warnings = warnings
        if checkValues {
            var found: [NonFinite] = []
            var mismatches: [ChecksumMismatch] = []
            for info in checkpoint.tensors {
                let (tensor, mismatch) = try checkpoint.readTensor(info.name)
                if let mismatch { mismatches.append(mismatch) }
                if let (nan, infinite) = FiniteValues.count(tensor.values) {
                    found.append(NonFinite(name: info.name, nan: nan, infinite: infinite))
                }
            }
            nonFinite = found
            checksums = Checksums(checked: checkpoint.tensorChecksums.count, mismatches: mismatches)
        } else {
            nonFinite = nil
            checksums = nil
        }
    }

    /// Pretty JSON with sorted keys.
    public func jsonText() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// The human-readable report.
    public func text() -> String {
        var lines: [String] = []
        let c = configuration
        lines.append("\(path)")
        lines.append("  format        \(format) v\(formatVersion).\(formatMinorVersion)")
        lines.append("  architecture  \(architecture)")
        lines.append("  kind          \(kind)")
        lines.append("  parameters    \(Self.grouped(parameterCount)) in \(tensors.count) tensors")
        lines.append("  storage       \(storage)")
        lines.append("")
        lines.append("configuration")
        var config: [(String, String)] = [
            ("vocab_size", "\(c.vocabSize)"), ("hidden_size", "\(c.hiddenSize)"), ("layers", "\(c.layers)"),
            ("heads", c.kvHeads == c.heads ? "\(c.heads)" : "\(c.heads) (kv heads \(c.kvHeads))"), ("head_dim", "\(c.headDim)"),
            ("intermediate_size", "\(c.intermediateSize)"), ("max_positions", "\(c.maxPositions)"),
            ("norm_eps", "\(c.normEpsilon)"), ("activation", c.activation), ("tied_embeddings", "\(c.tiedEmbeddings)"),
        ]
        if c.rotaryDim > 0 {
            config.append(("rotary_dim", "\(c.rotaryDim) of \(c.headDim), theta \(c.ropeTheta)\(c.ropeScaling.map { ", scaling \($0)" } ?? "")"))
        }
        if c.finalHiddenSize != c.hiddenSize { config.append(("final_hidden_size", "\(c.finalHiddenSize)")) }
        config += c.details.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        if kind == CheckpointKind.rewardModel.rawValue { config.append(("labels", "\(c.labels)")) }
        config.append(("bos/eos/pad", [c.bosTokenID, c.eosTokenID, c.padTokenID].map { $0.map(String.init) ?? "-" }.joined(separator: "/")))
        for (key, value) in config { lines.append("  \(key.padding(toLength: 18, withPad: " ", startingAt: 0))\(value)") }
        lines.append("")
        lines.append("tokenizer")
        lines.append("  type          \(tokenizer.modelType), \(tokenizer.style)\(tokenizer.byteFallback ? ", byte fallback" : "")")
        lines.append("  vocabulary    \(tokenizer.vocabularySize) (\(tokenizer.addedTokenCount) added tokens)")
        lines.append("  prepends      \(tokenizer.prependedToken ?? "nothing")")
        lines.append("  chat template \(chatTemplate ?? "none")")
        lines.append("")
        lines.append("provenance")
        if provenance.isEmpty { lines.append("  (none recorded)") }
        if let v = provenance.sourceModel { lines.append("  source_model  \(v)") }
        if let v = provenance.trainingStep { lines.append("  training_step \(v)") }
        if let v = provenance.beta { lines.append("  beta          \(v)") }
        if let v = provenance.notes { lines.append("  notes         \(v)") }
        if let v = provenance.writtenBy { lines.append("  written_by    \(v)") }
        if let v = provenance.adapterSource { lines.append("  adapter       \(v)") }
        if let v = provenance.adapterConfig { lines.append("  adapter_config \(v.utf8.count) bytes of adapter_config.json") }
        lines.append("")
        lines.append("tensors")
        let width = min(max(tensors.map(\.name.count).max() ?? 0, 10), 64)
        for t in tensors {
            lines.append("  \(t.name.padding(toLength: width, withPad: " ", startingAt: 0))  \(t.dtype.rawValue.padding(toLength: 4, withPad: " ", startingAt: 0))  \(t.shape)")
        }
        lines.append("")
        if problems.isEmpty {
            lines.append("validation: OK, every tensor the \(architecture) \(kind) needs is present with the right shape")
        } else {
            lines.append("validation: \(problems.count) problem\(problems.count == 1 ? "" : "s")")
            for p in problems { lines.append("  - \(p)") }
        }
        for w in warnings { lines.append("warning: \(w)") }
        if let nonFinite {
            if nonFinite.isEmpty {
                lines.append("values: all finite")
            } else {
                lines.append("values: \(nonFinite.count) tensor\(nonFinite.count == 1 ? "" : "s") with NaN or infinity")
                for n in nonFinite { lines.append("  - \(n.name): \(n.nan) NaN, \(n.infinite) infinite") }
            }
        }
        if let checksums {
            let total = tensors.count
            if checksums.checked == 0 {
                lines.append("checksums: none stored (a file written by another tool, or by irm before format 1.1)")
            } else if checksums.mismatches.isEmpty {
                lines.append("checksums: \(checksums.checked) of \(total) tensors carry a crc32, all match")
            } else {
                lines.append("checksums: \(checksums.mismatches.count) of \(checksums.checked) tensors do not match their stored crc32: the file is corrupt or was modified after irm wrote it")
                for m in checksums.mismatches {
                    lines.append("  - \(m.object): stored crc32 \(CRC32.hex(m.stored)), computed \(CRC32.hex(m.computed))")
                }
            }
        }
        return lines.joined(separator: "\n")
    }

    static func grouped(_ n: Int) -> String {
        let digits = String(n)
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0, (digits.count - i) % 3 == 0 { out += "," }
            out.append(ch)
        }
        return out
    }
}
