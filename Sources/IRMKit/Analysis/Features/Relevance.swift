import Foundation

/// Inverse document frequencies fitted on a dataset, for TF-IDF cosines.
///
/// Terms are lower-cased `\w+` runs. With N documents and df(t) documents containing t,
/// idf(t) = ln((1 + N) / (1 + df(t))) + 1 (scikit-learn's smoothed form), so a term seen in no
/// document gets ln(1 + N) + 1 and every weight is positive.
public struct InverseDocumentFrequency: Sendable, Equatable {
    public let documentCount: Int
    private let documentFrequency: [String: Int]
    private let weights: [String: Double]
    private let unseenWeight: Double

    /// Fits on documents given as their word lists.
    public init<Documents: Sequence>(documents: Documents) where Documents.Element == [String] {
        var df: [String: Int] = [:]
        var n = 0
        for words in documents {
            n += 1
            for term in Set(words) { df[term, default: 0] += 1 }
        }
        documentCount = n
        documentFrequency = df
        weights = df.mapValues { log(Double(1 + n) / Double(1 + $0)) + 1 }
        unseenWeight = log(Double(1 + n)) + 1
    }

    /// Fits on the texts of a feature dataset: every response, and every distinct prompt once (a
    /// prompt answered k times would otherwise weigh k times in df).
    public init(inputs: [FeatureInput]) {
        var seenPrompts = Set<String>()
        var texts: [String] = []
        texts.reserveCapacity(inputs.count * 2)
        for input in inputs {
            if seenPrompts.insert(input.prompt).inserted { texts.append(input.prompt) }
            texts.append(input.response)
        }
        self.init(documents: ParallelMap.map(texts) { TextProfile($0).words })
    }

    public func documentFrequency(of term: String) -> Int { documentFrequency[term] ?? 0 }

    public func idf(_ term: String) -> Double { weights[term] ?? unseenWeight }

    /// The cosine of the TF-IDF vectors of two word lists, tf being the raw count:
    /// sum_t a_t b_t / (|a| |b|) with a_t = tf_a(t) idf(t). 0 when either list is empty.
    public func cosine(_ a: [String], _ b: [String]) -> Double {
        let ta = Self.termCounts(a), tb = Self.termCounts(b)
        guard !ta.isEmpty, !tb.isEmpty else { return 0 }
        // Sum in term order: dictionary order changes from run to run (Swift seeds its hashing per
        // process), and a different summation order changes the last bits.
        var dot = 0.0, na = 0.0, nb = 0.0
        for term in ta.keys.sorted() {
            let w = Double(ta[term] ?? 0) * idf(term)
            na += w * w
            if let other = tb[term] { dot += w * Double(other) * idf(term) }
        }
        for term in tb.keys.sorted() {
            let w = Double(tb[term] ?? 0) * idf(term)
            nb += w * w
        }
        return min(max(dot / (na.squareRoot() * nb.squareRoot()), 0), 1)
    }

    private static func termCounts(_ words: [String]) -> [String: Int] {
        var counts: [String: Int] = [:]
        for w in words { counts[w, default: 0] += 1 }
        return counts
    }
}

/// Word-overlap relevance.
public enum ContentWords {
    /// Content words: lower-cased `\w+` runs that contain a letter and are not in `stopwords`.
    public static func contentWords(_ words: [String]) -> Set<String> {
        var set = Set<String>()
        for w in words where !stopwords.contains(w) && w.unicodeScalars.contains(where: { $0.properties.isAlphabetic }) {
            set.insert(w)
        }
        return set
    }

    /// The share of the distinct content words of `source` that occur among the words of `target`;
    /// 0 when `source` has no content word.
    public static func recall(of source: [String], in target: [String]) -> Double {
        let wanted = contentWords(source)
        guard !wanted.isEmpty else { return 0 }
        let present = Set(target)
        return Double(wanted.filter { present.contains($0) }.count) / Double(wanted.count)
    }

    /// English function words, pronouns, auxiliaries and the pieces of common contractions
    /// (wordpunct splits "don't" into "don" and "t").
    public static let stopwords: Set<String> = [
        "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are",
        "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but",
        "by", "can", "could", "d", "did", "do", "does", "doing", "don", "down", "during", "each",
        "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers",
        "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its",
        "itself", "just", "ll", "m", "me", "might", "more", "most", "must", "my", "myself", "no",
        "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours",
        "ourselves", "out", "over", "own", "re", "s", "same", "shall", "she", "should", "so", "some",
        "such", "t", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there",
        "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "us", "ve",
        "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why",
        "will", "with", "would", "you", "your", "yours", "yourself", "yourselves",
    ]
}

/// The cosine of two mean-pooled hidden-state vectors, for the `hidden_state_cosine` features:
/// the engine (`LogProbScorer.meanPooledHiddenStates`) mean-pools the before-policy's final hidden
/// states over the prompt's tokens and over the response's tokens (each text encoded on its own),
/// and the cosine is passed in.
public enum HiddenStateRelevance {
    /// a·b / (|a| |b|), clamped to [-1, 1]; 0 when either vector is zero or their lengths differ.
    /// NaN when a value is not finite: the feature extractor then names the sample, where a 0
    /// would hide hidden states that overflowed.
    public static func cosine(_ a: [Double], _ b: [Double]) -> Double {
        guard a.count == b.count else { return 0 }
        guard a.allSatisfy(\.isFinite), b.allSatisfy(\.isFinite) else { return .nan }
        // The vectors are means of float32 states (|x| < 3.5e38), so no square overflows float64.
        var dot = 0.0, na = 0.0, nb = 0.0
        for i in a.indices {
            dot += a[i] * b[i]
            na += a[i] * a[i]
            nb += b[i] * b[i]
        }
        guard na > 0, nb > 0 else { return 0 }
        return min(max(dot / (na.squareRoot() * nb.squareRoot()), -1), 1)
    }
}
