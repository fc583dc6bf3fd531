import Foundation

/// Ridge regression with the penalty chosen by generalised cross-validation (Golub, Heath & Wahba
/// 1979), from one SVD.
///
/// Features are z-scored with the population standard deviation (divisor n, as scikit-learn's
/// `StandardScaler`), so λ is on the scale of that convention; the target is centred and the
/// intercept is not penalised. With Z = U diag(s) Vᵀ and c = Uᵀ(y − ȳ):
///
///     β(λ)  = V diag(s_i/(s_i² + λ)) c
///     df(λ) = Σ s_i²/(s_i² + λ)                         (effective degrees of freedom)
///     RSS(λ) = ‖y − ȳ‖² − ‖c‖² + Σ c_i² (λ/(s_i² + λ))²
///     GCV(λ) = n · RSS(λ) / (n − 1 − df(λ))²           (the intercept counts as one more df)
///
/// λ is the global minimiser of GCV over a log grid of `gridPoints` values from
/// s_max² · 10^−8 to s_max² · 10^4, refined by bisection on the sign of dGCV/dλ ∝ RSS′·D − 2·RSS·D′
/// (D = n − 1 − df) between the grid neighbours of the best point, to about 1e-14 relative. A
/// minimum on the grid's edge is reported as is, with `lambdaAtGridBoundary` set.
public struct RidgeFit: Sendable {
    public struct Coefficient: Sendable, Equatable {
        public let name: String
        /// In raw units of feature and target.
        public let estimate: Double
        /// On z-scored feature and z-scored target (population sd for both).
        public let standardizedEstimate: Double
    }

    public let lambda: Double
    public let effectiveDegreesOfFreedom: Double
    public let generalizedCrossValidation: Double
    public let intercept: Double
    public let coefficients: [Coefficient]
    public let droppedConstantFeatures: [String]
    public let lambdaAtGridBoundary: Bool

    public static func fit(_ features: FeatureMatrix, target: [Double], gridPoints: Int = 241) throws
        -> StatisticOutcome<RidgeFit> {
        let n = features.rowCount
        guard target.count == n else {
            throw IRMError("ridge: the target has \(target.count) values but the feature matrix has \(n) rows")
        }
        if let bad = target.firstIndex(where: { !$0.isFinite }) {
            throw IRMError("ridge: the target has a non-finite value in row \(bad)")
        }
        guard gridPoints >= 3 else { throw IRMError("ridge: the λ grid needs at least 3 points, got \(gridPoints)") }
        let prepared = PreparedDesign(features)
        let k = prepared.kept.count
        guard k >= 1 else { return .undefined(reason: "ridge: every feature is constant; there is nothing to fit") }
        guard n >= 3 else { throw IRMError("ridge: \(n) samples; at least 3 are needed") }
        let yMean = ColumnMoments.mean(target[...])
        let yc = target.map { $0 - yMean }
        let sst = yc.reduce(0) { $0 + $1 * $1 }
        guard sst > 0 else { return .undefined(reason: "all \(n) target values are equal; ridge regression is undefined") }

        let z = prepared.standardizedColumns(Array(0..<k))
        let svd = try z.thinSVD()
        let s = svd.s
        let c = svd.u.transposeTimes(yc)
        let base = max(sst - c.reduce(0) { $0 + $1 * $1 }, 0)
        let nd = Double(n)

        func parts(_ lambda: Double) -> (rss: Double, df: Double) {
            var rss = base, df = 0.0
            for i in s.indices {
                let d = s[i] * s[i] + lambda
                let shrink = lambda / d
                rss += c[i] * c[i] * shrink * shrink
                df += s[i] * s[i] / d
            }
            return (rss, df)
        }
        func gcv(_ lambda: Double) -> Double {
            let (rss, df) = parts(lambda)
            let denominator = nd - 1 - df
            return nd * rss / (denominator * denominator)
        }
        func slopeSign(_ lambda: Double) -> Double {
            let (rss, df) = parts(lambda)
            var dRss = 0.0, dDf = 0.0
            for i in s.indices {
                let s2 = s[i] * s[i], d = s2 + lambda
                dRss += c[i] * c[i] * 2 * lambda * s2 / (d * d * d)
                dDf += s2 / (d * d)
            }
            return dRss * (nd - 1 - df) - 2 * rss * dDf
        }

        let sMax2 = (s.first ?? 0) * (s.first ?? 0)
        let grid = (0..<gridPoints).map { sMax2 * pow(10, -8 + 12 * Double($0) / Double(gridPoints - 1)) }
        let values = grid.map(gcv)
        var best = 0
        for i in values.indices where values[i] < values[best] { best = i }
        var lambda = grid[best]
        let atBoundary = best == 0 || best == gridPoints - 1
        if !atBoundary {
            var lo = log(grid[best - 1]), hi = log(grid[best + 1])
            if slopeSign(grid[best - 1]) < 0 && slopeSign(grid[best + 1]) > 0 {
                for _ in 0..<200 where hi - lo > 1e-15 * max(abs(lo), 1) {
                    let mid = 0.5 * (lo + hi)
                    if slopeSign(exp(mid)) < 0 { lo = mid } else { hi = mid }
                }
                lambda = exp(0.5 * (lo + hi))
            }
        }
        let (_, df) = parts(lambda)
        var scaled = [Double](repeating: 0, count: s.count)
        for i in s.indices { scaled[i] = s[i] / (s[i] * s[i] + lambda) * c[i] }
        let beta = svd.vt.transposeTimes(scaled)
        let ySd = (sst / nd).squareRoot()
        var intercept = yMean
        var coefficients: [Coefficient] = []
        for (position, column) in prepared.kept.enumerated() {
            let raw = beta[position] / prepared.sds[position]
            intercept -= raw * prepared.means[position]
            coefficients.append(Coefficient(name: features.names[column], estimate: raw,
                                            standardizedEstimate: beta[position] / ySd))
        }
        return .defined(RidgeFit(lambda: lambda, effectiveDegreesOfFreedom: df, generalizedCrossValidation: gcv(lambda),
                                 intercept: intercept, coefficients: coefficients,
                                 droppedConstantFeatures: prepared.constantNames, lambdaAtGridBoundary: atBoundary))
    }
}
