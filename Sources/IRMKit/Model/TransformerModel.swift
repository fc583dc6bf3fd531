import Foundation

/// A decoder-only transformer that irm can run. Each architecture builds one
/// (`ArchitectureDefinition.makeModel`, Model/Architectures/; its doc comment is the recipe for
/// adding one).
///
/// A model computes the final hidden states of a packed batch (`PackedBatch`): the tokens of
/// many sequences laid end to end as the rows of one matrix, so that every projection is one large
/// GEMM and no row is padding. Attention runs per sequence. A sequence may continue a prefix whose
/// keys and values were computed earlier (`KeyValueCache`), which is how responses to the same
/// prompt share the prompt's work. What happens after the final hidden states (the vocabulary head,
/// any logit soft-capping and the log-softmax, or a reward head) is the scorer's business;
/// `outputHead` gives it the matrix.
public protocol TransformerModel: AnyObject, Sendable {
    var config: ModelConfig { get }
    var kind: CheckpointKind { get }
    /// Where the weights came from, for messages: the checkpoint's path, with ` + ADAPTER_DIR`
    /// when an adapter was merged in memory (`CheckpointWeights.source`).
    var source: String { get }
    /// The matrix applied to final hidden states: the vocabulary head of a policy (which may have
    /// more rows than the tokenizer has tokens) or the score head of a reward model.
    var outputHead: DenseWeight { get }
    /// Runs the stack over `batch` and returns the final hidden states of the rows that the
    /// batch's segments ask for (`ForwardSegment.outputRows`), in segment order,
    /// `config.finalHiddenSize` floats each. Records the keys and values of segments that ask for it.
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

    /// `allowMapping: false` reads every tensor into memory as float32 instead of mapping the
    /// contiguous ones in place (the tests compare the two).
    public static func load(checkpoint: Checkpoint, allowMapping: Bool = true) throws -> any TransformerModel {
        var weights = try CheckpointWeights(checkpoint: checkpoint, allowMapping: allowMapping)
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
        let (tensors, merge) = try adapter.mergedTensors(of: checkpoint, onlyChanged: true)
        var weights = try CheckpointWeights(checkpoint: checkpoint, replacing: tensors, source: "\(checkpoint.path) + \(adapter.directory)")
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
        try build(config: checkpoint.config, kind: checkpoint.kind, weights: &weights)
    }

    /// The model of `config`'s architecture, from `weights`, each tensor checked against the
    /// architecture's table.
    static func build(config: ModelConfig, kind: CheckpointKind, weights: inout CheckpointWeights) throws -> any TransformerModel {
        weights.declare(TensorLayout.expectedShapes(for: config, kind: kind))
        return try config.architecture.definition.makeModel(config: config, kind: kind, weights: &weights)
    }
}

/// The tensors of a checkpoint, handed out one at a time. Matrices stay at their stored precision
/// and, when the file stores them contiguously, in place in a read-only mapping of it
/// (`Checkpoint.storedTensor`), so that loading a model costs file-backed pages rather than a
/// float32 copy of every weight; vectors (norms, biases) are small and are read as float32.
/// Shapes come from the architecture's table (`TensorLayout.expectedShapes`), so a model file names
/// each tensor once. Each tensor is checked when taken: its shape, and that every value is finite.
struct CheckpointWeights {
    let source: String
    private let checkpoint: Checkpoint?
    private let allowMapping: Bool
    /// Tensors given in memory (an adapter's merged ones), which replace the checkpoint's.
    private var given: [String: CheckpointTensor]
    private var available: Set<String>
    private var declared: [String: [Int]] = [:]

    /// The tensors of `checkpoint`, after checking that none the architecture needs is missing or
    /// misshaped; `replacing` are used instead of the stored tensors of the same names.
    init(checkpoint: Checkpoint, replacing: [String: CheckpointTensor] = [:], source: String? = nil, allowMapping: Bool = true) throws {
        if let problem = checkpoint.tensorProblems().first(where: { $0.kind != .unexpected }) {
            throw IRMError("\(checkpoint.path): /tensors: \(problem)")
        }
        self.source = source ?? checkpoint.path
        self.checkpoint = checkpoint
        self.allowMapping = allowMapping
        given = replacing
        available = Set(checkpoint.tensors.map(\.name)).union(replacing.keys)
    }

