/// Means, population standard deviations and z-scores: the one implementation that the fits, the
/// divergence and the reports share.
public enum ColumnMoments {
    /// The mean, with one correction pass that removes most of the rounding of the first sum.
    public static func mean<C: Collection>(_ x: C) -> Double where C.Element == Double {
        guard !x.isEmpty else { return 0 }
        let first = x.reduce(0, +) / Double(x.count)
        return first + x.reduce(0) { $0 + ($1 - first) } / Double(x.count)
    }

    /// `√(Σ (x − mean)² / n)`.
    public static func populationSD<C: Collection>(_ x: C, mean: Double) -> Double where C.Element == Double {
        guard !x.isEmpty else { return 0 }
        return (x.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(x.count)).squareRoot()
    }

    public static func populationSD<C: Collection>(_ x: C) -> Double where C.Element == Double {
        populationSD(x, mean: mean(x))
    }

    /// `(x − mean) / sd` of each value.
    public static func zScored<C: Collection>(_ x: C, mean: Double, sd: Double) -> [Double] where C.Element == Double {
        x.map { ($0 - mean) / sd }
    }

    /// (x − mean) / population sd, or nil for an empty or constant vector.
    public static func zScores<C: Collection>(_ x: C) -> [Double]? where C.Element == Double {
        guard !x.isEmpty else { return nil }
        let m = mean(x)
        let sd = populationSD(x, mean: m)
        guard sd > 0 else { return nil }
        return zScored(x, mean: m, sd: sd)
    }
}
