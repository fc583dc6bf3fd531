import Foundation

/// A correlation coefficient with its p-value and, on request, a bootstrap interval.
public struct CorrelationEstimate: Sendable, Equatable {
    public let value: Double
    /// Two-sided p-value for "no association" (see each method for the reference distribution).
    public let pValue: Double
    public let sampleCount: Int
    /// Percentile interval over row resamples (pairs kept together); nil without bootstrap.
    public let interval: BootstrapInterval?
}

/// Pearson, Spearman and Kendall τ-b correlations, matching scipy.stats (`pearsonr`, `spearmanr`,
/// `kendalltau(variant="b", method="asymptotic")`). A constant input makes a coefficient
/// undefined: the outcome says so instead of returning NaN.
public enum Correlation {
    public enum Method: String, Sendable, CaseIterable {
        case pearson, spearman, kendall
    }

    /// r = Σ(x − x̄)(y − ȳ) / √(Σ(x − x̄)² Σ(y − ȳ)²), with p from t = r√((n − 2)/(1 − r²)) on n − 2
    /// degrees of freedom (exact under bivariate normality; scipy's beta form is the same).
    public static func pearson(_ x: [Double], _ y: [Double], bootstrapReplicates: Int = 0, seed: UInt64 = 0,
                               level: Double = 0.95) throws -> StatisticOutcome<CorrelationEstimate> {
        try estimate(.pearson, x, y, bootstrapReplicates: bootstrapReplicates, seed: seed, level: level)
    }

    /// Spearman's ρ: Pearson's r of the ranks, ties given their average rank; p as for Pearson
    /// (the t approximation scipy uses).
    public static func spearman(_ x: [Double], _ y: [Double], bootstrapReplicates: Int = 0, seed: UInt64 = 0,
                                level: Double = 0.95) throws -> StatisticOutcome<CorrelationEstimate> {
        try estimate(.spearman, x, y, bootstrapReplicates: bootstrapReplicates, seed: seed, level: level)
    }

    /// Kendall's τ-b = (n_c − n_d)/√((n₀ − n₁)(n₀ − n₂)), n₀ = n(n − 1)/2, n₁ and n₂ the pairs tied
    /// in x and in y. Counted in O(n log n) by Knight's (1966) method: sort by (x, y), count
    /// discordant pairs as the inversions of y met by a merge sort. p is two-sided from the normal
    /// approximation to n_c − n_d with the tie-corrected variance (Kendall 1970, eq. 4.3; scipy's
    /// "asymptotic" method):
    /// Var = [v₀ − Σt(t − 1)(2t + 5) − Σu(u − 1)(2u + 5)]/18 + Σt(t − 1)·Σu(u − 1)/(2m)
    ///       + Σt(t − 1)(t − 2)·Σu(u − 1)(u − 2)/(9m(n − 2)), m = n(n − 1), v₀ = m(2n + 5),
    /// over x tie groups of size t and y tie groups of size u.
    public static func kendallTauB(_ x: [Double], _ y: [Double], bootstrapReplicates: Int = 0, seed: UInt64 = 0,
                                   level: Double = 0.95) throws -> StatisticOutcome<CorrelationEstimate> {
        try estimate(.kendall, x, y, bootstrapReplicates: bootstrapReplicates, seed: seed, level: level)
    }

    /// Any of the three, by method.
    public static func estimate(_ method: Method, _ x: [Double], _ y: [Double], bootstrapReplicates: Int = 0,
                                seed: UInt64 = 0, level: Double = 0.95) throws -> StatisticOutcome<CorrelationEstimate> {
        guard x.count == y.count else {
            throw IRMError("\(method.rawValue) correlation: x has \(x.count) values and y has \(y.count); expected one pair per sample")
        }
        if let bad = x.firstIndex(where: { !$0.isFinite }) ?? y.firstIndex(where: { !$0.isFinite }) {
            throw IRMError("\(method.rawValue) correlation: non-finite value in row \(bad)")
        }
        let n = x.count
        guard n >= 3 else {
            return .undefined(reason: "\(method.rawValue) correlation needs at least 3 pairs, found \(n)")
        }
        let point: (value: Double, p: Double)
        switch coefficient(method, x, y) {
        case .undefined(let reason): return .undefined(reason: reason)
        case .defined(let v): point = v
        }
        var interval: BootstrapInterval? = nil
        if bootstrapReplicates > 0 {
            let values: [Double?] = try Bootstrap.replicate(rowCount: n, replicates: bootstrapReplicates, seed: seed) { rows in
                coefficient(method, rows.map { x[$0] }, rows.map { y[$0] }).value?.value
            }
            interval = Bootstrap.percentileInterval(values, level: level)
        }
        return .defined(CorrelationEstimate(value: point.value, pValue: point.p, sampleCount: n, interval: interval))
    }

