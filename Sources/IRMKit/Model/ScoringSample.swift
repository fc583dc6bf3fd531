import Foundation

/// One (prompt, response) pair to score, as token ids. The prompt's ids already include whatever
/// the tokenizer's post-processor adds (Llama's `<s>`); the response's ids are its text tokenised
/// without special tokens. The scored sequence is `promptIDs + responseIDs`.
public struct ScoringSample: Sendable, Equatable {
    /// Names the sample in error messages, e.g. `line 12 (id "q7", chosen)`.
    public var name: String
    public var promptIDs: [Int32]
    public var responseIDs: [Int32]

    public init(name: String, promptIDs: [Int32], responseIDs: [Int32]) {
        self.name = name
        self.promptIDs = promptIDs
        self.responseIDs = responseIDs
    }

    public var tokenCount: Int { promptIDs.count + responseIDs.count }
}

/// The log-probs of one response under one policy.
public struct ResponseLogProbs: Sendable, Equatable {
    /// `log p(response[j] | prompt, response[..<j])`, one per response token; `nil` for a token with
    /// no context at all (the first token of a sequence without prompt or BOS), which is not scored.
    public var tokens: [Double?]
    /// Sum of the scored tokens' log-probs, accumulated in Double in token order.
    public var sum: Double
    /// `sum` divided by the number of scored tokens; `nil` when none was scored.
    public var mean: Double?

    public init(tokens: [Double?]) {
        self.tokens = tokens
        var total = 0.0, count = 0
        for case let value? in tokens {
            total += value
            count += 1
        }
        sum = total
        mean = count > 0 ? total / Double(count) : nil
    }

    /// Number of tokens that have a log-prob.
    public var scoredCount: Int { tokens.reduce(0) { $0 + ($1 == nil ? 0 : 1) } }
}

/// The log-probs of one response under two policies, and the KL divergence between them at each
/// response position.
public struct ResponseComparison: Sendable, Equatable {
    public var after: ResponseLogProbs
    public var before: ResponseLogProbs
    /// `KL(after ‖ before) = Σ_v p_after(v) (log p_after(v) - log p_before(v))` over the full output
    /// vocabulary, at the position that predicts each response token; `nil` where that token has
    /// no context.
    public var kl: [Double?]
    /// Sum of `kl` over the scored tokens: the KL of the two policies along this response's prefix path.
    public var klSum: Double
    /// When the after-policy has more output rows than the before-policy (added tokens): at each
    /// position, the after-policy's probability on those rows. `kl` is then over the shared rows,
    /// each distribution renormalised over them. nil when the two have the same rows.
    public var addedRowMass: [Double?]?

    public init(after: ResponseLogProbs, before: ResponseLogProbs, kl: [Double?], addedRowMass: [Double?]? = nil) {
        self.after = after
        self.before = before
        self.kl = kl
        self.addedRowMass = addedRowMass
        var total = 0.0
        for case let value? in kl { total += value }
        klSum = total
    }
}
