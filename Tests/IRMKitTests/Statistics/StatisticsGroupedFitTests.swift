import XCTest
@testable import IRMKit

/// Per-group OLS and the Chow F test against statsmodels (`compare_f_test` of the fully interacted
/// model against the pooled one). Tolerance 1e-8 relative.
final class StatisticsGroupedFitTests: XCTestCase {
    func testChowTestMatchesStatsmodels() throws {
        let design = try FixtureDesign("chow.json")
        let labels = try design.json.strings("group")
        guard let grouped = try GroupedFit.fit(design.features, target: design.target, groupLabels: labels).value else {
            return XCTFail("grouped fit undefined")
        }
        assertClose(grouped.chowF, try design.json.double("F"), relative: 1e-8)
        assertClose(grouped.chowPValue, try design.json.double("p"), relative: 1e-8)
        XCTAssertEqual(Double(grouped.numeratorDegreesOfFreedom), try design.json.double("df_num"))
        XCTAssertEqual(Double(grouped.denominatorDegreesOfFreedom), try design.json.double("df_den"))
        XCTAssertEqual(grouped.groups.map(\.label), ["closed", "open"])
        let perGroup = try design.json.required("per_group")
        for group in grouped.groups {
            let expected = try perGroup.required(group.label)
            let all = [group.fit.intercept] + group.fit.coefficients
            assertClose(all.map(\.estimate), try expected.doubles("params"), relative: 1e-8, group.label)
            assertClose(all.map(\.standardError), try expected.doubles("bse"), relative: 1e-8, group.label)
            XCTAssertEqual(Double(group.fit.observationCount), try expected.double("n"))
        }
        assertClose(([grouped.pooled.intercept] + grouped.pooled.coefficients).map(\.estimate),
                    try design.json.doubles("pooled_params"), relative: 1e-8)
    }

    func testSingleGroupIsUndefinedAndSmallGroupErrorNamesIt() throws {
        let features = try FeatureMatrix(names: ["a"], columns: [[1, 2, 3, 4, 5, 6, 7]])
        let y: [Double] = [1, 3, 2, 5, 4, 6, 8]
        XCTAssertNotNil(try GroupedFit.fit(features, target: y, groupLabels: Array(repeating: "open", count: 7)).undefinedReason)
        XCTAssertThrowsError(try GroupedFit.fit(features, target: y,
                                                groupLabels: ["open", "open", "open", "open", "open", "closed", "closed"])) { error in
            XCTAssertTrue("\(error)".contains("group \"closed\""), "\(error)")
        }
    }
}
