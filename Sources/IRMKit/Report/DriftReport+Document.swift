import Foundation

/// drift.md and drift.html: the same blocks, as `AnalysisReport` renders its report.
extension DriftReport {
    static func shown(_ v: Double?) -> String { AnalysisReport.shown(v) }

    static func interval(_ i: BootstrapInterval?) -> String {
        i.map { AnalysisReport.interval($0.lower, $0.upper) } ?? "—"
    }

    static func reportBlocks(_ result: DriftResult, plots: [ReportFigure]) -> [ReportBlock] {
        let figure: (String) -> [ReportBlock] = { name in plots.first { $0.path == "plots/\(name).svg" }.map { [.figure($0)] } ?? [] }
        let labels = labels(result)
        var blocks: [ReportBlock] = [.heading(title, level: 1)]
        blocks.append(.paragraph("The base \(result.base.path) and \(result.steps.count) checkpoints tuned from it, each scored on the same \(result.sampleCount) samples (\(result.pairCount) preference pairs) and measured against the base. Training reward: \(result.rewardSource.description). The implicit reward of a step is β·log(π_step(y|x)/π_base(y|x)) summed over the response tokens (docs/drift.md)."))

        blocks.append(.heading("Summary", level: 2))
        blocks.append(.bullets(summaryLines(result)))

        blocks.append(.heading("Inputs", level: 2))
        var inputs = ReportTable(["role", "file", "SHA-256", "summary"], textColumns: [1, 3])
        for input in result.inputs { inputs.append([input.role, input.path, String(input.sha256.prefix(16)), input.summary]) }
        blocks.append(.table(inputs))

        blocks.append(.heading("Per step", level: 2))
        var table = ReportTable(["step", "β", "chosen", "rejected", "margin", "accuracy", "gold agreement", "KL/token", "KL/response",
                                 "r(implicit, RM)", "r(implicit, gold)", "coef. cosine"], labelColumns: [0])
        for step in result.steps {
            func m(_ name: String) -> String { metric(step, name).map { shown($0.value) } ?? "—" }
            let d = step.divergence
            table.append([step.checkpoint.label, shown(step.beta), m("rewards/chosen"), m("rewards/rejected"), m("rewards/margins"),
                          m("rewards/accuracies"), step.goldAgreement?.value.map { shown($0.agreement) } ?? "—",
                          shown(step.klPerToken), shown(step.klPerResponse),
                          d?.implicitVersusRewardModel.pearson.value.map { shown($0.value) } ?? "—",
                          d?.implicitVersusGold?.pearson.value.map { shown($0.value) } ?? "—",
                          d?.coefficientCosine.map(shown) ?? "—"])
        }
        blocks.append(.table(table))
        blocks.append(.paragraph("chosen, rejected, margin and accuracy are TRL's rewards/* of the implicit reward on the data's pairs (bootstrap intervals in drift.csv); gold agreement is the share of pairs the implicit reward orders as gold does; r is Pearson's correlation over samples; the coefficient cosine compares the standardised feature weights of the implicit reward with the training reward's."))
        blocks += figure("kl")

        blocks.append(.heading("Proxy and gold reward over the steps", level: 2))
        if let t = result.trajectory {
            var rows = ReportTable(["step", "proxy", "95% CI", "gain", "gold", "95% CI", "gain"], labelColumns: [0])
            for k in labels.indices {
                rows.append([labels[k], shown(t.proxy[k].value), interval(t.proxy[k].interval), shown(t.proxyGains[k]),
                             t.gold.map { shown($0[k].value) } ?? "—", t.gold.map { interval($0[k].interval) } ?? "—",
                             t.goldGains.map { shown($0[k]) } ?? "—"])
            }
            blocks.append(.table(rows))
            blocks.append(.paragraph("Each step's expected reward on the data, by self-normalised importance weighting of each prompt's responses with w = π_step/π_base (docs/drift.md); intervals are a bootstrap over prompts."))
            blocks += figure("trajectory")
        } else {
            blocks.append(.paragraph("No training reward was given, so there is no proxy trajectory."))
        }

        blocks.append(.heading("Feature weights over the steps", level: 2))
        let leading = leadingFeatures(result, count: 8)
        var weights = ReportTable(["feature"] + result.steps.map(\.checkpoint.label) + ["training reward", "gold"], labelColumns: [0])
        let rm = result.rewardFit?.ridge.value, gold = result.goldFit?.ridge.value
        for name in leading {
            let cells = result.steps.map { step in standardizedCoefficient(step, name, features: result.features).map { shown($0.value) } ?? "—" }
            weights.append([name] + cells + [rm?.coefficients.first { $0.name == name }.map { shown($0.standardizedEstimate) } ?? "—",
                                             gold?.coefficients.first { $0.name == name }.map { shown($0.standardizedEstimate) } ?? "—"])
        }
        blocks.append(.table(weights))
        var collinear = "one representative per collinear set"
        if let sets = result.steps.last?.implicitFit.collinearity?.value?.sets, !sets.isEmpty {
            collinear += " (" + sets.map { "\($0.representative) for \($0.memberNames.joined(separator: ", "))" }.joined(separator: "; ") + ")"
        }
        blocks.append(.paragraph("Standardised OLS coefficients of the implicit reward at each step, in the parsimonious fit: the same features at every step, \(collinear), chosen at the last step by the largest LMG share (docs/formulas.md). drift.csv has them with 95% intervals as coef:NAME, and the fit on every feature as coef_full:NAME. The last two columns are the standardised ridge coefficients of the training reward and of gold."))
        blocks += figure("features")

        if let rms = result.rewardModelSeries {
            blocks.append(.heading("The reward-model series", level: 2))
            blocks.append(.paragraph("Each step was measured against its own reward model (\(rms.models.map(\.path).joined(separator: ", "))); the proxy trajectory above uses it, the base the first one."))
            var table = ReportTable(["versions", "Pearson", "95% CI", "Spearman"], labelColumns: [0])
            for c in rms.consecutive {
                table.append(["\(c.first) → \(c.second)", c.pearson.value.map { shown($0.value) } ?? "undefined",
                              interval(c.pearson.value?.interval), c.spearman.value.map { shown($0.value) } ?? "undefined"])
            }
            blocks.append(.table(table))
            let leading = rms.weights.sorted { (($0.value.map(abs).max() ?? 0), $1.key) > (($1.value.map(abs).max() ?? 0), $0.key) }.prefix(8)
            var weights = ReportTable(["feature"] + rms.models.map(\.label), labelColumns: [0])
            for (name, values) in leading { weights.append([name] + values.map(shown)) }
            blocks.append(.table(weights))
            blocks.append(.paragraph("Standardised ridge coefficients of each version's fit."))
            blocks.append(rms.changes.isEmpty
                ? .paragraph("No feature crossed \(shown(DriftPipeline.rewardedThreshold)) from one version to the next.")
                : .bullets(rms.changes.map { c in
                    "\(rms.models[c.version].label) \(c.started ? "started" : "stopped") rewarding \(c.feature) (\(shown(c.before)) → \(shown(c.after)))"
                }))
        }

        blocks.append(.heading("Layer divergence", level: 2))
        if let layers = result.layers {
            var changed = ReportTable(["step", "blocks that changed most (against the base)"], textColumns: [1])
            for c in layers.comparisons where c.reference == .base { changed.append([c.checkpoint.label, c.mostChangedBlocks.joined(separator: ", ")]) }
            blocks.append(.table(changed))
            blocks.append(.paragraph("‖θ_step − θ_base‖_F / ‖θ_base‖_F per transformer block; every tensor, and the change between consecutive steps, are in layers.csv."))
            blocks += figure("layers")
        }

        blocks.append(.heading("Warnings", level: 2))
        blocks.append(result.warnings.isEmpty ? .paragraph("None.") : .bullets(result.warnings))
        return blocks
    }

