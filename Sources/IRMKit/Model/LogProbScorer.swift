import Foundation

/// How the scorer groups work. These settings change results only by float32 rounding (see
/// docs/scoring.md, "Batch invariance").
public struct ScoringOptions: Sendable, Equatable {
    /// Token rows per packed forward pass (the M of the block GEMMs). Activation memory grows with
    /// it: about `tokensPerBatch × (6·hidden + 2·intermediate) × 4` bytes.
    public var tokensPerBatch: Int = 2048
    /// Compute a prompt's keys and values once and let every response to it continue from them.
    public var sharePrompts: Bool = true
    /// Rows of the vocabulary head per tile (`VocabularyHead`): each head row is read once per
    /// `headRows` rows, and at most `headRows × 1024` logits exist at once per model and thread.
    public var headRows: Int = 512
    /// Threads to compute on (`ComputeThreads`); `nil` leaves the current setting. Results do not
    /// depend on it.
    public var threads: Int?

    /// Makes `threads` (when set) the count every parallel loop of irm uses (`ComputeThreads`):
    /// the pipelines call it first, so that what runs before the scorer keeps to it too.
    public func applyThreadCount() {
        if let threads { ComputeThreads.set(threads) }
    }

    public init(tokensPerBatch: Int = 2048, sharePrompts: Bool = true, headRows: Int = 512, threads: Int? = nil) {
        self.tokensPerBatch = tokensPerBatch
        self.sharePrompts = sharePrompts
        self.headRows = headRows
        self.threads = threads
    }
}

/// Called after each packed batch with the number of samples finished and tokens run so far.
public typealias ScoringProgress = (_ samplesDone: Int, _ tokensDone: Int) -> Void

/// Scores responses under causal language models: per-token log-probs, their sum and mean, and
/// optionally the per-token KL divergence between two models; or reward-model scores.
///
/// Speed comes from the layout of the work, never from approximations:
/// - the tokens of many sequences are packed as the rows of one matrix, so every projection is one
///   large sgemm with no padding, and attention runs per sequence;
/// - responses that share a prompt continue from the prompt's cached keys and values, so the
///   prompt is run once per model (preference pairs, generation audits);
/// - the vocabulary head and the log-softmax run only at the rows that predict response tokens,
///   tile by tile, each tile's logits reduced while in cache (`VocabularyHead`), so no logits
///   tensor exists beyond a tile.
///
/// Conventions: the log-prob of token k of the sequence `prompt + response` is
/// `log_softmax(logits[k-1])[ids[k]]` over the model's full output vocabulary. A response token at
/// position 0 (no prompt, no BOS) has no context and is reported as `nil`. A reward model's score is
/// its head applied to the final-norm hidden state of the last token. A result that is not finite
/// (the forward pass overflowed float32) is an error naming the model's checkpoint, the sample and
/// the position; `nil` only ever means "no context".
public final class LogProbScorer {
    public let options: ScoringOptions
    /// When set, collects where the time goes.
    public let profile: ComputeProfile?

    public init(options: ScoringOptions = ScoringOptions(), profile: ComputeProfile? = nil) {
        self.options = options
        self.profile = profile
        options.applyThreadCount()
    }

    /// Per-token log-probs of each sample's response under a policy.
    public func logProbs(of samples: [ScoringSample], under model: any TransformerModel,
                         progress: ScoringProgress? = nil) throws -> [ResponseLogProbs] {
        try requirePolicy(model, role: "the model")
        try validate(samples, for: model)
        var tokens = samples.map { [Double?](repeating: nil, count: $0.responseIDs.count) }
        let plan = ScoringPlan(samples: samples, options: options, target: .nextToken, frequencyKey: Self.frequencyKey(model.config))
        var caches = PromptCaches()
        for (index, batch) in plan.batches.enumerated() {
            let hidden = try runBatch(batch, plan: plan, model: model, caches: &caches)
            let head = evaluateHead([(hidden, model)], rows: batch.rows)
            var flat = 0
            for (r, row) in batch.rows.enumerated() {
                for target in row {
                    tokens[target.sample][target.position] = Double(head.targetLogits[0][flat]) - head.logSumExp[0][r]
                    flat += 1
                }
            }
            try Self.requireFinite(batch.rows, samples, [("the log-prob", model.source, tokens)])
            caches.release(after: index, plan: plan)
            progress?(plan.samplesDone(after: index), plan.tokensDone(after: index))
        }
        try MappedFile.checkAllUnchanged()
        return tokens.map(ResponseLogProbs.init)
    }

