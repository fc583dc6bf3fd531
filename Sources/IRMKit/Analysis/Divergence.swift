import Foundation

/// How the implicit reward of a fine-tuned policy diverges from the reward model (RM) it was trained
/// against, and from a gold score when one is given. Every statistic is computed over the same
/// samples, in the same order.
public struct Divergence: Sendable {
    /// A pair of samples that answer the same prompt, the first preferred by the data.
    public struct Pair: Sendable, Equatable {
        public let chosen: Int
        public let rejected: Int
        public init(chosen: Int, rejected: Int) {
            self.chosen = chosen
            self.rejected = rejected
        }
    }

    public struct Inputs: Sendable {
        public var implicitReward: [Double]
        public var rewardModel: [Double]
        public var gold: [Double]?
        public var pairs: [Pair]
        public var features: FeatureMatrix
        /// Response length in tokens, for the length-controlled view.
        public var responseTokens: [Int]
        public var bootstrapReplicates: Int
        public var seed: UInt64
        public var topK: Int

        public init(implicitReward: [Double], rewardModel: [Double], gold: [Double]?, pairs: [Pair], features: FeatureMatrix,
                    responseTokens: [Int], bootstrapReplicates: Int = 1000, seed: UInt64 = 0, topK: Int = 10) {
            self.implicitReward = implicitReward
            self.rewardModel = rewardModel
            self.gold = gold
            self.pairs = pairs
            self.features = features
            self.responseTokens = responseTokens
            self.bootstrapReplicates = bootstrapReplicates
            self.seed = seed
            self.topK = topK
        }
    }

    /// Pearson, Spearman and Kendall τ-b between two scores.
    public struct CorrelationSet: Sendable {
        public let first: String
        public let second: String
        public let pearson: StatisticOutcome<CorrelationEstimate>
        public let spearman: StatisticOutcome<CorrelationEstimate>
        public let kendall: StatisticOutcome<CorrelationEstimate>
    }

    /// One feature's standardised coefficient under both targets and their gap, z(implicit) − z(RM).
    public struct CoefficientGap: Sendable {
        public let feature: String
        public let implicitCoefficient: Double
        public let rewardModelCoefficient: Double
        /// implicit − RM, in standard deviations of the target per standard deviation of the feature.
        public let gap: Double
        public let confidenceLower: Double
        public let confidenceUpper: Double
        /// The gap's HC3-robust two-sided p-value (nil when HC3 is undefined).
        public let robustPValue: Double?
        public let pValue: Double
    }

    /// A sample where the two rewards disagree most, in standard units.
    public struct Disagreement: Sendable {
        public let index: Int
        public let implicitZ: Double
        public let rewardModelZ: Double
        public var difference: Double { implicitZ - rewardModelZ }
    }

    /// Response-length buckets (20 tokens wide, as Singhal et al.) and what remains of the
    /// association once length is held fixed.
    public struct LengthControl: Sendable {
        public struct Bucket: Sendable {
            public let lowerTokens: Int
            public let upperTokens: Int
            public let count: Int
            public let meanImplicitZ: Double
            public let meanRewardModelZ: Double
        }
        public static let bucketWidth = 20
        public let buckets: [Bucket]
        /// Share of each score's variance that lies between length buckets (η²).
        public let implicitVarianceExplainedByLength: Double
        public let rewardModelVarianceExplainedByLength: Double
        /// Pearson correlation of the two scores after subtracting each bucket's means.
        public let withinBucketCorrelation: StatisticOutcome<CorrelationEstimate>
    }

    public let implicitVersusRewardModel: CorrelationSet
    public let implicitVersusGold: CorrelationSet?
    public let rewardModelVersusGold: CorrelationSet?
    /// Strict accuracy on the data's preference pairs (a tie counts as wrong, as in RewardBench).
    public let implicitPairAccuracy: StatisticOutcome<PairAccuracy>?
    public let rewardModelPairAccuracy: StatisticOutcome<PairAccuracy>?
    public let goldPairAccuracy: StatisticOutcome<PairAccuracy>?
    /// How often the implicit reward and the RM order a pair the same way.
    public let pairAgreement: StatisticOutcome<PairAgreement>?
    /// Cosine between the standardised coefficient vectors of the two fits (features both fits kept).
    public let coefficientCosine: Double?
    public let coefficientGaps: [CoefficientGap]
    /// The regression of z(implicit) − z(RM) on the features: what the policy learned that the RM
    /// did not ask for (positive coefficients), and the reverse (negative ones).
    public let differenceFit: StatisticOutcome<LeastSquaresFit>
    public let topDisagreements: [Disagreement]
    public let lengthControl: LengthControl

