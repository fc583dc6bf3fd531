import Foundation

/// What `irm score` does, as a library call: the data's samples into sequences with the model's
/// tokenizer and template, scored under the model (log-probs of a policy, optionally against a
/// reference policy with the exact KL, or a reward model's scores), as the JSON lines of
/// `ScoreLines`.
///
/// Scoring runs in the blocks of the data's `ShardPlan`, as `analyze` does, and with a store
/// reads and commits them there (the same entries `analyze` uses: a policy's log-probs, the KL
/// against a reference, a reward model's scores). `scoreShard` scores one shard into the store.
public struct ScoreRun {
    public struct Options: Sendable {
        public var modelPath: String
        public var dataPath: String
        public var referencePath: String?
        public var sequences = SequenceOptions()
        public var chatTemplatePath: String?
        public var templateDate = Date()
        public var scoring = ScoringOptions()
        /// The score store (docs/score-store.md); nil: none.
        public var storeDirectory: URL?

        public init(modelPath: String, dataPath: String) {
            self.modelPath = modelPath
            self.dataPath = dataPath
        }
    }

    /// One JSON line per sample, in data order.
    public let lines: [String]
    /// Doubts that did not stop the run.
    public let warnings: [String]
    /// Seconds spent loading the models and scoring, and the tokens scored (for `--profile`).
    public let loadSeconds: Double
    public let scoringSeconds: Double
    public let tokenCount: Int

    /// The checkpoints and the data, checked: a reference only for a policy, and a policy.
    struct Inputs {
        let checkpoint: Checkpoint
        let reference: Checkpoint?
        let data: PreparedData

        init(_ options: Options, warn: (String) -> Void) throws {
            checkpoint = try Checkpoint.open(path: options.modelPath)
            reference = try options.referencePath.map { try Checkpoint.open(path: $0) }
            if reference != nil && checkpoint.kind != .policy {
                throw IRMError("\(options.modelPath): is a reward model; --reference compares two policies (causal language models)")
            }
            if let reference, reference.kind != .policy {
                throw IRMError("\(reference.path): is a reward model; --reference needs a policy (causal language model) checkpoint")
            }
            data = try PreparedData(dataPath: options.dataPath, checkpoint: checkpoint, sequenceOptions: options.sequences,
                                    chatTemplatePath: options.chatTemplatePath, templateDate: options.templateDate, requireTokenizer: false)
            data.warnings.forEach(warn)
        }

        /// Whether the reference's vocabulary was resized (nil without a reference); a tokenizer
        /// mismatch is an error.
        func resizedVocabulary(warn: (String) -> Void) throws -> String?? {
            guard let reference else { return nil }
            let (mismatch, resized) = try Tokenizer.difference(reference, checkpoint)
            if let mismatch {
                throw IRMError("\(checkpoint.path) and \(reference.path) have different tokenizers (\(mismatch)); the KL compares the probabilities the two give the same token ids")
            }
            if let resized {
                warn("a resized vocabulary: \(resized); the KL is over the shared rows, renormalised (added_row_mass gives the rest)")
            }
            return .some(resized)
        }
    }

