import Foundation

/// Mean-field variational Bayesian linear regression with automatic relevance determination
/// (ARD): Bishop (2006) §10.3 and §7.2.2, Drugowitsch (2013, arXiv 1310.5438), in the linear
/// setting that VRM (arXiv 2603.04974) motivates. The update equations and the ELBO are written
/// out in docs/formulas.md, "Variational Bayes with ARD".
///
/// Model, on z-scored features z (population sd) and the centred target y − ȳ (the intercept is
/// fixed at ȳ, a plug-in that makes it unpenalised):
///
///     y_i | w, τ ~ N(z_iᵀw, 1/τ),   w_j | α_j ~ N(0, 1/α_j),
///     α_j ~ Gamma(a₀, b₀),           τ ~ Gamma(c₀, d₀)          (shape, rate)
///
/// q(w, α, τ) = q(w) Π_j q(α_j) q(τ) with q(w) = N(m, S), q(α_j) = Gamma(a_N, b_Nj),
/// q(τ) = Gamma(c_N, d_N). One sweep updates q(w), then q(α), then q(τ); each update cannot lower
/// the ELBO, so the trace is non-decreasing (checked in the tests). Iteration stops when the ELBO
/// changes by less than `tolerance` relative, or after `maximumIterations`.
///
/// Initialisation: E[α_j] = 1, E[τ] = 1/mean((y − ȳ)²).
///
/// Caveat: ARD converges slowly once irrelevant precisions grow (they increase geometrically
/// towards ∞); `converged` says whether the tolerance was met.
public struct VariationalBayesRegression: Sendable {
    public struct Coefficient: Sendable, Equatable {
        public let name: String
        /// Posterior mean of the weight in raw units (m_j / sd_j).
        public let posteriorMean: Double
        /// Posterior standard deviation in raw units.
        public let posteriorSD: Double
        /// The central credible interval of q(w_j) at `level`.
        public let credibleLower: Double
        public let credibleUpper: Double
        /// Posterior mean of the weight on the z-scored feature (target in raw units).
        public let standardizedPosteriorMean: Double
        /// E[α_j] = a_N / b_Nj: large means the feature is switched off.
        public let expectedPrecision: Double
        /// 1/E[α_j], the posterior expected prior variance of the standardised weight: the
        /// feature's relevance (≈ 0 for an irrelevant feature).
        public var relevance: Double { 1 / expectedPrecision }
    }

    public struct Options: Sendable {
        public var a0: Double, b0: Double, c0: Double, d0: Double
        public var tolerance: Double
        public var maximumIterations: Int
        public var level: Double

        public init(a0: Double = 1e-6, b0: Double = 1e-6, c0: Double = 1e-6, d0: Double = 1e-6,
                    tolerance: Double = 1e-10, maximumIterations: Int = 2000, level: Double = 0.95) {
            self.a0 = a0; self.b0 = b0; self.c0 = c0; self.d0 = d0
            self.tolerance = tolerance
            self.maximumIterations = maximumIterations
            self.level = level
        }
    }

    public let coefficients: [Coefficient]
    public let intercept: Double
    /// E[τ] = c_N/d_N, the posterior expected noise precision.
    public let expectedNoisePrecision: Double
    /// The ELBO after each sweep.
    public let evidenceLowerBoundTrace: [Double]
    public let converged: Bool
    public var iterations: Int { evidenceLowerBoundTrace.count }
    public let droppedConstantFeatures: [String]

