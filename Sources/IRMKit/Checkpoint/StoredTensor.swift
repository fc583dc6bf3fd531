import Foundation

/// A tensor's values at the precision the checkpoint stores them: in place in a read-only mapping
/// of the file, or, for datasets irm cannot map (chunked, compressed, big-endian, merged with an
/// adapter), in memory that irm owns. Compute is float32: kernels widen ranges on the fly
/// (`widen`), except float32 values that are aligned, which they use in place (`float32Pointer`).
public final class StoredTensor: @unchecked Sendable {
    public enum Element: String, Sendable {
        case float32, float16, bfloat16

        public var byteWidth: Int { self == .float32 ? 4 : 2 }

        /// The element of a stored type, nil for float64 (which irm reads and rounds).
        init?(_ dtype: TensorDType) {
            switch dtype {
            case .f32: self = .float32
            case .f16: self = .float16
            case .bf16: self = .bfloat16
            case .f64: return nil
            }
        }
    }

    public let name: String
    public let shape: [Int]
    public let element: Element
    /// Element count.
    public let count: Int
    /// The first element (aligned to the element's width only when `float32Pointer` is non-nil).
    let base: UnsafeRawPointer
    /// The mapping this points into, kept alive with the tensor; nil for owned values.
    public let mapping: MappedFile?
    private let owned: UnsafeMutableRawPointer?

    /// Values in place in `mapping`, `byteOffset` bytes from its start.
    init(name: String, shape: [Int], element: Element, mapping: MappedFile, byteOffset: Int) {
        self.name = name
        self.shape = shape
        self.element = element
        count = shape.reduce(1, *)
        base = mapping.base + byteOffset
        self.mapping = mapping
        owned = nil
    }

    /// Owned float32 values (a copy of `values`).
    public init(name: String, shape: [Int], values: [Float]) {
        precondition(values.count == shape.reduce(1, *), "the caller checks the shape")
        self.name = name
        self.shape = shape
        element = .float32
        count = values.count
        let memory = UnsafeMutableRawPointer.allocate(byteCount: max(1, values.count * 4), alignment: 64)
        values.withUnsafeBytes { if let source = $0.baseAddress { memory.copyMemory(from: source, byteCount: $0.count) } }
        base = UnsafeRawPointer(memory)
        owned = memory
        mapping = nil
    }

    deinit { owned?.deallocate() }

    public var isMapped: Bool { mapping != nil }

    /// The values as float32 in place, when they are stored so and aligned.
    var float32Pointer: UnsafePointer<Float>? {
        guard element == .float32, Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 else { return nil }
        return base.assumingMemoryBound(to: Float.self)
    }

    /// Writes elements `range` as float32 to `output` (exact: half precision widens without
    /// rounding).
    func widen(_ range: Range<Int>, into output: UnsafeMutablePointer<Float>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "callers stay inside the tensor")
        let source = base + range.lowerBound * element.byteWidth
        switch element {
        case .float32: UnsafeMutableRawPointer(output).copyMemory(from: source, byteCount: range.count * 4)
        case .bfloat16: HalfPrecision.widenBFloat16(source, count: range.count, into: output)
        case .float16: HalfPrecision.widenFloat16(source, count: range.count, into: output)
        }
    }

    /// Every value as float32 (a copy).
    public func floatValues() -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buffer, initialised in
            if count > 0 { widen(0..<count, into: buffer.baseAddress!) }
            initialised = count
        }
    }

    /// The index of the first NaN or infinity, nil when every value is finite.
    func firstNonFinite() -> Int? {
        switch element {
        case .float32:
            if let pointer = float32Pointer { return FiniteValues.firstNonFinite(UnsafeBufferPointer(start: pointer, count: count)) }
            return FiniteValues.firstNonFinite(floatValues())
        case .bfloat16: return HalfPrecision.firstNonFinite(base, count: count, magnitudeLimit: 0x7F80)
        case .float16: return HalfPrecision.firstNonFinite(base, count: count, magnitudeLimit: 0x7C00)
        }
    }

    /// The value at flat `index`, widened.
    func value(at index: Int) -> Float {
        var value: Float = 0
        widen(index..<(index + 1), into: &value)
        return value
    }
}

/// Widening of half-precision bit patterns to float32, 16 at a time. Each has a plain version
/// (`Float(Float16(bitPattern:))`, `BFloat16.floatValue`) that the tests compare it with on every
/// bit pattern.
enum HalfPrecision {
    /// bfloat16 is the upper half of a float32: shift the pattern up 16 bits.
    static func widenBFloat16(_ source: UnsafeRawPointer, count: Int, into output: UnsafeMutablePointer<Float>) {
        let out = UnsafeMutableRawPointer(output)
        var i = 0
        while i + 16 <= count {
            let half = source.loadUnaligned(fromByteOffset: i * 2, as: SIMD16<UInt16>.self)
            out.storeBytes(of: SIMD16<UInt32>(truncatingIfNeeded: half) &<< 16, toByteOffset: i * 4, as: SIMD16<UInt32>.self)
            i += 16
        }
        while i < count {
            output[i] = Float(bitPattern: UInt32(source.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) << 16)
            i += 1
        }
    }

