import Foundation

/// What one shard of a sharded run did (`irm analyze|drift --shard K/N`): the shard's blocks of
/// every score store entry the full run reads, computed where the store lacked them, and its
/// shard record written (docs/cluster.md). No fit, no report: the final run reads the merged store.
public struct ShardSummary: Sendable {
    public let shard: Shard
    public let samples: Range<Int>
    /// The shard's blocks, and how many of them some entry lacked at the start (0: the shard was
    /// already complete and nothing was loaded or scored).
    public let blocks: Int
    public let missingBlocks: Int
    public let entries: Int
    /// Tokens of the shard's samples (prompt and response), and seconds of the whole shard run.
    public let tokens: Int
    public let seconds: Double
    public let record: URL
    public let warnings: [String]

    public var wasComplete: Bool { missingBlocks == 0 }

    public var description: String {
        let what = samples.isEmpty
            ? "no samples (the data has fewer blocks than shards)"
            : "samples \(samples.lowerBound + 1)-\(samples.upperBound) in \(blocks) blocks, \(tokens) tokens"
        let done = wasComplete ? "already complete in the store; nothing scored" : "scored \(missingBlocks) of \(blocks) blocks in \(String(format: "%.1f", seconds)) s"
        return "shard \(shard): \(what); \(done); record \(record.path)"
    }
}

extension AnalysisPipeline {
    /// Scores shard `shard` of `irm analyze`'s work into the score store: both policies'
    /// log-probs and KL, the before-policy's final and pooled hidden states and, with a reward
    /// model, its scores, each for the shard's blocks that the store lacks. Then writes the shard
    /// record. A shard already complete loads no model.
    public static func scoreShard(_ options: AnalysisOptions, shard: Shard, progress: ProgressOutput? = nil) throws -> ShardSummary {
        let started = Date()
        try validate(options)
        guard let storeDirectory = options.storeDirectory else {
            throw IRMError("--shard scores into a score store, so --no-store cannot be used; give --store DIR (or leave the default .irm-store beside --out)")
        }
        progress?.stage("opening the checkpoints")
        let (before, after, resizedVocabulary, pairWarnings) = try openPair(options)
        progress?.stage("reading \(options.dataPath)")
        let data = try PreparedData(dataPath: options.dataPath, checkpoint: before, sequenceOptions: options.sequences,
                                    chatTemplatePath: options.chatTemplatePath, templateDate: options.templateDate)
        let beforeAdapter = try options.beforeAdapterPath.map { try LoRAAdapter.load(directory: $0) }
        let afterAdapter = try options.afterAdapterPath.map { try LoRAAdapter.load(directory: $0) }
        if let path = options.featuresPath { _ = try FeatureSpecification.load(path: path) }
        let store = try StageStore(directory: storeDirectory)
        let beforeDigests = try StageStore.digests(before, adapter: beforeAdapter)
        let afterDigests = try StageStore.digests(after, adapter: afterAdapter)
        let width = before.config.finalHiddenSize
        var entries = try store.comparisonEntries(data, afterDigests: afterDigests, beforeDigests: beforeDigests,
                                                  resizedVocabulary: resizedVocabulary != nil, hiddenWidth: width).all
        entries.append(try store.pooledHiddenEntry(data, digests: beforeDigests, width: width))
        var inputs = [ShardRecord.Input(role: "before", path: before.path, sha256: ScoreStore.Key.combinedSHA256(beforeDigests)),
                      ShardRecord.Input(role: "after", path: after.path, sha256: ScoreStore.Key.combinedSHA256(afterDigests))]
        var rewardModel: (checkpoint: Checkpoint, sequences: [ScoringSample])? = nil
        if case .rewardModel(let path) = options.reward {
            let opened = try openRewardModel(path, options: options, samples: data.samples)
            rewardModel = opened
            entries.append(try store.rewardEntry(opened.sequences, plan: data.plan, checkpointPath: path,
                                                 convention: options.sequences.convention.rawValue, labels: opened.checkpoint.config.labelCount))
            inputs.append(ShardRecord.Input(role: "reward-model", path: path, sha256: try SHA256.hex(ofFile: path)))
        }
        let work = ShardWork(data: data, shard: shard, entries: entries)
        if work.missingAtStart > 0 {
            let scorer = LogProbScorer(options: options.scoring)
            progress?.stage("scoring shard \(shard): \(work.samples.count) responses under both policies")
            let afterPolicy = try LoadedPolicy(checkpoint: after, adapter: afterAdapter)
            let beforePolicy = try LoadedPolicy(checkpoint: before, adapter: beforeAdapter)
            _ = try progress.tracked("scoring", total: work.samples.count) {
                try PolicyComparison.compareInBlocks(data, after: afterPolicy, before: beforePolicy, resizedVocabulary: resizedVocabulary != nil,
                                                     scorer: scorer, store: store, shard: shard, progress: $0)
            }
            _ = try progress.tracked("hidden states", total: work.samples.count) {
                try StageStore.pooledHiddenStates(data, under: beforePolicy, scorer: scorer, store: store, shard: shard, progress: $0)
            }
            if let rewardModel {
                let model = try ModelLoading.load(checkpoint: rewardModel.checkpoint)
                _ = try progress.tracked("reward model", total: work.samples.count) {
                    try StageStore.rewards(of: rewardModel.sequences, plan: data.plan, under: model, checkpointPath: rewardModel.checkpoint.path,
                                           store: store, shard: shard, convention: options.sequences.convention.rawValue, scorer: scorer, progress: $0)
                }
            }
        }
        return try work.finish(command: "analyze", storeDirectory: storeDirectory, inputs: inputs, threads: options.scoring.threads,
                               started: started, warnings: pairWarnings + data.warnings)
    }
}