    public init(_ inputs: Inputs) throws {
        let n = inputs.implicitReward.count
        guard inputs.rewardModel.count == n, inputs.features.rowCount == n, inputs.responseTokens.count == n,
              inputs.gold.map({ $0.count == n }) ?? true else {
            throw IRMError("divergence: the implicit reward, RM scores, gold scores, features and lengths must describe the same \(n) samples")
        }
        for pair in inputs.pairs where !(0..<n).contains(pair.chosen) || !(0..<n).contains(pair.rejected) {
            throw IRMError("divergence: pair (\(pair.chosen), \(pair.rejected)) refers to a sample outside 0..<\(n)")
        }
        let b = inputs.bootstrapReplicates, seed = inputs.seed
        func correlations(_ x: [Double], _ y: [Double], _ first: String, _ second: String) throws -> CorrelationSet {
            CorrelationSet(first: first, second: second,
                           pearson: try Correlation.pearson(x, y, bootstrapReplicates: b, seed: seed),
                           spearman: try Correlation.spearman(x, y, bootstrapReplicates: b, seed: seed),
                           kendall: try Correlation.kendallTauB(x, y, bootstrapReplicates: b, seed: seed))
        }
        implicitVersusRewardModel = try correlations(inputs.implicitReward, inputs.rewardModel, "implicit reward", "reward model")
        if let gold = inputs.gold {
            implicitVersusGold = try correlations(inputs.implicitReward, gold, "implicit reward", "gold")
            rewardModelVersusGold = try correlations(inputs.rewardModel, gold, "reward model", "gold")
        } else {
            implicitVersusGold = nil
            rewardModelVersusGold = nil
        }

        if inputs.pairs.isEmpty {
            implicitPairAccuracy = nil
            rewardModelPairAccuracy = nil
            goldPairAccuracy = nil
            pairAgreement = nil
        } else {
            func accuracy(_ scores: [Double]) throws -> StatisticOutcome<PairAccuracy> {
                try PairAccuracy.strict(chosen: inputs.pairs.map { scores[$0.chosen] }, rejected: inputs.pairs.map { scores[$0.rejected] })
            }
            implicitPairAccuracy = try accuracy(inputs.implicitReward)
            rewardModelPairAccuracy = try accuracy(inputs.rewardModel)
            goldPairAccuracy = try inputs.gold.map(accuracy)
            pairAgreement = try PairAgreement.between(
                marginsFirst: inputs.pairs.map { inputs.implicitReward[$0.chosen] - inputs.implicitReward[$0.rejected] },
                marginsSecond: inputs.pairs.map { inputs.rewardModel[$0.chosen] - inputs.rewardModel[$0.rejected] })
        }

        // Standardised targets; the regression of their difference on the features gives each
        // feature's coefficient gap directly, since OLS is linear in the target.
        let zImplicit = ColumnMoments.zScores(inputs.implicitReward)
        let zRewardModel = ColumnMoments.zScores(inputs.rewardModel)
        let options = LeastSquaresFit.Options(seed: seed)
        let implicitFit = try LeastSquaresFit.fit(inputs.features, target: inputs.implicitReward, options: options).value
        let rewardModelFit = try LeastSquaresFit.fit(inputs.features, target: inputs.rewardModel, options: options).value
        if let zi = zImplicit, let zr = zRewardModel {
            differenceFit = try LeastSquaresFit.fit(inputs.features, target: zip(zi, zr).map { $0 - $1 }, options: options)
        } else {
            differenceFit = .undefined(reason: "one of the two rewards is constant, so it has no standardised form")
        }
        var gaps: [CoefficientGap] = []
        var cosine: Double? = nil
        if let implicitFit, let rewardModelFit, case .defined(let difference) = differenceFit {
            let implicitByName = Dictionary(uniqueKeysWithValues: implicitFit.coefficients.map { ($0.name, $0.standardizedEstimate ?? 0) })
            let rewardByName = Dictionary(uniqueKeysWithValues: rewardModelFit.coefficients.map { ($0.name, $0.standardizedEstimate ?? 0) })
            var dot = 0.0, normI = 0.0, normR = 0.0
            for coefficient in difference.coefficients {
                guard let ci = implicitByName[coefficient.name], let cr = rewardByName[coefficient.name],
                      let column = inputs.features.index(of: coefficient.name) else { continue }
                let sd = ColumnMoments.populationSD(Array(inputs.features.column(column)))
                dot += ci * cr
                normI += ci * ci
                normR += cr * cr
                gaps.append(CoefficientGap(
                    feature: coefficient.name, implicitCoefficient: ci, rewardModelCoefficient: cr,
                    gap: coefficient.estimate * sd, confidenceLower: coefficient.confidenceLower * sd,
                    confidenceUpper: coefficient.confidenceUpper * sd, robustPValue: coefficient.robustPValue, pValue: coefficient.pValue))
            }
            if normI > 0, normR > 0 { cosine = dot / (normI.squareRoot() * normR.squareRoot()) }
        }
        coefficientGaps = gaps
        coefficientCosine = cosine

        var disagreements: [Disagreement] = []
        if let zi = zImplicit, let zr = zRewardModel {
            disagreements = (0..<n).map { Disagreement(index: $0, implicitZ: zi[$0], rewardModelZ: zr[$0]) }
            // Largest |difference| first; ties by sample order, so the list is deterministic.
            disagreements.sort { abs($0.difference) != abs($1.difference) ? abs($0.difference) > abs($1.difference) : $0.index < $1.index }
            disagreements = Array(disagreements.prefix(max(inputs.topK, 0)))
        }
        topDisagreements = disagreements
        lengthControl = try Self.lengthControl(zImplicit ?? inputs.implicitReward, zRewardModel ?? inputs.rewardModel,
                                               tokens: inputs.responseTokens, bootstrap: b, seed: seed)
    }


