import Foundation

/// A table of display strings, rendered as Markdown in report.md and as HTML in report.html, so
/// that both documents show the same numbers.
struct ReportTable {
    let header: [String]
    private(set) var rows: [[String]] = []
    /// Columns of token text, shown as code spans in Markdown.
    let codeColumns: Set<Int>
    /// Columns of free text from the inputs (paths, prompts, responses). In Markdown every `&` and
    /// `<` is escaped, besides what `MarkdownText.escape` does to every cell.
    let textColumns: Set<Int>
    /// Columns aligned left in Markdown besides the first, the code and the text columns (labels);
    /// the others hold numbers and are aligned right.
    let labelColumns: Set<Int>

    init(_ header: [String], codeColumns: Set<Int> = [], textColumns: Set<Int> = [], labelColumns: Set<Int> = []) {
        self.header = header
        self.codeColumns = codeColumns
        self.textColumns = textColumns
        self.labelColumns = labelColumns
    }

    mutating func append(_ row: [String]) { rows.append(row) }

    /// The table as GitHub-flavoured Markdown. Every cell that is not code goes through
    /// `MarkdownText.escape`, whatever its column holds: a feature or group name from the inputs can
    /// sit in any column.
    var markdown: String {
        let left = codeColumns.union(textColumns).union(labelColumns).union([0])
        var table = MarkdownTable(header: header.map { MarkdownText.escape($0) },
                                  alignments: header.indices.map { left.contains($0) ? .left : .right })
        for row in rows {
            table.append(row.enumerated().map { column, cell in
                if codeColumns.contains(column) { return Self.codeSpan(cell) }
                return MarkdownText.escape(cell, everyAngleAndAmpersand: textColumns.contains(column))
            })
        }
        return table.text
    }

    /// `text` as an inline code span, with a longer fence when the text holds a backtick.
    static func codeSpan(_ text: String) -> String {
        text.contains("`") ? "`` \(text) ``" : "`\(text)`"
    }
}

/// One piece of the report, rendered by `AnalysisReport.markdown` and `AnalysisReport.html`.
enum ReportBlock {
    case heading(String, level: Int)
    case paragraph(String)
    case code(String)
    case bullets([String])
    case table(ReportTable)
    case figure(ReportFigure)
}

extension AnalysisReport {
    /// report.md: the blocks as GitHub-flavoured Markdown; figures link to their SVG files. The text
    /// of headings, paragraphs, list items and table cells goes through `MarkdownText.escape`, so
    /// that names and values from the inputs, which the blocks quote, show as text and cannot act as
    /// markup (raw HTML, links, new blocks).
    static func markdown(_ blocks: [ReportBlock]) -> String {
        blocks.map { block -> String in
            switch block {
            case .heading(let text, let level):
                String(repeating: "#", count: min(max(level, 1), 6)) + " " + MarkdownText.escape(text, atBlockStart: true)
            case .paragraph(let text): MarkdownText.escape(text, atBlockStart: true)
            case .code(let text): "```\n\(text)\n```"
            case .bullets(let items): items.map { "- " + MarkdownText.escape($0, atBlockStart: true) }.joined(separator: "\n")
            case .table(let table): String(table.markdown.dropLast())
            case .figure(let figure): "![\(figure.caption)](\(figure.path))"
            }
        }.joined(separator: "\n\n") + "\n"
    }

    /// The report's sections in reading order: inputs and formula, data, fit statistics,
    /// attribution, divergence, tokens, top disagreements, warnings, and the summary.
    static func reportBlocks(_ result: AnalysisResult, plots: [ReportFigure]) -> [ReportBlock] {
        let figure: (String) -> [ReportBlock] = { name in
            plots.first { $0.path == "plots/\(name).svg" }.map { [.figure($0)] } ?? []
        }
        var blocks: [ReportBlock] = [.heading(reportTitle, level: 1), .paragraph(introduction(result))]
        blocks += inputsSection(result)
        blocks += dataSection(result)
        blocks += trainerRewardsSection(result)
        blocks += fitStatisticsSection(result)
        blocks += attributionSection(result, figure: figure)
        blocks += divergenceSection(result, figure: figure)
        blocks += tokensSection(result)
        blocks += disagreementsSection(result)
        blocks += [.heading("Warnings", level: 2)]
        let warnings = allWarnings(result)
        blocks.append(warnings.isEmpty ? .paragraph("None.") : .bullets(warnings))
        blocks += [.heading("Summary", level: 2), .paragraph(plainLanguageSummary(result))]
        return blocks
    }

    static let noRewardModelSentence = "No reward model was given (reward source: none), so there is nothing to compare the implicit reward with."

    private static func introduction(_ result: AnalysisResult) -> String {
        let pairs = result.pairs.isEmpty ? "" : " (\(result.pairs.count) preference pairs)"
        let comparison = result.rewardSource == .none
            ? "No training reward was given, so the report describes the implicit reward alone."
            : "The divergence section compares it with the training reward: \(result.rewardSource.description)."
        return "irm \(result.toolVersion) scored \(result.samples.count) responses\(pairs) under the policy before and after fine-tuning. "
            + "The implicit reward is what the fine-tuning itself rewarded; linear fits explain it with interpretable features. "
            + comparison
    }

