import Foundation

/// Which features of an OLS fit are collinear, and the fit that keeps one feature per collinear set.
///
/// Collinear features split one effect between them with arbitrary, often opposite, signs (a
/// lexicon score at +0.98 next to its own positive-word count at −0.49). This type says which
/// coefficients not to read one by one, and offers a parsimonious fit whose coefficients can be.
///
/// 1. Variance inflation (Marquardt 1970; Belsley, Kuh & Welsch 1980, ch. 3): for each feature kept by
///    the full fit (constant and aliased features are already gone), VIF_j = 1/(1 − R²_j), with
///    R²_j the centred R² of the auxiliary regression of x_j on an intercept and the other kept
///    features; equivalently [C⁻¹]_jj for their correlation matrix C. Computed from the SVD of the
///    z-scored design Z = [1, z…] = UΣVᵀ as VIF_j = n Σ_i V_ji²/σ_i² (because z_jᵀz_j = n).
///    When 1 − R²_j < tol² (tol = the fit's alias tolerance, 1e-7: the residual of z_j on the others
///    has norm below tol·√n, the aliasing rule of `LeastSquaresFit`), R²_j is reported as 1 and VIF_j
///    as +∞; this includes an exact dependency. It cannot happen for a fit's kept features except
///    through rounding, and no NaN is ever reported. (statsmodels clips R² at 1 − 1e-15, so it
///    reports at most 1e15 where this says +∞.)
/// 2. Explanation of a high VIF (VIF_j > threshold, default 10, the rule of thumb of Kutner et al.,
///    *Applied Linear Statistical Models*, §10.5): greedily remove from x_j's auxiliary regression
///    the regressor k whose removal lowers R²_j most, ΔR²_{j∖k} = w_k²/[C_SS⁻¹]_kk (w = C_SS⁻¹c_Sj, the
///    auxiliary coefficients in correlation units over the current regressors S; ties: the earlier
///    feature), until 1/(1 − R²_j) ≤ threshold. The removed features "explain" x_j's VIF: without
///    them it would not exceed the threshold.
/// 3. Collinear sets: the connected components, of two or more features, of the graph on the
///    high-VIF features that joins each to its primary explainer (the first removed in step 2)
///    when that one has a high VIF too; members in feature order, sets ordered by their first
///    member. A low-VIF explainer joins no set: its own coefficient is well determined, and joining
///    it would chain unrelated dependencies through it (on the demo, length and sentiment features
///    through "!" counts). When no high-VIF feature has a high-VIF primary explainer, the feature
///    with the largest VIF (ties: the earliest) forms a set with its primary explainer, whatever
///    that one's VIF, so that every round drops a feature. Pairwise correlation is deliberately not
///    a criterion: it misses dependencies among many features (x₀ ≈ x₁ + … + x₆ with independent
///    x_m: every |r| ≈ 0.38) and would join unrelated dependencies whose members happen to correlate
///    (Belsley, Kuh & Welsch 1980, ch. 3). Duplicated triples (x₁ ≈ x₂ ≈ x₃) are handled because
///    removal continues until the VIF falls.
/// 4. Representative of a set: the member with the largest LMG share of the full fit's R²
///    (`ShapleyAttribution`); shares within 1e-9 relative of each other count as tied (they differ
///    by rounding only, which varies between CPUs) and the earliest feature wins a tie. The other
///    members are dropped.
/// 5. Rounds: rules 2–4 run first on the full fit's kept features, then again on the features
///    left, with the VIFs recomputed among them, until no VIF exceeds the threshold. A set found in
///    a later round that contains an earlier set's representative absorbs that set, and the
///    representative is chosen again among the members still in (so the largest share over the
///    merged set wins). Each round drops at least one feature, so this ends.
/// 6. Parsimonious fit: OLS (`LeastSquaresFit.fit`, same options) on the features left, in feature
///    order; every VIF among them is at most the threshold.
///
/// Numerical caveat: the VIFs carry a relative error of about ε·κ(Z)²; the greedy step works on the
/// correlation matrix (pseudo-inverse by SVD), where only the order of ΔR² values and the threshold
/// crossing matter.
public struct CollinearityAnalysis: Sendable {
    /// VIF_j and the auxiliary R²_j = 1 − 1/VIF_j of one feature.
    public struct VarianceInflation: Sendable, Equatable {
        public let name: String
        /// 1/(1 − R²_j) ≥ 1; +∞ when R²_j is 1 to within the alias tolerance.
        public let factor: Double
        /// R²_j of x_j on an intercept and the other kept features, in [0, 1].
        public let auxiliaryRSquared: Double
    }