    /// The headline findings, in plain language.
    public static func summaryLines(_ result: DriftResult) -> [String] {
        let labels = labels(result)
        var lines: [String] = []
        if let t = result.trajectory {
            if let rho = t.monotonicity {
                switch rho {
                case .defined(let e): lines.append("Monotonicity (Kim & Seo): Spearman ρ of the mean proxy against the mean gold over the \(labels.count) points is \(shown(e.value)) (p = \(AnalysisReport.shownP(e.pValue))).")
                case .undefined(let reason): lines.append("Monotonicity (Kim & Seo) is undefined: \(reason).")
                }
            }
            switch t.overOptimisation {
            case .defined(let o)?:
                let verdict = o.isSignificant ? "Over-optimisation" : "Possible over-optimisation (not significant)"
                lines.append("\(verdict): gold peaks at \(labels[o.peakStep]) and then changes by \(shown(o.goldChange)) \(interval(o.goldChangeInterval)) while the proxy still rises by \(shown(o.proxyChange)) \(interval(o.proxyChangeInterval)); bootstrap support \(shown(o.support)).")
            case .undefined(let reason)?:
                lines.append("No over-optimisation found: \(reason).")
            case nil:
                lines.append("No gold field, so over-optimisation cannot be checked.")
            }
        }
        if result.spuriousFeatures.isEmpty {
            lines.append("No spurious channel: no feature's weight kept rising in the implicit reward while the training reward pays for it and gold does not.")
        } else {
            for s in result.spuriousFeatures {
                lines.append("Spurious channel \(s.feature): its weight in the implicit reward rose from \(shown(s.implicitTrajectory.first)) to \(shown(s.implicitTrajectory.last)) (trend ρ \(shown(s.trend))); the training reward weights it \(shown(s.proxyCoefficient)), gold \(s.goldCoefficient.map(shown) ?? "not at all").")
            }
        }
        for s in result.proxyOnlyFeatures where !result.spuriousFeatures.contains(where: { $0.feature == s.feature }) {
            lines.append("Proxy-only channel \(s.feature): the training reward weights it \(shown(s.proxyCoefficient)) and gold \(s.goldCoefficient.map(shown) ?? "not at all"), and the implicit reward weights it \(shown(s.implicitTrajectory.last)) at the last step (\(s.implicitTrajectory.map(shown).joined(separator: " → ")) over the steps).")
        }
        if let last = result.steps.last {
            lines.append("KL(\(last.checkpoint.label) ‖ base) is \(shown(last.klPerToken)) nats per token, \(shown(last.klPerResponse)) per response.")
        }
        if let layers = result.layers, let last = layers.comparisons.last(where: { $0.reference == .base }), !last.mostChangedBlocks.isEmpty {
            lines.append("The blocks that changed most by \(last.checkpoint.label): \(last.mostChangedBlocks.joined(separator: ", ")).")
        }
        return lines
    }

