import Foundation

/// The stages that `irm analyze` (`AnalysisPipeline.run`) and `irm drift` compose, in the order
/// data flows:
///
/// 1. `PreparedData`: the data file → samples → the token sequences the trainer scored;
/// 2. `PolicyPair.score`: both policies' log-probs and the KL of one against the other;
/// 3. `ImplicitRewards`: β·log(π_after/π_before), per token, summed and per token on average;
/// 4. `FeatureStage`: features from the text, the tokens and the before-policy's hidden states;
/// 5. `AnalysisPipeline.fitTarget`: OLS, LMG, ridge (and VB, grouped fits) of a target;
/// 6. `Divergence`: the implicit reward against the training reward;
/// 7. Report/: writers.
///
/// Each stage takes what it needs as arguments, not the command's options, so that compositions
/// can reuse it (drift scores the base once and every step against it).

/// Stage 1: samples and their token sequences.
public struct PreparedData: Sendable {
    public let dataPath: String
    /// SHA-256 of the data file's bytes.
    public let dataSHA256: String
    public let samples: [Sample]
    public let pairs: [Divergence.Pair]
    /// The token sequences scored, one per sample (the trainer's convention).
    public let sequences: [ScoringSample]
    /// SHA-256 over the token sequences: what a score depends on besides the checkpoint.
    public let sequencesSHA256: String
    /// How the sequences are cut into prompt groups, blocks and shards for scoring.
    public let plan: ShardPlan
    /// The tokenizer the sequences were made with (nil when every sample came pre-tokenised and
    /// none was needed).
    public let tokenizer: Tokenizer?
    public let renderedTemplate: Bool
    /// The convention, EOS rule and length limit the sequences were built with, as the score
    /// store's key records them.
    public let convention: String
    public let warnings: [String]

    /// Reads `dataPath` (once: standard input cannot be read twice) and builds the sequences with
    /// `checkpoint`'s tokenizer and chat template (or `chatTemplatePath`).
    public init(dataPath: String, checkpoint: Checkpoint, sequenceOptions: SequenceOptions, chatTemplatePath: String?,
                templateDate: Date, requireTokenizer: Bool = true) throws {
        let bytes = try DataRecords.contents(of: dataPath)
        let samples = try SampleFile.parse(bytes, source: DataRecords.sourceName(dataPath), fileExtension: DataRecords.fileExtension(dataPath))
        let needsText = requireTokenizer
            || samples.contains { ($0.promptIDs == nil && $0.prompt != nil) || ($0.responseIDs == nil && $0.response != nil) }
        let tokenizer = needsText
            ? try Tokenizer(json: checkpoint.tokenizerJSON, sourceDescription: "\(checkpoint.path): /tokenizer/tokenizer.json") : nil
        let formatting = try ChatFormatting(checkpoint: checkpoint, templatePath: chatTemplatePath, date: templateDate)
        let (sequences, warnings, rendered) = try TrainingSequences(tokenizer: tokenizer, formatting: formatting, options: sequenceOptions,
                                                                    source: dataPath).build(samples)
        self.dataPath = dataPath
        dataSHA256 = SHA256.hex(bytes)
        self.samples = samples
        pairs = AnalysisPipeline.preferencePairs(samples)
        self.sequences = sequences
        sequencesSHA256 = Self.digest(sequences)
        plan = ShardPlan(sequences)
        self.tokenizer = tokenizer
        renderedTemplate = rendered
        convention = "\(sequenceOptions.convention.rawValue) eos=\(sequenceOptions.eos.rawValue) max_length=\(sequenceOptions.resolvedMaxLength.map(String.init) ?? "none")"
        self.warnings = warnings
    }

    /// SHA-256 of the sequences: each as its prompt and response lengths and ids, little-endian.
    static func digest(_ sequences: [ScoringSample]) -> String {
        var bytes: [UInt8] = []
        func append(_ value: Int64) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
        append(Int64(sequences.count))
        for sequence in sequences {
            append(Int64(sequence.promptIDs.count))
            append(Int64(sequence.responseIDs.count))
            for id in sequence.promptIDs + sequence.responseIDs { withUnsafeBytes(of: id.littleEndian) { bytes.append(contentsOf: $0) } }
        }
        return SHA256.hex(Data(bytes))
    }
}