    init(tensors: [String: CheckpointTensor], source: String) {
        self.source = source
        checkpoint = nil
        allowMapping = false
        given = tensors
        available = Set(tensors.keys)
    }

    /// The tensors the architecture declares, with their shapes.
    mutating func declare(_ shapes: [String: [Int]]) { declared = shapes }

    func contains(_ name: String) -> Bool { available.contains(name) }

    /// The declared shape of `name`.
    func shape(_ name: String) throws -> [Int] {
        guard let shape = declared[name] else {
            throw IRMError("\(source): /tensors/\(name): the architecture's tensor table does not list this tensor (an irm bug: please report it)")
        }
        return shape
    }

    /// Removes and returns a tensor at its stored precision after checking its shape against the
    /// declared one and that every value is finite. Each tensor is taken once, so each is scanned once.
    mutating func stored(_ name: String) throws -> StoredTensor {
        let shape = try shape(name)
        guard available.remove(name) != nil else {
            throw IRMError("\(source): /tensors/\(name): missing tensor (expected shape \(shape))")
        }
        let tensor: StoredTensor
        if let values = given.removeValue(forKey: name) {
            guard values.values.count == values.shape.reduce(1, *) else {
                throw IRMError("\(source): /tensors/\(name): expected shape \(shape), found \(values.shape)")
            }
            tensor = StoredTensor(name: name, shape: values.shape, values: values.values)
        } else if let checkpoint {
            tensor = try checkpoint.storedTensor(name, allowMapping: allowMapping && shape.count >= 2)
        } else {
            throw IRMError("\(source): /tensors/\(name): missing tensor (expected shape \(shape))")
        }
        guard tensor.shape == shape else {
            throw IRMError("\(source): /tensors/\(name): expected shape \(shape), found \(tensor.shape)")
        }
        if let bad = tensor.firstNonFinite() {
            throw IRMError("\(source): /tensors/\(name): expected finite values, found \(tensor.value(at: bad)) at \(FiniteValues.multiIndex(bad, shape: shape)) (a diverged run?)")
        }
        return tensor
    }

    /// A tensor's values as float32 (for vectors: norms, biases).
    mutating func take(_ name: String) throws -> [Float] {
        try stored(name).floatValues()
    }

    /// `take` for a tensor the table lists only in some configurations.
    mutating func takeIfDeclared(_ name: String) throws -> [Float]? {
        declared[name] == nil ? nil : try take(name)
    }

    /// A declared matrix, `[out, in]` (`nn.Linear`, an embedding) or `[in, out]` (GPT-2 `Conv1D`).
    mutating func matrix(_ name: String, layout: WeightLayout = .outByIn) throws -> DenseWeight {
        let shape = try shape(name)
        guard shape.count == 2 else { throw IRMError("\(source): /tensors/\(name): expected a matrix, the table says \(shape)") }
        let tensor = try stored(name)
        return layout == .outByIn
            ? DenseWeight(tensor: tensor, outFeatures: shape[0], inFeatures: shape[1], layout: .outByIn)
            : DenseWeight(tensor: tensor, outFeatures: shape[1], inFeatures: shape[0], layout: .inByOut)
    }

    /// The LayerNorm at `prefix` (`prefix.weight`, `prefix.bias`).
    mutating func layerNorm(_ prefix: String) throws -> LayerNormWeights {
        LayerNormWeights(weight: try take(prefix + ".weight"), bias: try take(prefix + ".bias"))
    }

    /// A declared `[out, in]` weight (`nn.Linear`), with `prefix.bias` when the table lists one.
    mutating func linear(_ prefix: String) throws -> Linear {
        Linear(weight: try matrix(prefix + ".weight"), bias: try takeIfDeclared(prefix + ".bias"))
    }

    /// Several declared `[out_i, in]` weights stacked into one `[Σ out_i, in]` projection (fused
    /// q/k/v, gate/up), with their biases stacked when the table lists them.
    mutating func stacked(_ prefixes: [String]) throws -> Linear {
        var parts: [DenseWeight] = [], biases: [Float] = []
        var biased = 0
        for prefix in prefixes {
            let part = try linear(prefix)
            if let first = parts.first, part.inFeatures != first.inFeatures {
                throw IRMError("\(source): /tensors/\(prefix).weight: expected \(first.inFeatures) inputs like \(prefixes[0]), found \(part.inFeatures)")
            }
            parts.append(part.weight)
            if let b = part.bias { biases += b; biased += 1 }
        }
        guard biased == 0 || biased == prefixes.count else {
            throw IRMError("\(source): /tensors/\(prefixes[0]): some of \(prefixes.joined(separator: ", ")) have biases and some do not")
        }
        return Linear(weight: DenseWeight(stacking: parts), bias: biased == 0 ? nil : biases)
    }

