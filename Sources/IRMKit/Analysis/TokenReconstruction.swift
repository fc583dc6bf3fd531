/// Token-level reconstruction of the implicit reward (Marks et al. 2023, §2 of methods.md): which
/// tokens fine-tuning pushed up or down, read off a ridge regression of the per-token log-ratio on
/// token identity.
///
/// Model, over every scored response token t with implicit reward r_t = β·(log π_after − log π_before):
///
///     r_t = b₀ + Σ_k b_k · [token(t) = k] + ε,   k over the K most frequent response tokens,
///
/// minimising Σ_t (r_t − ŷ_t)² + λ Σ_k b_k² with the intercept unpenalised. The design is one-hot,
/// so the solution is closed-form: with n_k occurrences and S_k = Σ_{t∈k} r_t,
///
///     b_k = (S_k − n_k b₀) / (n_k + λ),
///     b₀  = (R − Σ_k n_k S_k / (n_k + λ)) / (N − Σ_k n_k² / (n_k + λ)),
///
/// where N and R are the count and sum over all scored tokens (tokens outside the K have no
/// indicator and inform only b₀). b_k is the token's shrunken mean excess reward: λ pulls rare
/// tokens toward 0. The default λ = 1 is sklearn's `Ridge(alpha=1)`, which Marks et al. use.
public struct TokenReconstruction: Sendable {
    public struct TokenEffect: Sendable, Equatable {
        public let tokenID: Int32
        /// The token as readable text (decoded), for reports.
        public let text: String
        public let count: Int
        /// Mean r_t over the token's occurrences (unshrunk).
        public let meanReward: Double
        /// b_k: the reconstructed per-token utility.
        public let coefficient: Double
    }

    public let lambda: Double
    public let intercept: Double
    /// The K most frequent tokens (count ≥ `minimumCount`), most frequent first, ties by id.
    public let effects: [TokenEffect]
    public let scoredTokenCount: Int

    /// - Parameters:
    ///   - responses: each response's token ids and per-token implicit rewards (nil = unscored).
    ///   - decode: the readable text of a token id.
    public init(responses: [(ids: [Int32], rewards: [Double?])], decode: (Int32) -> String,
                topK: Int = 500, minimumCount: Int = 3, lambda: Double = 1) throws {
        guard lambda >= 0, lambda.isFinite else { throw IRMError("token reconstruction: λ must be ≥ 0, found \(lambda)") }
        var count: [Int32: Int] = [:], sum: [Int32: Double] = [:]
        var total = 0, totalSum = 0.0
        for (index, response) in responses.enumerated() {
            guard response.ids.count == response.rewards.count else {
                throw IRMError("token reconstruction: response \(index) has \(response.ids.count) tokens but \(response.rewards.count) rewards")
            }
            for (id, reward) in zip(response.ids, response.rewards) {
                guard let reward else { continue }
                count[id, default: 0] += 1
                sum[id, default: 0] += reward
                total += 1
                totalSum += reward
            }
        }
        let chosen = count.filter { $0.value >= minimumCount }
            .sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            .prefix(max(topK, 0))
        var numerator = totalSum, denominator = Double(total)
        for (id, n) in chosen {
            let nk = Double(n)
            numerator -= nk * (sum[id] ?? 0) / (nk + lambda)
            denominator -= nk * nk / (nk + lambda)
        }
        // denominator = Σ_{tokens outside the K} 1 + Σ_k n_k λ/(n_k+λ) > 0 unless λ = 0 and every
        // token is indicated; then b₀ is not identified and 0 is used (b_k become plain means).
        let b0 = denominator > 1e-12 ? numerator / denominator : 0
        intercept = b0
        self.lambda = lambda
        scoredTokenCount = total
        effects = chosen.map { id, n in
            let nk = Double(n), s = sum[id] ?? 0
            return TokenEffect(tokenID: id, text: decode(id), count: n, meanReward: s / nk, coefficient: (s - nk * b0) / (nk + lambda))
        }
    }

    /// The tokens fine-tuning pushed up most (largest coefficients first).
    public func pushedUp(_ k: Int) -> [TokenEffect] {
        Array(effects.sorted { $0.coefficient != $1.coefficient ? $0.coefficient > $1.coefficient : $0.tokenID < $1.tokenID }.prefix(k))
    }

