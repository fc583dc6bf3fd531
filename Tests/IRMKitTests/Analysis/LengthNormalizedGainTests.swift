import XCTest
@testable import IRMKit

/// Singhal et al.'s NRG on a hand-computed example.
final class LengthNormalizedGainTests: XCTestCase {
    func testHandComputedExample() throws {
        // Bucket 0-19: before 1 and 3, after 4. Bucket 20-39: after only (10, 6). Bucket 40-59:
        // before 2, after 5. One response of neither policy (100) is left out.
        let gain = try LengthNormalizedGain(score: "implicit_reward",
                                            scores: [1, 3, 4, 10, 6, 2, 5, 100],
                                            tokens: [5, 10, 15, 25, 30, 45, 50, 10],
                                            isAfter: [false, false, true, true, true, false, true, nil])
        // ΔR = (4 + 10 + 6 + 5)/4 − (1 + 3 + 2)/3 = 6.25 − 2.
        assertClose(gain.rawGain, 4.25, relative: 1e-15)
        // NRG = (3·(4 − 2) + 2·(5 − 2)) / (3 + 2).
        assertClose(try XCTUnwrap(gain.normalizedGain), 2.4, relative: 1e-15)
        assertClose(try XCTUnwrap(gain.ratio), 2.4 / 4.25, relative: 1e-15)
        XCTAssertEqual(gain.unmatchedCount, 2)
        XCTAssertEqual(gain.buckets.map(\.lowerTokens), [0, 20, 40])
        XCTAssertEqual(gain.buckets[1].beforeMean, nil)
        XCTAssertEqual(gain.buckets[1].afterMean, 8)
    }

    func testNoSharedBucketAndBadInput() throws {
        let apart = try LengthNormalizedGain(score: "s", scores: [1, 2], tokens: [1, 50], isAfter: [false, true])
        XCTAssertEqual(apart.rawGain, 1)
        XCTAssertNil(apart.normalizedGain)
        XCTAssertNil(apart.ratio)
        XCTAssertThrowsError(try LengthNormalizedGain(score: "s", scores: [1, 2], tokens: [1, 2], isAfter: [true, true])) { error in
            XCTAssertTrue("\(error)".contains("both policies"))
        }
        XCTAssertThrowsError(try LengthNormalizedGain(score: "s", scores: [1], tokens: [1, 2], isAfter: [true, false]))
    }
}
