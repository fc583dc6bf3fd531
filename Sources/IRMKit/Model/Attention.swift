import Foundation

/// The head layout of one attention layer.
struct AttentionGeometry: Sendable {
    let headCount: Int
    let kvHeadCount: Int
    let headDim: Int
    /// Multiplies `q·k` before the softmax (`1/√headDim`, and GPT-2's optional `1/(layer+1)`).
    let scale: Float
    /// Mistral/Qwen2 sliding window: a query at position i sees keys j with i - j < window.
    let window: Int?
    /// Gemma 2's `attn_logit_softcapping` c: scores become `c·tanh(s/c)` before the softmax.
    var softCap: Float? = nil

    var qDim: Int { headCount * headDim }
    var kvDim: Int { kvHeadCount * headDim }
    /// Width of a fused `[Q | K | V]` row.
    var qkvWidth: Int { qDim + 2 * kvDim }
}

/// Causal multi-head (and grouped-query) self-attention over the sequences of a packed batch.
///
/// Input: fused `[Q | K | V]` rows, RoPE already applied. Output: `[N, headCount·headDim]`, the
/// heads side by side. Each (sequence, KV head) pair is an independent unit of work, spread over
/// `ComputeThreads.count` threads (`Kernels.forEachTask`).
///
/// Within a unit, each head's queries go in blocks of four consecutive positions: every key panel
/// and every value row is loaded once per block and feeds the fused multiply-adds of all four
/// queries. The blocking shares loads only. Each query's arithmetic depends on that query, its
/// position and the keys it sees, never on the block it falls in: each score is one fused
/// multiply-add chain over the head dimensions, the softmax runs over the visible keys in position
/// order, and each output dimension is one fused multiply-add chain over the visible values in
/// position order, then normalised. The queries of a block see different keys (causal, and the
/// sliding window): their shared keys go through together, and each query takes the keys before
/// and after those on its own, in the same chain. A token therefore gets bit-identical attention
/// whether its sequence is scored alone, in a batch, or as a continuation of a cached prompt, and
/// the same bits as `ReferenceKernels.attentionInKernelOrder`, the plain one-query-at-a-time
/// version of this arithmetic.
enum CausalAttention {
    /// Queries per block. Four queries times two vectors of accumulators are eight independent
    /// fused multiply-add chains, enough to cover the FMA latency, and leave room among AVX2's 16
    /// vector registers for the shared loads and the broadcasts. The accumulators cover 16 head
    /// dimensions (values) or 16 keys (scores) whatever the head width.
    /// (`scoreBlock` and `weighValues` are written for four.)
    static let queriesPerBlock = 4

    static func run(qkv: FloatBuffer, batch: PackedBatch, layer: Int, geometry g: AttentionGeometry,
                    output: FloatBuffer, profile: ComputeProfile?) {
        let start = profile != nil ? ComputeProfile.now() : 0
        let units = batch.segments.indices.flatMap { s in (0..<g.kvHeadCount).map { (s, $0) } }
        Kernels.forEachTask(units.count) { u in
            let (s, kvHead) = units[u]
            runUnit(qkv: qkv, batch: batch, segmentIndex: s, kvHead: kvHead, layer: layer, geometry: g, output: output)
        }
        batch.record(layer: layer, qkv: qkv, qkvWidth: g.qkvWidth, keyOffset: g.qDim, valueOffset: g.qDim + g.kvDim)
        if let profile { profile.attentionSeconds += ComputeProfile.now() - start }
    }

    /// One query of a block: where its scores (then its softmax numerators) lie, indexed by key
    /// position, the keys it sees (`first...last`), and where its output goes.
    private struct Query {
        let vector: UnsafePointer<Float>
        let scores: UnsafeMutablePointer<Float>
        let first: Int
        let last: Int
        let output: UnsafeMutablePointer<Float>
        var inverseTotal: Float = 0
    }

