import Foundation
import XCTest
@testable import IRMKit

final class ScoreStoreTests: XCTestCase {
    private typealias Store = ScoreStore

    private static let checkpoint = String(repeating: "ab", count: 32)
    private static let adapter = String(repeating: "cd", count: 32)
    private static let data = String(repeating: "01", count: 32)

    private func key(_ kind: Store.Kind = .logprobs, convention: String = "trl", version: String = "0.1.0",
                     data: String = ScoreStoreTests.data, options: [String: String] = [:]) -> Store.Key {
        Store.Key(checkpointSHA256s: [Self.checkpoint], dataSHA256: data, convention: convention,
                  irmVersion: version, kind: kind, options: options)
    }

    // MARK: Fixtures

    /// Every column layout, with the awkward cases: nil tokens, zero-length responses, NaN in a vector.
    private static let mixedSchema = Store.Schema([
        Store.ColumnSpec("logprob", .ragged(.float64)),
        Store.ColumnSpec("hidden", .ragged(.float32, width: 3)),
        Store.ColumnSpec("pooled", .vectors(.float64, width: 2)),
        Store.ColumnSpec("small", .vectors(.float32, width: 4)),
    ])

    private static let mixedLists: [[Double?]] = [
        [nil, -1.25, -0.5], [], [-3.0], [nil], [-0.125, -7.5, -2.0, -1.0e-300], [],
        [-1234.5678], [-2.5, nil, -0.75],
    ]

    private static func mixedColumns(_ range: Range<Int>) throws -> Store.Columns {
        let lists = Array(mixedLists[range])
        let hidden = range.map { sample -> [Float] in
            let rows = lists[sample - range.lowerBound].count
            return (0..<(rows * 3)).map { Float(sample) * 10 + Float($0) * 0.25 - 1 }
        }
        let pooled = range.map { sample in [Double(sample) / 3, sample == 3 ? .nan : -Double(sample)] }
        let small = range.map { sample in (0..<4).map { Float(sample * 4 + $0) / 7 } }
        return Store.Columns([
            "logprob": .raggedFloat64(Store.RaggedRows(lists: lists)),
            "hidden": .raggedFloat32(try Store.RaggedRows(width: 3, samples: hidden)),
            "pooled": .vectorsFloat64(try Store.Vectors(width: 2, vectors: pooled)),
            "small": .vectorsFloat32(try Store.Vectors(width: 4, vectors: small)),
        ])
    }

    /// A column's offsets and value bit patterns, so that NaN compares equal to itself.
    private func bits(_ data: Store.ColumnData?) -> (offsets: [Int], values: [UInt64], width: Int)? {
        switch data {
        case .raggedFloat64(let c)?: (c.offsets, c.values.map(\.bitPattern), c.width)
        case .raggedFloat32(let c)?: (c.offsets, c.values.map { UInt64($0.bitPattern) }, c.width)
        case .vectorsFloat64(let c)?: ([], c.values.map(\.bitPattern), c.width)
        case .vectorsFloat32(let c)?: ([], c.values.map { UInt64($0.bitPattern) }, c.width)
        case nil: nil
        }
    }

    private func assertSameBits(_ a: Store.Columns, _ b: Store.Columns, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(Set(a.byName.keys), Set(b.byName.keys), file: file, line: line)
        for name in a.byName.keys {
            let x = bits(a[name]), y = bits(b[name])
            XCTAssertEqual(x?.offsets, y?.offsets, "offsets of \(name)", file: file, line: line)
            XCTAssertEqual(x?.values, y?.values, "values of \(name)", file: file, line: line)
            XCTAssertEqual(x?.width, y?.width, "width of \(name)", file: file, line: line)
        }
    }

    private func newStore() throws -> Store {
        try Store(directory: Fixtures.temporaryDirectory(for: self).appendingPathComponent("store"))
    }

    private func mixedEntry(_ store: Store, blockSize: Int = 3) throws -> Store.Entry {
        try store.entry(key(), sampleCount: Self.mixedLists.count, blockSize: blockSize, schema: Self.mixedSchema)
    }

