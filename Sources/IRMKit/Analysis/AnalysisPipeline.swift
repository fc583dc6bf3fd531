import Foundation

/// What `irm analyze` should do.
public struct AnalysisOptions: Sendable {
    /// Where the training reward comes from.
    public enum RewardChoice: Sendable, Equatable {
        /// The data's `reward` field when every sample has one, else no reward.
        case automatic
        case rewardModel(path: String)
        case field(name: String)
        case vaderUtility
        case kimSeo
        case none
    }

    /// The fits reported besides OLS, LMG and ridge (which always run).
    public enum Method: String, Sendable, CaseIterable {
        case ols
        /// Adds the mean-field variational Bayes fit with ARD priors.
        case vb
    }

    public var beforePath: String
    public var afterPath: String
    /// PEFT LoRA adapter directories merged in memory into `beforePath` / `afterPath`.
    public var beforeAdapterPath: String?
    public var afterAdapterPath: String?
    public var dataPath: String
    public var reward: RewardChoice = .automatic
    /// β of the implicit reward; nil: the β recorded in the after-checkpoint's provenance, else 1.
    public var beta: Double?
    public var aggregation: ImplicitReward.Aggregation = .sum
    /// A features file (YAML or JSON); nil for every built-in.
    public var featuresPath: String?
    /// A data field whose values split the samples for per-group fits and the Chow test.
    public var groupBy: String?
    public var bootstrapReplicates: Int = 1000
    public var seed: UInt64 = 0
    public var method: Method = .ols
    public var allowTokenizerMismatch = false
    /// The data field holding a gold score.
    public var goldField = "gold"
    /// The data field naming the policy that generated each response, and its values for the two
    /// policies (default: the checkpoint file names without extension).
    public var sourceField = "policy"
    public var beforeLabel: String?
    public var afterLabel: String?
    /// Compare the token reconstruction with the VADER lexicon; nil: only for `--reward vader-utility`.
    public var compareWithLexicon: Bool?
    /// How many of the largest disagreements to list.
    public var topDisagreements = 10
    public var scoring = ScoringOptions()
    /// How prompt and response become token sequences (the trainer's convention).
    public var sequences = SequenceOptions()
    /// A chat template to use instead of the before-checkpoint's (a .jinja file or a tokenizer_config.json).
    public var chatTemplatePath: String?
    /// The date `strftime_now` renders in chat templates.
    public var templateDate = Date()
    /// The score store directory (docs/score-store.md); nil: scores are computed and not kept.
    public var storeDirectory: URL?

    public init(beforePath: String, afterPath: String, dataPath: String) {
        self.beforePath = beforePath
        self.afterPath = afterPath
        self.dataPath = dataPath
    }

    /// The before/after labels of the source field.
    var resolvedBeforeLabel: String { beforeLabel ?? Self.stem(beforePath) }
    var resolvedAfterLabel: String { afterLabel ?? Self.stem(afterPath) }

    static func stem(_ path: String) -> String {
        URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
    }
}

