import Foundation

/// The score store as the stages use it (docs/score-store.md): each policy's per-token log-probs
/// on a data set and convention, and a policy's per-token KL against a base, kept in blocks of
/// `blockSize` samples so that a later run (another fit, a drift series sharing the base, a run
/// killed and started again) reads them instead of scoring.
///
/// Scoring always runs block by block, with or without a store, so that a result does not
/// depend on whether it came from the store or on where a run was interrupted: the samples of a
/// block are scored together, and a prompt shared across a block boundary is run once per block.
public struct StageStore: Sendable {
    public let store: ScoreStore
    public static let blockSize = 256
    /// Samples per block of the base's final hidden states (`final-hidden`, one row of the model's
    /// width per response token): small, because a block is held in memory while it is used.
    public static let hiddenBlockSize = 16

    /// `0..<n` cut into consecutive blocks of `size` samples (the last may be shorter).
    static func blocks(of n: Int, size: Int) -> [Range<Int>] {
        stride(from: 0, to: n, by: size).map { $0..<min($0 + size, n) }
    }

    public init(directory: URL) throws {
        store = try ScoreStore(directory: directory)
    }

    /// The default store of an output directory: a `.irm-store` folder beside it.
    public static func defaultDirectory(forOutput out: URL) -> URL {
        out.standardizedFileURL.deletingLastPathComponent().appendingPathComponent(".irm-store", isDirectory: true)
    }

    /// SHA-256s of what a policy's scores depend on: the checkpoint file and its adapter's files.
    static func digests(_ policy: LoadedPolicy) throws -> [String] {
        var digests = [try SHA256.hex(ofFile: policy.checkpoint.path)]
        for file in policy.adapter?.inputFiles ?? [] { digests.append(try SHA256.hex(ofFile: file)) }
        return digests
    }
}

