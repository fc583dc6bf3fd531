import Foundation

/// Special functions behind the p-values and intervals of the statistics layer.
///
/// Accuracy: checked against 50-digit mpmath values, with scipy 1.17 recorded beside them
/// (`Tests/Fixtures/statistics/special_functions.json`), to
/// 1e-10 relative, including degrees of freedom 1, 2 and 1e6 and tails down to 1e-300 (worst seen:
/// 2.5e-12 at ν = 1e6, t = 10; most values agree to a few ulp).
///
/// Floor: results are ordinary `Double`s. Probabilities below about 2.2e-308 are subnormal and keep
/// fewer significant digits; below about 4.9e-324 they are 0. A p-value of 0 therefore means
/// "smaller than 4.9e-324", never "impossible".
public enum SpecialFunctions {
    /// ln Γ(x) for x > 0 (glibc's `lgamma`, accurate to a few ulp).
    public static func logGamma(_ x: Double) -> Double {
        Foundation.lgamma(x)
    }

    /// ln B(a, b) = ln Γ(a) + ln Γ(b) − ln Γ(a + b) for a, b > 0.
    ///
    /// When an argument is ≥ 10 the large Γ values are never formed: the Stirling terms are combined
    /// analytically and only the small Stirling remainders δ(x) = ln Γ(x) − [(x − ½) ln x − x + ½ ln 2π]
    /// are subtracted. Without this, ln Γ(5e5) − ln Γ(5e5 + ½) cancels ~7 digits and a t-test with
    /// 1e6 degrees of freedom loses its 1e-10 accuracy.
    public static func logBeta(_ a: Double, _ b: Double) -> Double {
        let p = min(a, b), q = max(a, b)
        let halfLog2Pi = 0.918_938_533_204_672_741_78
        if p >= 10 {
            let correction = stirlingRemainder(p) + stirlingRemainder(q) - stirlingRemainder(p + q)
            return -0.5 * log(q) + halfLog2Pi + correction
                + (p - 0.5) * log(p / (p + q)) + q * log1p(-p / (p + q))
        } else if q >= 10 {
            let correction = stirlingRemainder(q) - stirlingRemainder(p + q)
            return logGamma(p) + correction + p - p * log(p + q) + (q - 0.5) * log1p(-p / (p + q))
        } else {
            return logGamma(p) + logGamma(q) - logGamma(p + q)
        }
    }

    /// δ(x) = ln Γ(x) − [(x − ½) ln x − x + ½ ln 2π] for x ≥ 10, from the Stirling series in the
    /// Bernoulli numbers B₂…B₁₄; the first omitted term is below 3e-17 at x = 10.
    static func stirlingRemainder(_ x: Double) -> Double {
        let r = 1 / (x * x)
        let series = 1.0 / 12 + r * (-1.0 / 360 + r * (1.0 / 1260 + r * (-1.0 / 1680
            + r * (1.0 / 1188 + r * (-691.0 / 360_360 + r * (1.0 / 156))))))
        return series / x
    }

    /// The digamma function ψ(x) = d/dx ln Γ(x) for x > 0: the recurrence ψ(x) = ψ(x + 1) − 1/x lifts
    /// x to ≥ 10, then the asymptotic series (absolute error below 1e-16 there).
    public static func digamma(_ x: Double) -> Double {
        guard x > 0 else { return .nan }
        var value = 0.0
        var z = x
        while z < 10 {
            value -= 1 / z
            z += 1
        }
        let r = 1 / (z * z)
        let tail = r * (1.0 / 12 - r * (1.0 / 120 - r * (1.0 / 252 - r * (1.0 / 240
            - r * (1.0 / 132 - r * (691.0 / 32760 - r * (1.0 / 12)))))))
        return value + log(z) - 0.5 / z - tail
    }

    /// The regularised incomplete beta function I_x(a, b) = B(x; a, b) / B(a, b), a, b > 0, 0 ≤ x ≤ 1.
    public static func regularizedIncompleteBeta(a: Double, b: Double, x: Double) -> Double {
        incompleteBeta(a: a, b: b, x: x, y: 1 - x).lower
    }

