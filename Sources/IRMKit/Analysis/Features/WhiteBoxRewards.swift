/// One sample as the feature layer sees it.
public struct FeatureInput: Sendable, Equatable {
    public var prompt: String
    public var response: String
    /// A reference answer; with it (and `qtype` closed or absent) the item is closed-ended.
    public var reference: String?
    /// "open" or "closed" (also accepted, any case: "open-ended", "closed-ended", and Kim & Seo's
    /// "constrained" for closed). nil: closed-ended exactly when there is a reference.
    public var qtype: String?
    /// The response's length in the scored model's tokenizer; the token-length features need it
    /// for every sample and are skipped when no sample has it.
    public var responseTokenCount: Int?
    /// The cosine of the before-policy's mean-pooled final hidden states of prompt and response
    /// (`HiddenStateRelevance`), when the engine computed them.
    public var hiddenStateCosine: Double?
    /// The same cosine between reference and response, for closed-ended items (ignored, and may be
    /// nil, for open-ended ones).
    public var referenceHiddenStateCosine: Double?
    /// The sample's numeric data fields, for features files that list `numeric_fields`.
    public var numericFields: [String: Double]
    /// Names the sample in messages, e.g. `data.jsonl: line 12 (id "q7", chosen)`; nil: `sample N`
    /// (its 1-based place among the inputs).
    public var name: String?

    public init(prompt: String, response: String, reference: String? = nil, qtype: String? = nil,
                responseTokenCount: Int? = nil, hiddenStateCosine: Double? = nil,
                referenceHiddenStateCosine: Double? = nil, numericFields: [String: Double] = [:], name: String? = nil) {
        self.prompt = prompt
        self.response = response
        self.reference = reference
        self.qtype = qtype
        self.responseTokenCount = responseTokenCount
        self.hiddenStateCosine = hiddenStateCosine
        self.referenceHiddenStateCosine = referenceHiddenStateCosine
        self.numericFields = numericFields
        self.name = name
    }

    /// Whether the item is closed-ended: it has a non-blank reference and its qtype is closed or
    /// absent. A "closed" item without a reference is treated as open-ended.
    public func isClosedEnded() throws -> Bool {
        let hasReference = reference.map { !$0.allSatisfy(\.isWhitespace) } ?? false
        guard let qtype else { return hasReference }
        switch qtype.lowercased() {
        case "open", "open-ended", "open_ended": return false
        case "closed", "closed-ended", "closed_ended", "constrained": return hasReference
        default:
            throw IRMError("qtype \"\(qtype)\" is not recognised; expected \"open\" or \"closed\" (or leave it out)")
        }
    }
}

/// Kim & Seo's cut of a response before measuring it: strip spaces and newlines at both ends, cut
/// at the earliest role marker or stop string, and strip again (reward_model.py,
/// `get_length_incentive`). Matching is exact and case-sensitive, on Unicode scalars.
public struct ResponseCut: Sendable, Equatable {
    public var markers: [String]

    /// The stop strings Kim & Seo cut at besides role markers.
    public static let stopStrings = ["\n\n\n\n", "\n\n--", "\n\n____"]
    /// Role markers of common chat templates (their code uses the template's roles).
    public static let defaultRoleMarkers = [
        "Human:", "Assistant:", "USER:", "ASSISTANT:", "### Instruction:", "### Response:",
        "<|im_start|>", "<|im_end|>", "<|endoftext|>", "</s>",
    ]
    public static let kimSeo = ResponseCut(markers: defaultRoleMarkers + stopStrings)

    private let patterns: [[Unicode.Scalar]]
    /// The first scalars of the markers, for a quick reject of most positions.
    private let firstScalars: [Unicode.Scalar]

    public init(markers: [String]) {
        self.markers = markers
        patterns = markers.map { Array($0.unicodeScalars) }.filter { !$0.isEmpty }
        firstScalars = Array(Set(patterns.map { $0[0] })).sorted { $0.value < $1.value }
    }

    public static func == (a: ResponseCut, b: ResponseCut) -> Bool { a.markers == b.markers }

    /// The cut text, and whether a marker was found.
    public func apply(_ text: String) -> (text: String, cut: Bool) {
        let (scalars, cut) = apply(Array(text.unicodeScalars))
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return (String(view), cut)
    }

    func apply(_ scalars: [Unicode.Scalar]) -> (ArraySlice<Unicode.Scalar>, Bool) {
        let stripped = Self.strip(scalars[...])
        var i = stripped.startIndex
        while i < stripped.endIndex {
            if firstScalars.contains(stripped[i]) {
                for m in patterns where m[0] == stripped[i] && i + m.count <= stripped.endIndex {
                    if stripped[i..<(i + m.count)].elementsEqual(m) {
                        return (Self.strip(stripped[stripped.startIndex..<i]), true)
                    }
                }
            }
            i += 1
        }
        return (stripped, false)
    }

    /// Python's `str.strip("\n ")`.
    private static func strip(_ s: ArraySlice<Unicode.Scalar>) -> ArraySlice<Unicode.Scalar> {
        var lo = s.startIndex, hi = s.endIndex
        while lo < hi, s[lo] == "\n" || s[lo] == " " { lo += 1 }
        while hi > lo, s[hi - 1] == "\n" || s[hi - 1] == " " { hi -= 1 }
        return s[lo..<hi]
    }
}