    /// Log-probs under two policies run together, and the exact per-token `KL(after ‖ before)` over
    /// the full vocabulary; both are held in memory. When one has more output rows (a resized
    /// vocabulary), each model's log-probs use its own rows, the KL is over the shared rows with
    /// both distributions renormalised over them, and `addedRowMass` gives the after-policy's
    /// probability on its extra rows (docs/scoring.md, "Resized vocabularies").
    ///
    /// Different row counts are accepted only with `resizedVocabulary`, which says that the
    /// caller checked that the smaller vocabulary's ids mean the same tokens in both
    /// (`Tokenizer.difference`).
    ///
    /// With `beforeHidden` (from `responseHiddenStates(of:under:)` on `before` and the same
    /// samples), the before-policy's trunk is not run: its head is applied to those states. A series
    /// of checkpoints compared against one base runs the base's trunk once.
    public func compare(_ samples: [ScoringSample], after: any TransformerModel, before: any TransformerModel,
                        resizedVocabulary: Bool = false, beforeHidden: [[Float]]? = nil,
                        progress: ScoringProgress? = nil) throws -> [ResponseComparison] {
        try requirePolicy(after, role: "the \"after\" model")
        try requirePolicy(before, role: "the \"before\" model")
        // A resized vocabulary (added tokens): each model's log-probs use its own rows; the KL is
        // over the shared rows, each distribution renormalised over them (over the union it would
        // be infinite), and the after-policy's mass on its extra rows is reported beside it.
        let widthAfter = after.outputWidth, widthBefore = before.outputWidth, shared = min(widthAfter, widthBefore)
        guard shared > 0 else { throw IRMError("a model has no output rows") }
        guard resizedVocabulary || (widthAfter == widthBefore && after.config.vocabSize == before.config.vocabSize) else {
            throw IRMError("the two models have different vocabularies (after: \(after.config.vocabSize) tokens, \(widthAfter) logits; before: \(before.config.vocabSize) tokens, \(widthBefore) logits); KL needs the same vocabulary, or one that only adds tokens to the other's")
        }
        try validate(samples, for: after)
        try validate(samples, for: before)
        let beforeWidth = before.config.finalHiddenSize
        if let beforeHidden {
            guard beforeHidden.count == samples.count else {
                throw IRMError("the before-policy's hidden states cover \(beforeHidden.count) samples; expected \(samples.count)")
            }
            for (i, states) in beforeHidden.enumerated() where states.count != samples[i].responseIDs.count * beforeWidth {
                throw IRMError("the before-policy's hidden states of sample \(i) hold \(states.count) values; expected \(samples[i].responseIDs.count) tokens × \(beforeWidth)")
            }
        }
        let empty = samples.map { [Double?](repeating: nil, count: $0.responseIDs.count) }
        var afterTokens = empty, beforeTokens = empty, kl = empty, addedMass = empty
        let plan = ScoringPlan(samples: samples, options: options, target: .nextToken,
                               frequencyKey: Self.frequencyKey(after.config, before.config))
        var afterCaches = PromptCaches(), beforeCaches = PromptCaches()
        for (index, batch) in plan.batches.enumerated() {
            let hiddenAfter = try runBatch(batch, plan: plan, model: after, caches: &afterCaches)
            let hiddenBefore = try beforeHidden.map { Self.gather($0, rows: batch.rows, width: beforeWidth) }
                ?? runBatch(batch, plan: plan, model: before, caches: &beforeCaches)
            // The head of both models over the same tiles: the KL needs both logits of a column.
            let head = evaluateHead([(hiddenAfter, after), (hiddenBefore, before)], rows: batch.rows)
            var flat = 0
            for (r, row) in batch.rows.enumerated() {
                for target in row {
                    afterTokens[target.sample][target.position] = Double(head.targetLogits[0][flat]) - head.logSumExp[0][r]
                    beforeTokens[target.sample][target.position] = Double(head.targetLogits[1][flat]) - head.logSumExp[1][r]
                    kl[target.sample][target.position] = head.kl[r]
                    addedMass[target.sample][target.position] = head.addedMass[r]
                    flat += 1
                }
            }
            try Self.requireFinite(batch.rows, samples, [
                ("the log-prob", after.source, afterTokens), ("the log-prob", before.source, beforeTokens),
                ("the KL against \(before.source)", after.source, kl),
                ("the probability on the output rows that \(before.source) lacks", after.source, addedMass),
            ])
            afterCaches.release(after: index, plan: plan)
            beforeCaches.release(after: index, plan: plan)
            progress?(plan.samplesDone(after: index), plan.tokensDone(after: index))
        }
        try MappedFile.checkAllUnchanged()
        return samples.indices.map {
            ResponseComparison(after: ResponseLogProbs(tokens: afterTokens[$0]), before: ResponseLogProbs(tokens: beforeTokens[$0]), kl: kl[$0],
                               addedRowMass: widthAfter > shared ? addedMass[$0] : nil)
        }
    }

