import XCTest
@testable import IRMKit

/// Ridge with GCV against numpy (SVD) + scipy brentq on dGCV/dλ. λ is a root of a smooth
/// function found to ~1e-14 on both sides, so 1e-8 relative is the stated tolerance for λ and
/// everything derived from it.
final class StatisticsRidgeTests: XCTestCase {
    func testLambdaAndCoefficientsMatchNumpy() throws {
        let design = try FixtureDesign("ols_correlated.json")
        let expected = try statisticsFixture("ridge.json")
        guard let ridge = try RidgeFit.fit(design.features, target: design.target).value else {
            return XCTFail("ridge undefined")
        }
        XCTAssertFalse(ridge.lambdaAtGridBoundary)
        assertClose(ridge.lambda, try expected.double("lambda"), relative: 1e-8)
        assertClose(ridge.effectiveDegreesOfFreedom, try expected.double("effective_df"), relative: 1e-8)
        assertClose(ridge.generalizedCrossValidation, try expected.double("gcv"), relative: 1e-8)
        assertClose(ridge.coefficients.map(\.estimate), try expected.doubles("coef"), relative: 1e-8)
        assertClose(ridge.intercept, try expected.double("intercept"), relative: 1e-8)
        let ySd = populationSD(design.target)
        assertClose(ridge.coefficients.map(\.standardizedEstimate), try expected.doubles("std_coef").map { $0 / ySd }, relative: 1e-8)
        // Shrinkage: every standardised coefficient is smaller in norm than OLS's.
        let ols = try LeastSquaresFit.fit(design.features, target: design.target).value
        let olsNorm = ols?.coefficients.reduce(0) { $0 + ($1.standardizedEstimate ?? 0) * ($1.standardizedEstimate ?? 0) } ?? 0
        let ridgeNorm = ridge.coefficients.reduce(0) { $0 + $1.standardizedEstimate * $1.standardizedEstimate }
        XCTAssertLessThan(ridgeNorm, olsNorm)
    }

    func testConstantTargetIsUndefined() throws {
        let features = try FeatureMatrix(names: ["a"], columns: [[1, 2, 3, 4]])
        XCTAssertNotNil(try RidgeFit.fit(features, target: [1, 1, 1, 1]).undefinedReason)
    }

    private func populationSD(_ x: [Double]) -> Double {
        let mean = x.reduce(0, +) / Double(x.count)
        return (x.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(x.count)).squareRoot()
    }
}
