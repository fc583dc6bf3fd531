import Foundation

/// What `irm drift` should do: a base policy and a series of checkpoints tuned from it, scored on
/// one data set.
public struct DriftOptions: Sendable {
    public var basePath: String
    /// The checkpoints of the series, in any order: they are ordered by the training step their
    /// provenance records, else by file name.
    public var checkpointPaths: [String]
    public var dataPath: String
    public var reward: AnalysisOptions.RewardChoice = .automatic
    public var goldField = "gold"
    /// β of the implicit reward; nil: each checkpoint's recorded β, else 1.
    public var beta: Double?
    public var aggregation: ImplicitReward.Aggregation = .sum
    public var featuresPath: String?
    public var bootstrapReplicates = 1000
    public var seed: UInt64 = 0
    public var allowTokenizerMismatch = false
    public var scoring = ScoringOptions()
    public var sequences = SequenceOptions()
    public var chatTemplatePath: String?
    public var templateDate = Date()
    /// The score store directory (docs/score-store.md); nil: scores are computed and not kept.
    public var storeDirectory: URL?
    /// A reward-model series (iterated RLHF): one reward model per checkpoint, ordered as the
    /// checkpoints are (by recorded training step, else by file name); step k is measured against
    /// the k-th. Empty: `reward` serves every step.
    public var rewardModelSeries: [String] = []

    public init(basePath: String, checkpointPaths: [String], dataPath: String) {
        self.basePath = basePath
        self.checkpointPaths = checkpointPaths
        self.dataPath = dataPath
    }

    /// The analysis options the shared stages read (training reward, fits).
    var analysisOptions: AnalysisOptions {
        var o = AnalysisOptions(beforePath: basePath, afterPath: checkpointPaths.last ?? basePath, dataPath: dataPath)
        o.reward = reward
        o.goldField = goldField
        o.beta = beta
        o.aggregation = aggregation
        o.featuresPath = featuresPath
        o.bootstrapReplicates = bootstrapReplicates
        o.seed = seed
        o.allowTokenizerMismatch = allowTokenizerMismatch
        o.scoring = scoring
        o.sequences = sequences
        o.chatTemplatePath = chatTemplatePath
        o.templateDate = templateDate
        o.storeDirectory = storeDirectory
        return o
    }
}

/// A feature whose weight in the implicit reward kept rising over the series while the proxy
/// reward pays for it and gold does not: a channel the tuning exploited.
public struct SpuriousFeature: Sendable {
    public let feature: String
    /// Standardised ridge coefficient of the implicit reward at each step.
    public let implicitTrajectory: [Double]
    /// Spearman ρ of that trajectory against the step order.
    public let trend: Double
    public let proxyCoefficient: Double
    public let goldCoefficient: Double?
}

/// How the training reward model itself drifted over a series of versions (iterated RLHF).
public struct RewardModelSeries: Sendable {
    /// A feature a version started or stopped rewarding (its standardised ridge coefficient
    /// crossed `DriftPipeline.rewardedThreshold` from the version before).
    public struct Change: Sendable {
        public let version: Int
        public let feature: String
        public let started: Bool
        public let before: Double
        public let after: Double
    }

    public let models: [DriftResult.Checkpoint]
    /// Pearson and Spearman correlation of each version's scores with the version before's
    /// (index k − 1 compares versions k − 1 and k).
    public let consecutive: [Divergence.CorrelationSet]
    /// Standardised ridge coefficients of each version's fit, per feature (one value per version).
    public let weights: [String: [Double]]
    public let changes: [Change]
}

/// The drift audit of a checkpoint series (docs/drift.md).
public struct DriftResult: Sendable {
    public struct Checkpoint: Sendable {
        public let label: String
        public let path: String
        public let trainingStep: Int?
        public let sha256: String
    }

