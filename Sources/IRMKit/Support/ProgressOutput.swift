import Foundation

/// Where long work reports itself: stage lines (`irm: scoring 5000 responses…`) and, for work with a
/// known size, a progress line `label: done/total, N tokens/s, ETA 1m05s` rewritten in place.
///
/// Everything goes to standard error and only when `enabled` (the CLI enables it when stderr is a
/// terminal, or with `--progress`), so CI logs and tests stay silent. The line is rewritten at most
/// five times a second.
public final class ProgressOutput: @unchecked Sendable {
    public let enabled: Bool
    private let lock = NSLock()
    private let write: @Sendable (String) -> Void

    public init(enabled: Bool, write: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
        self.enabled = enabled
        self.write = write
    }

    /// A line saying that a stage starts.
    public func stage(_ description: String) {
        guard enabled else { return }
        emit("irm: \(description)…\n")
    }

    /// A progress line for `total` items; call `update` as they are done and `finish` at the end.
    public func task(_ label: String, total: Int) -> Task {
        Task(output: self, label: label, total: total)
    }

    fileprivate func emit(_ text: String) {
        lock.lock()
        defer { lock.unlock() }
        write(text)
    }

    public final class Task: @unchecked Sendable {
        private let output: ProgressOutput
        private let label: String
        private let total: Int
        private let start = Date()
        private var lastShown = Date.distantPast
        private var shown = false

        fileprivate init(output: ProgressOutput, label: String, total: Int) {
            self.output = output
            self.label = label
            self.total = total
        }

        /// `done` of `total` items, and the tokens processed so far (0 when not counted).
        public func update(done: Int, tokens: Int = 0) {
            guard output.enabled else { return }
            let now = Date()
            guard done >= total || now.timeIntervalSince(lastShown) >= 0.2 else { return }
            lastShown = now
            let elapsed = now.timeIntervalSince(start)
            var line = "\r\(label): \(done)/\(total)"
            if tokens > 0, elapsed > 0 { line += ", \(Int(Double(tokens) / elapsed)) tokens/s" }
            if done > 0, done < total {
                line += ", ETA " + Self.duration(elapsed / Double(done) * Double(total - done))
            } else if done >= total {
                line += ", " + Self.duration(elapsed)
            }
            output.emit(line + "   ")
            shown = true
        }

        /// Ends the line.
        public func finish() {
            guard output.enabled, shown else { return }
            output.emit("\n")
            shown = false
        }

        static func duration(_ seconds: Double) -> String {
            guard seconds.isFinite, seconds >= 0 else { return "?" }
            let s = Int(seconds.rounded())
            return s >= 3600 ? "\(s / 3600)h\(String(format: "%02d", (s % 3600) / 60))m"
                : s >= 60 ? "\(s / 60)m\(String(format: "%02d", s % 60))s" : "\(s)s"
        }
    }
}

extension Optional where Wrapped == ProgressOutput {
    /// Runs `body` with a progress line of `total` items, or with an update that does nothing when
    /// there is no progress output. `body` receives the update: (items done, tokens done).
    func tracked<T>(_ label: String, total: Int, _ body: (@escaping (_ done: Int, _ tokens: Int) -> Void) throws -> T) rethrows -> T {
        guard let progress = self else { return try body { _, _ in } }
        let task = progress.task(label, total: total)
        defer { task.finish() }
        return try body { task.update(done: $0, tokens: $1) }
    }
}
