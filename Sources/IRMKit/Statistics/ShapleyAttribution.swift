import Foundation

/// The exact LMG / Shapley decomposition of R² (Lindeman, Merenda & Gold 1980; Grömping 2006,
/// relaimpo `calc.relimp(type = "lmg")`): each player's share is its R² gain averaged over all
/// orderings of the players,
///
///     φ_j = Σ_{S ⊆ P∖{j}} |S|! (|P| − |S| − 1)! / |P|! · (R²(S ∪ {j}) − R²(S)),
///
/// and the shares sum to R²(P), the R² of the full OLS fit. A player is a feature or a named group
/// of features; features named in no group are players of their own.
///
/// R² of each of the 2^|P| subsets comes from the correlation matrix R of the features and the
/// vector r of their correlations with y: R²(S) = r_Sᵀ R_SS⁻¹ r_S, solved by Cholesky (`dpotrf`)
/// of R_SS. If R_SS is not numerically positive definite (collinear features), the minimum-norm
/// solution (`dgelsd`) gives the same R² because r_S lies in R_SS's column space.
///
/// Cost: 2^|P| small factorisations, so |P| is capped at 15 (32 768 subsets); group features
/// beyond that.
public struct ShapleyAttribution: Sendable {
    public struct Share: Sendable, Equatable {
        /// The player's name: the feature's, or the group's.
        public let name: String
        /// The features it stands for.
        public let members: [String]
        /// φ_j, in units of R².
        public let share: Double
        /// The bootstrap percentile interval of φ_j (resampling rows); nil without bootstrap.
        public let interval: BootstrapInterval?
    }

    public let shares: [Share]
    /// R² of the full model, Σ φ_j.
    public let rSquared: Double

    public static let maximumPlayers = 15

    /// Decomposes the R² of y on all features. `groups` maps a group name to its member features.
    /// `bootstrapReplicates` > 0 adds percentile intervals from that many row resamples drawn
    /// with `seed`. Constant features contribute 0 (in a resample too).
    public static func decompose(
        _ features: FeatureMatrix, target: [Double], groups: [(name: String, members: [String])] = [],
        bootstrapReplicates: Int = 0, seed: UInt64 = 0, level: Double = 0.95
    ) throws -> StatisticOutcome<ShapleyAttribution> {
        let n = features.rowCount
        guard target.count == n else {
            throw IRMError("LMG: the target has \(target.count) values but the feature matrix has \(n) rows")
        }
        if let bad = target.firstIndex(where: { !$0.isFinite }) {
            throw IRMError("LMG: the target has a non-finite value in row \(bad)")
        }
        let players = try makePlayers(features, groups: groups)
        guard !players.isEmpty else { throw IRMError("LMG: there are no features to attribute R² to") }
        guard players.count <= maximumPlayers else {
            throw IRMError("LMG: \(players.count) players need 2^\(players.count) subset fits; at most \(maximumPlayers) are supported. Group related features (for example all length features, all formatting features) and pass the groups")
        }
        guard n >= features.columnCount + 2 else {
            throw IRMError("LMG: \(n) samples for \(features.columnCount) features; at least \(features.columnCount + 2) are needed")
        }
        guard let first = target.first, target.contains(where: { $0 != first }) else {
            return .undefined(reason: "all \(n) target values are equal; R² and its decomposition are undefined")
        }
        let allRows = Array(0..<n)
        let shares = try shapleyShares(features, target: target, rows: allRows, players: players)
        var intervals = [BootstrapInterval?](repeating: nil, count: players.count)
        if bootstrapReplicates > 0 {
            let replicates: [[Double]?] = try Bootstrap.replicate(rowCount: n, replicates: bootstrapReplicates, seed: seed) { rows in
                let y = rows.map { target[$0] }
                guard y.contains(where: { $0 != y[0] }) else { return nil }
                return try shapleyShares(features, target: target, rows: rows, players: players)
            }
            for j in players.indices {
                intervals[j] = Bootstrap.percentileInterval(replicates.map { $0?[j] }, level: level)
            }
        }
        let result = players.indices.map { j in
            Share(name: players[j].name, members: players[j].columns.map { features.names[$0] },
                  share: shares[j], interval: intervals[j])
        }
        return .defined(ShapleyAttribution(shares: result, rSquared: shares.reduce(0, +)))
    }

    struct Player { let name: String; let columns: [Int] }