    // MARK: Inputs, formula and data

    private static func inputsSection(_ result: AnalysisResult) -> [ReportBlock] {
        var inputs = ReportTable(["role", "path", "SHA-256", "summary"], codeColumns: [2], textColumns: [1, 3])
        for input in result.inputs {
            inputs.append([input.role, input.path, String(input.sha256.prefix(16)) + "…", input.summary])
        }
        let formula: String
        let aggregation: String
        switch result.aggregation {
        case .sum:
            formula = "r(x,y) = β·Σ_t [log π_after(y_t|x,y_<t) − log π_before(y_t|x,y_<t)]"
            aggregation = "summed over the T scored response tokens (DPO's definition, Rafailov et al. 2023). Units: nats (natural-log probability ratios, scaled by β). An empty response scores 0 and is flagged."
        case .mean:
            formula = "r(x,y) = (β/T)·Σ_t [log π_after(y_t|x,y_<t) − log π_before(y_t|x,y_<t)]"
            aggregation = "averaged over the T scored response tokens (a length-normalised reward). Units: nats per token (natural-log probability ratios, scaled by β). An empty response has no mean; it scores 0 by convention and is flagged."
        }
        var tokenisation = "Tokenisation: each prompt is tokenised with the tokenizer's special tokens (such as a BOS) and each response on its own without them; the two id lists are concatenated, and only response tokens are scored, each conditioned on the prompt and the response tokens before it (docs/scoring.md)."
        if result.options.contains(where: { $0.key.lowercased().contains("eos") && $0.value == "true" }) {
            tokenisation += " An end-of-sequence token was appended to each response and scored with it."
        }
        let source = result.rewardSource == .none
            ? "Training reward: none was given."
            : "Training reward: \(result.rewardSource.description). It is explained with the same features as the implicit reward."
        var options = ReportTable(["option", "value"], textColumns: [1])
        for option in result.options { options.append([option.key, option.value]) }
        return [
            .heading("Inputs and formula", level: 2),
            .table(inputs),
            .paragraph("Full SHA-256 digests, the tool version and every option are in manifest.json."),
            .paragraph("The implicit reward of response y to prompt x is"),
            .code(formula),
            .paragraph("with β = \(NumberFormat.exact(result.beta)), \(aggregation) The per-token terms r_t = β·(log π_after − log π_before) are kept for the token analysis."),
            .paragraph(tokenisation),
            .paragraph(source),
            .paragraph("DPO's reward also holds β·log Z(x), a term of the prompt alone, which is left out. It cancels only between responses to the same prompt: pair accuracy and pair agreement are exact, while correlations and regressions across prompts carry each prompt's unknown offset."),
            .table(options),
        ]
    }