    /// `warn` receives warnings as soon as they are known (before the long scoring step).
    public init(_ options: Options, profile: ComputeProfile? = nil, progress: ProgressOutput? = nil,
                warn: (String) -> Void = { _ in }) throws {
        options.scoring.applyThreadCount()
        var warnings: [String] = []
        let inputs = try Inputs(options, warn: { warnings.append($0); warn($0) })
        let checkpoint = inputs.checkpoint, data = inputs.data
        let samples = data.samples, scoring = data.sequences
        let scorer = LogProbScorer(options: options.scoring, profile: profile)
        let store = try options.storeDirectory.map { try StageStore(directory: $0) }
        let task = progress?.task("scoring", total: scoring.count)
        let update: ScoringProgress = { task?.update(done: $0, tokens: $1) }
        defer { task?.finish() }

        let loadStart = Date()
        let policy = try LoadedPolicy(checkpoint: checkpoint, adapter: nil)
        let resized = try inputs.resizedVocabulary(warn: { warnings.append($0); warn($0) })
        let before = try inputs.reference.map { try LoadedPolicy(checkpoint: $0, adapter: nil) }
        loadSeconds = Date().timeIntervalSince(loadStart)
        let started = Date()
        switch checkpoint.kind {
        case .rewardModel:
            let scores = try StageStore.rewards(of: scoring, plan: data.plan, under: policy.model, checkpointPath: checkpoint.path, store: store,
                                                convention: options.sequences.convention.rawValue, scorer: scorer, progress: update)
            lines = samples.indices.map { ScoreLines.rewardLine(samples[$0], scoring[$0], scores[$0]) }
        case .policy:
            if let before {
                let (results, storeWarnings) = try PolicyComparison.compareInBlocks(
                    data, after: policy, before: before, resizedVocabulary: (resized ?? nil) != nil, scorer: scorer, store: store, progress: update)
                warnings += storeWarnings
                storeWarnings.forEach(warn)
                lines = samples.indices.map { ScoreLines.logProbLine(samples[$0], scoring[$0], results[$0].after, reference: results[$0]) }
            } else {
                let (results, storeWarnings) = try StageStore.logProbs(data, under: policy, scorer: scorer, store: store, progress: update)
                warnings += storeWarnings
                storeWarnings.forEach(warn)
                lines = samples.indices.map { ScoreLines.logProbLine(samples[$0], scoring[$0], results[$0]) }
            }
        }
        self.warnings = warnings
        scoringSeconds = Date().timeIntervalSince(started)
        tokenCount = scoring.reduce(0) { $0 + $1.tokenCount }
    }

    /// Scores shard `shard` of `irm score`'s work into the score store (the model's log-probs, with
    /// a reference also its log-probs, the KL and its final hidden states; or a reward model's
    /// scores), for the shard's blocks the store lacks, and writes the shard record. A shard
    /// already complete loads no model.
    public static func scoreShard(_ options: Options, shard: Shard, progress: ProgressOutput? = nil,
                                  warn: (String) -> Void = { _ in }) throws -> ShardSummary {
        let started = Date()
        guard let storeDirectory = options.storeDirectory else {
            throw IRMError("--shard scores into a score store: give --store DIR")
        }
        let inputs = try Inputs(options, warn: warn)
        let checkpoint = inputs.checkpoint, data = inputs.data
        let store = try StageStore(directory: storeDirectory)
        let digests = try StageStore.digests(checkpoint, adapter: nil)
        let resized = try inputs.resizedVocabulary(warn: warn)
        var entries: [ScoreStore.Entry]
        var records = [ShardRecord.Input(role: "model", path: checkpoint.path, sha256: ScoreStore.Key.combinedSHA256(digests))]
        if checkpoint.kind == .rewardModel {
            entries = [try store.rewardEntry(data.sequences, plan: data.plan, checkpointPath: checkpoint.path,
                                             convention: options.sequences.convention.rawValue, labels: checkpoint.config.labelCount)]
        } else if let reference = inputs.reference {
            let referenceDigests = try StageStore.digests(reference, adapter: nil)
            entries = try store.comparisonEntries(data, afterDigests: digests, beforeDigests: referenceDigests,
                                                  resizedVocabulary: (resized ?? nil) != nil, hiddenWidth: reference.config.finalHiddenSize).all
            records.append(ShardRecord.Input(role: "reference", path: reference.path, sha256: ScoreStore.Key.combinedSHA256(referenceDigests)))
        } else {
            entries = [try store.logProbEntry(data, digests: digests)]
        }
        let work = ShardWork(data: data, shard: shard, entries: entries)
        if work.missingAtStart > 0 {
            let scorer = LogProbScorer(options: options.scoring)
            let policy = try LoadedPolicy(checkpoint: checkpoint, adapter: nil)
            _ = try progress.tracked("scoring", total: work.samples.count) { update in
                if checkpoint.kind == .rewardModel {
                    _ = try StageStore.rewards(of: data.sequences, plan: data.plan, under: policy.model, checkpointPath: checkpoint.path, store: store,
                                               shard: shard, convention: options.sequences.convention.rawValue, scorer: scorer, progress: update)
                } else if let reference = inputs.reference {
                    let before = try LoadedPolicy(checkpoint: reference, adapter: nil)
                    _ = try PolicyComparison.compareInBlocks(data, after: policy, before: before, resizedVocabulary: (resized ?? nil) != nil,
                                                             scorer: scorer, store: store, shard: shard, progress: update)
                } else {
                    _ = try StageStore.logProbs(data, under: policy, scorer: scorer, store: store, shard: shard, progress: update)
                }
            }
        }
        return try work.finish(command: "score", storeDirectory: storeDirectory, inputs: records, threads: options.scoring.threads,
                               started: started, warnings: data.warnings)
    }
}