    private static func makePlayers(_ features: FeatureMatrix, groups: [(name: String, members: [String])]) throws -> [Player] {
        var owner = [Int: String]()
        var players: [Player] = []
        for group in groups {
            guard !group.members.isEmpty else { throw IRMError("LMG: group \"\(group.name)\" has no members") }
            var columns: [Int] = []
            for member in group.members {
                guard let j = features.index(of: member) else {
                    throw IRMError("LMG: group \"\(group.name)\" names feature \"\(member)\", which is not among the features (\(features.names.joined(separator: ", ")))")
                }
                if let other = owner[j] {
                    throw IRMError("LMG: feature \"\(member)\" is in both group \"\(other)\" and group \"\(group.name)\"; a feature may belong to one group only")
                }
                owner[j] = group.name
                columns.append(j)
            }
            players.append(Player(name: group.name, columns: columns))
        }
        for j in 0..<features.columnCount where owner[j] == nil {
            players.append(Player(name: features.names[j], columns: [j]))
        }
        return players
    }

    /// φ for the sample made of `rows` (a resample may repeat rows).
    private static func shapleyShares(_ features: FeatureMatrix, target: [Double], rows: [Int], players: [Player]) throws -> [Double] {
        let (correlations, withTarget) = correlationSystem(features, target: target, rows: rows)
        let p = players.count
        let subsetCount = 1 << p
        var r2 = [Double](repeating: 0, count: subsetCount)
        for mask in 1..<subsetCount {
            var columns: [Int] = []
            for j in 0..<p where mask & (1 << j) != 0 { columns.append(contentsOf: players[j].columns) }
            r2[mask] = try subsetRSquared(correlations, withTarget, columns: columns)
        }
        // Weight of a coalition of size s not containing the player: s!(p − s − 1)!/p!.
        var factorial = [Double](repeating: 1, count: p + 1)
        for i in 1...p { factorial[i] = factorial[i - 1] * Double(i) }
        var shares = [Double](repeating: 0, count: p)
        for j in 0..<p {
            let bit = 1 << j
            var total = 0.0
            for mask in 0..<subsetCount where mask & bit == 0 {
                let s = mask.nonzeroBitCount
                total += factorial[s] * factorial[p - s - 1] / factorial[p] * (r2[mask | bit] - r2[mask])
            }
            shares[j] = total
        }
        return shares
    }

    /// The feature correlation matrix and the correlations with y over `rows`. A constant column
    /// gets correlation 0 with everything and 1 with itself, so it adds nothing to any R².
    private static func correlationSystem(_ features: FeatureMatrix, target: [Double], rows: [Int])
        -> (ColumnMajorMatrix, [Double]) {
        let n = rows.count, k = features.columnCount
        var z = ColumnMajorMatrix(rows: n, columns: k)
        var constant = [Bool](repeating: false, count: k)
        for j in 0..<k {
            let column = rows.map { features[$0, j] }
            let mean = ColumnMoments.mean(column[...])
            let sd = ColumnMoments.populationSD(column[...], mean: mean)
            let isConstant = column.allSatisfy { $0 == column[0] }
            constant[j] = isConstant
            let standardized = isConstant ? [Double](repeating: 0, count: n) : ColumnMoments.zScored(column, mean: mean, sd: sd)
            for i in 0..<n { z[i, j] = standardized[i] }
        }
        let y = rows.map { target[$0] }
        let yMean = ColumnMoments.mean(y[...])
        let ySd = ColumnMoments.populationSD(y[...], mean: yMean)
        let zy = ColumnMoments.zScored(y, mean: yMean, sd: ySd)
        var correlations = ColumnMajorMatrix.product(z, transposeA: true, z)
        for index in correlations.values.indices { correlations.values[index] /= Double(n) }
        for j in 0..<k where constant[j] { correlations[j, j] = 1 }
        let withTarget = z.transposeTimes(zy).map { $0 / Double(n) }
        return (correlations, withTarget)
    }

    private static func subsetRSquared(_ correlations: ColumnMajorMatrix, _ withTarget: [Double], columns: [Int]) throws -> Double {
        let k = columns.count
        var sub = ColumnMajorMatrix(rows: k, columns: k)
        for (b, jb) in columns.enumerated() { for (a, ja) in columns.enumerated() { sub[a, b] = correlations[ja, jb] } }
        let r = columns.map { withTarget[$0] }
        if let l = sub.choleskyLower() {
            let v = l.solveLowerTriangular(r)
            return v.reduce(0) { $0 + $1 * $1 }
        }
        let x = try sub.leastSquares(r, rcond: 1e-10).solution
        return zip(r, x).reduce(0) { $0 + $1.0 * $1.1 }
    }
}