    /// Keys are stored in panels of 8: `panel[b][d][lane]` holds dimension d of key 8b + lane, so
    /// that one vector load feeds eight scores. Values are stored row by row.
    private static func runUnit(qkv: FloatBuffer, batch: PackedBatch, segmentIndex s: Int, kvHead: Int, layer: Int,
                                geometry g: AttentionGeometry, output: FloatBuffer) {
        let segment = batch.segments[s]
        let n = segment.tokens.count
        guard n > 0 else { return }
        let hd = g.headDim
        let prefixLength = segment.startPosition
        let length = prefixLength + n
        let blocks = (length + 7) / 8
        let panels = UnsafeMutablePointer<Float>.allocate(capacity: blocks * hd * 8)
        panels.initialize(repeating: 0, count: blocks * hd * 8)
        let values = UnsafeMutablePointer<Float>.allocate(capacity: length * hd)
        let scoreRows = UnsafeMutablePointer<Float>.allocate(capacity: queriesPerBlock * blocks * 8)
        defer {
            panels.deallocate()
            values.deallocate()
            scoreRows.deallocate()
        }

        func place(key: UnsafePointer<Float>, value: UnsafePointer<Float>, at j: Int) {
            let panel = panels + (j / 8) * hd * 8 + j % 8
            for d in 0..<hd { panel[d * 8] = key[d] }
            (values + j * hd).update(from: value, count: hd)
        }
        if let prefix = segment.prefix {
            prefix.keys[layer].withUnsafeBufferPointer { k in
                prefix.values[layer].withUnsafeBufferPointer { v in
                    for j in 0..<prefixLength {
                        let offset = j * g.kvDim + kvHead * hd
                        place(key: k.baseAddress! + offset, value: v.baseAddress! + offset, at: j)
                    }
                }
            }
        }
        let rowStart = batch.rowStarts[s]
        for i in 0..<n {
            let row = qkv.pointer + (rowStart + i) * g.qkvWidth
            place(key: row + g.qDim + kvHead * hd, value: row + g.qDim + g.kvDim + kvHead * hd, at: prefixLength + i)
        }

        let group = g.headCount / g.kvHeadCount
        for h in (kvHead * group)..<((kvHead + 1) * group) {
            var i = 0
            while i < n {
                // A short last block repeats its last query: the repeat computes the same numbers
                // into the same places.
                let count = min(queriesPerBlock, n - i)
                func query(_ k: Int) -> Query {
                    let r = min(k, count - 1)
                    let p = prefixLength + i + r
                    return Query(vector: qkv.pointer + (rowStart + i + r) * g.qkvWidth + h * hd,
                                 scores: scoreRows + r * blocks * 8,
                                 first: g.window.map { max(0, p - $0 + 1) } ?? 0, last: p,
                                 output: output.pointer + (rowStart + i + r) * g.qDim + h * hd)
                }
                var q0 = query(0), q1 = query(1), q2 = query(2), q3 = query(3)
                scoreBlock(q0, q1, q2, q3, firstBlock: q0.first / 8, lastBlock: q3.last / 8, panels: panels,
                           headDim: hd, scale: g.scale)
                func normalise(_ q: inout Query) {
                    let count = q.last - q.first + 1
                    if let cap = g.softCap { softCap(q.scores + q.first, count: count, cap: cap) }
                    q.inverseTotal = softmax(q.scores + q.first, count: count)
                }
                // In place, so each distinct query exactly once.
                normalise(&q0)
                if count > 1 { normalise(&q1) } else { q1 = q0 }
                if count > 2 { normalise(&q2) } else { q2 = q1 }
                if count > 3 { normalise(&q3) } else { q3 = q2 }
                weighValues(q0, q1, q2, q3, values: values, headDim: hd)
                i += count
            }
        }
    }

