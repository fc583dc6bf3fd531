import Foundation

/// The score store as the stages use it (docs/score-store.md): each policy's per-token log-probs
/// on a data set and convention, and a policy's per-token KL against a base, kept in the blocks of
/// the data's `ShardPlan` so that a later run (another fit, a drift series sharing the base, a run
/// killed and started again, the shards of a cluster run merged) reads them instead of scoring.
///
/// Scoring always runs block by block, with or without a store, so that a result does not
/// depend on whether it came from the store, on where a run was interrupted or on which shard
/// computed it: the samples of a block are scored together, in one call of the scorer.
public struct StageStore: Sendable {
    public let store: ScoreStore

    public init(directory: URL) throws {
        store = try ScoreStore(directory: directory)
    }

    /// The default store of an output directory: a `.irm-store` folder beside it.
    public static func defaultDirectory(forOutput out: URL) -> URL {
        out.standardizedFileURL.deletingLastPathComponent().appendingPathComponent(".irm-store", isDirectory: true)
    }

    /// SHA-256s of what a policy's scores depend on: the checkpoint file and its adapter's files.
    static func digests(_ checkpoint: Checkpoint, adapter: LoRAAdapter?) throws -> [String] {
        var digests = [try SHA256.hex(ofFile: checkpoint.path)]
        for file in adapter?.inputFiles ?? [] { digests.append(try SHA256.hex(ofFile: file)) }
        return digests
    }

    static func digests(_ policy: LoadedPolicy) throws -> [String] {
        try digests(policy.checkpoint, adapter: policy.adapter)
    }

    /// The entries of one comparison: the after- and before-policy's log-probs, the after-policy's
    /// KL against the before-policy, and the before-policy's final hidden states.
    struct ComparisonEntries {
        let after: ScoreStore.Entry, before: ScoreStore.Entry, kl: ScoreStore.Entry, hidden: ScoreStore.Entry
        var all: [ScoreStore.Entry] { [after, before, kl, hidden] }
    }

    func comparisonEntries(_ data: PreparedData, afterDigests: [String], beforeDigests: [String], resizedVocabulary: Bool,
                           hiddenWidth: Int) throws -> ComparisonEntries {
        func key(_ digests: [String], _ kind: ScoreStore.Kind) -> ScoreStore.Key {
            ScoreStore.Key(checkpointSHA256s: digests, dataSHA256: data.sequencesSHA256, convention: data.convention, kind: kind)
        }
        let blocks = data.plan.blocks
        return ComparisonEntries(
            after: try store.entry(key(afterDigests, .logprobs), blocks: blocks, schema: .logprobs),
            before: try store.entry(key(beforeDigests, .logprobs), blocks: blocks, schema: .logprobs),
            kl: try store.entry(key(afterDigests, .kl(base: ScoreStore.Key.combinedSHA256(beforeDigests))), blocks: blocks,
                                schema: .kl(addedRowMass: resizedVocabulary)),
            hidden: try store.entry(key(beforeDigests, .finalHidden), blocks: blocks, schema: .finalHidden(width: hiddenWidth)))
    }

    func logProbEntry(_ data: PreparedData, digests: [String]) throws -> ScoreStore.Entry {
        try store.entry(ScoreStore.Key(checkpointSHA256s: digests, dataSHA256: data.sequencesSHA256, convention: data.convention, kind: .logprobs),
                        blocks: data.plan.blocks, schema: .logprobs)
    }

    func pooledHiddenEntry(_ data: PreparedData, digests: [String], width: Int) throws -> ScoreStore.Entry {
        try store.entry(ScoreStore.Key(checkpointSHA256s: digests, dataSHA256: data.sequencesSHA256, convention: data.convention, kind: .pooledHidden),
                        blocks: data.plan.blocks, schema: .pooledHidden(width: width, names: ["prompt", "response"]))
    }