    private static func coefficient(_ method: Method, _ x: [Double], _ y: [Double])
        -> StatisticOutcome<(value: Double, p: Double)> {
        switch method {
        case .pearson: return pearsonCore(x, y)
        case .spearman: return pearsonCore(averageRanks(x), averageRanks(y))
        case .kendall: return kendallCore(x, y)
        }
    }

    private static func pearsonCore(_ x: [Double], _ y: [Double]) -> StatisticOutcome<(value: Double, p: Double)> {
        let n = x.count
        let mx = ColumnMoments.mean(x[...]), my = ColumnMoments.mean(y[...])
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for i in 0..<n {
            let dx = x[i] - mx, dy = y[i] - my
            sxy += dx * dy; sxx += dx * dx; syy += dy * dy
        }
        if x.allSatisfy({ $0 == x[0] }) { return .undefined(reason: "x is constant, so its correlation with anything is undefined") }
        if y.allSatisfy({ $0 == y[0] }) { return .undefined(reason: "y is constant, so its correlation with anything is undefined") }
        let r = max(-1, min(1, sxy / (sxx.squareRoot() * syy.squareRoot())))
        return .defined((r, correlationPValue(r, n: n)))
    }

    /// Two-sided p of r under H₀: ρ = 0 via t = r√((n − 2)/(1 − r²)) with n − 2 df; 0 when |r| = 1.
    static func correlationPValue(_ r: Double, n: Int) -> Double {
        if abs(r) >= 1 { return 0 }
        let df = Double(n - 2)
        return StudentTDistribution.twoSidedPValue(r * (df / ((1 - r) * (1 + r))).squareRoot(), degreesOfFreedom: df)
    }

    /// 1-based ranks with ties given the mean of the ranks they span.
    public static func averageRanks(_ x: [Double]) -> [Double] {
        let order = x.indices.sorted { x[$0] < x[$1] }
        var ranks = [Double](repeating: 0, count: x.count)
        var start = 0
        while start < order.count {
            var end = start
            while end + 1 < order.count && x[order[end + 1]] == x[order[start]] { end += 1 }
            let rank = Double(start + end) / 2 + 1
            for k in start...end { ranks[order[k]] = rank }
            start = end + 1
        }
        return ranks
    }

    private static func kendallCore(_ x: [Double], _ y: [Double]) -> StatisticOutcome<(value: Double, p: Double)> {
        let n = x.count
        let order = x.indices.sorted { x[$0] != x[$1] ? x[$0] < x[$1] : y[$0] < y[$1] }
        let tiesX = tieSums(order.map { x[$0] })
        var jointTies = 0
        var start = 0
        while start < n {
            var end = start
            while end + 1 < n && x[order[end + 1]] == x[order[start]] && y[order[end + 1]] == y[order[start]] { end += 1 }
            let t = end - start + 1
            jointTies += t * (t - 1) / 2
            start = end + 1
        }
        var ys = order.map { y[$0] }
        var buffer = ys
        let discordant = countInversions(&ys, &buffer, 0, n)
        let tiesY = tieSums(ys)  // ys is now sorted
        let total = n * (n - 1) / 2
        if tiesX.pairs == total { return .undefined(reason: "x is constant, so Kendall's τ is undefined") }
        if tiesY.pairs == total { return .undefined(reason: "y is constant, so Kendall's τ is undefined") }
        let concordantMinusDiscordant = Double(total - tiesX.pairs - tiesY.pairs + jointTies - 2 * discordant)
        let tau = max(-1, min(1, concordantMinusDiscordant
            / (Double(total - tiesX.pairs).squareRoot() * Double(total - tiesY.pairs).squareRoot())))
        let nn = Double(n), m = nn * (nn - 1)
        let variance = (m * (2 * nn + 5) - tiesX.v1 - tiesY.v1) / 18
            + 2 * Double(tiesX.pairs) * Double(tiesY.pairs) / m
            + tiesX.v2 * tiesY.v2 / (9 * m * (nn - 2))
        let z = concordantMinusDiscordant / variance.squareRoot()
        return .defined((tau, 2 * NormalDistribution.survival(abs(z))))
    }

    /// Over runs of equal values in sorted `v`: Σ t(t − 1)/2, Σ t(t − 1)(2t + 5), Σ t(t − 1)(t − 2).
    private static func tieSums(_ v: [Double]) -> (pairs: Int, v1: Double, v2: Double) {
        var pairs = 0, v1 = 0.0, v2 = 0.0
        var start = 0
        while start < v.count {
            var end = start
            while end + 1 < v.count && v[end + 1] == v[start] { end += 1 }
            let t = end - start + 1
            if t > 1 {
                let tt = Double(t)
                pairs += t * (t - 1) / 2
                v1 += tt * (tt - 1) * (2 * tt + 5)
                v2 += tt * (tt - 1) * (tt - 2)
            }
            start = end + 1
        }
        return (pairs, v1, v2)
    }

