import Foundation

extension AtomicOutput {
    /// What an output path is to become.
    public enum Kind: Sendable, Equatable {
        /// One file (`irm score --out`, `irm convert`): replaces only a regular file.
        case file
        /// A directory of files (`irm analyze --out`, `irm drift --out`): replaces only an empty
        /// directory or an earlier irm output (one with irm's manifest.json), as a whole.
        case directory
    }

    /// Checks `url` as an output of `kind` before any work, and holds it until `release()`: see
    /// `OutputClaim`. Commands call it first, so that a bad output path fails at once instead of
    /// after the analysis. A path this process holds already is claimed again (counted), so the
    /// writers can claim what the command claimed. `label` starts the messages (`--out`).
    public static func claim(_ url: URL, as kind: Kind, label: String? = nil) throws -> OutputClaim {
        try OutputClaims.shared.claim(url, kind: kind, label: label)
    }
}

/// A run's hold on an output path, from the check before the work to the end of the writing:
/// the checks of `AtomicOutput.claim` passed, stale temporaries beside it were removed
/// (`removedTemporaries`), and the lock file `.NAME.irm-lock` beside it is locked (flock), so that
/// another irm run writing the same path refuses, naming this process. `release()` unlocks and
/// removes the lock file, and, when nothing was published, removes the directories the claim
/// created for a directory output's missing parents.
public final class OutputClaim: @unchecked Sendable {
    /// The path that will be written: the requested one, or the file or directory that a symbolic
    /// link there names (the link itself is kept).
    public var target: URL { held.target }
    public var kind: AtomicOutput.Kind { held.kind }
    /// Temporary files of earlier irm runs that were removed from the target's directory.
    public let removedTemporaries: [String]

    fileprivate let held: HeldOutput
    private let lock = NSLock()
    private var released = false

    fileprivate init(held: HeldOutput, removedTemporaries: [String]) {
        self.held = held
        self.removedTemporaries = removedTemporaries
    }

    deinit { release() }

    /// Ends this claim; the path is unlocked when the last claim of this process on it ends.
    public func release() {
        let first = lock.withLock { () -> Bool in
            defer { released = true }
            return !released
        }
        if first { OutputClaims.shared.release(held) }
    }

    /// Records that the output was published, so that `release()` keeps the parents it created.
    func markPublished() { OutputClaims.shared.markPublished(held) }

    /// Checks the target again right before it is replaced: it must still be what the claim found
    /// acceptable (nothing put a device or a directory there meanwhile).
    func recheck() throws {
        _ = try OutputClaims.resolve(URL(fileURLWithPath: held.target.path), kind: held.kind, label: held.label)
    }
}

/// One output path this process holds, shared by the claims on it.
final class HeldOutput: @unchecked Sendable {
    let target: URL
    let kind: AtomicOutput.Kind
    let label: String?
    let outputLock: OutputLock?
    let createdDirectories: [URL]
    var count = 1
    var published = false

    init(target: URL, kind: AtomicOutput.Kind, label: String?, outputLock: OutputLock?, createdDirectories: [URL]) {
        self.target = target
        self.kind = kind
        self.label = label
        self.outputLock = outputLock
        self.createdDirectories = createdDirectories
    }
}

/// The output paths this process holds.
final class OutputClaims: @unchecked Sendable {
    static let shared = OutputClaims()

    private let lock = NSLock()
    private var held: [String: HeldOutput] = [:]

    func claim(_ url: URL, kind: AtomicOutput.Kind, label: String?) throws -> OutputClaim {
        let target = try Self.resolve(url, kind: kind, label: label)
        return try lock.withLock {
            if let existing = held[target.path] {
                guard existing.kind == kind else {
                    throw Self.failure(target.path, label, "this run already writes it as a \(existing.kind == .file ? "file" : "directory")")
                }
                existing.count += 1
                return OutputClaim(held: existing, removedTemporaries: [])
            }
            let parent = target.deletingLastPathComponent()
            let created = kind == .directory ? try Self.makeParents(parent, target: target, label: label) : []
            do {
                try Self.checkParent(parent, target: target, label: label)
                let removed = AtomicOutput.sweepStaleTemporaries(in: parent)
                let outputLock = try OutputLock.acquire(for: target, fail: { Self.failure(target.path, label, $0) })
                let output = HeldOutput(target: target, kind: kind, label: label, outputLock: outputLock, createdDirectories: created)
                held[target.path] = output
                return OutputClaim(held: output, removedTemporaries: removed)
            } catch {
                Self.removeEmpty(created)
                throw error
            }
        }
    }

