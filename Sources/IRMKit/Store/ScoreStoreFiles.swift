import Foundation

/// The file-system steps that make the store's writes atomic and durable, and that tell a leftover
/// temporary file of a dead writer from one another process is still writing.
///
/// Temporary names carry the writer's host and process id, `.<final name>.tmp-<host>-<pid>-<random>`,
/// so that a store shared between machines (Slurm shards on a network file system) never removes a
/// file another machine is still writing: a temporary file is removed only when its writer ran on
/// this host and is no longer alive, or when it is older than the store's `staleTemporaryAge`.
enum ScoreStoreFiles {
    static let temporaryMarker = ".tmp-"

    static func temporaryURL(for url: URL) -> URL {
        let pid = ProcessInfo.processInfo.processIdentifier
        let random = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        return url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent)\(temporaryMarker)\(ProcessIdentity.hostName)-\(pid)-\(random)")
    }

    /// Who wrote a temporary file, parsed from its name.
    struct TemporaryName: Equatable {
        let finalName: String
        let host: String
        let pid: Int32
    }

    /// Parses `.<final>.tmp-<host>-<pid>-<random>`; nil for any other name.
    static func parseTemporary(_ name: String) -> TemporaryName? {
        guard name.hasPrefix("."), let marker = name.range(of: temporaryMarker, options: .backwards) else { return nil }
        let finalName = String(name[name.index(after: name.startIndex)..<marker.lowerBound])
        let parts = name[marker.upperBound...].split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 3, let pid = Int32(parts[parts.count - 2]), !finalName.isEmpty else { return nil }
        let host = parts[0..<(parts.count - 2)].joined(separator: "-")
        return TemporaryName(finalName: finalName, host: host, pid: pid)
    }

    /// Whether a temporary file can be removed: its writer was a process of this host that is gone,
    /// or it is older than `maximumAge` (a writer on another host that died).
    static func isStale(_ url: URL, name: TemporaryName, maximumAge: TimeInterval, now: Date = Date()) -> Bool {
        if name.host == ProcessIdentity.hostName, !ProcessIdentity.isAlive(name.pid) { return true }
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path),
              let modified = attributes[.modificationDate] as? Date else { return false }
        return now.timeIntervalSince(modified) > maximumAge
    }

    enum Publication {
        /// Rename over whatever is at the destination (a block: a duplicate has identical content).
        case replace
        /// Create the destination only if absent (entry.h5): a concurrent creator's file wins.
        case createIfAbsent
    }

    /// Calls `body` with a temporary path beside `url`, makes the result durable (fsync), then
    /// publishes it. Returns false when `createIfAbsent` found a file already there. The temporary
    /// file is removed in every case, including failure and SIGINT, SIGTERM or SIGHUP
    /// (`SignalCleanup`).
    @discardableResult
    static func write(_ url: URL, _ publication: Publication, _ body: (URL) throws -> Void) throws -> Bool {
        let temporary = temporaryURL(for: url)
        let registration = SignalCleanup.register(temporary)
        defer {
            _ = unlink(temporary.path)
            SignalCleanup.unregister(registration)
        }
        try body(temporary)
        try AtomicOutput.synchronise(file: temporary.path, publishing: url.path)
        switch publication {
        case .replace:
            guard rename(temporary.path, url.path) == 0 else {
                throw IRMError("cannot move the finished file into place at \(url.path): \(String(cString: strerror(errno)))")
            }
        case .createIfAbsent:
            if link(temporary.path, url.path) != 0 {
                let reason = errno
                if reason == EEXIST { return false }
                // File systems without hard links: fall back to a rename, which can only lose a race
                // to a concurrent creator of identical content.
                guard !FileManager.default.fileExists(atPath: url.path) else { return false }
                guard rename(temporary.path, url.path) == 0 else {
                    throw IRMError("cannot move the finished file into place at \(url.path): \(String(cString: strerror(reason)))")
                }
            }
        }
        AtomicOutput.synchronise(directory: url.deletingLastPathComponent().path)
        return true
    }

    /// What identifies one version of a file: a rename of a new file over it changes the inode.
    struct FileIdentity: Equatable {
        let device: UInt64
        let inode: UInt64
        let size: Int64
        let modifiedSeconds: Int
        let modifiedNanoseconds: Int
    }

    static func identity(of path: String) -> FileIdentity? {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        #if canImport(Darwin)
        let modified = info.st_mtimespec
        #else
        let modified = info.st_mtim
        #endif
        return FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
                            modifiedSeconds: Int(modified.tv_sec), modifiedNanoseconds: Int(modified.tv_nsec))
    }
}