    /// One checkpoint measured against the base.
    public struct Step: Sendable {
        public let checkpoint: Checkpoint
        public let beta: Double
        /// The implicit reward of each sample (the chosen aggregation).
        public let implicitRewards: [Double]
        /// β·log-ratio summed over the response (for the trainer's metrics and the trajectory).
        public let logRatios: [Double]
        /// Mean chosen/rejected implicit reward, margin and pair accuracy, with bootstrap CIs.
        public let trainerRewards: TrainerRewardMetrics?
        /// How often the implicit reward orders a pair as gold does.
        public let goldAgreement: StatisticOutcome<PairAgreement>?
        /// KL(step ‖ base): mean per scored response token, and mean per response.
        public let klPerToken: Double
        public let klPerResponse: Double
        /// Correlations with the training reward and gold, pair accuracies, the coefficient cosine
        /// and the coefficient-gap regression against the training reward.
        public let divergence: Divergence?
        public let implicitFit: AnalysisResult.TargetAnalysis
        /// OLS of this step's implicit reward on the series' parsimonious features (the last
        /// step's: one representative per collinear set), so every step's trajectory point is a
        /// coefficient of the same model; nil when undefined.
        public var headlineFit: LeastSquaresFit? = nil
    }

    public let toolVersion: String
    public let options: [(key: String, value: String)]
    public let inputs: [AnalysisResult.InputFile]
    public let base: Checkpoint
    public let steps: [Step]
    public let sampleCount: Int
    public let pairCount: Int
    public let rewardSource: AnalysisResult.RewardSource
    public let features: FeatureTable
    public let rewardFit: AnalysisResult.TargetAnalysis?
    public let goldFit: AnalysisResult.TargetAnalysis?
    /// Proxy and gold reward per step (SNIS over the data), monotonicity and over-optimisation.
    public let trajectory: RewardTrajectory?
    public let spuriousFeatures: [SpuriousFeature]
    /// Features the implicit reward weights at the last step (standardised ridge coefficient ≥
    /// `DriftPipeline.rewardedThreshold`) that the proxy rewards and gold does not, rising or not.
    public let proxyOnlyFeatures: [SpuriousFeature]
    public let layers: LayerDivergence?
    /// With a reward-model series.
    public let rewardModelSeries: RewardModelSeries?
    public let warnings: [String]
}

/// `irm drift`: the base is scored once; each checkpoint against it, with the stages `analyze` uses.
public enum DriftPipeline {
    /// Standardised ridge coefficients below this (in standard deviations of the target per
    /// standard deviation of the feature) count as "not rewarded" for the spurious-channel test.
    public static let rewardedThreshold = 0.05
    /// The Spearman trend over steps above which a coefficient "keeps rising".
    public static let risingTrend = 0.8

