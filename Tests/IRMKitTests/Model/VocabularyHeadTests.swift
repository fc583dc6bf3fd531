import XCTest
@testable import IRMKit

/// The fused vocabulary head + log-softmax (`VocabularyHead.evaluate`) against its plain version
/// (`VocabularyHead.reference`: whole logits, then `Kernels.logSumExp`/`klDivergence`) and against
/// a Double computation written here; bit-identical at any thread count.
final class VocabularyHeadTests: XCTestCase {
    var random = SeededGenerator(seed: 2026)

    /// The results in Double from first principles: logits `h·wᵀ` (soft-capped), log-sum-exp over
    /// each side's width, KL over the shared columns with both renormalised over them, and the
    /// after-side's mass beyond them.
    private func doubleReference(_ hidden: [[Float]], _ weights: [[Float]], widths: [Int], k: Int, rows: Int,
                                 targets: [[Int32]], softCaps: [Float?]) -> VocabularyHead.Results {
        let shared = widths.min()!
        var results = VocabularyHead.Results(logSumExp: widths.map { _ in [] }, targetLogits: widths.map { _ in [] }, kl: [], addedMass: [])
        for r in 0..<rows {
            var logits: [[Double]] = []
            for s in widths.indices {
                var row = (0..<widths[s]).map { c in (0..<k).reduce(0.0) { $0 + Double(hidden[s][r * k + $1]) * Double(weights[s][c * k + $1]) } }
                if let cap = softCaps[s] { row = row.map { Double(cap) * Foundation.tanh($0 / Double(cap)) } }
                logits.append(row)
            }
            func lse(_ x: ArraySlice<Double>) -> Double {
                let m = x.max()!
                return m + Foundation.log(x.reduce(0) { $0 + Foundation.exp($1 - m) })
            }
            for s in widths.indices {
                results.logSumExp[s].append(lse(logits[s][...]))
                results.targetLogits[s] += targets[r].map { Float(logits[s][Int($0)]) }
            }
            if widths.count == 2 {
                let a = logits[0][0..<shared], b = logits[1][0..<shared]
                let lseA = lse(a), lseB = lse(b)
                results.kl.append(zip(a, b).reduce(0) { $0 + Foundation.exp($1.0 - lseA) * (($1.0 - lseA) - ($1.1 - lseB)) })
                results.addedMass.append(1 - Foundation.exp(lseA - results.logSumExp[0][r]))
            }
        }
        return results
    }

    private func assertAgree(_ found: VocabularyHead.Results, _ expected: VocabularyHead.Results, tolerance: Double, _ label: String,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(found.logSumExp.count, expected.logSumExp.count, label, file: file, line: line)
        for s in found.logSumExp.indices {
            assertClose(found.logSumExp[s], expected.logSumExp[s], absolute: tolerance, "\(label): log-sum-exp of side \(s)", file: file, line: line)
            assertClose(found.targetLogits[s].map(Double.init), expected.targetLogits[s].map(Double.init), absolute: tolerance,
                        "\(label): target logits of side \(s)", file: file, line: line)
        }
        assertClose(found.kl, expected.kl, absolute: tolerance, "\(label): KL", file: file, line: line)
        assertClose(found.addedMass, expected.addedMass, absolute: tolerance, "\(label): added mass", file: file, line: line)
    }

