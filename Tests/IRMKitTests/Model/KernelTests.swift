import Foundation
import XCTest
@testable import IRMKit

/// The fast kernels against their plain Double counterparts in `ReferenceKernels`.
/// Tolerances are float32 rounding of the operation at hand, stated per test.
final class KernelTests: XCTestCase {
    var random = SeededGenerator(seed: 42)

    func testGEMMInBothWeightLayoutsMatchesTheReference() {
        let rows = 13, inFeatures = 37, outFeatures = 29
        let x = random.floats(rows * inFeatures)
        let w = random.floats(outFeatures * inFeatures)
        let b = random.floats(outFeatures)
        let expected = ReferenceKernels.linear(x, rows: rows, weight: w, outFeatures: outFeatures, inFeatures: inFeatures, bias: b)
        // The same weights stored [in, out], as GPT-2's Conv1D does.
        var transposed = [Float](repeating: 0, count: w.count)
        for o in 0..<outFeatures { for i in 0..<inFeatures { transposed[i * outFeatures + o] = w[o * inFeatures + i] } }
        for (layout, values) in [(WeightLayout.outByIn, w), (.inByOut, transposed)] {
            let linear = Linear(weight: DenseWeight(values: values, outFeatures: outFeatures, inFeatures: inFeatures, layout: layout), bias: b)
            let out = FloatBuffer(count: rows * outFeatures)
            let input = FloatBuffer(x)
            linear.apply(input.pointer, rows: rows, into: out.pointer)
            assertClose(out.array.map(Double.init), expected, absolute: 1e-5, "\(layout)")
            // Accumulating adds onto what is there (a residual connection).
            linear.apply(input.pointer, rows: rows, into: out.pointer, accumulate: true)
            assertClose(out.array.map(Double.init), expected.map { 2 * $0 }, absolute: 2e-5, "\(layout), accumulated")
        }
    }

    /// The tiled GEMM gives the same bits at 1, 2 and 3 threads, for both weight layouts, widened
    /// panels, accumulation and shapes that are no multiple of anything: small tiles on small
    /// shapes, and the standard tiles on a product big enough for OpenBLAS's own threading to have
    /// changed its rounding. Every result matches the Double reference (1e-5 absolute, as above;
    /// |x|, |w| ≤ 1 and 37 terms).
    func testTiledGEMMIsBitIdenticalAtAnyThreadCountAndMatchesTheReference() {
        let saved = ComputeThreads.count
        defer { ComputeThreads.set(saved) }
        let small = Kernels.GEMMTiling(rows: 5, columns: 7)
        for (rows, outFeatures, tiling) in [(37, 29, small), (3, 11, small), (523, 2100, Kernels.GEMMTiling.standard)] {
            let inFeatures = 37
            let rowTiles = Kernels.GEMMTiling.parts(rows, size: tiling.rows).count
            let columnTiles = Kernels.GEMMTiling.parts(outFeatures, size: tiling.columns).count
            XCTAssertGreaterThan(rowTiles * columnTiles, 1, "\(rows)×\(outFeatures) is split")
            let x = random.floats(rows * inFeatures), w = random.floats(outFeatures * inFeatures)
            // What an accumulating product adds to: any values in [-1, 1), cheaper to make than random ones.
            let start = (0..<(rows * outFeatures)).map { Float(($0 * 7919) % 2000) / 1000 - 1 }
            var transposed = [Float](repeating: 0, count: w.count)
            for o in 0..<outFeatures { for i in 0..<inFeatures { transposed[i * outFeatures + o] = w[o * inFeatures + i] } }
            // The reference at every 7th row (the large shape's full reference would take seconds).
            let checked = Array(stride(from: 0, to: rows, by: rows > 100 ? 7 : 1))
            let expected = ReferenceKernels.linear(checked.flatMap { x[($0 * inFeatures)..<(($0 + 1) * inFeatures)] }, rows: checked.count,
                                                   weight: w, outFeatures: outFeatures, inFeatures: inFeatures, bias: nil)
            for (layout, values) in [(WeightLayout.outByIn, w), (.inByOut, transposed)] {
                let weight = DenseWeight(values: values, outFeatures: outFeatures, inFeatures: inFeatures, layout: layout)
                for (way, beta) in [("gemm", Float(0)), ("gemm, accumulating", 1), ("panels of 3 outputs", 0)] {
                    var first: [Float]?
                    for threads in [1, 2, 3] {
                        ComputeThreads.set(threads)
                        let out = FloatBuffer(start)
                        let input = FloatBuffer(x)
                        if way.hasPrefix("panels") {
                            Kernels.gemmByPanels(input.pointer, rows: rows, weight: weight, output: out.pointer, beta: beta, profile: nil,
                                                 panelElements: 3 * inFeatures, tiling: tiling)
                        } else {
                            Kernels.gemm(input.pointer, rows: rows, weight: weight, output: out.pointer, beta: beta, tiling: tiling)
                        }
                        let found = out.array
                        let label = "\(rows)×\(outFeatures), \(layout), \(way), \(threads) threads"
                        if let first {
                            XCTAssertTrue(found == first, "\(label): differs from 1 thread")
                        } else {
                            first = found
                            let added = checked.flatMap { r in (0..<outFeatures).map { Double(beta * start[r * outFeatures + $0]) } }
                            let sampled = checked.flatMap { found[($0 * outFeatures)..<(($0 + 1) * outFeatures)] }.map(Double.init)
                            assertClose(sampled, zip(expected, added).map { $0 + $1 }, absolute: beta == 0 ? 1e-5 : 2e-5, label)
                        }
                    }
                }
            }
        }
    }

