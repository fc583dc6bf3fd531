import XCTest
@testable import IRMKit

/// OLS against statsmodels 0.15 (`OLS(y, add_constant(X)).fit()`, `HC3_se`,
/// `fit(cov_type="HC3", use_t=True)`), cross-validated R² against numpy with the same seeded folds.
/// Tolerance: 1e-8 relative (the house tolerance for regression outputs), plus a 1e-12 absolute
/// floor for values that are zero up to rounding.
final class StatisticsLeastSquaresTests: XCTestCase {
    let relative = 1e-8
    let absolute = 1e-12

    private func fit(_ name: String) throws -> (LeastSquaresFit, JSONValue, FixtureDesign) {
        let design = try FixtureDesign(name)
        let outcome = try LeastSquaresFit.fit(design.features, target: design.target,
                                              options: .init(crossValidationFolds: 5, seed: 42))
        guard let fit = outcome.value else {
            throw IRMError("\(name): unexpectedly undefined: \(outcome.undefinedReason ?? "")")
        }
        return (fit, try design.json.required("expected"), design)
    }

    private func assertMatchesStatsmodels(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let (fit, e, design) = try fit(name)
        let all = [fit.intercept] + fit.coefficients
        XCTAssertEqual(all.map(\.name), try e.strings("names"), file: file, line: line)
        assertClose(all.map(\.estimate), try e.doubles("params"), absolute: absolute, relative: relative, "\(name) params", file: file, line: line)
        assertClose(all.map(\.standardError), try e.doubles("bse"), relative: relative, "\(name) bse", file: file, line: line)
        assertClose(all.map(\.tStatistic), try e.doubles("tvalues"), absolute: absolute, relative: relative, "\(name) t", file: file, line: line)
        assertClose(all.map(\.pValue), try e.doubles("pvalues"), relative: relative, "\(name) p", file: file, line: line)
        assertClose(all.map(\.confidenceLower), try e.doubles("ci_lower"), absolute: absolute, relative: relative, "\(name) ci lo", file: file, line: line)
        assertClose(all.map(\.confidenceUpper), try e.doubles("ci_upper"), absolute: absolute, relative: relative, "\(name) ci hi", file: file, line: line)
        assertClose(all.map { $0.robustStandardError ?? .nan }, try e.doubles("hc3_se"), relative: relative, "\(name) HC3", file: file, line: line)
        assertClose(all.map { $0.robustPValue ?? .nan }, try e.doubles("hc3_pvalues"), relative: relative, "\(name) HC3 p", file: file, line: line)
        assertClose(fit.coefficients.map { $0.standardizedEstimate ?? .nan }, try e.doubles("std_coef"),
                    absolute: absolute, relative: relative, "\(name) std coef", file: file, line: line)
        assertClose(fit.rSquared, try e.double("rsquared"), relative: relative, "\(name) R²", file: file, line: line)
        assertClose(fit.adjustedRSquared, try e.double("rsquared_adj"), relative: relative, "\(name) adj R²", file: file, line: line)
        assertClose(fit.fStatistic ?? .nan, try e.double("fvalue"), relative: relative, "\(name) F", file: file, line: line)
        assertClose(fit.fPValue ?? .nan, try e.double("f_pvalue"), relative: relative, "\(name) F p", file: file, line: line)
        assertClose(fit.residualSumOfSquares, try e.double("ssr"), relative: relative, "\(name) SSR", file: file, line: line)
        XCTAssertEqual(Double(fit.modelDegreesOfFreedom), try e.double("df_model"), file: file, line: line)
        XCTAssertEqual(Double(fit.residualDegreesOfFreedom), try e.double("df_resid"), file: file, line: line)
        XCTAssertEqual(Double(fit.observationCount), try e.double("nobs"), file: file, line: line)
        let cv = try design.json.required("cv")
        assertClose(fit.crossValidatedRSquared ?? .nan, try cv.double("r2"), relative: relative, "\(name) CV R²", file: file, line: line)
        if design.json["as_given"] == nil {
            assertClose(fit.conditionNumber, try e.double("condition_number"), relative: relative, "\(name) κ", file: file, line: line)
            assertClose(fit.smallestEigenvalue, try e.double("min_eigenvalue"), relative: 1e-7, "\(name) λmin", file: file, line: line)
        }
    }

    func testCorrelatedDesignMatchesStatsmodels() throws {
        try assertMatchesStatsmodels("ols_correlated.json")
        let (fit, _, _) = try fit("ols_correlated.json")
        XCTAssertGreaterThan(fit.conditionNumber, 1000)
        XCTAssertTrue(fit.notes.contains { $0.contains("condition number") }, "\(fit.notes)")
        XCTAssertEqual(fit.rank, 7)
        XCTAssertEqual(fit.singularValues.count, 7)
    }

