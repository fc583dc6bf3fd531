import CAtomicOutput
import Foundation

/// A whole file mapped read-only into memory, for weights used at their stored precision without
/// a copy: the pages belong to the page cache, not to irm, so a mapped model costs file-backed
/// memory that the kernel can drop and re-read, not anonymous memory.
///
/// A mapping sees the file as it is now. If another process truncates the file, touching a page past
/// the new end raises SIGBUS; if it rewrites the file in place, the mapping silently shows the new
/// bytes. irm guards against both:
/// - `checkUnchanged()` compares the size, modification time and inode of the open file and of
///   the path with those seen when it was mapped; the scorer calls it before every batch and the
///   pipelines before they write anything, so a changed file is an error that names it.
/// - A SIGBUS whose address lies in a registered mapping (the file shrank during a batch) prints
///   one `irm: error:` line naming the file and exits with status 1 instead of crashing. The handler
///   uses only async-signal-safe calls on a table prepared when the file was mapped.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let byteCount: Int
    public let base: UnsafeRawPointer
    private let descriptor: Int32
    private let identity: Identity
    private let slot: Int

    /// What `checkUnchanged` compares.
    struct Identity: Equatable {
        var device: UInt64
        var inode: UInt64
        var size: Int64
        var modifiedSeconds: Int
        var modifiedNanoseconds: Int

        init(_ s: stat) {
            device = UInt64(s.st_dev)
            inode = UInt64(s.st_ino)
            size = Int64(s.st_size)
            modifiedSeconds = Int(s.st_mtim.tv_sec)
            modifiedNanoseconds = Int(s.st_mtim.tv_nsec)
        }
    }

    /// Maps `path` read-only. The file must be a regular, non-empty file.
    public init(path: String) throws {
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer; fstat refuses it below.
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw IRMError("\(path): cannot open the file for mapping: \(String(cString: strerror(errno)))") }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw IRMError("\(path): cannot read the file's size: \(reason)")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG, info.st_size > 0 else {
            close(fd)
            throw IRMError("\(path): expected a non-empty regular file to map")
        }
        let size = Int(info.st_size)
        guard let address = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), address != MAP_FAILED else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw IRMError("\(path): cannot map the file: \(reason)")
        }
        guard let slot = MappedFileGuard.register(start: UnsafeRawPointer(address), count: size, path: path) else {
            munmap(address, size)
            close(fd)
            throw IRMError("\(path): too many files mapped at once (at most \(MappedFileGuard.capacity))")
        }
        self.path = path
        byteCount = size
        base = UnsafeRawPointer(address)
        descriptor = fd
        identity = Identity(info)
        self.slot = slot
        MappedFileGuard.track(self, slot: slot)
    }

    deinit {
        MappedFileGuard.unregister(slot)
        munmap(UnsafeMutableRawPointer(mutating: base), byteCount)
        close(descriptor)
    }

    /// Throws when the file has been truncated, rewritten or replaced since it was mapped.
    public func checkUnchanged() throws {
        var now = stat()
        guard fstat(descriptor, &now) == 0 else {
            throw IRMError("\(path): cannot check the mapped file: \(String(cString: strerror(errno)))")
        }
        let current = Identity(now)
        if current.size != identity.size {
            throw IRMError("\(path): the file changed while irm was using it (its size went from \(identity.size) to \(current.size) bytes); nothing was written — rerun when the file is complete")
        }
        if current != identity {
            throw IRMError("\(path): the file was modified while irm was using it (its modification time changed); nothing was written — rerun when the file is complete")
        }
        var named = stat()
        if stat(path, &named) != 0 || Identity(named) != identity {
            throw IRMError("\(path): the file was replaced or removed while irm was using it; nothing was written — rerun when the file is in place")
        }
    }

    /// `checkUnchanged` for every file mapped now (the scorer calls it before each batch).
    public static func checkAllUnchanged() throws {
        for file in MappedFileGuard.liveFiles() { try file.checkUnchanged() }
    }

    /// Byte `offset ..< offset + count` lies inside the file.
    public func contains(offset: Int, count: Int) -> Bool {
        offset >= 0 && count >= 0 && offset <= byteCount && count <= byteCount - offset
    }
}

/// The table that the SIGBUS handler reads, and the live mappings for `checkAllUnchanged`.
enum MappedFileGuard {
    static let capacity = 64
    private static let messageLimit = 4096

    /// Slot layout, read by the handler: start address, end address, message pointer, message
    /// length. A zero start marks a free slot.
    private struct Slot {
        var start: UInt
        var end: UInt
        var message: UnsafeMutablePointer<UInt8>?
        var messageLength: Int
    }

    nonisolated(unsafe) private static let slots: UnsafeMutablePointer<Slot> = {
        let table = UnsafeMutablePointer<Slot>.allocate(capacity: capacity)
        table.initialize(repeating: Slot(start: 0, end: 0, message: nil, messageLength: 0), count: capacity)
        return table
    }()
    private static let lock = NSLock()
    nonisolated(unsafe) private static var files: [Int: WeakFile] = [:]
    nonisolated(unsafe) private static var handlerInstalled = false

    private struct WeakFile { weak var file: MappedFile? }

    static func register(start: UnsafeRawPointer, count: Int, path: String) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        installHandler()
        guard let free = (0..<capacity).first(where: { slots[$0].start == 0 }) else { return nil }
        let text = Array("irm: error: \(path): the file shrank while irm was reading it (truncated or rewritten by another process); nothing was written — rerun when the file is complete\n".utf8.prefix(messageLimit))
        let message = UnsafeMutablePointer<UInt8>.allocate(capacity: text.count)
        message.initialize(from: text, count: text.count)
        let address = UInt(bitPattern: start)
        slots[free] = Slot(start: address, end: address + UInt(count), message: message, messageLength: text.count)
        return free
    }

    static func track(_ file: MappedFile, slot: Int) {
        lock.lock()
        files[slot] = WeakFile(file: file)
        lock.unlock()
    }

    static func unregister(_ slot: Int) {
        lock.lock()
        defer { lock.unlock() }
        let message = slots[slot].message
        slots[slot] = Slot(start: 0, end: 0, message: nil, messageLength: 0)
        files[slot] = nil
        // The message stays allocated: a handler running on another thread may still be reading it.
        _ = message
    }

    static func liveFiles() -> [MappedFile] {
        lock.lock()
        defer { lock.unlock() }
        return files.values.compactMap(\.file)
    }

    /// The SIGBUS handler: a fault inside a registered mapping ends the process with a message;
    /// any other SIGBUS gets the default action (a crash with a core, as before).
    private static func installHandler() {
        guard !handlerInstalled else { return }
        handlerInstalled = true
        _ = slots  // the table exists before the handler can run
        var action = sigaction()
        action.sa_flags = SA_SIGINFO
        sigemptyset(&action.sa_mask)
        action.__sigaction_handler.sa_sigaction = { _, info, _ in
            let address = UInt(bitPattern: info?.pointee._sifields._sigfault.si_addr)
            for index in 0..<MappedFileGuard.capacity {
                let slot = MappedFileGuard.slots[index]
                if slot.start != 0, address >= slot.start, address < slot.end, let message = slot.message {
                    _ = write(2, message, slot.messageLength)
                    irm_cleanup_now()  // the unfinished outputs' temporary files and locks (SignalCleanup)
                    _exit(1)
                }
            }
            signal(SIGBUS, SIG_DFL)
            raise(SIGBUS)
        }
        sigaction(SIGBUS, &action, nil)
    }
}
