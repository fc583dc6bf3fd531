import XCTest
@testable import IRMKit

/// Special functions against 50-digit mpmath values (scipy's own values are recorded beside them;
/// scipy underflows or returns -inf in a few extreme rows, which the fixture marks).
/// Tolerance: 1e-10 relative everywhere, as stated in SpecialFunctions' doc comment.
final class StatisticsSpecialFunctionTests: XCTestCase {
    let relative = 1e-10

    func testStudentTTailsAndTwoSidedPValues() throws {
        let rows = try statisticsFixture("special_functions.json").rows("student_t")
        XCTAssertGreaterThan(rows.count, 100)
        for row in rows {
            let t = try row.double("t"), df = try row.double("df")
            assertClose(StudentTDistribution.survival(t, degreesOfFreedom: df), try row.double("sf"),
                        relative: relative, "sf t=\(t) df=\(df)")
            assertClose(StudentTDistribution.cdf(-t, degreesOfFreedom: df), try row.double("sf"),
                        relative: relative, "cdf(-t) t=\(t) df=\(df)")
            assertClose(StudentTDistribution.twoSidedPValue(-t, degreesOfFreedom: df), try row.double("two_sided"),
                        relative: relative, "two-sided t=\(t) df=\(df)")
        }
    }

    func testExtremeTailDoesNotUnderflowToGarbage() {
        // P(T > 3.18e299) with 1 df is 1e-300; scipy 1.17 returns 0 here.
        let p = StudentTDistribution.survival(3.1830988618379e299, degreesOfFreedom: 1)
        XCTAssertGreaterThan(p, 0)
        assertClose(p, 1.0000000000000022e-300, relative: 1e-10)
        // Past the floor the answer is 0, never NaN or negative.
        XCTAssertEqual(StudentTDistribution.survival(1e200, degreesOfFreedom: 30), 0)
        XCTAssertEqual(StudentTDistribution.survival(.infinity, degreesOfFreedom: 3), 0)
        XCTAssertEqual(StudentTDistribution.survival(-.infinity, degreesOfFreedom: 3), 1)
    }

    func testStudentTQuantiles() throws {
        let rows = try statisticsFixture("special_functions.json").rows("student_t_quantile")
        XCTAssertEqual(rows.count, 48)
        for row in rows {
            let q = try row.double("q"), df = try row.double("df"), t = try row.double("t")
            assertClose(StudentTDistribution.upperQuantile(q, degreesOfFreedom: df), t, relative: relative, "q=\(q) df=\(df)")
            assertClose(StudentTDistribution.quantile(q, degreesOfFreedom: df), -t, relative: relative, "lower q=\(q) df=\(df)")
        }
    }

    func testFDistributionSurvival() throws {
        let rows = try statisticsFixture("special_functions.json").rows("f")
        XCTAssertGreaterThan(rows.count, 40)
        for row in rows {
            let f = try row.double("f"), d1 = try row.double("d1"), d2 = try row.double("d2")
            assertClose(FDistribution.survival(f, numeratorDegrees: d1, denominatorDegrees: d2), try row.double("sf"),
                        relative: relative, "F f=\(f) d1=\(d1) d2=\(d2)")
        }
    }

    func testNormalQuantiles() throws {
        for row in try statisticsFixture("special_functions.json").rows("normal_quantile") {
            let q = try row.double("q"), z = try row.double("z")
            assertClose(NormalDistribution.upperQuantile(q), z, absolute: 1e-15, relative: relative, "q=\(q)")
        }
    }

    func testIncompleteBetaLogBetaDigamma() throws {
        let json = try statisticsFixture("special_functions.json")
        for row in try json.rows("incomplete_beta") {
            let a = try row.double("a"), b = try row.double("b"), x = try row.double("x")
            let value = SpecialFunctions.incompleteBeta(a: a, b: b, x: x, y: 1 - x)
            assertClose(value.lower, try row.double("value"), relative: relative, "I_x a=\(a) b=\(b) x=\(x)")
            // The complement loses relative accuracy only through 1 − x itself (x is a binary fraction).
            assertClose(value.upper, try row.double("complement"), relative: 1e-9, "1 − I_x a=\(a) b=\(b) x=\(x)")
        }
        for row in try json.rows("log_beta") {
            let a = try row.double("a"), b = try row.double("b")
            assertClose(SpecialFunctions.logBeta(a, b), try row.double("value"), relative: 1e-13, "lnB(\(a), \(b))")
        }
        for row in try json.rows("digamma") {
            let x = try row.double("x")
            assertClose(SpecialFunctions.digamma(x), try row.double("value"), relative: 1e-13, "ψ(\(x))")
        }
    }
}