    func testGEMMTilesCoverEachIndexOnceInNearEqualParts() {
        for (count, size) in [(0, 256), (1, 256), (255, 256), (256, 256), (257, 256), (600, 256), (2048, 256), (50257, 4096), (17, 8), (37, 5)] {
            let parts = Kernels.GEMMTiling.parts(count, size: size)
            XCTAssertEqual(parts.flatMap { Array($0) }, Array(0..<count), "\(count) by \(size)")
            XCTAssertEqual(parts.count, (count + size - 1) / size, "\(count) by \(size): as few parts as the size allows")
            XCTAssertTrue(parts.allSatisfy { $0.count <= size }, "\(count) by \(size)")
            if size >= 16 { XCTAssertTrue(parts.dropLast().allSatisfy { $0.count % 16 == 0 }, "\(count) by \(size): multiples of 16") }
        }
        XCTAssertEqual(Kernels.GEMMTiling.parts(600, size: 256).map(\.count), [208, 208, 184])
    }

    func testLayerNormAndRMSNormMatchTheReference() {
        for width in [7, 8, 48, 61] {
            let rows = 5
            let x = random.floats(rows * width, scale: 3).map { $0 + 2 }
            let w = random.floats(width), b = random.floats(width)
            let input = FloatBuffer(x), out = FloatBuffer(count: x.count)
            Kernels.layerNorm(input.pointer, rows: rows, width: width, weight: w, bias: b, epsilon: 1e-5, output: out.pointer)
            assertClose(out.array.map(Double.init), ReferenceKernels.layerNorm(x, width: width, weight: w, bias: b, epsilon: 1e-5),
                        absolute: 2e-6, relative: 2e-6, "layer norm, width \(width)")
            Kernels.rmsNorm(input.pointer, rows: rows, width: width, weight: w, epsilon: 1e-6, output: out.pointer)
            assertClose(out.array.map(Double.init), ReferenceKernels.rmsNorm(x, width: width, weight: w, epsilon: 1e-6),
                        absolute: 2e-6, relative: 2e-6, "rms norm, width \(width)")
        }
    }

