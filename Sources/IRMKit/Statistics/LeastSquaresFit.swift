import Foundation

/// Ordinary least squares with an intercept, reported the way statsmodels' `OLS(...).fit()` does,
/// plus HC3 robust errors, standardised coefficients, k-fold cross-validated R² and the
/// collinearity diagnostics statsmodels warns about.
///
/// Procedure:
/// 1. Constant features (max = min) are dropped with a note: they are aliased with the intercept.
/// 2. A target with a single distinct value makes R² undefined: the outcome is `.undefined`.
///    Fewer samples than (non-constant features + 2) throws, since no residual degree of freedom
///    would remain for any test.
/// 3. Diagnostics on raw (unstandardised) designs: λ_min = s_min² of DᵀD for the design as given,
///    D = [1, X] after step 1, and the condition number κ = s_max/s_min (statsmodels'
///    `condition_number`, √(λ_max/λ_min), from `dgesdd` singular values) of the design actually
///    fitted, D_fit = [1, X_kept] after step 5 drops aliased features. On a singular D, κ would be
///    s_max over a rounding-level s_min: a meaningless number that differs between CPUs. λ_min < 1e-10
///    and κ > 1000 give statsmodels' two warnings (the first wins). Without aliased features D = D_fit.
/// 4. Features are z-scored with the population standard deviation (divisor n). OLS with an
///    intercept is invariant to this reparametrisation, so the raw-scale results are exact; it
///    only makes the numerics well scaled.
/// 5. Aliasing: Householder QR (`dgeqrf`, no pivoting) of Z = [1, z₁…z_k]. |R_jj| is the norm of
///    the part of column j not explained by the intercept and the columns before it. When
///    |R_jj| < `aliasTolerance` · √n (each column of Z has norm √n) the feature is aliased: it is
///    a linear combination of earlier ones. The first aliased feature is removed and the check is
///    repeated. This is the rule of R's `lm` (tolerance 1e-7): aliased coefficients are left out
///    rather than given an arbitrary minimum-norm value, and the earlier feature of a pair is kept.
/// 6. β is solved by `dgelsd` (SVD) on the kept standardised columns, with singular values below
///    `rcond` · s_max treated as 0 (default 1e-12; after step 5 none should be).
/// 7. With Z = QR: (ZᵀZ)⁻¹ = R⁻¹R⁻ᵀ, leverages h_i = ‖Q_i‖², classical covariance
///    σ̂²(ZᵀZ)⁻¹ with σ̂² = SSR/(n − rank), HC3 covariance R⁻¹ Qᵀ diag(e_i²/(1 − h_i)²) Q R⁻ᵀ
///    (MacKinnon & White 1985; statsmodels `cov_HC3`). Both are mapped to raw units by the linear
///    map b = Mβ (b_j = β_j/sd_j, b₀ = β₀ − Σ β_j mean_j/sd_j) as M Σ Mᵀ.
///
/// Numerical caveat: raw-scale results inherit the conditioning of the raw design only through
/// M, which is exact algebra; agreement with statsmodels is within 1e-8 relative on the committed
/// fixtures, including one with κ ≈ 1.6e4.
public struct LeastSquaresFit: Sendable {
    /// One row of the coefficient table.
    public struct Coefficient: Sendable, Equatable {
        public let name: String
        /// The coefficient in raw units of feature and target.
        public let estimate: Double
        /// b_j · sd(x_j)/sd(y): the coefficient on z-scored feature and z-scored target (nil for
        /// the intercept). The divisor of sd cancels, so population and sample sd give the same.
        public let standardizedEstimate: Double?
        /// Classical standard error √(σ̂² [(XᵀX)⁻¹]_jj).
        public let standardError: Double
        /// HC3 heteroskedasticity-robust standard error; nil when some sample has leverage 1 (its
        /// residual is 0 and e_i/(1 − h_i) is 0/0), as happens with a binary feature set in only one row.
        public let robustStandardError: Double?
        /// estimate / standardError.
        public let tStatistic: Double
        /// Two-sided P(|T| ≥ |t|), T ~ Student t with df_resid degrees of freedom.
        public let pValue: Double
        /// Two-sided p-value of estimate / robustStandardError under the same t distribution
        /// (statsmodels `fit(cov_type="HC3", use_t=True)`).
        public let robustPValue: Double?
        /// estimate ± t_{(1+level)/2, df_resid} · standardError.
        public let confidenceLower: Double
        public let confidenceUpper: Double
    }

