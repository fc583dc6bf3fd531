import Foundation

/// The files of `analyses/NAME/` for one `AnalysisResult`: `report.md`, `report.html`,
/// `attribution.csv`, `samples.csv`, `tokens.csv`, `lexicon.csv` (with a lexicon reward),
/// `divergence.json`, `manifest.json` and the figures under `plots/`. docs/analysis-outputs.md
/// explains every column and key.
///
/// The writers only format: every number comes from the result. The same result gives the same
/// bytes (no timestamps, no timings, sorted JSON keys, explicit tie-breaks in every ordering), and
/// an undefined statistic is written with its reason, never as NaN.
public enum AnalysisReport {
    /// Every output file as (relative path, bytes), built in memory; deterministic (same result →
    /// same bytes). `manifest.json` comes last and lists all the others and itself.
    public static func files(for result: AnalysisResult) throws -> [(path: String, data: Data)] {
        let plots = figures(for: result)
        let blocks = reportBlocks(result, plots: plots)
        var texts: [(path: String, text: String)] = [
            ("report.md", markdown(blocks)),
            ("report.html", html(blocks, title: reportTitle)),
            ("attribution.csv", try attributionTable(result).text),
            ("samples.csv", try samplesTable(result).text),
            ("tokens.csv", try tokensTable(result.tokenReconstruction).text),
        ]
        if let lexicon = result.lexiconRecovery {
            texts.append(("lexicon.csv", try lexiconTable(lexicon).text))
        }
        texts.append(("divergence.json", divergenceDocument(result).serialized(pretty: true) + "\n"))
        for plot in plots { texts.append((plot.path, plot.svg)) }
        let outputs = texts.map(\.path) + ["manifest.json"]
        texts.append(("manifest.json", manifestDocument(result, outputs: outputs).serialized(pretty: true) + "\n"))
        return texts.map { (path: $0.path, data: Data($0.text.utf8)) }
    }

    /// Writes every file into `directory` as one atomic output (`AtomicOutput.writeDirectory`):
    /// built whole beside it, then put in its place, so that a reader sees the old analysis or the
    /// new one, never a mix, and no file of an earlier analysis remains. All bytes are built before
    /// anything is written; a failure leaves `directory` as it was. Missing parent directories are
    /// created (and removed again when the write fails).
    public static func write(_ result: AnalysisResult, to directory: URL) throws {
        try AtomicOutput.writeDirectory(try files(for: result), to: directory)
    }

    /// The short summary table printed to stdout (plain text, at most about 25 lines).
    public static func summary(_ result: AnalysisResult, directory: String) -> String {
        var lines: [String] = []
        let pairs = result.pairs.isEmpty ? "" : ", \(result.pairs.count) pairs"
        lines.append("irm analyze: \(result.samples.count) samples\(pairs); β = \(NumberFormat.exact(result.beta)), implicit reward = \(aggregationPhrase(result.aggregation)) (nats)")
        lines.append("reward source: \(result.rewardSource.description)")
        var fits = TextColumns(header: ["fit", "N", "R²", "adj R²", "CV R²"])
        for target in result.targets where target.name != "difference" {
            if let fit = target.ols.value {
                fits.append([target.name, "\(fit.observationCount)", shown(fit.rSquared), shown(fit.adjustedRSquared),
                             shown(fit.crossValidatedRSquared)])
            } else {
                fits.append([target.name, "\(target.values.count)", "undefined", "", ""])
            }
        }
        lines += fits.lines
        if let target = result.target("implicit_reward"), let fit = target.headlineFit {
            let sets = target.collinearity?.value?.sets.count ?? 0
            lines.append(sets > 0
                ? "top features of the implicit reward (by |std β|; parsimonious fit, one feature for each of \(sets) collinear set\(sets == 1 ? "" : "s")):"
                : "top features of the implicit reward (by |std β|):")
            var top = TextColumns(header: ["", "feature", "std β", "p (HC3)"])
            for c in sortedByStandardized(fit.coefficients).prefix(5) {
                let beta = c.standardizedEstimate ?? 0
                top.append([beta >= 0 ? "+" : "−", c.name, shown(beta), shownP(c.robustPValue ?? c.pValue)])
            }
            lines += top.lines.map { "  " + $0 }
        } else if let reason = result.target("implicit_reward")?.ols.undefinedReason {
            lines.append("implicit-reward fit undefined: \(reason)")
        }
        if let divergence = result.divergence {
            let set = divergence.implicitVersusRewardModel
            lines.append("implicit ~ reward model:")
            for (method, outcome) in [("Pearson", set.pearson), ("Spearman", set.spearman), ("Kendall τ-b", set.kendall)] {
                lines.append("  " + padded(method, 12) + correlationPhrase(outcome))
            }
            if let pairs = pairAccuracyPhrase(divergence) { lines.append(pairs) }
        } else {
            lines.append("no reward model given: divergence not computed")
        }
        let warnings = allWarnings(result).count
        if warnings > 0 { lines.append("\(warnings) warning\(warnings == 1 ? "" : "s"): see report.md") }
        lines.append("files: \(directory)/ (start with report.md; report.html, attribution.csv, samples.csv, tokens.csv, divergence.json, manifest.json, plots/)")
        return lines.joined(separator: "\n") + "\n"
    }

