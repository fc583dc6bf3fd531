import CBLAS
import Foundation

/// How many threads irm computes on, and why OpenBLAS itself always runs on one.
///
/// OpenBLAS's threaded sgemm, dgemm and LAPACK routines split their work by the thread count, and
/// the split changes the rounding (sgemm: about 1e-6 relative on its outputs between 1 and 2
/// threads), so every result would depend on `--threads`. irm therefore calls OpenBLAS, and LAPACK
/// through it, on one thread only, and makes its parallelism from work it partitions itself, in
/// pieces fixed by the problem's shape and never by the thread count: the tiles of
/// `Kernels.gemm`, the rows of the row-wise kernels, attention's (sequence, head) units, bootstrap
/// replicates. Each piece is computed the same way whichever thread runs it, so the thread count
/// changes how fast a result comes, never its bits.
public enum ComputeThreads {
    /// The threads irm's parallel kernels use: set by `set(_:)`, else OpenBLAS's own default when
    /// irm first used it (`OPENBLAS_NUM_THREADS`, else the cores).
    public static var count: Int {
        setting.lock.lock()
        defer { setting.lock.unlock() }
        return setting.value ?? libraryDefault
    }

    /// Sets `count` (at least 1).
    public static func set(_ count: Int) {
        requireSingleThreadedBLAS()
        setting.lock.lock()
        setting.value = max(1, count)
        setting.lock.unlock()
    }

    /// Puts OpenBLAS on one thread, once per process. Every call into BLAS or LAPACK comes after it.
    @inline(__always)
    static func requireSingleThreadedBLAS() { _ = libraryDefault }

    private static let libraryDefault: Int = {
        let threads = Int(openblas_get_num_threads())
        openblas_set_num_threads(1)
        return max(1, threads)
    }()

    /// Calls `body(task, worker)` once for every `task` in `0..<tasks`, on `min(count, tasks)`
    /// workers (`worker` in `0..<workers`) that each take the next task when they finish one. No
    /// two tasks run on one worker at once, so a task may use its worker's scratch space. Which
    /// worker runs a task is left to chance, so a task's result must not depend on it.
    static func forEachTask(_ tasks: Int, _ body: (_ task: Int, _ worker: Int) -> Void) {
        let workers = min(count, tasks)
        guard workers > 1 else {
            for t in 0..<tasks { body(t, 0) }
            return
        }
        let queue = TaskQueue(count: tasks)
        withoutActuallyEscaping(body) { body in
            let work = UnsafeSendable(body)
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                while let t = queue.next() { work.value(t, worker) }
            }
        }
    }

    /// The tasks `0..<count`, handed out in order to whichever thread asks next.
    private final class TaskQueue: @unchecked Sendable {
        private let lock = NSLock()
        private var taken = 0
        private let count: Int

        init(count: Int) { self.count = count }

        func next() -> Int? {
            lock.lock()
            defer { lock.unlock() }
            guard taken < count else { return nil }
            taken += 1
            return taken - 1
        }
    }

    private final class Setting: @unchecked Sendable {
        let lock = NSLock()
        var value: Int?
    }

    private static let setting = Setting()
}