    private static func dataSection(_ result: AnalysisResult) -> [ReportBlock] {
        let samples = result.samples
        var table = ReportTable(["quantity", "value"], labelColumns: [1])
        table.append(["samples", "\(samples.count)"])
        table.append(["preference pairs", "\(result.pairs.count)"])
        let empty = samples.filter(\.isEmptyResponse).count
        table.append(["empty responses", empty == 0 ? "0" : "\(empty) (kept with 0 tokens and score 0, flagged in samples.csv)"])
        if let tokens = meanMedianMax(samples.map { Double($0.responseTokens) }) {
            table.append(["response tokens", "mean \(shown(tokens.mean)), median \(shown(tokens.median)), max \(shown(tokens.max))"])
        }
        if let tokens = meanMedianMax(samples.map { Double($0.promptTokens) }) {
            table.append(["prompt tokens", "mean \(shown(tokens.mean)), median \(shown(tokens.median)), max \(shown(tokens.max))"])
        }
        let rewards = result.implicitRewards
        if let summary = meanMedianMax(rewards), let low = rewards.min() {
            let sd = ColumnMoments.populationSD(rewards)
            table.append(["implicit reward (\(result.aggregation.rawValue), nats)",
                          "mean \(shown(summary.mean)), sd \(shown(sd)), min \(shown(low)), max \(shown(summary.max))"])
        }
        if let kl = meanMedianMax(samples.map(\.kl)) {
            table.append(["KL(after ‖ before) per response (nats)", "mean \(shown(kl.mean)), median \(shown(kl.median)), max \(shown(kl.max))"])
        }
        let skipped = result.features.skipped.count
        table.append(["features", "\(result.features.names.count)" + (skipped > 0 ? " (\(skipped) built-ins skipped, see Warnings)" : "")])
        if let field = result.groupField {
            var counts: [String: Int] = [:]
            for sample in samples { counts[sample.group ?? "(none)", default: 0] += 1 }
            table.append(["groups (\(field))", counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")])
        }
        return [.heading("Data", level: 2), .table(table)]
    }

    /// What TRL's DPOTrainer would log for these pairs.
    private static func trainerRewardsSection(_ result: AnalysisResult) -> [ReportBlock] {
        guard let t = result.trainerRewards else { return [] }
        var table = ReportTable(["metric", "value", "95% CI"], labelColumns: [0])
        for metric in t.metrics {
            table.append([ReportTable.codeSpan(metric.name), shown(metric.value), metric.interval.map { interval($0.lower, $0.upper) } ?? "—"])
        }
        return [
            .heading("Implicit reward as TRL logs it", level: 2),
            .paragraph("Over the \(t.pairCount) preference pairs, with r = β·Σ_t (log π_after − log π_before) summed over each response (β = \(shown(t.beta))): the means of r(chosen), r(rejected) and their margin, and the share of pairs with r(chosen) > r(rejected), as TRL's DPOTrainer logs them; 95% bootstrap intervals over pairs."),
            .table(table),
        ]
    }

    // MARK: Fits

    private static func fitStatisticsSection(_ result: AnalysisResult) -> [ReportBlock] {
        var table = ReportTable(["target", "N", "df model", "df resid", "R²", "adj. R²", "F", "P(F)", "CV R²", "cond. no."])
        var notes: [String] = []
        for target in result.targets {
            switch target.ols {
            case .undefined(let reason):
                table.append([target.description, "\(target.values.count)", "—", "—", "undefined", "—", "—", "—", "—", "—"])
                notes.append("\(target.description): the fit is undefined: \(reason)")
            case .defined(let fit):
                table.append([target.description, "\(fit.observationCount)", "\(fit.modelDegreesOfFreedom)",
                              "\(fit.residualDegreesOfFreedom)", shown(fit.rSquared), shown(fit.adjustedRSquared),
                              shown(fit.fStatistic), shownP(fit.fPValue), shown(fit.crossValidatedRSquared),
                              shown(fit.conditionNumber)])
            }
        }
        notes += mergedFitNotes(result)
        var blocks: [ReportBlock] = [
            .heading("Fit statistics", level: 2),
            .paragraph("Ordinary least squares of each target on the features with an intercept, solved on z-scored features by LAPACK dgelsd and reported in raw units as statsmodels does. P(F) is the p-value of the F test that all coefficients are 0; CV R² is the k-fold cross-validated R² on seeded folds, which can be negative; cond. no. is the condition number of the raw design actually fitted, after constant and aliased features are left out (statsmodels warns above 1000). The difference target is z(implicit) − z(RM). Formulas: docs/formulas.md."),
            .table(table),
        ]
        if !notes.isEmpty { blocks.append(.bullets(notes)) }
        return blocks
    }

    private static func attributionSection(_ result: AnalysisResult, figure: (String) -> [ReportBlock]) -> [ReportBlock] {
        var blocks: [ReportBlock] = [
            .heading("Attribution", level: 2),
            .paragraph("coef is in raw units (target per unit of the feature); std err is classical, HC3 se heteroskedasticity-robust (MacKinnon & White 1985); t and P>|t| use the classical error, P>|t| HC3 the robust one, both on the residual degrees of freedom; [0.025, 0.975] is the 95% confidence interval of coef; std β is the coefficient on z-scored feature and target; LMG share is the feature's part of R², averaged over all orders of entry (Lindeman, Merenda & Gold 1980), with a 95% bootstrap interval. Features are sorted by |std β|; features the fit left out are listed last. Feature definitions: docs/features.md."),
        ]
        for target in result.targets where target.name != "difference" {
            blocks.append(.heading(capitalised(target.description), level: 3))
            switch target.ols {
            case .undefined(let reason):
                blocks.append(.paragraph("The fit is undefined: \(reason)."))
            case .defined(let fit):
                blocks.append(.table(coefficientTable(fit, target: target, features: result.features)))
                blocks += collinearityBlocks(target)
            }
            if target.name == "implicit_reward" { blocks += figure("attribution") }
            blocks += lmgBlocks(target, features: result.features)
            if target.name == "implicit_reward" { blocks += figure("lmg") }
            blocks.append(.paragraph(ridgeSentence(target.ridge)))
            if let vb = target.variationalBayes { blocks += variationalBayesBlocks(vb) }
            if let grouped = target.grouped { blocks += groupedBlocks(grouped, field: result.groupField ?? "group", features: result.features) }
        }
        return blocks
    }

    static func capitalised(_ text: String) -> String { text.prefix(1).uppercased() + text.dropFirst() }

    /// The collinear sets (VIF > 10) and the parsimonious fit the summary quotes.
    private static func collinearityBlocks(_ target: AnalysisResult.TargetAnalysis) -> [ReportBlock] {
        guard let outcome = target.collinearity else { return [] }
        guard case .defined(let analysis) = outcome else {
            return [.paragraph("Collinearity was not analysed: \(outcome.undefinedReason ?? "").")]
        }
        guard !analysis.sets.isEmpty else {
            return [.paragraph("No feature has a VIF above \(shown(analysis.threshold)), so the summary quotes this fit.")]
        }
        var sets = ReportTable(["collinear set", "VIFs", "representative"], textColumns: [0, 1])
        for set in analysis.sets {
            sets.append([set.memberNames.joined(separator: ", "), set.members.map { "\($0.name) \(shown($0.factor))" }.joined(separator: ", "),
                         set.representative])
        }
        var blocks: [ReportBlock] = [
            .paragraph("\(analysis.sets.count) collinear set\(analysis.sets.count == 1 ? "" : "s") (features with VIF above \(shown(analysis.threshold)), each joined to the one that explains most of its VIF, round after round until no VIF among the features left exceeds \(shown(analysis.threshold)); \(analysis.rounds) round\(analysis.rounds == 1 ? "" : "s") here): within a set the coefficients share one signal, so their separate signs and sizes mean little. The summary quotes the parsimonious fit below, which keeps one representative per set (the member with the largest LMG share, or with the largest R² alone when LMG ran over feature groups) and every other feature; the table above keeps the full fit (docs/formulas.md, Collinearity)."),
            .table(sets),
        ]
        let fit = analysis.parsimoniousFit
        let vif = Dictionary(analysis.parsimoniousVarianceInflation.map { ($0.name, $0.factor) }, uniquingKeysWith: { a, _ in a })
        var table = ReportTable(["feature (parsimonious fit)", "coef", "HC3 se", "P>|t| HC3", "std β", "VIF"])
        for c in sortedByStandardized(fit.coefficients) {
            table.append([c.name, shown(c.estimate, digits: 4), shown(c.robustStandardError), shownP(c.robustPValue), shown(c.standardizedEstimate),
                          shown(vif[c.name])])
        }
        let largest = analysis.parsimoniousVarianceInflation.map(\.factor).max()
        blocks.append(.paragraph("Parsimonious fit: R² = \(shown(fit.rSquared)) (full fit \(shown(target.ols.value?.rSquared))), cond. no. \(shown(fit.conditionNumber)), largest VIF \(shown(largest))."))
        blocks.append(.table(table))
        return blocks
    }

    private static func coefficientTable(_ fit: LeastSquaresFit, target: AnalysisResult.TargetAnalysis,
                                         features: FeatureTable) -> ReportTable {
        var table = ReportTable(["feature", "group", "coef", "std err", "HC3 se", "t", "P>|t|", "P>|t| HC3", "[0.025", "0.975]",
                                 "std β", "LMG share", "VIF"], labelColumns: [1])
        let groupOf = Dictionary(zip(features.names, features.groups.map(\.rawValue)), uniquingKeysWith: { first, _ in first })
        let lmg = LMGLookup(target, features: features)
        let vif = Dictionary((target.collinearity?.value?.varianceInflation ?? []).map { ($0.name, $0.factor) }, uniquingKeysWith: { a, _ in a })
        func row(_ c: LeastSquaresFit.Coefficient, name: String, group: String) -> [String] {
            let share = lmg.featureShare[c.name].map { share -> String in
                share.interval.map { "\(shown(share.share)) \(interval($0.lower, $0.upper))" } ?? shown(share.share)
            } ?? "—"
            return [name, group, shown(c.estimate, digits: 4), shown(c.standardError), shown(c.robustStandardError),
                    shown(c.tStatistic), shownP(c.pValue), shownP(c.robustPValue), shown(c.confidenceLower),
                    shown(c.confidenceUpper), shown(c.standardizedEstimate), share, vif[c.name].map { shown($0) } ?? ""]
        }
        table.append(row(fit.intercept, name: intercept, group: ""))
        for c in sortedByStandardized(fit.coefficients) { table.append(row(c, name: c.name, group: groupOf[c.name] ?? "")) }
        let kept = Set(fit.coefficients.map(\.name))
        for name in features.names where !kept.contains(name) {
            table.append([name, groupOf[name] ?? "", omissionNote(name, fit: fit), "", "", "", "", "", "", "", "", "—", ""])
        }
        return table
    }

    private static func lmgBlocks(_ target: AnalysisResult.TargetAnalysis, features: FeatureTable) -> [ReportBlock] {
        guard let lmg = target.lmg else {
            return [.paragraph("LMG shares were not computed for this target.")]
        }
        guard case .defined(let attribution) = lmg else {
            return [.paragraph("LMG shares are undefined: \(lmg.undefinedReason ?? "")")]
        }
        let replicates = attribution.shares.compactMap { $0.interval.map { $0.replicates + $0.undefinedReplicates } }.max()
        let intervals = replicates.map { "95% bootstrap percentile intervals over \($0) resamples" } ?? "no bootstrap intervals (--bootstrap 0)"
        let players = target.lmgByGroup ? "feature groups" : "single features"
        var table = ReportTable([target.lmgByGroup ? "group" : "feature", target.lmgByGroup ? "features" : "group", "share of R²",
                                 "95% CI", "% of R²"], labelColumns: [1])
        let groupOf = Dictionary(zip(features.names, features.groups.map(\.rawValue)), uniquingKeysWith: { first, _ in first })
        let ordered = attribution.shares.sorted { $0.share != $1.share ? $0.share > $1.share : $0.name < $1.name }
        for share in ordered {
            let second = target.lmgByGroup ? share.members.joined(separator: ", ") : (groupOf[share.name] ?? "")
            let ci = share.interval.map { interval($0.lower, $0.upper) } ?? "—"
            table.append([share.name, second, shown(share.share), ci,
                          attribution.rSquared > 0 ? percent(share.share / attribution.rSquared) : "—"])
        }
        return [
            .paragraph("LMG decomposition of R² = \(shown(attribution.rSquared)) among \(players), with \(intervals)."),
            .table(table),
        ]
    }

    private static func ridgeSentence(_ ridge: StatisticOutcome<RidgeFit>) -> String {
        switch ridge {
        case .undefined(let reason):
            return "Ridge is undefined: \(reason)."
        case .defined(let fit):
            let boundary = fit.lambdaAtGridBoundary ? " λ lies on the edge of the search grid, so the GCV minimum may lie beyond it." : ""
            return "Ridge with λ chosen by generalised cross-validation (z-scored features): λ = \(shown(fit.lambda)), effective degrees of freedom \(shown(fit.effectiveDegreesOfFreedom)), GCV = \(shown(fit.generalizedCrossValidation)); its coefficients are the ridge columns of attribution.csv.\(boundary)"
        }
    }

    private static func variationalBayesBlocks(_ outcome: StatisticOutcome<VariationalBayesRegression>) -> [ReportBlock] {
        guard case .defined(let vb) = outcome else {
            return [.paragraph("Variational Bayes is undefined: \(outcome.undefinedReason ?? "").")]
        }
        var table = ReportTable(["feature", "posterior mean", "posterior sd", "95% credible interval", "std posterior mean", "relevance"])
        let ordered = vb.coefficients.sorted {
            abs($0.standardizedPosteriorMean) != abs($1.standardizedPosteriorMean)
                ? abs($0.standardizedPosteriorMean) > abs($1.standardizedPosteriorMean) : $0.name < $1.name
        }
        for c in ordered {
            table.append([c.name, shown(c.posteriorMean, digits: 4), shown(c.posteriorSD), interval(c.credibleLower, c.credibleUpper),
                          shown(c.standardizedPosteriorMean), shown(c.relevance)])
        }
        let convergence = vb.converged ? "converged after \(vb.iterations) sweeps" : "did not converge within \(vb.iterations) sweeps; read it with care"
        return [
            .paragraph("Variational Bayes with ARD priors (docs/formulas.md): posterior means and 95% credible intervals in raw units; relevance 1/E[α] is near 0 for a feature the prior switched off. The fit \(convergence)."),
            .table(table),
        ]
    }

    private static func groupedBlocks(_ outcome: StatisticOutcome<GroupedFit>, field: String, features: FeatureTable) -> [ReportBlock] {
        guard case .defined(let grouped) = outcome else {
            return [.paragraph("The prompt-conditioned fit by \(field) is undefined: \(outcome.undefinedReason ?? "").")]
        }
        var table = ReportTable(["coef (p)"] + grouped.groups.map { "\(field) = \($0.label)" })
        table.append(["n"] + grouped.groups.map { "\($0.fit.observationCount)" })
        table.append(["R²"] + grouped.groups.map { shown($0.fit.rSquared) })
        func cell(_ c: LeastSquaresFit.Coefficient?) -> String {
            c.map { "\(shown($0.estimate)) (\(shownP($0.pValue)))" } ?? "left out"
        }
        table.append([intercept] + grouped.groups.map { cell($0.fit.intercept) })
        for name in features.names {
            table.append([name] + grouped.groups.map { group in cell(group.fit.coefficients.first { $0.name == name }) })
        }
        return [
            .paragraph("Prompt-conditioned weights: a separate fit per value of \(field). Chow test that all groups share one set of coefficients: F(\(grouped.numeratorDegreesOfFreedom), \(grouped.denominatorDegreesOfFreedom)) = \(shown(grouped.chowF)), p = \(shownP(grouped.chowPValue)) (assumes equal noise variance across groups)."),
            .table(table),
        ]
    }
}

// MARK: - Divergence, tokens, disagreements, warnings

extension AnalysisReport {
    /// The significance used for the report's lists: the HC3 p-value, or the classical one where
    /// HC3 is undefined.
    static func significanceP(_ c: LeastSquaresFit.Coefficient) -> Double { c.robustPValue ?? c.pValue }

    private static func divergenceSection(_ result: AnalysisResult, figure: (String) -> [ReportBlock]) -> [ReportBlock] {
        var blocks: [ReportBlock] = [.heading("Divergence from the training reward", level: 2)]
        guard let d = result.divergence else {
            blocks.append(.paragraph(result.rewardSource == .none ? noRewardModelSentence : "The divergence metrics were not computed."))
            blocks += lengthNormalizedGainBlocks(result.lengthNormalizedGain)
            return blocks
        }
        blocks += correlationBlocks(d)
        blocks += figure("implicit_vs_reward_model")
        blocks += pairBlocks(d)
        blocks += coefficientGapBlocks(d)
        blocks += figure("coefficient_gaps")
        blocks += differenceFitBlocks(d.differenceFit)
        blocks += lengthControlBlocks(d.lengthControl)
        blocks += figure("length")
        blocks += lengthNormalizedGainBlocks(result.lengthNormalizedGain)
        return blocks
    }

    private static func correlationBlocks(_ d: Divergence) -> [ReportBlock] {
        var table = ReportTable(["scores", "method", "value", "95% CI", "p", "n"], labelColumns: [1])
        let sets = [d.implicitVersusRewardModel] + [d.implicitVersusGold, d.rewardModelVersusGold].compactMap { $0 }
        var replicates: Int? = nil
        for set in sets {
            for (method, outcome) in [("Pearson r", set.pearson), ("Spearman ρ", set.spearman), ("Kendall τ-b", set.kendall)] {
                let scores = "\(set.first) ~ \(set.second)"
                switch outcome {
                case .undefined(let reason):
                    table.append([scores, method, "undefined: \(reason)", "—", "—", "—"])
                case .defined(let e):
                    if let i = e.interval { replicates = max(replicates ?? 0, i.replicates + i.undefinedReplicates) }
                    table.append([scores, method, shown(e.value), e.interval.map { interval($0.lower, $0.upper) } ?? "—",
                                  shownP(e.pValue), "\(e.sampleCount)"])
                }
            }
        }
        let ci = replicates.map { "Intervals are bootstrap percentile intervals over \($0) resamples of the samples." }
            ?? "No bootstrap intervals were computed (--bootstrap 0)."
        return [
            .heading("Correlations", level: 3),
            .paragraph("Correlations over all samples. Pearson and Spearman p-values use the t approximation, Kendall's the normal approximation with ties (as scipy). \(ci)"),
            .table(table),
        ]
    }

    private static func pairBlocks(_ d: Divergence) -> [ReportBlock] {
        var blocks: [ReportBlock] = [.heading("Preference pairs", level: 3)]
        let scorers: [(String, StatisticOutcome<PairAccuracy>?)] = [
            ("implicit reward", d.implicitPairAccuracy), ("reward model", d.rewardModelPairAccuracy), ("gold", d.goldPairAccuracy),
        ]
        guard scorers.contains(where: { $0.1 != nil }) else {
            blocks.append(.paragraph("The data has no chosen/rejected pairs, so there are no pair accuracies."))
            return blocks
        }
        var table = ReportTable(["scorer", "correct", "ties", "pairs", "strict accuracy"])
        for (name, outcome) in scorers {
            switch outcome {
            case nil: continue
            case .undefined(let reason)?: table.append([name, "—", "—", "—", "undefined: \(reason)"])
            case .defined(let a)?: table.append([name, "\(a.correct)", "\(a.ties)", "\(a.total)", shown(a.accuracy)])
            }
        }
        blocks.append(.paragraph("Strict accuracy on the data's chosen/rejected labels: a pair counts as correct only when the chosen response scores strictly higher; a tie counts as wrong, as in RewardBench."))
        blocks.append(.table(table))
        switch d.pairAgreement {
        case nil: break
        case .undefined(let reason)?:
            blocks.append(.paragraph("Agreement of the implicit reward with the reward model is undefined: \(reason)."))
        case .defined(let a)?:
            blocks.append(.paragraph("The implicit reward and the reward model order \(a.agreeing) of \(a.total) pairs the same way (agreement \(shown(a.agreement))); a tie in either counts as a disagreement (ties: implicit \(a.tiesFirst), reward model \(a.tiesSecond))."))
        }
        return blocks
    }

    private static func coefficientGapBlocks(_ d: Divergence) -> [ReportBlock] {
        var blocks: [ReportBlock] = [.heading("Coefficients", level: 3)]
        if let cosine = d.coefficientCosine {
            blocks.append(.paragraph("Cosine between the standardised coefficient vectors of the implicit-reward fit and the reward-model fit (features both fits kept): \(shown(cosine)). 1 means the two weigh the features alike, 0 unrelated, −1 opposite."))
        } else {
            blocks.append(.paragraph("The coefficient cosine is undefined: one of the two fits is undefined or has no non-zero coefficient."))
        }
        guard !d.coefficientGaps.isEmpty else { return blocks }
        var table = ReportTable(["feature", "std β implicit", "std β RM", "gap", "95% CI", "p", "p HC3"])
        let ordered = d.coefficientGaps.sorted { abs($0.gap) != abs($1.gap) ? abs($0.gap) > abs($1.gap) : $0.feature < $1.feature }
        for gap in ordered {
            table.append([gap.feature, shown(gap.implicitCoefficient), shown(gap.rewardModelCoefficient), shown(gap.gap),
                          interval(gap.confidenceLower, gap.confidenceUpper), shownP(gap.pValue), shownP(gap.robustPValue)])
        }
        blocks.append(.paragraph("Each feature's gap is its standardised coefficient for the implicit reward minus that for the reward model, estimated directly as the coefficient of the regression of z(implicit) − z(RM) on the features, with its 95% interval and p-values. Sorted by |gap|."))
        blocks.append(.table(table))
        return blocks
    }

    private static func differenceFitBlocks(_ outcome: StatisticOutcome<LeastSquaresFit>) -> [ReportBlock] {
        var blocks: [ReportBlock] = [.heading("What the policy learned beyond the reward model", level: 3)]
        guard case .defined(let fit) = outcome else {
            blocks.append(.paragraph("The difference z(implicit) − z(RM) could not be fitted: \(outcome.undefinedReason ?? "")."))
            return blocks
        }
        let (beyond, less) = significantDifferences(fit)
        func item(_ c: LeastSquaresFit.Coefficient) -> String {
            "\(c.name): std β \(signed(c.standardizedEstimate ?? 0)), coef \(shown(c.estimate)) \(interval(c.confidenceLower, c.confidenceUpper)), \(c.robustPValue == nil ? "p" : "p HC3") \(shownP(significanceP(c)))"
        }
        blocks.append(.paragraph("Regression of z(implicit) − z(RM) on the features (R² = \(shown(fit.rSquared))). Features with p < 0.05 (HC3):"))
        blocks.append(.paragraph("Learned beyond the RM (positive):"))
        blocks.append(beyond.isEmpty ? .paragraph("none.") : .bullets(beyond.map(item)))
        blocks.append(.paragraph("Asked for by the RM but learned less (negative):"))
        blocks.append(less.isEmpty ? .paragraph("none.") : .bullets(less.map(item)))
        return blocks
    }

    /// The difference fit's features with p < 0.05 (HC3), positive and negative, by |std β|.
    static func significantDifferences(_ fit: LeastSquaresFit)
        -> (beyond: [LeastSquaresFit.Coefficient], less: [LeastSquaresFit.Coefficient]) {
        let significant = sortedByStandardized(fit.coefficients).filter { significanceP($0) < 0.05 }
        return (significant.filter { $0.estimate > 0 }, significant.filter { $0.estimate < 0 })
    }

    private static func lengthControlBlocks(_ control: Divergence.LengthControl) -> [ReportBlock] {
        var table = ReportTable(["response tokens", "n", "mean z implicit", "mean z RM"])
        for bucket in control.buckets {
            table.append(["\(bucket.lowerTokens)–\(bucket.upperTokens)", "\(bucket.count)", shown(bucket.meanImplicitZ),
                          shown(bucket.meanRewardModelZ)])
        }
        let within: String
        switch control.withinBucketCorrelation {
        case .undefined(let reason): within = "undefined (\(reason))"
        case .defined(let e): within = shown(e.value) + (e.interval.map { " (95% CI \(interval($0.lower, $0.upper)))" } ?? "") + ", p \(shownP(e.pValue))"
        }
        return [
            .heading("Length control", level: 3),
            .paragraph("Responses in buckets of \(Divergence.LengthControl.bucketWidth) tokens (Singhal et al. 2023). η², the share of a score's variance that lies between the buckets: implicit reward \(shown(control.implicitVarianceExplainedByLength)), reward model \(shown(control.rewardModelVarianceExplainedByLength)). Pearson correlation of the two scores after subtracting each bucket's means: \(within)."),
            .table(table),
        ]
    }

    private static func lengthNormalizedGainBlocks(_ gains: [LengthNormalizedGain]) -> [ReportBlock] {
        guard !gains.isEmpty else { return [] }
        var table = ReportTable(["score", "raw gain ΔR", "NRG", "NRG/ΔR", "unmatched responses"])
        for gain in gains {
            table.append([gain.score, shown(gain.rawGain),
                          gain.normalizedGain.map { shown($0) } ?? "undefined: no bucket holds responses of both policies",
                          gain.ratio.map { shown($0) } ?? "undefined", "\(gain.unmatchedCount)"])
        }
        return [
            .heading("Length-normalised gain", level: 3),
            .paragraph("Gain of the after-policy's responses over the before-policy's: ΔR is the raw difference of mean scores, NRG the same difference within \(LengthNormalizedGain.defaultWidth)-token length buckets, weighted by bucket size (Singhal et al. 2023). NRG/ΔR near 1: the gain does not come from length; near 0: it is all length. Responses in buckets with only one policy are left out of NRG."),
            .table(table),
        ]
    }

    // MARK: Tokens

    static let reportTokenCount = 15

    private static func tokensSection(_ result: AnalysisResult) -> [ReportBlock] {
        let reconstruction = result.tokenReconstruction
        var blocks: [ReportBlock] = [
            .heading("Tokens", level: 2),
            .paragraph("Ridge regression (λ = \(shown(reconstruction.lambda))) of the per-token reward r_t on the identity of the \(reconstruction.effects.count) most frequent response tokens, over \(reconstruction.scoredTokenCount) scored tokens (Marks et al. 2023). A token's coefficient is its mean excess reward over the intercept b₀ = \(shown(reconstruction.intercept)) nats, shrunk toward 0 for rare tokens. Whitespace is shown as ␣ (space), ⏎ (line break) and ⇥ (tab). All tokens: tokens.csv."),
        ]
        guard !reconstruction.effects.isEmpty else {
            blocks.append(.paragraph("No response token occurs often enough to be modelled."))
            return blocks
        }
        func table(_ effects: [TokenReconstruction.TokenEffect]) -> ReportTable {
            var table = ReportTable(["token", "id", "count", "mean r_t", "coefficient"], codeColumns: [0])
            for e in effects {
                table.append([visibleToken(e.text), "\(e.tokenID)", "\(e.count)", shown(e.meanReward), shown(e.coefficient)])
            }
            return table
        }
        blocks += [
            .heading("Pushed up most", level: 3), .table(table(reconstruction.pushedUp(reportTokenCount))),
            .heading("Pushed down most", level: 3), .table(table(reconstruction.pushedDown(reportTokenCount))),
        ]
        if let lexicon = result.lexiconRecovery { blocks += lexiconBlocks(lexicon) }
        return blocks
    }

    private static func lexiconBlocks(_ recovery: LexiconRecovery) -> [ReportBlock] {
        var table = ReportTable(["measure", "value"], labelColumns: [1])
        table.append(["matched lexicon words", "\(recovery.matches.count)"])
        switch recovery.kendall {
        case .undefined(let reason): table.append(["Kendall τ-b (reconstruction ~ lexicon)", "undefined: \(reason)"])
        case .defined(let e):
            table.append(["Kendall τ-b (reconstruction ~ lexicon)",
                          shown(e.value) + (e.interval.map { " \(interval($0.lower, $0.upper))" } ?? "") + ", p \(shownP(e.pValue))"])
        }
        table.append(["sign agreement", recovery.signAgreement.map { shown($0) } ?? "undefined: no matched word has a non-zero value"])
        table.append(["strongly positive words (lexicon ≥ 2)", "\(recovery.strongPositiveCount)"])
        let noStrong = "undefined: no strongly positive word"
        table.append(["recovered share (rescaled ≥ 2)", recovery.recoveredShare.map { shown($0) } ?? noStrong])
        table.append(["badly wrong share (rescaled < 0)", recovery.badlyWrongShare.map { shown($0) } ?? noStrong])
        return [
            .heading("Lexicon recovery", level: 3),
            .paragraph("How well the token reconstruction recovers the lexicon reward (methods.md §2): the reconstruction is rescaled onto the lexicon's range over the matched words. Per-word values: lexicon.csv."),
            .table(table),
        ]
    }

    // MARK: Disagreements and warnings

    private static func disagreementsSection(_ result: AnalysisResult) -> [ReportBlock] {
        var blocks: [ReportBlock] = [.heading("Top disagreements", level: 2)]
        guard let d = result.divergence else {
            blocks.append(.paragraph(result.rewardSource == .none ? noRewardModelSentence : "The divergence metrics were not computed."))
            return blocks
        }
        guard !d.topDisagreements.isEmpty else {
            blocks.append(.paragraph("None listed: one of the two rewards is constant, so it has no standardised form."))
            return blocks
        }
        var table = ReportTable(["#", "id", "role", "z implicit", "z RM", "z diff", "prompt", "response"], textColumns: [1, 6, 7], labelColumns: [2])
        for (rank, disagreement) in d.topDisagreements.enumerated() {
            guard result.samples.indices.contains(disagreement.index) else { continue }
            let sample = result.samples[disagreement.index]
            table.append(["\(rank + 1)", sample.id, sample.role?.rawValue ?? "", shown(disagreement.implicitZ),
                          shown(disagreement.rewardModelZ), shown(disagreement.difference), excerpt(sample.prompt),
                          excerpt(sample.response)])
        }
        blocks.append(.paragraph("The samples where the z-scored implicit reward and reward-model score differ most (z diff = z implicit − z RM). Excerpts are cut at 120 characters; ⏎ marks a line break."))
        blocks.append(.table(table))
        return blocks
    }

    /// The OLS notes of the targets, a note shared by every defined fit written once ("every fit:
    /// …"), the others prefixed with their target, in target order.
    static func mergedFitNotes(_ result: AnalysisResult) -> [String] {
        let fits = result.targets.compactMap { target in target.ols.value.map { (label: target.description, notes: $0.notes) } }
        guard !fits.isEmpty else { return [] }
        var shared: [String] = []
        for note in fits[0].notes where fits.allSatisfy({ $0.notes.contains(note) }) && !shared.contains(note) {
            shared.append(note)
        }
        let prefix = fits.count > 1 ? "every fit: " : "\(fits[0].label): "
        var items = shared.map { prefix + $0 }
        for fit in fits {
            items += fit.notes.filter { !shared.contains($0) }.map { "\(fit.label): \($0)" }
        }
        return items
    }

    /// The result's warnings, then every fit's notes and undefined outcomes and the skipped
    /// features, each once, in that order.
    static func allWarnings(_ result: AnalysisResult) -> [String] {
        var items = result.warnings + mergedFitNotes(result)
        for target in result.targets {
            let label = target.description
            if let reason = target.ols.undefinedReason { items.append("\(label): the fit is undefined: \(reason)") }
            if let reason = target.lmg?.undefinedReason { items.append("\(label): LMG shares are undefined: \(reason)") }
            if let reason = target.ridge.undefinedReason { items.append("\(label): ridge is undefined: \(reason)") }
            if let vb = target.variationalBayes {
                if let reason = vb.undefinedReason { items.append("\(label): variational Bayes is undefined: \(reason)") }
                if let fit = vb.value, !fit.converged { items.append("\(label): variational Bayes did not converge within \(fit.iterations) sweeps") }
            }
            if let reason = target.grouped?.undefinedReason { items.append("\(label): the prompt-conditioned fit is undefined: \(reason)") }
        }
        items += result.features.skipped.map { "feature \($0.name) skipped: \($0.reason)" }
        var seen = Set<String>()
        return items.filter { seen.insert($0).inserted }
    }
}