    /// A policy's final hidden states at the positions that predict each response token, the
    /// input of its vocabulary head: per sample, `responseIDs.count` rows of `finalHiddenSize`
    /// floats, flat (zeros for a token with no context). `compare(beforeHidden:)` takes them.
    public func responseHiddenStates(of samples: [ScoringSample], under model: any TransformerModel,
                                     progress: ScoringProgress? = nil) throws -> [[Float]] {
        try requirePolicy(model, role: "the model")
        try validate(samples, for: model)
        let d = model.config.finalHiddenSize
        var states = samples.map { [Float](repeating: 0, count: $0.responseIDs.count * d) }
        let plan = ScoringPlan(samples: samples, options: options, target: .nextToken, frequencyKey: Self.frequencyKey(model.config))
        var caches = PromptCaches()
        for (index, batch) in plan.batches.enumerated() {
            let hidden = try runBatch(batch, plan: plan, model: model, caches: &caches)
            for (r, row) in batch.rows.enumerated() {
                for target in row {
                    let destination = target.position * d
                    states[target.sample].replaceSubrange(destination..<(destination + d), with: hidden[(r * d)..<((r + 1) * d)])
                }
            }
            if let bad = FiniteValues.firstNonFinite(hidden) {
                let target = batch.rows[bad / d].first ?? ScoringPlan.Target(sample: 0, position: 0, token: 0)
                throw Self.overflow(model.source, samples[target.sample], "the final hidden state that predicts the token at response position \(target.position) (token id \(target.token))", Double(hidden[bad]))
            }
            caches.release(after: index, plan: plan)
            progress?(plan.samplesDone(after: index), plan.tokensDone(after: index))
        }
        try MappedFile.checkAllUnchanged()
        return states
    }

    /// The rows of a batch from per-sample hidden states: each row's state is its first target's
    /// (every target of a row has the same context).
    private static func gather(_ states: [[Float]], rows: [[ScoringPlan.Target]], width d: Int) -> [Float] {
        var hidden = [Float](repeating: 0, count: rows.count * d)
        for (r, row) in rows.enumerated() {
            guard let target = row.first else { continue }
            let source = target.position * d
            hidden.replaceSubrange((r * d)..<((r + 1) * d), with: states[target.sample][source..<(source + d)])
        }
        return hidden
    }

    /// Reward-model scores: one value per label (usually one) for each sample, from the final-norm
    /// hidden state of the sample's last token.
    public func rewards(of samples: [ScoringSample], under model: any TransformerModel,
                        progress: ScoringProgress? = nil) throws -> [[Double]] {
        guard model.kind == .rewardModel else {
            throw IRMError("the model is a policy (causal language model), not a reward model; rewards need a checkpoint of kind reward-model")
        }
        try validate(samples, for: model)
        var scores = [[Double]](repeating: [], count: samples.count)
        let plan = ScoringPlan(samples: samples, options: options, target: .lastToken, frequencyKey: Self.frequencyKey(model.config))
        var caches = PromptCaches()
        let labels = model.outputWidth
        for (index, batch) in plan.batches.enumerated() {
            let hidden = try runBatch(batch, plan: plan, model: model, caches: &caches)
            let values = FloatBuffer(count: max(1, batch.rows.count * labels))
            if !batch.rows.isEmpty {
                hidden.withUnsafeBufferPointer { h in
                    Kernels.gemm(h.baseAddress!, rows: batch.rows.count, weight: model.outputHead, output: values.pointer, beta: 0)
                }
            }
            for (r, targets) in batch.rows.enumerated() {
                for target in targets {
                    scores[target.sample] = (0..<labels).map { Double(values.pointer[r * labels + $0]) }
                    if let bad = scores[target.sample].firstIndex(where: { !$0.isFinite }) {
                        throw Self.overflow(model.source, samples[target.sample], labels == 1 ? "the score" : "the score of label \(bad)", scores[target.sample][bad])
                    }
                }
            }
            caches.release(after: index, plan: plan)
            progress?(plan.samplesDone(after: index), plan.tokensDone(after: index))
        }
        try MappedFile.checkAllUnchanged()
        return scores
    }

