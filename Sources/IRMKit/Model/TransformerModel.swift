import Foundation

/// A decoder-only transformer that irm can run: the common face of `GPT2Model`, `GPTNeoXModel` and
/// `LlamaFamilyModel`.
///
/// A model computes the final-norm hidden states of a packed batch (`PackedBatch`): the tokens of
/// many sequences laid end to end as the rows of one matrix, so that every projection is one large
/// GEMM and no row is padding. Attention runs per sequence. A sequence may continue a prefix whose
/// keys and values were computed earlier (`KeyValueCache`), which is how responses to the same
/// prompt share the prompt's work. What happens after the final norm (the vocabulary head and the
/// log-softmax, or a reward head) is the scorer's business; `outputHead` gives it the matrix.
///
/// ## Adding an architecture
/// 1. Teach `ModelConfig` (Checkpoint/ModelConfig.swift) the config keys and `TensorLayout` the
///    tensor names and shapes; `irm convert` and `irm inspect` then handle the checkpoints.
/// 2. Write `Model/<Family>.swift`: a private weights struct per block, built from a
///    `CheckpointWeights` (which checks each tensor's shape and converts nothing it need not),
///    and one public `final class <Family>Model: TransformerModel` whose `finalHiddenStates` is the
///    forward pass, written with the shared kernels (`Kernels`, `CausalAttention`). Fuse the q/k/v
///    projections into one `[Q | K | V]` matrix at load time: `CausalAttention` expects that row layout.
/// 3. Add the case to `ModelLoading.load(checkpoint:)`.
/// 4. Add the model to scripts/fixtures/make_logprob_fixtures.py (a float64 reference from
///    transformers, cross-checked by its numpy forward pass), regenerate, and list the fixture in
///    Tests/IRMKitTests/Model/LogProbParityTests.swift.
public protocol TransformerModel: AnyObject, Sendable {
    var config: ModelConfig { get }
    var kind: CheckpointKind { get }
    /// The matrix applied to final hidden states: the vocabulary head of a policy (which may have
    /// more rows than the tokenizer has tokens) or the score head of a reward model.
    var outputHead: DenseWeight { get }
    /// Runs the stack over `batch` and returns the final-norm hidden states of the rows that the
    /// batch's segments ask for (`ForwardSegment.outputRows`), in segment order, `hiddenSize` floats
    /// each. Records the keys and values of segments that ask for it.
    func finalHiddenStates(_ batch: PackedBatch, profile: ComputeProfile?) -> [Float]
}

extension TransformerModel {
    /// Rows of the output head (the softmax width of a policy, the label count of a reward model).
    public var outputWidth: Int { outputHead.outFeatures }
}

/// Loads any supported checkpoint as a runnable model.
public enum ModelLoading {
    public static func load(path: String) throws -> any TransformerModel {
        try load(checkpoint: Checkpoint.open(path: path))
    }

    public static func load(checkpoint: Checkpoint) throws -> any TransformerModel {
        var weights = try CheckpointWeights(checkpoint: checkpoint)
        return try build(checkpoint: checkpoint, weights: &weights)
    }

    /// A model with a PEFT LoRA adapter merged in memory, and what a report should record of it.
    public struct AdaptedModel: Sendable {
        public let model: any TransformerModel
        public let adapter: LoRAAdapter
        /// One line for a manifest, e.g. `LoRA r=4 alpha=8 on 28 modules from DIR`.
        public let description: String
        /// The adapter's files (adapter_config.json, adapter_model.safetensors), for SHA-256s.
        public let inputFiles: [String]
        /// Doubts that did not stop the merge (an adapter naming another base, ...).
        public let warnings: [String]
    }

    /// Loads `checkpoint` with the adapter merged into its weights, each changed tensor rounded to
    /// its stored type, exactly as `irm convert --adapter` would have stored it.
    public static func load(checkpoint: Checkpoint, adapter: LoRAAdapter) throws -> AdaptedModel {
        let (tensors, merge) = try adapter.mergedTensors(of: checkpoint)
        var weights = CheckpointWeights(tensors: tensors, source: "\(checkpoint.path) + \(adapter.directory)")
        let model = try build(checkpoint: checkpoint, weights: &weights)
        return AdaptedModel(model: model, adapter: adapter, description: adapter.summary, inputFiles: adapter.inputFiles, warnings: merge.warnings)
    }

    /// Opens the checkpoint file and loads it with the adapter directory merged.
    public static func load(path: String, adapterDirectory: String) throws -> AdaptedModel {
        try load(checkpoint: Checkpoint.open(path: path), adapterDirectory: adapterDirectory)
    }

    /// Reads the adapter directory, then loads `checkpoint` with it merged.
    public static func load(checkpoint: Checkpoint, adapterDirectory: String) throws -> AdaptedModel {
        try load(checkpoint: checkpoint, adapter: LoRAAdapter.load(directory: adapterDirectory))
    }

