import Foundation

/// Bytes used as a dictionary key, compared and hashed exactly. Vocabulary tokens are keyed this way
/// because Swift `String` equality is canonical equivalence: `"é"` and `"e\u{301}"` compare equal as
/// Strings, but they are different tokens.
struct ByteKey: Hashable, Sendable {
    let bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }
    init(_ text: String) { bytes = Array(text.utf8) }

    static func == (lhs: ByteKey, rhs: ByteKey) -> Bool { lhs.bytes == rhs.bytes }

    func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }
}

/// A token the model produced for one pre-token: its id and the bytes of the pre-token it covers
/// (UTF-8 bytes of the piece, counted as Hugging Face's `Word` counts them).
struct ModelToken: Sendable {
    let id: Int32
    let byteStart: Int32
    let byteEnd: Int32
}

/// The `BPE` model section of tokenizer.json.
///
/// Merges follow Hugging Face's `Word::merge_all` exactly: a priority queue ordered by (merge rank,
/// symbol position) with stale entries skipped, so the result is the same even for vocabularies in
/// which two merges produce the same token.
struct BPEModel: Sendable {
    private struct Merge: Sendable {
        let rank: Int32
        let newID: Int32
    }

    /// Token strings by id (nil where the vocabulary has a gap).
    let tokenForID: [String?]
    private let idForToken: [ByteKey: Int32]
    /// Ids keyed by the bytes a byte-level token spells (built only for byte-level tokenizers).
    private let idForByteLevelBytes: [ByteKey: Int32]
    private let merges: [UInt64: Merge]
    /// The id of each byte's alphabet scalar, or -1.
    private let byteLevelSymbolIDs: [Int32]
    /// Ids of single-scalar tokens, by scalar value.
    private let idForScalar: [UInt32: Int32]
    /// Ids of `<0x00>`...`<0xFF>` when byte fallback is on and all 256 are present... or -1 each.
    private let byteFallbackIDs: [Int32]
    let byteFallback: Bool
    let unknownTokenID: Int32?
    let fusesUnknownTokens: Bool
    let ignoresMerges: Bool
    private let cache: BPEWordCache

    /// The model's vocabulary size, as Hugging Face counts it (entries of `vocab`).
    let vocabularyCount: Int

    static let supportedFields = ["type", "vocab", "merges", "dropout", "unk_token", "continuing_subword_prefix",
                                  "end_of_word_suffix", "fuse_unk", "byte_fallback", "ignore_merges"]

    init(node: TokenizerConfigNode, byteLevel: Bool) throws {
        let type = try node.string("type") ?? "BPE"
        guard type == "BPE" else {
            throw node.unsupported("model", type: type, supported: ["BPE"])
        }
        if let dropout = node.child("dropout")?.value.doubleValue, dropout != 0 {
            throw node.failure("BPE dropout \(dropout) makes encoding random; irm supports only dropout null or 0")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let value = try node.string(key), !value.isEmpty {
                throw node.failure("\(key) \"\(value)\" is not supported (it is used by WordPiece-style BPE vocabularies); expected null")
            }
        }

        let vocabNode = try node.requiredChild("vocab")
        guard let vocab = vocabNode.value.objectValue else {
            throw vocabNode.failure("expected an object mapping token strings to ids, found \(vocabNode.value.brief)")
        }
        var idForToken: [ByteKey: Int32] = [:]
        idForToken.reserveCapacity(vocab.count)
        var maximumID = -1
        var entries: [(String, Int32)] = []
        entries.reserveCapacity(vocab.count)
        for (token, value) in vocab {
            guard let id = value.intValue, id >= 0, id < Int(Int32.max) else {
                throw vocabNode.failure("expected token \(JSONValue.string(token).brief) to have a non-negative integer id, found \(value.brief)")
            }
            idForToken[ByteKey(token)] = Int32(id)
            maximumID = max(maximumID, id)
            entries.append((token, Int32(id)))
        }
        guard maximumID < 16 * vocab.count + 65_536 else {
            throw vocabNode.failure("the largest id \(maximumID) is far above the vocabulary size \(vocab.count); expected dense ids")
        }
        var tokenForID = [String?](repeating: nil, count: maximumID + 1)
        for (token, id) in entries { tokenForID[Int(id)] = token }
        self.tokenForID = tokenForID
        self.idForToken = idForToken
        vocabularyCount = vocab.count

        var idForScalar: [UInt32: Int32] = [:]
        for (token, id) in entries {
            var scalars = token.unicodeScalars.makeIterator()
            if let first = scalars.next(), scalars.next() == nil { idForScalar[first.value] = id }
        }
        self.idForScalar = idForScalar

        var byteLevelSymbolIDs = [Int32](repeating: -1, count: 256)
        var idForByteLevelBytes: [ByteKey: Int32] = [:]
        if byteLevel {
            for byte in 0..<256 {
                byteLevelSymbolIDs[byte] = idForScalar[ByteLevelAlphabet.scalarForByte[byte].value] ?? -1
            }
            idForByteLevelBytes.reserveCapacity(entries.count)
            for (token, id) in entries {
                if let bytes = ByteLevelAlphabet.decode(token) { idForByteLevelBytes[ByteKey(bytes)] = id }
            }
        }
        self.byteLevelSymbolIDs = byteLevelSymbolIDs
        self.idForByteLevelBytes = idForByteLevelBytes

        byteFallback = try node.bool("byte_fallback", default: false)
        var byteFallbackIDs = [Int32](repeating: -1, count: 256)
        if byteFallback {
            for byte in 0..<256 {
                let name = "<0x" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true) + ">"
                byteFallbackIDs[byte] = idForToken[ByteKey(name)] ?? -1
            }
        }
        self.byteFallbackIDs = byteFallbackIDs