    public static func run(_ options: DriftOptions, progress: ProgressOutput? = nil) throws -> DriftResult {
        func stage(_ text: String) { progress?.stage(text) }
        let analysis = options.analysisOptions
        analysis.scoring.applyThreadCount()
        try AnalysisPipeline.validate(analysis)
        var warnings: [String] = []
        var inputs: [AnalysisResult.InputFile] = []

        stage("opening the checkpoints")
        let (base, series, resized, openWarnings) = try openSeries(options)
        warnings += openWarnings

        stage("reading \(options.dataPath)")
        let data = try PreparedData(dataPath: options.dataPath, checkpoint: base, sequenceOptions: options.sequences,
                                    chatTemplatePath: options.chatTemplatePath, templateDate: options.templateDate)
        warnings += data.warnings
        inputs.append(try AnalysisPipeline.inputFile("base", base.path, summary: AnalysisPipeline.checkpointSummary(base)))
        for checkpoint in series {
            inputs.append(try AnalysisPipeline.inputFile("checkpoint", checkpoint.path, summary: AnalysisPipeline.checkpointSummary(checkpoint)))
        }
        inputs.append(AnalysisResult.InputFile(role: "data", path: options.dataPath, sha256: data.dataSHA256,
                                               summary: "\(data.samples.count) samples, \(data.pairs.count) preference pairs"))
        let scorer = LogProbScorer(options: options.scoring)
        // Without a store, a temporary one for this run, removed at the end: the base's hidden
        // states must outlive one checkpoint's comparison for its trunk to run only once.
        let temporaryStore = options.storeDirectory == nil
            ? FileManager.default.temporaryDirectory.appendingPathComponent("irm-drift-\(UUID().uuidString)", isDirectory: true) : nil
        defer { if let temporaryStore { try? FileManager.default.removeItem(at: temporaryStore) } }
        let store = try (options.storeDirectory ?? temporaryStore).map { try StageStore(directory: $0) }
        let basePolicy = try LoadedPolicy(checkpoint: base, adapter: nil)

        stage("features")
        let specification: FeatureSpecification
        if let path = options.featuresPath {
            specification = try FeatureSpecification.load(path: path)
            inputs.append(try AnalysisPipeline.inputFile("features", path, summary: "\(specification.regexFeatures.count) regex features"))
        } else {
            specification = .allBuiltIns
        }
        let featureStage = try FeatureStage(data, before: basePolicy, specification: specification, scorer: scorer, store: store, progress: progress)
        let features = featureStage.table
        try AnalysisPipeline.checkSampleCount(features, sampleCount: data.samples.count)
        for skipped in features.skipped { warnings.append("feature \(skipped.name) left out: \(skipped.reason)") }

        stage("training reward")
        var seriesScores: [[Double]] = [], seriesFits: [AnalysisResult.TargetAnalysis] = [], seriesModels: [DriftResult.Checkpoint] = []
        if !options.rewardModelSeries.isEmpty {
            let models = try orderedRewardModels(options.rewardModelSeries, count: series.count)
            for model in models {
                var single = analysis
                single.reward = .rewardModel(path: model.path)
                let (_, scores, input) = try AnalysisPipeline.trainingReward(single, samples: data.samples, plan: data.plan, featureInputs: featureStage.inputs,
                                                                             store: store, progress: progress)
                guard let scores else { continue }
                if let input { inputs.append(input) }
                seriesScores.append(scores)
                seriesModels.append(describe(model))
                seriesFits.append(try AnalysisPipeline.analyseTarget("reward_model", "reward model \(label(model))", scores, features: features,
                                                                     options: analysis, groupLabels: nil))
            }
        }
        let (rewardSource, rewardScores, rewardInput) = seriesScores.isEmpty
            ? try AnalysisPipeline.trainingReward(analysis, samples: data.samples, plan: data.plan, featureInputs: featureStage.inputs, store: store, progress: progress)
            : (AnalysisResult.RewardSource.rewardModel(path: seriesModels.last?.path ?? ""), seriesScores.last, nil)
        if let rewardInput { inputs.append(rewardInput) }
        let gold = try AnalysisPipeline.numericColumn(options.goldField, data.samples, source: options.dataPath, required: false)
        let rewardFit = try seriesFits.last ?? rewardScores.map {
            try AnalysisPipeline.analyseTarget("reward_model", "training reward (\(rewardSource.description))", $0, features: features,
                                               options: analysis, groupLabels: nil)
        }
        let goldFit = try gold.map {
            try AnalysisPipeline.analyseTarget("gold", "gold score (field \"\(options.goldField)\")", $0, features: features,
                                               options: analysis, groupLabels: nil)
        }

        var steps: [DriftResult.Step] = []
        for (index, checkpoint) in series.enumerated() {
            let label = label(checkpoint)
            stage("step \(index + 1) of \(series.count): \(label) against the base")
            let policy = try LoadedPolicy(checkpoint: checkpoint, adapter: nil)
            let scored = try progress.tracked("scoring \(label)", total: data.sequences.count) {
                try PolicyComparison(data, after: policy, before: basePolicy, resizedVocabulary: resized[checkpoint.path] ?? false,
                                     beta: options.beta, scorer: scorer, store: store, progress: $0)
            }
            warnings += scored.warnings.filter { $0.hasPrefix("score store") || (index == series.count - 1 && $0.contains("β")) }
            let implicitValues = scored.implicitRewards.map { $0.value(options.aggregation) }
            let sums = scored.implicitRewards.map { $0.value(.sum) }
            let fit = try AnalysisPipeline.analyseTarget("implicit_reward", "implicit reward of \(label)", implicitValues, features: features,
                                                         options: analysis, groupLabels: nil)
            var divergence: Divergence? = nil
            if let stepReward = seriesScores.isEmpty ? rewardScores : seriesScores[index] {
                divergence = try Divergence(Divergence.Inputs(
                    implicitReward: implicitValues, rewardModel: stepReward, gold: gold, pairs: data.pairs, features: features.matrix,
                    responseTokens: data.sequences.map(\.responseIDs.count), bootstrapReplicates: options.bootstrapReplicates,
                    seed: options.seed, topK: 0))
            }
            let goldAgreement = try gold.map { gold in
                try PairAgreement.between(marginsFirst: data.pairs.map { sums[$0.chosen] - sums[$0.rejected] },
                                          marginsSecond: data.pairs.map { gold[$0.chosen] - gold[$0.rejected] })
            }
            let klTokens = scored.comparisons.flatMap { $0.kl.compactMap { $0 } }
            steps.append(DriftResult.Step(
                checkpoint: describe(checkpoint), beta: scored.beta, implicitRewards: implicitValues, logRatios: sums,
                trainerRewards: try TrainerRewardMetrics(pairs: data.pairs, rewards: sums, beta: scored.beta,
                                                         bootstrapReplicates: options.bootstrapReplicates, seed: options.seed),
                goldAgreement: data.pairs.isEmpty ? nil : goldAgreement,
                klPerToken: klTokens.isEmpty ? 0 : klTokens.reduce(0, +) / Double(klTokens.count),
                klPerResponse: scored.comparisons.isEmpty ? 0 : scored.comparisons.map(\.klSum).reduce(0, +) / Double(scored.comparisons.count),
                divergence: divergence, implicitFit: fit))
        }

        // The headline trajectories use one parsimonious feature set for every step: the last step's.
        if let subset = steps.last?.implicitFit.collinearity?.value?.parsimoniousFeatures {
            let columns = subset.compactMap { features.matrix.names.firstIndex(of: $0) }
            let matrix = features.matrix.selectingColumns(columns)
            for k in steps.indices {
                steps[k].headlineFit = try LeastSquaresFit.fit(matrix, target: steps[k].implicitRewards,
                                                               options: LeastSquaresFit.Options(seed: options.seed)).value
            }
        } else {
            for k in steps.indices { steps[k].headlineFit = steps[k].implicitFit.ols.value }
        }

        stage("trajectories")
        var trajectory: RewardTrajectory? = nil
        if let rewardScores {
            let groups = promptGroups(data.sequences)
            // ℓ = implicit reward / β; the base is all zeros.
            let ratios = [[Double](repeating: 0, count: data.samples.count)] + steps.map { step in step.logRatios.map { $0 / step.beta } }
            // With a series, step k is measured by the reward model it was tuned against, the base by the first.
            let proxy = seriesScores.isEmpty ? ratios.map { _ in rewardScores } : [seriesScores[0]] + seriesScores
            trajectory = try RewardTrajectory(logRatios: ratios, proxyPerStep: proxy, gold: gold, groups: groups,
                                              bootstrapReplicates: options.bootstrapReplicates, seed: options.seed)
        } else {
            warnings.append("no training reward (--reward-model or --reward-field): the proxy/gold trajectory, monotonicity and over-optimisation need one")
        }
        // A collinear set speaks through its representative (docs/formulas.md, "Collinearity").
        let shadowed = Set(steps.last?.implicitFit.collinearity?.value?.droppedFeatures ?? [])
        let rewardSeries = try seriesFits.isEmpty ? nil
            : Self.rewardModelSeries(models: seriesModels, scores: seriesScores, fits: seriesFits, options: options)
        let spurious = spuriousFeatures(steps: steps, rewardFit: rewardFit, goldFit: goldFit, requireRising: true)
            .filter { !shadowed.contains($0.feature) }
            // With a series, the reward model's weight must have kept rising too.
            .filter { feature in
                guard let weights = rewardSeries?.weights[feature.feature] else { return true }
                let trend = (try? Correlation.spearman(weights, weights.indices.map(Double.init)))?.value?.value ?? 0
                return (weights.last ?? 0) > (weights.first ?? 0) && trend >= risingTrend - 1e-9
            }
        let proxyOnly = spuriousFeatures(steps: steps, rewardFit: rewardFit, goldFit: goldFit, requireRising: false)
            .filter { !shadowed.contains($0.feature) }

        stage("layer divergence")
        let layers = try LayerDivergence(base: LayerDivergence.Input(base, label: "base"), steps: series.map { LayerDivergence.Input($0, label: label($0)) })

        return DriftResult(
            toolVersion: IRMVersion.string, options: recordedOptions(options, rewardSource: rewardSource), inputs: inputs,
            base: describe(base), steps: steps, sampleCount: data.samples.count, pairCount: data.pairs.count, rewardSource: rewardSource,
            features: features, rewardFit: rewardFit, goldFit: goldFit, trajectory: trajectory, spuriousFeatures: spurious,
            proxyOnlyFeatures: proxyOnly, layers: layers, rewardModelSeries: rewardSeries, warnings: warnings)
    }