    private static func build(checkpoint: Checkpoint, weights: inout CheckpointWeights) throws -> any TransformerModel {
        switch checkpoint.architecture {
        case .gpt2: try GPT2Model(config: checkpoint.config, kind: checkpoint.kind, weights: &weights)
        case .gptNeoX: try GPTNeoXModel(config: checkpoint.config, kind: checkpoint.kind, weights: &weights)
        case .llama, .mistral, .qwen2: try LlamaFamilyModel(config: checkpoint.config, kind: checkpoint.kind, weights: &weights)
        }
    }
}

/// The tensors of a checkpoint, handed out one at a time so that each float32 array moves into the
/// model without a copy and peak memory stays near one copy of the weights.
struct CheckpointWeights {
    let source: String
    private var tensors: [String: CheckpointTensor]

    init(checkpoint: Checkpoint) throws {
        source = checkpoint.path
        tensors = try checkpoint.loadAllTensors()
    }

    init(tensors: [String: CheckpointTensor], source: String) {
        self.tensors = tensors
        self.source = source
    }

    func contains(_ name: String) -> Bool { tensors[name] != nil }

    /// Removes and returns a tensor's values after checking its shape.
    mutating func take(_ name: String, shape: [Int]) throws -> [Float] {
        guard let tensor = tensors.removeValue(forKey: name) else {
            throw IRMError("\(source): /tensors/\(name): missing tensor (expected shape \(shape))")
        }
        guard tensor.shape == shape, tensor.values.count == shape.reduce(1, *) else {
            throw IRMError("\(source): /tensors/\(name): expected shape \(shape), found \(tensor.shape)")
        }
        return tensor.values
    }

    /// Returns a tensor's values without removing it (for a tied head that is also the embedding).
    func peek(_ name: String, shape: [Int]) throws -> [Float] {
        guard let tensor = tensors[name] else {
            throw IRMError("\(source): /tensors/\(name): missing tensor (expected shape \(shape))")
        }
        guard tensor.shape == shape else {
            throw IRMError("\(source): /tensors/\(name): expected shape \(shape), found \(tensor.shape)")
        }
        return tensor.values
    }

    mutating func takeOptional(_ name: String, shape: [Int]) throws -> [Float]? {
        contains(name) ? try take(name, shape: shape) : nil
    }

    /// An `nn.Linear` weight `[out, in]` with its bias when `bias` is set.
    mutating func linear(_ prefix: String, out: Int, in inFeatures: Int, bias: Bool) throws -> Linear {
        let w = try take(prefix + ".weight", shape: [out, inFeatures])
        let b = bias ? try take(prefix + ".bias", shape: [out]) : nil
        return Linear(weight: DenseWeight(values: w, outFeatures: out, inFeatures: inFeatures, layout: .outByIn), bias: b)
    }

    /// The output head: the reward model's `score.weight`, else the untied head, else (tied) the
    /// input embedding, which the model keeps for lookups as well; the two share storage.
    mutating func outputHead(config: ModelConfig, kind: CheckpointKind, embedding: [Float]) throws -> DenseWeight {
        let d = config.hiddenSize
        switch kind {
        case .rewardModel:
            let w = try take("score.weight", shape: [config.labelCount, d])
            return DenseWeight(values: w, outFeatures: config.labelCount, inFeatures: d, layout: .outByIn)
        case .policy:
            let name = TensorLayout.outputHeadName(config.architecture)
            if contains(name) {
                let rows = tensors[name]?.shape.first ?? config.vocabSize
                let w = try take(name, shape: [rows, d])
                return DenseWeight(values: w, outFeatures: rows, inFeatures: d, layout: .outByIn)
            }
            guard config.tiedEmbeddings else {
                throw IRMError("\(source): /tensors/\(name): missing tensor; the configuration says the head is not tied to the input embedding")
            }
            return DenseWeight(values: embedding, outFeatures: embedding.count / d, inFeatures: d, layout: .outByIn)
        }
    }
}

// MARK: - Packed batches

/// Keys and values (after RoPE) that a sequence prefix left in every layer, so that sequences
/// continuing it need not recompute it. Per layer, `length` rows of `kvDim` floats each, the
/// layout of the K and V parts of a fused QKV row.
public final class KeyValueCache: @unchecked Sendable {
    public let length: Int
    let kvDim: Int
    fileprivate(set) var keys: [[Float]]
    fileprivate(set) var values: [[Float]]

    init(length: Int, kvDim: Int, layerCount: Int) {
        self.length = length
        self.kvDim = kvDim
        keys = Array(repeating: [], count: layerCount)
        values = Array(repeating: [], count: layerCount)
    }

    /// Bytes held.
    public var byteCount: Int { (keys.reduce(0) { $0 + $1.count } + values.reduce(0) { $0 + $1.count }) * 4 }
}

