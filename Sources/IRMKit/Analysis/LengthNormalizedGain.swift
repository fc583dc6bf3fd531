import Foundation

/// Singhal et al.'s (2023, "A Long Way to Go") length-controlled reward gain, NRG: how much of the
/// gain of the after-policy's responses over the before-policy's remains when length is held fixed.
///
/// Responses are bucketed by length in tokens (`width` = 20, as the paper). With m_b^A and m_b^B the
/// mean score of the after- and before-policy's responses in bucket b, and n_b the number of
/// responses in b, over the buckets that hold responses of both policies:
///
///     ΔR  = mean(score | after) − mean(score | before)           (the raw gain)
///     NRG = Σ_b n_b (m_b^A − m_b^B) / Σ_b n_b                     (the length-controlled gain)
///
/// NRG/ΔR near 1 means the gain does not come from length; near 0, that it is all length.
public struct LengthNormalizedGain: Sendable, Equatable {
    public struct Bucket: Sendable, Equatable {
        public let lowerTokens: Int
        public let upperTokens: Int
        public let beforeCount: Int
        public let afterCount: Int
        /// nil when the bucket holds no response of that policy.
        public let beforeMean: Double?
        public let afterMean: Double?
    }

    /// Which score: `implicit_reward`, `reward_model`, `gold`.
    public let score: String
    public let rawGain: Double
    /// nil when no bucket holds responses of both policies.
    public let normalizedGain: Double?
    /// NRG / ΔR; nil when either is undefined or ΔR is 0.
    public var ratio: Double? {
        guard let normalizedGain, rawGain != 0 else { return nil }
        return normalizedGain / rawGain
    }
    public let buckets: [Bucket]
    /// Responses in buckets that hold only one policy's responses (left out of NRG).
    public let unmatchedCount: Int

    public static let defaultWidth = 20

    /// - Parameters:
    ///   - scores: one score per response.
    ///   - tokens: each response's length in tokens.
    ///   - isAfter: true for a response of the after-policy, false for the before-policy's, nil for
    ///     one generated elsewhere (left out).
    public init(score: String, scores: [Double], tokens: [Int], isAfter: [Bool?], width: Int = defaultWidth) throws {
        guard scores.count == tokens.count, tokens.count == isAfter.count else {
            throw IRMError("length-normalised gain: \(scores.count) scores, \(tokens.count) lengths and \(isAfter.count) policy labels; expected one of each per response")
        }
        guard width > 0 else { throw IRMError("length-normalised gain: bucket width must be positive, found \(width)") }
        var sums: [Int: (before: Double, beforeCount: Int, after: Double, afterCount: Int)] = [:]
        var beforeSum = 0.0, beforeCount = 0, afterSum = 0.0, afterCount = 0
        for i in scores.indices {
            guard let after = isAfter[i] else { continue }
            let key = max(tokens[i], 0) / width
            var entry = sums[key] ?? (0, 0, 0, 0)
            if after {
                entry.after += scores[i]
                entry.afterCount += 1
                afterSum += scores[i]
                afterCount += 1
            } else {
                entry.before += scores[i]
                entry.beforeCount += 1
                beforeSum += scores[i]
                beforeCount += 1
            }
            sums[key] = entry
        }
        guard beforeCount > 0, afterCount > 0 else {
            throw IRMError("length-normalised gain: needs responses of both policies; found \(beforeCount) of the before-policy and \(afterCount) of the after-policy")
        }
        self.score = score
        rawGain = afterSum / Double(afterCount) - beforeSum / Double(beforeCount)
        var weighted = 0.0, weight = 0, unmatched = 0
        var buckets: [Bucket] = []
        for key in sums.keys.sorted() {
            guard let entry = sums[key] else { continue }
            let mb = entry.beforeCount > 0 ? entry.before / Double(entry.beforeCount) : nil
            let ma = entry.afterCount > 0 ? entry.after / Double(entry.afterCount) : nil
            buckets.append(Bucket(lowerTokens: key * width, upperTokens: key * width + width - 1, beforeCount: entry.beforeCount,
                                  afterCount: entry.afterCount, beforeMean: mb, afterMean: ma))
            let n = entry.beforeCount + entry.afterCount
            if let mb, let ma {
                weighted += Double(n) * (ma - mb)
                weight += n
            } else {
                unmatched += n
            }
        }
        self.buckets = buckets
        normalizedGain = weight > 0 ? weighted / Double(weight) : nil
        unmatchedCount = unmatched
    }
}