    func rewardEntry(_ sequences: [ScoringSample], plan: ShardPlan, checkpointPath: String, convention: String, labels: Int) throws -> ScoreStore.Entry {
        try store.entry(ScoreStore.Key(checkpointSHA256s: [try SHA256.hex(ofFile: checkpointPath)], dataSHA256: PreparedData.digest(sequences),
                                       convention: convention, kind: .reward),
                        blocks: plan.blocks, schema: .reward(labels: labels))
    }

    /// The blocks a stage works on: all of the plan's, or those of one shard.
    static func blocks(_ plan: ShardPlan, _ shard: Shard?) -> [Range<Int>] {
        guard let shard else { return plan.blocks }
        return Array(plan.blocks[plan.blockIndices(of: shard)])
    }
}

extension PolicyComparison {
    /// `scorer.compare` of `after` against `before` on every sample, block by block, reading the
    /// blocks the store holds and committing each block it computes before the next.
    ///
    /// The before-policy (the base) is never run inside the comparison: its final hidden states
    /// at the response positions come from the store's `final-hidden` entry, or are computed and
    /// committed, and its head is applied to them. A drift series thus runs the base's trunk once,
    /// and every result comes through the same arithmetic whether or not a store is kept.
    ///
    /// With `shard`, only that shard's blocks are computed (those the store lacks) and committed,
    /// and nothing is returned: the comparisons are read later from the store.
    static func compareInBlocks(_ data: PreparedData, after: LoadedPolicy, before: LoadedPolicy, resizedVocabulary: Bool,
                                scorer: LogProbScorer, store: StageStore?, shard: Shard? = nil, progress: ScoringProgress?) throws
        -> (comparisons: [ResponseComparison], warnings: [String]) {
        precondition(shard == nil || store != nil, "a shard is scored into a store")
        let n = data.sequences.count
        let blocks = StageStore.blocks(data.plan, shard)
        let entries = try store?.comparisonEntries(data, afterDigests: try StageStore.digests(after), beforeDigests: try StageStore.digests(before),
                                                   resizedVocabulary: resizedVocabulary, hiddenWidth: before.model.config.finalHiddenSize)
        let missing = entries.map { Set($0.after.missingBlocks(among: blocks) + $0.before.missingBlocks(among: blocks) + $0.kl.missingBlocks(among: blocks)) }
        let missingHidden = Set(entries?.hidden.missingBlocks(among: blocks) ?? [])
        /// The base's hidden states of one block, from the store or computed (and committed).
        func baseHidden(_ block: Range<Int>) throws -> [[Float]] {
            if let hidden = entries?.hidden, !missingHidden.contains(block) {
                let rows = try hidden.read(block: block).raggedFloat32("hidden")
                return (0..<block.count).map { Array(rows[$0]) }
            }
            let states = try scorer.responseHiddenStates(of: Array(data.sequences[block]), under: before.model)
            let width = before.model.config.finalHiddenSize
            try entries?.hidden.write(block: block, columns: ScoreStore.Columns(["hidden": .raggedFloat32(try .init(width: width, samples: states))]))
            return states
        }
        var comparisons: [ResponseComparison] = []
        if shard == nil { comparisons.reserveCapacity(n) }
        let first = blocks.first?.lowerBound ?? 0
        var tokensBefore = 0
        for block in blocks {
            let samples = Array(data.sequences[block])
            let blockTokens = samples.reduce(0) { $0 + $1.tokenCount }
            if let entries, let missing, !missing.contains(block) {
                if shard == nil {
                    let a = try entries.after.read(block: block).raggedFloat64("logprob")
                    let b = try entries.before.read(block: block).raggedFloat64("logprob")
                    let klColumns = try entries.kl.read(block: block)
                    let kl = try klColumns.raggedFloat64("kl")
                    let mass = resizedVocabulary ? try klColumns.raggedFloat64("added_row_mass") : nil
                    for i in 0..<block.count {
                        comparisons.append(ResponseComparison(after: ResponseLogProbs(tokens: a.list(i)), before: ResponseLogProbs(tokens: b.list(i)),
                                                              kl: kl.list(i), addedRowMass: mass?.list(i)))
                    }
                }
            } else {
                let offset = block.lowerBound - first, tokenOffset = tokensBefore
                let results = try scorer.compare(samples, after: after.model, before: before.model, resizedVocabulary: resizedVocabulary,
                                                 beforeHidden: try baseHidden(block),
                                                 progress: progress.map { update in { done, tokens in update(offset + done, tokenOffset + tokens) } })
                if let entries {
                    try entries.after.write(block: block, columns: ScoreStore.Columns(["logprob": .raggedFloat64(.init(lists: results.map(\.after.tokens)))]))
                    try entries.before.write(block: block, columns: ScoreStore.Columns(["logprob": .raggedFloat64(.init(lists: results.map(\.before.tokens)))]))
                    var kl: [String: ScoreStore.ColumnData] = ["kl": .raggedFloat64(.init(lists: results.map(\.kl)))]
                    if resizedVocabulary { kl["added_row_mass"] = .raggedFloat64(.init(lists: results.map { $0.addedRowMass ?? [] })) }
                    try entries.kl.write(block: block, columns: ScoreStore.Columns(kl))
                }
                if shard == nil { comparisons += results }
            }
            tokensBefore += blockTokens
            progress?(block.upperBound - first, tokensBefore)
        }
        let warnings = (entries?.all ?? []).flatMap(\.warnings).map { "score store: \($0)" }
        return (comparisons, warnings)
    }
}

