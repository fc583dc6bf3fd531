import Foundation

/// Who is writing: this machine and this process. Temporary files carry both in their names, so
/// that a later run can tell a leftover of a dead writer (which it removes) from a file that
/// another live process, perhaps on another machine sharing the file system, is still writing.
enum ProcessIdentity {
    /// This machine's host name, with anything but letters, digits, `.` and `-` replaced by `_`.
    static let hostName: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown-host" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let cleaned = String(name.unicodeScalars.map { scalar -> Character in
            let ok = scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || scalar == "." || scalar == "-")
            return ok ? Character(scalar) : "_"
        })
        return cleaned.isEmpty ? "unknown-host" : cleaned
    }()

    static var pid: Int32 { ProcessInfo.processInfo.processIdentifier }

    /// Whether a process with this id runs on this machine (one we may not signal counts too).
    static func isAlive(_ pid: Int32) -> Bool {
        guard pid > 0 else { return false }
        return kill(pid, 0) == 0 || errno == EPERM
    }
}