/// The whole analysis, in the order of the pipeline: samples → token ids → both policies' log-probs
/// and KL → implicit reward; features (text, tokens, the before-policy's hidden states); the
/// training reward; fits of each target; token reconstruction; divergence.
public enum AnalysisPipeline {
    /// `progress` receives a line for each stage and progress lines for the long ones (scoring,
    /// hidden states, the reward model).
    public static func run(_ options: AnalysisOptions, progress: ProgressOutput? = nil) throws -> AnalysisResult {
        func stage(_ text: String) { progress?.stage(text) }
        options.scoring.applyThreadCount()
        try validate(options)
        var warnings: [String] = []
        var inputs: [AnalysisResult.InputFile] = []

        stage("opening the checkpoints")
        let (before, after, resizedVocabulary, pairWarnings) = try openPair(options)
        warnings += pairWarnings

        stage("reading \(options.dataPath)")
        let data = try PreparedData(dataPath: options.dataPath, checkpoint: before, sequenceOptions: options.sequences,
                                    chatTemplatePath: options.chatTemplatePath, templateDate: options.templateDate)
        let samples = data.samples, pairs = data.pairs, scoring = data.sequences
        guard let tokenizer = data.tokenizer else { throw IRMError("\(before.path): no tokenizer") }
        inputs.append(try inputFile("before", options.beforePath, summary: checkpointSummary(before)))
        inputs.append(try inputFile("after", options.afterPath, summary: checkpointSummary(after)))
        let beforeAdapter = try options.beforeAdapterPath.map { try LoRAAdapter.load(directory: $0) }
        let afterAdapter = try options.afterAdapterPath.map { try LoRAAdapter.load(directory: $0) }
        for (adapter, role) in [(beforeAdapter, "before-adapter"), (afterAdapter, "after-adapter")] {
            guard let adapter else { continue }
            for file in adapter.inputFiles { inputs.append(try inputFile(role, file, summary: adapter.summary)) }
        }
        inputs.append(AnalysisResult.InputFile(role: "data", path: options.dataPath, sha256: data.dataSHA256,
                                               summary: "\(samples.count) samples, \(pairs.count) preference pairs"))
        if let path = options.chatTemplatePath { inputs.append(try inputFile("chat-template", path, summary: "chat template")) }
        warnings += data.warnings
        // The features file is read before any scoring, so that a mistake in it costs nothing.
        let specification: FeatureSpecification
        if let path = options.featuresPath {
            specification = try FeatureSpecification.load(path: path)
            inputs.append(try inputFile("features", path, summary: "\(specification.regexFeatures.count) regex features, \(specification.numericFields.count) numeric fields"))
        } else {
            specification = .allBuiltIns
        }
        let scorer = LogProbScorer(options: options.scoring)
        let store = try options.storeDirectory.map { try StageStore(directory: $0) }

        stage("scoring \(samples.count) responses under both policies")
        let afterPolicy = try LoadedPolicy(checkpoint: after, adapter: afterAdapter)
        let beforePolicy = try LoadedPolicy(checkpoint: before, adapter: beforeAdapter)
        warnings += afterPolicy.warnings + beforePolicy.warnings
        let scored = try progress.tracked("scoring", total: scoring.count) {
            try PolicyComparison(data, after: afterPolicy, before: beforePolicy, resizedVocabulary: resizedVocabulary != nil,
                                 beta: options.beta, scorer: scorer, store: store, progress: $0)
        }
        warnings += scored.warnings
        let comparisons = scored.comparisons, beta = scored.beta, implicit = scored.implicitRewards

        stage("hidden states of prompts and responses under the before-policy")
        let featureStage = try FeatureStage(data, before: beforePolicy, specification: specification, scorer: scorer, store: store, progress: progress)
        let featureInputs = featureStage.inputs, features = featureStage.table
        try checkSampleCount(features, sampleCount: samples.count)
        for skipped in features.skipped { warnings.append("feature \(skipped.name) left out: \(skipped.reason)") }

        stage("training reward")
        let (rewardSource, rewardScores, rewardInput) = try trainingReward(options, samples: samples, plan: data.plan, featureInputs: featureInputs, store: store, progress: progress)
        if let rewardInput { inputs.append(rewardInput) }
        let gold = try numericColumn(options.goldField, samples, source: options.dataPath, required: false)

        let groupLabels = try options.groupBy.map { field in
            try samples.map { sample -> String in
                guard let value = sample.field(field) else {
                    throw IRMError("\(options.dataPath): \(sample.label): no \"\(field)\" field; --group-by \(field) needs it on every line")
                }
                return value.stringValue ?? value.serialized()
            }
        }
        let generators = samples.map { sample in sample.field(options.sourceField).map { $0.stringValue ?? $0.serialized() } }

        let rows = samples.indices.map { i in
            AnalysisResult.SampleRow(
                id: samples[i].id, role: samples[i].role, line: samples[i].line,
                prompt: featureInputs[i].prompt, response: featureInputs[i].response,
                promptTokens: scoring[i].promptIDs.count, responseTokens: scoring[i].responseIDs.count,
                implicitReward: implicit[i], logProbAfter: comparisons[i].after.sum, logProbBefore: comparisons[i].before.sum,
                kl: comparisons[i].klSum, rewardModel: rewardScores?[i], gold: gold?[i], group: groupLabels?[i],
                generator: generators[i])
        }
        let empty = rows.filter(\.isEmptyResponse)
        if !empty.isEmpty {
            warnings.append("\(empty.count) empty response\(empty.count == 1 ? "" : "s") (\(empty.prefix(5).map { "\($0.id)\($0.role.map { " \($0.rawValue)" } ?? "")" }.joined(separator: ", "))\(empty.count > 5 ? ", …" : "")): kept with 0 tokens, implicit reward 0")
        }
        let unscored = rows.filter { $0.responseTokens > 0 && $0.implicitReward.scoredTokenCount < $0.responseTokens }
        if !unscored.isEmpty {
            warnings.append("\(unscored.count) response\(unscored.count == 1 ? "" : "s") start with no context (empty prompt and no BOS token), so their first token has no log-prob and is left out of the sum")
        }

        stage("fits")
        let implicitValues = rows.map { $0.implicitReward.value(options.aggregation) }
        var targets: [AnalysisResult.TargetAnalysis] = []
        let aggregationText = options.aggregation == .sum ? "sum over response tokens" : "mean per response token"
        targets.append(try analyseTarget("implicit_reward", "implicit reward (\(aggregationText), β = \(beta))",
                                         implicitValues, features: features, options: options, groupLabels: groupLabels))
        if let rewardScores {
            targets.append(try analyseTarget("reward_model", "training reward (\(rewardSource.description))", rewardScores,
                                             features: features, options: options, groupLabels: groupLabels))
            if let zi = ColumnMoments.zScores(implicitValues), let zr = ColumnMoments.zScores(rewardScores) {
                targets.append(try analyseTarget("difference", "z(implicit reward) − z(training reward)", zip(zi, zr).map { $0 - $1 },
                                                 features: features, options: options, groupLabels: groupLabels))
            } else {
                warnings.append("the implicit reward or the training reward is constant over the samples, so their standardised difference is undefined")
            }
        }
        if let gold {
            targets.append(try analyseTarget("gold", "gold score (field \"\(options.goldField)\")", gold, features: features,
                                             options: options, groupLabels: groupLabels))
        }

        stage("divergence")
        var divergence: Divergence? = nil
        if let rewardScores {
            divergence = try Divergence(Divergence.Inputs(
                implicitReward: implicitValues, rewardModel: rewardScores, gold: gold, pairs: pairs, features: features.matrix,
                responseTokens: rows.map(\.responseTokens), bootstrapReplicates: options.bootstrapReplicates,
                seed: options.seed, topK: options.topDisagreements))
        }

        stage("token reconstruction")
        let reconstruction = try TokenReconstruction(
            responses: samples.indices.map { (ids: scoring[$0].responseIDs, rewards: implicit[$0].perToken) },
            decode: { tokenizer.decode([$0], skipSpecialTokens: false) })
        var lexiconRecovery: LexiconRecovery? = nil
        if options.compareWithLexicon ?? (options.reward == .vaderUtility) {
            let lexicon = VaderLexicon.shared
            lexiconRecovery = try LexiconRecovery(effects: reconstruction.effects, lexicon: { lexicon.valence(of: $0) },
                                                  bootstrapReplicates: options.bootstrapReplicates, seed: options.seed)
        }

        var gains: [LengthNormalizedGain] = []
        let beforeLabel = options.resolvedBeforeLabel, afterLabel = options.resolvedAfterLabel
        let isAfter: [Bool?] = generators.map { $0 == afterLabel ? true : $0 == beforeLabel ? false : nil }
        if isAfter.contains(true) && isAfter.contains(false) {
            let tokens = rows.map(\.responseTokens)
            gains.append(try LengthNormalizedGain(score: "implicit_reward", scores: implicitValues, tokens: tokens, isAfter: isAfter))
            if let rewardScores {
                gains.append(try LengthNormalizedGain(score: "reward_model", scores: rewardScores, tokens: tokens, isAfter: isAfter))
            }
            if let gold { gains.append(try LengthNormalizedGain(score: "gold", scores: gold, tokens: tokens, isAfter: isAfter)) }
        } else if generators.contains(where: { $0 != nil }) {
            let values = Set(generators.compactMap { $0 }).sorted().prefix(5).map { "\"\($0)\"" }.joined(separator: ", ")
            warnings.append("the data's \"\(options.sourceField)\" field has the values \(values), but the length-normalised gain needs responses labelled \"\(beforeLabel)\" (before) and \"\(afterLabel)\" (after); set --before-label and --after-label")
        }

        let trainerRewards = try TrainerRewardMetrics(pairs: pairs, rewards: implicit.map { $0.value(.sum) }, beta: beta,
                                                      bootstrapReplicates: options.bootstrapReplicates, seed: options.seed)

        return AnalysisResult(
            options: recordedOptions(options, beta: beta, rewardSource: rewardSource, renderedTemplate: data.renderedTemplate), toolVersion: IRMVersion.string, inputs: inputs,
            beta: beta, aggregation: options.aggregation, rewardSource: rewardSource, groupField: options.groupBy,
            samples: rows, pairs: pairs, features: features, targets: targets, divergence: divergence,
            tokenReconstruction: reconstruction, lexiconRecovery: lexiconRecovery, lengthNormalizedGain: gains,
            trainerRewards: trainerRewards, warnings: warnings)
    }

