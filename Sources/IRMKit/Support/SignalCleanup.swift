import CAtomicOutput
import Foundation

/// Removes the temporary files of unfinished outputs when irm is interrupted: SIGINT (Ctrl-C),
/// SIGTERM (kill, a scheduler's time limit) and SIGHUP (a closed terminal). Each temporary path is
/// registered before it is created and unregistered once it is renamed into place or removed; on
/// one of those signals a handler unlinks every registered path, then lets the signal end the
/// process as it would have. SIGKILL cannot be caught: what it leaves is removed by the next run
/// into the same directory (`AtomicOutput.sweepStaleTemporaries`, and the score store's own tidy).
///
/// The handler is C (Sources/CAtomicOutput): it may only call async-signal-safe functions, so the
/// registry is a fixed array of path strings copied when they are registered. The handlers are
/// installed on the first registration; a signal that is ignored then (SIGHUP under nohup) stays
/// ignored.
enum SignalCleanup {
    /// A registered path; nil when the registry was full (the path is then left to the sweep).
    struct Registration: Sendable {
        fileprivate let slot: Int
    }

    private static let installed: Bool = {
        irm_cleanup_install()
        return true
    }()

    /// Registers `url` for removal on SIGINT, SIGTERM and SIGHUP: unlink, or rmdir for a directory
    /// (which its registered files are removed before).
    static func register(_ url: URL, isDirectory: Bool = false) -> Registration? {
        _ = installed
        let slot = url.path.withCString { irm_cleanup_register($0, isDirectory ? 1 : 0) }
        return slot >= 0 ? Registration(slot: slot) : nil
    }

    static func unregister(_ registration: Registration?) {
        if let registration { irm_cleanup_unregister(registration.slot) }
    }

    /// How many paths are registered now (for tests).
    static var registeredCount: Int { irm_cleanup_registered_count() }

    /// Runs `body` with the handled signals held back: one that arrives meanwhile takes effect,
    /// removing the registered paths, when `body` returns. For steps that must not be cut in two,
    /// such as moving an old output aside and the new one into its place.
    static func withSignalsDeferred<R>(_ body: () throws -> R) rethrows -> R {
        irm_cleanup_defer(1)
        defer { irm_cleanup_defer(0) }
        return try body()
    }
}