/// Stage 2: a policy (with its adapter, if any) loaded for scoring.
public struct LoadedPolicy {
    public let checkpoint: Checkpoint
    public let model: any TransformerModel
    public let adapter: LoRAAdapter?
    public let warnings: [String]

    public init(checkpoint: Checkpoint, adapter: LoRAAdapter?) throws {
        self.checkpoint = checkpoint
        self.adapter = adapter
        if let adapter {
            let adapted = try ModelLoading.load(checkpoint: checkpoint, adapter: adapter)
            model = adapted.model
            warnings = adapted.warnings
        } else {
            model = try ModelLoading.load(checkpoint: checkpoint)
            warnings = []
        }
    }
}

/// Stages 2–3: an after-policy scored against a before-policy (the base).
public struct PolicyComparison: Sendable {
    public let comparisons: [ResponseComparison]
    /// β and where it came from.
    public let beta: Double
    public let implicitRewards: [ImplicitReward]
    public let warnings: [String]

    /// Both policies' log-probs and the KL, then the implicit reward with β (nil: the β recorded
    /// in the after-checkpoint, else 1).
    /// With `store`, the log-probs and KL are read from it where it has them and committed to it
    /// block by block where it does not (`StageStore`).
    public init(_ data: PreparedData, after: LoadedPolicy, before: LoadedPolicy, resizedVocabulary: Bool, beta: Double?,
                scorer: LogProbScorer, store: StageStore? = nil, progress: ScoringProgress? = nil) throws {
        let (comparisons, storeWarnings) = try Self.compareInBlocks(data, after: after, before: before, resizedVocabulary: resizedVocabulary,
                                                                    scorer: scorer, store: store, progress: progress)
        self.comparisons = comparisons
        var warnings: [String] = storeWarnings
        let addedMass = comparisons.flatMap { ($0.addedRowMass ?? []).compactMap { $0 } }
        if !addedMass.isEmpty {
            let mean = addedMass.reduce(0, +) / Double(addedMass.count)
            warnings.append("the after-policy puts \(String(format: "%.3g", mean)) of its probability on average (at most \(String(format: "%.3g", addedMass.max() ?? 0))) on the output rows the before-policy lacks, over the \(addedMass.count) response positions")
        }
        let recorded = after.checkpoint.provenance.beta
        let resolved = beta ?? recorded ?? 1
        if beta == nil {
            warnings.append(recorded != nil
                ? "β = \(resolved) is the β recorded in \(after.checkpoint.path) (its training KL coefficient); pass --beta to use another"
                : "no --beta given and \(after.checkpoint.path) records none, so β = 1: the implicit reward is the plain log-ratio")
        }
        guard Provenance.isValidBeta(resolved) else {
            throw IRMError("\(after.checkpoint.path): the recorded β is \(resolved); pass --beta with a positive number")
        }
        self.beta = resolved
        implicitRewards = try comparisons.map { try ImplicitReward(after: $0.after.tokens, before: $0.before.tokens, beta: resolved) }
        try Self.requireFinite(implicitRewards, comparisons, data.sequences, after: after.model.source, before: before.model.source)
        self.warnings = warnings
    }

