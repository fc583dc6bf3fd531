import Foundation

/// The CSV outputs: `attribution.csv`, `samples.csv`, `tokens.csv` and `lexicon.csv`. Numbers are
/// written with full round-trip precision (`NumberFormat.exact`); a missing value is an empty cell.
extension AnalysisReport {
    static let attributionColumns = [
        "target", "feature", "group", "coef", "std_err", "hc3_std_err", "t", "p_value", "hc3_p_value", "ci_low",
        "ci_high", "std_coef", "lmg_share", "lmg_ci_low", "lmg_ci_high", "group_lmg_share", "ridge_coef",
        "ridge_std_coef", "vif", "collinear_set", "note",
    ]

    static let intercept = "(intercept)"

    /// One row per (target, feature), targets in `result.targets` order; per target the intercept
    /// first, then every feature of the table, including those a fit dropped (their numbers are
    /// empty and `note` says why).
    static func attributionTable(_ result: AnalysisResult) throws -> CSVTable {
        var table = CSVTable(columns: attributionColumns)
        for target in result.targets {
            for row in attributionRows(target, features: result.features) { try table.append(row) }
        }
        return table
    }

    private static func attributionRows(_ target: AnalysisResult.TargetAnalysis, features: FeatureTable) -> [[String]] {
        let fit = target.ols.value
        let ridge = target.ridge.value
        let lmg = LMGLookup(target, features: features)
        let olsByName = Dictionary(fit?.coefficients.map { ($0.name, $0) } ?? [], uniquingKeysWith: { first, _ in first })
        let ridgeByName = Dictionary(ridge?.coefficients.map { ($0.name, $0) } ?? [], uniquingKeysWith: { first, _ in first })
        // Reasons for empty LMG or ridge cells, when the OLS fit itself is defined.
        var otherReasons: [String] = []
        if fit != nil {
            if let reason = target.lmg?.undefinedReason { otherReasons.append("LMG undefined: \(reason)") }
            if let reason = target.ridge.undefinedReason { otherReasons.append("ridge undefined: \(reason)") }
        }

        let collinearity = target.collinearity?.value
        let vif = Dictionary((collinearity?.varianceInflation ?? []).map { ($0.name, $0.factor) }, uniquingKeysWith: { a, _ in a })
        var setOf: [String: String] = [:]
        for set in collinearity?.sets ?? [] {
            for member in set.memberNames { setOf[member] = set.memberNames.joined(separator: " ") + " (representative \(set.representative))" }
        }
        func row(feature: String, group: String, coefficient: LeastSquaresFit.Coefficient?, share: ShapleyAttribution.Share?,
                 groupShare: Double?, ridgeCoefficient: Double?, ridgeStandardized: Double?, note: [String]) -> [String] {
            let c = coefficient
            return [
                target.name, feature, group, csvNumber(c?.estimate), csvNumber(c?.standardError),
                csvNumber(c?.robustStandardError), csvNumber(c?.tStatistic), csvNumber(c?.pValue),
                csvNumber(c?.robustPValue), csvNumber(c?.confidenceLower), csvNumber(c?.confidenceUpper),
                csvNumber(c?.standardizedEstimate), csvNumber(share?.share), csvNumber(share?.interval?.lower),
                csvNumber(share?.interval?.upper), csvNumber(groupShare), csvNumber(ridgeCoefficient),
                csvNumber(ridgeStandardized), csvNumber(vif[feature]), setOf[feature] ?? "", (note + otherReasons).joined(separator: "; "),
            ]
        }

        let undefined = target.ols.undefinedReason.map { [$0] } ?? []
        var rows = [row(feature: intercept, group: "", coefficient: fit?.intercept, share: nil, groupShare: nil,
                        ridgeCoefficient: ridge?.intercept, ridgeStandardized: nil, note: undefined)]
        for (j, name) in features.names.enumerated() {
            let group = j < features.definitions.count ? features.definitions[j].group.rawValue : ""
            var note = undefined
            if let fit, olsByName[name] == nil {
                note.append(omissionNote(name, fit: fit))
            }
            let ridgeCoefficient = ridgeByName[name]
            rows.append(row(feature: name, group: group, coefficient: olsByName[name], share: lmg.featureShare[name],
                            groupShare: lmg.groupShare[name], ridgeCoefficient: ridgeCoefficient?.estimate,
                            ridgeStandardized: ridgeCoefficient?.standardizedEstimate, note: note))
        }
        return rows
    }