    private func writeAll(_ entry: Store.Entry) throws {
        for block in entry.missingBlocks() { try entry.write(block: block, columns: Self.mixedColumns(block)) }
    }

    private func bytes(_ url: URL) throws -> Data { try Data(contentsOf: url) }

    // MARK: Round trips

    func testEveryColumnLayoutRoundTripsBitForBitIncludingNilTokensAndEmptyResponses() throws {
        let store = try newStore()
        let entry = try mixedEntry(store)
        XCTAssertEqual(entry.blocks, [0..<3, 3..<6, 6..<8])
        XCTAssertEqual(entry.missingBlocks(), entry.blocks)
        XCTAssertFalse(entry.isComplete)
        try writeAll(entry)
        XCTAssertTrue(entry.isComplete)
        XCTAssertEqual(entry.warnings, [])

        let reopened = try mixedEntry(store)
        XCTAssertEqual(reopened.missingBlocks(), [])
        let all = try reopened.read()
        assertSameBits(all, try Self.mixedColumns(0..<8))
        XCTAssertEqual(all.sampleCount, 8)
        let logprobs = try all.raggedFloat64("logprob")
        XCTAssertEqual(logprobs.lists, Self.mixedLists)
        XCTAssertEqual(logprobs.list(1), [])
        XCTAssertEqual(try all.raggedFloat32("hidden").rowCount(of: 4), 4)
        XCTAssertEqual(try all.raggedFloat32("hidden")[1].count, 0)
        XCTAssertTrue(try all.vectorsFloat64("pooled")[3].last!.isNaN)
        assertSameBits(try reopened.read(block: 3..<6), try Self.mixedColumns(3..<6))
        XCTAssertEqual(reopened.warnings, [])
        XCTAssertThrowsError(try all.vectorsFloat32("logprob")) { error in
            XCTAssertTrue("\(error)".contains("expected float32 vectors, found ragged float64"), "\(error)")
        }
    }

    func testSchemaPresetsRoundTrip() throws {
        let store = try newStore()
        let kl = try store.entry(key(.kl(base: Self.adapter)), sampleCount: 3, blockSize: 2, schema: .kl(addedRowMass: true))
        let klValues: [[Double?]] = [[nil, 0.5], [], [0.25, 1e-12]]
        let mass: [[Double?]] = [[nil, 1e-3], [], [0, 2e-4]]
        for block in kl.missingBlocks() {
            try kl.write(block: block, columns: Store.Columns([
                "kl": .raggedFloat64(Store.RaggedRows(lists: Array(klValues[block]))),
                "added_row_mass": .raggedFloat64(Store.RaggedRows(lists: Array(mass[block]))),
            ]))
        }
        let read = try kl.read()
        XCTAssertEqual(try read.raggedFloat64("kl").lists, klValues)
        XCTAssertEqual(try read.raggedFloat64("added_row_mass").lists, mass)

        let pooledSchema = Store.Schema.pooledHidden(width: 2, names: ["prompt", "response"], precision: .float32)
        let pooled = try store.entry(key(.pooledHidden), sampleCount: 2, blockSize: 8, schema: pooledSchema)
        try pooled.write(block: 0..<2, columns: Store.Columns([
            "prompt": .vectorsFloat32(try Store.Vectors(width: 2, vectors: [[1, 2], [3, 4]])),
            "response": .vectorsFloat32(try Store.Vectors(width: 2, vectors: [[5, 6], [7, 8]])),
        ]))
        XCTAssertEqual(try pooled.read().vectorsFloat32("response").values, [5, 6, 7, 8])

        let reward = try store.entry(key(.reward), sampleCount: 2, blockSize: 1, schema: .reward(labels: 1))
        try reward.write(block: 0..<1, columns: Store.Columns(["reward": .vectorsFloat64(try Store.Vectors(width: 1, values: [0.75]))]))
        try reward.write(block: 1..<2, columns: Store.Columns(["reward": .vectorsFloat64(try Store.Vectors(width: 1, values: [-2]))]))
        XCTAssertEqual(try reward.read().vectorsFloat64("reward").values, [0.75, -2])

        let hidden = try store.entry(key(.finalHidden), sampleCount: 1, schema: .finalHidden(width: 2))
        try hidden.write(block: 0..<1, columns: Store.Columns(["hidden": .raggedFloat32(try Store.RaggedRows(width: 2, samples: [[1, 2, 3, 4]]))]))
        XCTAssertEqual(try hidden.read().raggedFloat32("hidden").rowCount(of: 0), 2)
    }

