// Shared by every fuzz target (compiled into each one): helpers for turning libFuzzer's bytes into
// the inputs IRMKit's entry points take. A thrown error is a correct outcome for a fuzz input;
// only crashes, hangs, leaks of memory limits and sanitizer reports are findings.
import Foundation

enum FuzzInput {
    static func data(_ bytes: UnsafePointer<UInt8>, _ size: Int) -> Data {
        Data(bytes: bytes, count: size)
    }

    /// The bytes as text, with invalid UTF-8 replaced (the entry points that take `String` never
    /// see invalid UTF-8, because their callers decode first).
    static func text(_ bytes: UnsafePointer<UInt8>, _ size: Int) -> String {
        String(decoding: UnsafeBufferPointer(start: bytes, count: size), as: UTF8.self)
    }

    /// Writes the bytes to a per-process temporary file and returns its path, for entry points that
    /// read files (safetensors, HDF5). The same path is reused by every run of the process.
    static func temporaryFile(_ bytes: UnsafePointer<UInt8>, _ size: Int, suffix: String) -> String? {
        let path = NSTemporaryDirectory() + "/irm-fuzz-\(getpid())\(suffix)"
        let url = URL(fileURLWithPath: path)
        do {
            try Data(bytes: bytes, count: size).write(to: url)
        } catch {
            return nil
        }
        return path
    }
}
