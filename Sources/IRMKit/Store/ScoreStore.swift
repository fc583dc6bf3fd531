import Foundation

/// A directory of scoring results, kept so that every later analysis reuses them and so that an
/// interrupted run (kill -9 included) computes only what is missing when restarted.
///
/// An entry (one checkpoint, one data set, one kind of result) is a directory named by the digest of
/// its `Key`. Samples are committed in blocks, each its own HDF5 file written to a temporary name and
/// renamed into place, so a block exists complete or not at all. Blocks are verified when used
/// (layout, shapes, offsets, SHA-256 of the values); a damaged or foreign block is reported as a
/// `Warning` and treated as missing, so it is computed again: the store never returns wrong numbers.
/// docs/score-store.md documents the layout and the guarantees.
///
/// ```swift
/// let store = try ScoreStore(directory: storeURL)
/// let entry = try store.entry(key, blocks: ShardPlan(samples).blocks, schema: .logprobs)
/// for block in entry.missingBlocks() {
///     let logprobs = try scorer.logProbs(of: Array(samples[block]), under: model)
///     try entry.write(block: block, columns: ScoreStore.Columns(["logprob": .raggedFloat64(.init(lists: logprobs.map(\.tokens)))]))
/// }
/// entry.warnings.forEach { log($0) }
/// let columns = try entry.read()
/// ```
///
/// Results identical to an uninterrupted run need the caller to compute block by block in both
/// cases: the scorer is batch-invariant only up to float32 rounding (docs/scoring.md), so the
/// samples batched together must be the same each time.
public struct ScoreStore: Sendable {
    /// Part of every key's canonical text: a change of the on-disk format changes every directory.
    public static let formatName = "irm-score-store"
    /// Version 2: an entry's blocks are any consecutive ranges (a `ShardPlan`), recorded by their
    /// digest; version 1 had fixed-size blocks.
    public static let formatVersion = 2

    public let directory: URL
    /// A temporary file whose writer cannot be checked (another host) is removed once it is older
    /// than this. A temporary file of a dead process on this host is removed at once.
    public let staleTemporaryAge: TimeInterval