    /// OLMo 2's QK-norm normalises the Q and K parts of fused `[Q | K | V]` rows in place.
    func testRMSNormOverAStridedPartOfEachRowInPlace() {
        let rows = 6, width = 20, stride = 52, offset = 12
        let data = random.floats(rows * stride, scale: 2)
        let w = random.floats(width)
        let buffer = FloatBuffer(data)
        Kernels.rmsNorm(buffer.pointer + offset, rows: rows, width: width, weight: w, epsilon: 1e-6, output: buffer.pointer + offset,
                        rowStride: stride)
        let result = buffer.array
        for r in 0..<rows {
            let part = Array(data[(r * stride + offset)..<(r * stride + offset + width)])
            assertClose(Array(result[(r * stride + offset)..<(r * stride + offset + width)]).map(Double.init),
                        ReferenceKernels.rmsNorm(part, width: width, weight: w, epsilon: 1e-6), absolute: 2e-6, relative: 2e-6, "row \(r)")
            XCTAssertEqual(Array(result[(r * stride)..<(r * stride + offset)]), Array(data[(r * stride)..<(r * stride + offset)]),
                           "row \(r): the columns before the part are untouched")
            XCTAssertEqual(Array(result[(r * stride + offset + width)..<((r + 1) * stride)]),
                           Array(data[(r * stride + offset + width)..<((r + 1) * stride)]), "row \(r): the columns after it too")
        }
    }

    func testGemmaActivationAndSoftCappingMatchTheReference() {
        var x = random.floats(1003, scale: 12)
        x += [0, -0, 1e-8, -1e-8, 1e-3, -1e-3, 30, -30, 80, -80, 100, -100]
        let up = random.floats(x.count)
        let gateUp = FloatBuffer(x + up), out = FloatBuffer(count: x.count)
        Kernels.geluTanhGate(gateUp.pointer, rows: 1, width: x.count, output: out.pointer)
        assertClose(out.array.map(Double.init), zip(x, up).map { ReferenceKernels.geluTanh(Double($0)) * Double($1) },
                    absolute: 1e-6, relative: 1e-6, "gelu-tanh gate")
        // Several rows: each row's gate and up halves are its own.
        let rows = 3, width = 17
        let packed = random.floats(rows * 2 * width, scale: 4)
        let rowsOut = FloatBuffer(count: rows * width)
        let packedInput = FloatBuffer(packed)
        Kernels.geluTanhGate(packedInput.pointer, rows: rows, width: width, output: rowsOut.pointer)
        var expected: [Double] = []
        for r in 0..<rows {
            for j in 0..<width { expected.append(ReferenceKernels.geluTanh(Double(packed[r * 2 * width + j])) * Double(packed[r * 2 * width + width + j])) }
        }
        assertClose(rowsOut.array.map(Double.init), expected, absolute: 1e-5, relative: 1e-6, "gelu-tanh gate, \(rows) rows")

        let capped = FloatBuffer(x)
        Kernels.softCap(capped.pointer, count: x.count, cap: 8)
        assertClose(capped.array.map(Double.init), x.map { 8 * Foundation.tanh(Double($0) / 8) }, absolute: 1e-6, relative: 1e-6, "soft cap")
    }

    /// The activations a projection's epilogue applies (`GEMMEpilogue`), over a wide range.
    func testActivationsMatchTheReference() {
        // Wide range, both signs, and values near zero where tanh-based forms lose digits.
        var x = random.floats(1003, scale: 12)
        x += [0, -0, 1e-8, -1e-8, 1e-3, -1e-3, 30, -30, 80, -80, 100, -100]
        for (activation, reference) in [(GEMMEpilogue.Activation.geluTanh, ReferenceKernels.geluTanh), (.geluErf, ReferenceKernels.geluErf)] {
            let values = FloatBuffer(x)
            GEMMEpilogue(bias: nil, activation: activation).apply(values.pointer, rows: 1, columns: x.count, stride: x.count, firstColumn: 0)
            assertClose(values.array.map(Double.init), x.map { reference(Double($0)) }, absolute: 1e-6, relative: 1e-6, "\(activation)")
        }
        let relu = FloatBuffer(x + [.nan])
        GEMMEpilogue(bias: nil, activation: .relu).apply(relu.pointer, rows: 1, columns: x.count + 1, stride: x.count + 1, firstColumn: 0)
        XCTAssertEqual(Array(relu.array.prefix(x.count)), x.map { max($0, 0) }, "relu")
        XCTAssertTrue(relu.array[x.count].isNaN, "relu keeps a NaN visible")
        let up = random.floats(x.count)
        let gateUp = FloatBuffer(x + up), out = FloatBuffer(count: x.count)
        Kernels.siluGate(gateUp.pointer, rows: 1, width: x.count, output: out.pointer)
        assertClose(out.array.map(Double.init), zip(x, up).map { ReferenceKernels.silu(Double($0)) * Double($1) },
                    absolute: 1e-6, relative: 1e-6, "silu gate")
    }

