import Foundation
import XCTest
@testable import IRMKit

/// A sample's scores do not depend on what it is scored with: alone, packed with others, continuing
/// a shared prompt's cached keys and values, split across batches, or with any head chunk size.
///
/// irm's own kernels (attention, norms, activations, log-softmax) give every row the same
/// arithmetic wherever it sits, and CausalAttentionTests checks that bit for bit. OpenBLAS's sgemm
/// does not: it rounds a row differently depending on which micro-tile of the call the row falls
/// in (and on the thread count), so scores differ across batchings by float32 rounding. Stated
/// tolerance: per token |Δ| ≤ 2e-5 (measured up to 9e-6 on the sharp fixtures), per-sample sum
/// |Δ| ≤ 1e-4, rewards and KL |Δ| ≤ 2e-5. The same input with the same options and thread count
/// gives bit-identical results (`testRepeatedRunsAreBitIdentical`).
final class BatchInvarianceTests: XCTestCase {
    /// The fixture samples but the three longest (to keep debug-build test time down), plus a second
    /// response for every prompt so that every prompt is shared.
    func samplesWithSharedPrompts(_ fixture: LogProbFixture) -> [ScoringSample] {
        let base = fixture.scoringSamples.filter { !$0.name.contains("long-") }
        var samples = base
        for (i, sample) in base.enumerated() {
            let other = base[(i + 3) % base.count]
            samples.append(ScoringSample(name: sample.name + " (second response)", promptIDs: sample.promptIDs,
                                         responseIDs: Array(other.responseIDs.prefix(40))))
        }
        return samples
    }

    static let configurations: [(String, ScoringOptions)] = [
        ("unshared, one batch", ScoringOptions(tokensPerBatch: 100_000, sharePrompts: false)),
        ("shared, one batch", ScoringOptions(tokensPerBatch: 100_000, sharePrompts: true)),
        ("shared, small batches, head in chunks of 7", ScoringOptions(tokensPerBatch: 64, sharePrompts: true, headRows: 7)),
    ]

    func testLogProbsAreIdenticalAloneBatchedAndWithSharedPrompts() throws {
        for name in ["sharp-gpt2", "sharp-llama", "sharp-mistral"] {
            let fixture = try LogProbFixture.load(name)
            let model = try ModelFixtures.load(fixture.modelDir, for: self)
            let samples = samplesWithSharedPrompts(fixture)
            let alone = try samples.map { try LogProbScorer().logProbs(of: [$0], under: model)[0] }
            for (label, options) in Self.configurations {
                let batched = try LogProbScorer(options: options).logProbs(of: samples, under: model)
                for (i, (a, b)) in zip(alone, batched).enumerated() {
                    let context = "\(name), \(label): \(samples[i].name) against the sample scored alone"
                    assertClose(withMissingAsNaN(b.tokens), withMissingAsNaN(a.tokens), absolute: 2e-5, context)
                    assertClose(b.sum, a.sum, absolute: 1e-4, context)
                }
            }
        }
    }

    func testRewardsAreIdenticalAloneBatchedAndWithSharedPrompts() throws {
        for name in ["gpt2-rm", "qwen2-rm"] {
            let fixture = try LogProbFixture.load(name)
            let model = try ModelFixtures.load(fixture.modelDir, for: self)
            let samples = samplesWithSharedPrompts(fixture)
            let alone = try samples.map { try LogProbScorer().rewards(of: [$0], under: model)[0] }
            for (label, options) in Self.configurations {
                let batched = try LogProbScorer(options: options).rewards(of: samples, under: model)
                assertClose(batched.flatMap { $0 }, alone.flatMap { $0 }, absolute: 2e-5, "\(name), \(label)")
            }
        }
    }

    func testKLIsIdenticalAloneAndBatched() throws {
        let fixture = try LogProbFixture.load("sharp-neox")
        let after = try ModelFixtures.load("logprobs/models/sharp-neox-sequential", for: self)
        let before = try ModelFixtures.load(fixture.modelDir, for: self)
        let samples = samplesWithSharedPrompts(fixture)
        let alone = try samples.map { try LogProbScorer().compare([$0], after: after, before: before)[0] }
        for (label, options) in Self.configurations {
            let batched = try LogProbScorer(options: options).compare(samples, after: after, before: before)
            for (a, b) in zip(alone, batched) {
                assertClose(withMissingAsNaN(b.kl), withMissingAsNaN(a.kl), absolute: 2e-5, label)
                assertClose(withMissingAsNaN(b.after.tokens), withMissingAsNaN(a.after.tokens), absolute: 2e-5, label)
                assertClose(withMissingAsNaN(b.before.tokens), withMissingAsNaN(a.before.tokens), absolute: 2e-5, label)
            }
        }
    }

    func testRepeatedRunsAreBitIdentical() throws {
        let fixture = try LogProbFixture.load("sharp-llama")
        let model = try ModelFixtures.load(fixture.modelDir, for: self)
        let samples = samplesWithSharedPrompts(fixture)
        let options = Self.configurations[2].1
        let first = try LogProbScorer(options: options).logProbs(of: samples, under: model)
        let second = try LogProbScorer(options: options).logProbs(of: samples, under: model)
        XCTAssertEqual(first, second)
    }

    /// Responses that share a prompt really do share its pass: the plan runs each prompt once.
    func testSharedPromptsRunOncePerPlan() {
        let prompt: [Int32] = [5, 6, 7]
        let samples = (0..<4).map { ScoringSample(name: "s\($0)", promptIDs: prompt, responseIDs: [Int32(10 + $0), 11]) }
        let plan = ScoringPlan(samples: samples, options: ScoringOptions(), target: .nextToken)
        XCTAssertEqual(plan.batches.count, 1)
        XCTAssertEqual(plan.batches[0].promptSegments.map(\.segment.tokens), [prompt])
        XCTAssertEqual(plan.batches[0].mainSegments.count, 4)
        XCTAssertEqual(plan.batches[0].tokenCount, 3 + 4 * 2)
        let unshared = ScoringPlan(samples: samples, options: ScoringOptions(sharePrompts: false), target: .nextToken)
        XCTAssertEqual(unshared.batches[0].promptSegments.count, 0)
        XCTAssertEqual(unshared.batches[0].tokenCount, 4 * 5)
    }
}
