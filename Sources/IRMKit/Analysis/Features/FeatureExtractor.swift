import Foundation

/// A feature that was asked for but not computed, and why.
public struct SkippedFeature: Sendable, Equatable {
    public let name: String
    public let reason: String
}

/// The features of a dataset: one column per feature, one row per sample, in a `FeatureMatrix`
/// (column-major: feature j of sample i is `matrix.values[i + j * matrix.rowCount]`), with each
/// column's definition and group for the attribution stage.
public struct FeatureTable: Sendable {
    public let matrix: FeatureMatrix
    /// One definition per column, in column order.
    public let definitions: [FeatureDefinition]
    /// Built-ins left out because their inputs were not supplied.
    public let skipped: [SkippedFeature]

    public var names: [String] { matrix.names }
    public var groups: [FeatureGroup] { definitions.map(\.group) }

    /// The values of the feature called `name`, or nil.
    public func column(named name: String) -> [Double]? {
        matrix.index(of: name).map { Array(matrix.column($0)) }
    }
}

/// Turns samples into named features in two passes: `init(fittingOn:specification:)` fits the
/// dataset-level state (the IDF of prompts and responses), then `extract(_:)` computes the table.
///
/// Every built-in is finite for every text by construction; the conventions for empty texts are
/// those of the individual measures (docs/features.md). A value that is not finite anyway (an
/// input cosine, or a bug) is an error naming the feature and the sample, never replaced by 0.
public struct FeatureExtractor {
    public let specification: FeatureSpecification
    public let idf: InverseDocumentFrequency
    public let lexicon: VaderLexicon
    public let cut: ResponseCut
    private let regexes: [LinearRegex]

    /// Validates `specification` and fits the IDF on `inputs` (every response and each distinct
    /// prompt once).
    public init(fittingOn inputs: [FeatureInput], specification: FeatureSpecification = .allBuiltIns,
                lexicon: VaderLexicon = .shared, cut: ResponseCut = .kimSeo) throws {
        try self.init(idf: InverseDocumentFrequency(inputs: inputs), specification: specification,
                      lexicon: lexicon, cut: cut)
    }

    /// Uses an IDF fitted elsewhere (for instance on a larger corpus).
    public init(idf: InverseDocumentFrequency, specification: FeatureSpecification = .allBuiltIns,
                lexicon: VaderLexicon = .shared, cut: ResponseCut = .kimSeo) throws {
        try specification.validate(source: "feature specification")
        self.specification = specification
        self.idf = idf
        self.lexicon = lexicon
        self.cut = cut
        self.regexes = try specification.regexFeatures.map { try $0.compiled(source: "feature specification") }
    }

    /// The feature table of `inputs`.
    ///
    /// Built-ins that need per-sample inputs (`FeatureRequirement`) are computed when every sample
    /// has them and skipped (listed in `skipped`) when none has; some-but-not-all is an error, as
    /// is an unknown qtype or a missing numeric field.
    public func extract(_ inputs: [FeatureInput]) throws -> FeatureTable {
        var closed: [Bool] = []
        closed.reserveCapacity(inputs.count)
        func label(_ i: Int) -> String { inputs[i].name ?? "sample \(i + 1)" }
        for (i, input) in inputs.enumerated() {
            do { closed.append(try input.isClosedEnded()) } catch let error as IRMError {
                throw IRMError("features: \(label(i)): \(error.message)")
            }
        }
        var skipped: [SkippedFeature] = []
        var builtIns: [BuiltinFeature] = []
        for feature in specification.selectedBuiltIns {
            if let requirement = feature.definition.requirement {
                if let reason = try Self.skipReason(requirement, inputs: inputs, closed: closed) {
                    skipped.append(SkippedFeature(name: feature.rawValue, reason: reason))
                    continue
                }
            }
            builtIns.append(feature)
        }

        let n = inputs.count
        let p = builtIns.count + regexes.count + specification.numericFields.count
        var values = [Double](repeating: 0, count: n * p)
        let computer = BuiltinComputer(idf: idf, lexicon: lexicon, cut: cut)
        let rows = ParallelMap.map(Array(zip(inputs, closed))) { computer.values(for: $0.0, closedEnded: $0.1) }
        for (i, input) in inputs.enumerated() {
            let row = rows[i]
            var j = 0
            for feature in builtIns {
                values[i + j * n] = try Self.checked(row[feature], feature, sample: label(i))
                j += 1
            }
            for (k, regex) in regexes.enumerated() {
                let feature = specification.regexFeatures[k]
                let text: String
                switch feature.target {
                case .response: text = input.response
                case .prompt: text = input.prompt
                case .reference: text = input.reference ?? ""
                }
                values[i + j * n] = Double(regex.numberOfMatches(in: text))
                j += 1
            }
            for field in specification.numericFields {
                guard let value = input.numericFields[field] else {
                    throw IRMError("features: \(label(i)) has no numeric field \"\(field)\" (named in numeric_fields); every sample needs a number there")
                }
                guard value.isFinite else {
                    throw IRMError("features: \(label(i)): numeric field \"\(field)\" is \(value); expected a finite number")
                }
                values[i + j * n] = value
                j += 1
            }
        }

        var definitions = builtIns.map(\.definition)
        for feature in specification.regexFeatures {
            let flags = feature.caseInsensitive ? ", case-insensitive" : ""
            definitions.append(FeatureDefinition(
                name: feature.name, group: .custom,
                definition: "Non-overlapping matches of /\(feature.pattern)/ in the \(feature.target.rawValue)\(flags).",
                unit: "matches"))
        }
        for field in specification.numericFields {
            definitions.append(FeatureDefinition(name: field, group: .custom,
                                                 definition: "The numeric data field \"\(field)\".", unit: "as in the data"))
        }
        let matrix = try FeatureMatrix(names: definitions.map(\.name), columnMajor: values, rowCount: n)
        return FeatureTable(matrix: matrix, definitions: definitions, skipped: skipped)
    }

