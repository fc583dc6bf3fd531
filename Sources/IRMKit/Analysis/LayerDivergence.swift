import Foundation

/// How much each weight of a policy moved during fine-tuning, tensor by tensor and block by block,
/// along a series of checkpoints (the layer-divergence view of Marks et al. 2023).
///
/// For a tensor t of a checkpoint θ against a reference checkpoint θ_ref (the base, or the previous
/// checkpoint of the series), with Δ_t = θ_t − θ_ref,t:
///
///     absolute_t  = ‖Δ_t‖_F
///     relative_t  = ‖Δ_t‖_F / ‖θ_ref,t‖_F                      undefined (nil) when ‖θ_ref,t‖_F = 0
///
/// and for a group G of tensors (a transformer block, or a named group such as the embedding):
///
///     absolute_G  = √(Σ_{t∈G} ‖Δ_t‖²_F)
///     relative_G  = √(Σ_{t∈G} ‖Δ_t‖²_F) / √(Σ_{t∈G} ‖θ_ref,t‖²_F)  undefined (nil) when the denominator is 0
///
/// so a group's relative divergence weighs its tensors by their size, as if the block were one
/// flattened vector. Groups come from the tensor names (`TensorGroup`).
///
/// Numerics: values are read as float32 and every sum is accumulated in Double, in blocks of 1024
/// terms whose partial sums are then added, so the rounding error grows with about n/1024 + 1024
/// terms rather than n. The difference of two float32 values is exact in Double.
///
/// Memory: a comparison reads one tensor of each checkpoint at a time, so at most two tensors (never
/// two whole models) are held.
///
/// Checkpoints must hold the same tensors with the same shapes. The one exception is a resized
/// vocabulary: the token embedding and the output head (`TensorGroup.Kind.embedding`, `.head`) may
/// differ in their first dimension (rows) alone, and then only the rows both checkpoints have are
/// compared, with a note saying how many rows were left out. Any other difference in names or shapes
/// is an architecture mismatch and an error naming both files and the tensor.
public struct LayerDivergence: Sendable, Codable, Equatable {
    /// What a checkpoint is compared with.
    public enum Reference: String, Sendable, Codable, CaseIterable {
        /// The base policy (θ_k against θ_0).
        case base
        /// The checkpoint before it in the series (θ_k against θ_{k−1}; θ_0 for the first step).
        case previous
    }

    /// A checkpoint to compare, with the label and training step reports show for it.
    public struct Input {
        public let checkpoint: Checkpoint
        public let label: String
        public let step: Int?

        /// `label` defaults to the file name without its extension, `step` to the checkpoint's
        /// provenance `training_step`.
        public init(_ checkpoint: Checkpoint, label: String? = nil, step: Int? = nil) {
            self.checkpoint = checkpoint
            self.label = label ?? URL(fileURLWithPath: checkpoint.path).deletingPathExtension().lastPathComponent
            self.step = step ?? checkpoint.provenance.trainingStep
        }

        /// Opens the checkpoint at `path` (metadata and tensor directory only).
        public static func open(path: String, label: String? = nil, step: Int? = nil) throws -> Input {
            Input(try Checkpoint.open(path: path), label: label, step: step)
        }

        var identity: CheckpointIdentity { CheckpointIdentity(path: checkpoint.path, label: label, step: step) }
    }

    /// Where a compared checkpoint came from.
    public struct CheckpointIdentity: Sendable, Codable, Equatable {
        public let path: String
        public let label: String
        /// The training step, when given or recorded in the checkpoint's provenance.
        public let step: Int?
    }

    /// One tensor's change.
    public struct TensorDivergence: Sendable, Codable, Equatable {
        public let tensor: String
        /// The name of the tensor's group (`TensorGroup.name`).
        public let group: String
        /// The tensor's shape in the reference checkpoint.
        public let shape: [Int]
        /// ‖θ_t − θ_ref,t‖_F.
        public let absolute: Double
        /// ‖θ_t − θ_ref,t‖_F / ‖θ_ref,t‖_F; nil when the reference tensor is all zeros.
        public let relative: Double?
        /// ‖θ_ref,t‖_F: the norm of the reference's tensor (the base's, or the previous checkpoint's).
        public let baseNorm: Double
        /// The rows compared when the two checkpoints' vocabularies differ in size; nil when every
        /// element was compared.
        public let sharedRows: Int?
        /// Why a value is missing or covers part of the tensor; nil when there is nothing to say.
        public let note: String?
    }