extension StageStore {
    /// One policy's log-probs of every sample (`irm score` without a reference), block by block
    /// from and into `store` (the entry `analyze` keeps for the same policy and data). With
    /// `shard`, only that shard's missing blocks are computed and committed, and nothing is returned.
    static func logProbs(_ data: PreparedData, under policy: LoadedPolicy, scorer: LogProbScorer, store: StageStore?,
                         shard: Shard? = nil, progress: ScoringProgress?) throws -> (results: [ResponseLogProbs], warnings: [String]) {
        precondition(shard == nil || store != nil, "a shard is scored into a store")
        let blocks = Self.blocks(data.plan, shard)
        let entry = try store?.logProbEntry(data, digests: try digests(policy))
        let missing = Set(entry?.missingBlocks(among: blocks) ?? blocks)
        var results: [ResponseLogProbs] = []
        let first = blocks.first?.lowerBound ?? 0
        var tokens = 0
        for block in blocks {
            let samples = Array(data.sequences[block])
            if let entry, !missing.contains(block) {
                if shard == nil {
                    let lists = try entry.read(block: block).raggedFloat64("logprob")
                    for i in 0..<block.count { results.append(ResponseLogProbs(tokens: lists.list(i))) }
                }
            } else {
                let offset = block.lowerBound - first, tokenOffset = tokens
                let computed = try scorer.logProbs(of: samples, under: policy.model,
                                                   progress: progress.map { update in { done, t in update(offset + done, tokenOffset + t) } })
                try entry?.write(block: block, columns: ScoreStore.Columns(["logprob": .raggedFloat64(.init(lists: computed.map(\.tokens)))]))
                if shard == nil { results += computed }
            }
            tokens += samples.reduce(0) { $0 + $1.tokenCount }
            progress?(block.upperBound - first, tokens)
        }
        return (results, (entry?.warnings ?? []).map { "score store: \($0)" })
    }
}