    /// One model and pairs (same width, after wider, before wider), soft caps, rows and
    /// vocabularies that are no multiple of the tiles, several targets per row (a shared prompt's
    /// last row): fused = plain version = Double, and the same bits at 1, 2 and 3 threads.
    func testFusedHeadMatchesThePlainVersionAndIsBitIdenticalAtAnyThreadCount() {
        let saved = ComputeThreads.count
        defer { ComputeThreads.set(saved) }
        let k = 24, rows = 37
        let tilings = [Kernels.GEMMTiling(rows: 16, columns: 64), Kernels.GEMMTiling(rows: 5, columns: 7), VocabularyHead.standardTiling]
        let cases: [(String, [Int], [Float?])] = [
            ("one model", [301], [nil]),
            ("one model, soft cap", [301], [2.5]),
            ("pair", [301, 301], [nil, nil]),
            ("pair, after has added rows", [333, 301], [nil, nil]),
            ("pair, before has added rows", [301, 333], [nil, nil]),
            ("pair, soft caps", [301, 301], [3, 3]),
        ]
        for (name, widths, caps) in cases {
            let hidden = widths.map { _ in random.floats(rows * k) }
            // Logits spread over about ±5, so that the distributions are far from uniform.
            let weights = widths.map { random.floats($0 * k, scale: 1.0) }
            let targets: [[Int32]] = (0..<rows).map { r in
                r % 9 == 0 ? [] : (0..<(1 + r % 3)).map { i in Int32((r * 37 + i * 101) % widths.min()!) }
            }
            let expected = doubleReference(hidden, weights, widths: widths, k: k, rows: rows, targets: targets, softCaps: caps)
            hidden.withSides(weights, widths: widths, k: k, caps: caps) { sides in
                let plain = VocabularyHead.reference(sides, rows: rows, targets: targets, chunkRows: 10)
                assertAgree(plain, expected, tolerance: 2e-5, "\(name): plain version vs Double")
                for tiling in tilings {
                    var first: VocabularyHead.Results?
                    for threads in [1, 2, 3] {
                        ComputeThreads.set(threads)
                        let fused = VocabularyHead.evaluate(sides, rows: rows, targets: targets, tiling: tiling)
                        let label = "\(name), tiles \(tiling.rows)×\(tiling.columns), \(threads) threads"
                        if let first {
                            XCTAssertTrue(fused.logSumExp == first.logSumExp && fused.targetLogits == first.targetLogits
                                          && fused.kl == first.kl && fused.addedMass == first.addedMass, "\(label): differs from 1 thread")
                        } else {
                            first = fused
                            assertAgree(fused, expected, tolerance: 2e-5, "\(label): fused vs Double")
                            assertAgree(fused, plain, tolerance: 2e-5, "\(label): fused vs plain version")
                        }
                    }
                }
            }
        }
    }

