import XCTest
@testable import IRMKit

/// `CollinearityAnalysis` and `LeastSquaresFit.conditionNumber` against statsmodels 0.15
/// (`variance_inflation_factor` on add_constant(X), `OLS(...).fit()`, `condition_number`) and the set
/// rule re-implemented with statsmodels auxiliary regressions, in
/// scripts/fixtures/make_collinearity_fixtures.py. Tolerance: 1e-8 relative (the house tolerance for
/// regression outputs), with a 1e-12 absolute floor for values that are zero up to rounding.
final class CollinearityTests: XCTestCase {
    let relative = 1e-8
    let absolute = 1e-12

    private func fullFit(_ design: FixtureDesign) throws -> LeastSquaresFit {
        try XCTUnwrap(LeastSquaresFit.fit(design.features, target: design.target).value)
    }

    private func analysis(_ design: FixtureDesign) throws -> CollinearityAnalysis {
        let outcome = try CollinearityAnalysis.analyze(design.features, target: design.target)
        return try XCTUnwrap(outcome.value, outcome.undefinedReason ?? "")
    }

    /// The planted design with the exactly aliased column net_sentiment_words appended.
    private func withAliasedColumn(_ design: FixtureDesign) throws -> FeatureMatrix {
        let extra = try design.json.required("aliased_column")
        let name = try XCTUnwrap(extra["name"]?.stringValue)
        let columns = (0..<design.features.columnCount).map { Array(design.features.column($0)) }
        return try FeatureMatrix(names: design.features.names + [name], columns: columns + [try extra.doubles("values")])
    }

    private func expectedSets(_ e: JSONValue) throws -> [JSONValue] { try e.rows("sets") }

    // MARK: - VIF

    func testVarianceInflationMatchesStatsmodels() throws {
        for name in ["collinearity_planted.json", "collinearity_independent.json"] {
            let design = try FixtureDesign(name)
            let e = try design.json.required("expected")
            let vif = try CollinearityAnalysis.varianceInflationFactors(design.features, fit: try fullFit(design))
            XCTAssertEqual(vif.map(\.name), design.features.names, name)
            assertClose(vif.map(\.factor), try e.doubles("vif"), relative: relative, "\(name) VIF")
            assertClose(vif.map(\.auxiliaryRSquared), try e.doubles("auxiliary_rsquared"), absolute: absolute,
                        relative: relative, "\(name) auxiliary R²")
        }
    }

    func testAnExactlyAliasedColumnIsDroppedBeforeVIF() throws {
        let design = try FixtureDesign("collinearity_planted.json")
        let features = try withAliasedColumn(design)
        let fit = try XCTUnwrap(LeastSquaresFit.fit(features, target: design.target).value)
        XCTAssertEqual(fit.aliasedFeatures, ["net_sentiment_words"])
        let withAlias = try CollinearityAnalysis.varianceInflationFactors(features, fit: fit)
        let without = try CollinearityAnalysis.varianceInflationFactors(design.features, fit: try fullFit(design))
        XCTAssertEqual(withAlias, without, "the aliased column must not change any VIF")
        // statsmodels on the singular design: the aliased family is at its 1e15 clip.
        let asGiven = try design.json.required("expected").required("with_aliased_column").doubles("vif_as_given")
        XCTAssertGreaterThan(asGiven[6], 1e12)
    }

    func testTwoIdenticalFeaturesLeaveOneFiniteVIF() throws {
        var generator = SeededRandom(seed: 7)
        let a = (0..<50).map { _ in generator.unitInterval() }
        let b = (0..<50).map { _ in generator.unitInterval() }
        let y = zip(a, b).map { 2 * $0 - $1 + 0.1 * generator.unitInterval() }
        let features = try FeatureMatrix(names: ["a", "a_again", "b"], columns: [a, a, b])
        let full = try XCTUnwrap(LeastSquaresFit.fit(features, target: y).value)
        XCTAssertEqual(full.aliasedFeatures, ["a_again"])
        let result = try XCTUnwrap(CollinearityAnalysis.analyze(features, target: y).value)
        XCTAssertEqual(result.varianceInflation.map(\.name), ["a", "b"])
        XCTAssertTrue(result.varianceInflation.allSatisfy { $0.factor.isFinite && $0.factor >= 1 && $0.factor < 2 },
                      "\(result.varianceInflation)")
        XCTAssertEqual(result.sets, [])
        XCTAssertEqual(result.parsimoniousFeatures, ["a", "b"])
    }

