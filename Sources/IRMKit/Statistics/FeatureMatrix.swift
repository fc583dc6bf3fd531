/// The n × p table of feature values that the regressions explain the reward with: one named
/// column per feature, one row per sample, stored column by column (LAPACK's layout) so that a
/// design matrix is built without transposing.
///
/// Every value is finite: the initialisers reject NaN and ±∞ with a message naming the feature and
/// the row, because a single NaN would silently poison every statistic downstream.
public struct FeatureMatrix: Sendable, Equatable {
    /// Feature names, one per column, unique.
    public let names: [String]
    /// The number of samples (rows), n.
    public let rowCount: Int
    /// Column-major values: feature j of sample i is `values[i + j * rowCount]`.
    public let values: [Double]

    /// The number of features (columns), p.
    public var columnCount: Int { names.count }

    /// Builds the matrix from column-major storage.
    public init(names: [String], columnMajor values: [Double], rowCount: Int) throws {
        guard rowCount >= 0 else { throw IRMError("feature matrix: row count \(rowCount) is negative") }
        guard values.count == rowCount * names.count else {
            throw IRMError("feature matrix: expected \(rowCount) rows × \(names.count) features = \(rowCount * names.count) values, found \(values.count)")
        }
        var seen = Set<String>()
        for name in names where !seen.insert(name).inserted {
            throw IRMError("feature matrix: feature name \"\(name)\" appears more than once; names must be unique")
        }
        for j in names.indices {
            for i in 0..<rowCount where !values[i + j * rowCount].isFinite {
                throw IRMError("feature matrix: feature \"\(names[j])\" has a non-finite value (\(values[i + j * rowCount])) in row \(i); expected a finite number")
            }
        }
        self.names = names
        self.rowCount = rowCount
        self.values = values
    }

    /// Builds the matrix from one array per feature; all must have the same length.
    public init(names: [String], columns: [[Double]]) throws {
        guard names.count == columns.count else {
            throw IRMError("feature matrix: \(names.count) names for \(columns.count) columns")
        }
        let n = columns.first?.count ?? 0
        for (j, column) in columns.enumerated() where column.count != n {
            throw IRMError("feature matrix: feature \"\(names[j])\" has \(column.count) values, expected \(n) like \"\(names[0])\"")
        }
        try self.init(names: names, columnMajor: columns.flatMap { $0 }, rowCount: n)
    }

    /// The values of feature `j`.
    public func column(_ j: Int) -> ArraySlice<Double> {
        values[(j * rowCount)..<((j + 1) * rowCount)]
    }

    /// The value of feature `column` for sample `row`.
    public subscript(row: Int, column: Int) -> Double {
        values[row + column * rowCount]
    }

    /// The column index of a feature, by name.
    public func index(of name: String) -> Int? {
        names.firstIndex(of: name)
    }

    /// The samples at `rows`, in that order (repeats allowed).
    public func selectingRows(_ rows: [Int]) -> FeatureMatrix {
        let m = matrix.selectingRows(rows)
        return FeatureMatrix(validated: names, values: m.values, rowCount: rows.count)
    }

    /// The features at `columns`, in that order.
    public func selectingColumns(_ columns: [Int]) -> FeatureMatrix {
        let m = matrix.selectingColumns(columns)
        return FeatureMatrix(validated: columns.map { names[$0] }, values: m.values, rowCount: rowCount)
    }

    /// The same numbers as a plain matrix.
    var matrix: ColumnMajorMatrix {
        ColumnMajorMatrix(rows: rowCount, columns: columnCount, values: values)
    }

    private init(validated names: [String], values: [Double], rowCount: Int) {
        self.names = names
        self.values = values
        self.rowCount = rowCount
    }
}