    // MARK: Stages

    /// The options' own bounds, before any file is read (drift checks its analysis options here too).
    /// The before- and after-checkpoints, checked to be policies with tokenizers that map text to
    /// the same ids (or `--allow-tokenizer-mismatch`), and the resized-vocabulary note if any.
    static func openPair(_ options: AnalysisOptions) throws -> (before: Checkpoint, after: Checkpoint, resizedVocabulary: String?, warnings: [String]) {
        var warnings: [String] = []
        let before = try Checkpoint.open(path: options.beforePath)
        let after = try Checkpoint.open(path: options.afterPath)
        for (checkpoint, flag) in [(before, "--before"), (after, "--after")] where checkpoint.kind != .policy {
            throw IRMError("\(checkpoint.path): is a reward model (sequence classifier); \(flag) needs a policy (causal language model) checkpoint")
        }
        let (tokenizerMismatch, resizedVocabulary) = try Tokenizer.difference(before, after)
        if let resizedVocabulary {
            warnings.append("a resized vocabulary: \(resizedVocabulary). The implicit reward uses each policy's own softmax; the KL is over the shared rows, each distribution renormalised over them (docs/scoring.md)")
        }
        if let difference = tokenizerMismatch {
            guard options.allowTokenizerMismatch else {
                throw IRMError("\(before.path) and \(after.path) have different tokenizers (\(difference)). The implicit reward compares the probabilities the two policies give the same token ids, so both must map text to ids the same way. If the ids do mean the same (for example only special tokens or the template changed), pass --allow-tokenizer-mismatch; the text is then tokenised with the before-policy's tokenizer")
            }
            warnings.append("the two policies have different tokenizers (\(difference)); the text was tokenised with the before-policy's tokenizer (--allow-tokenizer-mismatch)")
        }

        return (before, after, resizedVocabulary, warnings)
    }

