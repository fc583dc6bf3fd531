import CBLAS
import Foundation

/// A float32 buffer that owns its memory, for activations and scratch space. Unlike `[Float]` it
/// can be shared with the threads of `DispatchQueue.concurrentPerform` without copies or
/// exclusivity checks; callers make sure that concurrent writers touch disjoint ranges.
final class FloatBuffer: @unchecked Sendable {
    let count: Int
    let pointer: UnsafeMutablePointer<Float>

    init(count: Int) {
        self.count = count
        pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
    }

    convenience init(zeros count: Int) {
        self.init(count: count)
        pointer.initialize(repeating: 0, count: count)
    }

    convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { pointer.initialize(from: base, count: values.count) }
        }
    }

    deinit { pointer.deallocate() }

    var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}

/// The scale and shift of a LayerNorm (GPT-2, GPT-NeoX, OPT).
struct LayerNormWeights: Sendable {
    let weight: [Float]
    let bias: [Float]
}

/// `y = x W (+ b)` over a block of rows.
struct Linear: Sendable {
    let weight: DenseWeight
    let bias: [Float]?

    var outFeatures: Int { weight.outFeatures }
    var inFeatures: Int { weight.inFeatures }

    /// Computes `output[r] = act(input[r] W + b)` for `rows` rows, or adds `input[r] W + b` to
    /// `output` when `accumulate` is set (a residual connection). Rows are `inFeatures` and
    /// `outFeatures` apart. The bias and the activation are applied to each tile of the product as
    /// it is made (`GEMMEpilogue`).
    func apply(_ input: UnsafePointer<Float>, rows: Int, into output: UnsafeMutablePointer<Float>,
               accumulate: Bool = false, activation: GEMMEpilogue.Activation? = nil, profile: ComputeProfile? = nil) {
        precondition(!accumulate || activation == nil, "an activation applies to a product, not to a residual sum")
        guard rows > 0 else { return }
        Kernels.gemm(input, rows: rows, weight: weight, output: output, beta: accumulate ? 1 : 0,
                     epilogue: GEMMEpilogue(bias: bias, activation: activation), profile: profile)
    }
}

/// The fast kernels of the forward pass. Each has a plain counterpart in `ReferenceKernels` that
/// the tests compare it with.
///
/// Every hand-written kernel computes each output row from its own input row only, in an order that
/// does not depend on how many rows there are or where a row sits, so a row's result does not
/// depend on its batch. The GEMMs are OpenBLAS's, which does not promise that (see `gemm`). No
/// result depends on the thread count (`ComputeThreads`).
enum Kernels {
    /// Calls `body` on consecutive ranges of `0..<count` that together cover it once, spread over
    /// `ComputeThreads.count` threads. For row-wise kernels: each row is computed by one call on its
    /// own, so the split cannot change a result.
    static func forEachRange(_ count: Int, minimumPerTask: Int, _ body: (Range<Int>) -> Void) {
        let tasks = min(ComputeThreads.count, count / max(minimumPerTask, 1))
        guard tasks > 1 else { return body(0..<count) }
        withoutActuallyEscaping(body) { body in
            let work = UnsafeSendable(body)
            DispatchQueue.concurrentPerform(iterations: tasks) { t in
                work.value((count * t / tasks)..<(count * (t + 1) / tasks))
            }
        }
    }

    /// Calls `body(t)` once for every `t` in `0..<tasks` (`ComputeThreads.forEachTask`).
    static func forEachTask(_ tasks: Int, _ body: (Int) -> Void) {
        ComputeThreads.forEachTask(tasks) { task, _ in body(task) }
    }

    /// `forEachTask`, also telling `body` which worker runs the task (`ComputeThreads.forEachTask`),
    /// so that a task can use that worker's scratch space.
    static func forEachTaskWithWorker(_ tasks: Int, _ body: (_ task: Int, _ worker: Int) -> Void) {
        ComputeThreads.forEachTask(tasks, body)
    }

