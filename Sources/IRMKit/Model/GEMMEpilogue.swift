import Foundation

/// What a projection does to its output right after the product: add its bias to every row, then
/// apply an activation. `Kernels.gemm` runs it on each output tile as soon as that tile's sgemm
/// returns, while the tile is still in cache and on the thread that computed it, instead of as
/// separate passes over the whole output.
///
/// Each output element's result depends on its own value, its column's bias and nothing else: the
/// activations run in lanes of eight, and a tile row's last few elements go through the same lanes
/// (padded), so an element gets the same bits wherever a tile's edge falls. The plain version is
/// `ReferenceKernels.linear` followed by the activation's Double reference (KernelTests).
struct GEMMEpilogue: Sendable {
    enum Activation: Sendable, CaseIterable {
        /// GPT-2's `gelu_new`: `0.5 x (1 + tanh(√(2/π)(x + 0.044715 x³)))` (`Kernels.geluTanh`).
        case geluTanh
        /// The exact gelu of GPT-NeoX: `0.5 x (1 + erf(x / √2))`.
        case geluErf
        /// `max(x, 0)` (OPT).
        case relu
    }

    /// Added to row `r`'s output `j` as `output[r][j] += bias[j]`, after the product (and after
    /// the residual the product accumulated onto, when it does).
    var bias: [Float]?
    var activation: Activation?

    static let none = GEMMEpilogue(bias: nil, activation: nil)

    var isEmpty: Bool { bias == nil && activation == nil }

    /// Applies the epilogue to `rows` rows of `columns` outputs starting at `tile`, rows `stride`
    /// floats apart, which are output features `firstColumn ..< firstColumn + columns`.
    func apply(_ tile: UnsafeMutablePointer<Float>, rows: Int, columns: Int, stride: Int, firstColumn: Int) {
        guard !isEmpty, rows > 0, columns > 0 else { return }
        let tile = Tile(start: tile, rows: rows, columns: columns, stride: stride)
        guard let bias else { return tile.transform(bias: nil, activation: activation) }
        bias.withUnsafeBufferPointer { tile.transform(bias: $0.baseAddress! + firstColumn, activation: activation) }
    }

    private struct Tile {
        let start: UnsafeMutablePointer<Float>
        let rows: Int
        let columns: Int
        let stride: Int

        func transform(bias: UnsafePointer<Float>?, activation: Activation?) {
            switch activation {
            case nil: each(bias) { $0 }
            case .geluTanh: each(bias) { Kernels.geluTanh($0) }
            case .relu: each(bias) { $0.replacing(with: 0, where: $0 .< 0) }
            case .geluErf:
                let r = Float(1 / 2.0.squareRoot())
                each(bias) { v in
                    var out = SIMD8<Float>()
                    for i in 0..<8 { out[i] = 0.5 * v[i] * (1 + Foundation.erf(v[i] * r)) }
                    return out
                }
            }
        }

        /// `y = f(y + b)` for every element, eight lanes at a time; a row's last `columns % 8`
        /// elements go through `f` padded with zeros.
        @inline(__always)
        private func each(_ bias: UnsafePointer<Float>?, _ f: (SIMD8<Float>) -> SIMD8<Float>) {
            for r in 0..<rows {
                let y = start + r * stride
                var j = 0
                if let bias {
                    while j + 8 <= columns { Kernels.store8(f(Kernels.load8(y + j) + Kernels.load8(bias + j)), y + j); j += 8 }
                } else {
                    while j + 8 <= columns { Kernels.store8(f(Kernels.load8(y + j)), y + j); j += 8 }
                }
                let left = columns - j
                guard left > 0 else { continue }
                var v = SIMD8<Float>()
                for i in 0..<left { v[i] = bias.map { y[j + i] + $0[j + i] } ?? y[j + i] }
                let result = f(v)
                for i in 0..<left { y[j + i] = result[i] }
            }
        }
    }
}