    /// Opens the store at `directory`, creating it (and its parents) when absent.
    public init(directory: URL, staleTemporaryAge: TimeInterval = 24 * 3600) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw IRMError("score store \(directory.path): expected a directory, found a file")
            }
        } else {
            do {
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            } catch {
                throw IRMError("cannot create the score store directory \(directory.path): \(error.localizedDescription)")
            }
        }
        self.directory = directory
        self.staleTemporaryAge = staleTemporaryAge
    }

    /// The directory of `key`'s entry (which may not exist yet).
    public func entryDirectory(for key: Key) -> URL {
        directory.appendingPathComponent(key.directoryName, isDirectory: true)
    }

    /// `entry(key, blocks:schema:)` with blocks of `blockSize` consecutive samples (the last may be shorter).
    public func entry(_ key: Key, sampleCount: Int, blockSize: Int = 256, schema: Schema) throws -> Entry {
        guard sampleCount >= 0 else { throw IRMError("score store entry: expected a sample count of at least 0, found \(sampleCount)") }
        guard blockSize >= 1 else { throw IRMError("score store entry: expected a block size of at least 1, found \(blockSize)") }
        return try entry(key, blocks: stride(from: 0, to: sampleCount, by: blockSize).map { $0..<min($0 + blockSize, sampleCount) },
                         schema: schema)
    }

    /// Creates `key`'s entry, or opens it when it exists. `blocks` are consecutive, non-empty and
    /// start at 0; they cover the entry's samples (a `ShardPlan`'s blocks). An existing entry with
    /// another sample count, block plan or schema is an error that names both. A damaged `entry.h5`
    /// is replaced (with a warning): every block records the key digest, sample count and plan
    /// itself. Leftover temporary files of dead writers are removed, each with a warning.
    public func entry(_ key: Key, blocks: [Range<Int>], schema: Schema) throws -> Entry {
        try key.validate()
        try schema.validate()
        var end = 0
        for block in blocks {
            guard block.lowerBound == end, !block.isEmpty else {
                throw IRMError("score store entry: expected consecutive non-empty blocks from sample 0, found \(block.lowerBound)..<\(block.upperBound) after \(end)")
            }
            end = block.upperBound
        }
        let sampleCount = end, plan = ShardPlan.digest(of: blocks, sampleCount: end)
        let folder = entryDirectory(for: key)
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw IRMError("cannot create the score store entry directory \(folder.path): \(error.localizedDescription)")
        }
        let entryURL = folder.appendingPathComponent(ScoreStoreEntryFile.fileName)
        let wanted = ScoreStoreEntryFile.Record(keyDigest: key.digest, irmVersion: key.irmVersion, sampleCount: sampleCount, blockCount: blocks.count, blockPlan: plan, schema: schema)
        var warnings: [Warning] = []
        func writeEntryFile(_ publication: ScoreStoreFiles.Publication) throws -> Bool {
            try ScoreStoreFiles.write(entryURL, publication) { temporary in
                try ScoreStoreEntryFile.write(key: key, sampleCount: sampleCount, blocks: blocks, schema: schema, to: temporary.path)
            }
        }
        if !FileManager.default.fileExists(atPath: entryURL.path) {
            _ = try writeEntryFile(.createIfAbsent)
        }
        // Whether we created it or found it (perhaps from a concurrent creator), check it.
        do {
            let recorded = try ScoreStoreEntryFile.read(entryURL.path)
            if recorded.keyDigest != wanted.keyDigest {
                throw IRMError("\(entryURL.path): attribute key_digest: expected \(wanted.keyDigest) (the directory's key), found \(recorded.keyDigest)")
            }
            try Self.check(recorded, against: wanted, at: entryURL.path)
        } catch let error as MismatchError {
            throw error.underlying
        } catch {
            warnings.append(Warning(file: entryURL.path, problem: .replacedEntryFile,
                                    detail: "\(error); rewritten from the key (each block is still checked against its own records)"))
            _ = try writeEntryFile(.replace)
        }
        let entry = Entry(key: key, directory: folder, blocks: blocks, blockPlan: plan, schema: schema, warnings: warnings)
        entry.tidyDirectory(staleTemporaryAge: staleTemporaryAge)
        return entry
    }

    private struct MismatchError: Error { let underlying: IRMError }

    private static func check(_ recorded: ScoreStoreEntryFile.Record, against wanted: ScoreStoreEntryFile.Record, at path: String) throws {
        if recorded.sampleCount != wanted.sampleCount || recorded.blockCount != wanted.blockCount || recorded.blockPlan != wanted.blockPlan {
            throw MismatchError(underlying: IRMError(
                "\(path): this entry holds \(recorded.sampleCount) samples in \(recorded.blockCount) blocks (plan \(recorded.blockPlan.prefix(12))), but \(wanted.sampleCount) samples in \(wanted.blockCount) blocks (plan \(wanted.blockPlan.prefix(12))) were asked for. The key is the same, so its data SHA-256 should have changed with the samples (it must cover the exact token sequences scored), or the block plan changed between runs; remove the directory \(URL(fileURLWithPath: path).deletingLastPathComponent().path) to start the entry afresh"))
        }
        if recorded.schema != wanted.schema {
            throw MismatchError(underlying: IRMError(
                "\(path): this entry holds the columns \(recorded.schema), but \(wanted.schema) were asked for; the same key must always give the same columns (put what changed them into the key's options)"))
        }
    }
}

extension ScoreStore {
    /// Something the store found and worked around. The caller logs it; nothing is wrong with the
    /// results the store returns.
    public struct Warning: Sendable, Equatable, CustomStringConvertible {
        public enum Problem: Sendable, Equatable {
            /// A temporary file of an interrupted write was removed.
            case removedLeftoverTemporary
            /// A block file is not readable HDF5 (for example truncated); it is recomputed.
            case unreadableBlock
            /// A block file's layout, shapes or offsets are not what the schema says; it is recomputed.
            case invalidBlock
            /// A block's values do not match their recorded SHA-256; it is recomputed.
            case checksumMismatch
            /// A block file records another key, irm version, format, sample range, sample count or
            /// block size; it is recomputed (and replaced).
            case foreignBlock
            /// A `block-*.h5` file that is none of this entry's blocks; it is ignored.
            case unexpectedBlockFile
            /// entry.h5 was damaged and has been rewritten.
            case replacedEntryFile
        }

        public let file: String
        public let problem: Problem
        public let detail: String

