import CBLAS
import Foundation

/// The vocabulary head and the log-softmax, fused: per row of hidden states, the log-sum-exp of
/// the logits over the model's full output width and the logits of the requested tokens; with two
/// models (`compare`), also the exact `KL(after ‖ before)` over their shared rows and the
/// after-policy's probability on rows the before-policy lacks.
///
/// The logits never exist as a whole. The product `hidden · headᵀ` runs as a grid of tiles of at
/// most `tiling.rows` rows × `tiling.columns` vocabulary entries (`Kernels.GEMMTiling`); each tile
/// is one single-threaded sgemm into a small per-thread scratch buffer, and is reduced while it is
/// still in cache to per-row partials: its maximum, `Σ exp(x - max)` and, for a pair,
/// `Σ exp(a - max_a)(a - b)`. The partials are combined row by row in column-tile order, so the
/// result depends on the shape only, never on the thread count or which thread ran which tile.
/// Each head row is read once per row tile.
///
/// `reference` computes the same results the plain way (whole logits per chunk of rows, then
/// `Kernels.logSumExp` and `Kernels.klDivergence` per row); the tests compare the two. They differ
/// by float32 rounding only (the tile maxima shift the exponentials differently).
struct VocabularyHead {
    /// One model's side: its final hidden states (`rows` × `weight.inFeatures`), its head and
    /// Gemma 2's final logit soft cap.
    struct Side {
        let hidden: UnsafePointer<Float>
        let weight: DenseWeight
        let softCap: Float?
    }

    /// Per row, for each side: the log-sum-exp over the side's full width; per target (rows' targets
    /// in order, flat), each side's logit of the target token; for a pair, per row, the KL over the
    /// shared rows and the after-side's mass on its extra rows (0 when it has none).
    struct Results {
        var logSumExp: [[Double]]
        var targetLogits: [[Float]]
        var kl: [Double]
        var addedMass: [Double]
    }

    /// The tiles. 512 rows × 1024 columns is a 2 MiB float32 tile per side: it stays in cache
    /// between the sgemm and its reduction, and a head row is packed once per 512 hidden rows.
    static let standardTiling = Kernels.GEMMTiling(rows: 512, columns: 1024)