    /// One group's change (a transformer block, or a named group outside the blocks).
    public struct GroupDivergence: Sendable, Codable, Equatable {
        public let group: TensorGroup
        /// The number of tensors in the group.
        public let tensorCount: Int
        /// √(Σ_t ‖Δ_t‖²_F) over the group's tensors.
        public let absolute: Double
        /// absolute / baseNorm; nil when every tensor of the group is all zeros in the reference.
        public let relative: Double?
        /// √(Σ_t ‖θ_ref,t‖²_F) over the group's tensors.
        public let baseNorm: Double
    }

    /// One checkpoint against one reference.
    public struct Comparison: Sendable, Codable, Equatable {
        public let reference: Reference
        public let checkpoint: CheckpointIdentity
        public let referenceCheckpoint: CheckpointIdentity
        /// Every tensor, in group order (`TensorGroup`'s order), then by name.
        public let tensors: [TensorDivergence]
        /// Every group, in `TensorGroup`'s order.
        public let groups: [GroupDivergence]
        /// The names of the transformer blocks with the largest relative divergence, largest first
        /// (ties: the lower layer first); blocks whose relative divergence is undefined are left out.
        public let mostChangedBlocks: [String]
        /// Notes on the comparison as a whole, e.g. a resized vocabulary.
        public let notes: [String]

        /// The group named `name`, if there is one.
        public func group(_ name: String) -> GroupDivergence? { groups.first { $0.group.name == name } }

        /// The tensor named `name`, if there is one.
        public func tensor(_ name: String) -> TensorDivergence? { tensors.first { $0.tensor == name } }
    }

    public let base: CheckpointIdentity
    /// The checkpoints after the base, in the order given.
    public let steps: [CheckpointIdentity]
    /// For each step in order: its comparison with the base, then with the previous checkpoint.
    public let comparisons: [Comparison]

    /// Compares every checkpoint of `steps` with `base` and with the checkpoint before it (for the
    /// first step, the previous checkpoint is the base, so that comparison repeats the base one
    /// under `Reference.previous`). The steps are taken in the order given; sort them by training
    /// step first if that is the order wanted. `topBlockCount` sets the length of each comparison's
    /// `mostChangedBlocks`.
    public init(base: Input, steps: [Input], topBlockCount: Int = 3) throws {
        guard !steps.isEmpty else {
            throw IRMError("layer divergence of \(base.checkpoint.path): no checkpoints to compare with the base; give at least one later checkpoint")
        }
        guard topBlockCount >= 0 else {
            throw IRMError("layer divergence: the number of most-changed blocks to list must be 0 or more, found \(topBlockCount)")
        }
        var comparisons: [Comparison] = []
        for (index, step) in steps.enumerated() {
            let againstBase = try Self.compare(step, with: base, as: .base, topBlockCount: topBlockCount)
            comparisons.append(againstBase)
            if index == 0 {
                comparisons.append(againstBase.relabelled(as: .previous))
            } else {
                comparisons.append(try Self.compare(step, with: steps[index - 1], as: .previous, topBlockCount: topBlockCount))
            }
        }
        self.base = base.identity
        self.steps = steps.map(\.identity)
        self.comparisons = comparisons
    }

    /// The comparisons against one kind of reference, in step order.
    public func comparisons(against reference: Reference) -> [Comparison] {
        comparisons.filter { $0.reference == reference }
    }

    /// Every group that occurs in any comparison, in `TensorGroup`'s order.
    public var groups: [TensorGroup] {
        Array(Set(comparisons.flatMap { $0.groups.map(\.group) })).sorted()
    }