    func testExactDependencyGivesInfiniteVIFNeverNaN() throws {
        // Bypasses the fit's aliasing on purpose: the guard of rule 1 is what is under test.
        let x: [Double] = [1, 2, 3, 4, 5, 6, 7, 8], w: [Double] = [3, 1, 4, 1, 5, 9, 2, 6]
        let design = PreparedDesign(try FeatureMatrix(names: ["x", "x_copy", "w"], columns: [x, x, w]))
        let factors = try CollinearityAnalysis.inflationFactors(design.standardizedDesign(columns: [0, 1, 2]), aliasTolerance: 1e-7)
        XCTAssertEqual(factors[0], .infinity)
        XCTAssertEqual(factors[1], .infinity)
        XCTAssertTrue(factors[2].isFinite && factors[2] >= 1, "\(factors)")
    }

    func testSingleFeatureHasVIFOneAndNoSets() throws {
        let x: [Double] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
        let y: [Double] = [1.1, 1.9, 3.2, 3.8, 5.3, 5.9, 7.2, 7.7, 9.4, 9.8]
        let result = try XCTUnwrap(CollinearityAnalysis.analyze(try FeatureMatrix(names: ["x"], columns: [x]), target: y).value)
        XCTAssertEqual(result.varianceInflation.count, 1)
        assertClose(result.varianceInflation[0].factor, 1, relative: 1e-12)
        assertClose(result.varianceInflation[0].auxiliaryRSquared, 0, absolute: 1e-12)
        XCTAssertEqual(result.sets, [])
        XCTAssertEqual(result.parsimoniousFeatures, ["x"])
    }

    // MARK: - Sets and representatives

    func testPlantedSetsAreFoundExactly() throws {
        let design = try FixtureDesign("collinearity_planted.json")
        let planted = try design.json.rows("planted_sets").map { set -> [String] in
            try XCTUnwrap(set.arrayValue).compactMap(\.stringValue)
        }
        let result = try analysis(design)
        XCTAssertEqual(result.sets.map(\.memberNames), planted)
        // Explanations as statsmodels' auxiliary regressions find them.
        try assertSetsMatch(result, try design.json.required("expected"))
        XCTAssertFalse(result.sets.flatMap(\.memberNames).contains("exclamation_marks"))
    }