        if let unknown = try node.string("unk_token") {
            guard let id = idForToken[ByteKey(unknown)] else {
                throw node.failure("unk_token \(JSONValue.string(unknown).brief) is not in the vocabulary; expected one of its tokens")
            }
            unknownTokenID = id
        } else {
            unknownTokenID = nil
        }
        fusesUnknownTokens = try node.bool("fuse_unk", default: false)
        ignoresMerges = try node.bool("ignore_merges", default: false)

        let mergesNode = try node.requiredChild("merges")
        var merges: [UInt64: Merge] = [:]
        let mergeItems = try mergesNode.elements()
        merges.reserveCapacity(mergeItems.count)
        var rank: Int32 = 0
        for item in mergeItems {
            let left: String, right: String
            if let line = item.value.stringValue {
                if line.hasPrefix("#version") { continue }
                let parts = line.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else {
                    throw item.failure("expected a merge \"a b\" (two tokens separated by one space), found \(item.value.brief)")
                }
                left = String(parts[0]); right = String(parts[1])
            } else if let pair = item.value.arrayValue, pair.count == 2,
                      let a = pair[0].stringValue, let b = pair[1].stringValue {
                left = a; right = b
            } else {
                throw item.failure("expected a merge as \"a b\" or [\"a\", \"b\"], found \(item.value.brief)")
            }
            guard let leftID = idForToken[ByteKey(left)] else {
                throw item.failure("the merge's first token \(JSONValue.string(left).brief) is not in the vocabulary")
            }
            guard let rightID = idForToken[ByteKey(right)] else {
                throw item.failure("the merge's second token \(JSONValue.string(right).brief) is not in the vocabulary")
            }
            guard let newID = idForToken[ByteKey(left + right)] else {
                throw item.failure("the merged token \(JSONValue.string(left + right).brief) is not in the vocabulary")
            }
            // Later duplicates win, as in Hugging Face's map construction.
            merges[BPEModel.pairKey(leftID, rightID)] = Merge(rank: rank, newID: newID)
            rank += 1
        }
        self.merges = merges
        cache = BPEWordCache(capacity: 200_000)
    }

    @inline(__always)
    private static func pairKey(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    func id(forToken token: String) -> Int32? { idForToken[ByteKey(token)] }

    func token(forID id: Int32) -> String? {
        guard id >= 0, Int(id) < tokenForID.count else { return nil }
        return tokenForID[Int(id)]
    }

    /// Encodes one pre-token given as UTF-8 bytes. With `byteLevel`, each byte is read as its
    /// byte-level alphabet scalar (GPT-2 style); otherwise the bytes are read as scalars
    /// (SentencePiece style, with byte fallback and unknown-token handling).
    func tokenize(_ bytes: [UInt8], byteLevel: Bool) -> [ModelToken] {
        guard !bytes.isEmpty else { return [] }
        let key = ByteKey(bytes)
        if ignoresMerges {
            let whole = byteLevel ? idForByteLevelBytes[key] : idForToken[key]
            if let whole { return [ModelToken(id: whole, byteStart: 0, byteEnd: Int32(bytes.count))] }
        }
        let packed = PackedWord(bytes)
        if let packed, let cached = cache.value(for: packed) { return cached }
        if packed == nil, let cached = cache.value(for: key) { return cached }
        var symbols = byteLevel ? byteLevelSymbols(bytes) : scalarSymbols(bytes)
        mergeAll(&symbols)
        var tokens: [ModelToken] = []
        tokens.reserveCapacity(symbols.count)
        var position: Int32 = 0
        for symbol in symbols where symbol.length != 0 {
            tokens.append(ModelToken(id: symbol.id, byteStart: position, byteEnd: position + symbol.length))
            position += symbol.length
        }
        if let packed {
            cache.store(tokens, for: packed)
        } else if bytes.count < 256 {
            cache.store(tokens, for: key)
        }
        return tokens
    }

    private struct Symbol {
        var id: Int32
        var previous: Int32
        var next: Int32
        var length: Int32
    }

    private func appendSymbol(_ id: Int32, length: Int32, to symbols: inout [Symbol]) {
        let count = Int32(symbols.count)
        if count > 0 { symbols[Int(count) - 1].next = count }
        symbols.append(Symbol(id: id, previous: count - 1, next: -1, length: length))
    }

    private func byteLevelSymbols(_ bytes: [UInt8]) -> [Symbol] {
        var symbols: [Symbol] = []
        symbols.reserveCapacity(bytes.count)
        var pendingUnknown: (id: Int32, length: Int32)?
        for byte in bytes {
            let id = byteLevelSymbolIDs[Int(byte)]
            if id >= 0 {
                if let unknown = pendingUnknown {
                    appendSymbol(unknown.id, length: unknown.length, to: &symbols)
                    pendingUnknown = nil
                }
                appendSymbol(id, length: 1, to: &symbols)
            } else {
                let scalar = ByteLevelAlphabet.scalarForByte[Int(byte)]
                handleUnknown(scalar: scalar, length: 1, symbols: &symbols, pending: &pendingUnknown)
            }
        }
        if let unknown = pendingUnknown { appendSymbol(unknown.id, length: unknown.length, to: &symbols) }
        return symbols
    }

    private func scalarSymbols(_ bytes: [UInt8]) -> [Symbol] {
        var symbols: [Symbol] = []
        symbols.reserveCapacity(bytes.count)
        var pendingUnknown: (id: Int32, length: Int32)?
        var index = 0
        while index < bytes.count {
            let (scalar, length) = BPEModel.decodeScalar(bytes, at: index)
            index += length
            if let id = idForScalar[scalar.value] {
                if let unknown = pendingUnknown {
                    appendSymbol(unknown.id, length: unknown.length, to: &symbols)
                    pendingUnknown = nil
                }
                appendSymbol(id, length: Int32(length), to: &symbols)
            } else {
                handleUnknown(scalar: scalar, length: Int32(length), symbols: &symbols, pending: &pendingUnknown)
            }
        }
        if let unknown = pendingUnknown { appendSymbol(unknown.id, length: unknown.length, to: &symbols) }
        return symbols
    }

    /// A scalar missing from the vocabulary: its UTF-8 bytes as `<0xNN>` tokens when byte fallback
    /// has them all, else the unknown token (fused with a preceding one when `fuse_unk`), else
    /// nothing. Like Hugging Face, a pending unknown token is only flushed by a known scalar, so
    /// byte-fallback tokens can come before it.
    private func handleUnknown(scalar: Unicode.Scalar, length: Int32, symbols: inout [Symbol],
                               pending: inout (id: Int32, length: Int32)?) {
        if byteFallback {
            let utf8 = Array(String(scalar).utf8)
            let ids = utf8.map { byteFallbackIDs[Int($0)] }
            if !ids.contains(-1) {
                for id in ids { appendSymbol(id, length: 1, to: &symbols) }
                return
            }
        }
        guard let unknownID = unknownTokenID else { return }
        if let current = pending {
            if fusesUnknownTokens {
                pending = (current.id, current.length + length)
            } else {
                appendSymbol(current.id, length: current.length, to: &symbols)
                pending = (unknownID, length)
            }
        } else {
            pending = (unknownID, length)
        }
    }

    /// Decodes the scalar starting at `index` of valid UTF-8.
    @inline(__always)
    static func decodeScalar(_ bytes: [UInt8], at index: Int) -> (Unicode.Scalar, Int) {
        let lead = UInt32(bytes[index])
        var value: UInt32
        var length: Int
        if lead < 0x80 { return (Unicode.Scalar(UInt8(lead)), 1) }
        if lead < 0xE0 { value = lead & 0x1F; length = 2 } else if lead < 0xF0 { value = lead & 0x0F; length = 3 } else { value = lead & 0x07; length = 4 }
        var k = 1
        while k < length, index + k < bytes.count {
            value = value << 6 | (UInt32(bytes[index + k]) & 0x3F)
            k += 1
        }
        return (Unicode.Scalar(value) ?? "\u{FFFD}", length)
    }

    private struct QueuedMerge {
        let rank: Int32
        let position: Int32
        let newID: Int32

        @inline(__always)
        func precedes(_ other: QueuedMerge) -> Bool {
            rank != other.rank ? rank < other.rank : position < other.position
        }
    }

    /// Hugging Face's `Word::merge_all` without dropout.
    private func mergeAll(_ symbols: inout [Symbol]) {
        guard symbols.count > 1 else { return }
        var heap: [QueuedMerge] = []
        heap.reserveCapacity(symbols.count)
        for index in 0..<(symbols.count - 1) {
            if let merge = merges[BPEModel.pairKey(symbols[index].id, symbols[index + 1].id)] {
                BPEModel.push(QueuedMerge(rank: merge.rank, position: Int32(index), newID: merge.newID), onto: &heap)
            }
        }
        while let top = BPEModel.pop(&heap) {
            let position = Int(top.position)
            let current = symbols[position]
            if current.length == 0 || current.next == -1 { continue }
            let nextPosition = Int(current.next)
            let right = symbols[nextPosition]
            guard let merge = merges[BPEModel.pairKey(current.id, right.id)], merge.newID == top.newID else { continue }
            symbols[position].id = top.newID
            symbols[position].length += right.length
            symbols[position].next = right.next
            symbols[nextPosition].length = 0
            if right.next > -1, Int(right.next) < symbols.count {
                symbols[Int(right.next)].previous = Int32(position)
            }
            let merged = symbols[position]
            if merged.previous >= 0 {
                let previous = symbols[Int(merged.previous)]
                if let newMerge = merges[BPEModel.pairKey(previous.id, merged.id)] {
                    BPEModel.push(QueuedMerge(rank: newMerge.rank, position: merged.previous, newID: newMerge.newID), onto: &heap)
                }
            }
            if merged.next >= 0, Int(merged.next) < symbols.count {
                let next = symbols[Int(merged.next)]
                if let newMerge = merges[BPEModel.pairKey(merged.id, next.id)] {
                    BPEModel.push(QueuedMerge(rank: newMerge.rank, position: Int32(position), newID: newMerge.newID), onto: &heap)
                }
            }
        }
    }

    private static func push(_ item: QueuedMerge, onto heap: inout [QueuedMerge]) {
        heap.append(item)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private static func pop(_ heap: inout [QueuedMerge]) -> QueuedMerge? {
        guard let top = heap.first else { return nil }
        let last = heap.removeLast()
        guard !heap.isEmpty else { return top }
        heap[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { break }
            var best = left
            if left + 1 < heap.count, heap[left + 1].precedes(heap[left]) { best = left + 1 }
            guard heap[best].precedes(heap[parent]) else { break }
            heap.swapAt(best, parent)
            parent = best
        }
        return top
    }
}

/// A pre-token of at most 15 bytes packed into two words, so that the cache compares and hashes it
/// without following a pointer (most pre-tokens are this short).
struct PackedWord: Hashable, Sendable {
    let low: UInt64
    let high: UInt64

    init?(_ bytes: [UInt8]) {
        guard bytes.count <= 15 else { return nil }
        var low: UInt64 = 0
        var high = UInt64(bytes.count) << 56
        for (index, byte) in bytes.enumerated() {
            if index < 8 { low |= UInt64(byte) << (8 * UInt64(index)) } else { high |= UInt64(byte) << (8 * UInt64(index - 8)) }
        }
        self.low = low
        self.high = high
    }
}

/// Results of BPE per pre-token, shared by all encodes of one tokenizer. Bounded: once full it stops
/// storing (as Hugging Face's cache does), so memory cannot grow without limit.
///
/// `@unchecked Sendable`: every access to the two dictionaries holds `lock`.
final class BPEWordCache: @unchecked Sendable {
    private let lock = NSLock()
    private var short: [PackedWord: [ModelToken]] = [:]
    private var long: [ByteKey: [ModelToken]] = [:]
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    func value(for key: PackedWord) -> [ModelToken]? {
        lock.lock()
        defer { lock.unlock() }
        return short[key]
    }

    func value(for key: ByteKey) -> [ModelToken]? {
        lock.lock()
        defer { lock.unlock() }
        return long[key]
    }

    func store(_ tokens: [ModelToken], for key: PackedWord) {
        lock.lock()
        defer { lock.unlock() }
        if short.count < capacity { short[key] = tokens }
    }

    func store(_ tokens: [ModelToken], for key: ByteKey) {
        lock.lock()
        defer { lock.unlock() }
        if long.count < capacity { long[key] = tokens }
    }
}