    /// The mean over positions of the final-norm hidden states of each sequence, run on its own
    /// (no prompt, no cache): `(1/T) Σ_t h_t`, `hiddenSize` values per sequence. An empty sequence
    /// gives a zero vector. Identical sequences are run once. `names` (one per sequence) name them
    /// in messages; without them a sequence is named by its index.
    public func meanPooledHiddenStates(of sequences: [[Int32]], under model: any TransformerModel, names: [String]? = nil,
                                       progress: ScoringProgress? = nil) throws -> [[Double]] {
        let width = model.config.finalHiddenSize
        func name(_ index: Int) -> String { names.flatMap { $0.indices.contains(index) ? $0[index] : nil } ?? "sequence \(index)" }
        for (index, ids) in sequences.enumerated() {
            if let bad = ids.firstIndex(where: { $0 < 0 || Int($0) >= model.config.vocabSize }) {
                throw IRMError("\(name(index)): token id \(ids[bad]) at position \(bad) is outside the model's vocabulary (ids 0..<\(model.config.vocabSize))")
            }
            if ids.count > model.config.scoringContext {
                throw IRMError("\(name(index)): \(ids.count) tokens, more than the model's context of \(model.config.scoringContext) positions\(Self.contextNote(model.config))")
            }
        }
        var firstIndex: [[Int32]: Int] = [:]
        var unique: [[Int32]] = []
        for ids in sequences where !ids.isEmpty && firstIndex[ids] == nil {
            firstIndex[ids] = unique.count
            unique.append(ids)
        }
        var pooled = [[Double]](repeating: [], count: unique.count)
        var start = 0, tokensDone = 0
        while start < unique.count {
            var end = start, tokens = 0
            while end < unique.count && (end == start || tokens + unique[end].count <= options.tokensPerBatch) {
                tokens += unique[end].count
                end += 1
            }
            let segments = unique[start..<end].map { ForwardSegment(tokens: $0, outputRows: Array(0..<$0.count)) }
            let hidden = model.finalHiddenStates(try PackedBatch(segments: segments, config: model.config), profile: profile)
            if let bad = FiniteValues.firstNonFinite(hidden) {
                var row = bad / width, offset = start
                while offset < end, row >= unique[offset].count { row -= unique[offset].count; offset += 1 }
                let index = offset < end ? sequences.firstIndex(of: unique[offset]) ?? 0 : 0
                throw IRMError("\(model.source): \(name(index)): the final hidden state at position \(row) (token id \(offset < end ? unique[offset][row] : 0)) is \(Self.describe(Double(hidden[bad]))); \(Self.overflowNote)")
            }
            var row = 0
            for (offset, ids) in unique[start..<end].enumerated() {
                var mean = [Double](repeating: 0, count: width)
                for r in row..<(row + ids.count) {
                    for c in 0..<width { mean[c] += Double(hidden[r * width + c]) }
                }
                pooled[start + offset] = mean.map { $0 / Double(ids.count) }
                row += ids.count
            }
            tokensDone += tokens
            progress?(end, tokensDone)
            start = end
        }
        return sequences.map { ids in firstIndex[ids].map { pooled[$0] } ?? [Double](repeating: 0, count: width) }
    }

    // MARK: Checks

    private func requirePolicy(_ model: any TransformerModel, role: String) throws {
        guard model.kind == .policy else {
            throw IRMError("\(role) is a reward model (sequence classifier), not a policy; log-probs need a causal language model checkpoint")
        }
    }