extension PolicyComparison {
    /// `scorer.compare` of `after` against `before` on every sample, block by block, reading the
    /// blocks the store holds and committing each block it computes before the next.
    ///
    /// The before-policy (the base) is never run inside the comparison: its final hidden states
    /// at the response positions come from the store's `final-hidden` entry, or are computed and
    /// committed in sub-blocks of `StageStore.hiddenBlockSize` samples (which bounds their memory),
    /// and its head is applied to them. A drift series thus runs the base's trunk once, and every
    /// result comes through the same arithmetic whether or not a store is kept.
    static func compareInBlocks(_ data: PreparedData, after: LoadedPolicy, before: LoadedPolicy, resizedVocabulary: Bool,
                                scorer: LogProbScorer, store: StageStore?, progress: ScoringProgress?) throws
        -> (comparisons: [ResponseComparison], warnings: [String]) {
        let n = data.sequences.count
        let blocks = StageStore.blocks(of: n, size: StageStore.blockSize)
        var entries: (after: ScoreStore.Entry, before: ScoreStore.Entry, kl: ScoreStore.Entry)? = nil
        var hiddenEntry: ScoreStore.Entry? = nil
        if let store {
            let afterDigests = try StageStore.digests(after), beforeDigests = try StageStore.digests(before)
            func key(_ digests: [String], _ kind: ScoreStore.Kind) -> ScoreStore.Key {
                ScoreStore.Key(checkpointSHA256s: digests, dataSHA256: data.sequencesSHA256, convention: data.convention, kind: kind)
            }
            entries = (
                try store.store.entry(key(afterDigests, .logprobs), sampleCount: n, blockSize: StageStore.blockSize, schema: .logprobs),
                try store.store.entry(key(beforeDigests, .logprobs), sampleCount: n, blockSize: StageStore.blockSize, schema: .logprobs),
                try store.store.entry(key(afterDigests, .kl(base: ScoreStore.Key.combinedSHA256(beforeDigests))), sampleCount: n,
                                      blockSize: StageStore.blockSize, schema: .kl(addedRowMass: resizedVocabulary)))
            hiddenEntry = try store.store.entry(key(beforeDigests, .finalHidden), sampleCount: n, blockSize: StageStore.hiddenBlockSize,
                                                schema: .finalHidden(width: before.model.config.finalHiddenSize))
        }
        let missing = entries.map { Set($0.after.missingBlocks() + $0.before.missingBlocks() + $0.kl.missingBlocks()) }
        let missingHidden = Set(hiddenEntry?.missingBlocks() ?? [])
        /// The base's hidden states of one sub-block, from the store or computed (and committed).
        func baseHidden(_ sub: Range<Int>) throws -> [[Float]] {
            if let hiddenEntry, !missingHidden.contains(sub) {
                let rows = try hiddenEntry.read(block: sub).raggedFloat32("hidden")
                return (0..<sub.count).map { Array(rows[$0]) }
            }
            let states = try scorer.responseHiddenStates(of: Array(data.sequences[sub]), under: before.model)
            let width = before.model.config.finalHiddenSize
            try hiddenEntry?.write(block: sub, columns: ScoreStore.Columns(["hidden": .raggedFloat32(try .init(width: width, samples: states))]))
            return states
        }
        var comparisons: [ResponseComparison] = []
        comparisons.reserveCapacity(n)
        var tokensBefore = 0
        for block in blocks {
            let samples = Array(data.sequences[block])
            let blockTokens = samples.reduce(0) { $0 + $1.tokenCount }
            if let entries, let missing, !missing.contains(block) {
                let a = try entries.after.read(block: block).raggedFloat64("logprob")
                let b = try entries.before.read(block: block).raggedFloat64("logprob")
                let klColumns = try entries.kl.read(block: block)
                let kl = try klColumns.raggedFloat64("kl")
                let mass = resizedVocabulary ? try klColumns.raggedFloat64("added_row_mass") : nil
                for i in 0..<block.count {
                    comparisons.append(ResponseComparison(after: ResponseLogProbs(tokens: a.list(i)), before: ResponseLogProbs(tokens: b.list(i)),
                                                          kl: kl.list(i), addedRowMass: mass?.list(i)))
                }
            } else {
                var results: [ResponseComparison] = []
                var subTokens = tokensBefore
                // Sub-blocks line up with the final-hidden entry's blocks: blockSize is a multiple of hiddenBlockSize.
                for start in stride(from: block.lowerBound, to: block.upperBound, by: StageStore.hiddenBlockSize) {
                    let sub = start..<min(start + StageStore.hiddenBlockSize, block.upperBound)
                    let offset = sub.lowerBound, tokenOffset = subTokens
                    results += try scorer.compare(Array(data.sequences[sub]), after: after.model, before: before.model,
                                                  resizedVocabulary: resizedVocabulary, beforeHidden: try baseHidden(sub),
                                                  progress: progress.map { update in { done, tokens in update(offset + done, tokenOffset + tokens) } })
                    subTokens += data.sequences[sub].reduce(0) { $0 + $1.tokenCount }
                }
                if let entries {
                    try entries.after.write(block: block, columns: ScoreStore.Columns(["logprob": .raggedFloat64(.init(lists: results.map(\.after.tokens)))]))
                    try entries.before.write(block: block, columns: ScoreStore.Columns(["logprob": .raggedFloat64(.init(lists: results.map(\.before.tokens)))]))
                    var kl: [String: ScoreStore.ColumnData] = ["kl": .raggedFloat64(.init(lists: results.map(\.kl)))]
                    if resizedVocabulary { kl["added_row_mass"] = .raggedFloat64(.init(lists: results.map { $0.addedRowMass ?? [] })) }
                    try entries.kl.write(block: block, columns: ScoreStore.Columns(kl))
                }
                comparisons += results
            }
            tokensBefore += blockTokens
            progress?(block.upperBound, tokensBefore)
        }
        let warnings = entries.map { ($0.after.warnings + $0.before.warnings + $0.kl.warnings).map { "score store: \($0)" } } ?? []
        return (comparisons, warnings + (hiddenEntry?.warnings ?? []).map { "score store: \($0)" })
    }
}