    /// IEEE binary16 to binary32, exactly, without F16C: normal numbers rebias the exponent,
    /// subnormals are `m · 2⁻²⁴` (exact in float32), infinities and NaNs keep their payload.
    static func widenFloat16(_ source: UnsafeRawPointer, count: Int, into output: UnsafeMutablePointer<Float>) {
        #if IRM_NATIVE_TARGET
        return widenFloat16Converting(source, count: count, into: output)
        #else
        widenFloat16BitTrick(source, count: count, into: output)
        #endif
    }

    /// The portable widening: integer SIMD only, no F16C needed.
    static func widenFloat16BitTrick(_ source: UnsafeRawPointer, count: Int, into output: UnsafeMutablePointer<Float>) {
        let out = UnsafeMutableRawPointer(output)
        var i = 0
        while i + 16 <= count {
            let h = SIMD16<UInt32>(truncatingIfNeeded: source.loadUnaligned(fromByteOffset: i * 2, as: SIMD16<UInt16>.self))
            out.storeBytes(of: widen16(h), toByteOffset: i * 4, as: SIMD16<UInt32>.self)
            i += 16
        }
        if i < count {
            var tail = SIMD16<UInt32>(repeating: 0)
            for j in 0..<(count - i) { tail[j] = UInt32(source.loadUnaligned(fromByteOffset: (i + j) * 2, as: UInt16.self)) }
            let widened = widen16(tail)
            for j in 0..<(count - i) { output[i + j] = Float(bitPattern: widened[j]) }
        }
    }

    /// IEEE binary16 to binary32 by the compiler's conversion: one `vcvtph2ps` per 8 values when the
    /// target has F16C (release builds target the host CPU), a library call per value otherwise, so
    /// only native builds use it (`widenFloat16` picks).
    static func widenFloat16Converting(_ source: UnsafeRawPointer, count: Int, into output: UnsafeMutablePointer<Float>) {
        let out = UnsafeMutableRawPointer(output)
        var i = 0
        while i + 16 <= count {
            let half = source.loadUnaligned(fromByteOffset: i * 2, as: SIMD16<Float16>.self)
            out.storeBytes(of: SIMD16<Float>(half), toByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        while i < count {
            output[i] = Float(source.loadUnaligned(fromByteOffset: i * 2, as: Float16.self))
            i += 1
        }
    }

    @inline(__always)
    private static func widen16(_ h: SIMD16<UInt32>) -> SIMD16<UInt32> {
        let sign = (h & 0x8000) &<< 16
        let magnitude = h & 0x7FFF
        let normal = (magnitude &<< 13) &+ SIMD16<UInt32>(repeating: (127 - 15) << 23)
        let special = (magnitude &<< 13) | SIMD16<UInt32>(repeating: 0x7F80_0000)
        let subnormal = unsafeBitCast(SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: magnitude)) * 0x1p-24, to: SIMD16<UInt32>.self)
        var result = normal
        result.replace(with: special, where: magnitude .>= 0x7C00)
        result.replace(with: subnormal, where: magnitude .< 0x0400)
        return result | sign
    }

    /// The first element whose magnitude pattern (`bits & 0x7FFF`) reaches `magnitudeLimit`: the
    /// all-ones exponent of NaN and infinity (0x7C00 for float16, 0x7F80 for bfloat16).
    static func firstNonFinite(_ source: UnsafeRawPointer, count: Int, magnitudeLimit: UInt16) -> Int? {
        // `magnitudeLimit` is the exponent field (all ones is inf or NaN). Four values per 64-bit
        // word: t = (w & limit) ^ limit has a zero lane exactly where a value is not finite, and
        // (t - 1) & ~t & 0x8000 per lane flags a zero lane (a borrow out of a zero lane can flag
        // lanes above it too, but only when there is a zero lane). Plain integer arithmetic, which
        // the compiler vectorises; `SIMD32<UInt16>` comparisons compiled to lane-by-lane spills,
        // which made loading a half-precision model ten times slower than mapping it.
        let limit = UInt64(magnitudeLimit) &* 0x0001_0001_0001_0001
        let ones: UInt64 = 0x0001_0001_0001_0001, highs: UInt64 = 0x8000_8000_8000_8000
        var flags: UInt64 = 0
        var i = 0
        while i + 4 <= count {
            let t = (source.loadUnaligned(fromByteOffset: i * 2, as: UInt64.self) & limit) ^ limit
            flags |= (t &- ones) & ~t & highs
            i += 4
        }
        var largest: UInt16 = flags != 0 ? magnitudeLimit : 0
        while i < count {
            largest = max(largest, source.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self) & 0x7FFF)
            i += 1
        }
        guard largest >= magnitudeLimit else { return nil }
        return (0..<count).first { source.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self) & 0x7FFF >= magnitudeLimit }
    }
}
