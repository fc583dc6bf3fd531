import Foundation

/// `map` over irm's threads (`ComputeThreads.count`, which `--threads` sets): one helper for every
/// data-parallel loop outside the forward-pass kernels. Each index is evaluated once, by one
/// thread, into its own slot, so the result is in input order and identical to the serial `map`
/// whatever the thread count.
enum ParallelMap {
    /// `values.map(transform)` in contiguous chunks (about 16 elements at least per chunk), for
    /// the per-sample feature work.
    static func map<T: Sendable, R: Sendable>(_ values: [T], _ transform: @escaping @Sendable (T) -> R) -> [R] {
        let n = values.count
        let chunks = min(n / 16, ComputeThreads.count * 4)
        guard chunks > 1 else { return values.map(transform) }
        return [R](unsafeUninitializedCapacity: n) { buffer, initialized in
            guard let base = buffer.baseAddress else { initialized = 0; return }
            let out = UnsafeSendable(base)
            ComputeThreads.forEachTask(chunks) { c, _ in
                for i in (n * c / chunks)..<(n * (c + 1) / chunks) {
                    (out.value + i).initialize(to: transform(values[i]))
                }
            }
            initialized = n
        }
    }

    /// `(0..<count).map(transform)` with one task per index, for work that is large per index
    /// (a bootstrap replicate, a row of logits). The first error, in index order, is rethrown.
    static func map<R>(count: Int, _ transform: (Int) throws -> R) throws -> [R] {
        guard count > 0 else { return [] }
        var results = [Result<R, any Error>?](repeating: nil, count: count)
        results.withUnsafeMutableBufferPointer { buffer in
            let out = UnsafeSendable(buffer.baseAddress!)
            withoutActuallyEscaping(transform) { transform in
                let evaluate = UnsafeSendable(transform)
                ComputeThreads.forEachTask(count) { i, _ in
                    out.value[i] = Result { try evaluate.value(i) }
                }
            }
        }
        return try results.map { try $0?.get() ?? { throw IRMError("parallel map: index was not evaluated") }() }
    }

    /// `map(count:)` for a transform that cannot fail.
    static func map<R>(count: Int, _ transform: (Int) -> R) -> [R] {
        // The throwing variant rethrows only what the transform throws.
        (try? map(count: count) { (i: Int) throws -> R in transform(i) }) ?? []
    }
}
