import Foundation

/// The rotary frequencies of each RoPE scaling type, as transformers computes them
/// (`transformers/modeling_rope_utils.py`, `ROPE_INIT_FUNCTIONS`), in Double. With d the rotary
/// width, θ `rope_theta` and ω_i = θ^(-2i/d) the plain frequencies:
///
/// - `linear`: ω_i / factor.
/// - `dynamic` (NTK): θ' = θ·((factor·L/L₀) − (factor − 1))^(d/(d−2)) for a sequence of length L past
///   L₀ = max_position_embeddings; plain ω_i up to L₀.
/// - `yarn`: between ω_i/factor (interpolation) and ω_i (extrapolation) by a linear ramp over the
///   dimensions whose rotation counts lie between beta_slow and beta_fast at the original context;
///   cos and sin are multiplied by the attention factor (0.1·ln(factor) + 1 unless given, or the
///   mscale/mscale_all_dim ratio).
/// - `longrope`: ω_i / short_factor_i (long_factor_i past original_max_position_embeddings), cos and
///   sin times √(1 + ln(factor)/ln(L_orig)) unless given.
/// - `llama3`: ω_i for wavelengths below L_orig/high_freq_factor, ω_i/factor above
///   L_orig/low_freq_factor, and in between (1 − s)·ω_i/factor + s·ω_i with
///   s = (L_orig/λ_i − low_freq_factor)/(high_freq_factor − low_freq_factor), λ_i = 2π/ω_i.
///
/// transformers computes them in float32; the values here differ from its by float32 rounding
/// (about 1e-7 relative).
extension RopeScaling {
    static func plainFrequencies(rotaryDim d: Int, theta: Double) -> [Double] {
        (0..<(d / 2)).map { 1 / Foundation.pow(theta, Double(2 * $0) / Double(d)) }
    }

    /// The frequencies and the cos/sin scale of a model's RoPE for a sequence of
    /// `sequenceLength` tokens (nil: one within the length where the frequencies do not depend on
    /// it).
    static func frequencies(of config: ModelConfig, sequenceLength: Int? = nil) -> (frequencies: [Double], scale: Double) {
        let plain = plainFrequencies(rotaryDim: config.rotaryDim, theta: config.ropeTheta)
        guard let scaling = config.ropeScaling else { return (plain, 1) }
        return scaling.frequencies(plain: plain, rotaryDim: config.rotaryDim, theta: config.ropeTheta, sequenceLength: sequenceLength)
    }

    func frequencies(plain: [Double], rotaryDim d: Int, theta: Double, sequenceLength: Int? = nil) -> (frequencies: [Double], scale: Double) {
        let long = sequenceLength.map { frequencyKey(sequenceLength: $0) != nil } ?? false
        switch kind {
        case .linear:
            return (plain.map { $0 / factor }, 1)
        case .dynamic:
            guard long, let length = sequenceLength, d > 2 else { return (plain, 1) }
            let base = Double(maxPositions)
            let grown = theta * Foundation.pow(factor * Double(length) / base - (factor - 1), Double(d) / Double(d - 2))
            return (RopeScaling.plainFrequencies(rotaryDim: d, theta: grown), 1)
        case .llama3:
            let original = Double(originalMaxPositions ?? 0)
            let low = lowFrequencyFactor ?? 1, high = highFrequencyFactor ?? 4
            let lowWavelength = original / low, highWavelength = original / high
            return (plain.map { w in
                let wavelength = 2 * Double.pi / w
                if wavelength < highWavelength { return w }
                if wavelength > lowWavelength { return w / factor }
                let smooth = (original / wavelength - low) / (high - low)
                return (1 - smooth) * w / factor + smooth * w
            }, 1)
        case .yarn:
            func magnitude(_ scale: Double, _ m: Double = 1) -> Double { scale <= 1 ? 1 : 0.1 * m * Foundation.log(scale) + 1 }
            var attention = attentionFactor ?? magnitude(factor)
            if attentionFactor == nil, let m = mscale, let all = mscaleAllDimensions, m != 0, all != 0 {
                attention = magnitude(factor, m) / magnitude(factor, all)
            }
            let original = Double(originalMaxPositions ?? 1)
            func correctionDimension(_ rotations: Double) -> Double {
                Double(d) * Foundation.log(original / (rotations * 2 * Double.pi)) / (2 * Foundation.log(theta))
            }
            var low = correctionDimension(betaFast), high = correctionDimension(betaSlow)
            if truncate {
                low = low.rounded(.down)
                high = high.rounded(.up)
            }
            low = max(low, 0)
            high = min(high, Double(d - 1))
            if low == high { high += 0.001 }
            return (plain.enumerated().map { i, w in
                let ramp = min(max((Double(i) - low) / (high - low), 0), 1)
                let extrapolation = 1 - ramp
                return (w / factor) * (1 - extrapolation) + w * extrapolation
            }, attention)
        case .longrope:
            let original = Double(originalMaxPositions ?? 1)
            let attention = attentionFactor ?? (factor <= 1 ? 1 : (1 + Foundation.log(factor) / Foundation.log(original)).squareRoot())
            let ext = (long ? longFactor : shortFactor) ?? [Double](repeating: 1, count: plain.count)
            return (zip(plain, ext).map { $0 / $1 }, attention)
        }
    }
}
