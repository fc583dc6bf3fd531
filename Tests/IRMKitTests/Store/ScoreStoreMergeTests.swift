import Foundation
import XCTest
@testable import IRMKit

/// `ScoreStoreMerge`: the shards' stores merged into one hold the same block files, byte for byte,
/// as one store written unsharded; and every way a merge can go wrong is an error that names it.
final class ScoreStoreMergeTests: XCTestCase {
    private static let checkpoint = String(repeating: "ab", count: 32)

    private func sequences(_ groups: Int) -> [ScoringSample] {
        (0..<groups).flatMap { g in
            (0..<(1 + g % 3)).map { r in
                ScoringSample(name: "g\(g)r\(r)", promptIDs: [Int32(g), 7], responseIDs: (0...(g + r) % 5).map { Int32($0) })
            }
        }
    }

    private func key(_ data: [ScoringSample], version: String = "0.1.0") -> ScoreStore.Key {
        ScoreStore.Key(checkpointSHA256s: [Self.checkpoint], dataSHA256: ScoreStore.Key.dataSHA256(of: data), convention: "trl",
                       irmVersion: version, kind: .logprobs)
    }

    /// The log-probs a block "scores": a fixed function of the sample index.
    private func columns(_ block: Range<Int>, _ data: [ScoringSample]) -> ScoreStore.Columns {
        ScoreStore.Columns(["logprob": .raggedFloat64(ScoreStore.RaggedRows(lists: block.map { i in
            (0..<data[i].responseIDs.count).map { t -> Double? in t == 0 && i % 4 == 0 ? nil : -Double(i) / 7 - Double(t) * 0.3 }
        }))])
    }

    /// Writes shard `k` of `n` (or everything with `shard` nil) into the store at `directory`, with
    /// its shard record; returns the entry.
    @discardableResult
    private func score(_ data: [ScoringSample], shard: Shard?, into directory: URL, version: String = "0.1.0",
                       dataFile: String = String(repeating: "0", count: 64)) throws -> ScoreStore.Entry {
        let plan = ShardPlan(data)
        let entry = try ScoreStore(directory: directory).entry(key(data, version: version), blocks: plan.blocks, schema: .logprobs)
        for block in shard.map({ Array(plan.blocks[plan.blockIndices(of: $0)]) }) ?? plan.blocks {
            try entry.write(block: block, columns: columns(block, data))
        }
        if let shard {
            try ShardRecord(command: "analyze", shard: shard, entries: [entry.directory.lastPathComponent], plan: plan,
                            sequencesSHA256: ScoreStore.Key.dataSHA256(of: data), dataSHA256: dataFile, convention: "trl",
                            irmVersion: version, inputs: [.init(role: "after", path: "after.h5", sha256: Self.checkpoint)],
                            threads: 1, tokens: 0, seconds: 0).write(in: directory)
        }
        return entry
    }

    private func blockFiles(_ directory: URL) throws -> [String: Data] {
        try Fixtures.files(in: directory).filter { $0.key.contains("/block-") }
    }

    func testMergedShardsHoldTheUnshardedBlockFilesByteForByte() throws {
        let work = try Fixtures.temporaryDirectory(for: self)
        let data = sequences(40)
        let whole = work.appendingPathComponent("whole")
        try score(data, shard: nil, into: whole)
        let shardStores = try (0..<3).map { k -> URL in
            let url = work.appendingPathComponent("shard-\(k)")
            try score(data, shard: Shard(index: k, count: 3), into: url)
            return url
        }
        let merged = work.appendingPathComponent("merged")
        let summary = try ScoreStoreMerge.merge(sources: shardStores.reversed(), into: merged)
        XCTAssertEqual(summary.shards, 3)
        XCTAssertEqual(summary.copiedBlocks, ShardPlan(data).blocks.count)
        XCTAssertEqual(try blockFiles(merged), try blockFiles(whole))
        XCTAssertFalse(try blockFiles(whole).isEmpty)
        let entry = try ScoreStore(directory: merged).entry(key(data), blocks: ShardPlan(data).blocks, schema: .logprobs)
        XCTAssertTrue(entry.isComplete)
        XCTAssertEqual(try entry.read().raggedFloat64("logprob").values.map(\.bitPattern),
                       try columns(0..<data.count, data).raggedFloat64("logprob").values.map(\.bitPattern))
        // Merging again copies nothing; merging into one of the shard stores works too.
        XCTAssertEqual(try ScoreStoreMerge.merge(sources: shardStores, into: merged).copiedBlocks, 0)
        XCTAssertEqual(try ScoreStoreMerge.merge(sources: shardStores, into: shardStores[0]).presentBlocks,
                       ShardPlan(data).blockIndices(of: try Shard(index: 0, count: 3)).count)
        XCTAssertEqual(try blockFiles(shardStores[0]), try blockFiles(whole))
    }