    /// Throws, naming the two checkpoints, the sample and the position, for the first implicit
    /// reward that is not finite, so that no fit downstream meets it as "the target has a
    /// non-finite value". The scorer refuses non-finite log-probs, so what is left is a β so large
    /// that β·Δ overflows float64, or an infinite log-prob read from a score store.
    static func requireFinite(_ rewards: [ImplicitReward], _ comparisons: [ResponseComparison], _ sequences: [ScoringSample],
                              after: String, before: String) throws {
        for (i, reward) in rewards.enumerated() {
            let name = i < sequences.count ? sequences[i].name : "sample \(i + 1)"
            let scored = "the implicit reward of \(after) against \(before)"
            if let p = reward.perToken.firstIndex(where: { $0.map { !$0.isFinite } ?? false }) {
                let a = comparisons[i].after.tokens[p] ?? .nan, b = comparisons[i].before.tokens[p] ?? .nan
                let cause = a.isFinite && b.isFinite ? "β is too large" : "the log-probs are not finite (read from a score store?)"
                throw IRMError("\(name): \(scored) at response position \(p) is \(reward.perToken[p] ?? .nan) (β = \(reward.beta), log π_after = \(a), log π_before = \(b)); expected a finite number: \(cause)")
            }
            if !reward.sum.isFinite {
                throw IRMError("\(name): \(scored), summed over the response, is \(reward.sum) (β = \(reward.beta)); expected a finite number: β is too large")
            }
        }
    }
}

/// Stage 4: the feature table, from the text, the token counts and the before-policy's hidden
/// states (which do not depend on the after-policy, so a drift series computes them once).
public struct FeatureStage: Sendable {
    public let inputs: [FeatureInput]
    public let table: FeatureTable

    /// With `store`, the before-policy's pooled hidden states are read from it where it has them
    /// and committed to it block by block where it does not.
    public init(_ data: PreparedData, before: LoadedPolicy, specification: FeatureSpecification, scorer: LogProbScorer,
                store: StageStore? = nil, progress: ProgressOutput?) throws {
        guard let tokenizer = data.tokenizer else { throw IRMError("features need the tokenizer of the before-policy") }
        let samples = data.samples, scoring = data.sequences, source = data.dataPath
        let references = try samples.map { try Self.optionalText($0, "reference", source: source) }
        let qtypes = try samples.map { try Self.optionalText($0, "qtype", source: source) }
        let (promptStates, responseStates) = try progress.tracked("hidden states", total: scoring.count) {
            try StageStore.pooledHiddenStates(data, under: before, scorer: scorer, store: store, progress: $0)
        }
        var referenceCosines = [Double?](repeating: nil, count: samples.count)
        let referenceRows = references.indices.filter { references[$0].map { !$0.allSatisfy(\.isWhitespace) } ?? false }
        if !referenceRows.isEmpty {
            let referenceStates = try scorer.meanPooledHiddenStates(
                of: referenceRows.map { tokenizer.encode(references[$0] ?? "", addSpecialTokens: true).ids }, under: before.model,
                names: referenceRows.map { "\(scoring[$0].name), reference" })
            for (k, row) in referenceRows.enumerated() {
                referenceCosines[row] = HiddenStateRelevance.cosine(referenceStates[k], responseStates[row])
            }
        }
        var inputs: [FeatureInput] = []
        for (i, sample) in samples.enumerated() {
            inputs.append(FeatureInput(
                prompt: sample.promptText.map(tokenizer.removingSpecialTokens(from:)) ?? tokenizer.decode(scoring[i].promptIDs, skipSpecialTokens: true),
                response: sample.responseText.map(tokenizer.removingSpecialTokens(from:)) ?? tokenizer.decode(scoring[i].responseIDs, skipSpecialTokens: true),
                reference: references[i], qtype: qtypes[i], responseTokenCount: scoring[i].responseIDs.count,
                hiddenStateCosine: HiddenStateRelevance.cosine(promptStates[i], responseStates[i]),
                referenceHiddenStateCosine: referenceCosines[i], numericFields: sample.numericFields, name: scoring[i].name))
        }
        self.inputs = inputs
        progress?.stage("features")
        table = try FeatureExtractor(fittingOn: inputs, specification: specification).extract(inputs)
    }

    static func optionalText(_ sample: Sample, _ name: String, source: String) throws -> String? {
        guard let value = sample.field(name) else { return nil }
        guard let text = value.stringValue else {
            throw IRMError("\(source): \(sample.label): \"\(name)\" should be a string, found \(value.brief)")
        }
        return text
    }
}