    /// Sets, members, explanations (with their rounds and VIFs) as the fixture's statsmodels rounds give them.
    private func assertSetsMatch(_ result: CollinearityAnalysis, _ e: JSONValue, file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = try expectedSets(e)
        XCTAssertEqual(result.sets.count, expected.count, file: file, line: line)
        for (set, e) in zip(result.sets, expected) {
            XCTAssertEqual(set.memberNames, try e.strings("members"), file: file, line: line)
            XCTAssertEqual(set.representative, try XCTUnwrap(e["representative"]?.stringValue), file: file, line: line)
            assertClose(set.members.map(\.factor), try e.doubles("vif"), relative: relative, "set VIFs")
            let explanations = try e.rows("explanations")
            XCTAssertEqual(set.explanations.map(\.name), try explanations.map { try XCTUnwrap($0["name"]?.stringValue) }, file: file, line: line)
            for (explanation, ee) in zip(set.explanations, explanations) {
                XCTAssertEqual(explanation.explainedBy, try ee.strings("explained_by"), explanation.name, file: file, line: line)
                XCTAssertEqual(Double(explanation.round), try ee.double("round"), explanation.name, file: file, line: line)
                assertClose(explanation.factor, try ee.double("factor"), relative: relative, "\(explanation.name) VIF in its round")
                assertClose(explanation.factorWithoutThem, try ee.double("factor_without_them"), relative: relative,
                            "\(explanation.name) VIF without its explainers")
                XCTAssertLessThanOrEqual(explanation.factorWithoutThem, result.threshold, file: file, line: line)
            }
            XCTAssertTrue(set.summary.contains("Kept \(set.representative)"), set.summary, file: file, line: line)
        }
        XCTAssertEqual(Double(result.rounds), try e.double("rounds"), file: file, line: line)
        XCTAssertEqual(result.parsimoniousFeatures, try e.strings("parsimonious_features"), file: file, line: line)
        XCTAssertEqual(result.parsimoniousVarianceInflation.map(\.name), result.parsimoniousFeatures, file: file, line: line)
        assertClose(result.parsimoniousVarianceInflation.map(\.factor), try e.doubles("parsimonious_vif"), relative: relative,
                    "parsimonious VIFs")
    }

    /// Round 1 sets the near-duplicate pair; `total` (VIF 20, explained only by x_m with VIF about
    /// 5) is left, so round 2 pairs it with its primary explainer; statsmodels agrees on every step.
    func testRoundsRunUntilNoVIFExceedsTheThreshold() throws {
        let design = try FixtureDesign("collinearity_rounds.json")
        let e = try design.json.required("expected")
        let result = try analysis(design)
        try assertSetsMatch(result, e)
        XCTAssertEqual(result.rounds, 2)
        XCTAssertTrue(result.parsimoniousVarianceInflation.allSatisfy { $0.factor <= result.threshold },
                      "\(result.parsimoniousVarianceInflation)")
        XCTAssertTrue(result.sets.contains { $0.explanations.contains { $0.round == 2 && $0.name == "total" } }, "\(result.sets)")
        XCTAssertTrue(result.sets.first { $0.memberNames.contains("total") }?.summary.contains("in round 2, total") ?? false)
        try assertFitMatches(result.parsimoniousFit, try e.required("parsimonious"))
    }

    func testRepresentativeIsTheLargestLMGShare() throws {
        let design = try FixtureDesign("collinearity_planted.json")
        let e = try design.json.required("expected")
        let result = try analysis(design)
        let lmg = Dictionary(uniqueKeysWithValues: zip(design.features.names, try e.doubles("lmg")))
        for (set, expected) in zip(result.sets, try expectedSets(e)) {
            assertClose(set.lmgShares, set.memberNames.map { lmg[$0] ?? .nan }, relative: relative, "LMG shares")
            XCTAssertEqual(set.representative, try XCTUnwrap(expected["representative"]?.stringValue))
        }
        // The length pair is a near tie that the later feature wins; the sentiment set's lexicon score wins.
        XCTAssertEqual(result.sets.map(\.representative), ["response_words", "vader_sum"])
        XCTAssertEqual(result.droppedFeatures, ["response_chars", "positive_words", "negative_words"])
    }

    func testRepresentativeRuleWithGivenShares() throws {
        let design = try FixtureDesign("collinearity_planted.json")
        let fit = try fullFit(design)
        // Tied length pair (within 1e-9 relative): the earlier feature. positive_words largest in its set.
        let shares: [String: Double] = ["response_chars": 0.05, "response_words": 0.05 * (1 + 1e-12),
                                        "positive_words": 0.30, "negative_words": 0.10, "vader_sum": 0.29,
                                        "exclamation_marks": 0.9, "some_group": 1]
        let result = try CollinearityAnalysis.analyze(design.features, target: design.target, fullFit: fit, lmgShares: shares)
        XCTAssertEqual(result.sets.map(\.representative), ["response_chars", "positive_words"])
        XCTAssertEqual(result.parsimoniousFeatures, ["response_chars", "positive_words", "exclamation_marks"])
        // A clear difference beats order.
        var later = shares
        later["response_words"] = 0.06
        let second = try CollinearityAnalysis.analyze(design.features, target: design.target, fullFit: fit, lmgShares: later)
        XCTAssertEqual(second.sets.first?.representative, "response_words")
        XCTAssertEqual(CollinearityAnalysis.representativePosition([0.2, 0.2, 0.1], tieTolerance: 1e-9), 0)
        XCTAssertEqual(CollinearityAnalysis.representativePosition([0.1, 0.2, 0.2], tieTolerance: 1e-9), 1)
        XCTAssertEqual(CollinearityAnalysis.representativePosition([-0.1, -0.3], tieTolerance: 1e-9), 0)
    }