    /// How sequence lengths choose rotary frequencies, for `ScoringPlan`: the scaling's key for
    /// one model; for two, the length itself wherever either depends on it.
    static func frequencyKey(_ configs: ModelConfig...) -> (Int) -> Int? {
        let scalings = configs.compactMap(\.ropeScaling)
        return { length in
            let keys = scalings.map { $0.frequencyKey(sequenceLength: length) }
            guard keys.contains(where: { $0 != nil }) else { return nil }
            return keys.count == 1 ? keys[0] : length
        }
    }

    /// Where the context comes from, when RoPE scaling extends it.
    static func contextNote(_ config: ModelConfig) -> String {
        guard let scaling = config.ropeScaling, scaling.extendedContext != nil else { return "" }
        return " (\(scaling.kind.rawValue) RoPE extends max_position_embeddings \(config.maxPositions) by its factor \(scaling.factor))"
    }

    /// Token ids inside the vocabulary, sequences inside the context, and something to score.
    private func validate(_ samples: [ScoringSample], for model: any TransformerModel) throws {
        let vocabulary = model.config.vocabSize, context = model.config.scoringContext
        for sample in samples {
            for (part, ids) in [("prompt", sample.promptIDs), ("response", sample.responseIDs)] {
                if let index = ids.firstIndex(where: { $0 < 0 || Int($0) >= vocabulary }) {
                    throw IRMError("\(sample.name): token id \(ids[index]) at \(part) position \(index) is outside the model's vocabulary (ids 0..<\(vocabulary))")
                }
            }
            if sample.tokenCount > context {
                throw IRMError("\(sample.name): prompt + response is \(sample.tokenCount) tokens (\(sample.promptIDs.count) + \(sample.responseIDs.count)), \(sample.tokenCount - context) more than the model's context of \(context) positions\(Self.contextNote(model.config))")
            }
            if model.kind == .rewardModel && sample.tokenCount == 0 {
                throw IRMError("\(sample.name): prompt and response are both empty; a reward model needs at least one token")
            }
        }
    }

    // MARK: Non-finite results

    /// What a non-finite result means: the weights were checked when the model was loaded
    /// (`CheckpointWeights.take`), so the float32 forward pass overflowed.
    static let overflowNote = "the forward pass overflowed float32 (weights too large?)"

    static func overflow(_ source: String, _ sample: ScoringSample, _ what: String, _ value: Double) -> IRMError {
        IRMError("\(source): \(sample.name): \(what) is \(describe(value)); \(overflowNote)")
    }

    /// `nan`, `inf` or `-inf` (a NaN's sign bit means nothing here).
    static func describe(_ value: Double) -> String { value.isNaN ? "nan" : "\(value)" }

    /// Throws for the first result of a batch (in sample, then position order) that is not finite;
    /// `checks` are tried in order, each as (what is checked, the checkpoint it comes from, the
    /// results per sample and response position). `nil`, a token with no context, is not a result.
    /// A scan over the batch's targets: next to the forward pass, its cost is nil.
    private static func requireFinite(_ rows: [[ScoringPlan.Target]], _ samples: [ScoringSample],
                                      _ checks: [(what: String, source: String, values: [[Double?]])]) throws {
        for check in checks {
            var worst: (target: ScoringPlan.Target, value: Double)? = nil
            for row in rows {
                for target in row {
                    guard let value = check.values[target.sample][target.position], !value.isFinite else { continue }
                    if let current = worst, (current.target.sample, current.target.position) <= (target.sample, target.position) { continue }
                    worst = (target, value)
                }
            }
            if let (target, value) = worst {
                throw overflow(check.source, samples[target.sample],
                               "\(check.what) at response position \(target.position) (token id \(target.token))", value)
            }
        }
    }

    // MARK: Running a batch

    /// Runs the prompt pass (recording caches) and the main pass of one batch; returns the final
    /// hidden states of `batch.rows`, in order.
    private func runBatch(_ batch: ScoringPlan.Batch, plan: ScoringPlan, model: any TransformerModel,
                          caches: inout PromptCaches) throws -> [Float] {
        let start = profile != nil ? ComputeProfile.now() : 0
        defer { if let profile { profile.totalSeconds += ComputeProfile.now() - start } }
        // Mapped weights are read in place: a checkpoint rewritten under us would change them.
        try MappedFile.checkAllUnchanged()
        var hidden: [Float] = []
        if !batch.promptSegments.isEmpty {
            let packed = try PackedBatch(segments: batch.promptSegments.map(\.segment), config: model.config)
            hidden += model.finalHiddenStates(packed, profile: profile)
            profile?.trunkTokens += packed.rowCount
            for (index, planned) in batch.promptSegments.enumerated() {
                if let group = planned.group, let cache = packed.recordedCaches[index] { caches.caches[group] = cache }
            }
        }
        if !batch.mainSegments.isEmpty {
            let segments = batch.mainSegments.map { planned -> ForwardSegment in
                var segment = planned.segment
                if let group = planned.group { segment.prefix = caches.caches[group] }
                return segment
            }
            let packed = try PackedBatch(segments: segments, config: model.config)
            hidden += model.finalHiddenStates(packed, profile: profile)
            profile?.trunkTokens += packed.rowCount
        }
        try MappedFile.checkAllUnchanged()
        return hidden
    }

