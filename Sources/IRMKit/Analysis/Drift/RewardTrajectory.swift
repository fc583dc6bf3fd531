import Foundation

/// The training (proxy) reward and the gold reward that each checkpoint of a series would earn, and
/// what their paths say: Kim & Seo's monotonicity and the step where over-optimisation sets in.
///
/// The data is fixed, so a checkpoint's expected reward is estimated by self-normalised importance
/// sampling over each prompt's responses: with `ℓ_i = log π_k(y_i|x) − log π_base(y_i|x)` (the
/// implicit reward over β),
///
///     R_k(x) = Σ_{i ∈ x} w_i r_i / Σ_{i ∈ x} w_i,    w_i = exp(ℓ_i),
///     R_k = mean over prompts x of R_k(x).
///
/// At the base every weight is 1 and R_0 is the plain mean over each prompt's responses. The
/// estimate is consistent when the responses are drawn from the base policy; with responses from
/// other policies it is the reward of the checkpoint's reweighting of the data, which is what the
/// implicit reward moves (docs/drift.md).
public struct RewardTrajectory: Sendable {
    /// One estimate per step (base first), with a bootstrap interval over prompts.
    public struct Point: Sendable {
        public let value: Double
        public let interval: BootstrapInterval?
    }

    /// The point after which gold stops improving while the proxy still rises.
    public struct OverOptimisation: Sendable {
        /// Index into the steps (0 is the base) of gold's peak.
        public let peakStep: Int
        /// Gold and proxy change from the peak to the last step.
        public let goldChange: Double
        public let proxyChange: Double
        public let goldChangeInterval: BootstrapInterval?
        public let proxyChangeInterval: BootstrapInterval?
        /// Share of bootstrap replicates in which gold falls (or stays) while the proxy rises
        /// after the peak: the evidence, a one-sided bootstrap p-value's complement.
        public let support: Double
        /// support ≥ 0.95 with at least 100 replicates.
        public let isSignificant: Bool
    }

    public let proxy: [Point]
    public let gold: [Point]?
    /// Spearman ρ over the steps of the mean proxy against the mean gold (Kim & Seo 2024), with
    /// its p-value.
    public let monotonicity: StatisticOutcome<CorrelationEstimate>?
    /// Per-step gains R_k − R_{k−1} (the first is 0).
    public var proxyGains: [Double] { Self.gains(proxy.map(\.value)) }
    public var goldGains: [Double]? { gold.map { Self.gains($0.map(\.value)) } }
    public let overOptimisation: StatisticOutcome<OverOptimisation>?

    /// `logRatios[k][i]` is ℓ_i at step k (step 0, the base, may be all zeros); `groups` lists the
    /// sample indices of each prompt.
    public init(logRatios: [[Double]], proxy proxyScores: [Double], gold goldScores: [Double]?, groups: [[Int]],
                bootstrapReplicates: Int, seed: UInt64) throws {
        try self.init(logRatios: logRatios, proxyPerStep: logRatios.map { _ in proxyScores }, gold: goldScores, groups: groups,
                      bootstrapReplicates: bootstrapReplicates, seed: seed)
    }