    /// The tokens fine-tuning pushed down most (smallest coefficients first).
    public func pushedDown(_ k: Int) -> [TokenEffect] {
        Array(effects.sorted { $0.coefficient != $1.coefficient ? $0.coefficient < $1.coefficient : $0.tokenID < $1.tokenID }.prefix(k))
    }
}

/// How well the token reconstruction recovers a lexicon reward (the Marks et al. utility, where the
/// RM is a word lexicon such as VADER).
public struct LexiconRecovery: Sendable {
    public struct Match: Sendable, Equatable {
        public let word: String
        public let lexiconValue: Double
        public let reconstructed: Double
        /// The reconstruction mapped linearly onto the lexicon's range over the matched words.
        public let rescaled: Double
    }

    public let matches: [Match]
    /// Kendall τ-b between reconstructed and lexicon values over the matched words.
    public let kendall: StatisticOutcome<CorrelationEstimate>
    /// Share of matched words with a non-zero lexicon value whose reconstruction has the same sign.
    public let signAgreement: Double?
    /// Among strongly positive words (lexicon ≥ 2): the share with rescaled ≥ 2 (recovered) and
    /// with rescaled < 0 (badly wrong).
    public let strongPositiveCount: Int
    public let recoveredShare: Double?
    public let badlyWrongShare: Double?

    /// Matches token effects to lexicon entries by the token's text, trimmed of whitespace and the
    /// byte-level/metaspace word markers and lower-cased; a word appearing as several tokens uses the
    /// most frequent. Rescaling is min-max onto the lexicon values of the matched words (Marks et al.
    /// rescale the reconstruction onto the RM's range).
    public init(effects: [TokenReconstruction.TokenEffect], lexicon: (String) -> Double?, bootstrapReplicates: Int = 0, seed: UInt64 = 0) throws {
        var best: [String: (effect: TokenReconstruction.TokenEffect, value: Double)] = [:]
        for effect in effects {
            let word = Self.normalise(effect.text)
            guard !word.isEmpty, let value = lexicon(word) else { continue }
            if let existing = best[word], existing.effect.count >= effect.count { continue }
            best[word] = (effect, value)
        }
        let pairs = best.sorted { $0.key < $1.key }
        let reconstructed = pairs.map(\.value.effect.coefficient), values = pairs.map(\.value.value)
        let (rLow, rHigh) = (reconstructed.min() ?? 0, reconstructed.max() ?? 0)
        let (vLow, vHigh) = (values.min() ?? 0, values.max() ?? 0)
        func rescale(_ r: Double) -> Double {
            rHigh > rLow ? vLow + (r - rLow) / (rHigh - rLow) * (vHigh - vLow) : (vLow + vHigh) / 2
        }
        matches = pairs.map { Match(word: $0.key, lexiconValue: $0.value.value, reconstructed: $0.value.effect.coefficient,
                                    rescaled: rescale($0.value.effect.coefficient)) }
        kendall = matches.count >= 3
            ? try Correlation.kendallTauB(reconstructed, values, bootstrapReplicates: bootstrapReplicates, seed: seed)
            : .undefined(reason: "fewer than 3 response tokens are lexicon words")
        let signed = matches.filter { $0.lexiconValue != 0 }
        signAgreement = signed.isEmpty ? nil
            : Double(signed.filter { ($0.lexiconValue > 0) == ($0.reconstructed > 0) && $0.reconstructed != 0 }.count) / Double(signed.count)
        let strong = matches.filter { $0.lexiconValue >= 2 }
        strongPositiveCount = strong.count
        recoveredShare = strong.isEmpty ? nil : Double(strong.filter { $0.rescaled >= 2 }.count) / Double(strong.count)
        badlyWrongShare = strong.isEmpty ? nil : Double(strong.filter { $0.rescaled < 0 }.count) / Double(strong.count)
    }

    static func normalise(_ text: String) -> String {
        var scalars = Substring(text).unicodeScalars.drop { $0 == "Ġ" || $0 == "▁" || $0.properties.isWhitespace }
        while let last = scalars.last, last.properties.isWhitespace { scalars = scalars.dropLast() }
        return String(String.UnicodeScalarView(scalars)).lowercased()
    }
}