    /// Compares `candidate` with `reference` tensor by tensor, then aggregates by group.
    public static func compare(_ candidate: Input, with reference: Input, as kind: Reference, topBlockCount: Int = 3) throws -> Comparison {
        let pairs = try pairTensors(reference: reference.checkpoint, candidate: candidate.checkpoint)
        var tensors: [(group: TensorGroup, divergence: TensorDivergence)] = []
        var sums: [TensorGroup: (difference: Double, reference: Double, count: Int)] = [:]
        var notes: [String] = []
        for pair in pairs {
            let referenceTensor = try reference.checkpoint.loadTensor(pair.info.name)
            let candidateTensor = try candidate.checkpoint.loadTensor(pair.info.name)
            let elementCount = pair.sharedRows.map { rows in rows * pair.info.shape.dropFirst().reduce(1, *) } ?? pair.info.elementCount
            guard referenceTensor.values.count >= elementCount, candidateTensor.values.count >= elementCount else {
                throw IRMError("layer divergence: /tensors/\(pair.info.name) read \(referenceTensor.values.count) values from \(reference.checkpoint.path) "
                               + "and \(candidateTensor.values.count) from \(candidate.checkpoint.path), expected at least \(elementCount) from each")
            }
            let squares = squaredSums(reference: referenceTensor.values, candidate: candidateTensor.values, count: elementCount)
            if !squares.reference.isFinite {
                throw nonFinite(pair.info.name, in: reference.checkpoint.path)
            }
            if !squares.difference.isFinite {
                throw nonFinite(pair.info.name, in: candidate.checkpoint.path)
            }
            let baseNorm = squares.reference.squareRoot(), absolute = squares.difference.squareRoot()
            var tensorNotes: [String] = []
            if let rows = pair.sharedRows {
                let referenceRows = pair.info.shape[0], candidateRows = pair.candidateShape[0]
                let (larger, extra) = referenceRows > candidateRows
                    ? (reference.label, referenceRows - candidateRows) : (candidate.label, candidateRows - referenceRows)
                let text = "compared the \(rows) rows both checkpoints have (a resized vocabulary): \(larger) has \(extra) more "
                    + "(\(referenceRows) in \(reference.label), \(candidateRows) in \(candidate.label)); the extra rows are left out"
                tensorNotes.append(text)
                notes.append("\(pair.info.name): \(text)")
            }
            if baseNorm == 0 {
                tensorNotes.append("the reference tensor is all zeros, so only the absolute change is reported")
            }
            let group = TensorGroup(tensorName: pair.info.name)
            tensors.append((group, TensorDivergence(tensor: pair.info.name, group: group.name, shape: pair.info.shape, absolute: absolute,
                                                    relative: baseNorm > 0 ? absolute / baseNorm : nil, baseNorm: baseNorm, sharedRows: pair.sharedRows,
                                                    note: tensorNotes.isEmpty ? nil : tensorNotes.joined(separator: "; "))))
            let previous = sums[group] ?? (0, 0, 0)
            sums[group] = (previous.difference + squares.difference, previous.reference + squares.reference, previous.count + 1)
        }

        tensors.sort { a, b in a.group != b.group ? a.group < b.group : a.divergence.tensor < b.divergence.tensor }
        let groups = sums.keys.sorted().map { group -> GroupDivergence in
            let s = sums[group] ?? (0, 0, 0)
            let baseNorm = s.reference.squareRoot(), absolute = s.difference.squareRoot()
            return GroupDivergence(group: group, tensorCount: s.count, absolute: absolute,
                                   relative: baseNorm > 0 ? absolute / baseNorm : nil, baseNorm: baseNorm)
        }
        let ranked = groups.filter { $0.group.kind == .block && $0.relative != nil }.sorted { a, b in
            let ra = a.relative ?? 0, rb = b.relative ?? 0
            return ra != rb ? ra > rb : (a.group.layer ?? 0) < (b.group.layer ?? 0)
        }
        return Comparison(reference: kind, checkpoint: candidate.identity, referenceCheckpoint: reference.identity,
                          tensors: tensors.map(\.divergence), groups: groups, mostChangedBlocks: ranked.prefix(topBlockCount).map(\.group.name), notes: notes)
    }