    /// `output = input · Wᵀ (or W) + beta · output`, as a grid of tiles (`GEMMTiling`), each one
    /// single-threaded OpenBLAS sgemm, spread over the threads, and `epilogue` applied to each
    /// tile by the thread that made it, straight after its sgemm.
    ///
    /// Numerical caveat: sgemm rounds an output slightly differently depending on where it falls in
    /// its call (measured: ~1e-6 relative), so a token's scores move by float32 rounding when the
    /// batch around it changes. The tiles depend on the shape of the product only, never on the
    /// thread count, and OpenBLAS runs on one thread (`ComputeThreads`): the same call gives the
    /// same bits at any thread count.
    static func gemm(_ input: UnsafePointer<Float>, rows: Int, weight: DenseWeight, output: UnsafeMutablePointer<Float>,
                     beta: Float, epilogue: GEMMEpilogue = .none, profile: ComputeProfile? = nil, tiling: GEMMTiling = .standard) {
        let start = profile != nil ? ComputeProfile.now() : 0
        let n = weight.outFeatures, k = weight.inFeatures
        if let w = weight.float32Pointer {
            tiledSGEMM(input, rows: rows, depth: k, weight: w, layout: weight.layout, weightStride: weight.layout == .outByIn ? k : n,
                       columns: n, output: output, outputStride: n, beta: beta, epilogue: epilogue, firstColumn: 0, tiling: tiling)
        } else {
            gemmByPanels(input, rows: rows, weight: weight, output: output, beta: beta, epilogue: epilogue, profile: profile, tiling: tiling)
        }
        profile?.addGEMM(seconds: ComputeProfile.now() - start, flops: 2 * Double(rows) * Double(weight.outFeatures) * Double(weight.inFeatures))
    }

    /// Float32 values per widened panel: 16 MiB, small enough to stay in a large L2/L3 slice and for
    /// malloc to reuse rather than map afresh, large enough that OpenBLAS's per-call packing of the
    /// input is a small share of each call.
    static let panelElements = 4 << 20

    /// `gemm` for a weight that is not one aligned float32 matrix (half precision, or stacked
    /// parts mapped from a file): consecutive panels of output features are widened into a scratch
    /// buffer and each panel is one tiled product into its columns of `output`. Widening is exact,
    /// so the result differs from `gemm` on the widened matrix only by sgemm's blocking.
    static func gemmByPanels(_ input: UnsafePointer<Float>, rows: Int, weight: DenseWeight, output: UnsafeMutablePointer<Float>,
                             beta: Float, epilogue: GEMMEpilogue = .none, profile: ComputeProfile?, panelElements: Int = panelElements,
                             tiling: GEMMTiling = .standard) {
        let n = weight.outFeatures, k = weight.inFeatures
        guard n > 0, k > 0 else { return }
        var panel = min(n, max(1, panelElements / k))
        // Whole column tiles per panel, so that a panel's tiles are alike and share out evenly.
        if panel < n, panel > tiling.columns { panel -= panel % tiling.columns }
        let scratch = FloatBuffer(count: panel * k)
        var first = 0
        while first < n {
            let width = min(panel, n - first)
            let widenStart = profile != nil ? ComputeProfile.now() : 0
            weight.widenPanel(first..<(first + width), into: scratch.pointer)
            if let profile { profile.widenSeconds += ComputeProfile.now() - widenStart }
            tiledSGEMM(input, rows: rows, depth: k, weight: scratch.pointer, layout: weight.layout,
                       weightStride: weight.layout == .outByIn ? k : width, columns: width, output: output + first, outputStride: n,
                       beta: beta, epilogue: epilogue, firstColumn: first, tiling: tiling)
            first += width
        }
    }

    /// The tiles of a product `[rows, depth] · [depth, columns]`: at most `rows` × `columns` each,
    /// the rows and columns split into near-equal parts (multiples of 16 where the tiles are that
    /// large). They depend on the shape only, never on the thread count.
    ///
    /// Each tile is one sgemm that packs its own share of both operands, so small tiles repeat
    /// packing work, and large ones leave threads idle on small products. The standard tiles cost
    /// about 2% against one single-threaded sgemm of the whole product on GPT-2 small's shapes
    /// (256-row tiles cost 5%: the vocabulary head's weight is packed once per row tile); see
    /// docs/scoring.md, "Thread count".
    struct GEMMTiling: Sendable, Equatable {
        var rows: Int
        var columns: Int

