/// A dataset whose stored bytes no longer have the CRC-32 that irm recorded in its `crc32`
/// attribute when it wrote the file (format 1.1): flipped bits on disk, a damaged copy, or an edit
/// by another tool.
public struct ChecksumMismatch: Sendable, Codable, Equatable, CustomStringConvertible {
    /// The dataset's path in the file, e.g. `/tensors/lm_head.weight` or `/config`.
    public let object: String
    public let stored: UInt32
    public let computed: UInt32

    /// `/tensors/NAME: checksum mismatch (stored crc32 0x…, computed 0x…): …`, for a message that
    /// starts with the file.
    public var description: String {
        "\(object): checksum mismatch (stored crc32 \(CRC32.hex(stored)), computed \(CRC32.hex(computed))): "
            + "the file is corrupt or was modified after irm wrote it"
    }

    /// The mismatch, if any, between a stored `crc32` and zlib's CRC-32 of `bytes`.
    static func check(_ object: String, stored: UInt32?, bytes: UnsafeRawBufferPointer) -> ChecksumMismatch? {
        guard let stored else { return nil }
        let computed = CRC32.checksum(bytes)
        return computed == stored ? nil : ChecksumMismatch(object: object, stored: stored, computed: computed)
    }
}