extension ScoreRun {
    /// `irm score --estimate`: the data prepared as for scoring, the models loaded, and blocks
    /// spread over the data scored until about `calibrationTokens` tokens have run; the measured
    /// time is extrapolated to the whole data (`ScoringEstimate`). Nothing is written.
    public static func estimate(_ options: Options, calibrationTokens: Int = 1000, progress: ProgressOutput? = nil,
                                warn: (String) -> Void = { _ in }) throws -> ScoringEstimate {
        let inputs = try Inputs(options, warn: warn)
        let checkpoint = inputs.checkpoint, reference = inputs.reference, data = inputs.data
        let plan = data.plan
        let meanBlock = plan.blocks.isEmpty ? 1 : max(plan.totalCost / plan.blocks.count, 1)
        let calibration = ScoringEstimate.calibrationBlocks(plan, count: min(max((calibrationTokens + meanBlock - 1) / meanBlock, 1), max(plan.blocks.count, 1)))
        let scorer = LogProbScorer(options: options.scoring)
        let loadStart = Date()
        progress?.stage("loading \(options.modelPath)\(reference.map { " and \($0.path)" } ?? "")")
        let model = try ModelLoading.load(checkpoint: checkpoint)
        let before = try reference.map { try ModelLoading.load(checkpoint: $0) }
        let resized = try inputs.resizedVocabulary(warn: warn)
        let loadSeconds = Date().timeIntervalSince(loadStart)
        let task = progress?.task("calibration", total: calibration.reduce(0) { $0 + $1.count })
        defer { task?.finish() }
        var done = 0
        let started = Date()
        for block in calibration {
            let samples = Array(data.sequences[block])
            switch (checkpoint.kind, before) {
            case (.rewardModel, _):
                _ = try scorer.rewards(of: samples, under: model)
            case (.policy, let before?):
                // As the stages compare: the reference's hidden states, then both heads.
                let hidden = try scorer.responseHiddenStates(of: samples, under: before)
                _ = try scorer.compare(samples, after: model, before: before, resizedVocabulary: (resized ?? nil) != nil, beforeHidden: hidden)
            case (.policy, nil):
                _ = try scorer.logProbs(of: samples, under: model)
            }
            done += block.count
            task?.update(done: done, tokens: 0)
        }
        let seconds = Date().timeIntervalSince(started)
        var flops = ScoringEstimate.flops(checkpoint, data.sequences, plan: plan, outputWidth: model.outputWidth)
        if let reference, let before { flops += ScoringEstimate.flops(reference, data.sequences, plan: plan, outputWidth: before.outputWidth) }
        var bytes = 0
        for path in [options.modelPath] + (options.referencePath.map { [$0] } ?? []) {
            bytes += ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? Int) ?? 0
        }
        return ScoringEstimate(samples: data.sequences.count, plan: plan, calibration: calibration, calibrationSeconds: seconds,
                               loadSeconds: loadSeconds, threads: options.scoring.threads ?? ProcessInfo.processInfo.activeProcessorCount,
                               flops: flops, checkpointBytes: bytes)
    }
}
