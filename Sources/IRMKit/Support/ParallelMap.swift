import Dispatch
import Foundation

/// `map` over all cores for the per-sample feature work: contiguous chunks of the input run on
/// `DispatchQueue.concurrentPerform`, each element is written once to its own slot, and the result
/// is in input order and identical to the serial `map`.
enum ParallelMap {
    static func map<T: Sendable, R: Sendable>(_ values: [T], _ transform: @escaping @Sendable (T) -> R) -> [R] {
        let n = values.count
        let chunks = min(n / 16, ProcessInfo.processInfo.activeProcessorCount * 4)
        guard chunks > 1 else { return values.map(transform) }
        return [R](unsafeUninitializedCapacity: n) { buffer, initialized in
            guard let base = buffer.baseAddress else { initialized = 0; return }
            let out = UnsafeSendable(base)
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                for i in (n * c / chunks)..<(n * (c + 1) / chunks) {
                    (out.value + i).initialize(to: transform(values[i]))
                }
            }
            initialized = n
        }
    }
}
