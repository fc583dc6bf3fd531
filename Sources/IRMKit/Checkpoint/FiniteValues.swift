/// NaN and infinity in tensor values. Weights from a diverged run (or a tampered file) make every
/// log-prob NaN, which a forward pass would carry silently into `null` scores; irm refuses them
/// when a model, an adapter or a reward head is loaded, naming the tensor.
enum FiniteValues {
    /// The index of the first NaN or infinity in `values`, nil when all are finite.
    ///
    /// The scan does not branch per element: it keeps the largest magnitude bit pattern
    /// (`bits & 0x7FFF_FFFF`), 16 lanes at a time. Every NaN and infinity has a magnitude pattern of
    /// at least `0x7F80_0000`, every finite float one below it. Only a tensor that fails is scanned
    /// again, for the index. `firstNonFiniteReference` is the plain version.
    static func firstNonFinite(_ values: UnsafeBufferPointer<Float>) -> Int? {
        let magnitude: UInt32 = 0x7FFF_FFFF, infinity: UInt32 = 0x7F80_0000
        let lanes = 16, whole = values.count / lanes * lanes
        var worst = SIMD16<UInt32>(repeating: 0)
        if let base = values.baseAddress, whole > 0 {
            let raw = UnsafeRawPointer(base)
            let mask = SIMD16<UInt32>(repeating: magnitude)
            for start in stride(from: 0, to: whole, by: lanes) {
                let bits = raw.loadUnaligned(fromByteOffset: start * 4, as: SIMD16<UInt32>.self)
                worst = pointwiseMax(worst, bits & mask)
            }
        }
        var largest = worst.max()
        for i in whole..<values.count { largest = max(largest, values[i].bitPattern & magnitude) }
        guard largest >= infinity else { return nil }
        return firstNonFiniteReference(values)
    }

    static func firstNonFinite(_ values: [Float]) -> Int? {
        values.withUnsafeBufferPointer { firstNonFinite($0) }
    }

    /// The plain version of `firstNonFinite`, which tests compare it with.
    static func firstNonFiniteReference(_ values: UnsafeBufferPointer<Float>) -> Int? {
        values.firstIndex { !$0.isFinite }
    }

    /// Throws, naming `location` (the file and tensor) and the first bad value's index in
    /// `shape`, unless every value is finite.
    static func require(_ values: [Float], shape: [Int], location: String) throws {
        guard let bad = firstNonFinite(values) else { return }
        throw IRMError("\(location): expected finite values, found \(values[bad]) at \(multiIndex(bad, shape: shape)) (a diverged run?)")
    }

    /// The counts of NaN and infinite values (for `irm inspect --check-values`); nil when all are finite.
    static func count(_ values: [Float]) -> (nan: Int, infinite: Int)? {
        guard let first = firstNonFinite(values) else { return nil }
        var nan = 0, infinite = 0
        for v in values[first...] where !v.isFinite {
            if v.isNaN { nan += 1 } else { infinite += 1 }
        }
        return (nan, infinite)
    }

    /// The index in `shape` (row-major) of the flat index `flat`.
    static func multiIndex(_ flat: Int, shape: [Int]) -> [Int] {
        var index: [Int] = [], rest = flat
        for d in shape.reversed() { index.insert(d > 0 ? rest % d : 0, at: 0); rest = d > 0 ? rest / d : 0 }
        return index
    }
}