    // MARK: The series

    /// The checkpoints ordered by recorded training step, or by file name when any lacks one.
    /// The base and the series in training order, checked to be policies of one architecture with
    /// the base's tokenizer (or `--allow-tokenizer-mismatch`); which checkpoints resized the vocabulary.
    static func openSeries(_ options: DriftOptions) throws
        -> (base: IRMKit.Checkpoint, series: [IRMKit.Checkpoint], resized: [String: Bool], warnings: [String]) {
        var warnings: [String] = []
        let base = try IRMKit.Checkpoint.open(path: options.basePath)
        let series = try orderedSeries(options.checkpointPaths, base: base)
        for checkpoint in [base] + series where checkpoint.kind != .policy {
            throw IRMError("\(checkpoint.path): is a reward model (sequence classifier); a drift series is made of policies (causal language models)")
        }
        var resized: [String: Bool] = [:]
        for checkpoint in series {
            guard checkpoint.architecture == base.architecture else {
                throw IRMError("\(checkpoint.path) is a \(checkpoint.architecture.rawValue) model but the base \(base.path) is \(base.architecture.rawValue); a series is one model tuned over time")
            }
            let (mismatch, resizedVocabulary) = try Tokenizer.difference(base, checkpoint)
            if let mismatch {
                guard options.allowTokenizerMismatch else {
                    throw IRMError("\(base.path) and \(checkpoint.path) have different tokenizers (\(mismatch)); the implicit reward compares the probabilities both give the same token ids. If the ids mean the same, pass --allow-tokenizer-mismatch")
                }
                warnings.append("\(checkpoint.path) has a different tokenizer from the base (\(mismatch)); the text was tokenised with the base's (--allow-tokenizer-mismatch)")
            }
            if let resizedVocabulary { warnings.append("\(checkpoint.path): a resized vocabulary: \(resizedVocabulary)") }
            resized[checkpoint.path] = resizedVocabulary != nil
        }
        return (base, series, resized, warnings)
    }

