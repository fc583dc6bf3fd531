import Foundation

/// What TRL's DPOTrainer logs for the implicit reward, over the preference pairs: with
/// `r = β·Σ_t (log π_after − log π_before)` summed over each response's tokens,
/// `rewards/chosen = mean r(chosen)`, `rewards/rejected = mean r(rejected)`,
/// `rewards/margins = mean (r(chosen) − r(rejected))` and `rewards/accuracies = mean [r(chosen) > r(rejected)]`
/// (a tie counts as wrong). Each has a bootstrap percentile interval over pairs.
///
/// TRL logs the mean of each batch's means; over one pass these are the same numbers for equal
/// batch sizes, and irm's are the means over all pairs.
public struct TrainerRewardMetrics: Sendable {
    public struct Metric: Sendable {
        /// TRL's name: `rewards/chosen`, `rewards/rejected`, `rewards/margins`, `rewards/accuracies`.
        public let name: String
        public let value: Double
        public let interval: BootstrapInterval?
    }

    public let pairCount: Int
    public let beta: Double
    public let metrics: [Metric]

    /// nil when there are no pairs. `rewards` holds the summed implicit reward of every sample.
    public init?(pairs: [Divergence.Pair], rewards: [Double], beta: Double, bootstrapReplicates: Int, seed: UInt64) throws {
        guard !pairs.isEmpty else { return nil }
        let chosen = pairs.map { rewards[$0.chosen] }, rejected = pairs.map { rewards[$0.rejected] }
        func statistics(_ rows: [Int]) -> [Double] {
            var c = 0.0, r = 0.0, correct = 0.0
            for k in rows {
                c += chosen[k]
                r += rejected[k]
                if chosen[k] > rejected[k] { correct += 1 }
            }
            let n = Double(rows.count)
            return [c / n, r / n, (c - r) / n, correct / n]
        }
        let point = statistics(Array(pairs.indices))
        let replicates = try Bootstrap.replicate(rowCount: pairs.count, replicates: bootstrapReplicates, seed: seed) { statistics($0) }
        let names = ["rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"]
        metrics = names.indices.map { k in
            Metric(name: names[k], value: point[k],
                   interval: replicates.isEmpty ? nil : Bootstrap.percentileInterval(replicates.map { $0[k] }, level: 0.95))
        }
        pairCount = pairs.count
        self.beta = beta
    }
}