    /// Evaluates one side (`sides.count == 1`) or a pair (`[after, before]`) on `rows` rows;
    /// `targets[r]` are the token ids whose logits row `r` needs (each < every side's width).
    static func evaluate(_ sides: [Side], rows: Int, targets: [[Int32]], tiling: Kernels.GEMMTiling = standardTiling,
                         panelElements: Int = Kernels.panelElements, profile: ComputeProfile? = nil) -> Results {
        precondition(sides.count == 1 || sides.count == 2, "one model or a pair")
        precondition(targets.count == rows && sides.allSatisfy { $0.weight.inFeatures == sides[0].weight.inFeatures })
        let start = profile != nil ? ComputeProfile.now() : 0
        let k = sides[0].weight.inFeatures
        let widths = sides.map(\.weight.outFeatures)
        let shared = widths.min()!, total = widths.max()!
        let pair = sides.count == 2
        ComputeThreads.requireSingleThreadedBLAS()
        let rowParts = Kernels.GEMMTiling.parts(rows, size: tiling.rows)
        let columnParts = Kernels.GEMMTiling.parts(total, size: tiling.columns)
        let tiles = columnParts.count

        // Where each row's targets land in the flat target list, and which tile holds each.
        var targetStart = [Int](repeating: 0, count: rows + 1)
        for r in 0..<rows { targetStart[r + 1] = targetStart[r] + targets[r].count }
        let flatTargets = targets.flatMap { $0 }
        let partials = Partials(rows: rows, tiles: tiles, sides: sides.count, targets: flatTargets.count)

        // Panels of whole column tiles: a half-precision (or stacked) head is widened one panel at a
        // time into scratch, as `Kernels.gemmByPanels` does; a float32 head is used in place.
        let needsScratch = sides.map { $0.weight.float32Pointer == nil }
        let tilesPerPanel = needsScratch.contains(true) ? max(1, min(tiles, panelElements / max(1, k * tiling.columns))) : tiles
        let panelColumns = columnParts.prefix(tilesPerPanel).reduce(0) { $0 + $1.count }
        let panels = sides.indices.map { needsScratch[$0] ? FloatBuffer(count: panelColumns * k) : FloatBuffer(count: 0) }
        let workers = max(1, min(ComputeThreads.count, rowParts.count * tilesPerPanel))
        let tileElements = (rowParts.map(\.count).max() ?? 0) * (columnParts.map(\.count).max() ?? 0)
        let tileBuffers = (0..<workers).map { _ in sides.map { _ in FloatBuffer(count: tileElements) } }
        let reduceSeconds = UnsafeMutablePointer<Double>.allocate(capacity: workers)
        reduceSeconds.initialize(repeating: 0, count: workers)
        defer { reduceSeconds.deallocate() }

        var firstTile = 0
        while firstTile < tiles {
            let panelTiles = firstTile..<min(tiles, firstTile + tilesPerPanel)
            let panelStart = columnParts[panelTiles.lowerBound].lowerBound
            let panelEnd = columnParts[panelTiles.upperBound - 1].upperBound
            // Each side's weight for the panel's columns (those it has): a pointer, its row stride,
            // and the column its first element belongs to.
            var weights: [PanelWeight?] = []
            for (s, side) in sides.enumerated() {
                let end = min(panelEnd, widths[s])
                guard panelStart < end else { weights.append(nil); continue }
                if let whole = side.weight.float32Pointer {
                    weights.append(PanelWeight(pointer: whole, stride: side.weight.layout == .outByIn ? k : widths[s], firstColumn: 0))
                } else {
                    side.weight.widenPanel(panelStart..<end, into: panels[s].pointer)
                    weights.append(PanelWeight(pointer: panels[s].pointer, stride: side.weight.layout == .outByIn ? k : end - panelStart,
                                               firstColumn: panelStart))
                }
            }
            let context = UnsafeSendable((weights, partials, flatTargets, targetStart, reduceSeconds))
            Kernels.forEachTaskWithWorker(rowParts.count * panelTiles.count) { task, worker in
                let (weights, partials, flatTargets, targetStart, reduceSeconds) = context.value
                let rowRange = rowParts[task / panelTiles.count]
                let tile = panelTiles.lowerBound + task % panelTiles.count
                let columns = columnParts[tile]
                // Each side's logits of the tile, rows `columns.count` apart (nil: it has none there).
                func product(_ s: Int) -> UnsafeMutablePointer<Float>? {
                    guard s < sides.count, let w = weights[s] else { return nil }
                    let width = min(columns.upperBound, widths[s]) - columns.lowerBound
                    guard width > 0 else { return nil }
                    let side = sides[s], out = tileBuffers[worker][s].pointer
                    let a = side.hidden + rowRange.lowerBound * k
                    let column = columns.lowerBound - w.firstColumn
                    switch side.weight.layout {
                    case .outByIn:
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rowRange.count), Int32(width), Int32(k), 1, a, Int32(k),
                                    w.pointer + column * w.stride, Int32(w.stride), 0, out, Int32(columns.count))
                    case .inByOut:
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rowRange.count), Int32(width), Int32(k), 1, a, Int32(k),
                                    w.pointer + column, Int32(w.stride), 0, out, Int32(columns.count))
                    }
                    return out
                }
                let tileA = product(0), tileB = pair ? product(1) : nil
                let reduceStart = profile != nil ? ComputeProfile.now() : 0
                let sharedCount = max(0, min(columns.upperBound, shared) - columns.lowerBound)
                for (offset, r) in rowRange.enumerated() {
                    let rowTargets = flatTargets[targetStart[r]..<targetStart[r + 1]]
                    let rowA = tileA.map { $0 + offset * columns.count }
                    let rowB = tileB.map { $0 + offset * columns.count }
                    if let rowA {
                        reduce(rowA, side: 0, softCap: sides[0].softCap, row: r, tile: tile, columns: columns, width: widths[0],
                               sharedCount: sharedCount, partials: partials, targets: rowTargets, firstTarget: targetStart[r])
                    }
                    if let rowB {
                        reduce(rowB, side: 1, softCap: sides[1].softCap, row: r, tile: tile, columns: columns, width: widths[1],
                               sharedCount: sharedCount, partials: partials, targets: rowTargets, firstTarget: targetStart[r])
                    }
                    if let rowA, let rowB, sharedCount > 0 {
                        partials.setCross(r, tile, Kernels.weightedDifference(rowA, rowB, count: sharedCount, shift: partials.sharedMax(r, tile, 0)))
                    }
                }
                if profile != nil { reduceSeconds[worker] += ComputeProfile.now() - reduceStart }
            }
            firstTile = panelTiles.upperBound
        }

        let combineStart = profile != nil ? ComputeProfile.now() : 0
        let results = partials.combine(widths: widths, shared: shared, pair: pair)
        if let profile {
            let end = ComputeProfile.now()
            let reducing = (0..<workers).reduce(0.0) { $0 + reduceSeconds[$1] } / Double(workers) + (end - combineStart)
            profile.softmaxSeconds += reducing
            profile.headSeconds += end - start - reducing
            profile.headFlops += 2 * Double(rows) * Double(k) * Double(widths.reduce(0, +))
        }
        return results
    }

    /// Where a side's weight for a panel lies: `pointer` holds column `firstColumn` first; rows (of
    /// the layout) are `stride` apart.
    private struct PanelWeight {
        let pointer: UnsafePointer<Float>
        let stride: Int
        let firstColumn: Int

        init(pointer: UnsafePointer<Float>, stride: Int, firstColumn: Int) {
            self.pointer = pointer
            self.stride = stride
            self.firstColumn = firstColumn
        }

        init(pointer: UnsafeMutablePointer<Float>, stride: Int, firstColumn: Int) {
            self.init(pointer: UnsafePointer(pointer), stride: stride, firstColumn: firstColumn)
        }
    }

    /// Reduces one side's row of one column tile (`width` is the side's whole output width) into
    /// the row's partials, after the soft cap, and picks out the target logits it holds.
    @inline(__always)
    private static func reduce(_ row: UnsafeMutablePointer<Float>, side s: Int, softCap: Float?, row r: Int, tile: Int,
                               columns: Range<Int>, width total: Int, sharedCount: Int, partials: Partials,
                               targets: ArraySlice<Int32>, firstTarget: Int) {
        let width = min(columns.upperBound, total) - columns.lowerBound
        if let cap = softCap { Kernels.softCap(row, count: width, cap: cap) }
        if sharedCount > 0 {
            let m = Kernels.maximum(row, sharedCount)
            partials.setShared(r, tile, s, max: m, sum: Kernels.sumExp(row, count: sharedCount, shift: m))
        }
        if width > sharedCount {
            let extra = row + sharedCount, count = width - sharedCount
            let m = Kernels.maximum(extra, count)
            partials.setExtra(r, tile, s, max: m, sum: Kernels.sumExp(extra, count: count, shift: m))
        }
        for (i, token) in targets.enumerated() {
            let t = Int(token) - columns.lowerBound
            if t >= 0 && t < width { partials.setTarget(firstTarget + i, side: s, row[t]) }
        }
    }

    // MARK: The plain version

    /// The same results the plain way: whole logits for chunks of `chunkRows` rows (one
    /// `Kernels.gemm` per side), then `Kernels.logSumExp` and `Kernels.klDivergence` per row.
    static func reference(_ sides: [Side], rows: Int, targets: [[Int32]], chunkRows: Int = 512) -> Results {
        precondition(sides.count == 1 || sides.count == 2, "one model or a pair")
        let k = sides[0].weight.inFeatures
        let widths = sides.map(\.weight.outFeatures)
        let shared = widths.min()!
        var results = Results(logSumExp: sides.map { _ in [Double](repeating: 0, count: rows) },
                              targetLogits: sides.map { _ in [] }, kl: [], addedMass: [])
        var start = 0
        while start < rows {
            let count = min(chunkRows, rows - start)
            let logits = sides.enumerated().map { s, side -> FloatBuffer in
                let buffer = FloatBuffer(count: count * widths[s])
                Kernels.gemm(side.hidden + start * k, rows: count, weight: side.weight, output: buffer.pointer, beta: 0)
                if let cap = side.softCap { Kernels.softCap(buffer.pointer, count: buffer.count, cap: cap) }
                return buffer
            }
            for r in 0..<count {
                let rowPointers = sides.indices.map { logits[$0].pointer + r * widths[$0] }
                for s in sides.indices {
                    results.logSumExp[s][start + r] = Kernels.logSumExp(rowPointers[s], count: widths[s])
                    for token in targets[start + r] { results.targetLogits[s].append(rowPointers[s][Int(token)]) }
                }
                if sides.count == 2 {
                    let (lseA, _, divergence) = Kernels.klDivergence(rowPointers[0], rowPointers[1], count: shared)
                    results.kl.append(divergence)
                    results.addedMass.append(widths[0] > shared ? -Foundation.expm1(lseA - results.logSumExp[0][start + r]) : 0)
                }
            }
            start += count
        }
        return results
    }
}