    /// A reward model checkpoint (one score) and the sequences it scores: the samples tokenised with
    /// its own tokenizer and template.
    static func openRewardModel(_ path: String, options: AnalysisOptions, samples: [Sample]) throws -> (checkpoint: Checkpoint, sequences: [ScoringSample]) {
        let checkpoint = try Checkpoint.open(path: path)
        guard checkpoint.kind == .rewardModel else {
            throw IRMError("\(path): is a policy (causal language model); --reward-model needs a reward model checkpoint (a sequence classifier with a score head)")
        }
        guard checkpoint.config.labelCount == 1 else {
            throw IRMError("\(path): the score head has \(checkpoint.config.labelCount) labels; irm analyses reward models with one score")
        }
        let tokenizer = try Tokenizer(json: checkpoint.tokenizerJSON, sourceDescription: "\(path): /tokenizer/tokenizer.json")
        let formatting = try ChatFormatting(checkpoint: checkpoint, templatePath: options.chatTemplatePath, date: options.templateDate)
        let sequences = try TrainingSequences(tokenizer: tokenizer, formatting: formatting, options: options.sequences,
                                              source: options.dataPath).build(samples).sequences
        return (checkpoint, sequences)
    }

    static func validate(_ options: AnalysisOptions) throws {
        if let beta = options.beta, !Provenance.isValidBeta(beta) {
            throw IRMError("--beta must be a positive number, found \(beta)")
        }
        guard options.bootstrapReplicates >= 0 else {
            throw IRMError("--bootstrap must be 0 (no intervals) or a positive number of replicates, found \(options.bootstrapReplicates)")
        }
        guard options.topDisagreements >= 0 else {
            throw IRMError("--top must be 0 or more, found \(options.topDisagreements)")
        }
    }