/// Marks et al.'s utility reward model (reward_class.py, `UtilityValuesRewardClass`):
/// R(text) = clip( Σ_w VADER[w] / 5, −10, 10 ) over the lower-cased words w of the text
/// (`VaderLexicon.utilityWords(in:)`), unlisted words scoring 0.
public struct VaderUtilityReward: Sendable {
    public let lexicon: VaderLexicon

    public init(lexicon: VaderLexicon = .shared) { self.lexicon = lexicon }

    public func reward(for text: String) -> Double {
        min(max(lexicon.sentiment(of: text).sum / 5, -10), 10)
    }

    /// The rewards of the responses.
    public func rewards(for inputs: [FeatureInput]) -> [Double] {
        inputs.map { reward(for: $0.response) }
    }
}

/// Kim & Seo's white-box proxy reward (EMNLP 2024; reward_model.py), with a lexical relevance.
///
/// For a response cut by `ResponseCut.kimSeo`, LI = wordpunct tokens / 100 and RP = distinct /
/// all wordpunct trigrams (1 without trigrams). Then
/// - open-ended: s = LI × QR, QR the relevance of the prompt to the (uncut) response;
/// - closed-ended: s = RAR × 5.12 / 3.5, RAR the relevance of the reference to the response
///   (their linear map of a contriever score in [0, 3.5] onto [0, max length / 100 = 5.12]);
/// - reward = s × RP.
///
/// Kim & Seo's relevance is a contriever embedding dot product. irm has no such model, so the
/// relevance is the TF-IDF cosine (IDF fitted on the same inputs) by default, or the
/// before-policy's hidden-state cosine when the engine supplied it. Both lie in [0, 1] (the
/// hidden-state cosine in [−1, 1]), whereas contriever scores reach about 3.5, so the closed-ended
/// branch is on a smaller scale than in the paper.
public struct KimSeoReward: Sendable {
    public enum Relevance: String, Sendable, CaseIterable {
        case tfidfCosine = "tfidf"
        case hiddenStateCosine = "hidden-state"
    }

    public var relevance: Relevance
    public var cut: ResponseCut

    public init(relevance: Relevance = .tfidfCosine, cut: ResponseCut = .kimSeo) {
        self.relevance = relevance
        self.cut = cut
    }

    /// The parts of one sample's reward.
    public struct Components: Sendable, Equatable {
        public var lengthIncentive: Double
        public var repetitionPenalty: Double
        public var relevance: Double
        public var closedEnded: Bool
        public var reward: Double
    }

    /// Rewards for `inputs`, fitting the IDF on them.
    public func rewards(for inputs: [FeatureInput]) throws -> [Double] {
        let idf = InverseDocumentFrequency(inputs: inputs)
        return try inputs.enumerated().map { i, input in
            do { return try components(for: input, idf: idf).reward } catch let error as IRMError {
                throw IRMError("kim-seo reward, sample \(i + 1): \(error.message)")
            }
        }
    }

    public func components(for input: FeatureInput, idf: InverseDocumentFrequency) throws -> Components {
        let (cutScalars, _) = cut.apply(Array(input.response.unicodeScalars))
        let (li, rp) = Self.lengthAndRepetition(Array(cutScalars))
        let closed = try input.isClosedEnded()
        let rel: Double
        switch relevance {
        case .tfidfCosine:
            let source = closed ? (input.reference ?? "") : input.prompt
            rel = idf.cosine(TextProfile(source).words, TextProfile(input.response).words)
        case .hiddenStateCosine:
            let value = closed ? input.referenceHiddenStateCosine : input.hiddenStateCosine
            guard let value, value.isFinite else {
                throw IRMError("the hidden-state relevance needs \(closed ? "referenceHiddenStateCosine" : "hiddenStateCosine"), which is missing or not finite")
            }
            rel = value
        }
        let s = closed ? rel * (5.12 / 3.5) : li * rel
        return Components(lengthIncentive: li, repetitionPenalty: rp, relevance: rel, closedEnded: closed, reward: s * rp)
    }

    /// LI and RP of already-cut text, given its wordpunct spans. Tokens are compared as written
    /// (case kept), through their scalars, without building strings.
    static func lengthAndRepetition(_ scalars: [Unicode.Scalar], spans: [TokenSpan]) -> (Double, Double) {
        var table: [ArraySlice<Unicode.Scalar>: Int32] = [:]
        table.reserveCapacity(spans.count)
        let ids = spans.map { span -> Int32 in
            let key = scalars[span.start..<span.end]
            if let id = table[key] { return id }
            let id = Int32(table.count)
            table[key] = id
            return id
        }
        return (Double(spans.count) / 100, RepetitionMeasures.distinctRatio(ids: ids, n: 3))
    }

    static func lengthAndRepetition(_ scalars: [Unicode.Scalar]) -> (Double, Double) {
        lengthAndRepetition(scalars, spans: WordPunctTokenizer.spans(of: scalars))
    }
}

/// The white-box reward models that `irm analyze --reward` can name.
public enum WhiteBoxReward: String, CaseIterable, Sendable {
    case vaderUtility = "vader-utility"
    case kimSeo = "kim-seo"

    /// The reward of every sample's response.
    public func rewards(for inputs: [FeatureInput]) throws -> [Double] {
        switch self {
        case .vaderUtility: VaderUtilityReward().rewards(for: inputs)
        case .kimSeo: try KimSeoReward().rewards(for: inputs)
        }
    }
}
