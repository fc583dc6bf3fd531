import Foundation

/// The files of `irm drift --out DIR`: `drift.md`, `drift.html` (with its SVG charts inline),
/// `drift.csv` (one row per step × metric), `layers.csv`, `drift.json`, the charts under `plots/`
/// and `manifest.json`. docs/drift.md explains every column and key. Like `AnalysisReport`, the
/// writers only format, the same result gives the same bytes, and the directory is written
/// atomically.
public enum DriftReport {
    public static let title = "Drift of the implicit reward over a checkpoint series"

    public static func files(for result: DriftResult) throws -> [(path: String, data: Data)] {
        let plots = figures(result)
        let blocks = reportBlocks(result, plots: plots)
        var texts: [(path: String, text: String)] = [
            ("drift.md", AnalysisReport.markdown(blocks)),
            ("drift.html", AnalysisReport.html(blocks, title: title)),
            ("drift.csv", try metricsTable(result).text),
        ]
        if let layers = result.layers { texts.append(("layers.csv", try layers.csvTable().text)) }
        texts.append(("drift.json", document(result).serialized(pretty: true) + "\n"))
        for plot in plots { texts.append((plot.path, plot.svg)) }
        let outputs = texts.map(\.path) + ["manifest.json"]
        texts.append(("manifest.json", manifest(result, outputs: outputs).serialized(pretty: true) + "\n"))
        return texts.map { (path: $0.path, data: Data($0.text.utf8)) }
    }

    /// Writes every file into `directory` as one atomic output, as `AnalysisReport.write` does;
    /// `plots/` is there even when no chart is.
    public static func write(_ result: DriftResult, to directory: URL) throws {
        try AtomicOutput.writeDirectory(try files(for: result), to: directory, directories: ["plots"])
    }

    // MARK: Values shared by the documents

    /// Every step's label, the base first.
    static func labels(_ result: DriftResult) -> [String] { [result.base.label] + result.steps.map(\.checkpoint.label) }

    /// (standardised coefficient, CI) of `feature` in a step's OLS fit of the implicit reward: the
    /// headline (parsimonious) fit, or with `full` the fit on every feature.
    static func standardizedCoefficient(_ step: DriftResult.Step, _ feature: String, features: FeatureTable, full: Bool = false)
        -> (value: Double, low: Double, high: Double)? {
        guard let fit = full ? step.implicitFit.ols.value : step.headlineFit, let c = fit.coefficients.first(where: { $0.name == feature }),
              let z = c.standardizedEstimate, let column = features.column(named: feature) else { return nil }
        let sdY = ColumnMoments.populationSD(step.implicitFit.values)
        guard sdY > 0 else { return nil }
        let scale = ColumnMoments.populationSD(column) / sdY
        return (z, c.confidenceLower * scale, c.confidenceUpper * scale)
    }

    /// The features with the largest |standardised coefficient| at any step, for the trajectory chart.
    static func leadingFeatures(_ result: DriftResult, count: Int) -> [String] {
        var largest: [String: Double] = [:]
        for step in result.steps {
            for c in step.headlineFit?.coefficients ?? [] { largest[c.name] = max(largest[c.name] ?? 0, abs(c.standardizedEstimate ?? 0)) }
        }
        return largest.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.prefix(count).map(\.key)
    }

    static func metric(_ step: DriftResult.Step, _ name: String) -> TrainerRewardMetrics.Metric? {
        step.trainerRewards?.metrics.first { $0.name == name }
    }

    // MARK: drift.csv

    static let csvColumns = ["step_index", "label", "training_step", "metric", "value", "ci_low", "ci_high"]