    /// An epilogue's result for an element depends on that element, its bias and nothing else:
    /// the same bits whether its row is one tile, tiles of 5 (a ragged last one) or of 1, at any
    /// stride and row.
    func testEpilogueGivesEachElementTheSameBitsWhereverATileEdgeFalls() {
        let rows = 3, columns = 37, stride = 41
        let x = random.floats(rows * stride, scale: 6), bias = random.floats(columns)
        for activation in [nil] + GEMMEpilogue.Activation.allCases.map(Optional.some) {
            for withBias in [false, true] {
                let epilogue = GEMMEpilogue(bias: withBias ? bias : nil, activation: activation)
                var results: [[Float]] = []
                for width in [columns, 5, 1] {
                    let tile = FloatBuffer(x)
                    for first in Swift.stride(from: 0, to: columns, by: width) {
                        epilogue.apply(tile.pointer + first, rows: rows, columns: min(width, columns - first), stride: stride, firstColumn: first)
                    }
                    results.append(tile.array)
                }
                let label = "\(activation.map { "\($0)" } ?? "no activation"), bias \(withBias)"
                XCTAssertEqual(results[1], results[0], "\(label): tiles of 5")
                XCTAssertEqual(results[2], results[0], "\(label): tiles of 1")
                XCTAssertEqual(Array(results[0][columns..<stride]), Array(x[columns..<stride]), "\(label): the stride's padding is left alone")
            }
        }
    }

    /// A projection with its bias and activation fused into the product's tiles (`Linear.apply`)
    /// against the Double reference of `act(x W + b)`, for both weight layouts, in place and by
    /// widened panels (with a panel edge inside a column tile), accumulating onto a residual, and
    /// with the same bits at 1, 2 and 3 threads. |x|, |w|, |b| ≤ 1 and 37 terms: 2e-5 absolute.
    func testFusedBiasAndActivationMatchTheReferenceAtAnyThreadCount() {
        let saved = ComputeThreads.count
        defer { ComputeThreads.set(saved) }
        let rows = 23, inFeatures = 37, outFeatures = 29
        let tiling = Kernels.GEMMTiling(rows: 5, columns: 7)
        let x = random.floats(rows * inFeatures), w = random.floats(outFeatures * inFeatures), b = random.floats(outFeatures)
        let residual = random.floats(rows * outFeatures)
        let product = ReferenceKernels.linear(x, rows: rows, weight: w, outFeatures: outFeatures, inFeatures: inFeatures, bias: b)
        var transposed = [Float](repeating: 0, count: w.count)
        for o in 0..<outFeatures { for i in 0..<inFeatures { transposed[i * outFeatures + o] = w[o * inFeatures + i] } }
        let references: [(GEMMEpilogue.Activation?, (Double) -> Double)] = [
            (nil, { $0 }), (.geluTanh, ReferenceKernels.geluTanh), (.geluErf, ReferenceKernels.geluErf), (.relu, { max($0, 0) })]
        for (layout, values) in [(WeightLayout.outByIn, w), (.inByOut, transposed)] {
            let weight = DenseWeight(values: values, outFeatures: outFeatures, inFeatures: inFeatures, layout: layout)
            for (activation, reference) in references {
                for accumulate in activation == nil ? [false, true] : [false] {
                    for way in ["in place", "panels of 10 outputs"] {
                        var first: [Float]?
                        for threads in [1, 2, 3] {
                            ComputeThreads.set(threads)
                            let input = FloatBuffer(x), out = FloatBuffer(accumulate ? residual : [Float](repeating: .nan, count: residual.count))
                            let epilogue = GEMMEpilogue(bias: b, activation: activation)
                            if way == "in place" {
                                Kernels.gemm(input.pointer, rows: rows, weight: weight, output: out.pointer, beta: accumulate ? 1 : 0,
                                             epilogue: epilogue, tiling: tiling)
                            } else {
                                Kernels.gemmByPanels(input.pointer, rows: rows, weight: weight, output: out.pointer, beta: accumulate ? 1 : 0,
                                                     epilogue: epilogue, profile: nil, panelElements: 10 * inFeatures, tiling: tiling)
                            }
                            let found = out.array
                            let label = "\(layout), \(activation.map { "\($0)" } ?? "bias only"), accumulate \(accumulate), \(way), \(threads) threads"
                            if let first {
                                XCTAssertTrue(found == first, "\(label): differs from 1 thread")
                                continue
                            }
                            first = found
                            let expected = product.enumerated().map { i, v in reference(v) + (accumulate ? Double(residual[i]) : 0) }
                            assertClose(found.map(Double.init), expected, absolute: 2e-5, label)
                        }
                    }
                }
            }
        }
        // Linear.apply is the same fused product.
        let linear = Linear(weight: DenseWeight(values: w, outFeatures: outFeatures, inFeatures: inFeatures, layout: .outByIn), bias: b)
        let input = FloatBuffer(x), out = FloatBuffer(count: rows * outFeatures)
        linear.apply(input.pointer, rows: rows, into: out.pointer, activation: .geluTanh)
        assertClose(out.array.map(Double.init), product.map(ReferenceKernels.geluTanh), absolute: 2e-5, "Linear.apply with gelu")
    }

