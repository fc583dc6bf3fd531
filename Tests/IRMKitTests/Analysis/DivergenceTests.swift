import Foundation
import XCTest
@testable import IRMKit

final class ImplicitRewardTests: XCTestCase {
    func testSumMeanAndPerTokenByHand() throws {
        // β = 0.5; log-ratios 0.2 − (−0.4) = 0.6 → 0.3, −1.0 − (−0.5) = −0.5 → −0.25, missing, 0 → 0.
        let reward = try ImplicitReward(after: [0.2, -1.0, nil, -2.0], before: [-0.4, -0.5, -3.0, -2.0], beta: 0.5)
        XCTAssertEqual(reward.perToken.count, 4)
        assertClose(reward.perToken[0] ?? .nan, 0.3, absolute: 1e-15)
        assertClose(reward.perToken[1] ?? .nan, -0.25, absolute: 1e-15)
        XCTAssertNil(reward.perToken[2])
        XCTAssertEqual(reward.scoredTokenCount, 3)
        assertClose(reward.sum, 0.05, absolute: 1e-15)
        assertClose(reward.mean ?? .nan, 0.05 / 3, absolute: 1e-15)
        XCTAssertEqual(reward.value(.sum), reward.sum)
    }

    func testEmptyResponseAndBadInput() throws {
        let empty = try ImplicitReward(after: [], before: [], beta: 1)
        XCTAssertEqual(empty.sum, 0)
        XCTAssertNil(empty.mean)
        XCTAssertEqual(empty.value(.mean), 0)
        XCTAssertThrowsError(try ImplicitReward(after: [0], before: [], beta: 1))
        XCTAssertThrowsError(try ImplicitReward(after: [0], before: [0], beta: 0)) { error in
            XCTAssertTrue("\(error)".contains("β must be a positive number"), "\(error)")
        }
    }
}

final class DivergenceTests: XCTestCase {
    /// The implicit reward follows feature a, the RM follows feature b: the gap must say so.
    func syntheticInputs(n: Int = 400) throws -> Divergence.Inputs {
        var rng = SeededRandom(seed: 7)
        func normal() -> Double {
            let u = max(Double.random(in: 0..<1, using: &rng), 1e-300), v = Double.random(in: 0..<1, using: &rng)
            return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
        }
        var a: [Double] = [], b: [Double] = [], c: [Double] = [], implicit: [Double] = [], rm: [Double] = [], tokens: [Int] = []
        for _ in 0..<n {
            let x = normal(), y = normal(), z = normal()
            a.append(x); b.append(y); c.append(z)
            implicit.append(2 * x + 0.5 * z + 0.3 * normal())
            rm.append(2 * y + 0.5 * z + 0.3 * normal())
            tokens.append(Int.random(in: 1...100, using: &rng))
        }
        let pairs = stride(from: 0, to: n - 1, by: 2).map { Divergence.Pair(chosen: $0, rejected: $0 + 1) }
        return Divergence.Inputs(implicitReward: implicit, rewardModel: rm, gold: rm.map { $0 + 0.1 }, pairs: pairs,
                                 features: try FeatureMatrix(names: ["a", "b", "c"], columns: [a, b, c]),
                                 responseTokens: tokens, bootstrapReplicates: 200, seed: 3, topK: 5)
    }