    static func metricsTable(_ result: DriftResult) throws -> CSVTable {
        var table = CSVTable(columns: csvColumns)
        func add(_ index: Int, _ checkpoint: DriftResult.Checkpoint, _ metric: String, _ value: Double?, _ interval: (Double, Double)? = nil) throws {
            guard let value else { return }
            try table.append([String(index), checkpoint.label, AnalysisReport.csvNumber(checkpoint.trainingStep), metric,
                              AnalysisReport.csvNumber(value), AnalysisReport.csvNumber(interval?.0), AnalysisReport.csvNumber(interval?.1)])
        }
        func bounds(_ interval: BootstrapInterval?) -> (Double, Double)? { interval.map { ($0.lower, $0.upper) } }
        if let trajectory = result.trajectory {
            try add(0, result.base, "proxy_reward", trajectory.proxy[0].value, bounds(trajectory.proxy[0].interval))
            if let gold = trajectory.gold { try add(0, result.base, "gold_reward", gold[0].value, bounds(gold[0].interval)) }
        }
        for (k, step) in result.steps.enumerated() {
            let index = k + 1, c = step.checkpoint
            for name in ["rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"] {
                if let m = metric(step, name) { try add(index, c, "implicit_" + name.replacingOccurrences(of: "rewards/", with: ""), m.value, bounds(m.interval)) }
            }
            if let agreement = step.goldAgreement?.value { try add(index, c, "gold_pair_agreement", agreement.agreement) }
            try add(index, c, "kl_per_token", step.klPerToken)
            try add(index, c, "kl_per_response", step.klPerResponse)
            if let d = step.divergence {
                for (prefix, set) in [("reward", d.implicitVersusRewardModel), ("gold", d.implicitVersusGold)] {
                    guard let set else { continue }
                    for (name, outcome) in [("pearson", set.pearson), ("spearman", set.spearman), ("kendall", set.kendall)] {
                        if let e = outcome.value { try add(index, c, "corr_\(prefix)_\(name)", e.value, e.interval.map { ($0.lower, $0.upper) }) }
                    }
                }
                try add(index, c, "coefficient_cosine_vs_reward", d.coefficientCosine)
            }
            if let trajectory = result.trajectory {
                try add(index, c, "proxy_reward", trajectory.proxy[index].value, bounds(trajectory.proxy[index].interval))
                if let gold = trajectory.gold { try add(index, c, "gold_reward", gold[index].value, bounds(gold[index].interval)) }
            }
            if let rms = result.rewardModelSeries, k > 0, k - 1 < rms.consecutive.count {
                let consecutive = rms.consecutive[k - 1]
                if let e = consecutive.pearson.value { try add(index, c, "rm_vs_previous_pearson", e.value, e.interval.map { ($0.lower, $0.upper) }) }
                if let e = consecutive.spearman.value { try add(index, c, "rm_vs_previous_spearman", e.value, e.interval.map { ($0.lower, $0.upper) }) }
            }
            for name in result.features.matrix.names {
                if let z = standardizedCoefficient(step, name, features: result.features) { try add(index, c, "coef:\(name)", z.value, (z.low, z.high)) }
                if let z = standardizedCoefficient(step, name, features: result.features, full: true) {
                    try add(index, c, "coef_full:\(name)", z.value, (z.low, z.high))
                }
            }
            if let lmg = step.implicitFit.lmg?.value {
                for share in lmg.shares { try add(index, c, "lmg:\(share.name)", share.share, share.interval.map { ($0.lower, $0.upper) }) }
            }
        }
        return table
    }

    // MARK: drift.json

