import Foundation
import XCTest
@testable import IRMKit

/// The report writers on a synthetic but fully computed `AnalysisResult`: 30 prompts with a chosen
/// and a rejected response each, per-token log-probs that favour a few sentiment words, real fits
/// (OLS, LMG, ridge, VB, grouped), a real `Divergence`, token reconstruction, lexicon recovery and
/// the length-normalised gain.
final class AnalysisReportTests: XCTestCase {
    // MARK: The synthetic analysis

    /// Words of the synthetic responses; token id = index, text = " word". "\n" is one more token.
    static let words = ["good", "great", "happy", "bad", "terrible", "sad", "the", "a", "answer", "model", "river",
                        "stone", "light", "quick", "plain", "simple", "clear", "yes", "maybe", "blue"]
    static let newlineID = Int32(words.count)
    /// β·(log π_after − log π_before) pushed per word: fine-tuning favours the positive words.
    static let wordEffect: [String: Double] = ["good": 5, "great": 4, "happy": 3, "bad": -4, "terrible": -5, "sad": -2]

    struct Options {
        var constantRewardModel = false
        var rewardSource: AnalysisResult.RewardSource = .field(name: "reward")
        var topDisagreements = 5
        var aggregation: ImplicitReward.Aggregation = .sum
        /// Replaces the first sample's response (its tokens stay those of the generated text).
        var firstResponse: String? = nil
        /// Replaces the first sample's id.
        var firstID: String? = nil
        /// Adds a numeric-field feature of this name (as a features file's `numeric_fields`).
        var numericFeature: String? = nil
    }

    static func tokenText(_ id: Int32) -> String {
        id == newlineID ? "\n" : (words.indices.contains(Int(id)) ? " " + words[Int(id)] : "?")
    }

