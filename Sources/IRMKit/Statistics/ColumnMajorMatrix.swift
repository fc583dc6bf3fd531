import CBLAS
import CLapack

/// A dense real matrix stored column by column (LAPACK's native layout), with the few
/// LAPACK/BLAS operations the statistics layer needs. Element (i, j) is `values[i + j * rows]`.
///
/// BLAS and LAPACK run on one thread (`ComputeThreads`), so no result depends on the thread count.
/// Failures of LAPACK routines are returned as `IRMError`s naming the routine and its `info` code;
/// with the inputs this layer builds (finite, validated) they indicate a bug rather than bad data.
struct ColumnMajorMatrix: Sendable, Equatable {
    let rows: Int
    let columns: Int
    var values: [Double]

    init(rows: Int, columns: Int, values: [Double]) {
        precondition(values.count == rows * columns, "ColumnMajorMatrix: \(values.count) values for \(rows)×\(columns)")
        self.rows = rows
        self.columns = columns
        self.values = values
    }

    init(rows: Int, columns: Int, repeating value: Double = 0) {
        self.init(rows: rows, columns: columns, values: Array(repeating: value, count: rows * columns))
    }

    static func identity(_ n: Int) -> ColumnMajorMatrix {
        var m = ColumnMajorMatrix(rows: n, columns: n)
        for i in 0..<n { m[i, i] = 1 }
        return m
    }

    subscript(row: Int, column: Int) -> Double {
        get { values[row + column * rows] }
        set { values[row + column * rows] = newValue }
    }

    /// The columns at `indices`, in that order.
    func selectingColumns(_ indices: [Int]) -> ColumnMajorMatrix {
        var out = [Double]()
        out.reserveCapacity(rows * indices.count)
        for j in indices { out.append(contentsOf: values[(j * rows)..<((j + 1) * rows)]) }
        return ColumnMajorMatrix(rows: rows, columns: indices.count, values: out)
    }

    /// The rows at `indices`, in that order (repeats allowed, as in a bootstrap resample).
    func selectingRows(_ indices: [Int]) -> ColumnMajorMatrix {
        var out = [Double]()
        out.reserveCapacity(indices.count * columns)
        for j in 0..<columns {
            let base = j * rows
            for i in indices { out.append(values[base + i]) }
        }
        return ColumnMajorMatrix(rows: indices.count, columns: columns, values: out)
    }

    var transposed: ColumnMajorMatrix {
        var t = ColumnMajorMatrix(rows: columns, columns: rows)
        for j in 0..<columns { for i in 0..<rows { t[j, i] = self[i, j] } }
        return t
    }

    /// op(A) · op(B) by `cblas_dgemm`.
    static func product(_ a: ColumnMajorMatrix, transposeA: Bool = false,
                               _ b: ColumnMajorMatrix, transposeB: Bool = false) -> ColumnMajorMatrix {
        let m = transposeA ? a.columns : a.rows
        let k = transposeA ? a.rows : a.columns
        let n = transposeB ? b.rows : b.columns
        precondition(k == (transposeB ? b.columns : b.rows), "product: inner dimensions differ")
        var c = ColumnMajorMatrix(rows: m, columns: n)
        if m == 0 || n == 0 || k == 0 { return c }
        a.values.withUnsafeBufferPointer { pa in
            b.values.withUnsafeBufferPointer { pb in
                c.values.withUnsafeMutableBufferPointer { pc in
                    ComputeThreads.requireSingleThreadedBLAS()
                    cblas_dgemm(CblasColMajor, transposeA ? CblasTrans : CblasNoTrans,
                                transposeB ? CblasTrans : CblasNoTrans,
                                Int32(m), Int32(n), Int32(k), 1, pa.baseAddress, Int32(max(a.rows, 1)),
                                pb.baseAddress, Int32(max(b.rows, 1)), 0, pc.baseAddress, Int32(max(m, 1)))
                }
            }
        }
        return c
    }

