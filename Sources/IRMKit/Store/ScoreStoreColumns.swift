import Foundation

extension ScoreStore {
    /// The stored floating-point type of a column.
    public enum Precision: String, Sendable, Hashable, CaseIterable {
        case float32, float64
    }

    /// How a column holds one value per sample. Two arrangements cover every kind:
    /// - `ragged`: per sample, a variable number of rows of `width` values (zero rows allowed), e.g.
    ///   one log-prob per response token (width 1) or one hidden state per token (width W);
    /// - `vectors`: per sample, exactly one row of `width` values, e.g. a reward vector.
    public struct Layout: Sendable, Hashable, CustomStringConvertible {
        public enum Arrangement: String, Sendable, Hashable {
            case ragged, vectors
        }

        public let arrangement: Arrangement
        public let precision: Precision
        public let width: Int

        public init(arrangement: Arrangement, precision: Precision, width: Int) {
            self.arrangement = arrangement
            self.precision = precision
            self.width = width
        }

        public static func ragged(_ precision: Precision, width: Int = 1) -> Layout {
            Layout(arrangement: .ragged, precision: precision, width: width)
        }

        public static func vectors(_ precision: Precision, width: Int) -> Layout {
            Layout(arrangement: .vectors, precision: precision, width: width)
        }

        public var description: String {
            switch arrangement {
            case .ragged: "ragged \(precision) rows of width \(width)"
            case .vectors: "one \(precision) vector of width \(width) per sample"
            }
        }
    }

    /// One named column of an entry.
    public struct ColumnSpec: Sendable, Hashable, CustomStringConvertible {
        public let name: String
        public let layout: Layout

        public init(_ name: String, _ layout: Layout) {
            self.name = name
            self.layout = layout
        }

        public var description: String { "\(name): \(layout)" }
    }

    /// The columns of an entry, in a fixed order. An entry's schema is recorded in its `entry.h5`;
    /// opening the entry with another schema is an error (the kind and the checkpoint decide it, so a
    /// difference means the caller changed, and the caller should say so through the key).
    public struct Schema: Sendable, Hashable, CustomStringConvertible {
        public let columns: [ColumnSpec]

        public init(_ columns: [ColumnSpec]) {
            self.columns = columns
        }

        /// `logprob`: ragged float64, width 1. A token with no context is NaN (read back as nil).
        public static let logprobs = Schema([ColumnSpec("logprob", .ragged(.float64))])

        /// `kl`: ragged float64, width 1; with `addedRowMass`, also `added_row_mass` (same shape).
        public static func kl(addedRowMass: Bool) -> Schema {
            Schema([ColumnSpec("kl", .ragged(.float64))] + (addedRowMass ? [ColumnSpec("added_row_mass", .ragged(.float64))] : []))
        }

        /// `hidden`: ragged float32 rows of the model's width, one per predicting row.
        public static func finalHidden(width: Int) -> Schema {
            Schema([ColumnSpec("hidden", .ragged(.float32, width: width))])
        }

        /// One `vectors` column per name (e.g. `["prompt", "response"]`), each of the model's width.
        public static func pooledHidden(width: Int, names: [String], precision: Precision = .float64) -> Schema {
            Schema(names.map { ColumnSpec($0, .vectors(precision, width: width)) })
        }

        /// `reward`: one float64 vector per sample, as wide as the reward model's labels.
        public static func reward(labels: Int) -> Schema {
            Schema([ColumnSpec("reward", .vectors(.float64, width: labels))])
        }

        public var description: String { "[" + columns.map(\.description).joined(separator: "; ") + "]" }

        func validate() throws {
            guard !columns.isEmpty else { throw IRMError("score store schema: expected at least one column, found none") }
            var seen = Set<String>()
            for column in columns {
                let allowed = !column.name.isEmpty && column.name.utf8.allSatisfy {
                    (97...122).contains($0) || (48...57).contains($0) || $0 == UInt8(ascii: "_")
                }
                guard allowed else {
                    throw IRMError("score store schema: column name \"\(column.name)\" must be non-empty lower-case letters, digits and underscores")
                }
                guard seen.insert(column.name).inserted else {
                    throw IRMError("score store schema: column \"\(column.name)\" appears twice")
                }
                guard column.layout.width >= 1 else {
                    throw IRMError("score store schema: column \"\(column.name)\" has width \(column.layout.width); expected at least 1")
                }
            }
        }
    }

    /// Per sample, a variable number of rows of `width` values, kept flat: sample `i` is rows
    /// `offsets[i] ..< offsets[i+1]`, that is values `offsets[i]·width ..< offsets[i+1]·width`.
    public struct RaggedRows<Element: HDF5Numeric & BinaryFloatingPoint>: Sendable {
        public let width: Int
        /// `count + 1` row offsets, starting at 0, non-decreasing.
        public private(set) var offsets: [Int]
        /// `offsets.last · width` values, row-major.
        public private(set) var values: [Element]

        /// No samples yet.
        public init(width: Int = 1) {
            self.width = max(width, 1)
            offsets = [0]
            values = []
        }