    // MARK: Figures

    static func figures(_ result: DriftResult) -> [ReportFigure] {
        var out: [ReportFigure] = []
        let x = (0...result.steps.count).map(Double.init)
        if let t = result.trajectory {
            var series = [SVGChart.Series(name: "proxy (training reward)", points: zip(x, t.proxy).map { ($0, $1.value) },
                                          band: zip(x, t.proxy).compactMap { x, p in p.interval.map { (x, $0.lower, $0.upper) } })]
            if let gold = t.gold {
                series.append(SVGChart.Series(name: "gold", points: zip(x, gold).map { ($0, $1.value) },
                                              band: zip(x, gold).compactMap { x, p in p.interval.map { (x, $0.lower, $0.upper) } }))
            }
            out.append(ReportFigure(path: "plots/trajectory.svg", caption: "Proxy and gold reward per step (0 = base), with 95% bootstrap bands",
                                    svg: SVGChart.lines(title: "Proxy and gold reward", xLabel: "step (0 = base)", yLabel: "expected reward", series: series)))
        }
        let kl = SVGChart.Series(name: "KL per token", points: result.steps.enumerated().map { (Double($0.offset + 1), $0.element.klPerToken) })
        out.append(ReportFigure(path: "plots/kl.svg", caption: "KL(step ‖ base) per response token",
                                svg: SVGChart.lines(title: "KL to the base", xLabel: "step", yLabel: "nats per token", series: [kl])))
        let features = leadingFeatures(result, count: 6).map { name in
            SVGChart.Series(name: name, points: result.steps.enumerated().compactMap { k, step in
                standardizedCoefficient(step, name, features: result.features).map { (Double(k + 1), $0.value) }
            }, band: result.steps.enumerated().compactMap { k, step in
                standardizedCoefficient(step, name, features: result.features).map { (Double(k + 1), $0.low, $0.high) }
            })
        }
        if !features.isEmpty {
            out.append(ReportFigure(path: "plots/features.svg", caption: "Standardised weights of the leading features in the implicit reward, with 95% intervals",
                                    svg: SVGChart.lines(title: "Feature weights of the implicit reward", xLabel: "step", yLabel: "standardised coefficient", series: features)))
        }
        if let layers = result.layers, let svg = try? layers.heatmap(against: .base) {
            out.append(ReportFigure(path: "plots/layers.svg", caption: "Relative change of each block against the base", svg: svg))
        }
        return out
    }
}
