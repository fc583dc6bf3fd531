import Foundation

/// `irm store merge`: the score stores of a sharded run's shards combined into one store, from
/// which the final `analyze`/`drift`/`score` reads everything without scoring (docs/cluster.md).
///
/// The merge trusts nothing it has not checked: it needs every shard of one run (by the shard
/// records), refuses shards of different runs naming what differs, verifies every block it copies
/// (format, key, plan, range, SHA-256 of the values) and checks that the shards' blocks together are
/// exactly the run's block plan. It copies block files byte for byte, so the merged store holds
/// the very numbers each shard computed; with the blocks the unit of arithmetic (`ShardPlan`),
/// they are the numbers an unsharded run computes.
public enum ScoreStoreMerge {
    public struct Summary: Sendable, Equatable {
        public let runDigest: String
        public let command: String
        public let shards: Int
        public let entries: Int
        /// Block files copied, and those already in place (identical).
        public let copiedBlocks: Int
        public let presentBlocks: Int
        public let sampleCount: Int
    }

    /// Merges the shard stores `sources` into `destination` (created when absent; it may be one of
    /// the sources). Throws, before writing anything, when a shard is missing or the shards are of
    /// different runs; throws naming the shard and file when a block is missing or damaged.
    public static func merge(sources: [URL], into destination: URL) throws -> Summary {
        guard !sources.isEmpty else { throw IRMError("store merge: give at least one shard store") }
        var found: [(record: ShardRecord, url: URL, store: URL)] = []
        for source in sources {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: source.path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw IRMError("\(source.path): is not a directory (expected a shard's score store)")
            }
            found += try ShardRecord.all(in: source).map { ($0.record, $0.url, source) }
        }
        guard let first = found.first else {
            throw IRMError("no shard records in \(sources.map(\.path).joined(separator: ", ")) (expected shards/<run>/shard-K-of-N.json): run the shards with --shard K/N --store DIR first; a shard writes its record when all its blocks are committed")
        }
        // One run, one N.
        for other in found where other.record.runDigest != first.record.runDigest || other.record.shards != first.record.shards {
            throw IRMError("store merge: \(mismatch(first.record, at: first.url, other.record, at: other.url)); merge the shards of one run")
        }
        var byShard: [Int: (record: ShardRecord, url: URL, store: URL)] = [:]
        for item in found where byShard[item.record.shard] == nil { byShard[item.record.shard] = item }
        let n = first.record.shards
        let missing = (0..<n).filter { byShard[$0] == nil }
        guard missing.isEmpty else {
            let listed = missing.prefix(20).map(String.init).joined(separator: ", ") + (missing.count > 20 ? ", …" : "")
            throw IRMError("store merge: \(missing.count == 1 ? "shard" : "shards") \(listed) of \(n) \(missing.count == 1 ? "is" : "are") missing (no shard record in \(sources.map(\.path).joined(separator: ", "))); run \(missing.count == 1 ? "it" : "them") again with --shard K/\(n), or check \(missing.count == 1 ? "its" : "their") log, then merge again. Nothing was merged")
        }
        // The shards' blocks, in order, must be the run's plan exactly.
        var blocks: [Range<Int>] = []
        for k in 0..<n {
            let record = byShard[k]!.record
            guard record.samples.lowerBound == (blocks.last?.upperBound ?? 0) else {
                throw IRMError("\(byShard[k]!.url.path): shard \(k) starts at sample \(record.samples.lowerBound), but shard \(k - 1) ends at \(blocks.last?.upperBound ?? 0)")
            }
            blocks += record.blocks
        }
        guard ShardPlan.digest(of: blocks, sampleCount: first.record.sampleCount) == first.record.blockPlan,
              blocks.count == first.record.blockCount else {
            throw IRMError("store merge: the \(n) shards' blocks (\(blocks.count)) are not the run's block plan \(first.record.blockPlan.prefix(12)) (\(first.record.blockCount) blocks over \(first.record.sampleCount) samples); the shard records are damaged")
        }

        // Check every block of every shard before writing anything.
        struct Copy { let source: URL; let target: URL }
        var entryFiles: [String: (source: URL, record: ScoreStoreEntryFile.Record)] = [:]
        var copies: [Copy] = []
        var present = 0
        for k in 0..<n {
            let (record, url, store) = byShard[k]!
            for name in record.entries {
                let sourceEntry = store.appendingPathComponent(name, isDirectory: true)
                let entryURL = sourceEntry.appendingPathComponent(ScoreStoreEntryFile.fileName)
                let entry: ScoreStoreEntryFile.Record
                do {
                    entry = try ScoreStoreEntryFile.read(entryURL.path)
                } catch {
                    throw IRMError("shard \(k) (\(url.path)): \(error); run shard \(k) again")
                }
                guard name.hasSuffix("-" + entry.keyDigest), entry.blockPlan == record.blockPlan, entry.sampleCount == record.sampleCount else {
                    throw IRMError("shard \(k): \(entryURL.path): key \(entry.keyDigest.prefix(12)), plan \(entry.blockPlan.prefix(12)), \(entry.sampleCount) samples; its shard record (\(url.path)) says entry \(name), plan \(record.blockPlan.prefix(12)), \(record.sampleCount) samples")
                }
                if let seen = entryFiles[name], seen.record != entry {
                    throw IRMError("store merge: \(entryURL.path) and \(seen.source.path) describe the same entry differently")
                }
                if entryFiles[name] == nil { entryFiles[name] = (entryURL, entry) }
                let targetEntry = destination.appendingPathComponent(name, isDirectory: true)
                for block in record.blocks {
                    let file = sourceEntry.appendingPathComponent(ScoreStoreBlockFile.fileName(for: block))
                    let header = ScoreStoreBlockFile.Header(keyDigest: entry.keyDigest, irmVersion: entry.irmVersion, samples: block,
                                                            sampleCount: entry.sampleCount, blockPlan: entry.blockPlan)
                    guard FileManager.default.fileExists(atPath: file.path) else {
                        throw IRMError("shard \(k): \(file.path) is missing, though the shard's record (\(url.path)) says it completed; run shard \(k) again. Nothing was merged")
                    }
                    do {
                        _ = try ScoreStoreBlockFile.read(file.path, schema: entry.schema, expected: header)
                    } catch {
                        throw IRMError("shard \(k): \(file.path): \(error.detail); run shard \(k) again. Nothing was merged")
                    }
                    let target = targetEntry.appendingPathComponent(file.lastPathComponent)
                    if sameFile(file, target) || identicalFiles(file, target) {
                        present += 1
                    } else {
                        copies.append(Copy(source: file, target: target))
                    }
                }
            }
        }