    /// A · x.
    func times(_ x: [Double]) -> [Double] {
        precondition(x.count == columns, "times: vector length differs from column count")
        var y = [Double](repeating: 0, count: rows)
        if rows == 0 || columns == 0 { return y }
        values.withUnsafeBufferPointer { pa in
            x.withUnsafeBufferPointer { px in
                y.withUnsafeMutableBufferPointer { py in
                    ComputeThreads.requireSingleThreadedBLAS()
                    cblas_dgemv(CblasColMajor, CblasNoTrans, Int32(rows), Int32(columns), 1, pa.baseAddress,
                                Int32(max(rows, 1)), px.baseAddress, 1, 0, py.baseAddress, 1)
                }
            }
        }
        return y
    }

    /// Aᵀ · x.
    func transposeTimes(_ x: [Double]) -> [Double] {
        precondition(x.count == rows, "transposeTimes: vector length differs from row count")
        var y = [Double](repeating: 0, count: columns)
        if rows == 0 || columns == 0 { return y }
        values.withUnsafeBufferPointer { pa in
            x.withUnsafeBufferPointer { px in
                y.withUnsafeMutableBufferPointer { py in
                    ComputeThreads.requireSingleThreadedBLAS()
                    cblas_dgemv(CblasColMajor, CblasTrans, Int32(rows), Int32(columns), 1, pa.baseAddress,
                                Int32(max(rows, 1)), px.baseAddress, 1, 0, py.baseAddress, 1)
                }
            }
        }
        return y
    }

