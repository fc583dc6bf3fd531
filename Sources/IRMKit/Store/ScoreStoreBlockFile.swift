import Foundation

/// Why a block file cannot be used. The entry turns it into a `ScoreStore.Warning` and treats the
/// block as missing.
struct ScoreStoreBlockProblem: Error {
    let problem: ScoreStore.Warning.Problem
    let detail: String
}

/// One block file, `block-<start>-<end>.h5` (docs/score-store.md, "Block files").
enum ScoreStoreBlockFile {
    static let formatName = "irm-score-block"

    /// What a block file must record about itself to belong to an entry.
    struct Header: Equatable {
        let keyDigest: String
        let irmVersion: String
        let samples: Range<Int>
        let sampleCount: Int
        /// The entry's `block_plan_sha256`.
        let blockPlan: String
    }

    static func fileName(for block: Range<Int>) -> String {
        "block-\(block.lowerBound)-\(block.upperBound).h5"
    }

    /// SHA-256 (hex) of the elements' in-memory bytes: little-endian on every platform Swift runs on.
    static func checksum<T>(_ values: [T]) -> String {
        values.withUnsafeBytes { SHA256.hex($0) }
    }

    // MARK: Writing

    /// Writes a new block file at `path` (which must not exist). The caller has checked the columns
    /// against the schema. Attributes and columns are written in a fixed order, and libhdf5 stores no
    /// times (HDF5File.create), so the same block gives the same bytes.
    static func write(_ columns: ScoreStore.Columns, schema: ScoreStore.Schema, header: Header, to path: String) throws {
        let file = try HDF5File.create(path, overwrite: false)
        let root = try file.root()
        try root.setAttribute("irm_format", .string(formatName))
        try root.setAttribute("irm_format_version", .int(Int64(ScoreStore.formatVersion)))
        try root.setAttribute("key_digest", .string(header.keyDigest))
        try root.setAttribute("irm_version", .string(header.irmVersion))
        try root.setAttribute("sample_start", .int(Int64(header.samples.lowerBound)))
        try root.setAttribute("sample_end", .int(Int64(header.samples.upperBound)))
        try root.setAttribute("sample_count", .int(Int64(header.sampleCount)))
        try root.setAttribute("block_plan_sha256", .string(header.blockPlan))
        for spec in schema.columns {
            guard let data = columns[spec.name] else { continue }
            let group = try root.createGroup(spec.name)
            try group.setAttribute("arrangement", .string(spec.layout.arrangement.rawValue))
            try group.setAttribute("dtype", .string(spec.layout.precision.rawValue))
            try group.setAttribute("width", .int(Int64(spec.layout.width)))
            switch data {
            case .raggedFloat64(let c): try writeRagged(c, into: group)
            case .raggedFloat32(let c): try writeRagged(c, into: group)
            case .vectorsFloat64(let c): try writeDataset("values", c.values, shape: [c.count, c.width], into: group)
            case .vectorsFloat32(let c): try writeDataset("values", c.values, shape: [c.count, c.width], into: group)
            }
        }
        try file.flush()
    }

    private static func writeRagged<T>(_ rows: ScoreStore.RaggedRows<T>, into group: HDF5Group) throws {
        try writeDataset("offsets", rows.offsets.map { Int64($0) }, shape: [rows.offsets.count], into: group)
        try writeDataset("values", rows.values, shape: [rows.offsets[rows.offsets.count - 1], rows.width], into: group)
    }

    private static func writeDataset<T: HDF5Numeric>(_ name: String, _ values: [T], shape: [Int], into group: HDF5Group) throws {
        try group.createDataset(name, values: values, shape: shape)
        try group.dataset(name).setAttribute("sha256", .string(checksum(values)))
    }

    // MARK: Reading

    /// Reads and verifies a block file: its header against `expected`, every column's layout and
    /// shapes against `schema`, offset monotonicity, and every dataset's SHA-256. Every failure is a
    /// `ScoreStoreBlockProblem`; nothing here crashes on a damaged file.
    static func read(_ path: String, schema: ScoreStore.Schema, expected: Header) throws(ScoreStoreBlockProblem) -> ScoreStore.Columns {
        let root: HDF5Group
        do {
            root = try HDF5File.open(path).root()
        } catch {
            throw ScoreStoreBlockProblem(problem: .unreadableBlock,
                                         detail: "cannot be opened as HDF5 (\(error)); an interrupted copy or a damaged disk can leave such a file")
        }
        try checkHeader(root, expected: expected)
        do {
            let names = try root.childNames()
            let expectedNames = schema.columns.map(\.name).sorted()
            guard names == expectedNames else {
                throw invalid("expected the column groups \(expectedNames.joined(separator: ", ")), found \(names.isEmpty ? "none" : names.joined(separator: ", "))")
            }
            var columns = ScoreStore.Columns()
            let count = expected.samples.count
            for spec in schema.columns {
                let group = try root.group(spec.name)
                try checkLayout(group, spec)
                switch (spec.layout.arrangement, spec.layout.precision) {
                case (.ragged, .float64):
                    columns[spec.name] = .raggedFloat64(try readRagged(group, spec, count: count, as: Double.self))
                case (.ragged, .float32):
                    columns[spec.name] = .raggedFloat32(try readRagged(group, spec, count: count, as: Float.self))
                case (.vectors, .float64):
                    let values = try readVerified(group, "values", shape: [count, spec.layout.width], as: Double.self)
                    columns[spec.name] = .vectorsFloat64(try ScoreStore.Vectors(width: spec.layout.width, values: values))
                case (.vectors, .float32):
                    let values = try readVerified(group, "values", shape: [count, spec.layout.width], as: Float.self)
                    columns[spec.name] = .vectorsFloat32(try ScoreStore.Vectors(width: spec.layout.width, values: values))
                }
            }
            return columns
        } catch let problem as ScoreStoreBlockProblem {
            throw problem
        } catch {
            throw ScoreStoreBlockProblem(problem: .invalidBlock, detail: "\(error)")
        }
    }

