import CHDF5

/// A failure inside libhdf5, or a mismatch between what a file holds and what the caller asked for.
///
/// The message names the file, the object path inside it, what was expected and what was found, so
/// that a user can act on it without reading our code.
public struct HDF5Error: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let object: String?
    public let message: String
    /// The innermost description from libhdf5's error stack, when libhdf5 reported one.
    public let libraryDetail: String?

    public init(file: String, object: String?, message: String, libraryDetail: String? = nil) {
        self.file = file
        self.object = object
        self.message = message
        self.libraryDetail = libraryDetail
    }

    public var description: String {
        var text = file
        if let object { text += ": \(object)" }
        text += ": \(message)"
        if let libraryDetail, !libraryDetail.isEmpty { text += " (libhdf5: \(libraryDetail))" }
        return text
    }
}

/// libhdf5 prints its error stack to stderr by default. irm turns failures into Swift errors instead,
/// so automatic printing is switched off once, before the first call into the library.
enum HDF5Library {
    static let initialised: Bool = {
        _ = H5open()
        _ = H5Eset_auto2(irm_H5E_DEFAULT(), nil, nil)
        // A file can name filter plugins, which libhdf5 would load as shared libraries from
        // HDF5_PLUGIN_PATH: code chosen by the file. irm loads none.
        _ = H5PLset_loading_state(0)
        return true
    }()

    /// Ensures the library is initialised and silent. Cheap after the first call.
    @inline(__always) static func ensureReady() { _ = initialised }

    /// Reads the current thread's libhdf5 error stack and returns its most specific messages, then
    /// clears the stack.
    static func takeErrorDetail() -> String? {
        final class Collector { var lines: [String] = [] }
        let collector = Collector()
        let unmanaged = Unmanaged.passRetained(collector)
        defer { unmanaged.release() }
        _ = H5Ewalk2(irm_H5E_DEFAULT(), H5E_WALK_DOWNWARD, { _, errorPointer, clientData in
            guard let errorPointer, let clientData else { return 0 }
            let collector = Unmanaged<Collector>.fromOpaque(clientData).takeUnretainedValue()
            if let desc = errorPointer.pointee.desc {
                let text = String(cString: desc)
                if !text.isEmpty { collector.lines.append(text) }
            }
            return 0
        }, unmanaged.toOpaque())
        _ = H5Eclear2(irm_H5E_DEFAULT())
        guard !collector.lines.isEmpty else { return nil }
        // The downward walk lists the outermost API call first and the root cause last; the last two
        // lines are the most informative without flooding the message.
        return collector.lines.suffix(2).joined(separator: "; ")
    }
}