    /// I_x(a, b) and its complement 1 − I_x(a, b) = I_{1−x}(b, a), each computed directly so that the
    /// smaller one keeps its relative accuracy. Pass `y = 1 − x` computed without cancellation when
    /// you can (for example t²/(ν + t²) rather than 1 − ν/(ν + t²)); `logX`/`logY` may be given
    /// when x or y underflow.
    ///
    /// Method: the continued fraction for I_x(a, b) evaluated by the modified Lentz algorithm, used
    /// where it converges fast (x < (a + 1)/(a + b + 2)); otherwise the same fraction for I_y(b, a).
    /// For large a the switch point moves further into the tail (see the body) to avoid cancellation.
    /// The prefactor x^a y^b / (a B(a, b)) is formed in logs.
    public static func incompleteBeta(
        a: Double, b: Double, x: Double, y: Double, logX: Double? = nil, logY: Double? = nil
    ) -> (lower: Double, upper: Double) {
        guard a > 0, b > 0, x >= 0, y >= 0 else { return (.nan, .nan) }
        if x == 0 && logX == nil { return (0, 1) }
        if y == 0 && logY == nil { return (1, 0) }
        let lx = logX ?? (x <= 0.5 ? log(x) : log1p(-y))
        let ly = logY ?? (y <= 0.5 ? log(y) : log1p(-x))
        let logPrefactorBase = a * lx + b * ly - logBeta(a, b)
        // Where y is tiny and a large, the direct fraction cancels in 1 + d·D (error ~ ε/y, 1e-10 at
        // ν = 1e6); the swapped fraction still converges fast there and its complement keeps 13
        // digits, so the switch moves from the mean to b + 1 + 4√(b + 1) "standard deviations" of y·a.
        let switchPoint = (b + 1) / (a + b + 2)
        let widened = (b + 1 + 4 * (b + 1).squareRoot()) / (a + b + 2)
        let useDirect = y > (widened < 0.01 ? widened : switchPoint)
        if useDirect {
            let lower = exp(logPrefactorBase - log(a)) * continuedFraction(a: a, b: b, x: x)
            return (lower, 1 - lower)
        } else {
            let upper = exp(logPrefactorBase - log(b)) * continuedFraction(a: b, b: a, x: y)
            return (1 - upper, upper)
        }
    }

    /// The continued fraction 1/(1 + d₁/(1 + d₂/(1 + …))) of I_x(a, b), with
    /// d₂ₘ₊₁ = −(a + m)(a + b + m)x / ((a + 2m)(a + 2m + 1)) and d₂ₘ = m(b − m)x / ((a + 2m − 1)(a + 2m)),
    /// by the modified Lentz method. Stops when a step changes the value by less than 1e-16 relative;
    /// the cap of 100 000 steps is never reached for x below the switch point.
    private static func continuedFraction(a: Double, b: Double, x: Double) -> Double {
        let tiny = 1e-300
        let epsilon = 1e-16
        var c = 1.0
        var d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var h = d
        for m in 1...100_000 {
            let mm = Double(m)
            let even = mm * (b - mm) * x / ((a + 2 * mm - 1) * (a + 2 * mm))
            d = 1 + even * d
            if abs(d) < tiny { d = tiny }
            c = 1 + even / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            h *= d * c
            let odd = -(a + mm) * (a + b + mm) * x / ((a + 2 * mm) * (a + 2 * mm + 1))
            d = 1 + odd * d
            if abs(d) < tiny { d = tiny }
            c = 1 + odd / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            let step = d * c
            h *= step
            if abs(step - 1) < epsilon { break }
        }
        return h
    }
}

/// The standard normal distribution.
public enum NormalDistribution {
    /// P(Z ≤ z), through `erfc` so that the lower tail keeps its relative accuracy.
    public static func cdf(_ z: Double) -> Double { 0.5 * erfc(-z / 2.0.squareRoot()) }

    /// P(Z > z).
    public static func survival(_ z: Double) -> Double { 0.5 * erfc(z / 2.0.squareRoot()) }

    /// The density φ(z).
    public static func density(_ z: Double) -> Double {
        exp(-0.5 * z * z) / (2 * Double.pi).squareRoot()
    }

    /// The z with P(Z > z) = `upperTail`, for 0 < upperTail < 1, solved by safeguarded Newton steps
    /// on ln P(Z > z) to about 1e-14 relative.
    public static func upperQuantile(_ upperTail: Double) -> Double {
        guard upperTail > 0, upperTail < 1 else { return upperTail <= 0 ? .infinity : -.infinity }
        if upperTail > 0.5 { return -upperQuantile(1 - upperTail) }
        return TailQuantileSolver.solve(target: upperTail,
                                        survival: survival(_:),
                                        density: density(_:))
    }

    /// The z with P(Z ≤ z) = `probability`.
    public static func quantile(_ probability: Double) -> Double {
        probability < 0.5 ? -upperQuantile(probability) : upperQuantile(1 - probability)
    }
}

/// Student's t distribution with ν > 0 degrees of freedom (ν need not be an integer).
public enum StudentTDistribution {
    /// P(T > t) for t ≥ 0 is ½ I_x(ν/2, ½) with x = ν/(ν + t²); x and 1 − x are formed from
    /// u = t/√ν without overflow, so |t| up to Double.greatestFiniteMagnitude is handled.
    public static func survival(_ t: Double, degreesOfFreedom nu: Double) -> Double {
        if t.isNaN || !(nu > 0) { return .nan }
        let half = 0.5 * centralTail(abs(t), nu)
        return t >= 0 ? half : 1 - half
    }

    /// P(T ≤ t).
    public static func cdf(_ t: Double, degreesOfFreedom nu: Double) -> Double {
        survival(-t, degreesOfFreedom: nu)
    }

