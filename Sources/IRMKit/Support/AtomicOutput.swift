import CAtomicOutput
import Foundation

/// Writes outputs so that nobody ever sees a half-written one, and a failing or interrupted run
/// never damages an existing one. docs/outputs.md describes the guarantees for users.
///
/// - Before the work, `claim` checks the output path (its directory exists and takes new files;
///   the path is absent, a regular file for a file output, an empty directory or an earlier irm
///   output for a directory output; anything else, such as a device, a FIFO or /proc, is refused),
///   removes stale temporary files of earlier irm runs beside it, and takes a lock, so that a
///   second run writing the same path refuses at once, naming the first.
/// - A file output is written to a temporary file beside it, flushed to disk (fsync), and renamed
///   over the destination; the directory is flushed after the rename.
/// - A directory output (`irm analyze`, `irm drift`) is built whole as a temporary directory beside
///   the destination, every file flushed, then swapped with the old directory in one step
///   (`renameat2(RENAME_EXCHANGE)`; where the file system cannot, the old one is moved aside and
///   the new one into place), and the old one removed. No mix of old and new files is ever
///   visible, and nothing of an earlier run remains.
/// - Temporary names are `.irm-tmp-<host>-<pid>-<random>-<name>`; SIGINT, SIGTERM and SIGHUP
///   remove them (`SignalCleanup`), and the next run removes what SIGKILL left.
public enum AtomicOutput {
    /// The prefix of every temporary name: irm removes only names that start with it.
    static let temporaryPrefix = ".irm-tmp-"
    /// A temporary file whose writer cannot be checked (another host) is stale after this long.
    public static let staleTemporaryAge: TimeInterval = 24 * 3600

    /// Calls `body` with a temporary path beside `url`, then publishes what it wrote onto `url`
    /// (fsync, rename, fsync of the directory). The temporary file is removed on failure.
    public static func write<R>(to url: URL, _ body: (URL) throws -> R) throws -> R {
        let pending = try PendingFile(destination: url)
        do {
            let result = try body(pending.temporary)
            try pending.publish()
            return result
        } catch {
            pending.abandon()
            throw error
        }
    }