    static func lengthControl(_ a: [Double], _ b: [Double], tokens: [Int], bootstrap: Int, seed: UInt64) throws -> LengthControl {
        let width = LengthControl.bucketWidth
        var members: [Int: [Int]] = [:]
        for (index, t) in tokens.enumerated() { members[max(t, 0) / width, default: []].append(index) }
        var buckets: [LengthControl.Bucket] = []
        var residualA = a, residualB = b
        var betweenA = 0.0, betweenB = 0.0
        let meanA = a.reduce(0, +) / Double(max(a.count, 1)), meanB = b.reduce(0, +) / Double(max(b.count, 1))
        for key in members.keys.sorted() {
            let rows = members[key] ?? []
            let ma = rows.reduce(0) { $0 + a[$1] } / Double(rows.count)
            let mb = rows.reduce(0) { $0 + b[$1] } / Double(rows.count)
            for r in rows {
                residualA[r] = a[r] - ma
                residualB[r] = b[r] - mb
            }
            betweenA += Double(rows.count) * (ma - meanA) * (ma - meanA)
            betweenB += Double(rows.count) * (mb - meanB) * (mb - meanB)
            buckets.append(.init(lowerTokens: key * width, upperTokens: key * width + width - 1, count: rows.count,
                                 meanImplicitZ: ma, meanRewardModelZ: mb))
        }
        let totalA = a.reduce(0) { $0 + ($1 - meanA) * ($1 - meanA) }
        let totalB = b.reduce(0) { $0 + ($1 - meanB) * ($1 - meanB) }
        return LengthControl(buckets: buckets,
                             implicitVarianceExplainedByLength: totalA > 0 ? betweenA / totalA : 0,
                             rewardModelVarianceExplainedByLength: totalB > 0 ? betweenB / totalB : 0,
                             withinBucketCorrelation: try Correlation.pearson(residualA, residualB, bootstrapReplicates: bootstrap, seed: seed))
    }
}
