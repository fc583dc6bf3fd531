/// A value (typically a buffer pointer) handed to the threads of `concurrentPerform`, each of which
/// touches only its own elements. The caller guarantees that disjointness; the wrapper only tells
/// the compiler so.
struct UnsafeSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