    static func makeResult(_ options: Options = Options()) throws -> AnalysisResult {
        var rng = SeededRandom(seed: 11)
        func normal() -> Double {
            let u = max(rng.unitInterval(), 1e-300), v = rng.unitInterval()
            return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
        }
        let beta = 0.1
        var rows: [AnalysisResult.SampleRow] = []
        var tokenIDs: [[Int32]] = []
        var pairs: [Divergence.Pair] = []
        for prompt in 0..<30 {
            let promptWords = (0..<(3 + rng.index(below: 5))).map { _ in words[6 + rng.index(below: words.count - 6)] }
            let promptText = promptWords.joined(separator: " ") + "?"
            for role in [Sample.Role.chosen, .rejected] {
                let index = rows.count
                let length = index == 5 ? 0 : 2 + rng.index(below: 45)
                let ids: [Int32] = (0..<length).map { _ in rng.index(below: 12) == 0 ? newlineID : Int32(rng.index(below: words.count)) }
                var after: [Double?] = [], before: [Double?] = []
                for id in ids {
                    let base = -2 - 2 * rng.unitInterval()
                    let effect = id == newlineID ? 0 : wordEffect[words[Int(id)]] ?? 0
                    before.append(base)
                    after.append(base + effect + 0.5 * normal())
                }
                let implicit = try ImplicitReward(after: after, before: before, beta: beta)
                var response = ids.map(tokenText).joined()
                if response.hasPrefix(" ") { response.removeFirst() }
                if index == 0, let replacement = options.firstResponse { response = replacement }
                let sentiment = ids.reduce(0.0) { sum, id in
                    id == newlineID ? sum : sum + (VaderLexicon.shared.valence(of: words[Int(id)]) ?? 0)
                }
                let rewardModel = options.constantRewardModel ? 1.0 : 0.3 * sentiment + 0.05 * Double(length) + 0.5 * normal()
                rows.append(AnalysisResult.SampleRow(
                    id: index == 0 ? options.firstID ?? "q\(prompt)-\(role.rawValue)" : "q\(prompt)-\(role.rawValue)", role: role, line: prompt + 1, prompt: promptText, response: response,
                    promptTokens: promptWords.count + 1, responseTokens: length, implicitReward: implicit,
                    logProbAfter: after.reduce(0) { $0 + ($1 ?? 0) }, logProbBefore: before.reduce(0) { $0 + ($1 ?? 0) },
                    kl: 0.02 * Double(length) * rng.unitInterval(), rewardModel: options.rewardSource == .none ? nil : rewardModel,
                    gold: options.rewardSource == .none ? nil : rewardModel + 0.8 * normal() + 0.1 * sentiment,
                    group: prompt % 2 == 0 ? "open" : "closed", generator: role == .chosen ? "after" : "before"))
                tokenIDs.append(ids)
            }
            pairs.append(Divergence.Pair(chosen: rows.count - 2, rejected: rows.count - 1))
        }

        let inputs = rows.enumerated().map { index, row in
            FeatureInput(prompt: row.prompt, response: row.response, responseTokenCount: row.responseTokens,
                         numericFields: options.numericFeature.map { [$0: Double((index * 7) % 11) - 5] } ?? [:])
        }
        let specification = FeatureSpecification(builtIns: .only(options.numericFeature == nil ? ["length", "sentiment", "format"] : ["length", "sentiment"]),
                                                 numericFields: options.numericFeature.map { [$0] } ?? [])
        let features = try FeatureExtractor(fittingOn: inputs, specification: specification).extract(inputs)
        let matrix = features.matrix
        var members: [String: [String]] = [:]
        for (name, group) in zip(features.names, features.groups) { members[group.rawValue, default: []].append(name) }
        let groups = members.sorted { $0.key < $1.key }.map { (name: $0.key, members: $0.value) }

        let implicit = rows.map { $0.implicitReward.value(options.aggregation) }
        func target(_ name: String, _ description: String, _ values: [Double], byGroup: Bool, extras: Bool) throws
            -> AnalysisResult.TargetAnalysis {
            let ols = try LeastSquaresFit.fit(matrix, target: values)
            let lmg = try ShapleyAttribution.decompose(matrix, target: values, groups: byGroup ? groups : [],
                                                       bootstrapReplicates: byGroup ? 20 : 0, seed: 1)
            return AnalysisResult.TargetAnalysis(
                name: name, description: description, values: values, ols: ols, lmg: lmg, lmgByGroup: byGroup,
                ridge: try RidgeFit.fit(matrix, target: values),
                variationalBayes: extras ? try VariationalBayesRegression.fit(matrix, target: values) : nil,
                grouped: extras ? try GroupedFit.fit(matrix, target: values, groupLabels: rows.map { $0.group ?? "" }) : nil)
        }
        var targets = [try target("implicit_reward", "implicit reward (\(options.aggregation.rawValue), β = 0.1)", implicit, byGroup: true, extras: true)]
        var divergence: Divergence? = nil
        if options.rewardSource != .none {
            let rewardModel = rows.compactMap(\.rewardModel), gold = rows.compactMap(\.gold)
            targets.append(try target("reward_model", "reward model (data field \"reward\")", rewardModel, byGroup: false, extras: false))
            if let zi = ColumnMoments.zScores(implicit), let zr = ColumnMoments.zScores(rewardModel) {
                targets.append(try target("difference", "z(implicit) − z(RM)", zip(zi, zr).map { $0 - $1 }, byGroup: true, extras: false))
            }
            targets.append(try target("gold", "gold score", gold, byGroup: true, extras: false))
            divergence = try Divergence(Divergence.Inputs(
                implicitReward: implicit, rewardModel: rewardModel, gold: gold, pairs: pairs, features: matrix,
                responseTokens: rows.map(\.responseTokens), bootstrapReplicates: 30, seed: 2, topK: options.topDisagreements))
        }
        let reconstruction = try TokenReconstruction(
            responses: zip(tokenIDs, rows).map { (ids: $0, rewards: $1.implicitReward.perToken) }, decode: tokenText)
        let lexicon = try LexiconRecovery(effects: reconstruction.effects, lexicon: { VaderLexicon.shared.valence(of: $0) })
        let isAfter = rows.map { $0.generator.map { $0 == "after" } }
        var gains = [try LengthNormalizedGain(score: "implicit_reward", scores: implicit, tokens: rows.map(\.responseTokens), isAfter: isAfter)]
        if !options.constantRewardModel, options.rewardSource != .none {
            gains.append(try LengthNormalizedGain(score: "reward_model", scores: rows.compactMap(\.rewardModel),
                                                  tokens: rows.map(\.responseTokens), isAfter: isAfter))
        }
        return AnalysisResult(
            options: [("aggregation", "sum"), ("beta", "0.1"), ("bootstrap", "20"), ("group_by", "qtype"), ("seed", "0")],
            toolVersion: IRMVersion.string,
            inputs: [
                .init(role: "before", path: "checkpoints/before.h5", sha256: String(repeating: "0123456789abcdef", count: 4), summary: "gpt2, 2 layers"),
                .init(role: "after", path: "checkpoints/after.h5", sha256: String(repeating: "fedcba9876543210", count: 4), summary: "gpt2, 2 layers"),
                .init(role: "data", path: "data/pairs.jsonl", sha256: String(repeating: "a1", count: 32), summary: "30 lines, 60 samples"),
            ],
            beta: beta, aggregation: options.aggregation, rewardSource: options.rewardSource, groupField: "qtype", samples: rows, pairs: pairs,
            features: features, targets: targets, divergence: divergence, tokenReconstruction: reconstruction,
            lexiconRecovery: lexicon, lengthNormalizedGain: gains, warnings: ["1 empty response: kept with 0 tokens and flagged"])
    }