    private static func correlationPhrase(_ outcome: StatisticOutcome<CorrelationEstimate>) -> String {
        switch outcome {
        case .undefined(let reason): return "undefined: \(reason)"
        case .defined(let e):
            let ci = e.interval.map { "  95% CI " + interval($0.lower, $0.upper) } ?? ""
            return "\(shown(e.value))\(ci)  p \(shownP(e.pValue))"
        }
    }

    private static func pairAccuracyPhrase(_ divergence: Divergence) -> String? {
        guard let implicit = divergence.implicitPairAccuracy, let rm = divergence.rewardModelPairAccuracy else { return nil }
        func text(_ outcome: StatisticOutcome<PairAccuracy>) -> String {
            outcome.value.map { shown($0.accuracy) } ?? "undefined"
        }
        let agreement = divergence.pairAgreement?.value.map { shown($0.agreement) } ?? "undefined"
        let total = implicit.value?.total ?? rm.value?.total ?? 0
        return "pair accuracy (\(total) pairs, ties wrong): implicit \(text(implicit)), reward model \(text(rm)); agreement \(agreement)"
    }
}

// MARK: - Number and text formatting shared by the writers

extension AnalysisReport {
    static let reportTitle = "What the fine-tuning rewarded: implicit-reward analysis"

    /// Full round-trip precision for CSV cells; empty for a missing value (and for NaN, which no
    /// statistic should produce, so that a file never says "nan").
    static func csvNumber(_ value: Double?) -> String {
        guard let value, !value.isNaN else { return "" }
        return NumberFormat.exact(value)
    }

    static func csvNumber(_ value: Int?) -> String { value.map(String.init) ?? "" }

    /// Three significant digits for people; "—" when absent.
    static func shown(_ value: Double?, digits: Int = 3) -> String {
        guard let value else { return "—" }
        if value.isNaN { return "undefined" }
        return NumberFormat.significant(value, digits: digits)
    }

    /// A p-value as statsmodels shows it; "—" when absent.
    static func shownP(_ p: Double?) -> String {
        guard let p else { return "—" }
        if p.isNaN { return "undefined" }
        return NumberFormat.pValue(p)
    }

    /// "[low, high]" with three significant digits.
    static func interval(_ low: Double, _ high: Double) -> String { "[\(shown(low)), \(shown(high))]" }

    /// A share as a percentage with one decimal.
    static func percent(_ share: Double?) -> String {
        guard let share, share.isFinite else { return "—" }
        return NumberFormat.fixed(100 * share, decimals: 1) + "%"
    }

    /// A signed value with an explicit "+" for positive numbers (for prose).
    static func signed(_ value: Double) -> String {
        value > 0 ? "+" + shown(value) : shown(value)
    }

    static func aggregationPhrase(_ aggregation: ImplicitReward.Aggregation) -> String {
        switch aggregation {
        case .sum: "sum over response tokens"
        case .mean: "mean per response token"
        }
    }

    /// Coefficients by decreasing |standardised estimate|, ties by name, so that orderings are
    /// deterministic.
    static func sortedByStandardized(_ coefficients: [LeastSquaresFit.Coefficient]) -> [LeastSquaresFit.Coefficient] {
        coefficients.sorted {
            let a = abs($0.standardizedEstimate ?? 0), b = abs($1.standardizedEstimate ?? 0)
            return a != b ? a > b : $0.name < $1.name
        }
    }

