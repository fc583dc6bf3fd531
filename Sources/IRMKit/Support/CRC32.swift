import CZlib
import Dispatch
import Foundation

/// CRC-32 as zlib computes it (CRC-32/ISO-HDLC: reflected polynomial 0xEDB88320, initial value and
/// final XOR 0xFFFFFFFF), so that Python's `zlib.crc32(data)` gives the same number; `"123456789"`
/// gives 0xCBF43926.
///
/// A CRC-32 detects every burst of up to 32 flipped bits and all but one in 2³² random changes; it
/// guards against corruption, not against someone who means to change a file unnoticed.
enum CRC32 {
    /// The bytes are split into runs of at least `parallelRun` bytes, one per core, whose CRCs zlib
    /// combines (`crc32_combine`): the result is the same as one pass over all of them.
    static let parallelRun = 8 << 20

    /// The CRC-32 of `bytes`. `runs` overrides the number of pieces computed in parallel (the
    /// tests check that the combined result equals one pass).
    static func checksum(_ bytes: UnsafeRawBufferPointer, runs requested: Int? = nil) -> UInt32 {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return 0 }
        let runs = min(requested ?? ComputeThreads.count, bytes.count / parallelRun)
        guard runs > 1 else { return serial(base, count: bytes.count) }
        let bounds = (0...runs).map { bytes.count * $0 / runs }
        let start = UnsafeSendable(base)
        let crcs = ParallelMap.map(count: runs) { run in
            serial(start.value + bounds[run], count: bounds[run + 1] - bounds[run])
        }
        var combined = UInt(crcs[0])
        for run in 1..<runs {
            combined = crc32_combine(combined, UInt(crcs[run]), Int(bounds[run + 1] - bounds[run]))
        }
        return UInt32(truncatingIfNeeded: combined)
    }

    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }

    /// One pass, in pieces that fit zlib's 32-bit length.
    private static func serial(_ base: UnsafeRawPointer, count: Int) -> UInt32 {
        var crc: UInt = 0
        var offset = 0
        while offset < count {
            let length = min(1 << 30, count - offset)
            crc = crc32(crc, (base + offset).assumingMemoryBound(to: UInt8.self), UInt32(length))
            offset += length
        }
        return UInt32(truncatingIfNeeded: crc)
    }

    /// `0x` and eight hex digits, as the messages show a CRC.
    static func hex(_ crc: UInt32) -> String {
        let digits = String(crc, radix: 16)
        return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
    }
}