    static func orderedSeries(_ paths: [String], base: IRMKit.Checkpoint) throws -> [IRMKit.Checkpoint] {
        guard paths.count >= 2 else {
            throw IRMError("a drift series needs at least two checkpoints besides the base (found \(paths.count)); for one checkpoint use `irm analyze --before BASE --after CHECKPOINT`")
        }
        var seen: [String: String] = [:]
        for path in paths {
            let canonical = URL(fileURLWithPath: path).standardizedFileURL.path
            if let first = seen[canonical] { throw IRMError("\(path) is given twice (also as \(first))") }
            if canonical == URL(fileURLWithPath: base.path).standardizedFileURL.path {
                throw IRMError("\(path) is the base itself; list only the checkpoints tuned from it")
            }
            seen[canonical] = path
        }
        let checkpoints = try paths.map { try IRMKit.Checkpoint.open(path: $0) }
        let steps = checkpoints.map(\.provenance.trainingStep)
        if steps.allSatisfy({ $0 != nil }) {
            var byStep: [Int: String] = [:]
            for (checkpoint, step) in zip(checkpoints, steps) {
                guard let step else { continue }
                if let other = byStep[step] {
                    throw IRMError("\(other) and \(checkpoint.path) both record training step \(step), so the series has no order; give each its step with `irm convert --step N` (or rename the files and convert without --step, to order by name)")
                }
                byStep[step] = checkpoint.path
            }
            return zip(checkpoints, steps).sorted { ($0.1 ?? 0) < ($1.1 ?? 0) }.map(\.0)
        }
        return checkpoints.sorted { $0.path.localizedStandardCompare($1.path) == .orderedAscending }
    }