/// The bookkeeping of one shard: its blocks, what the store lacked at the start, and the check
/// and record at the end.
struct ShardWork {
    let data: PreparedData
    let shard: Shard
    let entries: [ScoreStore.Entry]
    let blocks: [Range<Int>]
    let samples: Range<Int>
    let missingAtStart: Int

    init(data: PreparedData, shard: Shard, entries: [ScoreStore.Entry]) {
        self.data = data
        self.shard = shard
        self.entries = entries
        let blocks = StageStore.blocks(data.plan, shard)
        self.blocks = blocks
        samples = data.plan.samples(of: shard)
        missingAtStart = Set(entries.flatMap { $0.missingBlocks(among: blocks) }.map(\.lowerBound)).count
    }

    /// Checks that every entry now holds every block of the shard, then writes the shard record.
    func finish(command: String, storeDirectory: URL, inputs: [ShardRecord.Input], threads: Int?, started: Date,
                warnings: [String]) throws -> ShardSummary {
        for entry in entries {
            let missing = entry.missingBlocks(among: blocks)
            guard missing.isEmpty else {
                throw IRMError("shard \(shard): the score store entry \(entry.directory.path) still lacks \(missing.count) of the shard's blocks after scoring (the first \(missing[0].lowerBound)..<\(missing[0].upperBound)); is another process removing files in the store?")
            }
        }
        let tokens = data.sequences[samples].reduce(0) { $0 + $1.tokenCount }
        let seconds = Date().timeIntervalSince(started)
        let record = ShardRecord(command: command, shard: shard, entries: entries.map(\.directory.lastPathComponent), plan: data.plan,
                                 sequencesSHA256: data.sequencesSHA256, dataSHA256: data.dataSHA256, convention: data.convention,
                                 inputs: inputs, threads: threads ?? ProcessInfo.processInfo.activeProcessorCount, tokens: tokens, seconds: seconds)
        try record.write(in: storeDirectory)
        let storeWarnings = entries.flatMap(\.warnings).map { "score store: \($0)" }
        return ShardSummary(shard: shard, samples: samples, blocks: blocks.count, missingBlocks: missingAtStart, entries: entries.count,
                            tokens: tokens, seconds: seconds, record: record.url(in: storeDirectory), warnings: warnings + storeWarnings)
    }
}

