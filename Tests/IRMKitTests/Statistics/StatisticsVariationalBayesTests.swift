import XCTest
@testable import IRMKit

/// Mean-field VB with ARD against a float64 numpy run of the same updates (60 sweeps, fixed), to
/// 1e-8 relative; and behaviour on synthetic data with 3 relevant and 5 irrelevant features.
final class StatisticsVariationalBayesTests: XCTestCase {
    func testMatchesNumpyUpdates() throws {
        let design = try FixtureDesign("vb_ard.json")
        let expected = try design.json.required("expected")
        let options = VariationalBayesRegression.Options(tolerance: 0, maximumIterations: 60)
        guard let vb = try VariationalBayesRegression.fit(design.features, target: design.target, options: options).value else {
            return XCTFail("VB undefined")
        }
        XCTAssertEqual(vb.iterations, 60)
        assertClose(vb.evidenceLowerBoundTrace, try expected.doubles("elbo"), relative: 1e-8)
        assertClose(vb.coefficients.map(\.standardizedPosteriorMean), try expected.doubles("mean_std"), relative: 1e-8)
        assertClose(vb.coefficients.map(\.posteriorMean), try expected.doubles("coef"), relative: 1e-8)
        assertClose(vb.coefficients.map(\.expectedPrecision), try expected.doubles("e_alpha"), relative: 1e-8)
        let sds = vb.coefficients.indices.map { j in
            populationSD(Array(design.features.column(j)))
        }
        assertClose(vb.coefficients.indices.map { j in pow(vb.coefficients[j].posteriorSD * sds[j], 2) },
                    try expected.doubles("var_std"), relative: 1e-8)
        assertClose(vb.expectedNoisePrecision, try expected.double("e_tau"), relative: 1e-8)
        assertClose(vb.intercept, try expected.double("intercept"), relative: 1e-8)
    }

    func testShrinksIrrelevantAndRecoversRelevantFeatures() throws {
        let design = try FixtureDesign("vb_ard.json")
        let truth = try design.json.doubles("true_coef")
        guard let vb = try VariationalBayesRegression.fit(design.features, target: design.target).value else {
            return XCTFail("VB undefined")
        }
        XCTAssertTrue(vb.converged, "did not converge in \(vb.iterations) sweeps")
        // The ELBO never decreases (coordinate ascent), up to rounding.
        for (before, after) in zip(vb.evidenceLowerBoundTrace, vb.evidenceLowerBoundTrace.dropFirst()) {
            XCTAssertGreaterThanOrEqual(after, before - 1e-9 * abs(before))
        }
        let relevant = vb.coefficients.prefix(3), irrelevant = vb.coefficients.dropFirst(3)
        for (coefficient, w) in zip(relevant, truth) {
            XCTAssertTrue(coefficient.credibleLower <= w && w <= coefficient.credibleUpper,
                          "\(coefficient.name): \(w) outside [\(coefficient.credibleLower), \(coefficient.credibleUpper)]")
        }
        let weakestRelevant = relevant.map(\.relevance).min() ?? 0
        for coefficient in irrelevant {
            XCTAssertLessThan(coefficient.relevance, weakestRelevant / 10, coefficient.name)
            XCTAssertLessThan(abs(coefficient.standardizedPosteriorMean), 0.15, coefficient.name)
        }
        // OLS leaves the irrelevant weights larger than ARD does.
        let ols = try LeastSquaresFit.fit(design.features, target: design.target).value
        let olsIrrelevant = ols?.coefficients.dropFirst(3).map { abs($0.estimate) }.reduce(0, +) ?? 0
        XCTAssertLessThan(irrelevant.map { abs($0.posteriorMean) }.reduce(0, +), olsIrrelevant)
    }

    private func populationSD(_ x: [Double]) -> Double {
        let mean = x.reduce(0, +) / Double(x.count)
        return (x.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(x.count)).squareRoot()
    }
}