    // MARK: Helpers

    /// RFC 4180 fields, as CSVTable writes them (quoted fields may hold commas, quotes, newlines).
    static func parseCSV(_ text: String) -> [[String]] {
        var rows: [[String]] = [], row: [String] = [], field = ""
        var quoted = false, afterQuote = false
        for character in text {
            if quoted {
                if character == "\"" { quoted = false; afterQuote = true } else { field.append(character) }
                continue
            }
            switch character {
            case "\"":
                if afterQuote { field.append("\"") }
                quoted = true
            case ",": row.append(field); field = ""
            case "\n": row.append(field); rows.append(row); row = []; field = ""
            default: field.append(character)
            }
            afterQuote = false
        }
        return rows
    }

    static func text(_ files: [(path: String, data: Data)], _ path: String) throws -> String {
        let file = try XCTUnwrap(files.first { $0.path == path }, "no \(path) among \(files.map(\.path))")
        return try XCTUnwrap(String(data: file.data, encoding: .utf8))
    }

    /// The rows of a CSV as dictionaries keyed by the header.
    static func records(_ csv: String) -> (header: [String], rows: [[String: String]]) {
        let table = parseCSV(csv)
        guard let header = table.first else { return ([], []) }
        return (header, table.dropFirst().map { Dictionary(zip(header, $0), uniquingKeysWith: { first, _ in first }) })
    }

    static func number(_ cell: String?) -> Double? { cell.flatMap(Double.init) }

    // MARK: Tests

    func testFileListNamesEveryOutputAndTheManifestListsThem() throws {
        let files = try AnalysisReport.files(for: try Self.makeResult())
        XCTAssertEqual(files.map(\.path), [
            "report.md", "report.html", "attribution.csv", "samples.csv", "tokens.csv", "lexicon.csv", "divergence.json",
            "plots/implicit_vs_reward_model.svg", "plots/attribution.svg", "plots/coefficient_gaps.svg", "plots/lmg.svg",
            "plots/length.svg", "manifest.json",
        ])
        let manifest = try JSONValue.parse(try Self.text(files, "manifest.json"), source: "manifest.json")
        XCTAssertEqual(manifest["outputs"]?.arrayValue?.compactMap(\.stringValue), files.map(\.path))
        let html = try Self.text(files, "report.html")
        XCTAssertEqual(html.components(separatedBy: "<svg ").count - 1, 5, "each plot is embedded inline once")
        let markdown = try Self.text(files, "report.md")
        XCTAssertTrue(markdown.contains("![") && markdown.contains("(plots/attribution.svg)"), "report.md links the figures")
    }

