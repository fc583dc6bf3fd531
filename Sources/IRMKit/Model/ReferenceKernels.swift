import Foundation

/// Plain, loop-by-loop versions of the kernels in `Kernels` and `CausalAttention`, computed in
/// Double from the formulas, for the tests to compare the fast versions with (and, for attention,
/// also in the fast kernel's own float32 order, which it must match bit for bit). Nothing in the
/// forward pass calls them.
public enum ReferenceKernels {
    /// `y[r][o] = Σ_i x[r][i] W[o][i] + b[o]`, W stored `[out, in]`.
    public static func linear(_ x: [Float], rows: Int, weight: [Float], outFeatures: Int, inFeatures: Int, bias: [Float]?) -> [Double] {
        var y = [Double](repeating: 0, count: rows * outFeatures)
        for r in 0..<rows {
            for o in 0..<outFeatures {
                var acc = Double(bias?[o] ?? 0)
                for i in 0..<inFeatures { acc += Double(x[r * inFeatures + i]) * Double(weight[o * inFeatures + i]) }
                y[r * outFeatures + o] = acc
            }
        }
        return y
    }

    public static func layerNorm(_ x: [Float], width: Int, weight: [Float], bias: [Float], epsilon: Double) -> [Double] {
        var y = [Double](repeating: 0, count: x.count)
        for r in 0..<(x.count / width) {
            let row = (0..<width).map { Double(x[r * width + $0]) }
            let mean = row.reduce(0, +) / Double(width)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(width)
            for j in 0..<width {
                y[r * width + j] = (row[j] - mean) / (variance + epsilon).squareRoot() * Double(weight[j]) + Double(bias[j])
            }
        }
        return y
    }

    public static func rmsNorm(_ x: [Float], width: Int, weight: [Float], epsilon: Double) -> [Double] {
        var y = [Double](repeating: 0, count: x.count)
        for r in 0..<(x.count / width) {
            let row = (0..<width).map { Double(x[r * width + $0]) }
            let meanSquare = row.reduce(0) { $0 + $1 * $1 } / Double(width)
            for j in 0..<width { y[r * width + j] = row[j] / (meanSquare + epsilon).squareRoot() * Double(weight[j]) }
        }
        return y
    }

    public static func geluTanh(_ x: Double) -> Double {
        0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
    }

    public static func geluErf(_ x: Double) -> Double {
        0.5 * x * (1 + erf(x / 2.0.squareRoot()))
    }

    public static func silu(_ x: Double) -> Double {
        x / (1 + Foundation.exp(-x))
    }

    public static func logSumExp(_ x: [Float]) -> Double {
        let m = Double(x.max() ?? -.infinity)
        return m + Foundation.log(x.reduce(0.0) { $0 + Foundation.exp(Double($1) - m) })
    }

    /// `Σ_v p(v) (log p(v) - log q(v))` for the softmaxes of `a` and `b`.
    public static func klDivergence(_ a: [Float], _ b: [Float]) -> Double {
        let lseA = logSumExp(a), lseB = logSumExp(b)
        var total = 0.0
        for v in a.indices {
            let logP = Double(a[v]) - lseA, logQ = Double(b[v]) - lseB
            total += Foundation.exp(logP) * (logP - logQ)
        }
        return total
    }

    /// Rotate-half RoPE of one head vector at `position`, on its first `rotaryDim` dimensions.
    public static func rotary(_ x: [Float], position: Int, rotaryDim: Int, theta: Double) -> [Double] {
        var y = x.map(Double.init)
        let half = rotaryDim / 2
        for i in 0..<half {
            let angle = Double(position) / Foundation.pow(theta, Double(2 * i) / Double(rotaryDim))
            let x1 = Double(x[i]), x2 = Double(x[i + half])
            y[i] = x1 * Foundation.cos(angle) - x2 * Foundation.sin(angle)
            y[i + half] = x2 * Foundation.cos(angle) + x1 * Foundation.sin(angle)
        }
        return y
    }