    func testAnEmptyEntryIsCompleteAndReadsZeroSamples() throws {
        let entry = try newStore().entry(key(), sampleCount: 0, schema: .logprobs)
        XCTAssertEqual(entry.blocks, [])
        XCTAssertTrue(entry.isComplete)
        XCTAssertEqual(try entry.read().raggedFloat64("logprob").count, 0)
    }

    // MARK: Resume

    func testResumeComputesOnlyTheMissingBlocksAndGivesByteIdenticalFiles() throws {
        let uninterrupted = try newStore()
        let whole = try mixedEntry(uninterrupted, blockSize: 2)
        try writeAll(whole)

        let resumed = try newStore()
        let first = try mixedEntry(resumed, blockSize: 2)
        try first.write(block: 0..<2, columns: Self.mixedColumns(0..<2))
        try first.write(block: 4..<6, columns: Self.mixedColumns(4..<6))
        XCTAssertThrowsError(try first.read()) { error in
            XCTAssertTrue("\(error)".contains("2 of 4 blocks not computed (2..<4, 6..<8)"), "\(error)")
        }

        // A restarted run opens the entry afresh.
        let second = try mixedEntry(resumed, blockSize: 2)
        XCTAssertEqual(second.missingBlocks(), [2..<4, 6..<8])
        for block in second.missingBlocks() { try second.write(block: block, columns: Self.mixedColumns(block)) }
        XCTAssertTrue(second.isComplete)
        XCTAssertEqual(second.warnings, [])
        assertSameBits(try second.read(), try whole.read())

        let names = try FileManager.default.contentsOfDirectory(atPath: whole.directory.path).sorted()
        XCTAssertEqual(names, ["block-0-2.h5", "block-2-4.h5", "block-4-6.h5", "block-6-8.h5", "entry.h5"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: second.directory.path).sorted(), names)
        for name in names {
            XCTAssertEqual(try bytes(whole.directory.appendingPathComponent(name)),
                           try bytes(second.directory.appendingPathComponent(name)), name)
        }
    }

    func testTheSameInputsGiveByteIdenticalFilesWrittenAtDifferentTimes() throws {
        // HDF5 can store object modification times; irm's files must not depend on the clock.
        let a = try mixedEntry(try newStore())
        try writeAll(a)
        Thread.sleep(forTimeInterval: 1.1)
        let b = try mixedEntry(try newStore())
        try writeAll(b)
        for name in ["entry.h5"] + a.blocks.map({ a.blockFile($0).lastPathComponent }) {
            XCTAssertEqual(try bytes(a.directory.appendingPathComponent(name)), try bytes(b.directory.appendingPathComponent(name)), name)
        }
        // Rewriting a block in place (a duplicate from a concurrent writer) gives the same bytes.
        let before = try bytes(a.blockFile(3..<6))
        try a.write(block: 3..<6, columns: Self.mixedColumns(3..<6))
        XCTAssertEqual(try bytes(a.blockFile(3..<6)), before)
    }

    // MARK: Interrupted writes and damage