extension StageStore {
    /// A reward model's scores of `sequences` (made with its own tokenizer), block by block from
    /// and into `store` when there is one.
    static func rewards(of sequences: [ScoringSample], under model: any TransformerModel, checkpointPath: String, store: StageStore?,
                        convention: String, scorer: LogProbScorer, progress: ScoringProgress?) throws -> [[Double]] {
        let n = sequences.count, labels = model.config.labelCount
        let blocks = blocks(of: n, size: blockSize)
        let entry = try store.map { store in
            try store.store.entry(ScoreStore.Key(checkpointSHA256s: [try SHA256.hex(ofFile: checkpointPath)], dataSHA256: PreparedData.digest(sequences),
                                                 convention: convention, kind: .reward),
                                  sampleCount: n, blockSize: blockSize, schema: .reward(labels: labels))
        }
        let missing = Set(entry?.missingBlocks() ?? blocks)
        var scores: [[Double]] = []
        var tokens = 0
        for block in blocks {
            let samples = Array(sequences[block])
            if let entry, !missing.contains(block) {
                let vectors = try entry.read(block: block).vectorsFloat64("reward")
                for i in 0..<block.count { scores.append(Array(vectors[i])) }
            } else {
                let offset = block.lowerBound, tokenOffset = tokens
                let computed = try scorer.rewards(of: samples, under: model,
                                                  progress: progress.map { update in { done, t in update(offset + done, tokenOffset + t) } })
                try entry?.write(block: block, columns: ScoreStore.Columns(["reward": .vectorsFloat64(try .init(width: labels, vectors: computed))]))
                scores += computed
            }
            tokens += samples.reduce(0) { $0 + $1.tokenCount }
            progress?(block.upperBound, tokens)
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
    static func pooledHiddenStates(_ data: PreparedData, under policy: LoadedPolicy, scorer: LogProbScorer, store: StageStore?,
                                   progress: ScoringProgress?) throws -> (prompts: [[Double]], responses: [[Double]]) {
        let n = data.sequences.count, width = policy.model.config.finalHiddenSize
        let blocks = blocks(of: n, size: blockSize)
        let entry = try store.map { store in
            try store.store.entry(ScoreStore.Key(checkpointSHA256s: try digests(policy), dataSHA256: data.sequencesSHA256,
                                                 convention: data.convention, kind: .pooledHidden),
                                  sampleCount: n, blockSize: blockSize, schema: .pooledHidden(width: width, names: ["prompt", "response"]))
        }
        let missing = Set(entry?.missingBlocks() ?? blocks)
        var prompts: [[Double]] = [], responses: [[Double]] = []
        var tokens = 0
        for block in blocks {
            let samples = data.sequences[block]
            if let entry, !missing.contains(block) {
                let columns = try entry.read(block: block)
                let p = try columns.vectorsFloat64("prompt"), r = try columns.vectorsFloat64("response")
                for i in 0..<block.count {
                    prompts.append(Array(p[i]))
                    responses.append(Array(r[i]))
                }
            } else {
                let p = try scorer.meanPooledHiddenStates(of: samples.map(\.promptIDs), under: policy.model, names: samples.map { "\($0.name), prompt" })
                let r = try scorer.meanPooledHiddenStates(of: samples.map(\.responseIDs), under: policy.model, names: samples.map { "\($0.name), response" })
                try entry?.write(block: block, columns: ScoreStore.Columns([
                    "prompt": .vectorsFloat64(try .init(width: width, vectors: p.map { $0.isEmpty ? [Double](repeating: 0, count: width) : $0 })),
                    "response": .vectorsFloat64(try .init(width: width, vectors: r.map { $0.isEmpty ? [Double](repeating: 0, count: width) : $0 })),
                ]))
                prompts += p
                responses += r
            }
            tokens += samples.reduce(0) { $0 + $1.tokenCount }
            progress?(block.upperBound, tokens)
        }
        return (prompts, responses)
    }
}
