import Foundation

/// How a stored weight matrix maps inputs to outputs.
public enum WeightLayout: Sendable {
    /// `nn.Linear`: `[out, in]`, `y = x Wᵀ`.
    case outByIn
    /// GPT-2 `Conv1D`: `[in, out]`, `y = x W`.
    case inByOut
}

/// A dense weight matrix in the layout and at the precision the checkpoint stores it, so that
/// loading copies nothing. An `[out, in]` matrix may be made of several stored pieces
/// (`Slab`s: consecutive output rows of one tensor each), which is how q/k/v and gate/up are
/// fused without copying mapped tensors.
///
/// `Kernels.gemm` uses an aligned float32 matrix of one piece in place (`float32Pointer`) and
/// widens any other panel by panel (`widenPanel`).
public struct DenseWeight: Sendable {
    public let outFeatures: Int
    public let inFeatures: Int
    public let layout: WeightLayout
    let slabs: [Slab]

    /// `rows` consecutive rows of `[out, in]` (or, for `inByOut`, the whole `[in, out]` matrix),
    /// starting at element `firstElement` of `tensor`.
    struct Slab: Sendable {
        let tensor: StoredTensor
        let firstElement: Int
        let rows: Int
    }

    /// A matrix of owned float32 values.
    init(values: [Float], outFeatures: Int, inFeatures: Int, layout: WeightLayout) {
        precondition(values.count == outFeatures * inFeatures, "weight size is checked by the loader")
        let shape = layout == .outByIn ? [outFeatures, inFeatures] : [inFeatures, outFeatures]
        self.init(tensor: StoredTensor(name: "", shape: shape, values: values), outFeatures: outFeatures, inFeatures: inFeatures, layout: layout)
    }

    /// The whole of `tensor` as the matrix.
    init(tensor: StoredTensor, outFeatures: Int, inFeatures: Int, layout: WeightLayout) {
        precondition(tensor.count == outFeatures * inFeatures, "weight size is checked by the loader")
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        self.layout = layout
        slabs = [Slab(tensor: tensor, firstElement: 0, rows: layout == .outByIn ? outFeatures : inFeatures)]
    }

    /// An `[Σ rows, in]` matrix from slabs of `[·, in]` tensors, in output order. Slabs that are all
    /// owned by irm (read, not mapped) are joined into one owned matrix, which sgemm then uses in
    /// place; mapped ones stay where they are.
    init(outByInSlabs slabs: [Slab], inFeatures: Int) {
        let rows = slabs.reduce(0) { $0 + $1.rows }
        precondition(slabs.allSatisfy { $0.firstElement + $0.rows * inFeatures <= $0.tensor.count }, "slabs lie inside their tensors")
        outFeatures = rows
        self.inFeatures = inFeatures
        layout = .outByIn
        if slabs.count > 1, slabs.allSatisfy({ !$0.tensor.isMapped }) {
            var values = [Float](repeating: 0, count: rows * inFeatures)
            values.withUnsafeMutableBufferPointer { out in
                var row = 0
                for slab in slabs {
                    slab.tensor.widen(slab.firstElement..<(slab.firstElement + slab.rows * inFeatures), into: out.baseAddress! + row * inFeatures)
                    row += slab.rows
                }
            }
            self.slabs = [Slab(tensor: StoredTensor(name: "", shape: [rows, inFeatures], values: values), firstElement: 0, rows: rows)]
        } else {
            self.slabs = slabs
        }
    }

    /// Several `[out_i, in]` matrices stacked into one `[Σ out_i, in]`.
    init(stacking parts: [DenseWeight]) {
        precondition(parts.allSatisfy { $0.layout == .outByIn && $0.inFeatures == parts[0].inFeatures }, "the loader checks the parts")
        self.init(outByInSlabs: parts.flatMap(\.slabs), inFeatures: parts[0].inFeatures)
    }

    /// The matrix in place, when it is one aligned float32 tensor.
    var float32Pointer: UnsafePointer<Float>? {
        guard slabs.count == 1, let slab = slabs.first, slab.firstElement == 0, slab.tensor.count == outFeatures * inFeatures else { return nil }
        return slab.tensor.float32Pointer
    }

    /// Whether any part is mapped from a checkpoint file.
    public var isMapped: Bool { slabs.contains { $0.tensor.isMapped } }

    /// The stored precision (of the first part; the loader keeps one tensor's parts alike).
    public var element: StoredTensor.Element { slabs[0].tensor.element }

    /// Writes output features `outputs` as float32: `[outputs.count, in]` rows for `outByIn`,
    /// `[in, outputs.count]` for `inByOut`. Rows are widened by irm's threads (`ComputeThreads`).
    func widenPanel(_ outputs: Range<Int>, into panel: UnsafeMutablePointer<Float>) {
        let k = inFeatures, width = outputs.count
        let target = UnsafeSendable(panel)
        switch layout {
        case .outByIn:
            Kernels.forEachRange(width, minimumPerTask: 16) { range in
                for r in range { widenRow(outputs.lowerBound + r, into: target.value + r * k) }
            }
        case .inByOut:
            let slab = slabs[0], n = outFeatures
            Kernels.forEachRange(k, minimumPerTask: 16) { range in
                for i in range {
                    let first = slab.firstElement + i * n + outputs.lowerBound
                    slab.tensor.widen(first..<(first + width), into: target.value + i * width)
                }
            }
        }
    }

    /// Row `row` of an `[out, in]` matrix (an embedding's row of a token), as float32.
    func widenRow(_ row: Int, into output: UnsafeMutablePointer<Float>) {
        precondition(layout == .outByIn && row >= 0 && row < outFeatures, "rows are checked by the caller")
        var first = row
        for slab in slabs {
            if first < slab.rows {
                let start = slab.firstElement + first * inFeatures
                slab.tensor.widen(start..<(start + inFeatures), into: output)
                return
            }
            first -= slab.rows
        }
    }

    /// The whole matrix as float32 in its layout (a copy; for tests and references).
    public func floatValues() -> [Float] {
        [Float](unsafeUninitializedCapacity: outFeatures * inFeatures) { buffer, initialised in
            if outFeatures * inFeatures > 0 { widenPanel(0..<outFeatures, into: buffer.baseAddress!) }
            initialised = outFeatures * inFeatures
        }
    }
}