    /// A token's text with whitespace made visible: space ␣, line break ⏎, tab ⇥, carriage return ␍.
    static func visibleToken(_ text: String) -> String {
        guard !text.isEmpty else { return "(empty)" }
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case " ": out += "␣"
            case "\n": out += "⏎"
            case "\t": out += "⇥"
            case "\r": out += "␍"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// At most `limit` characters of `text` on one line: line breaks become ⏎, and a cut is marked
    /// with "…".
    static func excerpt(_ text: String, limit: Int = 120) -> String {
        let oneLine = text.replacingOccurrences(of: "\r\n", with: "⏎")
            .replacingOccurrences(of: "\n", with: "⏎")
            .replacingOccurrences(of: "\r", with: "⏎")
        guard oneLine.count > limit else { return oneLine }
        return String(oneLine.prefix(max(limit - 1, 0))) + "…"
    }

    /// Mean, median and maximum of `values`; nil for none.
    static func meanMedianMax(_ values: [Double]) -> (mean: Double, median: Double, max: Double)? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let middle = sorted.count / 2
        let median = sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
        return (values.reduce(0, +) / Double(values.count), median, sorted[sorted.count - 1])
    }

    static func padded(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }
}

/// A plain-text table with columns padded to their widest cell (for the stdout summary).
struct TextColumns {
    let header: [String]
    private(set) var rows: [[String]] = []

    init(header: [String]) { self.header = header }

    mutating func append(_ row: [String]) { rows.append(row) }

    var lines: [String] {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
        return all.map { row in
            header.indices.map { column in
                AnalysisReport.padded(column < row.count ? row[column] : "", widths[column] + 1)
            }.joined()
        }.map { line in String(line.reversed().drop { $0 == " " }.reversed()) }
    }
}

// MARK: - The plain-language summary of report.md

extension AnalysisReport {
    /// One paragraph generated from the numbers: what the fine-tuning rewarded, how far it agrees
    /// with the training reward, what it learned beyond it and what it learned less (difference fit,
    /// p < 0.05 HC3), length's share, and, with gold scores, whether the implicit reward tracks gold.
    static func plainLanguageSummary(_ result: AnalysisResult) -> String {
        var sentences = [rewardedSentence(result)]
        if let divergence = result.divergence {
            sentences.append(agreementSentence(divergence))
            sentences.append(beyondSentence(divergence.differenceFit))
        } else {
            sentences.append(result.rewardSource == .none
                ? "No reward model was given, so the report cannot say what the fine-tuning learned beyond it."
                : "The divergence from the training reward was not computed.")
        }
        if let length = lengthSentence(result) { sentences.append(length) }
        if let gold = goldSentence(result.divergence) { sentences.append(gold) }
        return sentences.joined(separator: " ")
    }

    private static func listed(_ items: [String]) -> String {
        switch items.count {
        case 0: ""
        case 1: items[0]
        default: items.dropLast().joined(separator: ", ") + " and " + (items.last ?? "")
        }
    }

    private static func rewardedSentence(_ result: AnalysisResult) -> String {
        guard let target = result.target("implicit_reward") else { return "The implicit reward was not fitted." }
        guard let fit = target.headlineFit else {
            return "The features could not explain the implicit reward: \(target.ols.undefinedReason ?? "")."
        }
        let explained = "together the features explain R² = \(shown(fit.rSquared)) of its variance"
            + (fit.crossValidatedRSquared.map { " (cross-validated \(shown($0)))" } ?? "")
        let significant = sortedByStandardized(fit.coefficients).filter { significanceP($0) < 0.05 }
        guard !significant.isEmpty else {
            return "No feature is associated with the implicit reward at p < 0.05 (HC3); \(explained)."
        }
        func phrase(_ c: LeastSquaresFit.Coefficient) -> String { "\(c.name) (std β \(signed(c.standardizedEstimate ?? 0)))" }
        let up = significant.filter { $0.estimate > 0 }.prefix(3).map(phrase)
        let down = significant.filter { $0.estimate < 0 }.prefix(3).map(phrase)
        var parts: [String] = []
        if !up.isEmpty { parts.append("rises with \(listed(up))") }
        if !down.isEmpty { parts.append("falls with \(listed(down))") }
        return "The fine-tuning rewarded what the implicit reward tracks: it \(parts.joined(separator: " and ")) (p < 0.05, HC3); \(explained)."
    }