    /// The reward models of a series, one per checkpoint, in the checkpoints' order rule.
    static func orderedRewardModels(_ paths: [String], count: Int) throws -> [IRMKit.Checkpoint] {
        guard paths.count == count else {
            throw IRMError("a reward-model series needs one reward model per checkpoint: \(paths.count) given for \(count) checkpoints (or give one --reward-model for every step)")
        }
        var seen = Set<String>()
        for path in paths {
            guard seen.insert(URL(fileURLWithPath: path).standardizedFileURL.path).inserted else { throw IRMError("\(path) is given twice in the reward-model series") }
        }
        let models = try paths.map { try IRMKit.Checkpoint.open(path: $0) }
        for model in models where model.kind != .rewardModel {
            throw IRMError("\(model.path): is a policy (causal language model); the reward-model series needs reward models (sequence classifiers)")
        }
        let steps = models.map(\.provenance.trainingStep)
        if steps.allSatisfy({ $0 != nil }), Set(steps.compactMap { $0 }).count == steps.count {
            return zip(models, steps).sorted { ($0.1 ?? 0) < ($1.1 ?? 0) }.map(\.0)
        }
        return models.sorted { $0.path.localizedStandardCompare($1.path) == .orderedAscending }
    }

    static func rewardModelSeries(models: [DriftResult.Checkpoint], scores: [[Double]], fits: [AnalysisResult.TargetAnalysis],
                                  options: DriftOptions) throws -> RewardModelSeries {
        var consecutive: [Divergence.CorrelationSet] = []
        for k in scores.indices.dropFirst() {
            consecutive.append(Divergence.CorrelationSet(
                first: models[k - 1].label, second: models[k].label,
                pearson: try Correlation.pearson(scores[k - 1], scores[k], bootstrapReplicates: options.bootstrapReplicates, seed: options.seed),
                spearman: try Correlation.spearman(scores[k - 1], scores[k], bootstrapReplicates: options.bootstrapReplicates, seed: options.seed),
                kendall: try Correlation.kendallTauB(scores[k - 1], scores[k], bootstrapReplicates: options.bootstrapReplicates, seed: options.seed)))
        }
        var weights: [String: [Double]] = [:]
        let names = fits.first?.ridge.value?.coefficients.map(\.name) ?? []
        for name in names {
            weights[name] = fits.map { fit in fit.ridge.value?.coefficients.first { $0.name == name }?.standardizedEstimate ?? 0 }
        }
        var changes: [RewardModelSeries.Change] = []
        for k in fits.indices.dropFirst() {
            for name in names {
                guard let w = weights[name] else { continue }
                let was = w[k - 1] >= rewardedThreshold, now = w[k] >= rewardedThreshold
                if was != now { changes.append(RewardModelSeries.Change(version: k, feature: name, started: now, before: w[k - 1], after: w[k])) }
            }
        }
        return RewardModelSeries(models: models, consecutive: consecutive, weights: weights, changes: changes)
    }

    static func label(_ checkpoint: IRMKit.Checkpoint) -> String {
        let name = URL(fileURLWithPath: checkpoint.path).deletingPathExtension().lastPathComponent
        return checkpoint.provenance.trainingStep.map { "step \($0)" } ?? name
    }

    static func describe(_ checkpoint: IRMKit.Checkpoint) -> DriftResult.Checkpoint {
        DriftResult.Checkpoint(label: label(checkpoint), path: checkpoint.path, trainingStep: checkpoint.provenance.trainingStep,
                               sha256: (try? SHA256.hex(ofFile: checkpoint.path)) ?? "")
    }

    /// Sample indices grouped by identical prompt ids, in order of first appearance.
    static func promptGroups(_ sequences: [ScoringSample]) -> [[Int]] {
        var index: [[Int32]: Int] = [:]
        var groups: [[Int]] = []
        for (i, sequence) in sequences.enumerated() {
            if let g = index[sequence.promptIDs] {
                groups[g].append(i)
            } else {
                index[sequence.promptIDs] = groups.count
                groups.append([i])
            }
        }
        return groups
    }