    /// Why a high-VIF feature is in its set.
    public struct Explanation: Sendable, Equatable {
        public let name: String
        public let factor: Double
        /// The features removed from its auxiliary regression by rule 2, in removal order.
        public let explainedBy: [String]
        /// Its VIF on the remaining features once those are removed (≤ the threshold).
        public let factorWithoutThem: Double
        /// The round that found it: 1 on the full fit's features, r + 1 on the features left after
        /// round r (rule 5); `factor` is its VIF among those.
        public let round: Int
    }

    /// One collinear set.
    public struct CollinearSet: Sendable, Equatable {
        /// The members in feature order, each with its VIF in the full fit.
        public let members: [VarianceInflation]
        /// One per member whose VIF exceeds the threshold.
        public let explanations: [Explanation]
        /// The LMG share of each member, in the order of `members`.
        public let lmgShares: [Double]
        /// The member kept by the parsimonious fit (rule 4).
        public let representative: String

        public var memberNames: [String] { members.map(\.name) }

        /// A sentence for reports: the members, why they are together, and why the representative.
        public var summary: String {
            let listed = members.map { "\($0.name) (VIF \(Self.number($0.factor)))" }.joined(separator: ", ")
            let why = explanations.map {
                "\($0.round > 1 ? "in round \($0.round), " : "")\($0.name) is explained by \($0.explainedBy.joined(separator: " and ")) (VIF \(Self.number($0.factor)) → \(Self.number($0.factorWithoutThem)) without)"
            }
                .joined(separator: "; ")
            let share = zip(members, lmgShares).first { $0.0.name == representative }.map { Self.number($0.1) } ?? "?"
            return "collinear set \(listed): \(why). Kept \(representative), the largest LMG share (\(share)); coefficients of the members are not separately interpretable in the full fit"
        }

        private static func number(_ x: Double) -> String { x.isFinite ? String(format: "%.3g", x) : "∞" }
    }

    public struct Options: Sendable {
        /// VIF above which a feature is collinear (rule 2); must exceed 1.
        public var threshold: Double
        /// LMG shares within this relative distance of each other are tied (rule 4).
        public var tieTolerance: Double

        public init(threshold: Double = 10, tieTolerance: Double = 1e-9) {
            self.threshold = threshold
            self.tieTolerance = tieTolerance
        }
    }

    public let threshold: Double
    /// One per feature of the full fit (kept: non-constant, non-aliased), in feature order.
    public let varianceInflation: [VarianceInflation]
    public let sets: [CollinearSet]
    /// The features of the parsimonious fit, in feature order.
    public let parsimoniousFeatures: [String]
    /// The set members left out of it (the non-representatives), in feature order.
    public let droppedFeatures: [String]
    /// OLS on `parsimoniousFeatures`.
    public let parsimoniousFit: LeastSquaresFit
    /// The VIFs among `parsimoniousFeatures`, all at most the threshold (rule 6).
    public let parsimoniousVarianceInflation: [VarianceInflation]
    /// The rounds of rules 2–4 that ran (0 when no feature's VIF exceeds the threshold).
    public let rounds: Int

    /// Diagnoses `fullFit`, which must be `LeastSquaresFit.fit(features, target: target, options: fitOptions)`,
    /// with LMG shares the caller already has (feature name → φ_j; names outside the sets are not
    /// needed, extra names are ignored). Every member of a collinear set needs a share: shares of
    /// groups do not say which member to keep.
    public static func analyze(
        _ features: FeatureMatrix, target: [Double], fullFit: LeastSquaresFit, lmgShares: [String: Double],
        fitOptions: LeastSquaresFit.Options = .init(), options: Options = .init()
    ) throws -> CollinearityAnalysis {
        let diagnosis = try collinearSets(features, fullFit: fullFit, aliasTolerance: fitOptions.aliasTolerance, options: options)
        return try finish(diagnosis, features: features, target: target, fitOptions: fitOptions, options: options) { name in
            guard let share = lmgShares[name] else {
                throw IRMError("collinearity: no LMG share for feature \"\(name)\", a member of a collinear set; pass a share for every feature (LMG computed with groups gives no per-member share)")
            }
            guard share.isFinite else {
                throw IRMError("collinearity: the LMG share of feature \"\(name)\" is \(share); expected a finite number")
            }
            return share
        }
    }