    private static func agreementSentence(_ divergence: Divergence) -> String {
        let set = divergence.implicitVersusRewardModel
        var sentence: String
        switch (set.pearson, set.kendall) {
        case (.defined(let pearson), .defined(let kendall)):
            let ci = pearson.interval.map { " (95% CI \(interval($0.lower, $0.upper)))" } ?? ""
            sentence = "It agrees with the training reward to a Pearson correlation of \(shown(pearson.value))\(ci) and a Kendall τ-b of \(shown(kendall.value))"
        case (.undefined(let reason), _), (_, .undefined(let reason)):
            sentence = "Its correlation with the training reward is undefined (\(reason))"
        }
        if case .defined(let agreement)? = divergence.pairAgreement {
            sentence += "; on \(agreement.total) preference pairs the two order \(percent(agreement.agreement)) of the pairs the same way"
            if case .defined(let implicit)? = divergence.implicitPairAccuracy, case .defined(let rm)? = divergence.rewardModelPairAccuracy {
                sentence += " (strict accuracy: implicit reward \(percent(implicit.accuracy)), reward model \(percent(rm.accuracy)))"
            }
        }
        return sentence + "."
    }

    private static func beyondSentence(_ differenceFit: StatisticOutcome<LeastSquaresFit>) -> String {
        guard case .defined(let fit) = differenceFit else {
            return "What the policy learned beyond the reward model cannot be estimated: \(differenceFit.undefinedReason ?? "")."
        }
        let (beyond, less) = significantDifferences(fit)
        guard !beyond.isEmpty || !less.isEmpty else {
            return "The regression of z(implicit) − z(RM) on the features finds no significant difference between what the policy learned and what the reward model asked for (p < 0.05, HC3)."
        }
        var parts: [String] = []
        if !beyond.isEmpty { parts.append("beyond the reward model, the policy learned more \(listed(beyond.prefix(4).map(\.name)))") }
        if !less.isEmpty { parts.append("the reward model asked for more \(listed(less.prefix(4).map(\.name))) than the policy learned") }
        return capitalised(parts.joined(separator: ", while ")) + " (difference fit, p < 0.05, HC3)."
    }

    /// The LMG share of the length features in the implicit reward's R², η² of the length buckets,
    /// and the length-controlled gain, as far as they exist.
    private static func lengthSentence(_ result: AnalysisResult) -> String? {
        var parts: [String] = []
        if let target = result.target("implicit_reward"), let attribution = target.lmg?.value, attribution.rSquared > 0 {
            let lengthNames = Set(zip(result.features.names, result.features.groups).filter { $0.1 == .length }.map(\.0))
            let lengthShare = attribution.shares
                .filter { target.lmgByGroup ? $0.name == FeatureGroup.length.rawValue : lengthNames.contains($0.name) }
                .reduce(0) { $0 + $1.share }
            if !lengthNames.isEmpty {
                parts.append("length features hold \(percent(lengthShare / attribution.rSquared)) of the implicit reward's explained variance (LMG share \(shown(lengthShare)) of R² = \(shown(attribution.rSquared)))")
            }
        }
        if let control = result.divergence?.lengthControl {
            parts.append("\(percent(control.implicitVarianceExplainedByLength)) of its variance lies between \(Divergence.LengthControl.bucketWidth)-token length buckets (reward model: \(percent(control.rewardModelVarianceExplainedByLength)))")
        }
        if let gain = result.lengthNormalizedGain.first(where: { $0.score == "implicit_reward" }), let ratio = gain.ratio {
            parts.append("the length-controlled gain of the after-policy's responses is \(shown(ratio)) times the raw gain")
        }
        guard !parts.isEmpty else { return nil }
        return "On length: " + parts.joined(separator: "; ") + "."
    }

    private static func goldSentence(_ divergence: Divergence?) -> String? {
        guard let implicit = divergence?.implicitVersusGold else { return nil }
        guard case .defined(let ig) = implicit.pearson else {
            return "The implicit reward's correlation with gold is undefined (\(implicit.pearson.undefinedReason ?? ""))."
        }
        var sentence = "Against the gold scores the implicit reward correlates at Pearson r = \(shown(ig.value))"
        if case .defined(let rg)? = divergence?.rewardModelVersusGold.map(\.pearson) {
            let comparison = ig.value > rg.value ? "more closely than" : ig.value < rg.value ? "less closely than" : "as closely as"
            sentence += " (reward model: \(shown(rg.value))), so it tracks gold \(comparison) the reward model does"
        }
        return sentence + "."
    }
}