    public let intercept: Coefficient
    /// One per kept feature, in input order (constant and aliased features are absent).
    public let coefficients: [Coefficient]
    public let observationCount: Int
    /// rank − 1 (the intercept is not counted), as statsmodels' df_model.
    public let modelDegreesOfFreedom: Int
    /// n − rank.
    public let residualDegreesOfFreedom: Int
    /// 1 − SSR/SST with SST = Σ(y − ȳ)².
    public let rSquared: Double
    /// 1 − (n − 1)/(n − rank) · (1 − R²).
    public let adjustedRSquared: Double
    /// (ESS/df_model)/(SSR/df_resid); nil when no feature is left (df_model = 0).
    public let fStatistic: Double?
    /// P(F > fStatistic) for F(df_model, df_resid).
    public let fPValue: Double?
    /// k-fold cross-validated R² = 1 − Σ_i (y_i − ŷ_{−fold(i)})² / Σ_i (y_i − ȳ)²: each fold is
    /// predicted by OLS fitted on the others (same kept features, `dgelsd` minimum-norm solution if
    /// a training design is rank deficient). Folds: the rows are shuffled with `SeededRandom(seed)`
    /// and row at shuffled position i goes to fold i mod k. ȳ is the full-sample mean, so the value
    /// can be negative. nil when k < 2 or some training set would have fewer rows than coefficients.
    public let crossValidatedRSquared: Double?
    /// κ = s_max/s_min of the raw design actually fitted, [1, X] without constant and aliased
    /// features (statsmodels' `condition_number` of that exog); +∞ if s_min = 0.
    public let conditionNumber: Double
    /// λ_min = s_min² of DᵀD for the raw design as given, D = [1, X] without constant features but
    /// with aliased ones, so that a singular design shows here (≈ 0) while κ describes the fit.
    public let smallestEigenvalue: Double
    /// Singular values of the kept standardised design, from `dgelsd`.
    public let singularValues: [Double]
    /// The numerical rank `dgelsd` found (intercept included).
    public let rank: Int
    /// Features dropped because they are constant.
    public let droppedConstantFeatures: [String]
    /// Features left out because they are linear combinations of earlier ones.
    public let aliasedFeatures: [String]
    /// Human-readable warnings and notes (statsmodels' collinearity warnings, dropped features).
    public let notes: [String]
    /// ŷ and e = y − ŷ, one per sample.
    public let fittedValues: [Double]
    public let residuals: [Double]
    /// Residual sum of squares Σ e_i².
    public let residualSumOfSquares: Double

    /// Tuning of `fit`.
    public struct Options: Sendable {
        public var crossValidationFolds: Int
        public var seed: UInt64
        public var confidenceLevel: Double
        /// Relative residual norm below which a feature counts as aliased (see step 5).
        public var aliasTolerance: Double
        /// `dgelsd`'s rcond.
        public var rcond: Double

        public init(crossValidationFolds: Int = 5, seed: UInt64 = 0, confidenceLevel: Double = 0.95,
                    aliasTolerance: Double = 1e-7, rcond: Double = 1e-12) {
            self.crossValidationFolds = crossValidationFolds
            self.seed = seed
            self.confidenceLevel = confidenceLevel
            self.aliasTolerance = aliasTolerance
            self.rcond = rcond
        }
    }