    func testGapsNameWhatEachRewardFollows() throws {
        let d = try Divergence(try syntheticInputs())
        let gaps = Dictionary(uniqueKeysWithValues: d.coefficientGaps.map { ($0.feature, $0) })
        let a = try XCTUnwrap(gaps["a"]), b = try XCTUnwrap(gaps["b"]), c = try XCTUnwrap(gaps["c"])
        XCTAssertGreaterThan(a.confidenceLower, 0.5, "the policy learned a, which the RM does not reward")
        XCTAssertLessThan(b.confidenceUpper, -0.5, "the RM rewards b, which the policy did not learn")
        XCTAssertLessThan(abs(c.gap), 0.1)
        XCTAssertTrue(c.confidenceLower < 0 && c.confidenceUpper > 0, "both reward c equally")
        // The gap from the difference regression equals the difference of the separate standardised fits.
        for gap in d.coefficientGaps {
            assertClose(gap.gap, gap.implicitCoefficient - gap.rewardModelCoefficient, absolute: 1e-10, "\(gap.feature)")
        }
        // Standardised vectors ≈ (0.97, 0, 0.24) and (0, 0.97, 0.24): cosine ≈ 0.06.
        XCTAssertLessThan(abs((d.coefficientCosine ?? 1) - 0.06), 0.05)
        let pearson = try XCTUnwrap(d.implicitVersusRewardModel.pearson.value)
        XCTAssertLessThan(pearson.value, 0.2)
        XCTAssertNotNil(pearson.interval)
        XCTAssertEqual(d.topDisagreements.count, 5)
        let diffs = d.topDisagreements.map { abs($0.difference) }
        XCTAssertEqual(diffs, diffs.sorted(by: >))
        // Gold is the RM plus a constant: the RM agrees with it perfectly.
        XCTAssertEqual(try XCTUnwrap(d.rewardModelVersusGold?.spearman.value).value, 1, accuracy: 1e-12)
    }

    func testPairAccuracyAndAgreementByHand() throws {
        var inputs = try syntheticInputs(n: 6)
        inputs.implicitReward = [3, 1, 0, 2, 5, 5]   // pairs: (0,1) right, (2,3) wrong, (4,5) tie → wrong
        inputs.rewardModel = [1, 0, 4, 3, 1, 2]      // (0,1) right, (2,3) right, (4,5) wrong
        inputs.gold = nil
        let d = try Divergence(inputs)
        let implicit = try XCTUnwrap(d.implicitPairAccuracy?.value)
        XCTAssertEqual(implicit.correct, 1)
        XCTAssertEqual(implicit.total, 3)
        XCTAssertEqual(try XCTUnwrap(d.rewardModelPairAccuracy?.value).correct, 2)
        // Margins: implicit (2, −2, 0), RM (1, 1, −1): agree on the first only; the tie disagrees.
        XCTAssertEqual(try XCTUnwrap(d.pairAgreement?.value).agreeing, 1)
        XCTAssertNil(d.goldPairAccuracy)
        XCTAssertNil(d.implicitVersusGold)
    }

    func testLengthControlByHand() throws {
        var inputs = try syntheticInputs(n: 6)
        inputs.responseTokens = [5, 15, 25, 35, 45, 21]  // buckets 0-19: {0,1}; 20-39: {2,3,5}; 40-59: {4}
        let d = try Divergence(inputs)
        XCTAssertEqual(d.lengthControl.buckets.map(\.count), [2, 3, 1])
        XCTAssertEqual(d.lengthControl.buckets.map(\.lowerTokens), [0, 20, 40])
        XCTAssertEqual(d.lengthControl.buckets.map(\.upperTokens), [19, 39, 59])
        // η² of a bucketed score: between-bucket / total sum of squares, computed here directly.
        let z = try XCTUnwrap(ColumnMoments.zScores(inputs.implicitReward))
        let groups = [[0, 1], [2, 3, 5], [4]]
        let between = groups.reduce(0.0) { acc, g in
            let m = g.reduce(0.0) { $0 + z[$1] } / Double(g.count)
            return acc + Double(g.count) * m * m
        }
        let total = z.reduce(0) { $0 + $1 * $1 }
        assertClose(d.lengthControl.implicitVarianceExplainedByLength, between / total, absolute: 1e-12)
    }

    func testMismatchedInputsAreRejected() throws {
        var inputs = try syntheticInputs(n: 10)
        inputs.rewardModel.removeLast()
        XCTAssertThrowsError(try Divergence(inputs)) { XCTAssertTrue("\($0)".contains("same 10 samples"), "\($0)") }
        inputs = try syntheticInputs(n: 10)
        inputs.pairs.append(.init(chosen: 0, rejected: 10))
        XCTAssertThrowsError(try Divergence(inputs)) { XCTAssertTrue("\($0)".contains("outside 0..<10"), "\($0)") }
    }
}