    /// Fits OLS, computes the LMG shares of its kept features with `ShapleyAttribution` (at most
    /// `ShapleyAttribution.maximumPlayers` features; more throws, use the overload that takes shares),
    /// and diagnoses. `.undefined` when the full fit is.
    public static func analyze(
        _ features: FeatureMatrix, target: [Double], fitOptions: LeastSquaresFit.Options = .init(),
        options: Options = .init()
    ) throws -> StatisticOutcome<CollinearityAnalysis> {
        let full = try LeastSquaresFit.fit(features, target: target, options: fitOptions)
        guard let fullFit = full.value else {
            return .undefined(reason: full.undefinedReason ?? "the full fit is undefined")
        }
        let diagnosis = try collinearSets(features, fullFit: fullFit, aliasTolerance: fitOptions.aliasTolerance, options: options)
        var shares: [String: Double] = [:]
        if diagnosis.inflation.contains(where: { $0.factor > options.threshold }) {
            let kept = try columnIndices(fullFit.coefficients.map(\.name), in: features)
            guard kept.count <= ShapleyAttribution.maximumPlayers else {
                throw IRMError("collinearity: choosing representatives needs per-feature LMG shares of the \(kept.count) fitted features, and LMG handles at most \(ShapleyAttribution.maximumPlayers) players; compute shares another way and call analyze(_:target:fullFit:lmgShares:)")
            }
            let lmg = try ShapleyAttribution.decompose(features.selectingColumns(kept), target: target)
            guard let attribution = lmg.value else {
                throw IRMError("collinearity: LMG is undefined although the fit is not: \(lmg.undefinedReason ?? "")")
            }
            for share in attribution.shares { shares[share.name] = share.share }
        }
        return .defined(try analyze(features, target: target, fullFit: fullFit, lmgShares: shares,
                                    fitOptions: fitOptions, options: options))
    }

    /// Rule 1 for the features of `fit` (its coefficients' names), which must come from `features`.
    public static func varianceInflationFactors(_ features: FeatureMatrix, fit: LeastSquaresFit,
                                                aliasTolerance: Double = LeastSquaresFit.Options().aliasTolerance) throws
        -> [VarianceInflation] {
        let names = fit.coefficients.map(\.name)
        let columns = try columnIndices(names, in: features)
        guard fit.observationCount == features.rowCount else {
            throw IRMError("collinearity: the fit has \(fit.observationCount) observations but the feature matrix has \(features.rowCount) rows; pass the matrix the fit was made from")
        }
        let design = PreparedDesign(features.selectingColumns(columns))
        guard design.constantNames.isEmpty else {
            throw IRMError("collinearity: feature\(design.constantNames.count == 1 ? "" : "s") \(design.constantNames.joined(separator: ", ")) of the fit \(design.constantNames.count == 1 ? "is" : "are") constant in the feature matrix; pass the matrix the fit was made from")
        }
        let z = design.standardizedDesign(columns: Array(0..<columns.count))
        let factors = try inflationFactors(z, aliasTolerance: aliasTolerance)
        return zip(names, factors).map { name, factor in
            VarianceInflation(name: name, factor: factor, auxiliaryRSquared: factor.isFinite ? max(0, 1 - 1 / factor) : 1)
        }
    }

    // MARK: - Internals

    /// What rules 1–3 found before shares are known, and the column bookkeeping.
    struct SetDiagnosis {
        let inflation: [VarianceInflation]
        /// Column indices of the fit's kept features in the feature matrix, in feature order.
        let keptColumns: [Int]
        /// The correlation matrix of the kept features.
        let correlations: ColumnMajorMatrix
    }

