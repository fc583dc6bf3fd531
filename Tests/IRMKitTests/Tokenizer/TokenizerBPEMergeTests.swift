import Foundation
import XCTest
@testable import IRMKit

/// The fast BPE paths against plain references: the open-addressing tables against `Dictionary`, and
/// `BPEModel` (priority-queue merge, word cache, flat merge table) against the quadratic merge loop
/// "merge the lowest-ranked adjacent pair, leftmost first, until none is left", on seeded random words.
final class TokenizerBPEMergeTests: XCTestCase {
    func testIntegerHashTableAgreesWithDictionary() {
        var random = SeededRandom(seed: 7)
        var table = IntegerHashTable()
        var reference: [UInt64: UInt64] = [:]
        for step in 0..<20_000 {
            // A small key space forces overwrites and long probe runs; high bits vary too.
            let key = UInt64(random.index(below: 5_000)) << (step % 2 == 0 ? 0 : 40)
            let value = random.next()
            table.set(value, for: key)
            reference[key] = value
        }
        XCTAssertEqual(table.count, reference.count)
        for (key, value) in reference { XCTAssertEqual(table[key], value) }
        for _ in 0..<5_000 {
            let key = UInt64(random.index(below: 10_000)) << 20 | 1
            XCTAssertEqual(table[key], reference[key])
        }
    }

    func testPackedWordTableAgreesWithDictionary() {
        var random = SeededRandom(seed: 8)
        var table = PackedWordTable()
        var reference: [[UInt8]: UInt64] = [:]
        for _ in 0..<20_000 {
            let length = 1 + random.index(below: PackedWord.maximumLength)
            // Few distinct bytes, so words collide and share prefixes; zero bytes included.
            let word = (0..<length).map { _ in UInt8(random.index(below: 3)) }
            guard let packed = PackedWord(word) else { return XCTFail("a \(length)-byte word did not pack") }
            let value = random.next()
            table.set(value, for: packed)
            reference[word] = value
        }
        XCTAssertEqual(table.count, reference.count)
        for (word, value) in reference { XCTAssertEqual(PackedWord(word).flatMap { table[$0] }, value) }
        XCTAssertNil(PackedWord([UInt8](repeating: 1, count: 16)), "16 bytes do not fit")
        XCTAssertNil(PackedWord([]), "the empty word is not a key")
        XCTAssertNotEqual(PackedWord([0]), PackedWord([0, 0]), "the length is part of the key")
    }

    func testMergesAgreeWithTheQuadraticReference() throws {
        for (name, byteLevel) in [("gpt2", true), ("llama2-style", false)] {
            let root = try JSONValue.parse(try Data(contentsOf: Fixtures.url("tokenizers/\(name).tokenizer.json")), source: name)
            guard let modelValue = root["model"], let vocab = modelValue["vocab"]?.objectValue,
                  let mergeList = modelValue["merges"]?.arrayValue else {
                return XCTFail("\(name): expected model.vocab and model.merges")
            }
            let model = try BPEModel(node: TokenizerConfigNode(value: modelValue, path: "model", source: name), byteLevel: byteLevel)
            let reference = try QuadraticBPE(vocab: vocab, merges: mergeList, byteLevel: byteLevel)

            // Words made of whole vocabulary tokens, so that long chains of merges fire.
            let pieces: [[UInt8]] = vocab.keys.sorted().compactMap { token in
                let bytes = byteLevel ? ByteLevelAlphabet.decode(token) : Array(token.utf8)
                guard let bytes, !bytes.isEmpty, reference.symbols(bytes) != nil else { return nil }
                return bytes
            }
            XCTAssertGreaterThan(pieces.count, 500, "\(name): usable vocabulary pieces")
            var random = SeededRandom(seed: 99)
            var checked = 0
            for _ in 0..<1_000 {
                // Lengths cover the packed cache (≤15 bytes), the long cache (<256) and no cache.
                let target = [8, 15, 40, 300][random.index(below: 4)]
                var word: [UInt8] = []
                while word.count < target { word += pieces[random.index(below: pieces.count)] }
                guard let symbols = reference.symbols(word) else { return XCTFail("\(name): reference rejected a word") }
                let expected = reference.merge(symbols)
                let first = model.tokenize(word, byteLevel: byteLevel).map(\.id)
                let cached = model.tokenize(word, byteLevel: byteLevel).map(\.id)
                XCTAssertEqual(first, expected, "\(name): \(word.count)-byte word")
                XCTAssertEqual(cached, expected, "\(name): \(word.count)-byte word, second (cached) encode")
                checked += 1
            }
            XCTAssertEqual(checked, 1_000)
        }
    }
}

/// The textbook BPE loop over ids. It equals Hugging Face's `merge_all` when no two merges produce
/// the same token, which `init` checks.
private struct QuadraticBPE {
    let idForToken: [String: Int32]
    let ranks: [UInt64: (rank: Int, newID: Int32)]
    let byteLevel: Bool

    init(vocab: [String: JSONValue], merges: [JSONValue], byteLevel: Bool) throws {
        var idForToken: [String: Int32] = [:]
        for (token, value) in vocab { idForToken[token] = Int32(value.intValue ?? -1) }
        var ranks: [UInt64: (rank: Int, newID: Int32)] = [:]
        var produced = Set<Int32>()
        for (rank, merge) in merges.enumerated() {
            let parts = merge.arrayValue?.compactMap(\.stringValue) ?? merge.stringValue.map { $0.split(separator: " ").map(String.init) } ?? []
            guard parts.count == 2, let left = idForToken[parts[0]], let right = idForToken[parts[1]],
                  let newID = idForToken[parts[0] + parts[1]] else {
                throw IRMError("merge \(rank) is not a pair of vocabulary tokens")
            }
            guard produced.insert(newID).inserted else { throw IRMError("two merges produce token \(newID)") }
            if ranks[Self.key(left, right)] == nil { ranks[Self.key(left, right)] = (rank, newID) }
        }
        self.idForToken = idForToken
        self.ranks = ranks
        self.byteLevel = byteLevel
    }

    /// The initial symbols: one per byte (byte-level) or per scalar, or nil if one is not a token.
    func symbols(_ bytes: [UInt8]) -> [Int32]? {
        var result: [Int32] = []
        if byteLevel {
            for byte in bytes {
                guard let id = idForToken[String(ByteLevelAlphabet.scalarForByte[Int(byte)])] else { return nil }
                result.append(id)
            }
        } else {
            guard let text = String(validating: bytes, as: UTF8.self) else { return nil }
            for scalar in text.unicodeScalars {
                guard let id = idForToken[String(scalar)] else { return nil }
                result.append(id)
            }
        }
        return result
    }

    static func key(_ left: Int32, _ right: Int32) -> UInt64 { UInt64(UInt32(left)) << 32 | UInt64(UInt32(right)) }

    func merge(_ start: [Int32]) -> [Int32] {
        var symbols = start
        while true {
            var best: (rank: Int, position: Int, newID: Int32)?
            for position in 0..<max(symbols.count - 1, 0) {
                if let merge = ranks[Self.key(symbols[position], symbols[position + 1])], merge.rank < (best?.rank ?? .max) {
                    best = (merge.rank, position, merge.newID)
                }
            }
            guard let best else { return symbols }
            symbols[best.position] = best.newID
            symbols.remove(at: best.position + 1)
        }
    }
}