    func testVectorExpIsAccurateOverItsRange() {
        var worst: Float = 0
        var v: Float = -87
        while v < 88 {
            let lanes = SIMD8<Float>((0..<8).map { v + Float($0) * 0.013 })
            let fast = Kernels.exp(lanes)
            for i in 0..<8 {
                let exact = Foundation.exp(Double(lanes[i]))
                worst = max(worst, Float(abs(Double(fast[i]) - exact) / exact))
            }
            v += 0.37
        }
        XCTAssertLessThan(worst, 4e-7, "relative error of the vector exp")
        XCTAssertEqual(Kernels.exp(SIMD8(repeating: -1000))[0], Kernels.exp(SIMD8(repeating: -87.33))[0], "clamped below")
        XCTAssertLessThan(Kernels.exp(SIMD8(repeating: -1000))[0], 1e-37)
    }

    func testLogSumExpAndKLMatchTheReference() {
        for count in [1, 7, 8, 333, 50_257] {
            let a = random.floats(count, scale: 20), b = random.floats(count, scale: 20)
            let bufferA = FloatBuffer(a), bufferB = FloatBuffer(b)
            let lse = Kernels.logSumExp(bufferA.pointer, count: count)
            assertClose(lse, ReferenceKernels.logSumExp(a), absolute: 2e-6, relative: 1e-7, "log-sum-exp over \(count)")
            let kl = Kernels.klDivergence(bufferA.pointer, bufferB.pointer, count: count)
            assertClose(kl.kl, ReferenceKernels.klDivergence(a, b), absolute: 1e-5, relative: 1e-6, "KL over \(count)")
        }
        // Identical distributions: KL is zero up to rounding.
        let same = FloatBuffer(random.floats(1000, scale: 10))
        XCTAssertEqual(Kernels.klDivergence(same.pointer, same.pointer, count: 1000).kl, 0, accuracy: 1e-6)
    }

    func testRotaryMatchesTheReferenceIncludingPartialRotation() {
        let headDim = 16, heads = 3, rows = 4
        for rotaryDim in [16, 4, 0] {
            let x = random.floats(rows * heads * headDim)
            let positions: [Int32] = [0, 1, 37, 511]
            let table = Kernels.RotaryTable(rotaryDim: rotaryDim, theta: 10_000, positions: 512)
            let data = FloatBuffer(x)
            positions.withUnsafeBufferPointer {
                Kernels.applyRotary(data.pointer, rows: rows, rowStride: heads * headDim, headCount: heads, headDim: headDim,
                                    positions: $0.baseAddress!, table: table)
            }
            var expected: [Double] = []
            for r in 0..<rows {
                for h in 0..<heads {
                    let start = (r * heads + h) * headDim
                    expected += ReferenceKernels.rotary(Array(x[start..<(start + headDim)]), position: Int(positions[r]), rotaryDim: rotaryDim, theta: 10_000)
                }
            }
            assertClose(data.array.map(Double.init), expected, absolute: 1e-6, "rotary dim \(rotaryDim)")
        }
    }
}