        // Write: entry files, blocks, then the records (a record in the destination means its blocks are there).
        for (name, entry) in entryFiles.sorted(by: { $0.key < $1.key }) {
            let folder = destination.appendingPathComponent(name, isDirectory: true)
            try createDirectory(folder)
            let target = folder.appendingPathComponent(ScoreStoreEntryFile.fileName)
            if FileManager.default.fileExists(atPath: target.path) {
                let existing = try? ScoreStoreEntryFile.read(target.path)
                guard existing == entry.record else {
                    throw IRMError("\(target.path): describes entry \(name) differently from the shards' (\(entry.source.path)); remove \(folder.path) and merge again")
                }
            } else {
                try ScoreStoreFiles.write(target, .createIfAbsent) { temporary in try copyFile(entry.source, to: temporary) }
            }
        }
        for copy in copies {
            try ScoreStoreFiles.write(copy.target, .replace) { temporary in try copyFile(copy.source, to: temporary) }
        }
        for k in 0..<n {
            let (record, url, _) = byShard[k]!
            let target = record.url(in: destination)
            if !sameFile(url, target) {
                try createDirectory(target.deletingLastPathComponent())
                try ScoreStoreFiles.write(target, .replace) { temporary in try copyFile(url, to: temporary) }
            }
        }
        return Summary(runDigest: first.record.runDigest, command: first.record.command, shards: n, entries: entryFiles.count,
                       copiedBlocks: copies.count, presentBlocks: present, sampleCount: first.record.sampleCount)
    }

    /// What differs between two shards' records, most telling first.
    static func mismatch(_ a: ShardRecord, at aURL: URL, _ b: ShardRecord, at bURL: URL) -> String {
        let left = "shard \(a.shard) of \(a.shards) (\(aURL.path))", right = "shard \(b.shard) of \(b.shards) (\(bURL.path))"
        func differ(_ what: String, _ x: String, _ y: String) -> String { "\(left) and \(right) differ in \(what): \(x) against \(y)" }
        if a.irmVersion != b.irmVersion { return differ("the irm version", a.irmVersion, b.irmVersion) }
        if a.sequencesSHA256 != b.sequencesSHA256 || a.dataSHA256 != b.dataSHA256 {
            return differ("the data (SHA-256 of the token sequences)", a.sequencesSHA256, b.sequencesSHA256)
                + (a.dataSHA256 != b.dataSHA256 ? "; data files \(a.dataSHA256.prefix(12)) and \(b.dataSHA256.prefix(12))" : "")
        }
        if a.convention != b.convention { return differ("the convention", a.convention, b.convention) }
        let roles = Set(a.inputs.map(\.role) + b.inputs.map(\.role)).sorted()
        for role in roles {
            let x = a.inputs.filter { $0.role == role }.map(\.sha256), y = b.inputs.filter { $0.role == role }.map(\.sha256)
            if x != y {
                let describe: (ShardRecord) -> String = { r in r.inputs.filter { $0.role == role }.map { "\($0.path) (\($0.sha256.prefix(12)))" }.joined(separator: ", ") }
                return differ("the \(role) checkpoint", describe(a).isEmpty ? "none" : describe(a), describe(b).isEmpty ? "none" : describe(b))
            }
        }
        if a.command != b.command { return differ("the command", a.command, b.command) }
        if a.shards != b.shards { return "\(left) and \(right) come from runs of \(a.shards) and of \(b.shards) shards" }
        if a.blockPlan != b.blockPlan { return differ("the block plan", a.blockPlan, b.blockPlan) }
        return differ("the score store entries", a.entries.joined(separator: " "), b.entries.joined(separator: " "))
    }

    private static func createDirectory(_ url: URL) throws {
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw IRMError("cannot create \(url.path): \(error.localizedDescription)")
        }
    }

    private static func copyFile(_ source: URL, to target: URL) throws {
        let bytes = try InputFile.contents(source.path, what: "a score store file")
        do {
            try bytes.write(to: target)
        } catch {
            throw IRMError("cannot write \(target.path): \(error.localizedDescription)")
        }
    }

    private static func sameFile(_ a: URL, _ b: URL) -> Bool {
        guard let x = ScoreStoreFiles.identity(of: a.path), let y = ScoreStoreFiles.identity(of: b.path) else { return false }
        return x.device == y.device && x.inode == y.inode
    }

    private static func identicalFiles(_ a: URL, _ b: URL) -> Bool {
        guard FileManager.default.fileExists(atPath: b.path) else { return false }
        return FileManager.default.contentsEqual(atPath: a.path, andPath: b.path)
    }
}
