/// Open-addressing hash tables for the BPE hot paths (merge pairs, scalar ids, the word cache).
///
/// Swift's `Dictionary` hashes every key with seeded SipHash and probes through generic code; these
/// tables hash with one multiplication, probe linearly in one contiguous array, and keep the load
/// factor at or below 1/2, so a lookup is a handful of instructions and usually one cache line.
/// They only grow (there is no removal), which is all the tokenizer needs.

/// A table from `UInt64` keys to `UInt64` values. `UInt64.max` marks an empty slot and cannot be
/// used as a key.
struct IntegerHashTable: Sendable {
    private struct Slot {
        var key: UInt64
        var value: UInt64
    }

    private var slots: [Slot]
    private var shift: UInt64
    private(set) var count = 0

    static let emptyKey = UInt64.max

    init(minimumCapacity: Int = 0) {
        var bits: UInt64 = 4
        while (1 << bits) < 2 * minimumCapacity { bits += 1 }
        slots = Array(repeating: Slot(key: IntegerHashTable.emptyKey, value: 0), count: 1 << bits)
        shift = 64 - bits
    }

    @inline(__always)
    private func home(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    @inline(__always)
    subscript(key: UInt64) -> UInt64? {
        slots.withUnsafeBufferPointer { slots in
            let mask = slots.count - 1
            var index = home(key)
            while true {
                let slot = slots[index]
                if slot.key == key { return slot.value }
                if slot.key == IntegerHashTable.emptyKey { return nil }
                index = (index + 1) & mask
            }
        }
    }

    /// Sets the value for `key`, replacing any earlier one.
    mutating func set(_ value: UInt64, for key: UInt64) {
        precondition(key != IntegerHashTable.emptyKey, "IntegerHashTable: UInt64.max is reserved")
        if 2 * (count + 1) > slots.count { grow() }
        let mask = slots.count - 1
        var index = home(key)
        while true {
            if slots[index].key == key { slots[index].value = value; return }
            if slots[index].key == IntegerHashTable.emptyKey {
                slots[index] = Slot(key: key, value: value)
                count += 1
                return
            }
            index = (index + 1) & mask
        }
    }

    private mutating func grow() {
        let old = slots
        var bigger = IntegerHashTable(minimumCapacity: old.count)
        for slot in old where slot.key != IntegerHashTable.emptyKey { bigger.set(slot.value, for: slot.key) }
        self = bigger
    }
}

/// A pre-token of at most 15 bytes packed into two words (the length in the top byte of `high`, so
/// `high` is never 0 for a non-empty word), so that it is compared and hashed without following a
/// pointer. Most pre-tokens are this short.
struct PackedWord: Hashable, Sendable {
    let low: UInt64
    let high: UInt64

    static let maximumLength = 15

    /// Packs `bytes[range]`, or fails when the range is empty or longer than 15 bytes.
    @inline(__always)
    init?(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) {
        guard !range.isEmpty, range.count <= PackedWord.maximumLength else { return nil }
        var low: UInt64 = 0
        var high = UInt64(range.count) << 56
        var shift: UInt64 = 0
        for index in range {
            if shift < 64 { low |= UInt64(bytes[index]) << shift } else { high |= UInt64(bytes[index]) << (shift - 64) }
            shift += 8
        }
        self.low = low
        self.high = high
    }

    init?(_ bytes: [UInt8]) {
        guard let packed = bytes.withUnsafeBufferPointer({ PackedWord($0, 0..<bytes.count) }) else { return nil }
        self = packed
    }
}

/// A table from `PackedWord` keys to `UInt64` values (a zero `high` marks an empty slot).
struct PackedWordTable: Sendable {
    private struct Slot {
        var low: UInt64
        var high: UInt64
        var value: UInt64
    }

    private var slots: [Slot]
    private var shift: UInt64
    private(set) var count = 0

    init(minimumCapacity: Int = 0) {
        var bits: UInt64 = 4
        while (1 << bits) < 2 * minimumCapacity { bits += 1 }
        slots = Array(repeating: Slot(low: 0, high: 0, value: 0), count: 1 << bits)
        shift = 64 - bits
    }

    @inline(__always)
    private func home(_ key: PackedWord) -> Int {
        let mixed = (key.low ^ (key.high &* 0x9E37_79B9_7F4A_7C15)) &* 0xBF58_476D_1CE4_E5B9
        return Int(truncatingIfNeeded: mixed >> shift)
    }

    @inline(__always)
    subscript(key: PackedWord) -> UInt64? {
        slots.withUnsafeBufferPointer { slots in
            let mask = slots.count - 1
            var index = home(key)
            while true {
                let slot = slots[index]
                if slot.low == key.low && slot.high == key.high { return slot.value }
                if slot.high == 0 { return nil }
                index = (index + 1) & mask
            }
        }
    }

    /// Sets the value for `key`, replacing any earlier one.
    mutating func set(_ value: UInt64, for key: PackedWord) {
        if 2 * (count + 1) > slots.count { grow() }
        let mask = slots.count - 1
        var index = home(key)
        while true {
            if slots[index].low == key.low && slots[index].high == key.high { slots[index].value = value; return }
            if slots[index].high == 0 {
                slots[index] = Slot(low: key.low, high: key.high, value: value)
                count += 1
                return
            }
            index = (index + 1) & mask
        }
    }

    private mutating func grow() {
        let old = slots
        var bigger = PackedWordTable(minimumCapacity: old.count)
        for slot in old where slot.high != 0 {
            bigger.set(slot.value, for: PackedWord(low: slot.low, high: slot.high))
        }
        self = bigger
    }
}

extension PackedWord {
    fileprivate init(low: UInt64, high: UInt64) {
        self.low = low
        self.high = high
    }
}