    static func document(_ result: DriftResult) -> JSONValue {
        func checkpoint(_ c: DriftResult.Checkpoint) -> JSONValue {
            .object(["label": .string(c.label), "path": .string(c.path), "training_step": c.trainingStep.map { .int(Int64($0)) } ?? .null,
                     "sha256": .string(c.sha256)])
        }
        func point(_ p: RewardTrajectory.Point) -> JSONValue {
            .object(["value": AnalysisReport.number(p.value), "ci95": AnalysisReport.intervalObject(p.interval)])
        }
        var trajectory: JSONValue = AnalysisReport.undefined("no training reward was given")
        if let t = result.trajectory {
            var object: [String: JSONValue] = ["proxy": .array(t.proxy.map(point)), "proxy_gains": .array(t.proxyGains.map { AnalysisReport.number($0) })]
            object["gold"] = t.gold.map { .array($0.map(point)) } ?? AnalysisReport.undefined("the data has no gold field")
            object["gold_gains"] = t.goldGains.map { .array($0.map { AnalysisReport.number($0) }) } ?? .null
            object["monotonicity_spearman"] = t.monotonicity.map { AnalysisReport.outcome($0, AnalysisReport.correlationObject) } ?? .null
            object["over_optimisation"] = t.overOptimisation.map { outcome in
                AnalysisReport.outcome(outcome) { o in
                    .object(["peak_step_index": AnalysisReport.integer(o.peakStep), "peak_label": .string(labels(result)[o.peakStep]),
                             "gold_change": AnalysisReport.number(o.goldChange), "proxy_change": AnalysisReport.number(o.proxyChange),
                             "gold_change_ci95": AnalysisReport.intervalObject(o.goldChangeInterval),
                             "proxy_change_ci95": AnalysisReport.intervalObject(o.proxyChangeInterval),
                             "bootstrap_support": AnalysisReport.number(o.support), "significant": .bool(o.isSignificant)])
                }
            } ?? .null
            trajectory = .object(object)
        }
        let steps: [JSONValue] = result.steps.map { step in
            var object: [String: JSONValue] = [
                "checkpoint": checkpoint(step.checkpoint), "beta": AnalysisReport.number(step.beta),
                "kl_per_token": AnalysisReport.number(step.klPerToken), "kl_per_response": AnalysisReport.number(step.klPerResponse),
                "implicit_reward_fit": AnalysisReport.targetObject(step.implicitFit),
            ]
            object["trl_rewards"] = step.trainerRewards.map(AnalysisReport.trainerRewardsObject) ?? .null
            object["gold_pair_agreement"] = step.goldAgreement.map { AnalysisReport.outcome($0) { a in
                .object(["agreeing": AnalysisReport.integer(a.agreeing), "total": AnalysisReport.integer(a.total), "agreement": AnalysisReport.number(a.agreement)])
            } } ?? .null
            if let d = step.divergence {
                object["versus_training_reward"] = .object([
                    "correlation": AnalysisReport.correlationSetObject(d.implicitVersusRewardModel),
                    "correlation_with_gold": AnalysisReport.correlationSetObject(d.implicitVersusGold),
                    "pair_accuracy": AnalysisReport.accuracyObject(d.implicitPairAccuracy),
                    "coefficient_cosine": AnalysisReport.number(d.coefficientCosine, undefinedBecause: "no feature is kept by both fits"),
                    "difference_fit": AnalysisReport.outcome(d.differenceFit, AnalysisReport.fitObject),
                ])
            }
            return .object(object)
        }
        var object: [String: JSONValue] = [:]
        object["meta"] = .object(["tool_version": .string(result.toolVersion), "samples": AnalysisReport.integer(result.sampleCount),
                                  "pairs": AnalysisReport.integer(result.pairCount), "reward_source": .string(result.rewardSource.description),
                                  "base": checkpoint(result.base)])
        object["steps"] = .array(steps)
        object["trajectory"] = trajectory
        object["reward_model_fit"] = result.rewardFit.map(AnalysisReport.targetObject) ?? .null
        object["gold_fit"] = result.goldFit.map(AnalysisReport.targetObject) ?? .null
        let spurious: [JSONValue] = result.spuriousFeatures.map { s in
            let trajectory: JSONValue = .array(s.implicitTrajectory.map { AnalysisReport.number($0) })
            let gold: JSONValue = s.goldCoefficient.map { AnalysisReport.number($0) } ?? .null
            return .object(["feature": .string(s.feature), "implicit_trajectory": trajectory, "trend_spearman": AnalysisReport.number(s.trend),
                            "proxy_coefficient": AnalysisReport.number(s.proxyCoefficient), "gold_coefficient": gold])
        }
        object["spurious_features"] = .array(spurious)
        object["proxy_only_features"] = .array(result.proxyOnlyFeatures.map { s in
            .object(["feature": .string(s.feature), "implicit_trajectory": .array(s.implicitTrajectory.map { AnalysisReport.number($0) }),
                     "proxy_coefficient": AnalysisReport.number(s.proxyCoefficient),
                     "gold_coefficient": s.goldCoefficient.map { AnalysisReport.number($0) } ?? .null])
        })
        let comparisons = (result.layers?.comparisons ?? []).filter { $0.reference == .base }
        object["layers_most_changed"] = .array(comparisons.map { c in
            .object(["label": .string(c.checkpoint.label), "blocks": AnalysisReport.strings(c.mostChangedBlocks)])
        })
        if let rms = result.rewardModelSeries {
            object["reward_model_series"] = .object([
                "models": .array(rms.models.map(checkpoint)),
                "consecutive": .array(rms.consecutive.map(AnalysisReport.correlationSetObject)),
                "weights": .object(rms.weights.mapValues { .array($0.map { AnalysisReport.number($0) }) }),
                "changes": .array(rms.changes.map { c in
                    .object(["version": AnalysisReport.integer(c.version), "feature": .string(c.feature), "started": .bool(c.started),
                             "before": AnalysisReport.number(c.before), "after": AnalysisReport.number(c.after)])
                }),
            ])
        }
        object["warnings"] = AnalysisReport.strings(result.warnings)
        return .object(object)
    }

    static func manifest(_ result: DriftResult, outputs: [String]) -> JSONValue {
        let options = Dictionary(result.options.map { ($0.key, JSONValue.string($0.value)) }, uniquingKeysWith: { _, last in last })
        return .object([
            "tool": .string("irm"), "command": .string("drift"), "version": .string(result.toolVersion), "options": .object(options),
            "inputs": .array(result.inputs.map { input in
                .object(["role": .string(input.role), "path": .string(input.path), "sha256": .string(input.sha256), "summary": .string(input.summary)])
            }),
            "outputs": AnalysisReport.strings(outputs),
            "blas": BLASRuntime.manifestObject(),
        ])
    }
}