    /// Features that the proxy rewards (standardised ridge coefficient ≥ `rewardedThreshold`) and
    /// gold does not (below the threshold, or no gold), and whose standardised ridge coefficient in
    /// the implicit reward rises over the steps (Spearman ρ against step order ≥ `risingTrend`, and
    /// higher at the last step than at the first) — or, without `requireRising`, is at least the
    /// threshold at the last step. Ridge, because it is defined even where the OLS design is
    /// singular or gold is an exact function of the features.
    static func spuriousFeatures(steps: [DriftResult.Step], rewardFit: AnalysisResult.TargetAnalysis?,
                                 goldFit: AnalysisResult.TargetAnalysis?, requireRising: Bool) -> [SpuriousFeature] {
        guard steps.count >= 2, let proxy = rewardFit?.ridge.value else { return [] }
        let proxyByName = Dictionary(proxy.coefficients.map { ($0.name, $0.standardizedEstimate) }, uniquingKeysWith: { a, _ in a })
        let goldByName = goldFit?.ridge.value.map { Dictionary($0.coefficients.map { ($0.name, $0.standardizedEstimate) }, uniquingKeysWith: { a, _ in a }) }
        let fits = steps.compactMap { $0.implicitFit.ridge.value }
        guard fits.count == steps.count, let names = fits.first?.coefficients.map(\.name) else { return [] }
        var found: [SpuriousFeature] = []
        for name in names {
            let trajectory = fits.map { fit in fit.coefficients.first { $0.name == name }?.standardizedEstimate ?? 0 }
            guard let proxyCoefficient = proxyByName[name], proxyCoefficient >= rewardedThreshold else { continue }
            let goldCoefficient = goldByName?[name]
            if let goldCoefficient, goldCoefficient >= rewardedThreshold { continue }
            guard let last = trajectory.last, let first = trajectory.first else { continue }
            let trend = (try? Correlation.spearman(trajectory, trajectory.indices.map(Double.init)))?.value?.value ?? 0
            if requireRising {
                // ρ over a few steps takes a few exact values (0.8 for one swap in four); rounding
                // must not put it below the threshold.
                guard last > first, trend >= risingTrend - 1e-9 else { continue }
            } else {
                guard last >= rewardedThreshold else { continue }
            }
            found.append(SpuriousFeature(feature: name, implicitTrajectory: trajectory, trend: trend,
                                         proxyCoefficient: proxyCoefficient, goldCoefficient: goldCoefficient))
        }
        return found
    }

    static func recordedOptions(_ o: DriftOptions, rewardSource: AnalysisResult.RewardSource) -> [(key: String, value: String)] {
        var out: [(String, String)] = [
            ("base", o.basePath), ("checkpoints", o.checkpointPaths.joined(separator: ",")), ("data", o.dataPath),
            ("beta", o.beta.map { "\($0)" } ?? "recorded"), ("reward_type", o.aggregation.rawValue),
            ("features", o.featuresPath ?? "default"), ("bootstrap", String(o.bootstrapReplicates)), ("seed", String(o.seed)),
            ("gold_field", o.goldField), ("allow_tokenizer_mismatch", String(o.allowTokenizerMismatch)),
            ("convention", o.sequences.convention.rawValue), ("eos", o.sequences.eos.rawValue),
            ("max_length", o.sequences.resolvedMaxLength.map(String.init) ?? "none"),
            ("tokens_per_batch", String(o.scoring.tokensPerBatch)), ("share_prompts", String(o.scoring.sharePrompts)),
        ]
        if let template = o.chatTemplatePath { out.append(("chat_template", template)) }
        if !o.rewardModelSeries.isEmpty { out.append(("reward_model_series", o.rewardModelSeries.joined(separator: ","))) }
        switch rewardSource {
        case .rewardModel(let path): out.append(("reward_model", path))
        case .field(let name): out.append(("reward_field", name))
        case .vaderUtility: out.append(("reward", "vader-utility"))
        case .kimSeo: out.append(("reward", "kim-seo"))
        case .none: out.append(("reward", "none"))
        }
        return out.sorted { $0.0 < $1.0 }.map { (key: $0.0, value: $0.1) }
    }
}