    /// With a proxy per step (a reward-model series: step k is measured by the reward model it was
    /// tuned against; `proxyPerStep[k]` holds its scores of every sample).
    public init(logRatios: [[Double]], proxyPerStep: [[Double]], gold goldScores: [Double]?, groups: [[Int]],
                bootstrapReplicates: Int, seed: UInt64) throws {
        let n = proxyPerStep.first?.count ?? 0
        guard !logRatios.isEmpty, proxyPerStep.count == logRatios.count, proxyPerStep.allSatisfy({ $0.count == n }),
              logRatios.allSatisfy({ $0.count == n }), goldScores.map({ $0.count == n }) ?? true else {
            throw IRMError("reward trajectory: every step's log-ratios and the scores must describe the same \(n) samples")
        }
        guard !groups.isEmpty, groups.allSatisfy({ !$0.isEmpty && $0.allSatisfy { (0..<n).contains($0) } }) else {
            throw IRMError("reward trajectory: every prompt group must list samples in 0..<\(n)")
        }
        func estimates(_ scores: [[Double]], groupRows: [Int]) -> [Double] {
            zip(logRatios, scores).map { ratios, scores in Self.estimate(ratios, scores, groups: groupRows.map { groups[$0] }) }
        }
        let allGroups = Array(groups.indices)
        let replicateGroups: [[Int]] = bootstrapReplicates > 0
            ? try Bootstrap.replicate(rowCount: groups.count, replicates: bootstrapReplicates, seed: seed) { $0 } : []
        func points(_ scores: [[Double]]) -> (values: [Double], replicates: [[Double]], points: [Point]) {
            let values = estimates(scores, groupRows: allGroups)
            let replicates = replicateGroups.map { estimates(scores, groupRows: $0) }
            let points = values.indices.map { k in
                Point(value: values[k], interval: replicates.isEmpty ? nil : Bootstrap.percentileInterval(replicates.map { $0[k] }, level: 0.95))
            }
            return (values, replicates, points)
        }
        let proxyPath = points(proxyPerStep)
        proxy = proxyPath.points
        guard let goldScores else {
            gold = nil
            monotonicity = nil
            overOptimisation = nil
            return
        }
        let goldPath = points(logRatios.map { _ in goldScores })
        gold = goldPath.points
        monotonicity = logRatios.count >= 3 ? try Correlation.spearman(proxyPath.values, goldPath.values) : nil
        overOptimisation = Self.overOptimisation(proxy: proxyPath, gold: goldPath, replicates: replicateGroups.count)
    }

    /// The prompts' self-normalised means, averaged. A prompt's log-weights are shifted by their
    /// maximum before exponentiating.
    static func estimate(_ logRatios: [Double], _ scores: [Double], groups: [[Int]]) -> Double {
        var total = 0.0
        for group in groups {
            let top = group.map { logRatios[$0] }.max() ?? 0
            var weighted = 0.0, weights = 0.0
            for i in group {
                let w = Foundation.exp(logRatios[i] - top)
                weighted += w * scores[i]
                weights += w
            }
            total += weighted / weights
        }
        return total / Double(groups.count)
    }

    static func gains(_ values: [Double]) -> [Double] {
        values.indices.map { $0 == 0 ? 0 : values[$0] - values[$0 - 1] }
    }

    /// Gold's peak over the steps; over-optimisation when it comes before the last step and the
    /// proxy still rises from there to the last step.
    private static func overOptimisation(proxy: (values: [Double], replicates: [[Double]], points: [Point]),
                                         gold: (values: [Double], replicates: [[Double]], points: [Point]),
                                         replicates: Int) -> StatisticOutcome<OverOptimisation> {
        let last = gold.values.count - 1
        guard last >= 2 else { return .undefined(reason: "over-optimisation needs at least two checkpoints after the base") }
        var peak = 0
        for k in 1...last where gold.values[k] > gold.values[peak] { peak = k }
        guard peak < last else { return .undefined(reason: "gold is highest at the last step: no over-optimisation in this series") }
        let goldChange = gold.values[last] - gold.values[peak], proxyChange = proxy.values[last] - proxy.values[peak]
        guard proxyChange > 0 else {
            return .undefined(reason: "gold peaks at step \(peak), but the proxy does not rise after it either (change \(proxyChange))")
        }
        var supporting = 0
        var goldChanges: [Double] = [], proxyChanges: [Double] = []
        for b in 0..<replicates {
            let g = gold.replicates[b][last] - gold.replicates[b][peak], p = proxy.replicates[b][last] - proxy.replicates[b][peak]
            goldChanges.append(g)
            proxyChanges.append(p)
            if g <= 0 && p > 0 { supporting += 1 }
        }
        let support = replicates > 0 ? Double(supporting) / Double(replicates) : 0
        return .defined(OverOptimisation(
            peakStep: peak, goldChange: goldChange, proxyChange: proxyChange,
            goldChangeInterval: goldChanges.isEmpty ? nil : Bootstrap.percentileInterval(goldChanges, level: 0.95),
            proxyChangeInterval: proxyChanges.isEmpty ? nil : Bootstrap.percentileInterval(proxyChanges, level: 0.95),
            support: support, isSignificant: replicates >= 100 && support >= 0.95))
    }
}