extension DriftPipeline {
    /// Scores shard `shard` of `irm drift`'s work into the score store: the base's final and pooled
    /// hidden states and log-probs, each checkpoint's log-probs and KL against the base, and the
    /// reward model's (or each reward model's) scores, for the shard's blocks the store lacks. Then
    /// writes the shard record. A shard already complete loads no model.
    public static func scoreShard(_ options: DriftOptions, shard: Shard, progress: ProgressOutput? = nil) throws -> ShardSummary {
        let started = Date()
        let analysis = options.analysisOptions
        try AnalysisPipeline.validate(analysis)
        guard let storeDirectory = options.storeDirectory else {
            throw IRMError("--shard scores into a score store, so --no-store cannot be used; give --store DIR (or leave the default .irm-store beside --out)")
        }
        progress?.stage("opening the checkpoints")
        let (base, series, resized, openWarnings) = try openSeries(options)
        let rewardPaths: [String]
        if !options.rewardModelSeries.isEmpty {
            rewardPaths = try orderedRewardModels(options.rewardModelSeries, count: series.count).map(\.path)
        } else if case .rewardModel(let path) = analysis.reward {
            rewardPaths = [path]
        } else {
            rewardPaths = []
        }
        progress?.stage("reading \(options.dataPath)")
        let data = try PreparedData(dataPath: options.dataPath, checkpoint: base, sequenceOptions: options.sequences,
                                    chatTemplatePath: options.chatTemplatePath, templateDate: options.templateDate)
        if let path = options.featuresPath { _ = try FeatureSpecification.load(path: path) }
        let store = try StageStore(directory: storeDirectory)
        let baseDigests = try StageStore.digests(base, adapter: nil)
        let width = base.config.finalHiddenSize
        var entries: [ScoreStore.Entry] = []
        var inputs = [ShardRecord.Input(role: "base", path: base.path, sha256: ScoreStore.Key.combinedSHA256(baseDigests))]
        for checkpoint in series {
            let digests = try StageStore.digests(checkpoint, adapter: nil)
            entries += try store.comparisonEntries(data, afterDigests: digests, beforeDigests: baseDigests,
                                                   resizedVocabulary: resized[checkpoint.path] ?? false, hiddenWidth: width).all
            inputs.append(ShardRecord.Input(role: "checkpoint", path: checkpoint.path, sha256: ScoreStore.Key.combinedSHA256(digests)))
        }
        entries.append(try store.pooledHiddenEntry(data, digests: baseDigests, width: width))
        var rewardModels: [(checkpoint: Checkpoint, sequences: [ScoringSample])] = []
        for path in rewardPaths {
            let opened = try AnalysisPipeline.openRewardModel(path, options: analysis, samples: data.samples)
            rewardModels.append(opened)
            entries.append(try store.rewardEntry(opened.sequences, plan: data.plan, checkpointPath: path,
                                                 convention: options.sequences.convention.rawValue, labels: opened.checkpoint.config.labelCount))
            inputs.append(ShardRecord.Input(role: "reward-model", path: path, sha256: try SHA256.hex(ofFile: path)))
        }
        let work = ShardWork(data: data, shard: shard, entries: entries)
        if work.missingAtStart > 0 {
            let scorer = LogProbScorer(options: options.scoring)
            let basePolicy = try LoadedPolicy(checkpoint: base, adapter: nil)
            _ = try progress.tracked("hidden states", total: work.samples.count) {
                try StageStore.pooledHiddenStates(data, under: basePolicy, scorer: scorer, store: store, shard: shard, progress: $0)
            }
            for (index, checkpoint) in series.enumerated() {
                progress?.stage("shard \(shard): step \(index + 1) of \(series.count): \(checkpoint.path) against the base")
                let policy = try LoadedPolicy(checkpoint: checkpoint, adapter: nil)
                _ = try progress.tracked("scoring", total: work.samples.count) {
                    try PolicyComparison.compareInBlocks(data, after: policy, before: basePolicy, resizedVocabulary: resized[checkpoint.path] ?? false,
                                                         scorer: scorer, store: store, shard: shard, progress: $0)
                }
            }
            for rewardModel in rewardModels {
                let model = try ModelLoading.load(checkpoint: rewardModel.checkpoint)
                _ = try progress.tracked("reward model", total: work.samples.count) {
                    try StageStore.rewards(of: rewardModel.sequences, plan: data.plan, under: model, checkpointPath: rewardModel.checkpoint.path,
                                           store: store, shard: shard, convention: options.sequences.convention.rawValue, scorer: scorer, progress: $0)
                }
            }
        }
        return try work.finish(command: "drift", storeDirectory: storeDirectory, inputs: inputs, threads: options.scoring.threads,
                               started: started, warnings: openWarnings + data.warnings)
    }
}