        public var description: String {
            let action: String
            switch problem {
            case .removedLeftoverTemporary: action = "removed a leftover temporary file of an interrupted write"
            case .unreadableBlock, .invalidBlock, .checksumMismatch, .foreignBlock: action = "block ignored and recomputed"
            case .unexpectedBlockFile: action = "not a block of this entry; ignored"
            case .replacedEntryFile: action = "entry file replaced"
            }
            return "score store: \(file): \(detail) (\(action))"
        }
    }

    /// One entry: a fixed number of samples, committed block by block.
    ///
    /// Not thread-safe: use one `Entry` per thread (two processes or two `Entry` values on the same
    /// directory are safe; see docs/score-store.md, "Concurrency").
    public final class Entry {
        public let key: Key
        public let directory: URL
        public let sampleCount: Int
        /// The blocks, in order: consecutive ranges covering `0..<sampleCount`.
        public let blocks: [Range<Int>]
        /// `ShardPlan.digest(of:sampleCount:)` of `blocks`, recorded by entry.h5 and every block file.
        public let blockPlan: String
        public let schema: Schema
        /// What the entry found and worked around so far, without repeats. The caller logs them.
        public private(set) var warnings: [Warning]
        /// Blocks verified by this object, with the identity of the file verified: an unchanged file
        /// is not read again by `missingBlocks`.
        private var verified: [Int: ScoreStoreFiles.FileIdentity] = [:]

        private let blockIndex: [Int: Int]

        init(key: Key, directory: URL, blocks: [Range<Int>], blockPlan: String, schema: Schema, warnings: [Warning]) {
            self.key = key
            self.directory = directory
            self.sampleCount = blocks.last?.upperBound ?? 0
            self.blocks = blocks
            self.blockPlan = blockPlan
            blockIndex = Dictionary(uniqueKeysWithValues: blocks.enumerated().map { ($1.lowerBound, $0) })
            self.schema = schema
            self.warnings = warnings
        }

        /// The file that holds (or will hold) `block`.
        public func blockFile(_ block: Range<Int>) -> URL {
            directory.appendingPathComponent(ScoreStoreBlockFile.fileName(for: block))
        }

        /// The blocks that are absent or unusable, in order. Each present block is read and verified
        /// once (again only if its file changes); a bad one adds a warning and is listed here.
        /// `among`: only these blocks are looked at (all by default).
        public func missingBlocks(among wanted: [Range<Int>]? = nil) -> [Range<Int>] {
            var missing: [Range<Int>] = []
            for block in wanted ?? blocks {
                let path = blockFile(block).path
                guard let identity = ScoreStoreFiles.identity(of: path) else {
                    verified[block.lowerBound] = nil
                    missing.append(block)
                    continue
                }
                if verified[block.lowerBound] == identity { continue }
                do {
                    _ = try ScoreStoreBlockFile.read(path, schema: schema, expected: header(block))
                    verified[block.lowerBound] = identity
                } catch {
                    note(Warning(file: path, problem: error.problem, detail: error.detail))
                    verified[block.lowerBound] = nil
                    missing.append(block)
                }
            }
            return missing
        }

        /// Whether every block is present and verified.
        public var isComplete: Bool { missingBlocks().isEmpty }

        /// Commits one block: `block` must be one of `blocks`, and `columns` exactly the schema's
        /// columns with `block.count` samples each. The file appears complete or not at all; an
        /// existing file for the block is replaced.
        public func write(block: Range<Int>, columns: Columns) throws {
            try checkIsBlock(block)
            try columns.check(against: schema, count: block.count, what: "score store entry \(directory.path), block \(block.lowerBound)..<\(block.upperBound)")
            let url = blockFile(block)
            try ScoreStoreFiles.write(url, .replace) { temporary in
                try ScoreStoreBlockFile.write(columns, schema: schema, header: header(block), to: temporary.path)
            }
            verified[block.lowerBound] = ScoreStoreFiles.identity(of: url.path)
        }

