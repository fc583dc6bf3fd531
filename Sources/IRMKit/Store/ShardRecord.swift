import Foundation

/// What one shard of a sharded run (`--shard K/N`) leaves in its score store besides the blocks:
/// `shards/<run>/shard-K-of-N.json`, written when every block of the shard is committed
/// (docs/cluster.md, "Shard records"). `irm store merge` reads these to know which runs a store
/// holds, whether all of a run's shards are there, and which block files belong to each.
///
/// A run is identified by its entries (each entry directory name carries its key digest: the
/// checkpoint, the data's token sequences, the convention, the irm version and the kind) and the
/// block plan. Two shards with the same run digest were scored on the same data with the same
/// checkpoints by the same irm, in the same blocks; only then can they be merged.
public struct ShardRecord: Sendable, Equatable {
    public static let formatName = "irm-shard-record"
    public static let formatVersion = 1
    public static let folderName = "shards"

    public struct Input: Sendable, Equatable {
        /// before, after, checkpoint, base, reward-model, …
        public var role: String
        public var path: String
        public var sha256: String
    }

    /// The command that scored (analyze, drift, score).
    public var command: String
    public var shard: Int
    public var shards: Int
    /// The entries' directory names, sorted.
    public var entries: [String]
    public var blockPlan: String
    public var sampleCount: Int
    public var blockCount: Int
    /// The shard's samples and the end of each of its blocks (the first starts at `samples.lowerBound`).
    public var samples: Range<Int>
    public var blockEnds: [Int]
    public var sequencesSHA256: String
    public var dataSHA256: String
    public var convention: String
    public var irmVersion: String
    public var inputs: [Input]
    /// Not part of the identity: where and how it ran.
    public var host: String
    public var threads: Int
    public var tokens: Int
    public var seconds: Double

    /// SHA-256 over what identifies the run: the block plan and the entries.
    public var runDigest: String {
        var text = "irm-shard-run 1\nplan=\(blockPlan)\n"
        for entry in entries.sorted() { text += "entry=\(entry)\n" }
        return SHA256.hex(Array(text.utf8))
    }

    public var fileName: String { "shard-\(shard)-of-\(shards).json" }

    /// The shard's blocks, from `samples` and `blockEnds`.
    public var blocks: [Range<Int>] {
        var start = samples.lowerBound
        return blockEnds.map { end in
            defer { start = end }
            return start..<end
        }
    }

    /// `STORE/shards/<run digest>/shard-K-of-N.json`.
    public func url(in store: URL) -> URL {
        store.appendingPathComponent(Self.folderName, isDirectory: true).appendingPathComponent(runDigest, isDirectory: true)
            .appendingPathComponent(fileName)
    }

