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

        init(rank: Int32, newID: Int32) {
            self.rank = rank
            self.newID = newID
        }

        @inline(__always)
        init(packed: UInt64) {
            rank = Int32(truncatingIfNeeded: packed >> 32)
            newID = Int32(truncatingIfNeeded: packed)
        }

        var packed: UInt64 { UInt64(UInt32(bitPattern: rank)) << 32 | UInt64(UInt32(bitPattern: newID)) }
    }

    /// Token strings by id (nil where the vocabulary has a gap).
    let tokenForID: [String?]
    private let idForToken: [ByteKey: Int32]
    /// Ids keyed by the bytes a byte-level token spells (built only for byte-level tokenizers).
    private let idForByteLevelBytes: [ByteKey: Int32]
    /// Merges keyed by `pairKey(left, right)`, values `Merge.packed`.
    private let merges: IntegerHashTable
    /// The id of each byte's alphabet scalar, or -1.
    private let byteLevelSymbolIDs: [Int32]
    /// Ids of single-scalar tokens, keyed by scalar value.
    private let idForScalar: IntegerHashTable
    /// With `ignore_merges`: ids of whole tokens of at most 15 bytes (as the model reads pieces: the
    /// bytes a byte-level token spells, else the token's UTF-8), looked up before any merging.
    private let wholeTokenIDs: PackedWordTable
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

        var idForScalar = IntegerHashTable()
        for (token, id) in entries {
            var scalars = token.unicodeScalars.makeIterator()
            if let first = scalars.next(), scalars.next() == nil { idForScalar.set(UInt64(id), for: UInt64(first.value)) }
        }
        self.idForScalar = idForScalar

        var byteLevelSymbolIDs = [Int32](repeating: -1, count: 256)
        var idForByteLevelBytes: [ByteKey: Int32] = [:]
        if byteLevel {
            for byte in 0..<256 {
                byteLevelSymbolIDs[byte] = idForScalar[UInt64(ByteLevelAlphabet.scalarForByte[byte].value)].map { Int32($0) } ?? -1
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
        var wholeTokenIDs = PackedWordTable()
        if ignoresMerges {
            for (key, id) in byteLevel ? idForByteLevelBytes : idForToken {
                if let packed = PackedWord(key.bytes) { wholeTokenIDs.set(UInt64(id), for: packed) }
            }
        }
        self.wholeTokenIDs = wholeTokenIDs

        let mergesNode = try node.requiredChild("merges")
        let mergeItems = try mergesNode.elements()
        var merges = IntegerHashTable(minimumCapacity: mergeItems.count)
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
            merges.set(Merge(rank: rank, newID: newID).packed, for: BPEModel.pairKey(leftID, rightID))
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

    /// Encodes pre-tokens given as byte ranges of `bytes` (valid UTF-8, each range whole scalars) and
    /// calls `emit(id, byteStart, byteEnd)` for each token in order, with positions in `bytes`. With
    /// `byteLevel`, each byte is read as its byte-level alphabet scalar (GPT-2 style); otherwise the
    /// bytes are read as scalars (SentencePiece style, with byte fallback and unknown-token handling).
    ///
    /// All pieces of a text go through one call so that the word cache's lock is taken once for a run
    /// of cache hits instead of once per piece; it is released while a miss is merged. `emit` runs
    /// with the lock held, so it must not call back into the model.
    func tokenize(_ bytes: [UInt8], pieces: [Range<Int>], byteLevel: Bool, _ emit: (Int32, Int, Int) -> Void) {
        bytes.withUnsafeBufferPointer { bytes in
            var symbols: [Symbol] = []
            var queueStorage: [QueuedMerge] = []
            var fresh: [ModelToken] = []
            cache.lock.lock()
            for piece in pieces where !piece.isEmpty {
                let packed = PackedWord(bytes, piece)
                if ignoresMerges, let whole = wholeTokenID(bytes, piece, packed: packed, byteLevel: byteLevel) {
                    emit(whole, piece.lowerBound, piece.upperBound)
                    continue
                }
                let longKey = packed == nil && piece.count < 256 ? ByteKey(Array(bytes[piece])) : nil
                let found: Bool
                if let packed {
                    found = cache.forEachToken(for: packed) { emit($0.id, piece.lowerBound + Int($0.byteStart), piece.lowerBound + Int($0.byteEnd)) }
                } else if let longKey {
                    found = cache.forEachToken(for: longKey) { emit($0.id, piece.lowerBound + Int($0.byteStart), piece.lowerBound + Int($0.byteEnd)) }
                } else {
                    found = false
                }
                if found { continue }

                cache.lock.unlock()
                symbols.removeAll(keepingCapacity: true)
                if byteLevel { appendByteLevelSymbols(bytes, piece, to: &symbols) } else { appendScalarSymbols(bytes, piece, to: &symbols) }
                mergeAll(&symbols, queueStorage: &queueStorage)
                fresh.removeAll(keepingCapacity: true)
                var position: Int32 = 0
                for symbol in symbols where symbol.length != 0 {
                    fresh.append(ModelToken(id: symbol.id, byteStart: position, byteEnd: position + symbol.length))
                    position += symbol.length
                }
                cache.lock.lock()
                if let packed { cache.store(fresh, for: packed) } else if let longKey { cache.store(fresh, for: longKey) }
                for token in fresh { emit(token.id, piece.lowerBound + Int(token.byteStart), piece.lowerBound + Int(token.byteEnd)) }
            }
            cache.lock.unlock()
        }
    }

    /// Encodes one pre-token given as UTF-8 bytes (see `tokenize(_:pieces:byteLevel:_:)`).
    func tokenize(_ bytes: [UInt8], byteLevel: Bool) -> [ModelToken] {
        var tokens: [ModelToken] = []
        tokenize(bytes, pieces: [0..<bytes.count], byteLevel: byteLevel) { id, start, end in
            tokens.append(ModelToken(id: id, byteStart: Int32(start), byteEnd: Int32(end)))
        }
        return tokens
    }

    /// With `ignore_merges`, the id of the token that spells the whole piece, if there is one.
    @inline(__always)
    private func wholeTokenID(_ bytes: UnsafeBufferPointer<UInt8>, _ piece: Range<Int>, packed: PackedWord?, byteLevel: Bool) -> Int32? {
        if let packed { return wholeTokenIDs[packed].map { Int32(truncatingIfNeeded: $0) } }
        let key = ByteKey(Array(bytes[piece]))
        return byteLevel ? idForByteLevelBytes[key] : idForToken[key]
    }

    private struct Symbol {
        var id: Int32
        var previous: Int32
        var next: Int32
        var length: Int32
    }

    @inline(__always)
    private func appendSymbol(_ id: Int32, length: Int32, to symbols: inout [Symbol]) {
        let count = Int32(symbols.count)
        if count > 0 { symbols[Int(count) - 1].next = count }
        symbols.append(Symbol(id: id, previous: count - 1, next: -1, length: length))
    }

    private func appendByteLevelSymbols(_ bytes: UnsafeBufferPointer<UInt8>, _ piece: Range<Int>, to symbols: inout [Symbol]) {
        var pendingUnknown: (id: Int32, length: Int32)?
        for byte in bytes[piece] {
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
    }

    private func appendScalarSymbols(_ bytes: UnsafeBufferPointer<UInt8>, _ piece: Range<Int>, to symbols: inout [Symbol]) {
        var pendingUnknown: (id: Int32, length: Int32)?
        var index = piece.lowerBound
        while index < piece.upperBound {
            let (scalar, length) = BPEModel.decodeScalar(bytes, at: index, end: piece.upperBound)
            index += length
            if let value = idForScalar[UInt64(scalar.value)] {
                let id = Int32(truncatingIfNeeded: value)
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

    /// Decodes the scalar starting at `index` of valid UTF-8 that ends at `end`.
    @inline(__always)
    static func decodeScalar(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int, end: Int) -> (Unicode.Scalar, Int) {
        let lead = UInt32(bytes[index])
        var value: UInt32
        var length: Int
        if lead < 0x80 { return (Unicode.Scalar(UInt8(lead)), 1) }
        if lead < 0xE0 { value = lead & 0x1F; length = 2 } else if lead < 0xF0 { value = lead & 0x0F; length = 3 } else { value = lead & 0x07; length = 4 }
        var k = 1
        while k < length, index + k < end {
            value = value << 6 | (UInt32(bytes[index + k]) & 0x3F)
            k += 1
        }
        return (Unicode.Scalar(value) ?? "\u{FFFD}", length)
    }

    /// A merge waiting in the queue. `order` is `rank << 32 | position`, so one integer comparison
    /// orders by rank and then by leftmost position, as Hugging Face's queue does.
    private struct QueuedMerge {
        let order: UInt64
        let newID: Int32

        init(rank: Int32, position: Int32, newID: Int32) {
            order = UInt64(UInt32(bitPattern: rank)) << 32 | UInt64(UInt32(bitPattern: position))
            self.newID = newID
        }

        var position: Int { Int(order & 0xFFFF_FFFF) }
    }

    /// A binary min-heap of queued merges in caller-provided storage that is large enough for every
    /// push (see `mergeAll`), so pushing never reallocates.
    private struct MergeQueue {
        let storage: UnsafeMutableBufferPointer<QueuedMerge>
        var count = 0

        @inline(__always)
        mutating func push(_ item: QueuedMerge) {
            var child = count
            count += 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard item.order < storage[parent].order else { break }
                storage[child] = storage[parent]
                child = parent
            }
            storage[child] = item
        }

        @inline(__always)
        mutating func pop() -> QueuedMerge? {
            guard count > 0 else { return nil }
            let top = storage[0]
            count -= 1
            guard count > 0 else { return top }
            let last = storage[count]
            var parent = 0
            while true {
                let left = 2 * parent + 1
                guard left < count else { break }
                var best = left
                if left + 1 < count, storage[left + 1].order < storage[left].order { best = left + 1 }
                guard storage[best].order < last.order else { break }
                storage[parent] = storage[best]
                parent = best
            }
            storage[parent] = last
            return top
        }
    }

    /// Hugging Face's `Word::merge_all` without dropout. `queueStorage` is scratch space reused
    /// between calls.
    private func mergeAll(_ symbolArray: inout [Symbol], queueStorage: inout [QueuedMerge]) {
        let symbolCount = symbolArray.count
        guard symbolCount > 1 else { return }
        // The first pass queues at most count - 1 merges and each of the at most count - 1 merges
        // that happen queues at most two more.
        let capacity = 3 * symbolCount
        if queueStorage.count < capacity {
            queueStorage = Array(repeating: QueuedMerge(rank: 0, position: 0, newID: 0), count: capacity)
        }
        symbolArray.withUnsafeMutableBufferPointer { symbols in
            queueStorage.withUnsafeMutableBufferPointer { storage in
                var queue = MergeQueue(storage: storage)
                for index in 0..<(symbolCount - 1) {
                    if let merge = lookUpMerge(symbols[index].id, symbols[index + 1].id) {
                        queue.push(QueuedMerge(rank: merge.rank, position: Int32(index), newID: merge.newID))
                    }
                }
                while let top = queue.pop() {
                    let position = top.position
                    let current = symbols[position]
                    if current.length == 0 || current.next == -1 { continue }
                    let nextPosition = Int(current.next)
                    let right = symbols[nextPosition]
                    guard let merge = lookUpMerge(current.id, right.id), merge.newID == top.newID else { continue }
                    symbols[position].id = top.newID
                    symbols[position].length += right.length
                    symbols[position].next = right.next
                    symbols[nextPosition].length = 0
                    if right.next > -1, Int(right.next) < symbolCount {
                        symbols[Int(right.next)].previous = Int32(position)
                    }
                    let merged = symbols[position]
                    if merged.previous >= 0 {
                        let previous = symbols[Int(merged.previous)]
                        if let newMerge = lookUpMerge(previous.id, merged.id) {
                            queue.push(QueuedMerge(rank: newMerge.rank, position: merged.previous, newID: newMerge.newID))
                        }
                    }
                    if merged.next >= 0, Int(merged.next) < symbolCount {
                        let next = symbols[Int(merged.next)]
                        if let newMerge = lookUpMerge(merged.id, next.id) {
                            queue.push(QueuedMerge(rank: newMerge.rank, position: Int32(position), newID: newMerge.newID))
                        }
                    }
                }
            }
        }
    }

    @inline(__always)
    private func lookUpMerge(_ left: Int32, _ right: Int32) -> Merge? {
        merges[BPEModel.pairKey(left, right)].map(Merge.init(packed:))
    }
}

/// Results of BPE per pre-token, shared by all encodes of one tokenizer. Bounded: once full it stops
/// storing (as Hugging Face's cache does), so memory cannot grow without limit.
///
/// `@unchecked Sendable`: callers hold `lock` around every method call (`BPEModel.tokenize` takes it
/// once for a run of lookups).
final class BPEWordCache: @unchecked Sendable {
    let lock = NSLock()
    /// Words of at most 15 bytes; the value is `start << 32 | count` in `shortTokens`.
    private var short = PackedWordTable()
    private var shortTokens: [ModelToken] = []
    private var long: [ByteKey: [ModelToken]] = [:]
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    /// Calls `body` with each cached token of `key`; false when `key` is not cached. Hold `lock`.
    @inline(__always)
    func forEachToken(for key: PackedWord, _ body: (ModelToken) -> Void) -> Bool {
        guard let entry = short[key] else { return false }
        let start = Int(entry >> 32)
        let end = start + Int(entry & 0xFFFF_FFFF)
        shortTokens.withUnsafeBufferPointer { tokens in
            for index in start..<end { body(tokens[index]) }
        }
        return true
    }

    /// Calls `body` with each cached token of `key`; false when `key` is not cached. Hold `lock`.
    func forEachToken(for key: ByteKey, _ body: (ModelToken) -> Void) -> Bool {
        guard let tokens = long[key] else { return false }
        for token in tokens { body(token) }
        return true
    }

    /// Hold `lock`.
    func store(_ tokens: [ModelToken], for key: PackedWord) {
        guard short.count < capacity, short[key] == nil else { return }
        short.set(UInt64(shortTokens.count) << 32 | UInt64(tokens.count), for: key)
        shortTokens += tokens
    }

    /// Hold `lock`.
    func store(_ tokens: [ModelToken], for key: ByteKey) {
        if long.count < capacity { long[key] = tokens }
    }
}