    func testAttributionCSVHoldsTheFitsNumbersExactly() throws {
        let result = try Self.makeResult()
        let files = try AnalysisReport.files(for: result)
        let (header, rows) = Self.records(try Self.text(files, "attribution.csv"))
        XCTAssertEqual(header, ["target", "feature", "group", "coef", "std_err", "hc3_std_err", "t", "p_value", "hc3_p_value",
                                "ci_low", "ci_high", "std_coef", "lmg_share", "lmg_ci_low", "lmg_ci_high", "group_lmg_share",
                                "ridge_coef", "ridge_std_coef", "vif", "collinear_set", "note"])
        XCTAssertEqual(rows.count, result.targets.count * (1 + result.features.names.count))
        XCTAssertEqual(rows.map { $0["target"] ?? "" }.filter { $0 == "implicit_reward" }.count, 1 + result.features.names.count)

        let implicit = try XCTUnwrap(result.target("implicit_reward"))
        let fit = try XCTUnwrap(implicit.ols.value)
        let implicitRows = rows.filter { $0["target"] == "implicit_reward" }
        XCTAssertEqual(implicitRows.first?["feature"], "(intercept)")
        XCTAssertEqual(Array(implicitRows.dropFirst().map { $0["feature"] ?? "" }), result.features.names)
        let byFeature = Dictionary(implicitRows.map { ($0["feature"] ?? "", $0) }, uniquingKeysWith: { first, _ in first })
        for c in [fit.intercept] + fit.coefficients {
            let row = try XCTUnwrap(byFeature[c.name == "const" ? "(intercept)" : c.name], c.name)
            let columns = ["coef", "std_err", "t", "p_value", "ci_low", "ci_high"]
            let expected = [c.estimate, c.standardError, c.tStatistic, c.pValue, c.confidenceLower, c.confidenceUpper]
            assertClose(columns.map { Self.number(row[$0]) ?? .nan }, expected, relative: 0, "round trip of \(c.name)")
            assertClose(Self.number(row["hc3_std_err"]) ?? .nan, c.robustStandardError ?? .nan, relative: 0)
            assertClose(Self.number(row["hc3_p_value"]) ?? .nan, c.robustPValue ?? .nan, relative: 0)
            if let standardized = c.standardizedEstimate {
                assertClose(Self.number(row["std_coef"]) ?? .nan, standardized, relative: 0)
            } else {
                XCTAssertEqual(row["std_coef"], "", "the intercept has no standardised coefficient")
            }
        }
        // LMG by group: lmg_share is empty and group_lmg_share is the group player's share.
        let shares = try XCTUnwrap(implicit.lmg?.value?.shares)
        let lengthShare = try XCTUnwrap(shares.first { $0.name == "length" })
        let tokensRow = try XCTUnwrap(byFeature["response_tokens"])
        XCTAssertEqual(tokensRow["lmg_share"], "")
        assertClose(Self.number(tokensRow["group_lmg_share"]) ?? .nan, lengthShare.share, relative: 0)
        XCTAssertEqual(tokensRow["group"], "length")
        // Features the fit left out keep their row, with empty numbers and the reason.
        XCTAssertFalse(fit.aliasedFeatures.isEmpty, "length_incentive = words/100 is aliased with response_words")
        XCTAssertFalse(fit.droppedConstantFeatures.isEmpty, "some format features are constant")
        for name in fit.aliasedFeatures { XCTAssertEqual(byFeature[name]?["note"], "aliased"); XCTAssertEqual(byFeature[name]?["coef"], "") }
        for name in fit.droppedConstantFeatures { XCTAssertEqual(byFeature[name]?["note"], "dropped: constant") }

        // Per-feature LMG (reward model): lmg_share is the feature's, group_lmg_share the sum over its group.
        let rm = try XCTUnwrap(result.target("reward_model")?.lmg?.value)
        let rmRows = rows.filter { $0["target"] == "reward_model" }
        let vader = try XCTUnwrap(rmRows.first { $0["feature"] == "vader_sum" })
        assertClose(Self.number(vader["lmg_share"]) ?? .nan, try XCTUnwrap(rm.shares.first { $0.name == "vader_sum" }).share, relative: 0)
        let sentimentNames = Set(zip(result.features.names, result.features.groups).filter { $0.1 == .sentiment }.map(\.0))
        let sentimentTotal = rm.shares.filter { sentimentNames.contains($0.name) }.reduce(0) { $0 + $1.share }
        assertClose(Self.number(vader["group_lmg_share"]) ?? .nan, sentimentTotal, relative: 1e-15)
        // Ridge columns.
        let ridge = try XCTUnwrap(implicit.ridge.value)
        let ridgeVader = try XCTUnwrap(ridge.coefficients.first { $0.name == "vader_sum" })
        assertClose(Self.number(byFeature["vader_sum"]?["ridge_std_coef"]) ?? .nan, ridgeVader.standardizedEstimate, relative: 0)
    }