    func testHeteroskedasticDesignMatchesStatsmodels() throws {
        try assertMatchesStatsmodels("ols_heteroskedastic.json")
        let (fit, _, _) = try fit("ols_heteroskedastic.json")
        // HC3 must differ from the classical error here, or the robust path is not exercised.
        let x = fit.coefficients[0]
        XCTAssertGreaterThan((x.robustStandardError ?? 0) / x.standardError, 1.3)
    }

    func testConstantFeatureIsDroppedWithANote() throws {
        try assertMatchesStatsmodels("ols_constant.json")
        let (fit, _, _) = try fit("ols_constant.json")
        XCTAssertEqual(fit.droppedConstantFeatures, ["always_three"])
        XCTAssertTrue(fit.notes.contains { $0.contains("always_three") })
        XCTAssertFalse(fit.coefficients.contains { $0.name == "always_three" })
        XCTAssertLessThan(fit.conditionNumber, 10)
    }

    func testAliasedFeatureIsNamedAndLeftOut() throws {
        try assertMatchesStatsmodels("ols_rank_deficient.json")
        let (fit, _, design) = try fit("ols_rank_deficient.json")
        XCTAssertEqual(fit.aliasedFeatures, ["x1_plus_2x2"])
        XCTAssertTrue(fit.notes.contains { $0.contains("x1_plus_2x2") })
        // The design as given is singular: statsmodels' eigenvalue warning applies.
        XCTAssertLessThan(fit.smallestEigenvalue, 1e-10)
        XCTAssertTrue(fit.notes.contains { $0.contains("singular") }, "\(fit.notes)")
        // statsmodels' pinv fit of the full singular design has the same R² and df_resid.
        let asGiven = try design.json.required("as_given")
        assertClose(fit.rSquared, try asGiven.double("rsquared"), relative: relative)
        XCTAssertEqual(Double(fit.residualDegreesOfFreedom), try asGiven.double("df_resid"))
    }

    func testConstantTargetIsUndefinedNotNaN() throws {
        let features = try FeatureMatrix(names: ["a", "b"], columns: [[1, 2, 3, 4, 5], [2, 1, 4, 3, 5]])
        let outcome = try LeastSquaresFit.fit(features, target: [7, 7, 7, 7, 7])
        XCTAssertNil(outcome.value)
        XCTAssertTrue(outcome.undefinedReason?.contains("all 5 target values equal 7") ?? false, "\(outcome)")
    }

    func testExactFitIsUndefinedAndNamesTheRelation() throws {
        // y = 3 − 0.5·a exactly; b is unrelated, so the relation leaves it out.
        let a: [Double] = [1, 2, 3, 4, 5, 6], b: [Double] = [2, 1, 4, 3, 6, 5]
        let features = try FeatureMatrix(names: ["a", "b"], columns: [a, b])
        let outcome = try LeastSquaresFit.fit(features, target: a.map { 3 - 0.5 * $0 })
        XCTAssertNil(outcome.value)
        let reason = try XCTUnwrap(outcome.undefinedReason)
        XCTAssertTrue(reason.contains("reproduce the target exactly"), reason)
        XCTAssertTrue(reason.contains("target = 3 − 0.5·a;"), reason)
    }

    func testTooFewSamplesThrowsActionableError() throws {
        let features = try FeatureMatrix(names: ["a", "b", "c"], columns: [[1, 2, 3, 4], [2, 1, 4, 3], [0, 1, 1, 0]])
        XCTAssertThrowsError(try LeastSquaresFit.fit(features, target: [1, 2, 3, 5])) { error in
            let message = (error as? IRMError)?.message ?? ""
            XCTAssertTrue(message.contains("4 samples for 3 non-constant features"), message)
            XCTAssertTrue(message.contains("at least 5"), message)
        }
    }

    func testBadInputIsRejectedWithLocation() throws {
        XCTAssertThrowsError(try FeatureMatrix(names: ["a"], columns: [[1, .nan, 3]])) { error in
            XCTAssertTrue("\(error)".contains("feature \"a\"") && "\(error)".contains("row 1"), "\(error)")
        }
        let features = try FeatureMatrix(names: ["a"], columns: [[1, 2, 3, 4]])
        XCTAssertThrowsError(try LeastSquaresFit.fit(features, target: [1, 2, 3])) { error in
            XCTAssertTrue("\(error)".contains("3 values but the feature matrix has 4 rows"), "\(error)")
        }
        XCTAssertThrowsError(try LeastSquaresFit.fit(features, target: [1, 2, .infinity, 4])) { error in
            XCTAssertTrue("\(error)".contains("row 2"), "\(error)")
        }
    }

    func testSameSeedSameFoldsDifferentSeedDifferentFolds() {
        let a = LeastSquaresFit.foldAssignment(rowCount: 50, folds: 5, seed: 1)
        XCTAssertEqual(a, LeastSquaresFit.foldAssignment(rowCount: 50, folds: 5, seed: 1))
        XCTAssertNotEqual(a, LeastSquaresFit.foldAssignment(rowCount: 50, folds: 5, seed: 2))
        XCTAssertEqual((0..<5).map { f in a.filter { $0 == f }.count }, [10, 10, 10, 10, 10])
    }
}