    func testAMissingShardIsListedAndNothingIsWritten() throws {
        let work = try Fixtures.temporaryDirectory(for: self)
        let data = sequences(60)
        let stores = try [0, 2].map { k -> URL in
            let url = work.appendingPathComponent("shard-\(k)")
            try score(data, shard: Shard(index: k, count: 5), into: url)
            return url
        }
        let merged = work.appendingPathComponent("merged")
        XCTAssertThrowsError(try ScoreStoreMerge.merge(sources: stores, into: merged)) { error in
            XCTAssertTrue("\(error)".contains("shards 1, 3, 4 of 5 are missing"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: merged.path), "a failed merge writes nothing")
        XCTAssertThrowsError(try ScoreStoreMerge.merge(sources: [work.appendingPathComponent("empty-\(UUID())")], into: merged))
        let empty = work.appendingPathComponent("no-records")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        XCTAssertThrowsError(try ScoreStoreMerge.merge(sources: [empty], into: merged)) { error in
            XCTAssertTrue("\(error)".contains("no shard records"), "\(error)")
        }
    }

    func testShardsOfDifferentRunsAreRefusedNamingTheDifference() throws {
        let work = try Fixtures.temporaryDirectory(for: self)
        let data = sequences(30)
        let a = work.appendingPathComponent("a"), b = work.appendingPathComponent("b"), c = work.appendingPathComponent("c")
        try score(data, shard: Shard(index: 0, count: 2), into: a)
        var other = data
        other[5].responseIDs.append(99)
        try score(other, shard: Shard(index: 1, count: 2), into: b)
        XCTAssertThrowsError(try ScoreStoreMerge.merge(sources: [a, b], into: work.appendingPathComponent("m"))) { error in
            XCTAssertTrue("\(error)".contains("differ in the data"), "\(error)")
        }
        try score(data, shard: Shard(index: 1, count: 2), into: c, version: "0.2.0")
        XCTAssertThrowsError(try ScoreStoreMerge.merge(sources: [a, c], into: work.appendingPathComponent("m"))) { error in
            XCTAssertTrue("\(error)".contains("differ in the irm version: 0.1.0 against 0.2.0"), "\(error)")
        }
        let d = work.appendingPathComponent("d")
        try score(data, shard: Shard(index: 1, count: 3), into: d)
        XCTAssertThrowsError(try ScoreStoreMerge.merge(sources: [a, d], into: work.appendingPathComponent("m"))) { error in
            XCTAssertTrue("\(error)".contains("runs of 2 and of 3 shards"), "\(error)")
        }
    }

    func testADamagedOrMissingBlockNamesTheShardToRunAgain() throws {
        let work = try Fixtures.temporaryDirectory(for: self)
        let data = sequences(30)
        let stores = try (0..<2).map { k -> URL in
            let url = work.appendingPathComponent("shard-\(k)")
            try score(data, shard: Shard(index: k, count: 2), into: url)
            return url
        }
        let victim = try XCTUnwrap(try blockFiles(stores[1]).keys.sorted().last)
        let url = stores[1].appendingPathComponent(victim)
        var bytes = try Data(contentsOf: url)
        bytes[bytes.count - 20] ^= 0xFF
        try bytes.write(to: url)
        let merged = work.appendingPathComponent("merged")
        XCTAssertThrowsError(try ScoreStoreMerge.merge(sources: stores, into: merged)) { error in
            XCTAssertTrue("\(error)".contains("shard 1: \(url.path)"), "\(error)")
            XCTAssertTrue("\(error)".contains("run shard 1 again"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: merged.path), "nothing is merged when a block is bad")
        try FileManager.default.removeItem(at: url)
        XCTAssertThrowsError(try ScoreStoreMerge.merge(sources: stores, into: merged)) { error in
            XCTAssertTrue("\(error)".contains("is missing, though the shard's record"), "\(error)")
        }
    }

    func testADamagedShardRecordIsAnErrorNamingIt() throws {
        let work = try Fixtures.temporaryDirectory(for: self)
        let data = sequences(10)
        let store = work.appendingPathComponent("s")
        try score(data, shard: Shard(index: 0, count: 1), into: store)
        let record = try XCTUnwrap(ShardRecord.all(in: store).first).url
        for damage in ["{", "[]", "{\"format\": \"irm-shard-record\", \"format_version\": 1}"] {
            try Data(damage.utf8).write(to: record)
            XCTAssertThrowsError(try ScoreStoreMerge.merge(sources: [store], into: work.appendingPathComponent("m"))) { error in
                XCTAssertTrue("\(error)".contains(record.path), "\(damage): \(error)")
            }
        }
    }
}