    func testSamplesCSVHasOneRowPerSampleWithTheFeatureColumns() throws {
        let result = try Self.makeResult()
        let (header, rows) = Self.records(try Self.text(try AnalysisReport.files(for: result), "samples.csv"))
        XCTAssertEqual(rows.count, result.samples.count)
        XCTAssertEqual(Array(header.prefix(16)), AnalysisReport.sampleColumns)
        XCTAssertTrue(header.contains("feature:response_tokens"), "the built-in response_tokens must not repeat the fixed column")
        XCTAssertEqual(Set(header).count, header.count)
        let third = rows[3]
        XCTAssertEqual(third["id"], result.samples[3].id)
        assertClose(Self.number(third["implicit_reward_sum"]) ?? .nan, result.samples[3].implicitReward.sum, relative: 0)
        assertClose(Self.number(third["vader_sum"]) ?? .nan, try XCTUnwrap(result.features.column(named: "vader_sum"))[3], relative: 0)
        let empty = rows[5]
        XCTAssertEqual(empty["empty_response"], "1")
        XCTAssertEqual(empty["implicit_reward_mean"], "", "an empty response has no mean")
        XCTAssertEqual(empty["implicit_reward"], "0")
        XCTAssertEqual(rows.filter { $0["empty_response"] == "1" }.count, 1)
    }

    func testTokensCSVIsSortedByCoefficient() throws {
        let result = try Self.makeResult()
        let files = try AnalysisReport.files(for: result)
        let (header, rows) = Self.records(try Self.text(files, "tokens.csv"))
        XCTAssertEqual(header, ["token_id", "token", "count", "mean_reward", "coefficient"])
        XCTAssertEqual(rows.count, result.tokenReconstruction.effects.count)
        let coefficients = rows.compactMap { Self.number($0["coefficient"]) }
        XCTAssertEqual(coefficients, coefficients.sorted(by: >))
        XCTAssertEqual(rows.first?["token"], " good", "the word fine-tuning pushed up most")
        XCTAssertTrue(rows.contains { $0["token"] == "\n" }, "a newline token survives CSV quoting")
        let lexicon = Self.records(try Self.text(files, "lexicon.csv"))
        XCTAssertEqual(lexicon.header, ["word", "lexicon_value", "reconstructed", "rescaled"])
        XCTAssertEqual(lexicon.rows.count, result.lexiconRecovery?.matches.count)
    }