    private static func invalid(_ detail: String) -> ScoreStoreBlockProblem {
        ScoreStoreBlockProblem(problem: .invalidBlock, detail: detail)
    }

    private static func checkHeader(_ root: HDF5Group, expected: Header) throws(ScoreStoreBlockProblem) {
        func foreign(_ detail: String) -> ScoreStoreBlockProblem {
            ScoreStoreBlockProblem(problem: .foreignBlock, detail: detail)
        }
        let attributes: [String: HDF5AttributeValue]
        do {
            attributes = try Dictionary(uniqueKeysWithValues: root.attributeNames().compactMap { name in
                try root.attribute(name).map { (name, $0) }
            })
        } catch {
            throw ScoreStoreBlockProblem(problem: .unreadableBlock, detail: "cannot read the root attributes (\(error))")
        }
        let format = attributes["irm_format"]?.stringValue
        guard format == formatName else {
            throw foreign("attribute irm_format: expected \"\(formatName)\", found \(format.map { "\"\($0)\"" } ?? "none")")
        }
        let version = attributes["irm_format_version"]?.intValue
        guard version == Int64(ScoreStore.formatVersion) else {
            throw foreign("attribute irm_format_version: expected \(ScoreStore.formatVersion), found \(version.map(String.init) ?? "none")")
        }
        let strings: [(String, String)] = [("key_digest", expected.keyDigest), ("irm_version", expected.irmVersion),
                                           ("block_plan_sha256", expected.blockPlan)]
        for (name, value) in strings {
            let found = attributes[name]?.stringValue
            guard found == value else {
                throw foreign("attribute \(name): expected \"\(value)\", found \(found.map { "\"\($0)\"" } ?? "none")")
            }
        }
        let integers: [(String, Int)] = [
            ("sample_start", expected.samples.lowerBound), ("sample_end", expected.samples.upperBound),
            ("sample_count", expected.sampleCount),
        ]
        for (name, value) in integers {
            let found = attributes[name]?.intValue
            guard found == Int64(value) else {
                throw foreign("attribute \(name): expected \(value), found \(found.map(String.init) ?? "none")")
            }
        }
    }

    private static func checkLayout(_ group: HDF5Group, _ spec: ScoreStore.ColumnSpec) throws {
        let arrangement = try group.attribute("arrangement")?.stringValue
        let dtype = try group.attribute("dtype")?.stringValue
        let width = try group.attribute("width")?.intValue
        guard arrangement == spec.layout.arrangement.rawValue, dtype == spec.layout.precision.rawValue,
              width == Int64(spec.layout.width) else {
            throw invalid("\(group.path): expected \(spec.layout) (arrangement \(spec.layout.arrangement.rawValue), dtype \(spec.layout.precision.rawValue), width \(spec.layout.width)), found arrangement \(arrangement ?? "none"), dtype \(dtype ?? "none"), width \(width.map(String.init) ?? "none")")
        }
    }

    private static func readRagged<T>(_ group: HDF5Group, _ spec: ScoreStore.ColumnSpec, count: Int, as type: T.Type) throws -> ScoreStore.RaggedRows<T> {
        let offsets = try readVerified(group, "offsets", shape: [count + 1], as: Int64.self)
        guard offsets.first == 0 else {
            throw invalid("\(group.path)/offsets: expected the first offset to be 0, found \(offsets.first.map(String.init) ?? "none")")
        }
        for index in 1..<offsets.count where offsets[index] < offsets[index - 1] {
            throw invalid("\(group.path)/offsets: expected non-decreasing offsets, found \(offsets[index - 1]) then \(offsets[index]) at sample \(index - 1)")
        }
        let rows = offsets[offsets.count - 1]
        guard rows <= Int64(Int.max / max(spec.layout.width, 1)) else {
            throw invalid("\(group.path)/offsets: the last offset \(rows) is too large")
        }
        let values = try readVerified(group, "values", shape: [Int(rows), spec.layout.width], as: T.self)
        do {
            return try ScoreStore.RaggedRows(width: spec.layout.width, offsets: offsets.map { Int($0) }, values: values)
        } catch {
            throw invalid("\(group.path): \(error)")
        }
    }

    /// Reads a dataset of exactly `shape` and checks its `sha256` attribute.
    private static func readVerified<T: HDF5Numeric>(_ group: HDF5Group, _ name: String, shape: [Int], as type: T.Type) throws -> [T] {
        let dataset = try group.dataset(name)
        guard dataset.info.elementType == T.hdf5ElementType, dataset.info.shape == shape else {
            throw invalid("\(dataset.path): expected \(T.hdf5ElementType) of shape \(shape), found \(dataset.info.elementType) of shape \(dataset.info.shape)")
        }
        let values: [T]
        do {
            values = try dataset.read(as: T.self, expectedShape: shape).values
        } catch {
            throw ScoreStoreBlockProblem(problem: .unreadableBlock, detail: "\(error)")
        }
        let recorded = try dataset.attribute("sha256")?.stringValue
        let actual = checksum(values)
        guard recorded == actual else {
            throw ScoreStoreBlockProblem(problem: .checksumMismatch,
                                         detail: "\(dataset.path): the values' SHA-256 is \(actual), the recorded one \(recorded ?? "missing")")
        }
        return values
    }
}