    /// The two-sided p-value P(|T| ≥ |t|) = I_x(ν/2, ½).
    public static func twoSidedPValue(_ t: Double, degreesOfFreedom nu: Double) -> Double {
        if t.isNaN || !(nu > 0) { return .nan }
        return centralTail(abs(t), nu)
    }

    /// The density of T at t: (1 + t²/ν)^{−(ν+1)/2} / (√ν B(ν/2, ½)).
    public static func density(_ t: Double, degreesOfFreedom nu: Double) -> Double {
        let u = abs(t) / nu.squareRoot()
        let log1pU2 = u < 1 ? log1p(u * u) : 2 * log(u) + log1p(1 / (u * u))
        return exp(-(nu + 1) / 2 * log1pU2 - 0.5 * log(nu) - SpecialFunctions.logBeta(nu / 2, 0.5))
    }

    /// The t with P(T > t) = `upperTail` (0 < upperTail < 1); the 95% interval uses
    /// `upperQuantile(0.025, …)`. Solved by safeguarded Newton steps on ln P(T > t) to about 1e-14
    /// relative, so it is exact to the accuracy of `survival`.
    public static func upperQuantile(_ upperTail: Double, degreesOfFreedom nu: Double) -> Double {
        guard nu > 0, !upperTail.isNaN else { return .nan }
        guard upperTail > 0, upperTail < 1 else { return upperTail <= 0 ? .infinity : -.infinity }
        if upperTail == 0.5 { return 0 }
        if upperTail > 0.5 { return -upperQuantile(1 - upperTail, degreesOfFreedom: nu) }
        return TailQuantileSolver.solve(target: upperTail,
                                        survival: { survival($0, degreesOfFreedom: nu) },
                                        density: { density($0, degreesOfFreedom: nu) })
    }

    /// The t with P(T ≤ t) = `probability`.
    public static func quantile(_ probability: Double, degreesOfFreedom nu: Double) -> Double {
        probability < 0.5
            ? -upperQuantile(probability, degreesOfFreedom: nu)
            : upperQuantile(1 - probability, degreesOfFreedom: nu)
    }

    /// P(|T| ≥ t) for t ≥ 0.
    private static func centralTail(_ t: Double, _ nu: Double) -> Double {
        if t == 0 { return 1 }
        if t.isInfinite { return 0 }
        let u = t / nu.squareRoot()
        let x: Double, y: Double, logX: Double, logY: Double
        if u < 1 {
            let u2 = u * u
            x = 1 / (1 + u2); y = u2 / (1 + u2)
            logX = -log1p(u2); logY = 2 * log(u) - log1p(u2)
        } else {
            let w = 1 / (u * u)  // may underflow to 0 for huge t; the logs below stay exact
            x = w / (1 + w); y = 1 / (1 + w)
            logX = -2 * log(u) - log1p(w); logY = -log1p(w)
        }
        return SpecialFunctions.incompleteBeta(a: nu / 2, b: 0.5, x: x, y: y, logX: logX, logY: logY).lower
    }
}

/// The F distribution with d₁ (numerator) and d₂ (denominator) degrees of freedom.
public enum FDistribution {
    /// P(F > f) = I_x(d₂/2, d₁/2) with x = d₂/(d₂ + d₁f), formed from r = d₁f/d₂ without
    /// cancellation.
    public static func survival(_ f: Double, numeratorDegrees d1: Double, denominatorDegrees d2: Double) -> Double {
        guard d1 > 0, d2 > 0, !f.isNaN else { return .nan }
        if f <= 0 { return 1 }
        if f.isInfinite { return 0 }
        let r = d1 * f / d2
        let x = 1 / (1 + r), y = r / (1 + r)
        let logX = -log1p(r), logY = log(r) - log1p(r)
        return SpecialFunctions.incompleteBeta(a: d2 / 2, b: d1 / 2, x: x, y: y, logX: logX, logY: logY).lower
    }
}

/// Solves S(z) = target for z > 0 where S is a decreasing upper-tail probability with density s = −S'.
/// Newton steps on g(z) = ln S(z) − ln target (g' = −s/S), kept inside a bracket that bisection
/// shrinks whenever a Newton step would leave it.
enum TailQuantileSolver {
    static func solve(target: Double, survival: (Double) -> Double, density: (Double) -> Double) -> Double {
        let logTarget = log(target)
        var lo = 0.0
        var hi = 1.0
        while survival(hi) > target && hi < Double.greatestFiniteMagnitude / 4 { lo = hi; hi *= 2 }
        var z = 0.5 * (lo + hi)
        for _ in 0..<400 {
            let s = survival(z)
            let g = log(s) - logTarget
            if g > 0 { lo = z } else { hi = z }
            let slope = -density(z) / s
            var next = z - g / slope
            if !(next > lo && next < hi) || !next.isFinite {
                next = lo > 0 && hi > 4 * lo ? (lo * hi).squareRoot() : 0.5 * (lo + hi)
            }
            if abs(next - z) <= 1e-15 * abs(z) || hi - lo <= 1e-15 * hi { return next }
            z = next
        }
        return z
    }
}