        /// Checks the invariants: width ≥ 1, offsets start at 0 and never decrease, and the values
        /// fill exactly the last offset's rows.
        public init(width: Int, offsets: [Int], values: [Element]) throws {
            guard width >= 1 else { throw IRMError("ragged rows: expected a width of at least 1, found \(width)") }
            guard offsets.first == 0 else {
                throw IRMError("ragged rows: expected offsets starting at 0, found \(offsets.first.map(String.init) ?? "no offsets")")
            }
            for index in 1..<offsets.count where offsets[index] < offsets[index - 1] {
                throw IRMError("ragged rows: offsets decrease at sample \(index - 1) (\(offsets[index - 1]) then \(offsets[index]))")
            }
            let last = offsets[offsets.count - 1]
            let (needed, overflow) = last.multipliedReportingOverflow(by: width)
            guard !overflow, needed == values.count else {
                throw IRMError("ragged rows: expected \(last) rows of width \(width), found \(values.count) values")
            }
            self.width = width
            self.offsets = offsets
            self.values = values
        }

        /// One flat array per sample, each a whole number of rows.
        public init(width: Int, samples: [[Element]]) throws {
            guard width >= 1 else { throw IRMError("ragged rows: expected a width of at least 1, found \(width)") }
            self.init(width: width)
            for sample in samples { try append(sample: sample) }
        }

        public var count: Int { offsets.count - 1 }

        /// Rows of sample `index`.
        public func rowCount(of index: Int) -> Int { offsets[index + 1] - offsets[index] }

        /// Sample `index`'s rows, flat.
        public subscript(index: Int) -> ArraySlice<Element> {
            values[(offsets[index] * width)..<(offsets[index + 1] * width)]
        }

        /// Appends one sample given as its rows, flat; the count must be a multiple of `width`.
        public mutating func append<C: Collection>(sample: C) throws where C.Element == Element {
            guard sample.count % width == 0 else {
                throw IRMError("ragged rows: sample \(count) has \(sample.count) values, which is not a whole number of rows of width \(width)")
            }
            values.append(contentsOf: sample)
            offsets.append(offsets[offsets.count - 1] + sample.count / width)
        }

        /// Appends all samples of `other`, which must have the same width.
        public mutating func append(contentsOf other: RaggedRows) throws {
            guard other.width == width else {
                throw IRMError("ragged rows: cannot append rows of width \(other.width) to rows of width \(width)")
            }
            let base = offsets[offsets.count - 1]
            offsets.append(contentsOf: other.offsets.dropFirst().map { $0 + base })
            values.append(contentsOf: other.values)
        }
    }

    /// Per sample, one vector of `width` values, row-major.
    public struct Vectors<Element: HDF5Numeric & BinaryFloatingPoint>: Sendable {
        public let width: Int
        public private(set) var values: [Element]

        public init(width: Int) {
            self.width = max(width, 1)
            values = []
        }

        /// `values.count` must be a multiple of `width`.
        public init(width: Int, values: [Element]) throws {
            guard width >= 1 else { throw IRMError("vectors: expected a width of at least 1, found \(width)") }
            guard values.count % width == 0 else {
                throw IRMError("vectors: \(values.count) values are not a whole number of vectors of width \(width)")
            }
            self.width = width
            self.values = values
        }

        /// One vector per sample; each must have `width` values.
        public init(width: Int, vectors: [[Element]]) throws {
            guard width >= 1 else { throw IRMError("vectors: expected a width of at least 1, found \(width)") }
            for (index, vector) in vectors.enumerated() where vector.count != width {
                throw IRMError("vectors: sample \(index) has \(vector.count) values; expected \(width)")
            }
            self.width = width
            self.values = vectors.flatMap { $0 }
        }

        public var count: Int { values.count / width }

        public subscript(index: Int) -> ArraySlice<Element> {
            values[(index * width)..<((index + 1) * width)]
        }

        public mutating func append(contentsOf other: Vectors) throws {
            guard other.width == width else {
                throw IRMError("vectors: cannot append vectors of width \(other.width) to vectors of width \(width)")
            }
            values.append(contentsOf: other.values)
        }
    }

    /// The values of one column for a run of samples.
    public enum ColumnData: Sendable {
        case raggedFloat64(RaggedRows<Double>)
        case raggedFloat32(RaggedRows<Float>)
        case vectorsFloat64(Vectors<Double>)
        case vectorsFloat32(Vectors<Float>)

        public var sampleCount: Int {
            switch self {
            case .raggedFloat64(let c): c.count
            case .raggedFloat32(let c): c.count
            case .vectorsFloat64(let c): c.count
            case .vectorsFloat32(let c): c.count
            }
        }

        /// The layout these values have.
        public var layout: Layout {
            switch self {
            case .raggedFloat64(let c): .ragged(.float64, width: c.width)
            case .raggedFloat32(let c): .ragged(.float32, width: c.width)
            case .vectorsFloat64(let c): .vectors(.float64, width: c.width)
            case .vectorsFloat32(let c): .vectors(.float32, width: c.width)
            }
        }