    /// Sorts v[lo..<hi] ascending (stable merge sort) and returns the number of pairs i < j with
    /// v[i] > v[j] strictly.
    private static func countInversions(_ v: inout [Double], _ buffer: inout [Double], _ lo: Int, _ hi: Int) -> Int {
        if hi - lo < 2 { return 0 }
        let mid = (lo + hi) / 2
        var count = countInversions(&v, &buffer, lo, mid) + countInversions(&v, &buffer, mid, hi)
        var i = lo, j = mid, k = lo
        while i < mid && j < hi {
            if v[j] < v[i] {
                buffer[k] = v[j]; j += 1
                count += mid - i
            } else {
                buffer[k] = v[i]; i += 1
            }
            k += 1
        }
        while i < mid { buffer[k] = v[i]; i += 1; k += 1 }
        while j < hi { buffer[k] = v[j]; j += 1; k += 1 }
        for index in lo..<hi { v[index] = buffer[index] }
        return count
    }

    /// Kendall's τ-b by direct comparison of all pairs, O(n²): the plain reference that the
    /// O(n log n) version is tested against.
    static func kendallTauBReference(_ x: [Double], _ y: [Double]) -> Double {
        var s = 0.0, tx = 0.0, ty = 0.0, pairs = 0.0
        for i in 0..<x.count {
            for j in (i + 1)..<max(i + 1, x.count) {
                let dx = x[i] - x[j], dy = y[i] - y[j]
                pairs += 1
                if dx == 0 { tx += 1 }
                if dy == 0 { ty += 1 }
                if dx != 0 && dy != 0 { s += (dx > 0) == (dy > 0) ? 1 : -1 }
            }
        }
        return s / ((pairs - tx) * (pairs - ty)).squareRoot()
    }
}

/// Pairwise preference accuracy, as RewardBench scores reward models: a pair (chosen, rejected)
/// is correct only if score(chosen) > score(rejected) strictly; a tie counts as wrong.
public struct PairAccuracy: Sendable, Equatable {
    public let correct: Int
    public let ties: Int
    public let total: Int
    /// correct / total.
    public var accuracy: Double { Double(correct) / Double(total) }

    /// Strict accuracy over pairs; `.undefined` for zero pairs.
    public static func strict(chosen: [Double], rejected: [Double]) throws -> StatisticOutcome<PairAccuracy> {
        guard chosen.count == rejected.count else {
            throw IRMError("pair accuracy: \(chosen.count) chosen scores but \(rejected.count) rejected scores; expected one of each per pair")
        }
        if let bad = chosen.indices.first(where: { !chosen[$0].isFinite || !rejected[$0].isFinite }) {
            throw IRMError("pair accuracy: pair \(bad) has a non-finite score")
        }
        guard !chosen.isEmpty else { return .undefined(reason: "pair accuracy over zero pairs is undefined") }
        let correct = zip(chosen, rejected).filter { $0 > $1 }.count
        let ties = zip(chosen, rejected).filter { $0 == $1 }.count
        return .defined(PairAccuracy(correct: correct, ties: ties, total: chosen.count))
    }
}

/// Agreement between two scorers on the same pairs: they agree on a pair when both strictly prefer
/// the same response (margins chosen − rejected of the same strict sign). A tie in either scorer
/// counts as disagreement, consistent with strict accuracy.
public struct PairAgreement: Sendable, Equatable {
    public let agreeing: Int
    /// Pairs tied under the first scorer, under the second.
    public let tiesFirst: Int
    public let tiesSecond: Int
    public let total: Int
    public var agreement: Double { Double(agreeing) / Double(total) }

    /// Agreement from the margins m = score(chosen) − score(rejected) of each scorer.
    public static func between(marginsFirst: [Double], marginsSecond: [Double]) throws -> StatisticOutcome<PairAgreement> {
        guard marginsFirst.count == marginsSecond.count else {
            throw IRMError("pair agreement: \(marginsFirst.count) margins for the first scorer but \(marginsSecond.count) for the second")
        }
        if let bad = marginsFirst.indices.first(where: { !marginsFirst[$0].isFinite || !marginsSecond[$0].isFinite }) {
            throw IRMError("pair agreement: pair \(bad) has a non-finite margin")
        }
        guard !marginsFirst.isEmpty else { return .undefined(reason: "pair agreement over zero pairs is undefined") }
        let agreeing = zip(marginsFirst, marginsSecond).filter { ($0 > 0 && $1 > 0) || ($0 < 0 && $1 < 0) }.count
        return .defined(PairAgreement(agreeing: agreeing, tiesFirst: marginsFirst.filter { $0 == 0 }.count,
                                      tiesSecond: marginsSecond.filter { $0 == 0 }.count, total: marginsFirst.count))
    }
}