    /// (chosen, rejected) index pairs: a preference line gives its chosen sample, then its rejected one.
    static func preferencePairs(_ samples: [Sample]) -> [Divergence.Pair] {
        var pairs: [Divergence.Pair] = []
        for i in samples.indices.dropLast() where samples[i].role == .chosen && samples[i + 1].role == .rejected
            && samples[i].line == samples[i + 1].line {
            pairs.append(Divergence.Pair(chosen: i, rejected: i + 1))
        }
        return pairs
    }

    static func checkpointSummary(_ c: Checkpoint) -> String {
        var text = "\(c.architecture.rawValue) \(c.kind.rawValue), \(c.parameterCount) parameters, \(c.config.layerCount) layers, vocabulary \(c.config.vocabSize)"
        if let step = c.provenance.trainingStep { text += ", step \(step)" }
        if let beta = c.provenance.beta { text += ", trained with β = \(beta)" }
        return text
    }

    static func inputFile(_ role: String, _ path: String, summary: String) throws -> AnalysisResult.InputFile {
        AnalysisResult.InputFile(role: role, path: path, sha256: try SHA256.hex(ofFile: path), summary: summary)
    }

    /// The numbers of a field on every sample, or nil when no sample has it. Some but not all, or a
    /// value that is not a finite number, is an error naming the lines.
    static func numericColumn(_ field: String, _ samples: [Sample], source: String, required: Bool) throws -> [Double]? {
        var values: [Double] = []
        var missing: [Sample] = []
        for sample in samples {
            guard let value = sample.field(field) else {
                missing.append(sample)
                continue
            }
            guard let number = value.doubleValue, number.isFinite else {
                throw IRMError("\(source): \(sample.label): \"\(field)\" should be a number, found \(value.brief)")
            }
            values.append(number)
        }
        if missing.count == samples.count && !required { return nil }
        if let first = missing.first {
            let more = missing.count > 1 ? " and \(missing.count - 1) more" : ""
            let hint = first.role != nil ? " (on a preference line, give \"\(field)\" or \"chosen_\(field)\" and \"rejected_\(field)\")" : ""
            throw IRMError("\(source): \(first.label)\(more): no \"\(field)\" field\(hint); every sample needs a number there")
        }
        return values
    }