    func testLeftoverTemporaryFilesAndATruncatedBlockAreReportedAndRecomputed() throws {
        let store = try newStore()
        let entry = try mixedEntry(store)
        try writeAll(entry)
        let original = try bytes(entry.blockFile(3..<6))
        // A crash mid-copy: half of a valid block under its final name.
        try original.prefix(original.count / 2).write(to: entry.blockFile(3..<6))
        let host = ProcessIdentity.hostName
        let dead = entry.directory.appendingPathComponent(".block-6-8.h5.tmp-\(host)-2147483646-1a2b")
        let live = entry.directory.appendingPathComponent(".block-6-8.h5.tmp-\(host)-\(ProcessInfo.processInfo.processIdentifier)-3c4d")
        let otherHostFresh = entry.directory.appendingPathComponent(".block-0-3.h5.tmp-node-17.cluster-12-5e6f")
        let otherHostOld = entry.directory.appendingPathComponent(".entry.h5.tmp-node-17.cluster-13-7a8b")
        for url in [dead, live, otherHostFresh, otherHostOld] { try Data("partial".utf8).write(to: url) }
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3 * 24 * 3600)], ofItemAtPath: otherHostOld.path)

        let reopened = try mixedEntry(store)
        let removed = reopened.warnings.filter { $0.problem == .removedLeftoverTemporary }.map(\.file)
        XCTAssertEqual(Set(removed), [dead.path, otherHostOld.path])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dead.path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: otherHostOld.path))
        // Possibly still being written: left alone.
        XCTAssertTrue(FileManager.default.fileExists(atPath: live.path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: otherHostFresh.path))

        XCTAssertEqual(reopened.missingBlocks(), [3..<6])
        let truncated = reopened.warnings.filter { $0.problem == .unreadableBlock }
        XCTAssertEqual(truncated.map(\.file), [entry.blockFile(3..<6).path])
        XCTAssertTrue("\(truncated[0])".contains("block ignored and recomputed"), "\(truncated[0])")
        XCTAssertThrowsError(try reopened.read()) { error in
            XCTAssertTrue("\(error)".contains("1 unusable"), "\(error)")
        }
        try reopened.write(block: 3..<6, columns: Self.mixedColumns(3..<6))
        XCTAssertEqual(reopened.missingBlocks(), [])
        XCTAssertEqual(try bytes(entry.blockFile(3..<6)), original)
        assertSameBits(try reopened.read(), try Self.mixedColumns(0..<8))
    }

    func testABlockWhoseValuesDoNotMatchTheirChecksumIsRecomputed() throws {
        let store = try newStore()
        let entry = try mixedEntry(store)
        try writeAll(entry)
        // -1234.5678 is sample 6's only log-prob; change one byte of it inside the file.
        let url = entry.blockFile(6..<8)
        var contents = try bytes(url)
        let pattern = withUnsafeBytes(of: (-1234.5678).bitPattern.littleEndian) { Data($0) }
        let found = try XCTUnwrap(contents.range(of: pattern))
        contents[found.lowerBound] ^= 0x01
        try contents.write(to: url)

        let reopened = try mixedEntry(store)
        XCTAssertEqual(reopened.missingBlocks(), [6..<8])
        let warning = try XCTUnwrap(reopened.warnings.first { $0.problem == .checksumMismatch })
        XCTAssertEqual(warning.file, url.path)
        XCTAssertTrue(warning.detail.contains("/logprob/values: the values' SHA-256 is"), warning.detail)
        XCTAssertThrowsError(try reopened.read(block: 6..<8)) { error in
            XCTAssertTrue("\(error)".contains("must be computed again"), "\(error)")
        }
        try reopened.write(block: 6..<8, columns: Self.mixedColumns(6..<8))
        XCTAssertTrue(reopened.isComplete)
        assertSameBits(try reopened.read(), try Self.mixedColumns(0..<8))
    }

    func testBlocksOfAnotherKeyOrVersionOrWithBadOffsetsAreNotUsed() throws {
        let store = try newStore()
        let entry = try store.entry(key(), sampleCount: 4, blockSize: 2, schema: .logprobs)
        let other = try store.entry(key(convention: "separate"), sampleCount: 4, blockSize: 2, schema: .logprobs)
        let newer = try store.entry(key(version: "9.9.9"), sampleCount: 4, blockSize: 2, schema: .logprobs)
        for source in [other, newer] {
            try source.write(block: 0..<2, columns: Store.Columns(["logprob": .raggedFloat64(Store.RaggedRows(lists: [[-1], [-2]]))]))
        }
        try FileManager.default.copyItem(at: other.blockFile(0..<2), to: entry.blockFile(0..<2))
        XCTAssertEqual(entry.missingBlocks(), [0..<2, 2..<4])
        let foreign = try XCTUnwrap(entry.warnings.first { $0.problem == .foreignBlock })
        XCTAssertTrue(foreign.detail.contains("attribute key_digest: expected \"\(key().digest)\""), foreign.detail)

        try FileManager.default.removeItem(at: entry.blockFile(0..<2))
        try FileManager.default.copyItem(at: newer.blockFile(0..<2), to: entry.blockFile(0..<2))
        XCTAssertEqual(entry.missingBlocks(), [0..<2, 2..<4])
        XCTAssertEqual(entry.warnings.filter { $0.problem == .foreignBlock }.count, 2)

        // A hand-made block with decreasing offsets, correct checksums and a correct header.
        let path = entry.blockFile(2..<4).path
        do {
            let file = try HDF5File.create(path)
            let root = try file.root()
            for (name, value) in [("irm_format", HDF5AttributeValue.string("irm-score-block")), ("irm_format_version", .int(Int64(ScoreStore.formatVersion))),
                                  ("key_digest", .string(key().digest)), ("irm_version", .string("0.1.0")),
                                  ("sample_start", .int(2)), ("sample_end", .int(4)), ("sample_count", .int(4)),
                                  ("block_plan_sha256", .string(entry.blockPlan))] {
                try root.setAttribute(name, value)
            }
            let group = try root.createGroup("logprob")
            try group.setAttribute("arrangement", .string("ragged"))
            try group.setAttribute("dtype", .string("float64"))
            try group.setAttribute("width", .int(1))
            let offsets: [Int64] = [0, 2, 1]
            let values: [Double] = [-1]
            try group.createDataset("offsets", values: offsets, shape: [3])
            try group.dataset("offsets").setAttribute("sha256", .string(ScoreStoreBlockFile.checksum(offsets)))
            try group.createDataset("values", values: values, shape: [1, 1])
            try group.dataset("values").setAttribute("sha256", .string(ScoreStoreBlockFile.checksum(values)))
        }
        XCTAssertEqual(entry.missingBlocks(), [0..<2, 2..<4])
        let invalid = try XCTUnwrap(entry.warnings.first { $0.problem == .invalidBlock })
        XCTAssertTrue(invalid.detail.contains("expected non-decreasing offsets, found 2 then 1 at sample 1"), invalid.detail)
    }

    func testADamagedEntryFileIsRewrittenAndTheBlocksStillCount() throws {
        let store = try newStore()
        let entry = try mixedEntry(store)
        try writeAll(entry)
        let entryFile = entry.directory.appendingPathComponent("entry.h5")
        let original = try bytes(entryFile)
        try Data("not hdf5".utf8).write(to: entryFile)
        let reopened = try mixedEntry(store)
        XCTAssertEqual(reopened.warnings.map(\.problem), [.replacedEntryFile])
        XCTAssertEqual(try bytes(entryFile), original)
        XCTAssertTrue(reopened.isComplete)
    }

    // MARK: Mismatches and refusals

    func testAnExistingEntryWithAnotherSampleCountBlockPlanOrSchemaIsAnErrorNamingBoth() throws {
        let store = try newStore()
        _ = try store.entry(key(), sampleCount: 10, blockSize: 4, schema: .logprobs)
        XCTAssertThrowsError(try store.entry(key(), sampleCount: 12, blockSize: 4, schema: .logprobs)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("entry.h5: this entry holds 10 samples in 3 blocks (plan "), text)
            XCTAssertTrue(text.contains("but 12 samples in 3 blocks (plan "), text)
        }
        XCTAssertThrowsError(try store.entry(key(), sampleCount: 10, blockSize: 5, schema: .logprobs)) { error in
            XCTAssertTrue("\(error)".contains("10 samples in 3 blocks (plan "), "\(error)")
            XCTAssertTrue("\(error)".contains("but 10 samples in 2 blocks (plan "), "\(error)")
        }
        XCTAssertThrowsError(try store.entry(key(), sampleCount: 10, blockSize: 4, schema: .kl(addedRowMass: false))) { error in
            XCTAssertTrue("\(error)".contains("holds the columns [logprob: ragged float64 rows of width 1], but [kl: ragged float64 rows of width 1]"), "\(error)")
        }
        XCTAssertNoThrow(try store.entry(key(), sampleCount: 10, blockSize: 4, schema: .logprobs))
    }

    func testWritesThatAreNotABlockOrDoNotFitTheSchemaAreRefusedAndLeaveNothing() throws {
        let entry = try newStore().entry(key(), sampleCount: 5, blockSize: 2, schema: .logprobs)
        let two = Store.Columns(["logprob": .raggedFloat64(Store.RaggedRows(lists: [[-1], [-2]]))])
        XCTAssertThrowsError(try entry.write(block: 1..<3, columns: two)) { error in
            XCTAssertTrue("\(error)".contains("1..<3 is not one of its blocks"), "\(error)")
        }
        XCTAssertThrowsError(try entry.write(block: 4..<6, columns: two))
        XCTAssertThrowsError(try entry.write(block: 0..<2, columns: Store.Columns(["logprob": .raggedFloat64(Store.RaggedRows(lists: [[-1]]))]))) { error in
            XCTAssertTrue("\(error)".contains("column \"logprob\": expected 2 samples, found 1"), "\(error)")
        }
        XCTAssertThrowsError(try entry.write(block: 0..<2, columns: Store.Columns(["kl": .raggedFloat64(Store.RaggedRows(lists: [[-1], [-2]]))]))) { error in
            XCTAssertTrue("\(error)".contains("expected the columns logprob, found kl"), "\(error)")
        }
        XCTAssertThrowsError(try entry.write(block: 0..<2, columns: Store.Columns(["logprob": .raggedFloat32(try Store.RaggedRows(width: 1, samples: [[-1], [-2]]))]))) { error in
            XCTAssertTrue("\(error)".contains("expected ragged float64 rows of width 1, found ragged float32 rows of width 1"), "\(error)")
        }
        XCTAssertThrowsError(try Store.RaggedRows<Float>(width: 3, samples: [[1, 2]]))
        XCTAssertThrowsError(try Store.RaggedRows<Double>(width: 1, offsets: [0, 2, 1], values: [1, 2]))
        XCTAssertThrowsError(try Store.Vectors<Double>(width: 2, vectors: [[1, 2], [3]]))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: entry.directory.path), ["entry.h5"])
        XCTAssertEqual(entry.missingBlocks(), entry.blocks)
    }

    func testBadKeysAndSchemasAreRefused() throws {
        let store = try newStore()
        let badDigest = Store.Key(checkpointSHA256s: ["xyz"], dataSHA256: Self.data, convention: "trl", kind: .logprobs)
        XCTAssertThrowsError(try store.entry(badDigest, sampleCount: 1, schema: .logprobs)) { error in
            XCTAssertTrue("\(error)".contains("the checkpoint SHA-256 must be a SHA-256 as 64 hex digits, found \"xyz\""), "\(error)")
        }
        let noCheckpoint = Store.Key(checkpointSHA256s: [], dataSHA256: Self.data, convention: "trl", kind: .logprobs)
        XCTAssertThrowsError(try store.entry(noCheckpoint, sampleCount: 1, schema: .logprobs))
        XCTAssertThrowsError(try store.entry(key(.kl(base: "no")), sampleCount: 1, schema: .logprobs))
        XCTAssertThrowsError(try store.entry(key(), sampleCount: 1, schema: Store.Schema([Store.ColumnSpec("Bad Name", .ragged(.float64))])))
        XCTAssertThrowsError(try store.entry(key(), sampleCount: 1, schema: .finalHidden(width: 0)))
        XCTAssertThrowsError(try store.entry(key(), sampleCount: -1, schema: .logprobs))
        XCTAssertThrowsError(try store.entry(key(), sampleCount: 1, blockSize: 0, schema: .logprobs))
    }

    // MARK: Keys

    func testEveryPartOfTheKeyGivesADifferentDirectory() throws {
        let keys: [Store.Key] = [
            key(),
            key(convention: "separate"),
            key(version: "0.2.0"),
            key(data: String(repeating: "02", count: 32)),
            key(.kl(base: Self.adapter)),
            key(.kl(base: Self.checkpoint)),
            key(.finalHidden), key(.pooledHidden), key(.reward),
            key(options: ["precision": "float64"]),
            Store.Key(checkpointSHA256s: [Self.checkpoint, Self.adapter], dataSHA256: Self.data, convention: "trl",
                      irmVersion: "0.1.0", kind: .logprobs),
            Store.Key(checkpointSHA256s: [Self.adapter, Self.checkpoint], dataSHA256: Self.data, convention: "trl",
                      irmVersion: "0.1.0", kind: .logprobs),
        ]
        let store = try newStore()
        let directories = keys.map { store.entryDirectory(for: $0).lastPathComponent }
        XCTAssertEqual(Set(directories).count, keys.count, "\(directories)")
        XCTAssertEqual(store.entryDirectory(for: key()), store.entryDirectory(for: key()))
        XCTAssertEqual(key(options: ["a": "1", "b": "2"]).digest, key(options: ["b": "2", "a": "1"]).digest)
        // Upper-case hex is the same digest.
        XCTAssertEqual(Store.Key(checkpointSHA256s: [Self.checkpoint.uppercased()], dataSHA256: Self.data.uppercased(),
                                 convention: "trl", irmVersion: "0.1.0", kind: .logprobs).digest, key().digest)
        // A single file's digest is the checkpoint's own SHA-256.
        XCTAssertEqual(key().checkpointSHA256, Self.checkpoint)
        XCTAssertTrue(store.entryDirectory(for: key()).lastPathComponent.hasPrefix("logprobs-"))
        XCTAssertEqual(key().canonicalText, """
            format=15:irm-score-store
            format_version=1:2
            checkpoint_sha256=64:\(Self.checkpoint)
            data_sha256=64:\(Self.data)
            convention=3:trl
            irm_version=5:0.1.0
            kind=8:logprobs

            """)
        // Different key, different entry: both live side by side.
        let first = try store.entry(key(), sampleCount: 3, schema: .logprobs)
        let second = try store.entry(key(convention: "rewardbench"), sampleCount: 4, schema: .logprobs)
        XCTAssertNotEqual(first.directory, second.directory)
    }

    func testTheDataDigestCoversTheTokenSequencesButNotTheNames() {
        let samples = [ScoringSample(name: "a", promptIDs: [1, 2], responseIDs: [3]),
                       ScoringSample(name: "b", promptIDs: [], responseIDs: [])]
        let renamed = [ScoringSample(name: "x", promptIDs: [1, 2], responseIDs: [3]),
                       ScoringSample(name: "y", promptIDs: [], responseIDs: [])]
        let moved = [ScoringSample(name: "a", promptIDs: [1], responseIDs: [2, 3]),
                     ScoringSample(name: "b", promptIDs: [], responseIDs: [])]
        let digest = Store.Key.dataSHA256(of: samples)
        XCTAssertEqual(digest.count, 64)
        XCTAssertEqual(digest, Store.Key.dataSHA256(of: renamed))
        XCTAssertNotEqual(digest, Store.Key.dataSHA256(of: moved))
        XCTAssertNotEqual(digest, Store.Key.dataSHA256(of: Array(samples.prefix(1))))
    }

    func testTemporaryNamesParseBackToTheirWriter() {
        let url = URL(fileURLWithPath: "/tmp/entry/block-0-256.h5")
        let temporary = ScoreStoreFiles.temporaryURL(for: url)
        let parsed = ScoreStoreFiles.parseTemporary(temporary.lastPathComponent)
        XCTAssertEqual(parsed, ScoreStoreFiles.TemporaryName(finalName: "block-0-256.h5", host: ProcessIdentity.hostName,
                                                            pid: ProcessInfo.processInfo.processIdentifier))
        XCTAssertNil(ScoreStoreFiles.parseTemporary("block-0-256.h5"))
        XCTAssertNil(ScoreStoreFiles.parseTemporary(".hidden"))
        XCTAssertEqual(ScoreStoreFiles.parseTemporary(".entry.h5.tmp-a-b-c-42-ff")?.host, "a-b-c")
    }
}