    func testDivergenceJSONHoldsTheMetrics() throws {
        let result = try Self.makeResult()
        let json = try JSONValue.parse(try Self.text(try AnalysisReport.files(for: result), "divergence.json"), source: "divergence.json")
        let divergence = try XCTUnwrap(result.divergence)
        let pearson = try XCTUnwrap(divergence.implicitVersusRewardModel.pearson.value)
        let stored = json["divergence"]?["correlations"]?["implicit_vs_reward_model"]?["pearson"]
        XCTAssertEqual(stored?["value"]?.doubleValue, pearson.value)
        XCTAssertEqual(stored?["ci"]?["low"]?.doubleValue, pearson.interval?.lower)
        XCTAssertEqual(json["meta"]?["samples"]?.intValue, 60)
        XCTAssertEqual(json["meta"]?["pairs"]?.intValue, 30)
        XCTAssertEqual(json["meta"]?["beta"]?.doubleValue, 0.1)
        XCTAssertEqual(json["empty_responses"]?.intValue, 1)
        let targets = try XCTUnwrap(json["targets"]?.arrayValue)
        XCTAssertEqual(targets.compactMap { $0["name"]?.stringValue }, result.targets.map(\.name))
        let fit = try XCTUnwrap(result.target("implicit_reward")?.ols.value)
        XCTAssertEqual(targets.first?["ols"]?["r2"]?.doubleValue, fit.rSquared)
        XCTAssertEqual(targets.first?["ols"]?["aliased"]?.arrayValue?.compactMap(\.stringValue), fit.aliasedFeatures)
        XCTAssertEqual(targets.first?["grouped"]?["chow_f"]?.doubleValue, result.targets.first?.grouped?.value?.chowF)
        XCTAssertNotNil(targets.first?["variational_bayes"]?["coefficients"]?.arrayValue)
        XCTAssertEqual(json["token_reconstruction"]?["pushed_up"]?.arrayValue?.count,
                       min(20, result.tokenReconstruction.effects.count))
        XCTAssertEqual(json["length_normalized_gain"]?.arrayValue?.first?["raw_gain"]?.doubleValue,
                       result.lengthNormalizedGain.first?.rawGain)
        let top = try XCTUnwrap(json["divergence"]?["top_disagreements"]?.arrayValue?.first)
        XCTAssertEqual(top["id"]?.stringValue, result.samples[divergence.topDisagreements[0].index].id)
        let kl = result.samples.map(\.kl)
        XCTAssertEqual(json["kl"]?["max"]?.doubleValue, kl.max())
    }

    func testManifestRecordsInputsWithoutTimestamps() throws {
        let result = try Self.makeResult()
        let manifest = try JSONValue.parse(try Self.text(try AnalysisReport.files(for: result), "manifest.json"), source: "manifest.json")
        XCTAssertEqual(Set(manifest.objectValue?.keys.map { $0 } ?? []), ["tool", "version", "options", "inputs", "outputs", "blas"])
        XCTAssertEqual(manifest["blas"]?["kernel"]?.stringValue, BLASRuntime.corename)
        XCTAssertNotNil(manifest["blas"]?["threads"])
        XCTAssertEqual(manifest["tool"]?.stringValue, "irm")
        XCTAssertEqual(manifest["version"]?.stringValue, IRMVersion.string)
        XCTAssertEqual(manifest["options"]?["beta"]?.stringValue, "0.1")
        let inputs = try XCTUnwrap(manifest["inputs"]?.arrayValue)
        XCTAssertEqual(inputs.compactMap { $0["sha256"]?.stringValue }, result.inputs.map(\.sha256))
        XCTAssertEqual(inputs.compactMap { $0["path"]?.stringValue }, ["checkpoints/before.h5", "checkpoints/after.h5", "data/pairs.jsonl"])
        let text = manifest.serialized()
        for word in ["time", "date", "duration", "elapsed"] {
            XCTAssertFalse(text.lowercased().contains(word), "the manifest must not record \(word)s")
        }
    }

    func testOutputsAreDeterministic() throws {
        let first = try AnalysisReport.files(for: try Self.makeResult())
        let second = try AnalysisReport.files(for: try Self.makeResult())
        XCTAssertEqual(first.map(\.path), second.map(\.path))
        for (a, b) in zip(first, second) { XCTAssertEqual(a.data, b.data, "\(a.path) differs between two runs") }
    }