    /// The output head: the reward model's `score.weight`, else the untied head, else (tied) the
    /// input embedding, which the model keeps for lookups as well; the two share storage.
    mutating func outputHead(config: ModelConfig, kind: CheckpointKind, embedding: DenseWeight) throws -> DenseWeight {
        let d = config.finalHiddenSize
        switch kind {
        case .rewardModel:
            return try matrix("score.weight")
        case .policy:
            let name = TensorLayout.outputHeadName(config.architecture)
            if declared[name] != nil { return try matrix(name) }
            guard config.tiedEmbeddings, embedding.outFeatures == config.vocabSize, embedding.inFeatures == d else {
                throw IRMError("\(source): /tensors/\(name): missing tensor; the configuration says the head is not tied to the input embedding")
            }
            return embedding
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
    /// The length of the whole sequence this segment belongs to, which chooses the rotary
    /// frequencies where they depend on it (dynamic and longrope RoPE past their uniform length).
    /// nil: the segment ends its sequence. A prompt pass sets it to the length of the sequences
    /// that continue it.
    public var sequenceLength: Int?

    public init(tokens: [Int32], prefix: KeyValueCache? = nil, recordsCache: Bool = false, outputRows: [Int], sequenceLength: Int? = nil) {
        self.tokens = tokens
        self.prefix = prefix
        self.recordsCache = recordsCache
        self.outputRows = outputRows
        self.sequenceLength = sequenceLength
    }

    var startPosition: Int { prefix?.length ?? 0 }
    var ropeLength: Int { sequenceLength ?? (startPosition + tokens.count) }
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
            if max(segment.startPosition + segment.tokens.count, segment.ropeLength) > config.scoringContext {
                throw IRMError("segment \(index) of the batch: \(max(segment.startPosition + segment.tokens.count, segment.ropeLength)) positions exceed the model's context of \(config.scoringContext)")
            }
            if segment.ropeLength < segment.startPosition + segment.tokens.count {
                throw IRMError("segment \(index) of the batch: its sequence length \(segment.ropeLength) is shorter than its \(segment.startPosition + segment.tokens.count) positions")
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

    /// The rotary cos/sin tables of this batch's rows: one for every sequence whose frequencies do
    /// not depend on its length, and one per frequency key (`RopeScaling.frequencyKey`) for the
    /// others, so that a row's rotation depends only on its own sequence.
    func rotarySchedule(config: ModelConfig) -> Kernels.RotarySchedule {
        var tables: [Kernels.RotaryTable] = []
        var tableOfKey: [Int?: Int] = [:]
        var limitOfKey: [Int?: Int] = [:]
        var keys: [Int?] = []
        var lengthOfKey: [Int?: Int] = [:]
        for segment in segments {
            let key = config.ropeScaling?.frequencyKey(sequenceLength: segment.ropeLength)
            keys.append(key)
            limitOfKey[key] = max(limitOfKey[key] ?? 0, segment.startPosition + segment.tokens.count)
            lengthOfKey[key] = lengthOfKey[key] ?? segment.ropeLength
        }
        for key in keys where tableOfKey[key] == nil {
            tableOfKey[key] = tables.count
            let (frequencies, scale) = RopeScaling.frequencies(of: config, sequenceLength: key == nil ? nil : lengthOfKey[key] ?? nil)
            tables.append(Kernels.RotaryTable(frequencies: frequencies, scale: scale, positions: limitOfKey[key] ?? 0))
        }
        var rowTables = [Int](repeating: 0, count: rowCount)
        for (index, segment) in segments.enumerated() {
            let table = tableOfKey[keys[index]] ?? 0
            for r in rowStarts[index]..<(rowStarts[index] + segment.tokens.count) { rowTables[r] = table }
        }
        return Kernels.RotarySchedule(tables: tables.isEmpty ? [Kernels.RotaryTable(config: config, positions: 0)] : tables, rowTables: rowTables)
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