    /// Fits y = b₀ + Σ b_j x_j by OLS. Throws for malformed input (length mismatch, non-finite
    /// target, too few samples); returns `.undefined` when R² is undefined for the data.
    public static func fit(_ features: FeatureMatrix, target: [Double], options: Options = Options()) throws
        -> StatisticOutcome<LeastSquaresFit> {
        let n = features.rowCount
        guard target.count == n else {
            throw IRMError("least squares: the target has \(target.count) values but the feature matrix has \(n) rows")
        }
        if let bad = target.firstIndex(where: { !$0.isFinite }) {
            throw IRMError("least squares: the target has a non-finite value (\(target[bad])) in row \(bad); expected a finite number")
        }
        guard options.confidenceLevel > 0 && options.confidenceLevel < 1 else {
            throw IRMError("least squares: confidence level \(options.confidenceLevel) is outside (0, 1)")
        }
        let prepared = PreparedDesign(features)
        var notes: [String] = []
        if !prepared.constantNames.isEmpty {
            notes.append("dropped constant feature\(prepared.constantNames.count == 1 ? "" : "s") \(prepared.constantNames.joined(separator: ", ")): a constant is aliased with the intercept")
        }
        let k = prepared.kept.count
        guard n >= k + 2 else {
            throw IRMError("least squares: \(n) samples for \(k) non-constant features; at least \(k + 2) samples are needed (features + intercept + one residual degree of freedom). Use fewer features or more samples")
        }
        let yMean = ColumnMoments.mean(target[...])
        let sst = target.reduce(0) { $0 + ($1 - yMean) * ($1 - yMean) }
        if target.allSatisfy({ $0 == target[0] }) {
            return .undefined(reason: "all \(n) target values equal \(target[0]); R² and the coefficient tests are undefined for a constant target")
        }

        // Standardised design and aliasing.
        var included = Array(0..<k)
        var aliased: [Int] = []
        var z = prepared.standardizedDesign(columns: included)
        while true {
            let r = try z.qrUpperTriangle()
            let threshold = options.aliasTolerance * Double(n).squareRoot()
            guard let first = (1..<(included.count + 1)).first(where: { abs(r[$0, $0]) < threshold }) else { break }
            aliased.append(included[first - 1])
            included.remove(at: first - 1)
            z = prepared.standardizedDesign(columns: included)
        }

        // Diagnostics on the raw design, as statsmodels computes them: λ_min on the design as given
        // (so that a singular design is flagged), κ on the design actually fitted. κ of a singular
        // design is s_max over a rounding-level s_min, a number that changes from CPU to CPU.
        let raw = ColumnMajorMatrix(rows: n, columns: k + 1, values: [Double](repeating: 1, count: n)
                                        + prepared.kept.flatMap { Array(features.column($0)) })
        let rawSingular = try raw.singularValues()
        let sMin = rawSingular.last ?? 0
        let smallestEigenvalue = sMin * sMin
        let fittedSingular = aliased.isEmpty ? rawSingular : try raw.selectingColumns([0] + included.map { $0 + 1 }).singularValues()
        let fittedMax = fittedSingular.first ?? 0, fittedMin = fittedSingular.last ?? 0
        let conditionNumber = fittedMin > 0 ? fittedMax / fittedMin : .infinity
        if smallestEigenvalue < 1e-10 {
            notes.append("the smallest eigenvalue of XᵀX is \(smallestEigenvalue) (< 1e-10): the design is singular or nearly so")
        } else if conditionNumber > 1000 {
            notes.append("the condition number is \(conditionNumber) (> 1000): strong multicollinearity or badly scaled features")
        }
        let aliasedNames = aliased.sorted().map { features.names[prepared.kept[$0]] }
        if !aliasedNames.isEmpty {
            notes.append("left out aliased feature\(aliasedNames.count == 1 ? "" : "s") \(aliasedNames.joined(separator: ", ")): each is a linear combination of the intercept and the features before it")
        }

        let solved = try z.leastSquares(target, rcond: options.rcond)
        let p = included.count + 1
        let beta = solved.solution
        if solved.rank < p {
            notes.append("dgelsd found rank \(solved.rank) for \(p) columns after removing aliased features; results use the minimum-norm solution")
        }
        let fitted = z.times(beta)
        let residuals = zip(target, fitted).map { $0 - $1 }
        let ssr = residuals.reduce(0) { $0 + $1 * $1 }
        if ssr <= 1e-24 * sst {
            // Say which relation holds: the raw-unit solution, leaving out terms that move the
            // target by less than 1e-9 of its sd.
            let ySd = (sst / Double(n)).squareRoot()
            var intercept = beta[0]
            var terms: [String] = []
            for (position, column) in included.enumerated() {
                let standardized = beta[position + 1]
                intercept -= standardized * prepared.means[column] / prepared.sds[column]
                guard abs(standardized) > 1e-9 * ySd else { continue }
                let raw = standardized / prepared.sds[column]
                terms.append("\(raw < 0 ? "− " : "+ ")\(Self.shortNumber(abs(raw)))·\(features.names[prepared.kept[column]])")
            }
            let relation = "target = \(Self.shortNumber(abs(intercept) < 1e-12 * max(ySd, 1) ? 0 : intercept)) \(terms.joined(separator: " "))"
            return .undefined(reason: "the features reproduce the target exactly (residual sum of squares \(ssr)): \(relation); standard errors and tests are undefined")
        }
        let dfResid = n - solved.rank
        let dfModel = solved.rank - 1
        let sigma2 = ssr / Double(dfResid)

        // Covariances in standardised units from the QR factors.
        let r = try z.qrUpperTriangle()
        let rInverse = try r.upperTriangularInverse()
        let q = z.timesInverseOfUpperTriangular(r)
        var leverage = [Double](repeating: 0, count: n)
        for j in 0..<p { for i in 0..<n { leverage[i] += q[i, j] * q[i, j] } }
        let unscaled = ColumnMajorMatrix.product(rInverse, rInverse, transposeB: true)
        var robustDefined = true
        var weightedQ = q
        for i in 0..<n {
            let oneMinusH = 1 - leverage[i]
            if oneMinusH < 1e-10 { robustDefined = false; break }
            let w = abs(residuals[i]) / oneMinusH
            for j in 0..<p { weightedQ[i, j] *= w }
        }
        if !robustDefined {
            notes.append("HC3 standard errors are undefined: a sample has leverage 1 (it alone determines a coefficient)")
        }
        let meat = ColumnMajorMatrix.product(weightedQ, transposeA: true, weightedQ)
        let robustStd = ColumnMajorMatrix.product(ColumnMajorMatrix.product(rInverse, meat), rInverse, transposeB: true)

        // Map to raw units: b = M β.
        var m = ColumnMajorMatrix.identity(p)
        for (position, column) in included.enumerated() {
            let j = position + 1
            m[j, j] = 1 / prepared.sds[column]
            m[0, j] = -prepared.means[column] / prepared.sds[column]
        }
        let b = m.times(beta)
        let classical = ColumnMajorMatrix.product(ColumnMajorMatrix.product(m, unscaled), m, transposeB: true)
        let robust = ColumnMajorMatrix.product(ColumnMajorMatrix.product(m, robustStd), m, transposeB: true)

        let df = Double(dfResid)
        let tCritical = StudentTDistribution.upperQuantile((1 - options.confidenceLevel) / 2, degreesOfFreedom: df)
        let ySd = (sst / Double(n)).squareRoot()
        func coefficient(_ j: Int, name: String, standardized: Double?) -> Coefficient {
            let se = (sigma2 * classical[j, j]).squareRoot()
            let robustSE: Double? = robustDefined ? robust[j, j].squareRoot() : nil
            let t = b[j] / se
            return Coefficient(
                name: name, estimate: b[j], standardizedEstimate: standardized, standardError: se,
                robustStandardError: robustSE, tStatistic: t,
                pValue: StudentTDistribution.twoSidedPValue(t, degreesOfFreedom: df),
                robustPValue: robustSE.map { StudentTDistribution.twoSidedPValue(b[j] / $0, degreesOfFreedom: df) },
                confidenceLower: b[j] - tCritical * se, confidenceUpper: b[j] + tCritical * se)
        }
        let intercept = coefficient(0, name: "const", standardized: nil)
        let coefficients = included.enumerated().map { position, column in
            coefficient(position + 1, name: features.names[prepared.kept[column]],
                        standardized: b[position + 1] * prepared.sds[column] / ySd)
        }

        let rSquared = 1 - ssr / sst
        let adjusted = 1 - Double(n - 1) / df * (1 - rSquared)
        var fStatistic: Double? = nil
        var fPValue: Double? = nil
        if dfModel > 0 {
            let f = ((sst - ssr) / Double(dfModel)) / sigma2
            fStatistic = f
            fPValue = FDistribution.survival(f, numeratorDegrees: Double(dfModel), denominatorDegrees: df)
        }
        let cv = try crossValidatedRSquared(design: z, target: target, sst: sst,
                                            folds: options.crossValidationFolds, seed: options.seed, rcond: options.rcond)
        return .defined(LeastSquaresFit(
            intercept: intercept, coefficients: coefficients, observationCount: n,
            modelDegreesOfFreedom: dfModel, residualDegreesOfFreedom: dfResid, rSquared: rSquared,
            adjustedRSquared: adjusted, fStatistic: fStatistic, fPValue: fPValue, crossValidatedRSquared: cv,
            conditionNumber: conditionNumber, smallestEigenvalue: smallestEigenvalue,
            singularValues: solved.singularValues, rank: solved.rank,
            droppedConstantFeatures: prepared.constantNames, aliasedFeatures: aliasedNames, notes: notes,
            fittedValues: fitted, residuals: residuals, residualSumOfSquares: ssr))
    }