    func testUndefinedTargetPrintsItsReasonAndNoNaN() throws {
        let result = try Self.makeResult(Options(constantRewardModel: true))
        let reason = try XCTUnwrap(result.target("reward_model")?.ols.undefinedReason)
        let files = try AnalysisReport.files(for: result)
        XCTAssertNil(files.first { $0.path == "plots/implicit_vs_reward_model.svg" }, "no scatter against a constant reward")
        XCTAssertNil(files.first { $0.path == "plots/length.svg" })
        let (_, rows) = Self.records(try Self.text(files, "attribution.csv"))
        let rmRows = rows.filter { $0["target"] == "reward_model" }
        XCTAssertEqual(rmRows.count, 1 + result.features.names.count)
        for row in rmRows {
            XCTAssertEqual(row["coef"], "")
            XCTAssertEqual(row["p_value"], "")
            XCTAssertTrue(row["note"]?.hasPrefix(reason) == true, "note: \(row["note"] ?? "")")
        }
        let markdown = try Self.text(files, "report.md")
        XCTAssertTrue(markdown.contains(reason), "report.md gives the reason the fit is undefined")
        let json = try JSONValue.parse(try Self.text(files, "divergence.json"), source: "divergence.json")
        XCTAssertEqual(json["targets"]?.arrayValue?[1]["ols"]?["undefined"]?.stringValue, reason)
        XCTAssertNotNil(json["divergence"]?["correlations"]?["implicit_vs_reward_model"]?["pearson"]?["undefined"]?.stringValue)

        let nan = try NSRegularExpression(pattern: "\\bnan\\b", options: [.caseInsensitive])
        for file in files {
            let text = String(decoding: file.data, as: UTF8.self)
            let matches = nan.numberOfMatches(in: text, range: NSRange(text.startIndex..., in: text))
            XCTAssertEqual(matches, 0, "\(file.path) says nan")
        }
    }

    func testWithoutRewardModelTheDivergenceSectionsSaySo() throws {
        let result = try Self.makeResult(Options(rewardSource: .none))
        let files = try AnalysisReport.files(for: result)
        XCTAssertEqual(files.filter { $0.path.hasPrefix("plots/") }.map(\.path), ["plots/attribution.svg", "plots/lmg.svg"])
        let markdown = try Self.text(files, "report.md")
        XCTAssertTrue(markdown.contains(AnalysisReport.noRewardModelSentence))
        XCTAssertTrue(markdown.contains("No reward model was given, so the report cannot say"))
        let json = try JSONValue.parse(try Self.text(files, "divergence.json"), source: "divergence.json")
        XCTAssertNotNil(json["divergence"]?["undefined"]?.stringValue)
        let summary = AnalysisReport.summary(result, directory: "analyses/demo")
        XCTAssertTrue(summary.contains("no reward model given"), summary)
    }

    func testMeanAggregationStatesItsFormulaAndUnits() throws {
        let result = try Self.makeResult(Options(aggregation: .mean))
        let files = try AnalysisReport.files(for: result)
        let markdown = try Self.text(files, "report.md")
        XCTAssertTrue(markdown.contains("r(x,y) = (β/T)·Σ_t [log π_after(y_t|x,y_<t) − log π_before(y_t|x,y_<t)]"))
        XCTAssertTrue(markdown.contains("nats per token"))
        let (_, rows) = Self.records(try Self.text(files, "samples.csv"))
        assertClose(Self.number(rows[3]["implicit_reward"]) ?? .nan, try XCTUnwrap(result.samples[3].implicitReward.mean), relative: 0)
        XCTAssertTrue(AnalysisReport.summary(result, directory: "out").contains("mean per response token"))
    }

    func testMarkdownEscapesExcerpts() throws {
        let result = try Self.makeResult(Options(topDisagreements: 60, firstResponse: "left | right\nnext <!-- line"))
        let markdown = try Self.text(try AnalysisReport.files(for: result), "report.md")
        XCTAssertTrue(markdown.contains("| left \\| right⏎next &lt;!-- line |"), "excerpt cell not escaped as expected")
        XCTAssertFalse(markdown.contains("right\nnext"))
        let section = try XCTUnwrap(markdown.range(of: "## Top disagreements"))
        let tableLines = markdown[section.upperBound...].split(separator: "\n").filter { $0.hasPrefix("|") }
        XCTAssertEqual(tableLines.count, 2 + 60, "header, rule and one line per sample")
        for line in tableLines.dropFirst(2) {
            let unescapedPipes = line.replacingOccurrences(of: "\\|", with: "").filter { $0 == "|" }.count
            XCTAssertEqual(unescapedPipes, 9, "8 cells: \(line)")
        }
    }