    /// The vocabulary head fused with the log-softmax (`VocabularyHead`) over the rows of a batch:
    /// one model, or `[after, before]` for the KL. Rows are tiled by `options.headRows`.
    private func evaluateHead(_ models: [(hidden: [Float], model: any TransformerModel)], rows: [[ScoringPlan.Target]]) -> VocabularyHead.Results {
        let targets = rows.map { $0.map(\.token) }
        guard !rows.isEmpty else {
            return VocabularyHead.Results(logSumExp: models.map { _ in [] }, targetLogits: models.map { _ in [] }, kl: [], addedMass: [])
        }
        let tiling = Kernels.GEMMTiling(rows: options.headRows, columns: VocabularyHead.standardTiling.columns)
        func side(_ hidden: UnsafeBufferPointer<Float>, _ model: any TransformerModel) -> VocabularyHead.Side {
            VocabularyHead.Side(hidden: hidden.baseAddress!, weight: model.outputHead, softCap: model.config.finalLogitSoftCap.map { Float($0) })
        }
        return models[0].hidden.withUnsafeBufferPointer { first in
            guard models.count == 2 else {
                return VocabularyHead.evaluate([side(first, models[0].model)], rows: rows.count, targets: targets, tiling: tiling, profile: profile)
            }
            return models[1].hidden.withUnsafeBufferPointer { second in
                VocabularyHead.evaluate([side(first, models[0].model), side(second, models[1].model)], rows: rows.count, targets: targets,
                                        tiling: tiling, profile: profile)
            }
        }
    }
}

/// Prompt caches alive between batches, per model.
private struct PromptCaches {
    var caches: [Int: KeyValueCache] = [:]

    mutating func release(after batch: Int, plan: ScoringPlan) {
        for (group, last) in plan.lastBatchOfGroup where last == batch { caches[group] = nil }
    }
}

/// The order of work: which sequences run in which packed pass, and which hidden-state rows
/// feed which results. It depends on the samples and options only, not on the model.
struct ScoringPlan {
    enum TargetKind { case nextToken, lastToken }

    /// One result fed by a hidden-state row: the log-prob of `token` at response `position` of
    /// `sample` (next-token targets), or the sample's score (last-token targets).
    struct Target {
        let sample: Int
        let position: Int
        let token: Int32
    }

    struct PlannedSegment {
        var segment: ForwardSegment
        /// The prompt group whose cache this segment records (prompt pass) or continues (main pass).
        var group: Int?
    }

    struct Batch {
        var promptSegments: [PlannedSegment] = []
        var mainSegments: [PlannedSegment] = []
        /// Targets of each returned hidden-state row: prompt-pass rows first, then main-pass rows.
        var promptRows: [[Target]] = []
        var mainRows: [[Target]] = []
        var tokenCount = 0

        var rows: [[Target]] { promptRows + mainRows }
    }

    private(set) var batches: [Batch] = []
    private(set) var lastBatchOfGroup: [Int: Int] = [:]
    private var samplesFinished: [Int] = []
    private var tokensFinished: [Int] = []