    /// Six significant digits, for messages.
    static func shortNumber(_ x: Double) -> String {
        String(format: "%.6g", x)
    }

    /// The fold (0..<k) of each of n rows: rows shuffled by `SeededRandom(seed)`, the row at
    /// shuffled position i in fold i mod k.
    public static func foldAssignment(rowCount n: Int, folds k: Int, seed: UInt64) -> [Int] {
        var generator = SeededRandom(seed: seed)
        var order = Array(0..<n)
        generator.shuffle(&order)
        var fold = [Int](repeating: 0, count: n)
        for (position, row) in order.enumerated() { fold[row] = position % max(k, 1) }
        return fold
    }

    private static func crossValidatedRSquared(design z: ColumnMajorMatrix, target: [Double], sst: Double,
                                               folds k: Int, seed: UInt64, rcond: Double) throws -> Double? {
        let n = z.rows
        guard k >= 2, n >= k, n - (n + k - 1) / k >= z.columns else { return nil }
        let fold = foldAssignment(rowCount: n, folds: k, seed: seed)
        var sse = 0.0
        for f in 0..<k {
            let train = (0..<n).filter { fold[$0] != f }
            let test = (0..<n).filter { fold[$0] == f }
            let solution = try z.selectingRows(train).leastSquares(train.map { target[$0] }, rcond: rcond).solution
            let predicted = z.selectingRows(test).times(solution)
            for (index, row) in test.enumerated() {
                let e = target[row] - predicted[index]
                sse += e * e
            }
        }
        return 1 - sse / sst
    }
}