    /// Writes `data` to `url` atomically.
    public static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { temporary in
            try writeNewFile(data, at: temporary, naming: url)
        }
    }

    /// A file output being written: `temporary` until `publish()` renames it onto `destination`,
    /// or `abandon()` removes it. For writers that fill the file over time (`CheckpointWriter`).
    public final class PendingFile {
        /// Where the file will appear: the requested path, or the file a symbolic link there names.
        public let destination: URL
        public let temporary: URL
        private let claim: OutputClaim
        private var registration: SignalCleanup.Registration?
        private var finished = false

        /// Claims `destination` (checks it, locks it) unless this process holds it already.
        public init(destination url: URL) throws {
            claim = try AtomicOutput.claim(url, as: .file)
            destination = claim.target
            temporary = AtomicOutput.temporaryURL(beside: destination)
            registration = SignalCleanup.register(temporary)
        }

        deinit { abandon() }

        /// Flushes the temporary file to disk and renames it onto the destination.
        public func publish() throws {
            guard !finished else { throw IRMError("\(destination.path): the output is already finished") }
            do {
                try AtomicOutput.synchronise(file: temporary.path, publishing: destination.path)
                AtomicOutput.holdBeforePublishingIfTesting(temporary)
                try claim.recheck()
                guard rename(temporary.path, destination.path) == 0 else {
                    throw IRMError("cannot move the finished output into place at \(destination.path): \(String(cString: strerror(errno)))")
                }
            } catch {
                abandon()
                throw error
            }
            AtomicOutput.holdAfterPublishingIfTesting(destination)
            AtomicOutput.synchronise(directory: destination.deletingLastPathComponent().path)
            claim.markPublished()
            end()
        }

        /// Removes the temporary file; the destination is untouched.
        public func abandon() {
            guard !finished else { return }
            _ = unlink(temporary.path)
            end()
        }

        private func end() {
            finished = true
            SignalCleanup.unregister(registration)
            registration = nil
            claim.release()
        }
    }

    /// Writes the directory output `url`: every file of `files` (paths relative to it, such as
    /// `plots/lmg.svg`) and every folder of `directories`, built as a temporary directory beside
    /// it and then put in its place whole (`publishDirectory`). The new directory holds exactly
    /// these files: nothing of an earlier output remains. On failure nothing changes at `url`.
    public static func writeDirectory(_ files: [(path: String, data: Data)], to url: URL, directories: [String] = []) throws {
        let claim = try claim(url, as: .directory)
        defer { claim.release() }
        let target = claim.target
        for path in files.map(\.path) + directories {
            let parts = path.split(separator: "/", omittingEmptySubsequences: false)
            guard !path.hasPrefix("/"), !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
                throw IRMError("cannot write \(target.path): the output file name \"\(path)\" is not a plain relative path")
            }
        }
        let temporary = temporaryURL(beside: target)
        var registrations: [SignalCleanup.Registration?] = []
        defer { registrations.forEach(SignalCleanup.unregister) }
        func makeDirectory(_ directory: URL) throws {
            registrations.append(SignalCleanup.register(directory, isDirectory: true))
            guard mkdir(directory.path, 0o777) == 0 else {
                throw IRMError("cannot create the output directory \(target.path) (building it at \(directory.path)): \(String(cString: strerror(errno)))")
            }
        }
        do {
            try makeDirectory(temporary)
            var folders = Set(directories)
            for path in files.map(\.path) {
                var parts = path.split(separator: "/").dropLast()
                while !parts.isEmpty {
                    folders.insert(parts.joined(separator: "/"))
                    parts = parts.dropLast()
                }
            }
            let sortedFolders = folders.sorted { $0.count != $1.count ? $0.count < $1.count : $0 < $1 }
            for folder in sortedFolders { try makeDirectory(temporary.appendingPathComponent(folder, isDirectory: true)) }
            for file in files {
                let url = temporary.appendingPathComponent(file.path)
                registrations.append(SignalCleanup.register(url))
                try writeNewFile(file.data, at: url, naming: target.appendingPathComponent(file.path))
            }
            for folder in sortedFolders.reversed() { synchronise(directory: temporary.appendingPathComponent(folder).path) }
            synchronise(directory: temporary.path)
            holdBeforePublishingIfTesting(temporary)
            try claim.recheck()
            try publishDirectory(temporary, at: target)
        } catch {
            removeTree(temporary)
            throw error
        }
        claim.markPublished()
    }

    /// Puts the finished directory `temporary` in the place of `target`. When `target` exists, the
    /// two are exchanged in one step and the old one, now at the temporary name, is removed; where
    /// `exchange` is unsupported (EINVAL, ENOSYS, ENOTSUP: some network and FUSE file systems), the
    /// old one is renamed aside and the new one into place, with SIGINT, SIGTERM and SIGHUP held
    /// back in between (only SIGKILL or a crash there leaves the old output at a temporary name
    /// and none at `target`). When `target` is absent, a rename.
    static func publishDirectory(_ temporary: URL, at target: URL,
                                 exchange: (String, String) -> Int32 = { irm_rename_exchange($0, $1) }) throws {
        let parent = target.deletingLastPathComponent().path
        func failure(_ reason: Int32) -> IRMError {
            IRMError("cannot move the finished output into place at \(target.path): \(String(cString: strerror(reason)))")
        }
        var info = stat()
        guard lstat(target.path, &info) == 0 else {
            guard rename(temporary.path, target.path) == 0 else { throw failure(errno) }
            holdAfterPublishingIfTesting(target)
            synchronise(directory: parent)
            return
        }
        if exchange(temporary.path, target.path) == 0 {
            holdAfterPublishingIfTesting(temporary)
            synchronise(directory: parent)
            removeTree(temporary)
            return
        }
        let reason = errno
        guard reason == EINVAL || reason == ENOSYS || reason == ENOTSUP || reason == EOPNOTSUPP else { throw failure(reason) }
        let aside = temporaryURL(beside: target)
        try SignalCleanup.withSignalsDeferred {
            guard rename(target.path, aside.path) == 0 else { throw failure(errno) }
            guard rename(temporary.path, target.path) == 0 else {
                let reason = errno
                _ = rename(aside.path, target.path)
                throw failure(reason)
            }
        }
        holdAfterPublishingIfTesting(aside)
        synchronise(directory: parent)
        removeTree(aside)
    }

    /// `.irm-tmp-<host>-<pid>-<random>-<name>` in `url`'s directory, so that the final rename stays
    /// on one file system. The host has no `-` (it becomes `_`), so the name parses back.
    static func temporaryURL(beside url: URL) -> URL {
        let random = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let padded = String(repeating: "0", count: 8 - random.count) + random
        let name = "\(temporaryPrefix)\(temporaryHost)-\(ProcessIdentity.pid)-\(padded)-\(shortened(url.lastPathComponent, maximumBytes: 150))"
        return url.deletingLastPathComponent().appendingPathComponent(name)
    }

    static let temporaryHost: String = String(ProcessIdentity.hostName.replacingOccurrences(of: "-", with: "_").prefix(64))

    /// Who made a temporary file, parsed from its name.
    struct TemporaryName: Equatable {
        let host: String
        let pid: Int32
        let name: String
    }

    /// Parses `.irm-tmp-<host>-<pid>-<random>-<name>`; nil for any other name.
    static func parseTemporary(_ fileName: String) -> TemporaryName? {
        guard fileName.hasPrefix(temporaryPrefix) else { return nil }
        let parts = fileName.dropFirst(temporaryPrefix.count).split(separator: "-", maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 4, !parts[0].isEmpty, let pid = Int32(parts[1]), pid > 0, parts[2].count == 8,
              parts[2].allSatisfy(\.isHexDigit), !parts[3].isEmpty else { return nil }
        return TemporaryName(host: String(parts[0]), pid: pid, name: String(parts[3]))
    }

    /// Removes the temporary files and directories of earlier irm runs from `directory`: those of
    /// irm's own naming whose process, on this host, is gone, or (made on another host, whose
    /// processes cannot be checked) older than `maximumAge`. Returns the paths removed.
    @discardableResult
    public static func sweepStaleTemporaries(in directory: URL, maximumAge: TimeInterval = staleTemporaryAge, now: Date = Date()) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { return [] }
        var removed: [String] = []
        for fileName in names.sorted() {
            guard let parsed = parseTemporary(fileName) else { continue }
            let url = directory.appendingPathComponent(fileName)
            var stale = parsed.host == temporaryHost && !ProcessIdentity.isAlive(parsed.pid)
            if !stale {
                var info = stat()
                guard lstat(url.path, &info) == 0 else { continue }
                stale = now.timeIntervalSince1970 - Double(modificationSeconds(info)) > maximumAge
            }
            if stale, (try? FileManager.default.removeItem(at: url)) != nil { removed.append(url.path) }
        }
        return removed
    }

    /// `name` when it has at most `maximumBytes` UTF-8 bytes; else a prefix of it, `~` and 16 hex
    /// digits of its SHA-256, within the limit (file names end at 255 bytes).
    static func shortened(_ name: String, maximumBytes: Int) -> String {
        guard name.utf8.count > maximumBytes else { return name }
        var prefix = ""
        for character in name {
            guard prefix.utf8.count + String(character).utf8.count <= maximumBytes - 17 else { break }
            prefix.append(character)
        }
        return prefix + "~" + SHA256.hex(Array(name.utf8)).prefix(16)
    }

    /// Creates `url` (it must not exist) holding `data`, flushed to disk. Messages name `naming`,
    /// the output the user asked for.
    static func writeNewFile(_ data: Data, at url: URL, naming: URL) throws {
        let descriptor = open(url.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
        guard descriptor >= 0 else {
            throw IRMError("cannot write \(naming.path): \(String(cString: strerror(errno)))")
        }
        defer { _ = close(descriptor) }
        try data.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < buffer.count, let base = buffer.baseAddress {
                let written = systemWrite(descriptor, base + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw IRMError("cannot write \(naming.path): \(String(cString: strerror(errno)))")
                }
                offset += written
            }
        }
        if fsync(descriptor) != 0, errno != EINVAL {
            throw IRMError("cannot flush \(naming.path) to disk: \(String(cString: strerror(errno)))")
        }
    }

    /// fsync of a finished file, so that a crash of the machine after the rename cannot leave a
    /// published name over unwritten data. File systems that cannot sync (EINVAL) are accepted.
    static func synchronise(file path: String, publishing destination: String) throws {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw IRMError("cannot reopen \(path) to flush it before publishing \(destination): \(String(cString: strerror(errno)))")
        }
        defer { _ = close(descriptor) }
        if fsync(descriptor) != 0, errno != EINVAL {
            throw IRMError("cannot flush \(path) to disk before publishing \(destination): \(String(cString: strerror(errno)))")
        }
    }

    /// fsync of a directory, so that a rename in it survives a crash of the machine. Best effort:
    /// some file systems refuse to sync directories, and the rename itself is atomic either way.
    static func synchronise(directory path: String) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        _ = fsync(descriptor)
        _ = close(descriptor)
    }

    /// Removes `url` and everything below it, as far as it can; what stays is swept later.
    static func removeTree(_ url: URL) {
        try? FileManager.default.removeItem(at: url)
    }

    /// Tests only: with IRM_TEST_HOLD_BEFORE_PUBLISH=SECONDS, a finished temporary output waits that
    /// long before it is published, after saying so on stderr, so that a test can interrupt a run at
    /// that point (signals, SIGKILL, a second run) without racing it.
    static func holdBeforePublishingIfTesting(_ temporary: URL) {
        testHold(seconds: testHoldBeforeSeconds, line: "irm: test hold: \(temporary.path)")
    }

    /// Tests only: with IRM_TEST_HOLD_AFTER_PUBLISH=SECONDS, an output just put in place waits that
    /// long before the run tidies up after it, after saying so on stderr with `leftover`: the old
    /// directory, now at the temporary name it was exchanged to (or moved aside to), still to be
    /// removed; for a new directory or a file output, the output itself. The lock is still held.
    /// So that a test can kill the run between publishing and tidying without racing it.
    static func holdAfterPublishingIfTesting(_ leftover: URL) {
        testHold(seconds: testHoldAfterSeconds, line: "irm: test hold after publish: \(leftover.path)")
    }

    private static func testHold(seconds: Double?, line: String) {
        guard let seconds, seconds > 0 else { return }
        FileHandle.standardError.write(Data((line + "\n").utf8))
        Thread.sleep(forTimeInterval: seconds)
    }

    private static let testHoldBeforeSeconds: Double? = ProcessInfo.processInfo.environment["IRM_TEST_HOLD_BEFORE_PUBLISH"].flatMap(Double.init)
    private static let testHoldAfterSeconds: Double? = ProcessInfo.processInfo.environment["IRM_TEST_HOLD_AFTER_PUBLISH"].flatMap(Double.init)
}

/// write(2); a file-scope name, because `AtomicOutput.write` hides it inside the type.
private func systemWrite(_ descriptor: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    write(descriptor, bytes, count)
}

func modificationSeconds(_ info: stat) -> Int {
    #if canImport(Darwin)
    Int(info.st_mtimespec.tv_sec)
    #else
    Int(info.st_mtim.tv_sec)
    #endif
}