    func testSummaryIsShortAndNamesTheDirectory() throws {
        let result = try Self.makeResult()
        let summary = AnalysisReport.summary(result, directory: "analyses/demo")
        let lines = summary.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        XCTAssertLessThanOrEqual(lines.count, 25, summary)
        XCTAssertTrue(summary.contains("analyses/demo"))
        XCTAssertTrue(summary.contains("Pearson") && summary.contains("Kendall") && summary.contains("pair accuracy"), summary)
        XCTAssertTrue(summary.contains("60 samples, 30 pairs"), summary)
    }

    func testWriteCreatesTheDirectoryAndEveryFile() throws {
        let result = try Self.makeResult()
        let directory = try Fixtures.temporaryDirectory(for: self).appendingPathComponent("analyses/demo", isDirectory: true)
        try AnalysisReport.write(result, to: directory)
        let expected = try AnalysisReport.files(for: result)
        for file in expected {
            let written = try Data(contentsOf: directory.appendingPathComponent(file.path))
            XCTAssertEqual(written, file.data, file.path)
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        XCTAssertEqual(names, Set(expected.map { $0.path.components(separatedBy: "/")[0] }).sorted(), "no temporary file is left")
        // Writing again over an existing analysis replaces the files.
        try AnalysisReport.write(result, to: directory)
        XCTAssertEqual(try Data(contentsOf: directory.appendingPathComponent("report.md")), expected[0].data)
    }

    func testWriteIntoARegularFileFailsAndLeavesNothing() throws {
        let result = try Self.makeResult()
        let parent = try Fixtures.temporaryDirectory(for: self)
        let blocker = parent.appendingPathComponent("analysis")
        try Data("not a directory".utf8).write(to: blocker)
        XCTAssertThrowsError(try AnalysisReport.write(result, to: blocker)) { error in
            XCTAssertTrue(error is IRMError, "\(type(of: error))")
            XCTAssertTrue("\(error)".contains(blocker.path), "\(error)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: parent.path), ["analysis"])
        XCTAssertEqual(try Data(contentsOf: blocker), Data("not a directory".utf8))
        // A path below a regular file cannot be created either; nothing appears.
        XCTAssertThrowsError(try AnalysisReport.write(result, to: blocker.appendingPathComponent("inner"))) { error in
            XCTAssertTrue(error is IRMError, "\(type(of: error))")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: parent.path), ["analysis"])
    }

    /// Checks the section order and the formula. With IRM_REPORT_SAMPLE_DIR set, also writes the
    /// synthetic analysis there and prints the stdout summary, for reading the outputs by eye.
    func testReportSectionsAppearInOrder() throws {
        let result = try Self.makeResult()
        let files = try AnalysisReport.files(for: result)
        let markdown = try Self.text(files, "report.md")
        if let directory = ProcessInfo.processInfo.environment["IRM_REPORT_SAMPLE_DIR"] {
            try AnalysisReport.write(result, to: URL(fileURLWithPath: directory, isDirectory: true))
            print(AnalysisReport.summary(result, directory: directory))
        }
        let headings = ["## Inputs and formula", "## Data", "## Fit statistics", "## Attribution", "## Divergence from the training reward",
                        "## Tokens", "## Top disagreements", "## Warnings", "## Summary"]
        let positions = try headings.map { try XCTUnwrap(markdown.range(of: $0), $0).lowerBound }
        XCTAssertEqual(positions, positions.sorted())
        XCTAssertTrue(markdown.contains("r(x,y) = β·Σ_t [log π_after(y_t|x,y_<t) − log π_before(y_t|x,y_<t)]"))
        XCTAssertTrue(markdown.contains("`␣good`"), "token text in backticks with visible whitespace")
        XCTAssertTrue(markdown.contains("`0123456789abcdef…`"), "SHA-256 prefix of the before checkpoint")
    }
}