        /// Reads and verifies one block. A missing or unusable block is an error (and a warning);
        /// `missingBlocks` then lists it.
        public func read(block: Range<Int>) throws -> Columns {
            try checkIsBlock(block)
            let path = blockFile(block).path
            guard FileManager.default.fileExists(atPath: path) else {
                throw IRMError("score store entry \(directory.path): block \(block.lowerBound)..<\(block.upperBound) has not been computed (no \(path))")
            }
            do {
                return try ScoreStoreBlockFile.read(path, schema: schema, expected: header(block))
            } catch {
                let warning = Warning(file: path, problem: error.problem, detail: error.detail)
                note(warning)
                verified[block.lowerBound] = nil
                throw IRMError("\(warning.file): \(warning.detail); the block must be computed again")
            }
        }

        /// All N samples, block by block, each block verified as it is read. Throws when any block is
        /// missing or unusable, naming them; those then appear in `missingBlocks`.
        public func read() throws -> Columns {
            var result = Columns.empty(schema)
            var absent: [Range<Int>] = []
            var damaged: [String] = []
            for block in blocks {
                let path = blockFile(block).path
                guard FileManager.default.fileExists(atPath: path) else {
                    absent.append(block)
                    continue
                }
                do {
                    let columns = try ScoreStoreBlockFile.read(path, schema: schema, expected: header(block))
                    if absent.isEmpty && damaged.isEmpty { try result.append(columns) }
                } catch let problem as ScoreStoreBlockProblem {
                    note(Warning(file: path, problem: problem.problem, detail: problem.detail))
                    verified[block.lowerBound] = nil
                    damaged.append("\(path): \(problem.detail)")
                }
            }
            guard absent.isEmpty && damaged.isEmpty else {
                var parts: [String] = []
                if !absent.isEmpty {
                    let listed = absent.prefix(5).map { "\($0.lowerBound)..<\($0.upperBound)" }.joined(separator: ", ")
                    parts.append("\(absent.count) of \(blocks.count) blocks not computed (\(listed)\(absent.count > 5 ? ", …" : ""))")
                }
                if !damaged.isEmpty { parts.append("\(damaged.count) unusable: " + damaged.prefix(3).joined(separator: "; ")) }
                throw IRMError("score store entry \(directory.path) is incomplete: \(parts.joined(separator: "; ")); compute the missing blocks first")
            }
            guard result.sampleCount ?? 0 == sampleCount || schema.columns.isEmpty else {
                throw IRMError("score store entry \(directory.path): the blocks hold \(result.sampleCount.map(String.init) ?? "inconsistent counts of") samples; expected \(sampleCount)")
            }
            return result
        }

        // MARK: Internals

        private func header(_ block: Range<Int>) -> ScoreStoreBlockFile.Header {
            ScoreStoreBlockFile.Header(keyDigest: key.digest, irmVersion: key.irmVersion, samples: block,
                                       sampleCount: sampleCount, blockPlan: blockPlan)
        }

        private func checkIsBlock(_ block: Range<Int>) throws {
            guard let index = blockIndex[block.lowerBound], blocks[index] == block else {
                let first = blocks.first.map { "\($0.lowerBound)..<\($0.upperBound)" } ?? "none (the entry has no samples)"
                throw IRMError("score store entry \(directory.path): \(block.lowerBound)..<\(block.upperBound) is not one of its blocks (\(blocks.count) blocks over \(sampleCount) samples: the first is \(first))")
            }
        }

        private func note(_ warning: Warning) {
            if !warnings.contains(warning) { warnings.append(warning) }
        }

        /// Removes stale temporary files and reports block files that are not this entry's.
        func tidyDirectory(staleTemporaryAge: TimeInterval) {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { return }
            let expected = Set(blocks.map(ScoreStoreBlockFile.fileName))
            for name in names.sorted() {
                let url = directory.appendingPathComponent(name)
                if let temporary = ScoreStoreFiles.parseTemporary(name) {
                    if ScoreStoreFiles.isStale(url, name: temporary, maximumAge: staleTemporaryAge), unlink(url.path) == 0 {
                        note(Warning(file: url.path, problem: .removedLeftoverTemporary,
                                     detail: "written by process \(temporary.pid) on \(temporary.host), which is no longer writing it"))
                    }
                } else if name.hasPrefix("block-"), name.hasSuffix(".h5"), !expected.contains(name) {
                    note(Warning(file: url.path, problem: .unexpectedBlockFile,
                                 detail: "this entry has \(sampleCount) samples in \(blocks.count) blocks, and no block by that name"))
                }
            }
        }
    }
}