    /// `value`, when finite. Every built-in is finite for every text by its definition
    /// (docs/features.md), so anything else is a bug, reported rather than replaced by 0.
    static func checked(_ value: Double, _ feature: BuiltinFeature, sample: String) throws -> Double {
        guard value.isFinite else {
            throw IRMError("features: \(sample): \(feature.rawValue) is \(value); every built-in feature is finite by its definition (docs/features.md), so this is a bug in irm: please report it")
        }
        return value
    }

    /// Why a built-in with `requirement` cannot be computed for `inputs`, nil when it can; throws
    /// when some samples have the input and others lack it, or when a sample's input cosine is not
    /// finite (before-policy hidden states that overflowed: never a reason to skip quietly).
    private static func skipReason(_ requirement: FeatureRequirement, inputs: [FeatureInput], closed: [Bool]) throws -> String? {
        let anyClosed = closed.contains(true)
        let needing: [Int]
        let field: String
        switch requirement {
        case .referenceAnswers:
            return anyClosed ? nil : "no sample is closed-ended (none has a reference answer)"
        case .tokenCount:
            needing = Array(inputs.indices)
            field = "responseTokenCount"
        case .hiddenStates:
            needing = Array(inputs.indices)
            field = "hiddenStateCosine"
        case .referenceHiddenStates:
            guard anyClosed else { return "no sample is closed-ended (none has a reference answer)" }
            needing = inputs.indices.filter { closed[$0] }
            field = "referenceHiddenStateCosine"
        }
        func value(_ i: Int) -> Double? {
            switch requirement {
            case .hiddenStates: inputs[i].hiddenStateCosine
            case .referenceHiddenStates: inputs[i].referenceHiddenStateCosine
            default: nil
            }
        }
        let label = { (i: Int) in inputs[i].name ?? "sample \(i + 1)" }
        if let bad = needing.first(where: { value($0).map { !$0.isFinite } ?? false }), let cosine = value(bad) {
            let feature = requirement == .hiddenStates ? BuiltinFeature.hiddenStateCosine : .referenceHiddenStateCosine
            throw IRMError("features: \(label(bad)): \(feature.rawValue) is \(cosine) (its input \(field)); expected a finite cosine")
        }
        let missing = needing.filter { i in
            switch requirement {
            case .tokenCount: inputs[i].responseTokenCount == nil
            default: value(i) == nil
            }
        }
        if missing.isEmpty { return nil }
        if missing.count == needing.count { return "no sample has \(field)" }
        throw IRMError("features: \(label(missing[0])) lacks \(field), which \(needing.count - missing.count) of \(needing.count) samples have; supply it for every sample or for none")
    }
}

/// The built-in values of one sample, indexed by feature.
struct BuiltinValues {
    private var values = [Double](repeating: 0, count: BuiltinFeature.allCases.count)

    subscript(feature: BuiltinFeature) -> Double {
        get { values[BuiltinValues.index[feature] ?? 0] }
        set { if let i = BuiltinValues.index[feature] { values[i] = newValue } }
    }