    /// Scores of the training reward, with its description and the input file it read.
    static func trainingReward(_ options: AnalysisOptions, samples: [Sample], plan: ShardPlan, featureInputs: [FeatureInput], store: StageStore?,
                               progress: ProgressOutput?) throws
        -> (AnalysisResult.RewardSource, [Double]?, AnalysisResult.InputFile?) {
        switch options.reward {
        case .none:
            return (.none, nil, nil)
        case .automatic:
            if let values = try numericColumn("reward", samples, source: options.dataPath, required: false) {
                return (.field(name: "reward"), values, nil)
            }
            return (.none, nil, nil)
        case .field(let name):
            let values = try numericColumn(name, samples, source: options.dataPath, required: true)
            return (.field(name: name), values, nil)
        case .vaderUtility:
            return (.vaderUtility, VaderUtilityReward().rewards(for: featureInputs), nil)
        case .kimSeo:
            // The hidden-state cosine stands in for Kim & Seo's contriever relevance when available.
            let reward = KimSeoReward(relevance: .hiddenStateCosine)
            return (.kimSeo, try reward.rewards(for: featureInputs), nil)
        case .rewardModel(let path):
            let (checkpoint, scoring) = try openRewardModel(path, options: options, samples: samples)
            let model = try ModelLoading.load(checkpoint: checkpoint)
            let task = progress?.task("reward model", total: scoring.count)
            defer { task?.finish() }
            let scores = try StageStore.rewards(of: scoring, plan: plan, under: model, checkpointPath: path, store: store,
                                                convention: options.sequences.convention.rawValue, scorer: LogProbScorer(options: options.scoring),
                                                progress: { task?.update(done: $0, tokens: $1) })
                .map { $0.first ?? 0 }
            let file = try inputFile("reward-model", path, summary: checkpointSummary(checkpoint))
            return (.rewardModel(path: path), scores, file)
        }
    }

    /// Fewer samples than non-constant features + 2 leaves the fit no residual degree of freedom.
    static func checkSampleCount(_ features: FeatureTable, sampleCount n: Int) throws {
        let matrix = features.matrix
        let varying = PreparedDesign(matrix).kept.count
        guard n >= varying + 2 else {
            throw IRMError("\(n) samples for \(varying) features that vary: the linear fit needs at least \(varying + 2) samples (features + intercept + one residual degree of freedom). Add samples, or pass --features with a file that selects fewer features (docs/features.md)")
        }
    }

    /// OLS, LMG, ridge, and on request VB and the grouped fit, of one target.
    static func analyseTarget(_ name: String, _ description: String, _ values: [Double], features: FeatureTable,
                                      options: AnalysisOptions, groupLabels: [String]?) throws -> AnalysisResult.TargetAnalysis {
        let matrix = features.matrix
        let fitOptions = LeastSquaresFit.Options(seed: options.seed)
        let ols = try LeastSquaresFit.fit(matrix, target: values, options: fitOptions)
        var lmg: StatisticOutcome<ShapleyAttribution>? = nil
        var byGroup = false
        if ols.value != nil {
            var groups: [(name: String, members: [String])] = []
            if PreparedDesign(matrix).kept.count > ShapleyAttribution.maximumPlayers {
                byGroup = true
                var members: [FeatureGroup: [String]] = [:]
                for (j, definition) in features.definitions.enumerated() { members[definition.group, default: []].append(matrix.names[j]) }
                groups = FeatureGroup.allCases.compactMap { group in members[group].map { (group.rawValue, $0) } }
            }
            lmg = try ShapleyAttribution.decompose(matrix, target: values, groups: groups,
                                                   bootstrapReplicates: options.bootstrapReplicates, seed: options.seed)
        }
        let ridge = try RidgeFit.fit(matrix, target: values)
        let vb = options.method == .vb ? try VariationalBayesRegression.fit(matrix, target: values) : nil
        let grouped = try groupLabels.map { try GroupedFit.fit(matrix, target: values, groupLabels: $0, options: fitOptions) }
        var analysis = AnalysisResult.TargetAnalysis(name: name, description: description, values: values, ols: ols, lmg: lmg,
                                                     lmgByGroup: byGroup, ridge: ridge, variationalBayes: vb, grouped: grouped)
        if let fit = ols.value {
            analysis.collinearity = try collinearity(matrix, target: values, fit: fit, lmg: byGroup ? nil : lmg?.value, fitOptions: fitOptions)
        }
        return analysis
    }