/// The attention kernel against the reference, and its batch invariance, which is exact.
final class CausalAttentionTests: XCTestCase {
    var random = SeededGenerator(seed: 7)

    func config(heads: Int, kvHeads: Int, headDim: Int) throws -> ModelConfig {
        let json = try JSONValue.parse("""
            {"model_type": "llama", "vocab_size": 50, "hidden_size": \(heads * headDim), "num_hidden_layers": 1,
             "num_attention_heads": \(heads), "num_key_value_heads": \(kvHeads), "max_position_embeddings": 64,
             "intermediate_size": 8, "head_dim": \(2 * headDim)}
            """, source: "test")
        // The attention kernel takes any head width; a config's RoPE needs an even one.
        var config = try ModelConfig(json: json, source: "test")
        config.headDim = headDim
        return config
    }

    /// Runs the kernel on one segment of `length` new tokens, optionally after a cached prefix.
    func attend(_ qkv: [Float], geometry g: AttentionGeometry, config: ModelConfig, segments: [(length: Int, prefix: KeyValueCache?, records: Bool)])
        throws -> (output: [Float], batch: PackedBatch) {
        let forward = segments.map { ForwardSegment(tokens: Array(repeating: 0, count: $0.length), prefix: $0.prefix, recordsCache: $0.records, outputRows: []) }
        let batch = try PackedBatch(segments: forward, config: config)
        let output = FloatBuffer(zeros: batch.rowCount * g.qDim)
        CausalAttention.run(qkv: FloatBuffer(qkv), batch: batch, layer: 0, geometry: g, output: output, profile: nil)
        return (output.array, batch)
    }

    func split(_ qkv: [Float], rows: Int, g: AttentionGeometry) -> (q: [Float], k: [Float], v: [Float]) {
        var q: [Float] = [], k: [Float] = [], v: [Float] = []
        for r in 0..<rows {
            let row = Array(qkv[(r * g.qkvWidth)..<((r + 1) * g.qkvWidth)])
            q += row[0..<g.qDim]
            k += row[g.qDim..<(g.qDim + g.kvDim)]
            v += row[(g.qDim + g.kvDim)...]
        }
        return (q, k, v)
    }

    func testMatchesTheReferenceWithGroupedHeadsAndWindows() throws {
        for (heads, kvHeads, headDim, window) in [(4, 4, 8, nil), (4, 2, 8, nil), (6, 1, 12, nil), (4, 2, 16, 5), (2, 2, 3, 1), (2, 1, 64, nil), (3, 3, 40, 33)] as [(Int, Int, Int, Int?)] {
            let g = AttentionGeometry(headCount: heads, kvHeadCount: kvHeads, headDim: headDim, scale: 0.7, window: window)
            let length = 45
            let qkv = random.floats(length * g.qkvWidth, scale: 1.5)
            let out = try attend(qkv, geometry: g, config: config(heads: heads, kvHeads: kvHeads, headDim: headDim),
                                 segments: [(length, nil, false)]).output
            let (q, k, v) = split(qkv, rows: length, g: g)
            let expected = ReferenceKernels.attention(q: q, k: k, v: v, length: length, headCount: heads, kvHeadCount: kvHeads,
                                                      headDim: headDim, scale: 0.7, window: window)
            // Scores reach ±30 here, so their float32 rounding (a few 1e-6) shows in the outputs.
            assertClose(out.map(Double.init), expected, absolute: 1e-5, relative: 1e-5, "heads \(heads)/\(kvHeads), window \(String(describing: window))")
        }
    }