    /// (Σ_i r_i², Σ_i (c_i − r_i)²) over the first `count` elements, in Double, summed in blocks of
    /// 1024 terms (see the type's note on numerics). Non-finite inputs give non-finite sums.
    static func squaredSums(reference: [Float], candidate: [Float], count: Int) -> (reference: Double, difference: Double) {
        let blockSize = 1024
        var referenceTotal = 0.0, differenceTotal = 0.0
        reference.withUnsafeBufferPointer { r in
            candidate.withUnsafeBufferPointer { c in
                var start = 0
                while start < count {
                    let end = min(start + blockSize, count)
                    var referenceBlock = 0.0, differenceBlock = 0.0
                    for i in start..<end {
                        let a = Double(r[i]), d = Double(c[i]) - a
                        referenceBlock += a * a
                        differenceBlock += d * d
                    }
                    referenceTotal += referenceBlock
                    differenceTotal += differenceBlock
                    start = end
                }
            }
        }
        return (referenceTotal, differenceTotal)
    }

    /// A tensor to compare: its reference shape, the candidate's shape, and the rows compared when
    /// a resized vocabulary makes them differ.
    struct TensorPair {
        let info: TensorInfo
        let candidateShape: [Int]
        let sharedRows: Int?
    }

    /// Matches the two checkpoints' tensors by name and checks their shapes (see the type's rules).
    static func pairTensors(reference: Checkpoint, candidate: Checkpoint) throws -> [TensorPair] {
        let candidateShapes = Dictionary(candidate.tensors.map { ($0.name, $0.shape) }, uniquingKeysWith: { first, _ in first })
        let referenceNames = Set(reference.tensors.map(\.name))
        let onlyReference = reference.tensors.map(\.name).filter { candidateShapes[$0] == nil }
        let onlyCandidate = candidate.tensors.map(\.name).filter { !referenceNames.contains($0) }.sorted()
        let architectures = reference.architecture == candidate.architecture && reference.kind == candidate.kind ? ""
            : " (\(reference.path) is a \(reference.architecture.rawValue) \(reference.kind.rawValue), "
              + "\(candidate.path) a \(candidate.architecture.rawValue) \(candidate.kind.rawValue))"
        if !onlyReference.isEmpty || !onlyCandidate.isEmpty {
            func listed(_ names: [String], in path: String) -> String? {
                guard let first = names.first else { return nil }
                let more = names.count > 1 ? " and \(names.count - 1) more" : ""
                return "/tensors/\(first)\(more) only in \(path)"
            }
            let parts = [listed(onlyReference, in: reference.path), listed(onlyCandidate, in: candidate.path)].compactMap { $0 }
            throw IRMError("cannot compare the weights of \(reference.path) and \(candidate.path): they hold different tensors, "
                           + "so they are not the same architecture\(architectures): " + parts.joined(separator: "; "))
        }
        var pairs: [TensorPair] = []
        for info in reference.tensors {
            let shape = candidateShapes[info.name] ?? info.shape
            if shape == info.shape {
                pairs.append(TensorPair(info: info, candidateShape: shape, sharedRows: nil))
                continue
            }
            let kind = TensorGroup(tensorName: info.name).kind
            let rowsOnly = shape.count == info.shape.count && shape.count >= 1 && Array(shape.dropFirst()) == Array(info.shape.dropFirst())
            guard rowsOnly, kind == .embedding || kind == .head else {
                let allowed = rowsOnly ? "only the token embedding and the output head may differ in rows (a resized vocabulary)"
                    : "the shapes must agree (only a resized vocabulary may change the rows of the token embedding and the output head)"
                throw IRMError("cannot compare the weights of \(reference.path) and \(candidate.path): /tensors/\(info.name) has shape "
                               + "\(info.shape) in \(reference.path) but \(shape) in \(candidate.path), so they are not the same architecture"
                               + "\(architectures); \(allowed)")
            }
            pairs.append(TensorPair(info: info, candidateShape: shape, sharedRows: min(shape[0], info.shape[0])))
        }
        return pairs
    }

    static func nonFinite(_ tensor: String, in path: String) -> IRMError {
        IRMError("\(path): /tensors/\(tensor) holds non-finite values (NaN or infinity), so its divergence is undefined; "
                 + "`irm inspect --check-values \(path)` counts them")
    }
}

extension LayerDivergence.Comparison {
    func relabelled(as reference: LayerDivergence.Reference) -> LayerDivergence.Comparison {
        LayerDivergence.Comparison(reference: reference, checkpoint: checkpoint, referenceCheckpoint: referenceCheckpoint, tensors: tensors,
                                   groups: groups, mostChangedBlocks: mostChangedBlocks, notes: notes)
    }
}