    func release(_ output: HeldOutput) {
        lock.withLock {
            output.count -= 1
            guard output.count == 0 else { return }
            held[output.target.path] = nil
            output.outputLock?.release()
            if !output.published { Self.removeEmpty(output.createdDirectories) }
        }
    }

    func markPublished(_ output: HeldOutput) {
        lock.withLock { output.published = true }
    }

    static func failure(_ path: String, _ label: String?, _ what: String) -> IRMError {
        IRMError(label.map { "\($0) \(path): \(what)" } ?? "cannot write \(path): \(what)")
    }

    /// The path to write for `url`, after checking what is there now. Follows a symbolic link to
    /// what it names; refuses whatever the output may not replace.
    static func resolve(_ url: URL, kind: AtomicOutput.Kind, label: String?) throws -> URL {
        var target = url.standardizedFileURL
        func fail(_ what: String) -> IRMError { failure(target.path, label, what) }
        var info = stat()
        guard lstat(target.path, &info) == 0 else {
            let reason = errno
            if reason == ENOENT { return target }
            if reason == ENOTDIR { throw fail("a part of the path is not a directory") }
            throw fail(String(cString: strerror(reason)))
        }
        if info.st_mode & S_IFMT == S_IFLNK {
            guard stat(target.path, &info) == 0, let real = realpath(target.path, nil) else {
                throw fail("is a symbolic link to a path that does not exist; remove the link or point it at an existing file")
            }
            target = URL(fileURLWithPath: String(cString: real))
            free(real)
        }
        let found = InputFile.Kind(mode: info.st_mode)
        switch (kind, found) {
        case (.file, .regular), (.directory, .directory):
            break
        case (.file, .directory):
            throw fail("it is a directory; expected a file path")
        case (.directory, .regular):
            throw fail("exists and is not a directory; expected a directory for the report files")
        default:
            throw fail("is \(found.phrase); irm replaces only \(kind == .file ? "a regular file" : "a directory") (or writes a path that does not exist yet)")
        }
        if kind == .directory, !isReplaceableDirectory(target) {
            throw fail("is a directory with files in it but no irm manifest.json; irm replaces an output directory as a whole, so it replaces only an empty one or an earlier irm output; choose a new path, or empty or remove this one")
        }
        return target
    }

    /// Empty, or an earlier irm output: its manifest.json says `"tool": "irm"`.
    static func isReplaceableDirectory(_ url: URL) -> Bool {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: url.path) else { return false }
        if names.isEmpty { return true }
        guard let data = try? InputFile.contents(url.appendingPathComponent("manifest.json").path, what: "an irm manifest"),
              let manifest = try? JSONValue.parse(data, source: "manifest.json") else { return false }
        return manifest["tool"]?.stringValue == "irm"
    }

    /// The directory must exist and take new files.
    static func checkParent(_ parent: URL, target: URL, label: String?) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: parent.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw failure(target.path, label, "the directory \(parent.path) does not exist")
        }
        guard FileManager.default.isWritableFile(atPath: parent.path) else {
            throw failure(target.path, label, "the directory \(parent.path) is not writable")
        }
    }

    /// Creates the missing directories up to `parent`; returns them, outermost first.
    static func makeParents(_ parent: URL, target: URL, label: String?) throws -> [URL] {
        var missing: [URL] = []
        var current = parent
        var isDirectory: ObjCBool = false
        while !FileManager.default.fileExists(atPath: current.path, isDirectory: &isDirectory) {
            missing.append(current)
            let up = current.deletingLastPathComponent()
            if up.path == current.path { break }
            current = up
        }
        if FileManager.default.fileExists(atPath: current.path), !isDirectory.boolValue {
            throw failure(target.path, label, "cannot create the directory: \(current.path) is a file")
        }
        var created: [URL] = []
        for directory in missing.reversed() {
            guard mkdir(directory.path, 0o777) == 0 || errno == EEXIST else {
                let reason = String(cString: strerror(errno))
                removeEmpty(created)
                throw failure(target.path, label, "cannot create the directory \(directory.path): \(reason)")
            }
            created.append(directory)
        }
        return created
    }

    /// Removes `directories` (outermost first), innermost first, as far as they are empty.
    static func removeEmpty(_ directories: [URL]) {
        for directory in directories.reversed() { _ = rmdir(directory.path) }
    }
}

