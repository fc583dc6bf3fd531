import XCTest
@testable import IRMKit

/// LMG shares against a brute-force numpy computation over all 720 orderings (R² of each subset by
/// `lstsq` on the raw design), and the seeded bootstrap against the same resamples in numpy.
/// Tolerance 1e-8 relative (1e-12 absolute for shares near 0).
final class StatisticsShapleyTests: XCTestCase {
    func testSharesMatchBruteForceOverOrderings() throws {
        let design = try FixtureDesign("ols_correlated.json")
        let expected = try statisticsFixture("lmg.json")
        guard let lmg = try ShapleyAttribution.decompose(design.features, target: design.target).value else {
            return XCTFail("LMG undefined")
        }
        XCTAssertEqual(lmg.shares.map(\.name), try expected.strings("names"))
        assertClose(lmg.shares.map(\.share), try expected.doubles("shares"), absolute: 1e-12, relative: 1e-8)
        assertClose(lmg.rSquared, try expected.double("r2"), relative: 1e-10)
        // The shares sum to the R² of the full OLS fit.
        let ols = try LeastSquaresFit.fit(design.features, target: design.target).value
        assertClose(lmg.shares.map(\.share).reduce(0, +), ols?.rSquared ?? .nan, relative: 1e-12)
    }

    func testGroupSharesMatchBruteForce() throws {
        let design = try FixtureDesign("ols_correlated.json")
        let expected = try statisticsFixture("lmg.json")
        let names = design.features.names
        let groups: [(name: String, members: [String])] = [
            ("tone", [names[0], names[1]]), ("format", [names[2]]), ("other", [names[3], names[4], names[5]]),
        ]
        guard let lmg = try ShapleyAttribution.decompose(design.features, target: design.target, groups: groups).value else {
            return XCTFail("LMG undefined")
        }
        XCTAssertEqual(lmg.shares.map(\.name), try expected.strings("group_names"))
        assertClose(lmg.shares.map(\.share), try expected.doubles("group_shares"), absolute: 1e-12, relative: 1e-8)
    }

    func testSeededBootstrapIntervalsMatchNumpy() throws {
        let design = try FixtureDesign("ols_correlated.json")
        let boot = try statisticsFixture("lmg.json").required("bootstrap")
        let outcome = try ShapleyAttribution.decompose(design.features, target: design.target,
                                                       bootstrapReplicates: 40, seed: 2024, level: 0.95)
        guard let lmg = outcome.value else { return XCTFail("LMG undefined") }
        assertClose(lmg.shares.map { $0.interval?.lower ?? .nan }, try boot.doubles("lower"), absolute: 1e-12, relative: 1e-8)
        assertClose(lmg.shares.map { $0.interval?.upper ?? .nan }, try boot.doubles("upper"), absolute: 1e-12, relative: 1e-8)
        XCTAssertEqual(lmg.shares.first?.interval?.replicates, 40)
    }

    func testRefusesMoreThanFifteenPlayers() throws {
        let n = 40
        let columns = (0..<16).map { j in (0..<n).map { i in sin(Double(i * (j + 1))) } }
        let features = try FeatureMatrix(names: (0..<16).map { "f\($0)" }, columns: columns)
        XCTAssertThrowsError(try ShapleyAttribution.decompose(features, target: (0..<n).map { Double($0) })) { error in
            XCTAssertTrue("\(error)".contains("Group related features"), "\(error)")
        }
    }

    func testConstantTargetIsUndefined() throws {
        let features = try FeatureMatrix(names: ["a"], columns: [[1, 2, 3, 4]])
        XCTAssertNotNil(try ShapleyAttribution.decompose(features, target: [2, 2, 2, 2]).undefinedReason)
    }

    func testBadGroupsAreRejected() throws {
        let features = try FeatureMatrix(names: ["a", "b"], columns: [[1, 2, 3, 4, 5], [5, 3, 4, 1, 2]])
        let y: [Double] = [1, 2, 2, 4, 5]
        XCTAssertThrowsError(try ShapleyAttribution.decompose(features, target: y, groups: [("g", ["a", "zzz"])]))
        XCTAssertThrowsError(try ShapleyAttribution.decompose(features, target: y, groups: [("g", ["a"]), ("h", ["a"])]))
    }
}