    /// Gemma 2's soft-capped scores, with and without a window, in full and short query blocks.
    func testSoftCappedScoresMatchTheReference() throws {
        for (heads, kvHeads, headDim, window, length) in [(4, 2, 16, 8, 45), (2, 1, 8, nil, 44), (4, 4, 12, 3, 9)] as [(Int, Int, Int, Int?, Int)] {
            var g = AttentionGeometry(headCount: heads, kvHeadCount: kvHeads, headDim: headDim, scale: 0.6, window: window)
            g.softCap = 4
            let qkv = random.floats(length * g.qkvWidth, scale: 2)
            let out = try attend(qkv, geometry: g, config: config(heads: heads, kvHeads: kvHeads, headDim: headDim),
                                 segments: [(length, nil, false)]).output
            let (q, k, v) = split(qkv, rows: length, g: g)
            let expected = ReferenceKernels.attention(q: q, k: k, v: v, length: length, headCount: heads, kvHeadCount: kvHeads,
                                                      headDim: headDim, scale: 0.6, window: window, softCap: 4)
            assertClose(out.map(Double.init), expected, absolute: 1e-5, relative: 1e-5, "soft cap 4, heads \(heads)/\(kvHeads), window \(String(describing: window))")
            let uncapped = ReferenceKernels.attention(q: q, k: k, v: v, length: length, headCount: heads, kvHeadCount: kvHeads,
                                                      headDim: headDim, scale: 0.6, window: window)
            XCTAssertGreaterThan(zip(expected, uncapped).map { abs($0 - $1) }.max() ?? 0, 1e-2, "the cap changes the result here")
        }
    }

    /// A sequence gives bit-identical attention alone, packed after another sequence, and as a
    /// continuation of its own cached prefix.
    func testIsBitIdenticalAlonePackedAndContinuingACachedPrefix() throws {
        let g = AttentionGeometry(headCount: 4, kvHeadCount: 2, headDim: 8, scale: 0.35, window: nil)
        let cfg = try config(heads: 4, kvHeads: 2, headDim: 8)
        let length = 21, split = 9
        let qkv = random.floats(length * g.qkvWidth, scale: 2)
        let alone = try attend(qkv, geometry: g, config: cfg, segments: [(length, nil, false)]).output

        let other = random.floats(5 * g.qkvWidth, scale: 2)
        let packed = try attend(other + qkv, geometry: g, config: cfg, segments: [(5, nil, false), (length, nil, false)]).output
        XCTAssertEqual(Array(packed[(5 * g.qDim)...]), alone, "packed after another sequence")

        let prefixRun = try attend(Array(qkv[..<(split * g.qkvWidth)]), geometry: g, config: cfg, segments: [(split, nil, true)])
        let cache = try XCTUnwrap(prefixRun.batch.recordedCaches[0])
        XCTAssertEqual(cache.length, split)
        let continued = try attend(Array(qkv[(split * g.qkvWidth)...]), geometry: g, config: cfg, segments: [(length - split, cache, false)]).output
        XCTAssertEqual(prefixRun.output + continued, alone, "prefix, then continuation from its cache")
    }

    /// Queries run in blocks of four that share each key and value load; a query's output must not
    /// depend on which queries share its block. Continuing a cached prefix at every offset moves
    /// each query through every place of a block, and into short last blocks, for head widths that
    /// use every lane path (64: 16-dimension blocks; 12 and 40: a one-query tail of one vector and
    /// scalars; 3: scalars), windows shorter and longer than the blocks, grouped heads and a soft cap.
    func testBlockedQueriesGiveTheBitsOfQueriesRunAlone() throws {
        for (heads, kvHeads, headDim, window, cap) in [(2, 1, 64, nil, nil), (4, 2, 12, 3, nil), (2, 2, 3, 1, nil), (4, 1, 40, 6, 3)]
            as [(Int, Int, Int, Int?, Float?)] {
            var g = AttentionGeometry(headCount: heads, kvHeadCount: kvHeads, headDim: headDim, scale: 0.4, window: window)
            g.softCap = cap
            let cfg = try config(heads: heads, kvHeads: kvHeads, headDim: headDim)
            let length = 15
            let qkv = random.floats(length * g.qkvWidth, scale: 2)
            let alone = try attend(qkv, geometry: g, config: cfg, segments: [(length, nil, false)]).output
            for split in 1..<length {
                let prefixRun = try attend(Array(qkv[..<(split * g.qkvWidth)]), geometry: g, config: cfg, segments: [(split, nil, true)])
                let cache = try XCTUnwrap(prefixRun.batch.recordedCaches[0])
                let continued = try attend(Array(qkv[(split * g.qkvWidth)...]), geometry: g, config: cfg,
                                           segments: [(length - split, cache, false)]).output
                XCTAssertTrue(prefixRun.output + continued == alone, "head width \(headDim), window \(String(describing: window)), split at \(split)")
            }
        }
    }
}