    /// Why a fit has no coefficient for feature `name`: `aliased` or `dropped: constant`.
    static func omissionNote(_ name: String, fit: LeastSquaresFit) -> String {
        if fit.aliasedFeatures.contains(name) { return "aliased" }
        return fit.droppedConstantFeatures.contains(name) ? "dropped: constant" : "not in the fit"
    }

    /// A target's LMG shares looked up by feature: the feature's own share (when the players are
    /// single features) and its group's share (the group player's share, or the sum of the shares
    /// of the group's members).
    struct LMGLookup {
        var featureShare: [String: ShapleyAttribution.Share] = [:]
        var groupShare: [String: Double] = [:]

        init(_ target: AnalysisResult.TargetAnalysis, features: FeatureTable) {
            guard let attribution = target.lmg?.value else { return }
            if target.lmgByGroup {
                for share in attribution.shares {
                    for member in share.members { groupShare[member] = share.share }
                }
                return
            }
            for share in attribution.shares {
                for member in share.members { featureShare[member] = share }
            }
            let groupOf = Dictionary(zip(features.names, features.groups), uniquingKeysWith: { first, _ in first })
            var totals: [FeatureGroup: Double] = [:]
            for name in features.names {
                guard let group = groupOf[name], let share = featureShare[name] else { continue }
                totals[group, default: 0] += share.share
            }
            for name in features.names {
                if let group = groupOf[name], let total = totals[group] { groupShare[name] = total }
            }
        }
    }

    static let sampleColumns = [
        "id", "role", "line", "generator", "group", "prompt_tokens", "response_tokens", "empty_response",
        "implicit_reward_sum", "implicit_reward_mean", "implicit_reward", "logprob_after", "logprob_before", "kl",
        "reward_model", "gold",
    ]

    /// Feature column names for samples.csv: the feature's name, or `feature:NAME` when the name is
    /// one of the fixed columns (the built-in `response_tokens`, a numeric field called `gold`), so
    /// that no header repeats.
    static func sampleFeatureColumns(_ names: [String]) -> [String] {
        let fixed = Set(sampleColumns)
        return names.map { fixed.contains($0) ? "feature:\($0)" : $0 }
    }

    /// One row per sample, in sample order, with every feature value.
    static func samplesTable(_ result: AnalysisResult) throws -> CSVTable {
        let matrix = result.features.matrix
        guard matrix.rowCount == result.samples.count else {
            throw IRMError("analysis report: the feature table has \(matrix.rowCount) rows for \(result.samples.count) samples; expected one row per sample")
        }
        var table = CSVTable(columns: sampleColumns + sampleFeatureColumns(matrix.names))
        let implicit = result.implicitRewards
        for (i, sample) in result.samples.enumerated() {
            var row = [
                sample.id, sample.role?.rawValue ?? "", String(sample.line), sample.generator ?? "", sample.group ?? "",
                String(sample.promptTokens), String(sample.responseTokens), sample.isEmptyResponse ? "1" : "0",
                csvNumber(sample.implicitReward.sum), csvNumber(sample.implicitReward.mean), csvNumber(implicit[i]),
                csvNumber(sample.logProbAfter), csvNumber(sample.logProbBefore), csvNumber(sample.kl),
                csvNumber(sample.rewardModel), csvNumber(sample.gold),
            ]
            row += (0..<matrix.columnCount).map { csvNumber(matrix[i, $0]) }
            try table.append(row)
        }
        return table
    }

    /// Every token effect of the reconstruction, by decreasing coefficient (ties by token id).
    static func tokensTable(_ reconstruction: TokenReconstruction) throws -> CSVTable {
        var table = CSVTable(columns: ["token_id", "token", "count", "mean_reward", "coefficient"])
        for effect in reconstruction.pushedUp(reconstruction.effects.count) {
            try table.append([String(effect.tokenID), effect.text, String(effect.count), csvNumber(effect.meanReward),
                              csvNumber(effect.coefficient)])
        }
        return table
    }

    /// The lexicon words matched by the token reconstruction, in word order.
    static func lexiconTable(_ recovery: LexiconRecovery) throws -> CSVTable {
        var table = CSVTable(columns: ["word", "lexicon_value", "reconstructed", "rescaled"])
        for match in recovery.matches {
            try table.append([match.word, csvNumber(match.lexiconValue), csvNumber(match.reconstructed), csvNumber(match.rescaled)])
        }
        return table
    }
}