    func testMissingShareNamesTheFeature() throws {
        let design = try FixtureDesign("collinearity_planted.json")
        var shares = ["response_chars": 0.1, "response_words": 0.2, "positive_words": 0.3, "negative_words": 0.1]
        XCTAssertThrowsError(try CollinearityAnalysis.analyze(design.features, target: design.target,
                                                              fullFit: try fullFit(design), lmgShares: shares)) { error in
            XCTAssertTrue("\(error)".contains("\"vader_sum\""), "\(error)")
        }
        shares["vader_sum"] = .nan
        XCTAssertThrowsError(try CollinearityAnalysis.analyze(design.features, target: design.target,
                                                              fullFit: try fullFit(design), lmgShares: shares)) { error in
            XCTAssertTrue("\(error)".contains("vader_sum") && "\(error)".contains("finite"), "\(error)")
        }
    }

    /// A high-VIF feature explained only by low-VIF features forms no set with a low-VIF feature
    /// while other sets are found; alone, it is paired with its primary explainer (rule 3), so the
    /// parsimonious fit has no VIF above the threshold.
    func testLoneHighVIFFeatureIsPairedWithItsPrimaryExplainer() throws {
        // total = x1 + … + x6 + noise: total's VIF is about 18, each x_m's about 4 (below 10).
        var generator = SeededRandom(seed: 11)
        let n = 400
        let parts = (0..<6).map { _ in (0..<n).map { _ in generator.unitInterval() } }
        let total = (0..<n).map { i in parts.reduce(0) { $0 + $1[i] } + 0.6 * (generator.unitInterval() - 0.5) }
        let y = (0..<n).map { i in total[i] + parts[0][i] + generator.unitInterval() }
        let names = (1...6).map { "x\($0)" } + ["total"]
        let result = try XCTUnwrap(CollinearityAnalysis.analyze(try FeatureMatrix(names: names, columns: parts + [total]), target: y).value)
        let high = result.varianceInflation.filter { $0.factor > 10 }.map(\.name)
        XCTAssertEqual(high, ["total"], "\(result.varianceInflation)")
        XCTAssertEqual(result.sets.count, 1, "\(result.sets)")
        let set = try XCTUnwrap(result.sets.first)
        XCTAssertEqual(set.memberNames.count, 2)
        XCTAssertEqual(set.memberNames.last, "total")
        XCTAssertEqual(set.explanations.map(\.name), ["total"])
        XCTAssertEqual(set.explanations.first?.explainedBy.first, set.memberNames.first)
        XCTAssertEqual(result.rounds, 1)
        XCTAssertEqual(result.parsimoniousFeatures.count, names.count - 1)
        XCTAssertTrue(result.parsimoniousVarianceInflation.allSatisfy { $0.factor <= 10 }, "\(result.parsimoniousVarianceInflation)")
    }