/// Per-row, per-column-tile partials of `VocabularyHead.evaluate`, written by the tile tasks
/// (each slot by exactly one task) and combined in tile order.
private final class Partials: @unchecked Sendable {
    let rows: Int, tiles: Int, sides: Int
    /// `[side][row][tile]`: maximum and Σ exp(x - maximum) over the tile's shared columns, and
    /// over its columns beyond the shared ones.
    private let sharedMaxima: UnsafeMutablePointer<Float>
    private let sharedSums: UnsafeMutablePointer<Double>
    private let extraMaxima: UnsafeMutablePointer<Float>
    private let extraSums: UnsafeMutablePointer<Double>
    /// `[row][tile]`: Σ exp(a - max_a)(a - b) over the tile's shared columns.
    private let cross: UnsafeMutablePointer<Double>
    /// `[side][target]`.
    private let targetLogits: UnsafeMutablePointer<Float>
    private let targets: Int

    init(rows: Int, tiles: Int, sides: Int, targets: Int) {
        self.rows = rows
        self.tiles = tiles
        self.sides = sides
        self.targets = targets
        let slots = max(1, sides * rows * tiles)
        sharedMaxima = .allocate(capacity: slots)
        sharedMaxima.initialize(repeating: -.infinity, count: slots)
        extraMaxima = .allocate(capacity: slots)
        extraMaxima.initialize(repeating: -.infinity, count: slots)
        sharedSums = .allocate(capacity: slots)
        sharedSums.initialize(repeating: 0, count: slots)
        extraSums = .allocate(capacity: slots)
        extraSums.initialize(repeating: 0, count: slots)
        cross = .allocate(capacity: max(1, rows * tiles))
        cross.initialize(repeating: 0, count: max(1, rows * tiles))
        // A target no tile reached (it cannot happen: targets lie inside every side's width) stays
        // NaN, which the scorer reports rather than a number.
        targetLogits = .allocate(capacity: max(1, sides * targets))
        targetLogits.initialize(repeating: .nan, count: max(1, sides * targets))
    }