        static let standard = GEMMTiling(rows: 512, columns: 2048)

        /// `0..<count` in consecutive parts of at most `size` (when `size` ≥ 16, a multiple of 16
        /// except the last).
        static func parts(_ count: Int, size: Int) -> [Range<Int>] {
            guard count > 0 else { return [] }
            let limit = max(1, size)
            let pieces = (count + limit - 1) / limit
            var step = (count + pieces - 1) / pieces
            if limit >= 16 { step = min(limit, (step + 15) / 16 * 16) }
            return stride(from: 0, to: count, by: step).map { $0..<min(count, $0 + step) }
        }
    }

    /// `C = A · op(B) + beta · C` tile by tile, then `epilogue` on each tile. A is `rows × depth`
    /// (row-major, rows `depth` apart); B is the weight in its layout (`outByIn`: `[columns, depth]`,
    /// used transposed; `inByOut`: `[depth, columns]`), rows `weightStride` apart; C's rows are
    /// `outputStride` apart, and its column 0 is output feature `firstColumn` (for the epilogue's bias).
    private static func tiledSGEMM(_ a: UnsafePointer<Float>, rows: Int, depth k: Int, weight b: UnsafePointer<Float>,
                                   layout: WeightLayout, weightStride: Int, columns: Int,
                                   output c: UnsafeMutablePointer<Float>, outputStride: Int, beta: Float,
                                   epilogue: GEMMEpilogue, firstColumn: Int, tiling: GEMMTiling) {
        guard rows > 0, columns > 0 else { return }
        ComputeThreads.requireSingleThreadedBLAS()
        let rowParts = GEMMTiling.parts(rows, size: tiling.rows), columnParts = GEMMTiling.parts(columns, size: tiling.columns)
        let pointers = UnsafeSendable((a, b, c))
        forEachTask(rowParts.count * columnParts.count) { t in
            let (a, b, c) = pointers.value
            let r = rowParts[t / columnParts.count], j = columnParts[t % columnParts.count]
            let tileA = a + r.lowerBound * k, tileC = c + r.lowerBound * outputStride + j.lowerBound
            switch layout {
            case .outByIn:
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(r.count), Int32(j.count), Int32(k), 1, tileA, Int32(k),
                            b + j.lowerBound * weightStride, Int32(weightStride), beta, tileC, Int32(outputStride))
            case .inByOut:
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(r.count), Int32(j.count), Int32(k), 1, tileA, Int32(k),
                            b + j.lowerBound, Int32(weightStride), beta, tileC, Int32(outputStride))
            }
            epilogue.apply(tileC, rows: r.count, columns: j.count, stride: outputStride, firstColumn: firstColumn + j.lowerBound)
        }
    }

    // MARK: Normalisation

    /// LayerNorm of each row: `(x - mean) / sqrt(var + eps) * weight + bias`, with the population
    /// variance, as torch computes it.
    static func layerNorm(_ input: UnsafePointer<Float>, rows: Int, width: Int, weight: [Float], bias: [Float],
                          epsilon: Double, output: UnsafeMutablePointer<Float>) {
        let io = UnsafeSendable((input, output))
        weight.withUnsafeBufferPointer { w in
            bias.withUnsafeBufferPointer { b in
                let (w, b) = (UnsafeSendable(w), UnsafeSendable(b))
                forEachRange(rows, minimumPerTask: 8) { range in
                for r in range {
                    let (input, output) = io.value
                    let (w, b) = (w.value, b.value)
                    let x = input + r * width, y = output + r * width
                    let mean = sum(x, width) / Float(width)
                    var variance: Float = 0
                    var acc = SIMD8<Float>()
                    var j = 0
                    while j + 8 <= width {
                        let d = load8(x + j) - SIMD8(repeating: mean)
                        acc = acc.addingProduct(d, d)
                        j += 8
                    }
                    variance = acc.sum()
                    while j < width { let d = x[j] - mean; variance = variance.addingProduct(d, d); j += 1 }
                    variance /= Float(width)
                    let scale = Float(1 / (Double(variance) + epsilon).squareRoot())
                    for j in 0..<width { y[j] = (x[j] - mean) * scale * w[j] + b[j] }
                }
                }
            }
        }
    }

    /// RMSNorm of each row: `x / sqrt(mean(x²) + eps) * weight`. Rows are `rowStride` floats apart
    /// (default `width`), in the input and in the output; the input may be the output.
    static func rmsNorm(_ input: UnsafePointer<Float>, rows: Int, width: Int, weight: [Float], epsilon: Double,
                        output: UnsafeMutablePointer<Float>, rowStride: Int? = nil) {
        let stride = rowStride ?? width
        let io = UnsafeSendable((input, output))
        weight.withUnsafeBufferPointer { w in
            let w = UnsafeSendable(w)
            forEachRange(rows, minimumPerTask: 8) { range in
            for r in range {
                let (input, output) = io.value
                let w = w.value
                let x = input + r * stride, y = output + r * stride
                var acc = SIMD8<Float>()
                var j = 0
                while j + 8 <= width { let v = load8(x + j); acc = acc.addingProduct(v, v); j += 8 }
                var squares = acc.sum()
                while j < width { squares = squares.addingProduct(x[j], x[j]); j += 1 }
                let scale = Float(1 / (Double(squares / Float(width)) + epsilon).squareRoot())
                for j in 0..<width { y[j] = w[j] * (x[j] * scale) }
            }
            }
        }
    }

    // MARK: Activations

    /// GPT-2's `gelu_new`, `0.5 x (1 + tanh(√(2/π)(x + 0.044715 x³)))`, of eight lanes, computed
    /// as the equal `x · σ(2u)`, which has no cancellation for negative x (`GEMMEpilogue`).
    @inline(__always)
    static func geluTanh(_ v: SIMD8<Float>) -> SIMD8<Float> {
        let u = Float((2.0 / Double.pi).squareRoot()) * (v + 0.044715 * v * v * v)
        return v / (1 + exp(-2 * u))
    }

    /// SwiGLU: `output[r][j] = silu(gate) * up`, where each input row is `[gate (width) | up (width)]`.
    static func siluGate(_ input: UnsafePointer<Float>, rows: Int, width: Int, output: UnsafeMutablePointer<Float>) {
        let io = UnsafeSendable((input, output))
        forEachRange(rows, minimumPerTask: 8) { range in
        let (input, output) = io.value
        for r in range {
            let gate = input + r * 2 * width, up = gate + width, y = output + r * width
            var j = 0
            while j + 8 <= width {
                let g = load8(gate + j)
                store8(g / (1 + exp(-g)) * load8(up + j), y + j)
                j += 8
            }
            while j < width { y[j] = gate[j] / (1 + Foundation.exp(-gate[j])) * up[j]; j += 1 }
        }
        }
    }

    /// GeGLU with `gelu_pytorch_tanh`: `output[r][j] = gelu_tanh(gate) * up`, each input row
    /// `[gate (width) | up (width)]`; the gelu is `geluTanh`'s `x · σ(2u)`.
    static func geluTanhGate(_ input: UnsafePointer<Float>, rows: Int, width: Int, output: UnsafeMutablePointer<Float>) {
        let c = Float((2.0 / Double.pi).squareRoot())
        let io = UnsafeSendable((input, output))
        forEachRange(rows, minimumPerTask: 8) { range in
        let (input, output) = io.value
        for r in range {
            let gate = input + r * 2 * width, up = gate + width, y = output + r * width
            var j = 0
            while j + 8 <= width {
                store8(geluTanh(load8(gate + j)) * load8(up + j), y + j)
                j += 8
            }
            while j < width {
                let g = gate[j]
                let u = c * (g + 0.044715 * g * g * g)
                y[j] = g / (1 + Foundation.exp(-2 * u)) * up[j]
                j += 1
            }
        }
        }
    }

    /// Gemma 2's soft-capping, `c·tanh(x/c)`, in place.
    static func softCap(_ x: UnsafeMutablePointer<Float>, count: Int, cap: Float) {
        let shared = UnsafeSendable(x)
        forEachRange(count, minimumPerTask: 16384) { range in
            let x = shared.value
            for i in range { x[i] = cap * Foundation.tanh(x[i] / cap) }
        }
    }

    // MARK: Rotary position embedding

    /// `scale·cos` and `scale·sin` of `position · ω_i` for the rotary frequencies ω_i (i < d/2),
    /// computed in Double and rounded once. Layout: `[position][i]`. The plain RoPE frequencies are
    /// `ω_i = θ^(-2i/d)`; scaled ones come from `RopeScaling.frequencies` (RotaryEmbedding.swift),
    /// whose `scale` is yarn's and longrope's attention factor (1 otherwise).
    struct RotaryTable: Sendable {
        let halfDim: Int
        let cos: [Float]
        let sin: [Float]

        init(frequencies: [Double], scale: Double = 1, positions: Int) {
            halfDim = frequencies.count
            var c = [Float](repeating: 1, count: positions * halfDim)
            var s = [Float](repeating: 0, count: positions * halfDim)
            for p in 0..<positions {
                for i in 0..<halfDim {
                    let angle = Double(p) * frequencies[i]
                    c[p * halfDim + i] = Float(scale * Foundation.cos(angle))
                    s[p * halfDim + i] = Float(scale * Foundation.sin(angle))
                }
            }
            cos = c
            sin = s
        }

        init(rotaryDim: Int, theta: Double, positions: Int) {
            self.init(frequencies: RopeScaling.plainFrequencies(rotaryDim: rotaryDim, theta: theta), positions: positions)
        }

        /// The table of a model's configuration, RoPE scaling included.
        init(config: ModelConfig, positions: Int) {
            let (frequencies, scale) = RopeScaling.frequencies(of: config)
            self.init(frequencies: frequencies, scale: scale, positions: positions)
        }
    }

    /// The rotary tables of a packed batch and which one each row uses (`PackedBatch.rotarySchedule`).
    struct RotarySchedule: Sendable {
        let tables: [RotaryTable]
        let rowTables: [Int]
    }

    /// `applyRotary` with each row's table taken from `schedule`.
    static func applyRotary(_ data: UnsafeMutablePointer<Float>, rows: Int, rowStride: Int, headCount: Int, headDim: Int,
                            positions: UnsafePointer<Int32>, schedule: RotarySchedule) {
        if schedule.tables.count == 1 {
            applyRotary(data, rows: rows, rowStride: rowStride, headCount: headCount, headDim: headDim, positions: positions, table: schedule.tables[0])
            return
        }
        var r = 0
        while r < rows {
            var end = r + 1
            while end < rows && schedule.rowTables[end] == schedule.rowTables[r] { end += 1 }
            applyRotary(data + r * rowStride, rows: end - r, rowStride: rowStride, headCount: headCount, headDim: headDim,
                        positions: positions + r, table: schedule.tables[schedule.rowTables[r]])
            r = end
        }
    }

    /// Rotates the first `2·table.halfDim` dimensions of `headCount` consecutive heads of each row
    /// in place, rotate-half convention (dimension i pairs with i + d/2). Rows are shared among the
    /// threads; each is computed alone.
    static func applyRotary(_ data: UnsafeMutablePointer<Float>, rows: Int, rowStride: Int, headCount: Int, headDim: Int,
                            positions: UnsafePointer<Int32>, table: RotaryTable) {
        let half = table.halfDim
        guard half > 0 else { return }
        let shared = UnsafeSendable((data, positions))
        table.cos.withUnsafeBufferPointer { cosTable in
            table.sin.withUnsafeBufferPointer { sinTable in
                let tables = UnsafeSendable((cosTable.baseAddress!, sinTable.baseAddress!))
                forEachRange(rows, minimumPerTask: 16) { range in
                    let (data, positions) = shared.value
                    for r in range {
                        let p = Int(positions[r])
                        let c = tables.value.0 + p * half, s = tables.value.1 + p * half
                        for h in 0..<headCount {
                            let x = data + r * rowStride + h * headDim
                            for i in 0..<half {
                                let x1 = x[i], x2 = x[i + half]
                                x[i] = x1 * c[i] - x2 * s[i]
                                x[i + half] = x2 * c[i] + x1 * s[i]
                            }
                        }
                    }
                }
            }
        }
    }

    // MARK: Softmax over a vocabulary

    /// `log Σ exp(x)` of one row. The maximum is subtracted first; the exponentials are summed in
    /// float32 lanes of 512 elements, and the lane sums in Double, so the rounding error stays
    /// near 1e-7 relative even over a 150k-token vocabulary.
    static func logSumExp(_ x: UnsafePointer<Float>, count: Int) -> Double {
        let m = maximum(x, count)
        guard m.isFinite else { return Double(m) }
        return Double(m) + Foundation.log(sumExp(x, count: count, shift: m))
    }

    /// Per-row results of comparing two distributions given by logits `a` (after) and `b` (before):
    /// the log-sum-exps and `KL(a ‖ b) = Σ p_a (log p_a - log p_b)`.
    static func klDivergence(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> (lseA: Double, lseB: Double, kl: Double) {
        let lseA = logSumExp(a, count: count), lseB = logSumExp(b, count: count)
        // KL = Σ p_a (a - b) - (lseA - lseB), with Σ p_a = 1.
        let weighted = weightedDifference(a, b, count: count, shift: Float(lseA))
        return (lseA, lseB, weighted - (lseA - lseB))
    }

    /// `Σ exp(x_i - shift)`: the exponentials summed in float32 lanes of 512 elements, the lane
    /// sums in Double. NaN for a shift of +∞ or NaN (overflowed logits), 0 for -∞.
    @inline(__always)
    static func sumExp(_ x: UnsafePointer<Float>, count: Int, shift m: Float) -> Double {
        guard m.isFinite else { return m.isNaN ? .nan : (m > 0 ? .nan : 0) }
        let shift = SIMD8<Float>(repeating: m)
        var total = 0.0
        var i = 0
        while i + 8 <= count {
            var block = SIMD8<Float>()
            let end = min(count - count % 8, i + 512)
            while i < end { block += exp(load8(x + i) - shift); i += 8 }
            total += Double(block.sum())
        }
        while i < count { total += Double(Foundation.exp(x[i] - m)); i += 1 }
        return total
    }

    /// `Σ exp(a_i - shift)(a_i - b_i)`, lanes as in `sumExp`; NaN for a shift that is not finite.
    @inline(__always)
    static func weightedDifference(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int, shift m: Float) -> Double {
        guard m.isFinite else { return .nan }
        let shift = SIMD8<Float>(repeating: m)
        var total = 0.0
        var i = 0
        while i + 8 <= count {
            var block = SIMD8<Float>()
            let end = min(count - count % 8, i + 512)
            while i < end {
                let va = load8(a + i)
                block = block.addingProduct(exp(va - shift), va - load8(b + i))
                i += 8
            }
            total += Double(block.sum())
        }
        while i < count { total += Double(Foundation.exp(a[i] - m) * (a[i] - b[i])); i += 1 }
        return total
    }

    // MARK: Vector helpers

    /// `exp` of eight lanes: Cody–Waite range reduction to `r ∈ [-ln2/2, ln2/2]`, a degree-6
    /// polynomial (the Cephes `expf` coefficients) and an exponent-field scale. Relative error about
    /// 2 ulp. Inputs are clamped to [-87.3, 88]: results below 2^-126 come out as about 1e-38,
    /// not 0, which no sum of probabilities can notice.
    ///
    /// Written with comparisons, fused multiply-adds and integer lane arithmetic only: the generic
    /// SIMD `rounded`, `pointwiseMin` and rounding conversions compile to out-of-line calls.
    @inline(__always)
    static func exp(_ input: SIMD8<Float>) -> SIMD8<Float> {
        let low = SIMD8<Float>(repeating: -87.33), high = SIMD8<Float>(repeating: 88)
        var x = input.replacing(with: low, where: input .< low)
        x.replace(with: high, where: x .> high)
        // Round x·log2(e) to the nearest integer by adding 1.5·2^23: the sum's low mantissa bits
        // then hold the integer, which also gives its bit pattern.
        let magic = SIMD8<Float>(repeating: 12_582_912)
        let shifted = magic.addingProduct(x, SIMD8(repeating: 1.442_695_04))
        let n = shifted - magic
        var r = x.addingProduct(n, SIMD8(repeating: -0.693_359_375))
        r = r.addingProduct(n, SIMD8(repeating: 2.121_944_4e-4))
        var p = SIMD8<Float>(repeating: 1.398_199_95e-3).addingProduct(SIMD8(repeating: 1.987_569_15e-4), r)
        p = SIMD8(repeating: 8.333_451_9e-3).addingProduct(p, r)
        p = SIMD8(repeating: 4.166_579_6e-2).addingProduct(p, r)
        p = SIMD8(repeating: 1.666_666_55e-1).addingProduct(p, r)
        p = SIMD8(repeating: 5.000_000_1e-1).addingProduct(p, r)
        let y = (r + 1).addingProduct(p, r * r)
        let integer = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
        let scale = unsafeBitCast((integer &+ 127) &<< 23, to: SIMD8<Float>.self)
        return y * scale
    }

    /// Lane-wise maximum, as a compare and blend.
    @inline(__always) static func lanewiseMax(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
        a.replacing(with: b, where: b .> a)
    }

    /// The largest of the eight lanes.
    @inline(__always) static func largestLane(_ v: SIMD8<Float>) -> Float {
        let four = v.lowHalf.replacing(with: v.highHalf, where: v.highHalf .> v.lowHalf)
        let two = four.lowHalf.replacing(with: four.highHalf, where: four.highHalf .> four.lowHalf)
        return max(two[0], two[1])
    }

    @inline(__always) static func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always) static func load8(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always) static func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }

    /// Sum of `count` floats in eight lanes, then the lanes and the tail in order.
    @inline(__always) static func sum(_ x: UnsafePointer<Float>, _ count: Int) -> Float {
        var acc = SIMD8<Float>()
        var i = 0
        while i + 8 <= count { acc += load8(x + i); i += 8 }
        var total = acc.sum()
        while i < count { total += x[i]; i += 1 }
        return total
    }

    @inline(__always) static func maximum(_ x: UnsafePointer<Float>, _ count: Int) -> Float {
        var acc = SIMD8<Float>(repeating: -.infinity)
        var i = 0
        while i + 8 <= count { acc = lanewiseMax(acc, load8(x + i)); i += 8 }
        var m = largestLane(acc)
        while i < count { m = max(m, x[i]); i += 1 }
        return m
    }
}

/// Where the time of a forward pass goes, for the benchmark. Updated from the calling thread only.
public final class ComputeProfile: @unchecked Sendable {
    public private(set) var gemmSeconds = 0.0
    public private(set) var gemmFlops = 0.0
    public var attentionSeconds = 0.0
    public var headSeconds = 0.0
    public var headFlops = 0.0
    public var softmaxSeconds = 0.0
    /// Of `gemmSeconds`, the time spent widening half-precision (or copying mapped) weight panels.
    public var widenSeconds = 0.0
    public var totalSeconds = 0.0
    /// Tokens run through a model's trunk (every layer), over all models and batches: what reuse
    /// of prompts and of stored hidden states saves.
    public var trunkTokens = 0

    public init() {}

    func addGEMM(seconds: Double, flops: Double) {
        gemmSeconds += seconds
        gemmFlops += flops
    }

    static func now() -> Double {
        Double(DispatchTime.now().uptimeNanoseconds) / 1e9
    }
}