    /// Two dependencies that share only a low-VIF feature stay two sets: the low-VIF feature does
    /// not chain them (the demo's length and sentiment features and its "!" count).
    func testALowVIFFeatureDoesNotChainTwoSets() throws {
        var generator = SeededRandom(seed: 5)
        let n = 400
        func noise(_ s: Double) -> [Double] { (0..<n).map { _ in s * (generator.unitInterval() - 0.5) } }
        let shared = noise(2)
        let a1 = noise(2), b1 = noise(2)
        let a2 = zip(a1, noise(0.05)).map { $0 + $1 }
        let b2 = zip(b1, noise(0.05)).map { $0 + $1 }
        let c = zip(zip(a1, b1).map { $0 + $1 }, zip(shared, noise(1.5)).map { $0 + $1 }).map { $0 + 0.1 * $1 }
        let y = (0..<n).map { i in a1[i] + b1[i] + shared[i] + generator.unitInterval() }
        let names = ["a1", "a2", "b1", "b2", "shared", "c"]
        let result = try XCTUnwrap(CollinearityAnalysis.analyze(try FeatureMatrix(names: names, columns: [a1, a2, b1, b2, shared, c]), target: y).value)
        let vif = Dictionary(uniqueKeysWithValues: result.varianceInflation.map { ($0.name, $0.factor) })
        XCTAssertLessThan(vif["shared"] ?? .infinity, 10)
        for set in result.sets { XCTAssertFalse(set.memberNames.contains("shared"), "\(result.sets)") }
        XCTAssertTrue(result.parsimoniousFeatures.contains("shared"))
    }

    // MARK: - Parsimonious fit

    /// An OLS fit against statsmodels' expectations `p` (names, params, bse, t, p, CIs, HC3, R², SSR, κ).
    private func assertFitMatches(_ fit: LeastSquaresFit, _ p: JSONValue) throws {
        let all = [fit.intercept] + fit.coefficients
        XCTAssertEqual(all.map(\.name), try p.strings("names"))
        assertClose(all.map(\.estimate), try p.doubles("params"), absolute: absolute, relative: relative, "params")
        assertClose(all.map(\.standardError), try p.doubles("bse"), relative: relative, "bse")
        assertClose(all.map(\.tStatistic), try p.doubles("tvalues"), absolute: absolute, relative: relative, "t")
        assertClose(all.map(\.pValue), try p.doubles("pvalues"), relative: relative, "p")
        assertClose(all.map(\.confidenceLower), try p.doubles("ci_lower"), absolute: absolute, relative: relative, "ci lo")
        assertClose(all.map(\.confidenceUpper), try p.doubles("ci_upper"), absolute: absolute, relative: relative, "ci hi")
        assertClose(all.map { $0.robustStandardError ?? .nan }, try p.doubles("hc3_se"), relative: relative, "HC3")
        assertClose(fit.rSquared, try p.double("rsquared"), relative: relative, "R²")
        assertClose(fit.residualSumOfSquares, try p.double("ssr"), relative: relative, "SSR")
        assertClose(fit.conditionNumber, try p.double("condition_number"), relative: relative, "κ")
    }

    func testParsimoniousRefitMatchesStatsmodels() throws {
        let design = try FixtureDesign("collinearity_planted.json")
        let e = try design.json.required("expected")
        let result = try analysis(design)
        XCTAssertEqual(result.parsimoniousFeatures, try e.strings("parsimonious_features"))
        try assertFitMatches(result.parsimoniousFit, try e.required("parsimonious"))
        let fit = result.parsimoniousFit
        // No sign split left: every kept coefficient has the sign of its planted effect.
        XCTAssertTrue(fit.coefficients.allSatisfy { $0.estimate > 0 }, "\(fit.coefficients.map(\.estimate))")
    }

    func testNoFeatureAboveThresholdKeepsTheFullFit() throws {
        let design = try FixtureDesign("collinearity_independent.json")
        let full = try fullFit(design)
        let result = try analysis(design)
        XCTAssertEqual(result.sets, [])
        XCTAssertEqual(result.droppedFeatures, [])
        XCTAssertEqual(result.parsimoniousFeatures, design.features.names)
        XCTAssertEqual(result.parsimoniousFit.coefficients, full.coefficients)
        XCTAssertEqual(result.parsimoniousFit.intercept, full.intercept)
        XCTAssertTrue(result.varianceInflation.allSatisfy { $0.factor < 10 })
    }