/// Column means and population standard deviations (two-pass, divisor n).
/// The non-constant columns of a feature matrix with their means and population sds, and the
/// z-scored design built from them.
struct PreparedDesign {
    /// Indices (into the feature matrix) of non-constant features.
    let kept: [Int]
    let constantNames: [String]
    /// Mean and population sd per kept feature (indexed like `kept`).
    let means: [Double]
    let sds: [Double]
    let features: FeatureMatrix

    init(_ features: FeatureMatrix) {
        self.features = features
        var kept: [Int] = [], constant: [String] = [], means: [Double] = [], sds: [Double] = []
        for j in 0..<features.columnCount {
            let column = features.column(j)
            let lo = column.min() ?? 0, hi = column.max() ?? 0
            if lo == hi {
                constant.append(features.names[j])
                continue
            }
            let mean = ColumnMoments.mean(column)
            kept.append(j)
            means.append(mean)
            sds.append(ColumnMoments.populationSD(column, mean: mean))
        }
        self.kept = kept
        self.constantNames = constant
        self.means = means
        self.sds = sds
    }

    /// z-scored kept features at `columns` (indices into `kept`).
    func standardizedColumns(_ columns: [Int]) -> ColumnMajorMatrix {
        let n = features.rowCount
        var values = [Double]()
        values.reserveCapacity(n * columns.count)
        for c in columns {
            let mean = means[c], sd = sds[c]
            values += ColumnMoments.zScored(features.column(kept[c]), mean: mean, sd: sd)
        }
        return ColumnMajorMatrix(rows: n, columns: columns.count, values: values)
    }

    /// [1, z_columns…].
    func standardizedDesign(columns: [Int]) -> ColumnMajorMatrix {
        let n = features.rowCount
        let z = standardizedColumns(columns)
        return ColumnMajorMatrix(rows: n, columns: columns.count + 1,
                                 values: [Double](repeating: 1, count: n) + z.values)
    }
}