    /// VIFs, collinear sets and the parsimonious fit. A set's representative is the member with
    /// the largest LMG share; when LMG ran over feature groups (more than 15 features) there are
    /// no per-feature shares, and the member with the largest R² alone (its squared correlation
    /// with the target, the share it would have as the only player) stands in (docs/formulas.md).
    static func collinearity(_ matrix: FeatureMatrix, target: [Double], fit: LeastSquaresFit, lmg: ShapleyAttribution?,
                             fitOptions: LeastSquaresFit.Options) throws -> StatisticOutcome<CollinearityAnalysis> {
        var shares: [String: Double] = [:]
        if let lmg {
            for share in lmg.shares { shares[share.name] = share.share }
        } else {
            for c in fit.coefficients {
                guard let column = matrix.names.firstIndex(of: c.name) else { continue }
                let r = (try? Correlation.pearson(Array(matrix.column(column)), target))?.value?.value ?? 0
                shares[c.name] = r * r
            }
        }
        do {
            return .defined(try CollinearityAnalysis.analyze(matrix, target: target, fullFit: fit, lmgShares: shares, fitOptions: fitOptions))
        } catch let error as IRMError {
            return .undefined(reason: error.description)
        }
    }

    /// The options as the manifest records them.
    private static func recordedOptions(_ o: AnalysisOptions, beta: Double, rewardSource: AnalysisResult.RewardSource,
                                        renderedTemplate: Bool) -> [(key: String, value: String)] {
        var out: [(String, String)] = [
            ("after", o.afterPath), ("before", o.beforePath), ("data", o.dataPath),
            ("beta", "\(beta)"), ("reward_type", o.aggregation.rawValue),
            ("features", o.featuresPath ?? "default"), ("bootstrap", String(o.bootstrapReplicates)), ("seed", String(o.seed)),
            ("method", o.method.rawValue), ("allow_tokenizer_mismatch", String(o.allowTokenizerMismatch)),
            ("gold_field", o.goldField), ("source_field", o.sourceField), ("before_label", o.resolvedBeforeLabel),
            ("after_label", o.resolvedAfterLabel), ("top", String(o.topDisagreements)),
            ("lexicon", String(o.compareWithLexicon ?? (o.reward == .vaderUtility))),
            ("tokens_per_batch", String(o.scoring.tokensPerBatch)), ("share_prompts", String(o.scoring.sharePrompts)),
            ("convention", o.sequences.convention.rawValue), ("eos", o.sequences.eos.rawValue),
            ("max_length", o.sequences.resolvedMaxLength.map(String.init) ?? "none"),
        ]
        // The date changes a rendering only through strftime_now; recorded when a template was rendered.
        if renderedTemplate { out.append(("template_date", ChatFormatting.dateText(o.templateDate))) }
        if let template = o.chatTemplatePath { out.append(("chat_template", template)) }
        if let adapter = o.beforeAdapterPath { out.append(("before_adapter", adapter)) }
        if let adapter = o.afterAdapterPath { out.append(("after_adapter", adapter)) }
        if let group = o.groupBy { out.append(("group_by", group)) }
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