    /// `frequencyKey` gives, for a sequence length, the key of its rotary frequencies
    /// (`RopeScaling.frequencyKey`): responses share their prompt's pass only with responses whose
    /// whole sequences rotate alike, since the prompt's keys are rotated with those frequencies.
    init(samples: [ScoringSample], options: ScoringOptions, target: TargetKind, frequencyKey: (Int) -> Int? = { _ in nil }) {
        // Group samples by prompt; a group of one, or an empty prompt, runs as one whole sequence.
        struct GroupKey: Hashable { let prompt: [Int32]; let frequencies: Int? }
        var groupOf: [GroupKey: Int] = [:]
        var groups: [[Int]] = []
        for (i, sample) in samples.enumerated() {
            let key = GroupKey(prompt: sample.promptIDs, frequencies: frequencyKey(sample.tokenCount))
            if options.sharePrompts, !sample.promptIDs.isEmpty, let g = groupOf[key] {
                groups[g].append(i)
            } else {
                groupOf[key] = groups.count
                groups.append([i])
            }
        }

        var current = Batch()
        var finishedInCurrent = 0
        var finishedSoFar = 0
        var tokensSoFar = 0
        func close() {
            guard current.tokenCount > 0 || !current.promptSegments.isEmpty || !current.mainSegments.isEmpty || finishedInCurrent > 0 else { return }
            batches.append(current)
            finishedSoFar += finishedInCurrent
            tokensSoFar += current.tokenCount
            samplesFinished.append(finishedSoFar)
            tokensFinished.append(tokensSoFar)
            current = Batch()
            finishedInCurrent = 0
        }
        func reserve(_ tokens: Int) {
            if current.tokenCount > 0 && current.tokenCount + tokens > options.tokensPerBatch { close() }
            current.tokenCount += tokens
        }

        for (g, members) in groups.enumerated() {
            if members.count == 1 {
                let s = members[0], sample = samples[s]
                let ids = sample.promptIDs + sample.responseIDs
                let p = sample.promptIDs.count
                var rows: [Int] = []
                var targets: [[Target]] = []
                switch target {
                case .nextToken:
                    for k in max(p, 1)..<max(ids.count, max(p, 1)) {
                        rows.append(k - 1)
                        targets.append([Target(sample: s, position: k - p, token: ids[k])])
                    }
                case .lastToken:
                    rows = [ids.count - 1]
                    targets = [[Target(sample: s, position: 0, token: 0)]]
                }
                if ids.isEmpty || rows.isEmpty {
                    finishedInCurrent += 1
                    continue
                }
                reserve(ids.count)
                current.mainSegments.append(PlannedSegment(segment: ForwardSegment(tokens: ids, outputRows: rows), group: nil))
                current.mainRows += targets
                finishedInCurrent += 1
                continue
            }
            // A shared prompt: its pass records the cache and returns its last row, which predicts
            // every response's first token (or scores an empty response).
            let prompt = samples[members[0]].promptIDs
            reserve(prompt.count)
            var promptTargets: [Target] = []
            for s in members {
                let response = samples[s].responseIDs
                switch target {
                case .nextToken: if let first = response.first { promptTargets.append(Target(sample: s, position: 0, token: first)) }
                case .lastToken: if response.isEmpty { promptTargets.append(Target(sample: s, position: 0, token: 0)) }
                }
            }
            // The prompt rotates as the sequences that continue it (they share one frequency key).
            let sequenceLength = frequencyKey(samples[members[0]].tokenCount) == nil ? nil : samples[members[0]].tokenCount
            current.promptSegments.append(PlannedSegment(
                segment: ForwardSegment(tokens: prompt, recordsCache: true, outputRows: [prompt.count - 1], sequenceLength: sequenceLength),
                group: g))
            current.promptRows.append(promptTargets)
            lastBatchOfGroup[g] = batches.count
            for s in members {
                let response = samples[s].responseIDs
                var rows: [Int] = []
                var targets: [[Target]] = []
                switch target {
                case .nextToken:
                    for i in 0..<max(response.count - 1, 0) {
                        rows.append(i)
                        targets.append([Target(sample: s, position: i + 1, token: response[i + 1])])
                    }
                case .lastToken:
                    if !response.isEmpty {
                        rows = [response.count - 1]
                        targets = [[Target(sample: s, position: 0, token: 0)]]
                    }
                }
                if rows.isEmpty {
                    finishedInCurrent += 1
                    continue
                }
                reserve(response.count)
                current.mainSegments.append(PlannedSegment(segment: ForwardSegment(tokens: response, outputRows: rows), group: g))
                current.mainRows += targets
                lastBatchOfGroup[g] = batches.count
                finishedInCurrent += 1
            }
        }
        close()
    }

    func samplesDone(after batch: Int) -> Int { samplesFinished[batch] }
    func tokensDone(after batch: Int) -> Int { tokensFinished[batch] }
}
