import Foundation

/// The one check every input file goes through before irm opens it: its path, with symbolic links
/// followed, must name a regular file. Opening a FIFO for reading blocks until a writer comes (for
/// ever, in a batch job), a character device such as /dev/zero reads without end, and a directory
/// holds no bytes to parse; each is refused with a message that says what the path is.
///
/// Standard input (`--data -`) is not a path and does not come here; it is how a pipe is read.
public enum InputFile {
    /// What a path names, after following symbolic links.
    public enum Kind: Equatable, Sendable {
        case missing, regular, directory, fifo, characterDevice, blockDevice, socket, other

        /// "a FIFO", "a character device", …, for messages.
        public var phrase: String {
            switch self {
            case .missing: "nothing (no such file)"
            case .regular: "a regular file"
            case .directory: "a directory"
            case .fifo: "a FIFO (named pipe)"
            case .characterDevice: "a character device"
            case .blockDevice: "a block device"
            case .socket: "a socket"
            case .other: "not a regular file"
            }
        }

        init(mode: mode_t) {
            switch mode & S_IFMT {
            case S_IFREG: self = .regular
            case S_IFDIR: self = .directory
            case S_IFIFO: self = .fifo
            case S_IFCHR: self = .characterDevice
            case S_IFBLK: self = .blockDevice
            case S_IFSOCK: self = .socket
            default: self = .other
            }
        }
    }

    /// What `path` names, following symbolic links (a dangling link is `.missing`). `stat` never
    /// opens the file, so it cannot block on a FIFO.
    public static func kind(of path: String) -> Kind {
        var info = stat()
        guard stat(path, &info) == 0 else { return .missing }
        return Kind(mode: info.st_mode)
    }

    /// The message for an input that is not a regular file: "PATH: is a FIFO (named pipe), expected
    /// a regular file (WHAT)"; nil for a regular file.
    public static func problem(_ path: String, what: String) -> String? {
        let kind = kind(of: path)
        switch kind {
        case .regular: return nil
        case .missing: return "\(path): cannot read \(what): no such file"
        default: return "\(path): is \(kind.phrase), expected a regular file (\(what))"
        }
    }

    /// Throws unless `path` names a regular file.
    public static func requireRegular(_ path: String, what: String) throws {
        if let problem = problem(path, what: what) { throw IRMError(problem) }
    }

    /// The bytes of the regular file at `path`. The file is opened without blocking and checked on
    /// the open descriptor, so that a FIFO put in its place after a check still cannot block the read.
    public static func contents(_ path: String, what: String) throws -> Data {
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else {
            let reason = errno
            throw IRMError("\(path): cannot read \(what): \(reason == ENOENT ? "no such file" : String(cString: strerror(reason)))")
        }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            throw IRMError("\(path): cannot read \(what): \(String(cString: strerror(errno)))")
        }
        let kind = Kind(mode: info.st_mode)
        guard kind == .regular else {
            throw IRMError("\(path): is \(kind.phrase), expected a regular file (\(what))")
        }
        do {
            return try handle.readToEnd() ?? Data()
        } catch {
            throw IRMError("\(path): cannot read \(what): \(error.localizedDescription)")
        }
    }
}