    /// A bf16 head mapped from a file is widened panel by panel (panels of one tile, of three
    /// tiles, and the whole head), for one model and a pair with a resized vocabulary; GPT-2's
    /// `[in, out]` layout too.
    func testHalfPrecisionHeadIsWidenedByPanelsWithTheSameResults() throws {
        let k = 16, rows = 21
        let widths = [250, 230]
        let values = widths.map { n in random.floats(n * k).map { BFloat16($0).floatValue } }
        let directory = try Fixtures.temporaryDirectory(for: self)
        let path = directory.appendingPathComponent("heads.h5").path
        let file = try HDF5File.create(path)
        let root = try file.root()
        for (s, v) in values.enumerated() { try root.createDataset("head\(s)", values: v.map(BFloat16.init), shape: [widths[s], k]) }
        try file.flush()
        let mapping = try MappedFile(path: path)
        let mapped = try widths.indices.map { s -> DenseWeight in
            guard case .contiguous(let offset, _) = try root.dataset("head\(s)").storage() else { throw IRMError("head\(s) is not contiguous") }
            let tensor = StoredTensor(name: "head\(s)", shape: [widths[s], k], element: .bfloat16, mapping: mapping, byteOffset: offset)
            return DenseWeight(tensor: tensor, outFeatures: widths[s], inFeatures: k, layout: .outByIn)
        }
        XCTAssertTrue(mapped.allSatisfy { $0.float32Pointer == nil })
        let hidden = widths.map { _ in random.floats(rows * k) }
        let targets: [[Int32]] = (0..<rows).map { [Int32(($0 * 53) % 230)] }
        let tiling = Kernels.GEMMTiling(rows: 8, columns: 32)
        for sideCount in [1, 2] {
            let owned = (0..<sideCount).map { DenseWeight(values: values[$0], outFeatures: widths[$0], inFeatures: k, layout: .outByIn) }
            // [in, out] copies of the same heads.
            let conv = (0..<sideCount).map { s -> DenseWeight in
                var transposed = [Float](repeating: 0, count: values[s].count)
                for o in 0..<widths[s] { for i in 0..<k { transposed[i * widths[s] + o] = values[s][o * k + i] } }
                return DenseWeight(values: transposed, outFeatures: widths[s], inFeatures: k, layout: .inByOut)
            }
            func run(_ weights: [DenseWeight], panelElements: Int = Kernels.panelElements) -> VocabularyHead.Results {
                hidden[0].withUnsafeBufferPointer { h0 in
                    hidden[1].withUnsafeBufferPointer { h1 in
                        let sides = weights.indices.map { VocabularyHead.Side(hidden: [h0, h1][$0].baseAddress!, weight: weights[$0], softCap: nil) }
                        return VocabularyHead.evaluate(sides, rows: rows, targets: targets, tiling: tiling, panelElements: panelElements)
                    }
                }
            }
            let inPlace = run(owned)
            let expected = doubleReference(hidden, values, widths: Array(widths.prefix(sideCount)), k: k, rows: rows, targets: targets,
                                           softCaps: [nil, nil])
            assertAgree(inPlace, expected, tolerance: 2e-5, "\(sideCount) side(s), float32 in place vs Double")
            for panelElements in [32 * k, 96 * k, Kernels.panelElements] {
                let label = "\(sideCount) side(s), panels of \(panelElements / k) rows"
                let widened = run(Array(mapped.prefix(sideCount)), panelElements: panelElements)
                // Same values, same tiles: widening is exact, so only sgemm's handling of the
                // operands' addresses could tell the two apart.
                assertAgree(widened, inPlace, tolerance: 1e-6, "\(label): bf16 vs float32 in place")
                assertAgree(run(conv, panelElements: panelElements), expected, tolerance: 2e-5, "\(label), [in, out] layout vs Double")
            }
        }
    }

    /// A non-finite logit comes out as a non-finite result (which the scorer reports), never as a
    /// number.
    func testOverflowingLogitsGiveNonFiniteResults() {
        let k = 4, rows = 3, width = 100
        var hidden = random.floats(rows * k)
        hidden[k] = 3e38
        hidden[k + 1] = 3e38
        let weight = [Float](repeating: 1, count: width * k)
        hidden.withUnsafeBufferPointer { h in
            let side = VocabularyHead.Side(hidden: h.baseAddress!, weight: DenseWeight(values: weight, outFeatures: width, inFeatures: k, layout: .outByIn),
                                           softCap: nil)
            let results = VocabularyHead.evaluate([side, side], rows: rows, targets: [[1], [2], [3]], tiling: .init(rows: 2, columns: 16))
            for r in 0..<rows {
                let logProb = Double(results.targetLogits[0][r]) - results.logSumExp[0][r]
                XCTAssertEqual(logProb.isFinite, r != 1, "row \(r): log-prob \(logProb)")
                XCTAssertEqual(results.kl[r].isFinite, r != 1, "row \(r): KL \(results.kl[r])")
            }
        }
    }
}

private extension Array where Element == [Float] {
    /// Calls `body` with one `VocabularyHead.Side` per hidden-state array (owned float32 heads).
    func withSides(_ weights: [[Float]], widths: [Int], k: Int, caps: [Float?], _ body: ([VocabularyHead.Side]) -> Void) {
        let buffers = map { FloatBuffer($0) }
        let sides = indices.map { s in
            VocabularyHead.Side(hidden: UnsafePointer(buffers[s].pointer),
                                weight: DenseWeight(values: weights[s], outFeatures: widths[s], inFeatures: k, layout: .outByIn), softCap: caps[s])
        }
        withExtendedLifetime(buffers) { body(sides) }
    }
}