/// The advisory lock on an output: flock on `.NAME.irm-lock` beside it, taken without waiting, so
/// that a second run refuses at once and says which process holds it. The file holds the holder's
/// pid and host, and is removed (while still locked) when the holder ends; one left by SIGKILL is
/// not locked, and the next run takes it over.
final class OutputLock: @unchecked Sendable {
    let path: String
    private let descriptor: Int32
    private let registration: SignalCleanup.Registration?

    private init(path: String, descriptor: Int32, registration: SignalCleanup.Registration?) {
        self.path = path
        self.descriptor = descriptor
        self.registration = registration
    }

    static func lockURL(for target: URL) -> URL {
        target.deletingLastPathComponent().appendingPathComponent(".\(AtomicOutput.shortened(target.lastPathComponent, maximumBytes: 200)).irm-lock")
    }

    /// The lock, or nil where the file system has no locks (then the run goes on without one).
    static func acquire(for target: URL, fail: (String) -> IRMError) throws -> OutputLock? {
        let path = lockURL(for: target).path
        for _ in 0..<8 {
            let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
            guard descriptor >= 0 else {
                throw fail("cannot create a file in \(target.deletingLastPathComponent().path) (the lock file \(path): \(String(cString: strerror(errno)))); choose an output in a directory that takes new files")
            }
            if flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
                let reason = errno
                if reason == EWOULDBLOCK {
                    let holder = holderDescription(descriptor)
                    _ = close(descriptor)
                    throw fail("another irm run (\(holder)) is writing this output now; wait for it to finish or choose another output (its lock file: \(path))")
                }
                _ = close(descriptor)
                if reason == ENOLCK || reason == EOPNOTSUPP || reason == ENOSYS || reason == EINVAL {
                    _ = unlink(path)
                    return nil
                }
                throw fail("cannot lock \(path): \(String(cString: strerror(reason)))")
            }
            // A holder that just finished removed the file we opened; lock the new one then.
            var opened = stat(), current = stat()
            guard fstat(descriptor, &opened) == 0, lstat(path, &current) == 0,
                  opened.st_dev == current.st_dev, opened.st_ino == current.st_ino else {
                _ = close(descriptor)
                continue
            }
            let record = Array("pid \(ProcessIdentity.pid) on \(ProcessIdentity.hostName)\n".utf8)
            _ = ftruncate(descriptor, 0)
            _ = record.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
            return OutputLock(path: path, descriptor: descriptor, registration: SignalCleanup.register(URL(fileURLWithPath: path)))
        }
        throw fail("cannot lock \(path): the lock file keeps being replaced")
    }

    /// What the lock file says about its holder ("pid 1234 on host"), or that it says nothing.
    private static func holderDescription(_ descriptor: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        let text = count > 0 ? String(decoding: buffer.prefix(count), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : ""
        return text.isEmpty ? "its process id not yet recorded" : text
    }

    /// Removes the lock file, then unlocks it.
    func release() {
        SignalCleanup.unregister(registration)
        _ = unlink(path)
        _ = close(descriptor)
    }
}

extension OutputClaim {
    /// Throws when one of `paths` (an input, the score store) lies inside this directory output:
    /// publishing replaces the directory as a whole, which would delete it. `label` names each
    /// path's option in the message.
    public func checkNothingInside(_ paths: [(label: String, path: String)]) throws {
        guard kind == .directory else { return }
        let root = target.path.hasSuffix("/") ? target.path : target.path + "/"
        for (label, path) in paths where path != "-" {
            let resolved = Self.resolvedPath(URL(fileURLWithPath: path).standardizedFileURL)
            if resolved == target.path || resolved.hasPrefix(root) {
                throw IRMError("\(label) \(path) lies inside the output directory \(target.path), which irm replaces as a whole at the end of the run; move it out of there, or choose another output directory")
            }
        }
    }

    /// `url` with symbolic links resolved as far as the path exists.
    private static func resolvedPath(_ url: URL) -> String {
        var existing = url
        var rest: [String] = []
        while existing.path != "/", access(existing.path, F_OK) != 0 {
            rest.insert(existing.lastPathComponent, at: 0)
            existing = existing.deletingLastPathComponent()
        }
        guard let real = realpath(existing.path, nil) else { return url.path }
        defer { free(real) }
        return rest.reduce(URL(fileURLWithPath: String(cString: real))) { $0.appendingPathComponent($1) }.path
    }
}
