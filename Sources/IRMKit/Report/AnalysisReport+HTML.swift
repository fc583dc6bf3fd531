import Foundation

/// An SVG figure of the report: written to `path` and embedded inline in report.html.
struct ReportFigure {
    /// Relative to the analysis directory, e.g. `plots/attribution.svg`.
    let path: String
    let caption: String
    let svg: String
}

extension AnalysisReport {
    /// report.html: the same blocks as report.md in one self-contained page, figures inline.
    static func html(_ blocks: [ReportBlock], title: String) -> String {
        var document = HTMLDocument(title: title)
        for block in blocks {
            switch block {
            case .heading(let text, let level):
                // HTMLDocument writes the title as the page's h1.
                if level > 1 { document.heading(text, level: level) }
            case .paragraph(let text): document.paragraph(text)
            case .code(let text): document.code(text)
            case .bullets(let items): for item in items { document.paragraph("• " + item) }
            case .table(let table): document.table(header: table.header, rows: table.rows)
            case .figure(let figure): document.figure(svg: figure.svg, caption: figure.caption)
            }
        }
        return document.text
    }

    /// The figures whose data exist for this result, in report order. A figure whose data are
    /// undefined (a constant reward, an undefined fit) or absent (no reward model) is left out.
    static func figures(for result: AnalysisResult) -> [ReportFigure] {
        [scatterFigure(result), attributionFigure(result), gapFigure(result), lmgFigure(result), lengthFigure(result)]
            .compactMap { $0 }
    }

    /// An interval for a bar's whisker; nil unless both ends are finite and ordered (a
    /// `ClosedRange` must not be formed otherwise).
    private static func whisker(_ low: Double, _ high: Double) -> ClosedRange<Double>? {
        guard low.isFinite, high.isFinite, low <= high else { return nil }
        return low...high
    }

    /// z(implicit) against z(RM), one point per sample, with the least-squares line and y = x.
    private static func scatterFigure(_ result: AnalysisResult) -> ReportFigure? {
        guard result.divergence != nil else { return nil }
        let rewardModel = result.samples.compactMap(\.rewardModel)
        guard rewardModel.count == result.samples.count, let zr = ColumnMoments.zScores(rewardModel),
              let zi = ColumnMoments.zScores(result.implicitRewards) else { return nil }
        let svg = SVGChart.scatter(title: "Implicit reward vs reward model (z-scores)", xLabel: "reward model (z)",
                                   yLabel: "implicit reward (z)", points: zip(zr, zi).map { (x: $0, y: $1) }, fitLine: true, diagonal: true)
        return ReportFigure(path: "plots/implicit_vs_reward_model.svg",
                            caption: "Each point is a sample; red: least-squares line, dashed: y = x.", svg: svg)
    }

    /// Standardised coefficients of the implicit-reward fit, with their 95% intervals mapped to the
    /// standardised scale (× sd(x)/sd(y), population sds, as the fit's standardised estimate).
    private static func attributionFigure(_ result: AnalysisResult) -> ReportFigure? {
        guard let target = result.target("implicit_reward"), let fit = target.ols.value, !fit.coefficients.isEmpty else { return nil }
        let sdY = ColumnMoments.populationSD(target.values)
        guard sdY > 0 else { return nil }
        let bars = sortedByStandardized(fit.coefficients).map { c -> SVGChart.Bar in
            let sdX = result.features.column(named: c.name).map { ColumnMoments.populationSD($0) } ?? 0
            let scale = sdX / sdY
            let interval = sdX > 0 ? whisker(c.confidenceLower * scale, c.confidenceUpper * scale) : nil
            return SVGChart.Bar(label: c.name, value: c.standardizedEstimate ?? c.estimate * scale, interval: interval)
        }
        let svg = SVGChart.bars(title: "Implicit reward: standardised coefficients (95% CI)", valueLabel: "std β", bars: bars)
        return ReportFigure(path: "plots/attribution.svg",
                            caption: "Standardised OLS coefficients of the implicit-reward fit with 95% confidence intervals.", svg: svg)
    }

    private static func gapFigure(_ result: AnalysisResult) -> ReportFigure? {
        guard let gaps = result.divergence?.coefficientGaps, !gaps.isEmpty else { return nil }
        let ordered = gaps.sorted { abs($0.gap) != abs($1.gap) ? abs($0.gap) > abs($1.gap) : $0.feature < $1.feature }
        let bars = ordered.map { SVGChart.Bar(label: $0.feature, value: $0.gap, interval: whisker($0.confidenceLower, $0.confidenceUpper)) }
        let svg = SVGChart.bars(title: "Coefficient gaps: implicit − reward model (95% CI)", valueLabel: "gap in std β", bars: bars)
        return ReportFigure(path: "plots/coefficient_gaps.svg",
                            caption: "Positive: the policy learned the feature more than the reward model asks; negative: less.", svg: svg)
    }

    private static func lmgFigure(_ result: AnalysisResult) -> ReportFigure? {
        guard let target = result.target("implicit_reward"), let attribution = target.lmg?.value else { return nil }
        let ordered = attribution.shares.sorted { $0.share != $1.share ? $0.share > $1.share : $0.name < $1.name }
        let bars = ordered.map { share in
            SVGChart.Bar(label: share.name, value: share.share, interval: share.interval.flatMap { whisker($0.lower, $0.upper) })
        }
        let svg = SVGChart.bars(title: "Implicit reward: LMG shares of R²", valueLabel: "share of R²", bars: bars)
        let players = target.lmgByGroup ? "feature group" : "feature"
        return ReportFigure(path: "plots/lmg.svg",
                            caption: "Each \(players)'s share of R² = \(shown(attribution.rSquared)) with its bootstrap interval.", svg: svg)
    }

    /// Mean z-scores per 20-token length bucket, implicit reward against reward model.
    private static func lengthFigure(_ result: AnalysisResult) -> ReportFigure? {
        guard let d = result.divergence, !d.lengthControl.buckets.isEmpty,
              ColumnMoments.zScores(result.implicitRewards) != nil,
              ColumnMoments.zScores(result.samples.compactMap(\.rewardModel)) != nil else { return nil }
        let middle = { (b: Divergence.LengthControl.Bucket) in Double(b.lowerTokens + b.upperTokens) / 2 }
        let series = [
            SVGChart.Series(name: "implicit reward", points: d.lengthControl.buckets.map { (x: middle($0), y: $0.meanImplicitZ) }),
            SVGChart.Series(name: "reward model", points: d.lengthControl.buckets.map { (x: middle($0), y: $0.meanRewardModelZ) }),
        ]
        let svg = SVGChart.lines(title: "Mean z-score by response length", xLabel: "response tokens (bucket centre)",
                                 yLabel: "mean z", series: series)
        return ReportFigure(path: "plots/length.svg",
                            caption: "Mean z-score of each reward in \(Divergence.LengthControl.bucketWidth)-token length buckets.", svg: svg)
    }
}