    private static let index: [BuiltinFeature: Int] = Dictionary(
        uniqueKeysWithValues: BuiltinFeature.allCases.enumerated().map { ($1, $0) })
}

/// Computes every built-in feature of one sample; shared by the worker threads.
struct BuiltinComputer: Sendable {
    let idf: InverseDocumentFrequency
    let lexicon: VaderLexicon
    let cut: ResponseCut

    /// Every built-in feature of one sample, whether selected or not.
    func values(for input: FeatureInput, closedEnded: Bool) -> BuiltinValues {
        var v = BuiltinValues()
        let response = TextProfile(input.response)
        let words = response.words

        // Length and Kim & Seo's repetition penalty on the cut response.
        if let tokens = input.responseTokenCount {
            v[.responseTokens] = Double(max(tokens, 0))
            v[.logResponseTokens] = log1p(Double(max(tokens, 0)))
        }
        v[.responseWords] = Double(words.count)
        v[.responseChars] = Double(response.scalars.count)
        let (cutScalars, wasCut) = cut.apply(response.scalars)
        // Stripping spaces and newlines does not change the tokens, so an uncut response reuses its spans.
        let (li, rp) = wasCut ? KimSeoReward.lengthAndRepetition(Array(cutScalars))
            : KimSeoReward.lengthAndRepetition(response.scalars, spans: response.spans)
        v[.lengthIncentive] = li
        v[.uniqueTrigramRatio] = rp

        let (ids, distinct) = RepetitionMeasures.interned(words)
        v[.distinct1] = words.isEmpty ? 1 : Double(distinct) / Double(words.count)
        v[.distinct2] = RepetitionMeasures.distinctRatio(ids: ids, n: 2)
        v[.longestRepeatedNGram] = Double(RepetitionMeasures.longestRepeatedNGram(ids: ids))

        // Relevance.
        let promptWords = TextProfile(input.prompt).words
        v[.promptWordRecall] = ContentWords.recall(of: promptWords, in: words)
        v[.promptTfidfCosine] = idf.cosine(promptWords, words)
        // nil: not supplied, and then the feature is skipped (`skipReason`), so 0 is never reported.
        v[.hiddenStateCosine] = input.hiddenStateCosine ?? 0
        if closedEnded {
            let referenceWords = TextProfile(input.reference ?? "").words
            v[.closedEnded] = 1
            v[.referenceWordRecall] = ContentWords.recall(of: referenceWords, in: words)
            v[.referenceTfidfCosine] = idf.cosine(referenceWords, words)
            v[.referenceHiddenStateCosine] = input.referenceHiddenStateCosine ?? 0
        }

        // Format.
        let format = FormatCounts(scalars: response.scalars)
        v[.listItems] = Double(format.listItems)
        v[.numberedItems] = Double(format.numberedItems)
        v[.markdownHeaders] = Double(format.headers)
        v[.boldSpans] = Double(format.boldSpans)
        v[.codeBlocks] = Double(format.codeBlocks)
        v[.lineBreaks] = Double(format.lineBreaks)
        v[.paragraphs] = Double(format.paragraphs)

        // Sentiment.
        let sentiment = lexicon.sentiment(of: response.scalars)
        v[.vaderSum] = sentiment.sum
        v[.positiveWords] = Double(sentiment.positive)
        v[.negativeWords] = Double(sentiment.negative)

        // Tone.
        let tone = PhraseCounter.tone.counts(in: words)
        v[.refusalMarkers] = Double(tone[0])
        v[.apologyMarkers] = Double(tone[1])
        v[.hedgingMarkers] = Double(tone[2])
        if !words.isEmpty {
            v[.firstPersonRate] = Double(tone[3]) / Double(words.count)
            v[.secondPersonRate] = Double(tone[4]) / Double(words.count)
        }
        let runs = PunctuationRuns.count(response.scalars)
        v[.questions] = Double(runs.questions)
        v[.exclamations] = Double(runs.exclamations)

        // Readability.
        let sentences = Readability.sentenceCount(response.scalars)
        if !words.isEmpty, sentences > 0 {
            v[.wordsPerSentence] = Double(words.count) / Double(sentences)
            v[.fleschReadingEase] = Readability.fleschReadingEase(words: words, sentences: sentences)
        }

        // Ending.
        v[.endsCleanly] = Ending.endsCleanly(response.scalars) ? 1 : 0
        v[.hasStopMarker] = wasCut ? 1 : 0
        return v
    }
}