    // MARK: - Condition number of the fitted design

    func testConditionNumberMatchesStatsmodelsOnTheFittedDesign() throws {
        let design = try FixtureDesign("collinearity_planted.json")
        let e = try design.json.required("expected")
        let κ = try fullFit(design).conditionNumber
        assertClose(κ, try e.required("full").double("condition_number"), relative: relative, "full κ")
        // The existing rank-deficient OLS fixture records statsmodels' κ of the fitted design too.
        let rankDeficient = try FixtureDesign("ols_rank_deficient.json")
        let fit = try fullFit(rankDeficient)
        XCTAssertEqual(fit.aliasedFeatures, ["x1_plus_2x2"])
        assertClose(fit.conditionNumber, try rankDeficient.json.required("expected").double("condition_number"),
                    relative: relative, "rank-deficient κ")
    }

    func testConditionNumberIsStableUnderAnExactlyAliasedColumn() throws {
        let design = try FixtureDesign("collinearity_planted.json")
        let e = try design.json.required("expected")
        let clean = try fullFit(design)
        let aliased = try XCTUnwrap(LeastSquaresFit.fit(try withAliasedColumn(design), target: design.target).value)
        XCTAssertEqual(aliased.aliasedFeatures, ["net_sentiment_words"])
        XCTAssertEqual(aliased.conditionNumber, clean.conditionNumber, "κ must describe the design actually fitted")
        assertClose(aliased.conditionNumber, try e.required("full").double("condition_number"), relative: relative)
        // The design as given is still reported singular through λ_min, and statsmodels' κ of it is noise.
        XCTAssertLessThan(aliased.smallestEigenvalue, 1e-10)
        XCTAssertTrue(aliased.notes.contains { $0.contains("singular") }, "\(aliased.notes)")
        let asGiven = try e.required("with_aliased_column").double("condition_number_as_given")
        XCTAssertGreaterThan(asGiven / aliased.conditionNumber, 1e9)
        // Same sets and parsimonious features with the aliased column present.
        let withAlias = try XCTUnwrap(CollinearityAnalysis.analyze(try withAliasedColumn(design), target: design.target).value)
        XCTAssertEqual(withAlias.sets, try analysis(design).sets)
        XCTAssertEqual(withAlias.parsimoniousFeatures, try e.strings("parsimonious_features"))
    }

    // MARK: - Errors

    func testBadOptionsAndMismatchedInputAreRejected() throws {
        let design = try FixtureDesign("collinearity_planted.json")
        XCTAssertThrowsError(try CollinearityAnalysis.analyze(design.features, target: design.target,
                                                              options: .init(threshold: 1))) { error in
            XCTAssertTrue("\(error)".contains("threshold"), "\(error)")
        }
        let other = try FixtureDesign("collinearity_independent.json")
        XCTAssertThrowsError(try CollinearityAnalysis.varianceInflationFactors(other.features, fit: try fullFit(design))) { error in
            XCTAssertTrue("\(error)".contains("response_chars"), "\(error)")
        }
    }

    func testTooManyFeaturesForLMGSaysWhatToDo() throws {
        var generator = SeededRandom(seed: 5)
        let n = 60
        var columns = (0..<16).map { _ in (0..<n).map { _ in generator.unitInterval() } }
        columns[15] = zip(columns[0], columns[1]).map { $0 + $1 + 0.01 * generator.unitInterval() }
        let names = (0..<16).map { "f\($0)" }
        let y = (0..<n).map { columns[0][$0] + generator.unitInterval() }
        XCTAssertThrowsError(try CollinearityAnalysis.analyze(try FeatureMatrix(names: names, columns: columns), target: y)) { error in
            XCTAssertTrue("\(error)".contains("lmgShares"), "\(error)")
        }
    }
}
