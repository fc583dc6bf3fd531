/// GPT-2's reversible map from bytes to printable Unicode scalars, which byte-level BPE vocabularies
/// are written in: the printable bytes `!`...`~`, `¡`...`¬` and `®`...`ÿ` stand for themselves, and
/// the other 68 bytes (controls, space, DEL, NBSP, soft hyphen) take U+0100 upwards in byte order,
/// so a space is `Ġ` (U+0120) and a newline `Ċ` (U+010A).
enum ByteLevelAlphabet {
    /// The scalar standing for each byte.
    static let scalarForByte: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            let printable = (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
            let value = printable ? UInt32(byte) : next
            if !printable { next += 1 }
            table[byte] = Unicode.Scalar(value) ?? " "
        }
        return table
    }()

    /// The byte each alphabet scalar stands for, indexed by scalar value (all are below U+0144).
    static let byteForScalarValue: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for (byte, scalar) in scalarForByte.enumerated() { table[Int(scalar.value)] = Int16(byte) }
        return table
    }()

    /// The byte `scalar` stands for, or nil when it is not in the alphabet.
    static func byte(for scalar: Unicode.Scalar) -> UInt8? {
        let value = Int(scalar.value)
        guard value < byteForScalarValue.count, byteForScalarValue[value] >= 0 else { return nil }
        return UInt8(byteForScalarValue[value])
    }

    /// The vocabulary spelling of some bytes.
    static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var scalars = String.UnicodeScalarView()
        for byte in bytes { scalars.append(scalarForByte[Int(byte)]) }
        return String(scalars)
    }

    /// The bytes a vocabulary token spells, or nil when a scalar is outside the alphabet.
    static func decode(_ token: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(token.unicodeScalars.count)
        for scalar in token.unicodeScalars {
            guard let byte = byte(for: scalar) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }
}