        /// No samples, in `layout`.
        static func empty(_ layout: Layout) -> ColumnData {
            switch (layout.arrangement, layout.precision) {
            case (.ragged, .float64): .raggedFloat64(RaggedRows(width: layout.width))
            case (.ragged, .float32): .raggedFloat32(RaggedRows(width: layout.width))
            case (.vectors, .float64): .vectorsFloat64(Vectors(width: layout.width))
            case (.vectors, .float32): .vectorsFloat32(Vectors(width: layout.width))
            }
        }

        mutating func append(contentsOf other: ColumnData) throws {
            switch (self, other) {
            case (.raggedFloat64(var a), .raggedFloat64(let b)): try a.append(contentsOf: b); self = .raggedFloat64(a)
            case (.raggedFloat32(var a), .raggedFloat32(let b)): try a.append(contentsOf: b); self = .raggedFloat32(a)
            case (.vectorsFloat64(var a), .vectorsFloat64(let b)): try a.append(contentsOf: b); self = .vectorsFloat64(a)
            case (.vectorsFloat32(var a), .vectorsFloat32(let b)): try a.append(contentsOf: b); self = .vectorsFloat32(a)
            default: throw IRMError("score store: cannot append \(other.layout) to \(layout)")
            }
        }
    }

    /// The columns of a run of samples, by name.
    public struct Columns: Sendable {
        public private(set) var byName: [String: ColumnData]

        public init(_ byName: [String: ColumnData] = [:]) {
            self.byName = byName
        }

        public subscript(name: String) -> ColumnData? {
            get { byName[name] }
            set { byName[name] = newValue }
        }

        /// The common sample count of the columns, or nil when there are none or they disagree.
        public var sampleCount: Int? {
            let counts = Set(byName.values.map(\.sampleCount))
            return counts.count == 1 ? counts.first : nil
        }

        public func raggedFloat64(_ name: String) throws -> RaggedRows<Double> {
            guard case .raggedFloat64(let c)? = byName[name] else { throw mismatch(name, "ragged float64") }
            return c
        }

        public func raggedFloat32(_ name: String) throws -> RaggedRows<Float> {
            guard case .raggedFloat32(let c)? = byName[name] else { throw mismatch(name, "ragged float32") }
            return c
        }

        public func vectorsFloat64(_ name: String) throws -> Vectors<Double> {
            guard case .vectorsFloat64(let c)? = byName[name] else { throw mismatch(name, "float64 vectors") }
            return c
        }

        public func vectorsFloat32(_ name: String) throws -> Vectors<Float> {
            guard case .vectorsFloat32(let c)? = byName[name] else { throw mismatch(name, "float32 vectors") }
            return c
        }

        private func mismatch(_ name: String, _ expected: String) -> IRMError {
            let found = byName[name].map { "\($0.layout)" } ?? "no such column (columns: \(byName.keys.sorted().joined(separator: ", ")))"
            return IRMError("score store column \"\(name)\": expected \(expected), found \(found)")
        }

        /// Zero samples of every column of `schema`.
        static func empty(_ schema: Schema) -> Columns {
            Columns(Dictionary(uniqueKeysWithValues: schema.columns.map { ($0.name, ColumnData.empty($0.layout)) }))
        }

        mutating func append(_ other: Columns) throws {
            for (name, data) in other.byName {
                guard var mine = byName[name] else { throw IRMError("score store: column \"\(name)\" is not in the columns appended to") }
                try mine.append(contentsOf: data)
                byName[name] = mine
            }
        }

        /// Checks that the columns are exactly `schema`'s, each with `count` samples.
        func check(against schema: Schema, count: Int, what: String) throws {
            let expected = Set(schema.columns.map(\.name))
            let found = Set(byName.keys)
            guard expected == found else {
                throw IRMError("\(what): expected the columns \(schema.columns.map(\.name).joined(separator: ", ")), found \(byName.keys.sorted().joined(separator: ", "))")
            }
            for spec in schema.columns {
                guard let data = byName[spec.name] else { continue }
                guard data.layout == spec.layout else {
                    throw IRMError("\(what): column \"\(spec.name)\": expected \(spec.layout), found \(data.layout)")
                }
                guard data.sampleCount == count else {
                    throw IRMError("\(what): column \"\(spec.name)\": expected \(count) samples, found \(data.sampleCount)")
                }
            }
        }
    }
}

extension ScoreStore.RaggedRows where Element == Double {
    /// One list per sample (width 1); nil is stored as NaN.
    public init(lists: [[Double?]]) {
        self.init(width: 1)
        for list in lists {
            values.append(contentsOf: list.map { $0 ?? .nan })
            offsets.append(offsets[offsets.count - 1] + list.count)
        }
    }

    /// Sample `index`'s values (width 1) with NaN read back as nil. A NaN that was a value, not a
    /// nil, also comes back as nil: the store does not tell them apart.
    public func list(_ index: Int) -> [Double?] {
        self[index].map { $0.isNaN ? nil : $0 }
    }

    /// Every sample's list (width 1), NaN as nil.
    public var lists: [[Double?]] { (0..<count).map(list) }
}