    static func validate(_ options: Options) throws {
        guard options.threshold.isFinite, options.threshold > 1 else {
            throw IRMError("collinearity: VIF threshold \(options.threshold) must be a finite number above 1 (VIF ≥ 1 always)")
        }
        guard options.tieTolerance >= 0, options.tieTolerance.isFinite else {
            throw IRMError("collinearity: tie tolerance \(options.tieTolerance) must be a finite number ≥ 0")
        }
    }

    static func collinearSets(_ features: FeatureMatrix, fullFit: LeastSquaresFit, aliasTolerance: Double,
                              options: Options) throws -> SetDiagnosis {
        try validate(options)
        let inflation = try varianceInflationFactors(features, fit: fullFit, aliasTolerance: aliasTolerance)
        let kept = try columnIndices(inflation.map(\.name), in: features)
        return SetDiagnosis(inflation: inflation, keptColumns: kept, correlations: correlationMatrix(features.selectingColumns(kept)))
    }

    /// One round of rules 2–3 on the `active` features (positions into the kept features), whose
    /// VIFs among themselves are `factors`: the new sets as groups of positions, with explanations.
    static func round(_ number: Int, active: [Int], factors: [Double], diagnosis: SetDiagnosis, threshold: Double) throws
        -> [(members: [Int], explanations: [Explanation])] {
        let names = diagnosis.inflation.map(\.name)
        let correlations = diagnosis.correlations.selectingRows(active).selectingColumns(active)
        var parent = Array(active.indices)
        func root(_ a: Int) -> Int {
            var a = a
            while parent[a] != a { a = parent[a] }
            return a
        }
        func join(_ a: Int, _ b: Int) {
            let ra = root(a), rb = root(b)
            parent[max(ra, rb)] = min(ra, rb)
        }
        var explanations: [Int: Explanation] = [:], primaries: [Int: Int] = [:]
        let flagged = active.indices.filter { factors[$0] > threshold }
        for j in flagged {
            let (removed, without) = try explainingFeatures(of: j, correlations: correlations, threshold: threshold)
            explanations[j] = Explanation(name: names[active[j]], factor: factors[j], explainedBy: removed.map { names[active[$0]] },
                                          factorWithoutThem: without, round: number)
            primaries[j] = removed.first
            // A flagged feature is joined to its primary explainer (the first removed: the largest
            // ΔR²) when that one is flagged too. A low-VIF feature has a well-determined coefficient
            // of its own and joins no set, and the later, smaller explainers (a sentiment count that
            // takes a length's VIF the last step below the threshold) do not chain two dependencies
            // into one.
            if let primary = removed.first, factors[primary] > threshold { join(j, primary) }
        }
        var components: [Int: [Int]] = [:]
        for j in flagged { components[root(j), default: []].append(j) }
        var sets = components.keys.sorted().compactMap { key -> [Int]? in
            let members = components[key] ?? []
            return members.count < 2 ? nil : members
        }
        // No flagged feature has a flagged primary explainer: the one with the largest VIF (ties:
        // the earliest) forms a set with its primary explainer, so that every round drops a feature.
        if sets.isEmpty, let worst = flagged.max(by: { factors[$0] < factors[$1] || (factors[$0] == factors[$1] && $0 > $1) }),
           let primary = primaries[worst] {
            sets = [[min(worst, primary), max(worst, primary)]]
        }
        return sets.map { members in (members.map { active[$0] }, members.compactMap { explanations[$0] }) }
    }

