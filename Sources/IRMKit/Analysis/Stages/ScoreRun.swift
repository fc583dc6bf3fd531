import Foundation

/// What `irm score` does, as a library call: the data's samples into sequences with the model's
/// tokenizer and template, scored under the model (log-probs of a policy, optionally against a
/// reference policy with the exact KL, or a reward model's scores), as the JSON lines of
/// `ScoreLines`.
public struct ScoreRun {
    public struct Options: Sendable {
        public var modelPath: String
        public var dataPath: String
        public var referencePath: String?
        public var sequences = SequenceOptions()
        public var chatTemplatePath: String?
        public var templateDate = Date()
        public var scoring = ScoringOptions()

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

    /// `warn` receives warnings as soon as they are known (before the long scoring step).
    public init(_ options: Options, profile: ComputeProfile? = nil, progress: ProgressOutput? = nil,
                warn: (String) -> Void = { _ in }) throws {
        let checkpoint = try Checkpoint.open(path: options.modelPath)
        let reference = try options.referencePath.map { try Checkpoint.open(path: $0) }
        if reference != nil && checkpoint.kind != .policy {
            throw IRMError("\(options.modelPath): is a reward model; --reference compares two policies (causal language models)")
        }
        if let reference, reference.kind != .policy {
            throw IRMError("\(reference.path): is a reward model; --reference needs a policy (causal language model) checkpoint")
        }
        let data = try PreparedData(dataPath: options.dataPath, checkpoint: checkpoint, sequenceOptions: options.sequences,
                                    chatTemplatePath: options.chatTemplatePath, templateDate: options.templateDate, requireTokenizer: false)
        var warnings = data.warnings
        data.warnings.forEach(warn)
        let samples = data.samples, scoring = data.sequences
        let scorer = LogProbScorer(options: options.scoring, profile: profile)
        let task = progress?.task("scoring", total: scoring.count)
        let update: ScoringProgress = { task?.update(done: $0, tokens: $1) }
        defer { task?.finish() }

        let loadStart = Date()
        let model = try ModelLoading.load(checkpoint: checkpoint)
        var loadSeconds = Date().timeIntervalSince(loadStart)
        var started = Date()
        switch checkpoint.kind {
        case .rewardModel:
            let scores = try scorer.rewards(of: scoring, under: model, progress: update)
            lines = samples.indices.map { ScoreLines.rewardLine(samples[$0], scoring[$0], scores[$0]) }
        case .policy:
            if let reference {
                let before = try ModelLoading.load(checkpoint: reference)
                loadSeconds += Date().timeIntervalSince(started)
                started = Date()
                let (mismatch, resized) = try Tokenizer.difference(reference, checkpoint)
                if let mismatch {
                    throw IRMError("\(options.modelPath) and \(reference.path) have different tokenizers (\(mismatch)); the KL compares the probabilities the two give the same token ids")
                }
                if let resized {
                    let warning = "a resized vocabulary: \(resized); the KL is over the shared rows, renormalised (added_row_mass gives the rest)"
                    warnings.append(warning)
                    warn(warning)
                }
                let results = try scorer.compare(scoring, after: model, before: before, resizedVocabulary: resized != nil, progress: update)
                lines = samples.indices.map { ScoreLines.logProbLine(samples[$0], scoring[$0], results[$0].after, reference: results[$0]) }
            } else {
                let results = try scorer.logProbs(of: scoring, under: model, progress: update)
                lines = samples.indices.map { ScoreLines.logProbLine(samples[$0], scoring[$0], results[$0]) }
            }
        }
        self.warnings = warnings
        self.loadSeconds = loadSeconds
        scoringSeconds = Date().timeIntervalSince(started)
        tokenCount = scoring.reduce(0) { $0 + $1.tokenCount }
    }
}

extension ScoreRun {
    /// `irm score --estimate`: the data prepared as for scoring, the models loaded, and blocks
    /// spread over the data scored until about `calibrationTokens` tokens have run; the measured
    /// time is extrapolated to the whole data (`ScoringEstimate`). Nothing is written.
    public static func estimate(_ options: Options, calibrationTokens: Int = 1000, progress: ProgressOutput? = nil,
                                warn: (String) -> Void = { _ in }) throws -> ScoringEstimate {
        let checkpoint = try Checkpoint.open(path: options.modelPath)
        let reference = try options.referencePath.map { try Checkpoint.open(path: $0) }
        if reference != nil && checkpoint.kind != .policy {
            throw IRMError("\(options.modelPath): is a reward model; --reference compares two policies (causal language models)")
        }
        if let reference, reference.kind != .policy {
            throw IRMError("\(reference.path): is a reward model; --reference needs a policy (causal language model) checkpoint")
        }
        let data = try PreparedData(dataPath: options.dataPath, checkpoint: checkpoint, sequenceOptions: options.sequences,
                                    chatTemplatePath: options.chatTemplatePath, templateDate: options.templateDate, requireTokenizer: false)
        data.warnings.forEach(warn)
        let plan = data.plan
        let meanBlock = plan.blocks.isEmpty ? 1 : max(plan.totalCost / plan.blocks.count, 1)
        let calibration = ScoringEstimate.calibrationBlocks(plan, count: min(max((calibrationTokens + meanBlock - 1) / meanBlock, 1), max(plan.blocks.count, 1)))
        let scorer = LogProbScorer(options: options.scoring)
        let loadStart = Date()
        progress?.stage("loading \(options.modelPath)\(reference.map { " and \($0.path)" } ?? "")")
        let model = try ModelLoading.load(checkpoint: checkpoint)
        let before = try reference.map { try ModelLoading.load(checkpoint: $0) }
        let resized = try reference.map { try Tokenizer.difference($0, checkpoint) }
        if let mismatch = resized?.0 {
            throw IRMError("\(options.modelPath) and \(options.referencePath ?? "") have different tokenizers (\(mismatch)); the KL compares the probabilities the two give the same token ids")
        }
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
                _ = try scorer.compare(samples, after: model, before: before, resizedVocabulary: resized?.1 != nil, beforeHidden: hidden)
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