    /// Writes the record into `store` (atomically, replacing an earlier one of the same shard).
    public func write(in store: URL) throws {
        let url = url(in: store)
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        } catch {
            throw IRMError("cannot create \(url.deletingLastPathComponent().path): \(error.localizedDescription)")
        }
        try ScoreStoreFiles.write(url, .replace) { temporary in
            try Data((json.serialized(pretty: true) + "\n").utf8).write(to: temporary)
        }
    }

    var json: JSONValue {
        .object([
            "format": .string(Self.formatName), "format_version": .int(Int64(Self.formatVersion)),
            "command": .string(command), "shard": .int(Int64(shard)), "shards": .int(Int64(shards)), "run": .string(runDigest),
            "entries": .array(entries.map { .string($0) }), "block_plan_sha256": .string(blockPlan),
            "sample_count": .int(Int64(sampleCount)), "block_count": .int(Int64(blockCount)),
            "sample_start": .int(Int64(samples.lowerBound)), "sample_end": .int(Int64(samples.upperBound)),
            "block_ends": .array(blockEnds.map { .int(Int64($0)) }),
            "sequences_sha256": .string(sequencesSHA256), "data_sha256": .string(dataSHA256), "convention": .string(convention),
            "irm_version": .string(irmVersion),
            "inputs": .array(inputs.map { .object(["role": .string($0.role), "path": .string($0.path), "sha256": .string($0.sha256)]) }),
            "host": .string(host), "threads": .int(Int64(threads)), "tokens": .int(Int64(tokens)), "seconds": .double(seconds),
        ])
    }

    public init(command: String, shard: Shard, entries: [String], plan: ShardPlan, sequencesSHA256: String, dataSHA256: String,
                convention: String, irmVersion: String = IRMVersion.string, inputs: [Input], host: String? = nil,
                threads: Int, tokens: Int, seconds: Double) {
        self.command = command
        self.shard = shard.index
        shards = shard.count
        self.entries = Array(Set(entries)).sorted()
        blockPlan = plan.digest
        sampleCount = plan.sampleCount
        blockCount = plan.blocks.count
        samples = plan.samples(of: shard)
        blockEnds = plan.blocks[plan.blockIndices(of: shard)].map(\.upperBound)
        self.sequencesSHA256 = sequencesSHA256
        self.dataSHA256 = dataSHA256
        self.convention = convention
        self.irmVersion = irmVersion
        self.inputs = inputs
        self.host = host ?? ProcessIdentity.hostName
        self.threads = threads
        self.tokens = tokens
        self.seconds = seconds
    }

    /// Reads and checks a record file: every field present with its type, the name matching the
    /// shard, the blocks consecutive inside the samples. Any problem is an error naming the file.
    public static func read(_ url: URL) throws -> ShardRecord {
        let path = url.path
        let data = try InputFile.contents(path, what: "a shard record")
        let root = try JSONValue.parse(data, source: path)
        guard let object = root.objectValue else { throw IRMError("\(path): expected a JSON object, found \(root.brief)") }
        func value(_ name: String) throws -> JSONValue {
            guard let v = object[name] else { throw IRMError("\(path): no \"\(name)\" field") }
            return v
        }
        func string(_ name: String) throws -> String {
            let v = try value(name)
            guard let s = v.stringValue else { throw IRMError("\(path): \"\(name)\" should be a string, found \(v.brief)") }
            return s
        }
        func integer(_ name: String, minimum: Int = 0) throws -> Int {
            let v = try value(name)
            guard let i = v.intValue, i >= minimum else { throw IRMError("\(path): \"\(name)\" should be a whole number ≥ \(minimum), found \(v.brief)") }
            return i
        }
        guard try string("format") == formatName else { throw IRMError("\(path): \"format\" should be \"\(formatName)\"") }
        let version = try integer("format_version")
        guard version == formatVersion else { throw IRMError("\(path): format_version \(version) is not one this irm reads (\(formatVersion))") }
        func strings(_ name: String) throws -> [String] {
            let v = try value(name)
            guard let items = v.arrayValue, let all = Optional(items.compactMap(\.stringValue)), all.count == items.count else {
                throw IRMError("\(path): \"\(name)\" should be an array of strings, found \(v.brief)")
            }
            return all
        }
        let endsValue = try value("block_ends")
        guard let endItems = endsValue.arrayValue else { throw IRMError("\(path): \"block_ends\" should be an array, found \(endsValue.brief)") }
        var ends: [Int] = []
        for item in endItems {
            guard let end = item.intValue else { throw IRMError("\(path): \"block_ends\" should hold whole numbers, found \(item.brief)") }
            ends.append(end)
        }
        let inputsValue = try value("inputs")
        guard let inputItems = inputsValue.arrayValue else { throw IRMError("\(path): \"inputs\" should be an array, found \(inputsValue.brief)") }
        var inputs: [Input] = []
        for item in inputItems {
            guard let role = item["role"]?.stringValue, let file = item["path"]?.stringValue, let sha = item["sha256"]?.stringValue else {
                throw IRMError("\(path): each of \"inputs\" should have string fields role, path and sha256, found \(item.brief)")
            }
            inputs.append(Input(role: role, path: file, sha256: sha))
        }
        let secondsValue = try value("seconds")
        var record = ShardRecord(
            command: try string("command"), shardIndex: try integer("shard"), shards: try integer("shards", minimum: 1),
            entries: try strings("entries"), blockPlan: try string("block_plan_sha256"), sampleCount: try integer("sample_count"),
            blockCount: try integer("block_count"), samples: 0..<0, blockEnds: ends,
            sequencesSHA256: try string("sequences_sha256"), dataSHA256: try string("data_sha256"), convention: try string("convention"),
            irmVersion: try string("irm_version"), inputs: inputs, host: try string("host"), threads: try integer("threads"),
            tokens: try integer("tokens"), seconds: secondsValue.doubleValue ?? 0)
        let start = try integer("sample_start"), end = try integer("sample_end")
        guard start <= end, end <= record.sampleCount else {
            throw IRMError("\(path): samples \(start)..<\(end) are not inside the data's \(record.sampleCount) samples")
        }
        record.samples = start..<end
        guard record.shard < record.shards else { throw IRMError("\(path): shard \(record.shard) of \(record.shards) is out of range") }
        guard url.lastPathComponent == record.fileName else {
            throw IRMError("\(path): records shard \(record.shard) of \(record.shards), but the file name says otherwise (expected \(record.fileName))")
        }
        var previous = start
        for end in ends {
            guard end > previous, end <= record.samples.upperBound else {
                throw IRMError("\(path): \"block_ends\" should rise inside the shard's samples \(start)..<\(record.samples.upperBound), found \(end) after \(previous)")
            }
            previous = end
        }
        guard previous == record.samples.upperBound else {
            throw IRMError("\(path): the blocks end at sample \(previous), the shard at \(record.samples.upperBound)")
        }
        for entry in record.entries where entry.contains("/") || entry.hasPrefix(".") || entry.isEmpty {
            throw IRMError("\(path): \"entries\" holds \"\(MessageText.oneLine(entry))\", which is not an entry directory name")
        }
        return record
    }

    private init(command: String, shardIndex: Int, shards: Int, entries: [String], blockPlan: String, sampleCount: Int, blockCount: Int,
                 samples: Range<Int>, blockEnds: [Int], sequencesSHA256: String, dataSHA256: String, convention: String, irmVersion: String,
                 inputs: [Input], host: String, threads: Int, tokens: Int, seconds: Double) {
        self.command = command
        shard = shardIndex
        self.shards = shards
        self.entries = entries.sorted()
        self.blockPlan = blockPlan
        self.sampleCount = sampleCount
        self.blockCount = blockCount
        self.samples = samples
        self.blockEnds = blockEnds
        self.sequencesSHA256 = sequencesSHA256
        self.dataSHA256 = dataSHA256
        self.convention = convention
        self.irmVersion = irmVersion
        self.inputs = inputs
        self.host = host
        self.threads = threads
        self.tokens = tokens
        self.seconds = seconds
    }

    /// All records in a store, sorted by run, then shard count, then shard. A record that cannot be
    /// read is an error: a merge never guesses.
    public static func all(in store: URL) throws -> [(record: ShardRecord, url: URL)] {
        let folder = store.appendingPathComponent(folderName, isDirectory: true)
        guard let runs = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return [] }
        var found: [(record: ShardRecord, url: URL)] = []
        for run in runs.sorted() where !run.hasPrefix(".") {
            let runFolder = folder.appendingPathComponent(run, isDirectory: true)
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: runFolder.path) else { continue }
            for name in names.sorted() where name.hasPrefix("shard-") && name.hasSuffix(".json") {
                let url = runFolder.appendingPathComponent(name)
                let record = try read(url)
                guard record.runDigest == run else {
                    throw IRMError("\(url.path): records run \(record.runDigest), but lies in the folder of run \(run)")
                }
                found.append((record, url))
            }
        }
        return found.sorted { ($0.record.runDigest, $0.record.shards, $0.record.shard) < ($1.record.runDigest, $1.record.shards, $1.record.shard) }
    }
}
