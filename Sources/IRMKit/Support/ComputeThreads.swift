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

    private final class Setting: @unchecked Sendable {
        let lock = NSLock()
        var value: Int?
    }

    private static let setting = Setting()
}