/// One sequence of a packed batch: new tokens, optionally continuing a cached prefix.
public struct ForwardSegment: Sendable {
    /// The tokens to run, at positions `prefix.length ..< prefix.length + tokens.count`.
    public var tokens: [Int32]
    /// Keys and values of the positions before `tokens`.
    public var prefix: KeyValueCache?
    /// Whether to keep this segment's keys and values (prefix included) for later segments.
    public var recordsCache: Bool
    /// Indices into `tokens` whose final hidden states are returned, in this order.
    public var outputRows: [Int]

    public init(tokens: [Int32], prefix: KeyValueCache? = nil, recordsCache: Bool = false, outputRows: [Int]) {
        self.tokens = tokens
        self.prefix = prefix
        self.recordsCache = recordsCache
        self.outputRows = outputRows
    }

    var startPosition: Int { prefix?.length ?? 0 }
}

/// Segments laid end to end as the rows of one matrix.
public final class PackedBatch: @unchecked Sendable {
    public let segments: [ForwardSegment]
    /// First row of each segment.
    let rowStarts: [Int]
    public let rowCount: Int
    let tokens: [Int32]
    /// Absolute position of each row.
    let positions: [Int32]
    /// One past the largest position in the batch.
    let positionLimit: Int
    /// The caches recorded for segments with `recordsCache`, filled during the forward pass.
    public private(set) var recordedCaches: [KeyValueCache?]

    /// Packs `segments`, checking that every token id has an embedding row and every position is
    /// inside the model's context.
    public init(segments: [ForwardSegment], config: ModelConfig) throws {
        for (index, segment) in segments.enumerated() {
            if let bad = segment.tokens.first(where: { $0 < 0 || Int($0) >= config.vocabSize }) {
                throw IRMError("segment \(index) of the batch: token id \(bad) is outside the vocabulary (ids 0..<\(config.vocabSize))")
            }
            if segment.startPosition + segment.tokens.count > config.scoringContext {
                throw IRMError("segment \(index) of the batch: \(segment.startPosition + segment.tokens.count) positions exceed the model's context of \(config.scoringContext)")
            }
            if let rows = segment.outputRows.first(where: { $0 < 0 || $0 >= segment.tokens.count }) {
                throw IRMError("segment \(index) of the batch: output row \(rows) is outside its \(segment.tokens.count) tokens")
            }
            if let prefix = segment.prefix, prefix.kvDim != config.kvDim || prefix.keys.count != config.layerCount {
                throw IRMError("segment \(index) of the batch: its cached prefix was made by a model of another shape")
            }
        }
        self.segments = segments
        var starts: [Int] = []
        var tokens: [Int32] = []
        var positions: [Int32] = []
        var limit = 0
        for segment in segments {
            starts.append(tokens.count)
            tokens += segment.tokens
            let start = segment.startPosition
            positions += (0..<segment.tokens.count).map { Int32(start + $0) }
            limit = max(limit, start + segment.tokens.count)
        }
        rowStarts = starts
        rowCount = tokens.count
        self.tokens = tokens
        self.positions = positions
        positionLimit = limit
        recordedCaches = segments.map {
            $0.recordsCache ? KeyValueCache(length: $0.startPosition + $0.tokens.count, kvDim: config.kvDim, layerCount: config.layerCount) : nil
        }
    }

    /// The rows whose final hidden states are returned, in output order.
    var outputRowIndices: [Int] {
        zip(segments, rowStarts).flatMap { segment, start in segment.outputRows.map { start + $0 } }
    }

    /// Stores the K and V columns of a layer's fused QKV rows into the caches being recorded.
    func record(layer: Int, qkv: FloatBuffer, qkvWidth: Int, keyOffset: Int, valueOffset: Int) {
        for (index, segment) in segments.enumerated() {
            guard let cache = recordedCaches[index] else { continue }
            let kvDim = cache.kvDim
            var keys = segment.prefix?.keys[layer] ?? []
            var values = segment.prefix?.values[layer] ?? []
            keys.reserveCapacity(cache.length * kvDim)
            values.reserveCapacity(cache.length * kvDim)
            for r in rowStarts[index]..<(rowStarts[index] + segment.tokens.count) {
                let row = qkv.pointer + r * qkvWidth
                keys.append(contentsOf: UnsafeBufferPointer(start: row + keyOffset, count: kvDim))
                values.append(contentsOf: UnsafeBufferPointer(start: row + valueOffset, count: kvDim))
            }
            cache.keys[layer] = keys
            cache.values[layer] = values
        }
    }

    /// Copies the requested rows of `hidden` (width `width`) into a new array, in output order.
    func gatherOutputRows(_ hidden: FloatBuffer, width: Int) -> FloatBuffer {
        let rows = outputRowIndices
        let out = FloatBuffer(count: rows.count * width)
        for (i, r) in rows.enumerated() {
            (out.pointer + i * width).update(from: hidden.pointer + r * width, count: width)
        }
        return out
    }
}
