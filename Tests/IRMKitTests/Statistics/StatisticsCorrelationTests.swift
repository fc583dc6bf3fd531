import XCTest
@testable import IRMKit

/// Correlations against scipy 1.17 (`pearsonr`, `spearmanr`, `kendalltau(method="asymptotic")`)
/// on 300 pairs with many ties, and seeded bootstrap intervals against the same resamples in
/// Python. Tolerance: 1e-10 relative for coefficients and p-values, 1e-8 for intervals.
final class StatisticsCorrelationTests: XCTestCase {
    func testMatchesScipyWithTies() throws {
        let json = try statisticsFixture("correlation.json")
        let x = try json.doubles("x"), y = try json.doubles("y")
        let boot = try json.required("bootstrap")
        let replicates = Int(try boot.double("replicates")), seed = UInt64(try boot.double("seed"))
        for (method, key, valueKey) in [(Correlation.Method.pearson, "pearson", "r"),
                                        (.spearman, "spearman", "rho"), (.kendall, "kendall", "tau_b")] {
            let expected = try json.required(key)
            guard let estimate = try Correlation.estimate(method, x, y, bootstrapReplicates: replicates, seed: seed).value else {
                return XCTFail("\(key) undefined")
            }
            assertClose(estimate.value, try expected.double(valueKey), relative: 1e-10, key)
            assertClose(estimate.pValue, try expected.double("p"), relative: 1e-10, "\(key) p")
            let ci = try expected.doubles("ci")
            assertClose([estimate.interval?.lower ?? .nan, estimate.interval?.upper ?? .nan], ci, relative: 1e-8, "\(key) CI")
        }
    }

    func testKnightKendallMatchesPairwiseReference() {
        var g = SeededRandom(seed: 11)
        for n in [3, 10, 57, 400] {
            let x = (0..<n).map { _ in Double(g.index(below: 7)) }
            let y = (0..<n).map { i in x[i] * 0.5 + Double(g.index(below: 5)) }
            let fast = (try? Correlation.kendallTauB(x, y))?.value?.value ?? .nan
            assertClose(fast, Correlation.kendallTauBReference(x, y), absolute: 1e-14, relative: 1e-12, "n=\(n)")
        }
    }

    func testAverageRanks() {
        XCTAssertEqual(Correlation.averageRanks([10, 20, 10, 30, 20, 20]), [1.5, 4, 1.5, 6, 4, 4])
    }

    func testConstantInputIsUndefined() throws {
        for method in Correlation.Method.allCases {
            let outcome = try Correlation.estimate(method, [1, 1, 1, 1], [1, 2, 3, 4])
            XCTAssertTrue(outcome.undefinedReason?.contains("constant") ?? false, "\(method): \(outcome)")
        }
        XCTAssertThrowsError(try Correlation.pearson([1, 2], [1, 2, 3]))
    }

    func testStrictPairAccuracyCountsTiesAsWrong() throws {
        let acc = try PairAccuracy.strict(chosen: [2, 1, 3, 5], rejected: [1, 1, 4, 0]).value
        XCTAssertEqual(acc?.correct, 2)
        XCTAssertEqual(acc?.ties, 1)
        XCTAssertEqual(acc?.accuracy, 0.5)
        XCTAssertNotNil(try PairAccuracy.strict(chosen: [], rejected: []).undefinedReason)
        XCTAssertThrowsError(try PairAccuracy.strict(chosen: [1], rejected: [1, 2]))
    }

    func testPairAgreement() throws {
        let agreement = try PairAgreement.between(marginsFirst: [1, -2, 0, 3, 0.5], marginsSecond: [2, -1, 0, -1, 0]).value
        XCTAssertEqual(agreement?.agreeing, 2)
        XCTAssertEqual(agreement?.tiesFirst, 1)
        XCTAssertEqual(agreement?.tiesSecond, 2)
        XCTAssertEqual(agreement?.agreement, 0.4)
    }
}