    /// Causal (grouped-query) attention of one sequence. `q`: `[T, heads·d]`; `k`, `v`:
    /// `[T, kvHeads·d]`. A query at position i sees keys j ≤ i with i - j < window. With `softCap`
    /// c, each scaled score s becomes `c·tanh(s/c)` before the softmax (Gemma 2).
    public static func attention(q: [Float], k: [Float], v: [Float], length: Int, headCount: Int, kvHeadCount: Int,
                                 headDim: Int, scale: Double, window: Int?, softCap: Double? = nil) -> [Double] {
        var out = [Double](repeating: 0, count: length * headCount * headDim)
        let group = headCount / kvHeadCount
        for h in 0..<headCount {
            let kvh = h / group
            for i in 0..<length {
                let lo = window.map { max(0, i - $0 + 1) } ?? 0
                var scores: [Double] = []
                for j in lo...i {
                    var dot = 0.0
                    for d in 0..<headDim {
                        dot += Double(q[i * headCount * headDim + h * headDim + d]) * Double(k[j * kvHeadCount * headDim + kvh * headDim + d])
                    }
                    let scaled = dot * scale
                    scores.append(softCap.map { $0 * Foundation.tanh(scaled / $0) } ?? scaled)
                }
                let m = scores.max() ?? 0
                let weights = scores.map { Foundation.exp($0 - m) }
                let total = weights.reduce(0, +)
                for d in 0..<headDim {
                    var acc = 0.0
                    for (offset, j) in (lo...i).enumerated() {
                        acc += weights[offset] * Double(v[j * kvHeadCount * headDim + kvh * headDim + d])
                    }
                    out[i * headCount * headDim + h * headDim + d] = acc / total
                }
            }
        }
        return out
    }

    /// `attention` in the float32 arithmetic of `CausalAttention`, written plainly, one query and
    /// one output dimension at a time: each score a fused multiply-add chain over the dimensions
    /// then scaled (then soft-capped), the softmax numerators `Kernels.exp` of eight scores at a
    /// time from the first visible key, summed in eight lanes, then the lanes (`SIMD8.sum`), then
    /// the tail with `Foundation.exp`, and each output a fused multiply-add chain over the visible
    /// keys in order, times `1/Σ`. The fast kernel must give these bits exactly. Same layout as
    /// `attention`.
    public static func attentionInKernelOrder(q: [Float], k: [Float], v: [Float], length: Int, headCount: Int,
                                              kvHeadCount: Int, headDim: Int, scale: Float, window: Int?,
                                              softCap: Float? = nil) -> [Float] {
        var out = [Float](repeating: 0, count: length * headCount * headDim)
        let group = headCount / kvHeadCount
        let qWidth = headCount * headDim, kvWidth = kvHeadCount * headDim
        for h in 0..<headCount {
            let kvh = h / group
            for i in 0..<length {
                let lo = window.map { max(0, i - $0 + 1) } ?? 0
                var scores: [Float] = []
                for j in lo...i {
                    var dot: Float = 0
                    for d in 0..<headDim {
                        dot = dot.addingProduct(q[i * qWidth + h * headDim + d], k[j * kvWidth + kvh * headDim + d])
                    }
                    let scaled = dot * scale
                    scores.append(softCap.map { $0 * Foundation.tanh(scaled / $0) } ?? scaled)
                }
                let m = scores.max()!
                var weights = [Float](repeating: 0, count: scores.count)
                var lanes = SIMD8<Float>()
                var j = 0
                while j + 8 <= scores.count {
                    let e = Kernels.exp(SIMD8((0..<8).map { scores[j + $0] - m }))
                    for lane in 0..<8 { weights[j + lane] = e[lane] }
                    lanes += e
                    j += 8
                }
                var total = lanes.sum()
                while j < scores.count {
                    weights[j] = Foundation.exp(scores[j] - m)
                    total += weights[j]
                    j += 1
                }
                let inverse = 1 / total
                for d in 0..<headDim {
                    var acc: Float = 0
                    for (offset, j) in (lo...i).enumerated() {
                        acc = acc.addingProduct(weights[offset], v[j * kvWidth + kvh * headDim + d])
                    }
                    out[i * qWidth + h * headDim + d] = acc * inverse
                }
            }
        }
        return out
    }
}