    /// Rules 2–6, round after round until no feature of the parsimonious fit has VIF above the
    /// threshold.
    private static func finish(_ diagnosis: SetDiagnosis, features: FeatureMatrix, target: [Double],
                               fitOptions: LeastSquaresFit.Options, options: Options,
                               share: (String) throws -> Double) throws -> CollinearityAnalysis {
        let k = diagnosis.inflation.count
        // Sets as member positions with explanations, a union-find over positions to merge them.
        var setOf = Array(0..<k)
        func root(_ a: Int) -> Int {
            var a = a
            while setOf[a] != a { a = setOf[a] }
            return a
        }
        var explanations: [Int: [Explanation]] = [:], inSet = Set<Int>(), dropped = Set<Int>()
        var shares: [Int: Double] = [:]
        func shareOf(_ position: Int) throws -> Double {
            if let known = shares[position] { return known }
            let value = try share(diagnosis.inflation[position].name)
            shares[position] = value
            return value
        }
        var factors = diagnosis.inflation.map(\.factor)
        var active = Array(0..<k)
        var number = 1
        while factors.contains(where: { $0 > options.threshold }) {
            let found = try round(number, active: active, factors: factors, diagnosis: diagnosis, threshold: options.threshold)
            guard !found.isEmpty else { break }
            for set in found {
                for member in set.members.dropFirst() {
                    let a = root(set.members[0]), b = root(member)
                    setOf[max(a, b)] = min(a, b)
                }
                inSet.formUnion(set.members)
                for explanation in set.explanations {
                    explanations[root(set.members[0]), default: []].append(explanation)
                }
                // The active members of the (merged) set: keep the largest share, drop the rest.
                let members = set.members
                let best = representativePosition(try members.map(shareOf), tieTolerance: options.tieTolerance)
                for (position, member) in members.enumerated() where position != best { dropped.insert(member) }
            }
            active = (0..<k).filter { !dropped.contains($0) }
            let z = PreparedDesign(features.selectingColumns(active.map { diagnosis.keptColumns[$0] }))
                .standardizedDesign(columns: Array(0..<active.count))
            factors = try inflationFactors(z, aliasTolerance: fitOptions.aliasTolerance)
            number += 1
        }
        // Explanations were filed under the root at the time; regroup them under the final roots.
        var byRoot: [Int: [Explanation]] = [:]
        for (key, list) in explanations { byRoot[root(key), default: []] += list }
        let position = Dictionary(diagnosis.inflation.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
        var groups: [Int: [Int]] = [:]
        for position in inSet.sorted() { groups[root(position), default: []].append(position) }
        let sets = try groups.keys.sorted().map { key -> CollinearSet in
            let members = groups[key] ?? []
            let kept = members.filter { !dropped.contains($0) }
            guard kept.count == 1, let representative = kept.first else {
                throw IRMError("collinearity: internal error: a collinear set keeps \(kept.count) members")
            }
            let listed = (byRoot[key] ?? []).sorted { ($0.round, position[$0.name] ?? 0) < ($1.round, position[$1.name] ?? 0) }
            return CollinearSet(members: members.map { diagnosis.inflation[$0] }, explanations: listed,
                                lmgShares: try members.map(shareOf), representative: diagnosis.inflation[representative].name)
        }
        let subset = features.selectingColumns(active.map { diagnosis.keptColumns[$0] })
        let refit = try LeastSquaresFit.fit(subset, target: target, options: fitOptions)
        guard let parsimonious = refit.value else {
            throw IRMError("collinearity: the parsimonious fit on \(subset.names.joined(separator: ", ")) is undefined although the full fit is not (\(refit.undefinedReason ?? "")); the full fit passed in was probably made from other data")
        }
        return CollinearityAnalysis(
            threshold: options.threshold, varianceInflation: diagnosis.inflation, sets: sets,
            parsimoniousFeatures: subset.names,
            droppedFeatures: dropped.sorted().map { diagnosis.inflation[$0].name },
            parsimoniousFit: parsimonious,
            parsimoniousVarianceInflation: zip(active, factors).map { position, factor in
                VarianceInflation(name: diagnosis.inflation[position].name, factor: factor,
                                  auxiliaryRSquared: factor.isFinite ? max(0, 1 - 1 / factor) : 1)
            },
            rounds: number - 1)
    }

    /// Rule 4: the position of the largest share; a share counts as larger only when it exceeds the
    /// best so far by more than `tieTolerance` relative, so ties go to the earliest position.
    static func representativePosition(_ shares: [Double], tieTolerance: Double) -> Int {
        var best = 0
        for position in shares.indices.dropFirst() {
            let scale = max(abs(shares[position]), abs(shares[best]))
            if shares[position] - shares[best] > tieTolerance * scale { best = position }
        }
        return best
    }

    /// Rule 1 on a z-scored design Z = [1, z_1…z_k] (column 0 the intercept): VIF_j = n Σ_i V_ji²/σ_i²,
    /// +∞ where 1/VIF_j < tol² or a zero singular value meets a nonzero V_ji.
    static func inflationFactors(_ z: ColumnMajorMatrix, aliasTolerance: Double) throws -> [Double] {
        let k = z.columns - 1
        guard k > 0 else { return [] }
        let (_, s, vt) = try z.thinSVD()
        let n = Double(z.rows)
        return (1...k).map { j in
            var sum = 0.0
            for i in s.indices {
                let v = vt[i, j]
                if v == 0 { continue }
                sum += v * v / (s[i] * s[i])
            }
            let factor = n * sum
            guard factor.isFinite, 1 / factor >= aliasTolerance * aliasTolerance else { return .infinity }
            return max(factor, 1)
        }
    }

    /// Rule 2 for feature j: the greedily removed regressors and the VIF without them.
    static func explainingFeatures(of j: Int, correlations c: ColumnMajorMatrix, threshold: Double) throws
        -> (removed: [Int], factorWithoutThem: Double) {
        var remaining = (0..<c.columns).filter { $0 != j }
        var removed: [Int] = []
        while !remaining.isEmpty {
            let sub = c.selectingRows(remaining).selectingColumns(remaining)
            let inverse = try pseudoInverse(ofSymmetric: sub)
            let cj = remaining.map { c[$0, j] }
            let w = inverse.times(cj)
            let r2 = min(max(zip(cj, w).reduce(0) { $0 + $1.0 * $1.1 }, 0), 1)
            // The caller found VIF_j above the threshold from the design itself; the first removal
            // is not second-guessed by the correlation-matrix value, which may differ in the last digits.
            if !removed.isEmpty && inflation(fromRSquared: r2) <= threshold { break }
            var best = 0, bestDrop = -Double.infinity
            for position in remaining.indices {
                let diagonal = inverse[position, position]
                let drop = diagonal > 0 ? w[position] * w[position] / diagonal : 0
                if drop > bestDrop { best = position; bestDrop = drop }
            }
            removed.append(remaining.remove(at: best))
        }
        let without: Double
        if remaining.isEmpty {
            without = 1
        } else {
            let sub = c.selectingRows(remaining).selectingColumns(remaining)
            let cj = remaining.map { c[$0, j] }
            let w = try pseudoInverse(ofSymmetric: sub).times(cj)
            without = inflation(fromRSquared: min(max(zip(cj, w).reduce(0) { $0 + $1.0 * $1.1 }, 0), 1))
        }
        return (removed, without)
    }

    private static func inflation(fromRSquared r2: Double) -> Double {
        r2 < 1 ? 1 / (1 - r2) : .infinity
    }

    /// A⁺ = V diag(1/σ_i) Uᵀ for symmetric positive semi-definite A, with σ_i ≤ 1e-13·σ_max treated
    /// as 0 (for a positive definite A this is A⁻¹).
    static func pseudoInverse(ofSymmetric a: ColumnMajorMatrix) throws -> ColumnMajorMatrix {
        let (u, s, vt) = try a.thinSVD()
        let cutoff = (s.first ?? 0) * 1e-13
        var scaledV = vt.transposed
        for i in s.indices {
            let inverse = s[i] > cutoff ? 1 / s[i] : 0
            for r in 0..<scaledV.rows { scaledV[r, i] *= inverse }
        }
        return ColumnMajorMatrix.product(scaledV, u, transposeB: true)
    }

    /// The correlation matrix zᵀz/n of the z-scored columns (all non-constant).
    private static func correlationMatrix(_ features: FeatureMatrix) -> ColumnMajorMatrix {
        let design = PreparedDesign(features)
        let z = design.standardizedColumns(Array(0..<design.kept.count))
        var c = ColumnMajorMatrix.product(z, transposeA: true, z)
        for index in c.values.indices { c.values[index] /= Double(features.rowCount) }
        return c
    }

    private static func columnIndices(_ names: [String], in features: FeatureMatrix) throws -> [Int] {
        try names.map { name in
            guard let j = features.index(of: name) else {
                throw IRMError("collinearity: the fit has feature \"\(name)\", which is not among the feature matrix's features (\(features.names.joined(separator: ", "))); pass the matrix the fit was made from")
            }
            return j
        }
    }
}
