import Foundation

/// Writes an output file so that readers never see a half-written one: the content goes to a
/// temporary file in the same directory, which is renamed over the destination only on success
/// and removed on failure.
public enum AtomicOutput {
    /// Checks that `url`'s directory exists and is writable, before any expensive work starts.
    public static func checkWritable(_ url: URL) throws {
        let directory = url.deletingLastPathComponent()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw IRMError("cannot write \(url.path): the directory \(directory.path) does not exist")
        }
        guard FileManager.default.isWritableFile(atPath: directory.path) else {
            throw IRMError("cannot write \(url.path): the directory \(directory.path) is not writable")
        }
        var isExistingDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isExistingDirectory), isExistingDirectory.boolValue {
            throw IRMError("cannot write \(url.path): it is a directory; expected a file path")
        }
    }

    /// A hidden, unique path in `url`'s directory, so that the final rename stays on one file system.
    static func temporaryURL(beside url: URL) -> URL {
        url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))")
    }

    /// Calls `body` with a temporary path beside `url`, then renames it onto `url`.
    public static func write<R>(to url: URL, _ body: (URL) throws -> R) throws -> R {
        try checkWritable(url)
        let temporary = temporaryURL(beside: url)
        do {
            let result = try body(temporary)
            guard rename(temporary.path, url.path) == 0 else {
                let reason = String(cString: strerror(errno))
                throw IRMError("cannot move the finished output into place at \(url.path): \(reason)")
            }
            return result
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
    }

    /// Writes `data` to `url` atomically.
    public static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { temporary in
            do {
                try data.write(to: temporary)
            } catch {
                throw IRMError("cannot write \(url.path): \(error.localizedDescription)")
            }
        }
    }
}