    deinit {
        sharedMaxima.deallocate(); sharedSums.deallocate(); extraMaxima.deallocate(); extraSums.deallocate()
        cross.deallocate(); targetLogits.deallocate()
    }

    @inline(__always) private func slot(_ r: Int, _ tile: Int, _ side: Int) -> Int { (side * rows + r) * tiles + tile }

    func setShared(_ r: Int, _ tile: Int, _ side: Int, max: Float, sum: Double) {
        sharedMaxima[slot(r, tile, side)] = max
        sharedSums[slot(r, tile, side)] = sum
    }

    func setExtra(_ r: Int, _ tile: Int, _ side: Int, max: Float, sum: Double) {
        extraMaxima[slot(r, tile, side)] = max
        extraSums[slot(r, tile, side)] = sum
    }

    func sharedMax(_ r: Int, _ tile: Int, _ side: Int) -> Float { sharedMaxima[slot(r, tile, side)] }

    func setCross(_ r: Int, _ tile: Int, _ value: Double) { cross[r * tiles + tile] = value }

    func setTarget(_ index: Int, side: Int, _ value: Float) { targetLogits[side * targets + index] = value }

    /// `log Σ_tiles sum · exp(max - M) + M` over the given partial arrays of row `r` (tile order).
    private func combine(_ maxima: [UnsafeMutablePointer<Float>], _ sums: [UnsafeMutablePointer<Double>], _ r: Int, _ side: Int) -> Double {
        var m = -Float.infinity
        var bad = false
        for array in maxima {
            for t in 0..<tiles {
                let value = array[slot(r, t, side)]
                if value.isNaN || value == .infinity { bad = true }
                m = Swift.max(m, value)
            }
        }
        if bad { return .nan }
        guard m.isFinite else { return Double(m) }
        var total = 0.0
        for (array, sumArray) in zip(maxima, sums) {
            for t in 0..<tiles {
                let i = slot(r, t, side)
                guard array[i].isFinite else { continue }
                total += sumArray[i] * Foundation.exp(Double(array[i]) - Double(m))
            }
        }
        return Double(m) + Foundation.log(total)
    }

    func combine(widths: [Int], shared: Int, pair: Bool) -> VocabularyHead.Results {
        var results = VocabularyHead.Results(logSumExp: [], targetLogits: [], kl: [], addedMass: [])
        var sharedLSE: [[Double]] = []
        for s in 0..<sides {
            sharedLSE.append((0..<rows).map { combine([sharedMaxima], [sharedSums], $0, s) })
            results.logSumExp.append(widths[s] > shared ? (0..<rows).map { combine([sharedMaxima, extraMaxima], [sharedSums, extraSums], $0, s) }
                                                        : sharedLSE[s])
            results.targetLogits.append(Array(UnsafeBufferPointer(start: targetLogits + s * targets, count: targets)))
        }
        if pair {
            results.kl = (0..<rows).map { r in
                let lseA = sharedLSE[0][r], lseB = sharedLSE[1][r]
                var weighted = 0.0
                for t in 0..<tiles {
                    let m = sharedMaxima[slot(r, t, 0)]
                    guard m.isFinite else { continue }
                    weighted += cross[r * tiles + t] * Foundation.exp(Double(m) - lseA)
                }
                return weighted - (lseA - lseB)
            }
            results.addedMass = (0..<rows).map { r in
                widths[0] > shared ? -Foundation.expm1(sharedLSE[0][r] - results.logSumExp[0][r]) : 0
            }
        }
        return results
    }
}