    /// The singular values, largest first (`dgesdd`, no vectors).
    func singularValues() throws -> [Double] {
        var a = values
        var s = [Double](repeating: 0, count: min(rows, columns))
        if s.isEmpty { return s }
        var u = [Double](repeating: 0, count: 1), vt = [Double](repeating: 0, count: 1)
        ComputeThreads.requireSingleThreadedBLAS()
        let info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "N")), Int32(rows), Int32(columns), &a,
                                  Int32(max(rows, 1)), &s, &u, 1, &vt, 1)
        guard info == 0 else { throw IRMError("LAPACK dgesdd failed on a \(rows)×\(columns) matrix (info \(info))") }
        return s
    }

    /// The thin SVD A = U diag(s) Vᵀ (`dgesdd`): U is rows×r, Vᵀ is r×columns, r = min(rows, columns).
    func thinSVD() throws -> (u: ColumnMajorMatrix, s: [Double], vt: ColumnMajorMatrix) {
        let r = min(rows, columns)
        var a = values
        var s = [Double](repeating: 0, count: r)
        var u = [Double](repeating: 0, count: rows * r)
        var vt = [Double](repeating: 0, count: r * columns)
        ComputeThreads.requireSingleThreadedBLAS()
        let info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "S")), Int32(rows), Int32(columns), &a,
                                  Int32(max(rows, 1)), &s, &u, Int32(max(rows, 1)), &vt, Int32(max(r, 1)))
        guard info == 0 else { throw IRMError("LAPACK dgesdd failed on a \(rows)×\(columns) matrix (info \(info))") }
        return (ColumnMajorMatrix(rows: rows, columns: r, values: u), s,
                ColumnMajorMatrix(rows: r, columns: columns, values: vt))
    }

    /// The minimum-norm least-squares solution of A x ≈ b by `dgelsd` (SVD, divide and conquer).
    /// Singular values below `rcond · s_max` are treated as zero; `rank` counts the rest.
    func leastSquares(_ b: [Double], rcond: Double) throws
        -> (solution: [Double], singularValues: [Double], rank: Int) {
        precondition(b.count == rows, "leastSquares: right-hand side length differs from row count")
        var a = values
        let ldb = max(rows, columns, 1)
        var rhs = b + [Double](repeating: 0, count: ldb - rows)
        var s = [Double](repeating: 0, count: min(rows, columns))
        var rank: Int32 = 0
        ComputeThreads.requireSingleThreadedBLAS()
        let info = LAPACKE_dgelsd(LAPACK_COL_MAJOR, Int32(rows), Int32(columns), 1, &a, Int32(max(rows, 1)),
                                  &rhs, Int32(ldb), &s, rcond, &rank)
        guard info == 0 else { throw IRMError("LAPACK dgelsd failed on a \(rows)×\(columns) system (info \(info))") }
        return (Array(rhs.prefix(columns)), s, Int(rank))
    }

    /// The upper-triangular factor R of the Householder QR factorisation A = QR without pivoting
    /// (`dgeqrf`), as a columns×columns matrix. |R_jj| is the norm of the part of column j that is
    /// orthogonal to columns 0..<j. Requires rows ≥ columns.
    func qrUpperTriangle() throws -> ColumnMajorMatrix {
        precondition(rows >= columns, "qrUpperTriangle: needs rows ≥ columns")
        var a = values
        var tau = [Double](repeating: 0, count: max(columns, 1))
        ComputeThreads.requireSingleThreadedBLAS()
        let info = LAPACKE_dgeqrf(LAPACK_COL_MAJOR, Int32(rows), Int32(columns), &a, Int32(max(rows, 1)), &tau)
        guard info == 0 else { throw IRMError("LAPACK dgeqrf failed on a \(rows)×\(columns) matrix (info \(info))") }
        var r = ColumnMajorMatrix(rows: columns, columns: columns)
        for j in 0..<columns { for i in 0...j { r[i, j] = a[i + j * rows] } }
        return r
    }

    /// The inverse of an upper-triangular matrix (`dtrtri`). Fails when a diagonal entry is 0.
    func upperTriangularInverse() throws -> ColumnMajorMatrix {
        precondition(rows == columns, "upperTriangularInverse: needs a square matrix")
        var a = values
        if rows == 0 { return self }
        ComputeThreads.requireSingleThreadedBLAS()
        let info = LAPACKE_dtrtri(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "U")), CChar(UInt8(ascii: "N")),
                                  Int32(rows), &a, Int32(rows))
        guard info == 0 else { throw IRMError("LAPACK dtrtri: triangular factor is singular at \(info)") }
        return ColumnMajorMatrix(rows: rows, columns: columns, values: a)
    }

    /// The lower Cholesky factor L of a symmetric positive definite matrix, A = L Lᵀ (`dpotrf`);
    /// nil when A is not numerically positive definite.
    func choleskyLower() -> ColumnMajorMatrix? {
        precondition(rows == columns, "choleskyLower: needs a square matrix")
        var a = values
        if rows == 0 { return self }
        ComputeThreads.requireSingleThreadedBLAS()
        let info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "L")), Int32(rows), &a, Int32(rows))
        guard info == 0 else { return nil }
        var l = ColumnMajorMatrix(rows: rows, columns: columns, values: a)
        for j in 0..<columns { for i in 0..<j { l[i, j] = 0 } }
        return l
    }

    /// Solves L y = b for lower-triangular L (`cblas_dtrsv`).
    func solveLowerTriangular(_ b: [Double]) -> [Double] {
        var y = b
        if rows == 0 { return y }
        values.withUnsafeBufferPointer { pl in
            y.withUnsafeMutableBufferPointer { py in
                ComputeThreads.requireSingleThreadedBLAS()
                cblas_dtrsv(CblasColMajor, CblasLower, CblasNoTrans, CblasNonUnit, Int32(rows), pl.baseAddress,
                            Int32(rows), py.baseAddress, 1)
            }
        }
        return y
    }

    /// B · R⁻¹ for upper-triangular R (`cblas_dtrsm` from the right): with B = A and R from
    /// `qrUpperTriangle`, this is the thin Q factor.
    func timesInverseOfUpperTriangular(_ r: ColumnMajorMatrix) -> ColumnMajorMatrix {
        precondition(r.rows == columns && r.columns == columns, "timesInverseOfUpperTriangular: shape")
        var b = values
        if rows == 0 || columns == 0 { return self }
        r.values.withUnsafeBufferPointer { pr in
            b.withUnsafeMutableBufferPointer { pb in
                ComputeThreads.requireSingleThreadedBLAS()
                cblas_dtrsm(CblasColMajor, CblasRight, CblasUpper, CblasNoTrans, CblasNonUnit, Int32(rows),
                            Int32(columns), 1, pr.baseAddress, Int32(columns), pb.baseAddress, Int32(rows))
            }
        }
        return ColumnMajorMatrix(rows: rows, columns: columns, values: b)
    }
}
