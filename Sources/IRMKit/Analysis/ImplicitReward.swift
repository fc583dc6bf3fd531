/// The implicit reward of a fine-tuned policy on one response (DPO, Rafailov et al. 2023, eq. 5):
///
///     r_t   = β · (log π_after(y_t | x, y_<t) − log π_before(y_t | x, y_<t))     per response token
///     sum   = Σ_t r_t                                                          (DPO's definition)
///     mean  = sum / T                                                          (length-normalised)
///
/// in nats, where T counts the scored response tokens. The prompt-only term β·log Z(x) is omitted:
/// it cancels between responses to the same prompt, so absolute values are comparable only within a
/// prompt, while differences, correlations and regressions on per-prompt-centred data are exact.
public struct ImplicitReward: Sendable, Equatable {
    /// How a sequence reward is formed from the per-token log-ratios.
    public enum Aggregation: String, Sendable, CaseIterable {
        case sum, mean
    }

    public let beta: Double
    /// β·(log π_after − log π_before) per response token; nil where a token could not be scored
    /// (no context at all), in which case it is excluded from `sum`, `mean` and `scoredTokenCount`.
    public let perToken: [Double?]
    public let sum: Double
    /// nil for a response with no scored token (an empty response).
    public let mean: Double?
    public let scoredTokenCount: Int

    /// Combines per-token log-probs of the same response under the two policies. Both arrays must
    /// have one entry per response token.
    public init(after: [Double?], before: [Double?], beta: Double) throws {
        guard after.count == before.count else {
            throw IRMError("implicit reward: \(after.count) log-probs under the after-policy but \(before.count) under the before-policy for the same response")
        }
        guard beta.isFinite, beta > 0 else {
            throw IRMError("implicit reward: β must be a positive number, found \(beta)")
        }
        self.beta = beta
        var perToken: [Double?] = []
        perToken.reserveCapacity(after.count)
        var sum = 0.0
        var scored = 0
        for (a, b) in zip(after, before) {
            if let a, let b {
                let r = beta * (a - b)
                perToken.append(r)
                sum += r
                scored += 1
            } else {
                perToken.append(nil)
            }
        }
        self.perToken = perToken
        self.sum = sum
        self.scoredTokenCount = scored
        self.mean = scored > 0 ? sum / Double(scored) : nil
    }

    /// The sequence-level value for an aggregation; an empty response has mean 0 by convention
    /// (it is flagged separately in reports).
    public func value(_ aggregation: Aggregation) -> Double {
        switch aggregation {
        case .sum: sum
        case .mean: mean ?? 0
        }
    }
}
