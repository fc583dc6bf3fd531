/// The bfloat16 format: the upper 16 bits of an IEEE binary32 value (1 sign, 8 exponent, 7 fraction
/// bits). Swift has no native type for it, so values are carried as their bit patterns.
public struct BFloat16: Equatable, Hashable, Sendable {
    public var bitPattern: UInt16

    public init(bitPattern: UInt16) { self.bitPattern = bitPattern }

    /// Rounds `value` to the nearest bfloat16, ties to even, as PyTorch does. NaN stays a quiet NaN
    /// with its sign; infinities and signed zeros are kept.
    public init(_ value: Float) {
        let bits = value.bitPattern
        if value.isNaN {
            bitPattern = UInt16(truncatingIfNeeded: bits >> 16) | 0x0040
            return
        }
        let lsb = (bits >> 16) & 1
        let rounded = bits &+ 0x7FFF &+ lsb
        bitPattern = UInt16(truncatingIfNeeded: rounded >> 16)
    }

    /// Exact widening to binary32.
    @inline(__always) public var floatValue: Float {
        Float(bitPattern: UInt32(bitPattern) << 16)
    }
}
