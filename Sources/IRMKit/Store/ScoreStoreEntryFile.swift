import Foundation

/// An entry's `entry.h5`: its key, sample count, block plan and schema, written once
/// (docs/score-store.md, "entry.h5").
enum ScoreStoreEntryFile {
    static let fileName = "entry.h5"
    static let formatName = "irm-score-entry"

    /// What an entry.h5 records that the store checks on open.
    struct Record: Equatable {
        let keyDigest: String
        let irmVersion: String
        let sampleCount: Int
        let blockCount: Int
        /// `ShardPlan.digest(of:sampleCount:)` of the entry's blocks.
        let blockPlan: String
        let schema: ScoreStore.Schema
    }

    static func write(key: ScoreStore.Key, sampleCount: Int, blocks: [Range<Int>], schema: ScoreStore.Schema, to path: String) throws {
        let file = try HDF5File.create(path, overwrite: false)
        let root = try file.root()
        try root.setAttribute("irm_format", .string(formatName))
        try root.setAttribute("irm_format_version", .int(Int64(ScoreStore.formatVersion)))
        try root.setAttribute("key_digest", .string(key.digest))
        try root.setAttribute("key", .string(key.canonicalText))
        try root.setAttribute("checkpoint_sha256", .string(key.checkpointSHA256))
        try root.setAttribute("data_sha256", .string(key.dataSHA256))
        try root.setAttribute("convention", .string(key.convention))
        try root.setAttribute("irm_version", .string(key.irmVersion))
        try root.setAttribute("kind", .string(key.kind.tag))
        if case .kl(let base) = key.kind { try root.setAttribute("base_sha256", .string(base.lowercased())) }
        if !key.options.isEmpty {
            let names = key.options.keys.sorted()
            try root.setAttribute("option_names", .strings(names))
            try root.setAttribute("option_values", .strings(names.map { key.options[$0] ?? "" }))
        }
        try root.setAttribute("sample_count", .int(Int64(sampleCount)))
        try root.setAttribute("block_count", .int(Int64(blocks.count)))
        try root.setAttribute("block_plan_sha256", .string(ShardPlan.digest(of: blocks, sampleCount: sampleCount)))
        try root.setAttribute("column_names", .strings(schema.columns.map(\.name)))
        try root.setAttribute("column_arrangements", .strings(schema.columns.map(\.layout.arrangement.rawValue)))
        try root.setAttribute("column_dtypes", .strings(schema.columns.map(\.layout.precision.rawValue)))
        try root.setAttribute("column_widths", .ints(schema.columns.map { Int64($0.layout.width) }))
        try file.flush()
    }

    /// Reads what the store checks. Any damage is an `IRMError` naming the file and attribute.
    static func read(_ path: String) throws -> Record {
        let root = try HDF5File.open(path).root()
        func problem(_ name: String, _ expected: String, _ found: HDF5AttributeValue?) -> IRMError {
            IRMError("\(path): attribute \(name): expected \(expected), found \(found.map(\.description) ?? "none")")
        }
        func string(_ name: String) throws -> String {
            let value = try root.attribute(name)
            guard let text = value?.stringValue else { throw problem(name, "a string", value) }
            return text
        }
        func integer(_ name: String) throws -> Int {
            let value = try root.attribute(name)
            guard let number = value?.intValue, let result = Int(exactly: number) else { throw problem(name, "an integer", value) }
            return result
        }
        func strings(_ name: String) throws -> [String] {
            let value = try root.attribute(name)
            switch value {
            case .string(let one)?: return [one]
            case .strings(let many)?: return many
            default: throw problem(name, "a list of strings", value)
            }
        }
        func integers(_ name: String) throws -> [Int] {
            let value = try root.attribute(name)
            switch value {
            case .int(let one)?: return [Int(one)]
            case .ints(let many)?: return many.map { Int($0) }
            default: throw problem(name, "a list of integers", value)
            }
        }
        let format = try string("irm_format")
        guard format == formatName else { throw IRMError("\(path): attribute irm_format: expected \"\(formatName)\", found \"\(format)\"") }
        let version = try integer("irm_format_version")
        guard version == ScoreStore.formatVersion else {
            throw IRMError("\(path): attribute irm_format_version: expected \(ScoreStore.formatVersion), found \(version)")
        }
        let names = try strings("column_names")
        let arrangements = try strings("column_arrangements")
        let dtypes = try strings("column_dtypes")
        let widths = try integers("column_widths")
        guard arrangements.count == names.count, dtypes.count == names.count, widths.count == names.count else {
            throw IRMError("\(path): expected as many column arrangements, dtypes and widths as column names (\(names.count)), found \(arrangements.count), \(dtypes.count) and \(widths.count)")
        }
        var columns: [ScoreStore.ColumnSpec] = []
        for index in names.indices {
            guard let arrangement = ScoreStore.Layout.Arrangement(rawValue: arrangements[index]),
                  let precision = ScoreStore.Precision(rawValue: dtypes[index]) else {
                throw IRMError("\(path): column \"\(names[index])\": expected arrangement ragged or vectors and dtype float32 or float64, found \(arrangements[index]) and \(dtypes[index])")
            }
            columns.append(ScoreStore.ColumnSpec(names[index], ScoreStore.Layout(arrangement: arrangement, precision: precision, width: widths[index])))
        }
        return Record(keyDigest: try string("key_digest"), irmVersion: try string("irm_version"), sampleCount: try integer("sample_count"),
                      blockCount: try integer("block_count"), blockPlan: try string("block_plan_sha256"), schema: ScoreStore.Schema(columns))
    }
}
