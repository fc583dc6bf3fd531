/// Prompt-conditioned weights: separate OLS fits per level of a grouping field (for example
/// qtype = open / closed), and a Chow (1960) F test of the hypothesis that all groups share one
/// set of coefficients (intercept included).
///
/// With the pooled fit's residual sum of squares SSR_p and rank r_p, and each group's SSR_g and
/// rank r_g (constant and aliased features are dropped per group, so ranks may differ):
///
///     F = [(SSR_p − Σ_g SSR_g) / (Σ_g r_g − r_p)] / [Σ_g SSR_g / (n − Σ_g r_g)]
///
/// on (Σ r_g − r_p, n − Σ r_g) degrees of freedom. The separate fits are the fully interacted
/// model (group dummies × [1, X]), so F equals statsmodels' `compare_f_test` of that model against
/// the pooled one. The test assumes equal noise variance across groups.
public struct GroupedFit: Sendable {
    public struct Group: Sendable {
        public let label: String
        public let fit: LeastSquaresFit
    }

    /// One per distinct label, sorted by label.
    public let groups: [Group]
    public let pooled: LeastSquaresFit
    public let chowF: Double
    public let numeratorDegreesOfFreedom: Int
    public let denominatorDegreesOfFreedom: Int
    public let chowPValue: Double

    public static func fit(_ features: FeatureMatrix, target: [Double], groupLabels: [String],
                           options: LeastSquaresFit.Options = .init()) throws -> StatisticOutcome<GroupedFit> {
        let n = features.rowCount
        guard groupLabels.count == n else {
            throw IRMError("grouped fit: \(groupLabels.count) group labels for \(n) samples; expected one label per sample")
        }
        let labels = Array(Set(groupLabels)).sorted()
        guard labels.count >= 2 else {
            return .undefined(reason: "grouped fit: every sample has group \"\(labels.first ?? "")\"; at least two groups are needed to compare coefficients")
        }
        let pooled: LeastSquaresFit
        switch try LeastSquaresFit.fit(features, target: target, options: options) {
        case .undefined(let reason): return .undefined(reason: "pooled fit: \(reason)")
        case .defined(let fit): pooled = fit
        }
        var groups: [Group] = []
        for label in labels {
            let rows = groupLabels.indices.filter { groupLabels[$0] == label }
            let outcome: StatisticOutcome<LeastSquaresFit>
            do {
                outcome = try LeastSquaresFit.fit(features.selectingRows(rows), target: rows.map { target[$0] }, options: options)
            } catch let error as IRMError {
                throw IRMError("grouped fit, group \"\(label)\" (\(rows.count) samples): \(error.message)")
            }
            switch outcome {
            case .undefined(let reason): return .undefined(reason: "group \"\(label)\": \(reason)")
            case .defined(let fit): groups.append(Group(label: label, fit: fit))
            }
        }
        let separateSSR = groups.reduce(0) { $0 + $1.fit.residualSumOfSquares }
        let separateRank = groups.reduce(0) { $0 + $1.fit.rank }
        let df1 = separateRank - pooled.rank
        let df2 = n - separateRank
        guard df1 > 0, df2 > 0 else {
            return .undefined(reason: "Chow test: degrees of freedom (\(df1), \(df2)) leave nothing to test")
        }
        let f = ((pooled.residualSumOfSquares - separateSSR) / Double(df1)) / (separateSSR / Double(df2))
        let p = FDistribution.survival(f, numeratorDegrees: Double(df1), denominatorDegrees: Double(df2))
        return .defined(GroupedFit(groups: groups, pooled: pooled, chowF: f, numeratorDegreesOfFreedom: df1,
                                   denominatorDegreesOfFreedom: df2, chowPValue: p))
    }
}