    public static func fit(_ features: FeatureMatrix, target: [Double], options: Options = .init()) throws
        -> StatisticOutcome<VariationalBayesRegression> {
        let n = features.rowCount
        guard target.count == n else {
            throw IRMError("variational Bayes: the target has \(target.count) values but the feature matrix has \(n) rows")
        }
        if let bad = target.firstIndex(where: { !$0.isFinite }) {
            throw IRMError("variational Bayes: the target has a non-finite value in row \(bad)")
        }
        guard options.a0 > 0, options.b0 > 0, options.c0 > 0, options.d0 > 0 else {
            throw IRMError("variational Bayes: Gamma prior parameters must be positive")
        }
        guard options.maximumIterations >= 1 else { throw IRMError("variational Bayes: maximumIterations must be ≥ 1") }
        guard n >= 2 else { throw IRMError("variational Bayes: \(n) samples; at least 2 are needed") }
        let prepared = PreparedDesign(features)
        let p = prepared.kept.count
        guard p >= 1 else { return .undefined(reason: "variational Bayes: every feature is constant") }
        let yMean = ColumnMoments.mean(target[...])
        let yc = target.map { $0 - yMean }
        let yy = yc.reduce(0) { $0 + $1 * $1 }
        guard yy > 0 else { return .undefined(reason: "all \(n) target values are equal; the regression is undefined") }

        let z = prepared.standardizedColumns(Array(0..<p))
        let ztz = ColumnMajorMatrix.product(z, transposeA: true, z)
        let zty = z.transposeTimes(yc)
        let nd = Double(n)
        let (a0, b0, c0, d0) = (options.a0, options.b0, options.c0, options.d0)
        let aN = a0 + 0.5, cN = c0 + 0.5 * nd
        let ln2pi = log(2 * Double.pi)
        let lnGamma = SpecialFunctions.logGamma, psi = SpecialFunctions.digamma
        var eAlpha = [Double](repeating: 1, count: p)
        var eTau = nd / yy
        var bN = [Double](repeating: b0, count: p)
        var m = [Double](repeating: 0, count: p)
        var s = ColumnMajorMatrix(rows: p, columns: p)
        var trace: [Double] = []
        var converged = false

        for _ in 0..<options.maximumIterations {
            // q(w): S = (E[τ] ZᵀZ + diag E[α])⁻¹, m = E[τ] S Zᵀy.
            var precision = ztz
            for index in precision.values.indices { precision.values[index] *= eTau }
            for j in 0..<p { precision[j, j] += eAlpha[j] }
            guard let l = precision.choleskyLower() else {
                throw IRMError("variational Bayes: the posterior precision matrix lost positive definiteness; the features are too collinear")
            }
            let upperInverse = try l.transposed.upperTriangularInverse()
            s = ColumnMajorMatrix.product(upperInverse, upperInverse, transposeB: true)
            m = s.times(zty).map { $0 * eTau }
            var logDetS = 0.0
            for j in 0..<p { logDetS -= 2 * log(l[j, j]) }
            // q(α_j): b_Nj = b₀ + (m_j² + S_jj)/2.
            for j in 0..<p {
                bN[j] = b0 + 0.5 * (m[j] * m[j] + s[j, j])
                eAlpha[j] = aN / bN[j]
            }
            // q(τ): d_N = d₀ + (‖y − Zm‖² + tr(ZᵀZ S))/2.
            let fitted = z.times(m)
            var expectedSquares = 0.0
            for i in 0..<n { expectedSquares += (yc[i] - fitted[i]) * (yc[i] - fitted[i]) }
            for index in ztz.values.indices { expectedSquares += ztz.values[index] * s.values[index] }
            let dN = d0 + 0.5 * expectedSquares
            eTau = cN / dN

            let eLnTau = psi(cN) - log(dN)
            var elbo = 0.5 * nd * eLnTau - 0.5 * nd * ln2pi - 0.5 * eTau * expectedSquares
            elbo += c0 * log(d0) - lnGamma(c0) + (c0 - 1) * eLnTau - d0 * eTau
            elbo += 0.5 * logDetS + 0.5 * Double(p) * (1 + ln2pi)
            elbo += cN - log(dN) + lnGamma(cN) + (1 - cN) * psi(cN)
            for j in 0..<p {
                let eLnAlpha = psi(aN) - log(bN[j])
                elbo += 0.5 * eLnAlpha - 0.5 * ln2pi - 0.5 * eAlpha[j] * (m[j] * m[j] + s[j, j])
                elbo += a0 * log(b0) - lnGamma(a0) + (a0 - 1) * eLnAlpha - b0 * eAlpha[j]
                elbo += aN - log(bN[j]) + lnGamma(aN) + (1 - aN) * psi(aN)
            }
            if let previous = trace.last, options.tolerance > 0, abs(elbo - previous) <= options.tolerance * abs(elbo) {
                trace.append(elbo)
                converged = true
                break
            }
            trace.append(elbo)
        }

        let zCritical = NormalDistribution.upperQuantile((1 - options.level) / 2)
        var intercept = yMean
        var coefficients: [Coefficient] = []
        for (j, column) in prepared.kept.enumerated() {
            let sd = prepared.sds[j]
            let mean = m[j] / sd, spread = s[j, j].squareRoot() / sd
            intercept -= mean * prepared.means[j]
            coefficients.append(Coefficient(name: features.names[column], posteriorMean: mean, posteriorSD: spread,
                                            credibleLower: mean - zCritical * spread, credibleUpper: mean + zCritical * spread,
                                            standardizedPosteriorMean: m[j], expectedPrecision: eAlpha[j]))
        }
        return .defined(VariationalBayesRegression(coefficients: coefficients, intercept: intercept,
                                                   expectedNoisePrecision: eTau, evidenceLowerBoundTrace: trace,
                                                   converged: converged, droppedConstantFeatures: prepared.constantNames))
    }
}
