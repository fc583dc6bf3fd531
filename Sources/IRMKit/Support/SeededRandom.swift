/// A deterministic pseudo-random generator: xoshiro256** (Blackman & Vigna 2018), with its 256-bit
/// state filled from a 64-bit seed by SplitMix64, the seeding the authors recommend.
///
/// Every random choice in irm (bootstrap resamples, cross-validation folds) draws from this type, so
/// the same seed gives the same numbers on every platform and Swift version. For that reason the
/// bounded draws and the shuffle are written out here instead of using the standard library's
/// `Int.random(in:using:)` and `shuffle(using:)`, whose algorithms are not specified.
///
/// Not cryptographically secure.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64

    public init(seed: UInt64) {
        var mixer = SplitMix64(state: seed)
        s0 = mixer.next()
        s1 = mixer.next()
        s2 = mixer.next()
        s3 = mixer.next()
    }

    /// The next 64 random bits (xoshiro256**).
    public mutating func next() -> UInt64 {
        let result = Self.rotateLeft(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = Self.rotateLeft(s3, 45)
        return result
    }

    /// A uniform integer in `0..<bound` by Lemire's multiply-and-reject method, which is exactly
    /// uniform (no modulo bias). `bound` must be positive; a non-positive bound returns 0.
    public mutating func index(below bound: Int) -> Int {
        guard bound > 1 else { return 0 }
        let n = UInt64(bound)
        var product = next().multipliedFullWidth(by: n)
        if product.low < n {
            let threshold = (0 &- n) % n
            while product.low < threshold {
                product = next().multipliedFullWidth(by: n)
            }
        }
        return Int(product.high)
    }

    /// A uniform double in [0, 1) with 53 random bits.
    public mutating func unitInterval() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// Fisher–Yates shuffle from the last position down, drawing `index(below: i + 1)`.
    public mutating func shuffle<T>(_ values: inout [T]) {
        var i = values.count - 1
        while i > 0 {
            let j = index(below: i + 1)
            values.swapAt(i, j)
            i -= 1
        }
    }

    /// `count` indices drawn uniformly with replacement from `0..<population` (a bootstrap resample).
    public mutating func resampleIndices(count: Int, population: Int) -> [Int] {
        (0..<max(count, 0)).map { _ in index(below: population) }
    }

    private static func rotateLeft(_ x: UInt64, _ k: UInt64) -> UInt64 {
        (x << k) | (x >> (64 - k))
    }
}

/// SplitMix64 (Steele, Lea & Flood 2014): used only to expand a 64-bit seed into xoshiro's state.
struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