/// The group a checkpoint tensor belongs to in layer-divergence reports, read from its name alone.
///
/// Rules, applied to the name's dot-separated components:
/// 1. **Block**: the first component `layers`, `h` or `blocks` that is followed by a component of
///    decimal digits n makes the tensor part of block n (`model.layers.3.`, `transformer.h.3.`,
///    `gpt_neox.layers.3.`, `model.decoder.layers.3.`), named `block 3`.
/// 2. Otherwise a named group, by the first rule whose component occurs in the name:
///    `embedding` (`wte`, `embed_tokens`, `embed_in`, `word_embeddings`: the token embedding),
///    `position embedding` (`wpe`, `embed_positions`, `position_embeddings`),
///    `final norm` (`ln_f`, `norm`, `final_layer_norm`, `final_layernorm`),
///    `projection` (`project_in`, `project_out`: OPT's embedding projections),
///    `head` (`lm_head`, `embed_out`), `score` (`score`: a reward model's head).
/// 3. Anything else forms its own group, named by the tensor's name without a trailing `.weight` or
///    `.bias` (so a module's weight and bias stay together); a name that would read as one of the
///    groups above (`embedding`, `block 2`, ...) is prefixed with `other: ` so that names stay unique.
///
/// Groups order as: embedding, position embedding, the blocks by layer, final norm, projection,
/// head, score, then the other groups by name.
public struct TensorGroup: Sendable, Codable, Hashable, Comparable, CustomStringConvertible {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case embedding
        case positionEmbedding = "position embedding"
        case block
        case finalNorm = "final norm"
        case projection
        case head
        case score
        case other
    }

    public let kind: Kind
    /// The block's layer index; nil outside the blocks.
    public let layer: Int?
    /// `block n`, the kind's name, or for `.other` the tensor name without `.weight`/`.bias`.
    public let name: String

    public var description: String { name }

    static let blockContainers: Set<Substring> = ["layers", "h", "blocks"]
    static let namedKinds: [(kind: Kind, components: Set<Substring>)] = [
        (.embedding, ["wte", "embed_tokens", "embed_in", "word_embeddings"]),
        (.positionEmbedding, ["wpe", "embed_positions", "position_embeddings"]),
        (.finalNorm, ["ln_f", "norm", "final_layer_norm", "final_layernorm"]),
        (.projection, ["project_in", "project_out"]),
        (.head, ["lm_head", "embed_out"]),
        (.score, ["score"]),
    ]

    /// The group of the tensor named `tensorName` (see the type's rules).
    public init(tensorName: String) {
        let components = tensorName.split(separator: ".", omittingEmptySubsequences: false)
        for index in components.indices.dropLast() where Self.blockContainers.contains(components[index]) {
            let next = components[index + 1]
            if !next.isEmpty, next.allSatisfy({ $0.isASCII && $0.isNumber }), let layer = Int(next) {
                self.init(kind: .block, layer: layer, name: "block \(layer)")
                return
            }
        }
        for rule in Self.namedKinds where components.contains(where: rule.components.contains) {
            self.init(kind: rule.kind, layer: nil, name: rule.kind.rawValue)
            return
        }
        var stem = Substring(tensorName)
        for suffix in [".weight", ".bias"] where stem.hasSuffix(suffix) && stem.count > suffix.count {
            stem = stem.dropLast(suffix.count)
            break
        }
        let reserved = Kind.allCases.contains { $0.rawValue == stem }
            || (stem.hasPrefix("block ") && stem.dropFirst(6).allSatisfy { $0.isASCII && $0.isNumber })
        self.init(kind: .other, layer: nil, name: reserved ? "other: \(stem)" : String(stem))
    }

    init(kind: Kind, layer: Int?, name: String) {
        self.kind = kind
        self.layer = layer
        self.name = name
    }

    public static func < (a: TensorGroup, b: TensorGroup) -> Bool {
        let ra = Kind.allCases.firstIndex(of: a.kind) ?? 0, rb = Kind.allCases.firstIndex(of: b.kind) ?? 0
        if ra != rb { return ra < rb }
        if a.layer != b.layer { return (a.layer ?? -1) < (b.layer ?? -1) }
        return a.name < b.name
    }
}
