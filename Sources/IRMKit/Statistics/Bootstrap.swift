import Foundation

/// A two-sided bootstrap percentile interval.
public struct BootstrapInterval: Sendable, Equatable {
    public let lower: Double
    public let upper: Double
    /// The nominal coverage, e.g. 0.95.
    public let level: Double
    /// Replicates that produced a value.
    public let replicates: Int
    /// Replicates on which the statistic was undefined (e.g. a resample with a constant column);
    /// they are left out of the percentiles.
    public let undefinedReplicates: Int
}

/// The nonparametric bootstrap over rows (Efron & Tibshirani 1993, ch. 13, percentile method).
///
/// Replicate b draws n row indices uniformly with replacement from one `SeededRandom(seed)`
/// stream, in order, so replicate b is the same for the same seed whatever the statistic.
/// Percentiles interpolate linearly between order statistics (numpy's default `linear` method):
/// the q-quantile of sorted v₀…v_{m−1} is v_⌊h⌋ + (h − ⌊h⌋)(v_⌊h⌋₊₁ − v_⌊h⌋) with h = (m − 1)q.
public enum Bootstrap {
    /// Runs `statistic` on `replicates` resamples of `rowCount` rows (each a list of row indices).
    /// The resamples are drawn first, in order, then evaluated in parallel; results come back in
    /// replicate order, so the outcome does not depend on the thread count. The first error (in
    /// replicate order) is rethrown.
    public static func replicate<T>(rowCount n: Int, replicates: Int, seed: UInt64,
                                    _ statistic: ([Int]) throws -> T) throws -> [T] {
        var generator = SeededRandom(seed: seed)
        let count = max(replicates, 0)
        guard count > 0 else { return [] }
        let resamples = (0..<count).map { _ in generator.resampleIndices(count: n, population: n) }
        return try ParallelMap.map(count: count) { b in try statistic(resamples[b]) }
    }

    /// The equal-tailed percentile interval of the defined values; nil when none is defined.
    public static func percentileInterval(_ values: [Double?], level: Double) -> BootstrapInterval? {
        let defined = values.compactMap { $0 }.sorted()
        guard !defined.isEmpty else { return nil }
        let tail = (1 - level) / 2
        return BootstrapInterval(lower: quantile(sorted: defined, tail), upper: quantile(sorted: defined, 1 - tail),
                                 level: level, replicates: defined.count,
                                 undefinedReplicates: values.count - defined.count)
    }

    /// The q-quantile of ascending `sorted` by linear interpolation (see the type's comment).
    public static func quantile(sorted: [Double], _ q: Double) -> Double {
        guard let first = sorted.first else { return .nan }
        if sorted.count == 1 { return first }
        let h = Double(sorted.count - 1) * min(max(q, 0), 1)
        let lo = Int(h.rounded(.down))
        let hi = min(lo + 1, sorted.count - 1)
        let fraction = h - Double(lo)
        return sorted[lo] + fraction * (sorted[hi] - sorted[lo])
    }
}
