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
/// For every query the arithmetic depends only on that query, its position and the keys before it:
/// each score is one fused multiply-add chain over the head dimensions, the softmax runs over the
/// visible keys in position order, and the output sums the values in position order. A token
/// therefore gets bit-identical attention whether its sequence is scored alone, in a batch, or as a
/// continuation of a cached prompt.
///
/// Queries run two at a time: each key panel is loaded once for both scores (`scorePair`) and each
/// value row once for both outputs (`weighValuePair`), with each query's own chains unchanged, so
/// that the single-query kernels (`scoreOne`, `weighValues`, used for a segment's unpaired last
/// query) are the reference a test holds the pairs to, bit for bit, at every pairing.
enum CausalAttention {
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
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: 2 * blocks * 8)
        defer {
            panels.deallocate()
            values.deallocate()
            scores.deallocate()
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
        let otherScores = scores + blocks * 8
        for h in (kvHead * group)..<((kvHead + 1) * group) {
            // Queries two at a time: they share the key loads of the score computation.
            var i = 0
            while i < n {
                let q = qkv.pointer + (rowStart + i) * g.qkvWidth + h * hd
                let out = output.pointer + (rowStart + i) * g.qDim + h * hd
                let p = prefixLength + i
                let lo = g.window.map { max(0, p - $0 + 1) } ?? 0
                if i + 1 < n {
                    let nextLo = g.window.map { max(0, p + 1 - $0 + 1) } ?? 0
                    scorePair(q, q + g.qkvWidth, firstBlock: lo / 8, lastBlock: (p + 1) / 8, panels: panels, headDim: hd,
                              scale: g.scale, scores: scores, otherScores: otherScores)
                    if let cap = g.softCap {
                        softCap(scores + lo, count: p - lo + 1, cap: cap)
                        softCap(otherScores + nextLo, count: p + 2 - nextLo, cap: cap)
                    }
                    weighValuePair(position: p, first: lo, otherFirst: nextLo, values: values, headDim: hd, scores: scores,
                                   otherScores: otherScores, output: out, otherOutput: out + g.qDim)
                    i += 2
                } else {
                    scoreOne(q, firstBlock: lo / 8, lastBlock: p / 8, panels: panels, headDim: hd, scale: g.scale, scores: scores)
                    if let cap = g.softCap { softCap(scores + lo, count: p - lo + 1, cap: cap) }
                    weighValues(position: p, first: lo, values: values, headDim: hd, scores: scores, output: out)
                    i += 1
                }
            }
        }
    }

    /// Scores of one query against key panels `firstBlock...lastBlock`:
    /// `s_j = (Σ_d q_d k_jd) · scale`, one fused multiply-add chain per key, in dimension order.
    /// Four panels at a time keep four independent chains in flight.
    @inline(__always)
    private static func scoreOne(_ q: UnsafePointer<Float>, firstBlock: Int, lastBlock: Int, panels: UnsafePointer<Float>,
                                 headDim hd: Int, scale: Float, scores: UnsafeMutablePointer<Float>) {
        let panelSize = hd * 8
        var b = firstBlock
        while b + 3 <= lastBlock {
            let p0 = panels + b * panelSize, p1 = p0 + panelSize, p2 = p1 + panelSize, p3 = p2 + panelSize
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
            for d in 0..<hd {
                let qd = SIMD8<Float>(repeating: q[d])
                a0 = a0.addingProduct(qd, Kernels.load8(p0 + d * 8))
                a1 = a1.addingProduct(qd, Kernels.load8(p1 + d * 8))
                a2 = a2.addingProduct(qd, Kernels.load8(p2 + d * 8))
                a3 = a3.addingProduct(qd, Kernels.load8(p3 + d * 8))
            }
            Kernels.store8(a0 * scale, scores + b * 8)
            Kernels.store8(a1 * scale, scores + b * 8 + 8)
            Kernels.store8(a2 * scale, scores + b * 8 + 16)
            Kernels.store8(a3 * scale, scores + b * 8 + 24)
            b += 4
        }
        while b <= lastBlock {
            let panel = panels + b * panelSize
            var acc = SIMD8<Float>()
            for d in 0..<hd { acc = acc.addingProduct(SIMD8(repeating: q[d]), Kernels.load8(panel + d * 8)) }
            Kernels.store8(acc * scale, scores + b * 8)
            b += 1
        }
    }

    /// `scoreOne` for two queries at once, each key panel loaded once for both. Each score is the
    /// same chain as `scoreOne` computes.
    @inline(__always)
    private static func scorePair(_ q: UnsafePointer<Float>, _ r: UnsafePointer<Float>, firstBlock: Int, lastBlock: Int,
                                  panels: UnsafePointer<Float>, headDim hd: Int, scale: Float,
                                  scores: UnsafeMutablePointer<Float>, otherScores: UnsafeMutablePointer<Float>) {
        let panelSize = hd * 8
        var b = firstBlock
        while b + 3 <= lastBlock {
            let p0 = panels + b * panelSize, p1 = p0 + panelSize, p2 = p1 + panelSize, p3 = p2 + panelSize
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
            var c0 = SIMD8<Float>(), c1 = SIMD8<Float>(), c2 = SIMD8<Float>(), c3 = SIMD8<Float>()
            for d in 0..<hd {
                let qd = SIMD8<Float>(repeating: q[d]), rd = SIMD8<Float>(repeating: r[d])
                let k0 = Kernels.load8(p0 + d * 8), k1 = Kernels.load8(p1 + d * 8)
                let k2 = Kernels.load8(p2 + d * 8), k3 = Kernels.load8(p3 + d * 8)
                a0 = a0.addingProduct(qd, k0)
                a1 = a1.addingProduct(qd, k1)
                a2 = a2.addingProduct(qd, k2)
                a3 = a3.addingProduct(qd, k3)
                c0 = c0.addingProduct(rd, k0)
                c1 = c1.addingProduct(rd, k1)
                c2 = c2.addingProduct(rd, k2)
                c3 = c3.addingProduct(rd, k3)
            }
            Kernels.store8(a0 * scale, scores + b * 8)
            Kernels.store8(a1 * scale, scores + b * 8 + 8)
            Kernels.store8(a2 * scale, scores + b * 8 + 16)
            Kernels.store8(a3 * scale, scores + b * 8 + 24)
            Kernels.store8(c0 * scale, otherScores + b * 8)
            Kernels.store8(c1 * scale, otherScores + b * 8 + 8)
            Kernels.store8(c2 * scale, otherScores + b * 8 + 16)
            Kernels.store8(c3 * scale, otherScores + b * 8 + 24)
            b += 4
        }
        while b <= lastBlock {
            let panel = panels + b * panelSize
            var a = SIMD8<Float>(), c = SIMD8<Float>()
            for d in 0..<hd {
                let k = Kernels.load8(panel + d * 8)
                a = a.addingProduct(SIMD8(repeating: q[d]), k)
                c = c.addingProduct(SIMD8(repeating: r[d]), k)
            }
            Kernels.store8(a * scale, scores + b * 8)
            Kernels.store8(c * scale, otherScores + b * 8)
            b += 1
        }
    }

    /// `c·tanh(s/c)` of each score, in place.
    @inline(__always)
    private static func softCap(_ scores: UnsafeMutablePointer<Float>, count: Int, cap: Float) {
        for j in 0..<count { scores[j] = cap * Foundation.tanh(scores[j] / cap) }
    }

    /// Softmax of the scores of keys `first...position` (in position order), then the weighted sum
    /// of their values (in position order), normalised at the end.
    @inline(__always)
    private static func weighValues(position p: Int, first lo: Int, values: UnsafePointer<Float>, headDim hd: Int,
                                    scores: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>) {
        let inverse = exponentiate(scores + lo, count: p - lo + 1)
        let visible = scores + lo, count = p - lo + 1
        // Output: Σ_j e_j v_j in position order, then normalised.
        let v = values + lo * hd
        var d = 0
        while d + 32 <= hd {
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
            for j in 0..<count {
                let e = SIMD8<Float>(repeating: visible[j])
                let row = v + j * hd + d
                a0 = a0.addingProduct(e, Kernels.load8(row))
                a1 = a1.addingProduct(e, Kernels.load8(row + 8))
                a2 = a2.addingProduct(e, Kernels.load8(row + 16))
                a3 = a3.addingProduct(e, Kernels.load8(row + 24))
            }
            Kernels.store8(a0 * inverse, output + d)
            Kernels.store8(a1 * inverse, output + d + 8)
            Kernels.store8(a2 * inverse, output + d + 16)
            Kernels.store8(a3 * inverse, output + d + 24)
            d += 32
        }
        while d + 8 <= hd {
            var acc = SIMD8<Float>()
            for j in 0..<count { acc = acc.addingProduct(SIMD8(repeating: visible[j]), Kernels.load8(v + j * hd + d)) }
            Kernels.store8(acc * inverse, output + d)
            d += 8
        }
        while d < hd {
            var acc: Float = 0
            for j in 0..<count { acc = acc.addingProduct(visible[j], v[j * hd + d]) }
            output[d] = acc * inverse
            d += 1
        }
    }

    /// `exp(s - max)` of `count` scores in place (the maximum over them, the exponentials in lanes
    /// of eight and then one by one); returns 1 / their sum (lanes summed, then the tail in order).
    @inline(__always)
    private static func exponentiate(_ visible: UnsafeMutablePointer<Float>, count: Int) -> Float {
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

    /// `weighValues` for two consecutive queries (positions p and p + 1, whose first visible keys
    /// are `lo` ≤ `otherFirst`), each value row loaded once for both. Each output element is the
    /// same chain of fused multiply-adds, in position order, as `weighValues` computes for that
    /// query alone, so the pair changes no bit: keys before `otherFirst` feed only the first query,
    /// key p + 1 only the second.
    @inline(__always)
    private static func weighValuePair(position p: Int, first lo: Int, otherFirst: Int, values: UnsafePointer<Float>, headDim hd: Int,
                                       scores: UnsafeMutablePointer<Float>, otherScores: UnsafeMutablePointer<Float>,
                                       output: UnsafeMutablePointer<Float>, otherOutput: UnsafeMutablePointer<Float>) {
        let inverse = exponentiate(scores + lo, count: p - lo + 1)
        let otherInverse = exponentiate(otherScores + otherFirst, count: p + 2 - otherFirst)
        let last = p + 1
        var d = 0
        while d + 32 <= hd {
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
            var c0 = SIMD8<Float>(), c1 = SIMD8<Float>(), c2 = SIMD8<Float>(), c3 = SIMD8<Float>()
            var j = lo
            while j < otherFirst {
                let e = SIMD8<Float>(repeating: scores[j]), row = values + j * hd + d
                a0 = a0.addingProduct(e, Kernels.load8(row))
                a1 = a1.addingProduct(e, Kernels.load8(row + 8))
                a2 = a2.addingProduct(e, Kernels.load8(row + 16))
                a3 = a3.addingProduct(e, Kernels.load8(row + 24))
                j += 1
            }
            while j <= p {
                let e = SIMD8<Float>(repeating: scores[j]), f = SIMD8<Float>(repeating: otherScores[j]), row = values + j * hd + d
                let v0 = Kernels.load8(row), v1 = Kernels.load8(row + 8), v2 = Kernels.load8(row + 16), v3 = Kernels.load8(row + 24)
                a0 = a0.addingProduct(e, v0)
                a1 = a1.addingProduct(e, v1)
                a2 = a2.addingProduct(e, v2)
                a3 = a3.addingProduct(e, v3)
                c0 = c0.addingProduct(f, v0)
                c1 = c1.addingProduct(f, v1)
                c2 = c2.addingProduct(f, v2)
                c3 = c3.addingProduct(f, v3)
                j += 1
            }
            let f = SIMD8<Float>(repeating: otherScores[last]), row = values + last * hd + d
            c0 = c0.addingProduct(f, Kernels.load8(row))
            c1 = c1.addingProduct(f, Kernels.load8(row + 8))
            c2 = c2.addingProduct(f, Kernels.load8(row + 16))
            c3 = c3.addingProduct(f, Kernels.load8(row + 24))
            Kernels.store8(a0 * inverse, output + d)
            Kernels.store8(a1 * inverse, output + d + 8)
            Kernels.store8(a2 * inverse, output + d + 16)
            Kernels.store8(a3 * inverse, output + d + 24)
            Kernels.store8(c0 * otherInverse, otherOutput + d)
            Kernels.store8(c1 * otherInverse, otherOutput + d + 8)
            Kernels.store8(c2 * otherInverse, otherOutput + d + 16)
            Kernels.store8(c3 * otherInverse, otherOutput + d + 24)
            d += 32
        }
        while d + 8 <= hd {
            var a = SIMD8<Float>(), c = SIMD8<Float>()
            var j = lo
            while j < otherFirst { a = a.addingProduct(SIMD8(repeating: scores[j]), Kernels.load8(values + j * hd + d)); j += 1 }
            while j <= p {
                let row = Kernels.load8(values + j * hd + d)
                a = a.addingProduct(SIMD8(repeating: scores[j]), row)
                c = c.addingProduct(SIMD8(repeating: otherScores[j]), row)
                j += 1
            }
            c = c.addingProduct(SIMD8(repeating: otherScores[last]), Kernels.load8(values + last * hd + d))
            Kernels.store8(a * inverse, output + d)
            Kernels.store8(c * otherInverse, otherOutput + d)
            d += 8
        }
        while d < hd {
            var a: Float = 0, c: Float = 0
            var j = lo
            while j < otherFirst { a = a.addingProduct(scores[j], values[j * hd + d]); j += 1 }
            while j <= p {
                let value = values[j * hd + d]
                a = a.addingProduct(scores[j], value)
                c = c.addingProduct(otherScores[j], value)
                j += 1
            }
            c = c.addingProduct(otherScores[last], values[last * hd + d])
            output[d] = a * inverse
            otherOutput[d] = c * otherInverse
            d += 1
        }
    }
}