extension StageStore {
    /// A reward model's scores of `sequences` (made with its own tokenizer), in the blocks of the
    /// policy data's `plan`, from and into `store` when there is one. With `shard`, only that
    /// shard's missing blocks are computed and committed, and nothing is returned.
    static func rewards(of sequences: [ScoringSample], plan: ShardPlan, under model: any TransformerModel, checkpointPath: String,
                        store: StageStore?, shard: Shard? = nil, convention: String, scorer: LogProbScorer,
                        progress: ScoringProgress?) throws -> [[Double]] {
        precondition(shard == nil || store != nil, "a shard is scored into a store")
        let labels = model.config.labelCount
        let blocks = Self.blocks(plan, shard)
        let entry = try store?.rewardEntry(sequences, plan: plan, checkpointPath: checkpointPath, convention: convention, labels: labels)
        let missing = Set(entry?.missingBlocks(among: blocks) ?? blocks)
        var scores: [[Double]] = []
        let first = blocks.first?.lowerBound ?? 0
        var tokens = 0
        for block in blocks {
            let samples = Array(sequences[block])
            if let entry, !missing.contains(block) {
                if shard == nil {
                    let vectors = try entry.read(block: block).vectorsFloat64("reward")
                    for i in 0..<block.count { scores.append(Array(vectors[i])) }
                }
            } else {
                let offset = block.lowerBound - first, tokenOffset = tokens
                let computed = try scorer.rewards(of: samples, under: model,
                                                  progress: progress.map { update in { done, t in update(offset + done, tokenOffset + t) } })
                try entry?.write(block: block, columns: ScoreStore.Columns(["reward": .vectorsFloat64(try .init(width: labels, vectors: computed))]))
                if shard == nil { scores += computed }
            }
            tokens += samples.reduce(0) { $0 + $1.tokenCount }
            progress?(block.upperBound - first, tokens)
        }
        // The scorer refuses non-finite scores it computes; this catches those read from the store.
        for (i, vector) in scores.enumerated() {
            if let bad = vector.first(where: { !$0.isFinite }) {
                throw IRMError("\(checkpointPath): \(sequences[i].name): the reward model's score is \(bad) (read from the score store); expected a finite number")
            }
        }
        return scores
    }
}

extension StageStore {
    /// The before-policy's mean-pooled final hidden states of each sample's prompt and of its
    /// response (`LogProbScorer.meanPooledHiddenStates`), block by block from and into `store`.
    /// With `shard`, only that shard's missing blocks are computed and committed, and nothing is
    /// returned.
    static func pooledHiddenStates(_ data: PreparedData, under policy: LoadedPolicy, scorer: LogProbScorer, store: StageStore?,
                                   shard: Shard? = nil, progress: ScoringProgress?) throws -> (prompts: [[Double]], responses: [[Double]]) {
        precondition(shard == nil || store != nil, "a shard is scored into a store")
        let width = policy.model.config.finalHiddenSize
        let blocks = Self.blocks(data.plan, shard)
        let entry = try store?.pooledHiddenEntry(data, digests: try digests(policy), width: width)
        let missing = Set(entry?.missingBlocks(among: blocks) ?? blocks)
        var prompts: [[Double]] = [], responses: [[Double]] = []
        let first = blocks.first?.lowerBound ?? 0
        var tokens = 0
        for block in blocks {
            let samples = data.sequences[block]
            if let entry, !missing.contains(block) {
                if shard == nil {
                    let columns = try entry.read(block: block)
                    let p = try columns.vectorsFloat64("prompt"), r = try columns.vectorsFloat64("response")
                    for i in 0..<block.count {
                        prompts.append(Array(p[i]))
                        responses.append(Array(r[i]))
                    }
                }
            } else {
                let p = try scorer.meanPooledHiddenStates(of: samples.map(\.promptIDs), under: policy.model, names: samples.map { "\($0.name), prompt" })
                let r = try scorer.meanPooledHiddenStates(of: samples.map(\.responseIDs), under: policy.model, names: samples.map { "\($0.name), response" })
                try entry?.write(block: block, columns: ScoreStore.Columns([
                    "prompt": .vectorsFloat64(try .init(width: width, vectors: p.map { $0.isEmpty ? [Double](repeating: 0, count: width) : $0 })),
                    "response": .vectorsFloat64(try .init(width: width, vectors: r.map { $0.isEmpty ? [Double](repeating: 0, count: width) : $0 })),
                ]))
                if shard == nil {
                    prompts += p
                    responses += r
                }
            }
            tokens += samples.reduce(0) { $0 + $1.tokenCount }
            progress?(block.upperBound - first, tokens)
        }
        return (prompts, responses)
    }
}