    /// Scores of four queries against key panels `firstBlock...lastBlock`, each panel loaded once
    /// for all four: `s_j = (Σ_d q_d k_jd) · scale`, one fused multiply-add chain per key, in
    /// dimension order, stored at `scores[j]`. Keys that a query does not see get scores too,
    /// which nothing reads.
    @inline(__always)
    private static func scoreBlock(_ q0: Query, _ q1: Query, _ q2: Query, _ q3: Query, firstBlock: Int, lastBlock: Int,
                                   panels: UnsafePointer<Float>, headDim hd: Int, scale: Float) {
        let panelSize = hd * 8
        let x0 = q0.vector, x1 = q1.vector, x2 = q2.vector, x3 = q3.vector
        var b = firstBlock
        while b + 1 <= lastBlock {
            let p0 = panels + b * panelSize, p1 = p0 + panelSize
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), c0 = SIMD8<Float>(), c1 = SIMD8<Float>()
            var e0 = SIMD8<Float>(), e1 = SIMD8<Float>(), f0 = SIMD8<Float>(), f1 = SIMD8<Float>()
            for d in 0..<hd {
                let k0 = Kernels.load8(p0 + d * 8), k1 = Kernels.load8(p1 + d * 8)
                let y0 = SIMD8<Float>(repeating: x0[d])
                a0 = a0.addingProduct(y0, k0)
                a1 = a1.addingProduct(y0, k1)
                let y1 = SIMD8<Float>(repeating: x1[d])
                c0 = c0.addingProduct(y1, k0)
                c1 = c1.addingProduct(y1, k1)
                let y2 = SIMD8<Float>(repeating: x2[d])
                e0 = e0.addingProduct(y2, k0)
                e1 = e1.addingProduct(y2, k1)
                let y3 = SIMD8<Float>(repeating: x3[d])
                f0 = f0.addingProduct(y3, k0)
                f1 = f1.addingProduct(y3, k1)
            }
            let at = b * 8
            Kernels.store8(a0 * scale, q0.scores + at)
            Kernels.store8(a1 * scale, q0.scores + at + 8)
            Kernels.store8(c0 * scale, q1.scores + at)
            Kernels.store8(c1 * scale, q1.scores + at + 8)
            Kernels.store8(e0 * scale, q2.scores + at)
            Kernels.store8(e1 * scale, q2.scores + at + 8)
            Kernels.store8(f0 * scale, q3.scores + at)
            Kernels.store8(f1 * scale, q3.scores + at + 8)
            b += 2
        }
        if b == lastBlock {
            let panel = panels + b * panelSize
            var a = SIMD8<Float>(), c = SIMD8<Float>(), e = SIMD8<Float>(), f = SIMD8<Float>()
            for d in 0..<hd {
                let k = Kernels.load8(panel + d * 8)
                a = a.addingProduct(SIMD8(repeating: x0[d]), k)
                c = c.addingProduct(SIMD8(repeating: x1[d]), k)
                e = e.addingProduct(SIMD8(repeating: x2[d]), k)
                f = f.addingProduct(SIMD8(repeating: x3[d]), k)
            }
            Kernels.store8(a * scale, q0.scores + b * 8)
            Kernels.store8(c * scale, q1.scores + b * 8)
            Kernels.store8(e * scale, q2.scores + b * 8)
            Kernels.store8(f * scale, q3.scores + b * 8)
        }
    }

    /// `c·tanh(s/c)` of each score, in place.
    @inline(__always)
    private static func softCap(_ scores: UnsafeMutablePointer<Float>, count: Int, cap: Float) {
        for j in 0..<count { scores[j] = cap * Foundation.tanh(scores[j] / cap) }
    }

    /// Replaces `count` scores by their softmax numerators `e_j = exp(s_j - max s)` and returns
    /// `1/Σ e_j`. The sum runs in eight lanes over the scores in order, then the lanes, then the
    /// tail: its grouping depends on `count` only.
    @inline(__always)
    private static func softmax(_ visible: UnsafeMutablePointer<Float>, count: Int) -> Float {
        let m = Kernels.maximum(visible, count)
        var lanes = SIMD8<Float>()
        var j = 0
        while j + 8 <= count {
            let e = Kernels.exp(Kernels.load8(visible + j) - SIMD8(repeating: m))
            Kernels.store8(e, visible + j)
            lanes += e
            j += 8
        }
        var total = lanes.sum()
        while j < count {
            let e = Foundation.exp(visible[j] - m)
            visible[j] = e
            total += e
            j += 1
        }
        return 1 / total
    }

    /// `out_d = (Σ_j e_j v_jd) · inverseTotal` for four queries, each sum one fused multiply-add
    /// chain over the query's keys `first...last` in position order. Keys that all four see go
    /// through together, each value row loaded once for the four. The keys before those (sliding
    /// window) and after them (causal) each query takes on its own, before and after, so that its
    /// chain keeps its order.
    @inline(__always)
    private static func weighValues(_ q0: Query, _ q1: Query, _ q2: Query, _ q3: Query, values: UnsafePointer<Float>,
                                    headDim hd: Int) {
        let shared = max(max(q0.first, q1.first), max(q2.first, q3.first))
        let sharedLast = min(min(q0.last, q1.last), min(q2.last, q3.last))
        guard shared <= sharedLast else {
            // A window narrower than the block: no key common to all four.
            weighValues(q0, values: values, headDim: hd)
            weighValues(q1, values: values, headDim: hd)
            weighValues(q2, values: values, headDim: hd)
            weighValues(q3, values: values, headDim: hd)
            return
        }
        let w0 = q0.scores, w1 = q1.scores, w2 = q2.scores, w3 = q3.scores
        var d = 0
        while d + 16 <= hd {
            let v = values + d
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), c0 = SIMD8<Float>(), c1 = SIMD8<Float>()
            var e0 = SIMD8<Float>(), e1 = SIMD8<Float>(), f0 = SIMD8<Float>(), f1 = SIMD8<Float>()
            accumulate(&a0, &a1, weights: w0, keys: q0.first..<shared, values: v, headDim: hd)
            accumulate(&c0, &c1, weights: w1, keys: q1.first..<shared, values: v, headDim: hd)
            accumulate(&e0, &e1, weights: w2, keys: q2.first..<shared, values: v, headDim: hd)
            accumulate(&f0, &f1, weights: w3, keys: q3.first..<shared, values: v, headDim: hd)
            for j in shared...sharedLast {
                let row = v + j * hd
                let r0 = Kernels.load8(row), r1 = Kernels.load8(row + 8)
                let y0 = SIMD8<Float>(repeating: w0[j])
                a0 = a0.addingProduct(y0, r0)
                a1 = a1.addingProduct(y0, r1)
                let y1 = SIMD8<Float>(repeating: w1[j])
                c0 = c0.addingProduct(y1, r0)
                c1 = c1.addingProduct(y1, r1)
                let y2 = SIMD8<Float>(repeating: w2[j])
                e0 = e0.addingProduct(y2, r0)
                e1 = e1.addingProduct(y2, r1)
                let y3 = SIMD8<Float>(repeating: w3[j])
                f0 = f0.addingProduct(y3, r0)
                f1 = f1.addingProduct(y3, r1)
            }
            accumulate(&a0, &a1, weights: w0, keys: (sharedLast + 1)..<(q0.last + 1), values: v, headDim: hd)
            accumulate(&c0, &c1, weights: w1, keys: (sharedLast + 1)..<(q1.last + 1), values: v, headDim: hd)
            accumulate(&e0, &e1, weights: w2, keys: (sharedLast + 1)..<(q2.last + 1), values: v, headDim: hd)
            accumulate(&f0, &f1, weights: w3, keys: (sharedLast + 1)..<(q3.last + 1), values: v, headDim: hd)
            Kernels.store8(a0 * q0.inverseTotal, q0.output + d)
            Kernels.store8(a1 * q0.inverseTotal, q0.output + d + 8)
            Kernels.store8(c0 * q1.inverseTotal, q1.output + d)
            Kernels.store8(c1 * q1.inverseTotal, q1.output + d + 8)
            Kernels.store8(e0 * q2.inverseTotal, q2.output + d)
            Kernels.store8(e1 * q2.inverseTotal, q2.output + d + 8)
            Kernels.store8(f0 * q3.inverseTotal, q3.output + d)
            Kernels.store8(f1 * q3.inverseTotal, q3.output + d + 8)
            d += 16
        }
        if d < hd {
            // The last head dimensions (head widths that are not a multiple of 16), one query at a time.
            weighValues(q0, values: values, headDim: hd, from: d)
            weighValues(q1, values: values, headDim: hd, from: d)
            weighValues(q2, values: values, headDim: hd, from: d)
            weighValues(q3, values: values, headDim: hd, from: d)
        }
    }

    /// Adds `e_j v_j` for keys `keys`, in order, to the two accumulators of one query's 16 dimensions.
    @inline(__always)
    private static func accumulate(_ a0: inout SIMD8<Float>, _ a1: inout SIMD8<Float>, weights: UnsafePointer<Float>,
                                   keys: Range<Int>, values v: UnsafePointer<Float>, headDim hd: Int) {
        for j in keys {
            let y = SIMD8<Float>(repeating: weights[j])
            a0 = a0.addingProduct(y, Kernels.load8(v + j * hd))
            a1 = a1.addingProduct(y, Kernels.load8(v + j * hd + 8))
        }
    }

    /// `weighValues` of one query on its own, over head dimensions `from..<headDim`: the same
    /// chains.
    private static func weighValues(_ q: Query, values: UnsafePointer<Float>, headDim hd: Int, from: Int = 0) {
        let w = q.scores
        var d = from
        while d + 32 <= hd {
            let v = values + d
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
            for j in q.first...q.last {
                let y = SIMD8<Float>(repeating: w[j])
                let row = v + j * hd
                a0 = a0.addingProduct(y, Kernels.load8(row))
                a1 = a1.addingProduct(y, Kernels.load8(row + 8))
                a2 = a2.addingProduct(y, Kernels.load8(row + 16))
                a3 = a3.addingProduct(y, Kernels.load8(row + 24))
            }
            Kernels.store8(a0 * q.inverseTotal, q.output + d)
            Kernels.store8(a1 * q.inverseTotal, q.output + d + 8)
            Kernels.store8(a2 * q.inverseTotal, q.output + d + 16)
            Kernels.store8(a3 * q.inverseTotal, q.output + d + 24)
            d += 32
        }
        while d + 8 <= hd {
            var acc = SIMD8<Float>()
            for j in q.first...q.last { acc = acc.addingProduct(SIMD8(repeating: w[j]), Kernels.load8(values + j * hd + d)) }
            Kernels.store8(acc * q.inverseTotal, q.output + d)
            d += 8
        }
        while d < hd {
            var acc: Float = 0
            for j in q.first...q.last { acc = acc.addingProduct(w[j], values[j * hd + d]) }
            q.output[d] = acc * q.inverseTotal
            d += 1
        }
    }
}
