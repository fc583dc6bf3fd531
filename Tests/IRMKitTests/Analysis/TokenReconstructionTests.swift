import Foundation
import XCTest
@testable import IRMKit

final class TokenReconstructionTests: XCTestCase {
    func testClosedFormByHand() throws {
        // Tokens 1,1,2,3 with rewards 1,3,−2,0.5; K = 2 keeps token 1 (n 2, S 4) and token 2 (n 1,
        // S −2; it beats token 3 on id). λ = 1:
        // N = 4, R = 1 + 3 − 2 + 0.5 = 2.5;
        // b₀ = (2.5 − (2·4/3 + 1·(−2)/2)) / (4 − (4/3 + 1/2)) = (5/6)/(13/6) = 5/13;
        // b₁ = (4 − 2·5/13)/3 = 14/13;  b₂ = (−2 − 5/13)/2 = −31/26.
        let r = try TokenReconstruction(responses: [(ids: [1, 1, 2, 3], rewards: [1, 3, -2, 0.5])], decode: { "t\($0)" },
                                        topK: 2, minimumCount: 1, lambda: 1)
        assertClose(r.intercept, 5.0 / 13.0, absolute: 1e-15)
        XCTAssertEqual(r.effects.map(\.tokenID), [1, 2])
        assertClose(r.effects[0].coefficient, 14.0 / 13.0, absolute: 1e-15)
        assertClose(r.effects[1].coefficient, -31.0 / 26.0, absolute: 1e-15)
        XCTAssertEqual(r.effects[0].meanReward, 2)
        XCTAssertEqual(r.pushedUp(1).first?.text, "t1")
        XCTAssertEqual(r.pushedDown(1).first?.text, "t2")
        XCTAssertEqual(r.scoredTokenCount, 4)
    }

    /// The closed form equals ridge solved from its normal equations with an unpenalised intercept.
    func testMatchesNormalEquations() throws {
        var rng = SeededRandom(seed: 11)
        var ids: [Int32] = [], rewards: [Double?] = []
        for _ in 0..<300 {
            let id = Int32.random(in: 0..<12, using: &rng)
            ids.append(id)
            rewards.append(Double(id % 4) - 1.5 + Double.random(in: -1...1, using: &rng))
        }
        rewards[5] = nil
        let lambda = 2.5
        let r = try TokenReconstruction(responses: [(ids: ids, rewards: rewards)], decode: { "\($0)" }, topK: 8, minimumCount: 1, lambda: lambda)
        let kept = r.effects.map(\.tokenID)
        let p = kept.count + 1
        var a = [[Double]](repeating: [Double](repeating: 0, count: p + 1), count: p)  // augmented [XᵀX + Λ | Xᵀy]
        for (id, reward) in zip(ids, rewards) {
            guard let reward else { continue }
            var x = [Double](repeating: 0, count: p)
            x[0] = 1
            if let k = kept.firstIndex(of: id) { x[k + 1] = 1 }
            for i in 0..<p {
                for j in 0..<p { a[i][j] += x[i] * x[j] }
                a[i][p] += x[i] * reward
            }
        }
        for k in 1..<p { a[k][k] += lambda }
        for col in 0..<p {  // Gauss-Jordan; the matrix is positive definite
            let pivot = a[col][col]
            for j in col...p { a[col][j] /= pivot }
            for row in 0..<p where row != col {
                let f = a[row][col]
                for j in col...p { a[row][j] -= f * a[col][j] }
            }
        }
        assertClose(r.intercept, a[0][p], absolute: 1e-12)
        assertClose(r.effects.map(\.coefficient), (1..<p).map { a[$0][p] }, absolute: 1e-12)
    }

    func testLexiconRecoveryByHand() throws {
        let effects: [TokenReconstruction.TokenEffect] = [
            .init(tokenID: 1, text: "Ġgood", count: 9, meanReward: 0.5, coefficient: 0.5),
            .init(tokenID: 2, text: "▁bad", count: 7, meanReward: -0.7, coefficient: -0.7),
            .init(tokenID: 3, text: " Great ", count: 5, meanReward: 0.9, coefficient: 0.9),
            .init(tokenID: 4, text: "great", count: 2, meanReward: -0.2, coefficient: -0.2),  // less frequent form: ignored
            .init(tokenID: 5, text: "Ġthe", count: 50, meanReward: 0.0, coefficient: 0.01),
        ]
        let lexicon = ["good": 1.9, "bad": -2.5, "great": 3.1]
        let recovery = try LexiconRecovery(effects: effects, lexicon: { lexicon[$0] })
        XCTAssertEqual(recovery.matches.map(\.word), ["bad", "good", "great"])
        XCTAssertEqual(try XCTUnwrap(recovery.kendall.value).value, 1, accuracy: 1e-12)
        XCTAssertEqual(recovery.signAgreement, 1)
        // Rescaling −0.7…0.9 onto −2.5…3.1: great → 3.1 (recovered); good → −2.5 + 1.2/1.6·5.6 = 1.7.
        assertClose(recovery.matches[1].rescaled, 1.7, absolute: 1e-12)
        XCTAssertEqual(recovery.strongPositiveCount, 1)
        XCTAssertEqual(recovery.recoveredShare, 1)
        XCTAssertEqual(recovery.badlyWrongShare, 0)
    }

    func testBadInput() {
        XCTAssertThrowsError(try TokenReconstruction(responses: [(ids: [1, 2], rewards: [0])], decode: { "\($0)" })) { error in
            XCTAssertTrue("\(error)".contains("2 tokens but 1 rewards"), "\(error)")
        }
        XCTAssertThrowsError(try TokenReconstruction(responses: [], decode: { "\($0)" }, lambda: -1))
    }
}
