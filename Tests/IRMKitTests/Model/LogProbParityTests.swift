import Foundation
import XCTest
@testable import IRMKit

/// Log-probs, reward scores and KL values against the float64 references that transformers and
/// an independent numpy forward pass agree on (Tests/Fixtures/logprobs, made by
/// scripts/fixtures/make_logprob_fixtures.py).
///
/// Tolerances (docs/scoring.md): per token |Δ| ≤ 1e-4, per-sample sum |Δ| ≤ 1e-3, reward scores
/// |Δ| ≤ 1e-4, per-token KL |Δ| ≤ 1e-4.
final class LogProbParityTests: XCTestCase {
    static let policies = [
        "gpt2", "gpt2-f16", "gpt2-legacy", "neox", "neox-legacy", "neox-sequential", "llama", "llama-bf16",
        "mistral", "qwen2", "qwen2-sharded",
        "sharp-gpt2", "sharp-neox", "sharp-neox-sequential", "sharp-llama", "sharp-mistral", "sharp-qwen2",
        // RoPE scaling (scripts/fixtures/make_rope_fixtures.py).
        "sharp-llama-rope-linear", "sharp-llama-rope-dynamic", "sharp-llama-rope-yarn", "sharp-llama-rope-longrope",
        "sharp-llama-rope-llama3", "sharp-llama-rope-llama3-bf16", "sharp-llama-rope-yarn-f16",
        // dynamic and longrope past their thresholds, per sequence, with prompts shared across them.
        "sharp-llama-rope-dynamic-long", "sharp-llama-rope-longrope-long",
        // Gemma, Gemma 2, Phi-3, OLMo 2 and OPT, stored in f32, f16 and bf16 (scripts/fixtures/make_architecture_fixtures.py).
    ] + ["gemma", "gemma2", "phi3", "olmo2", "opt"].flatMap { ["sharp-\($0)", "sharp-\($0)-f16", "sharp-\($0)-bf16"] }
        + ["sharp-phi3-partial", "sharp-opt-postln"]
    static let rewardModels = ["gpt2-rm", "neox-rm", "llama-rm", "qwen2-rm", "sharp-llama-rope-llama3-rm"]
        + ["gemma", "gemma2", "phi3", "olmo2", "opt"].flatMap { ["sharp-\($0)-rm", "sharp-\($0)-rm-bf16"] } + ["sharp-opt-postln-rm"]

    func checkPolicy(_ name: String) throws {
        let fixture = try LogProbFixture.load(name)
        XCTAssertEqual(fixture.kind, "policy")
        let model = try ModelFixtures.load(fixture.modelDir, for: self)
        // The weights are used in place, at the precision the fixture stores them.
        XCTAssertTrue(model.outputHead.isMapped, "\(name): the head is mapped")
        let results = try LogProbScorer().logProbs(of: fixture.scoringSamples, under: model)
        XCTAssertEqual(results.count, fixture.samples.count)
        for (result, expected) in zip(results, fixture.samples) {
            let expectedTokens = try XCTUnwrap(expected.logprobs)
            assertClose(withMissingAsNaN(result.tokens), withMissingAsNaN(expectedTokens), absolute: 1e-4,
                        "\(name) sample \(expected.id): per-token log-probs")
            assertClose(result.sum, try XCTUnwrap(expected.logprobSum), absolute: 1e-3, "\(name) sample \(expected.id): sum")
            if let mean = expected.logprobMean {
                assertClose(try XCTUnwrap(result.mean), mean, absolute: 1e-4, "\(name) sample \(expected.id): mean")
            } else {
                XCTAssertNil(result.mean, "\(name) sample \(expected.id): no token scored, so no mean")
            }
        }
    }

    func testEveryPolicyMatchesTheFloat64Reference() throws {
        for name in Self.policies { try checkPolicy(name) }
    }

    func testEveryRewardModelMatchesTheFloat64Reference() throws {
        for name in Self.rewardModels {
            let fixture = try LogProbFixture.load(name)
            XCTAssertEqual(fixture.kind, "reward-model")
            let model = try ModelFixtures.load(fixture.modelDir, for: self)
            XCTAssertTrue(model.outputHead.isMapped, "\(name): the head is mapped")
            let scores = try LogProbScorer().rewards(of: fixture.scoringSamples, under: model)
            for (score, expected) in zip(scores, fixture.samples) {
                assertClose(score, try XCTUnwrap(expected.score), absolute: 1e-4, "\(name) sample \(expected.id): reward")
            }
        }
    }

    /// Also for Gemma 2 (KL of the soft-capped distributions), OPT and Phi-3 (kl-architectures.json).
    func testKLAndBothLogProbsMatchTheFloat64Reference() throws {
        let pairs = try KLFixture.load().pairs + KLFixture.load("kl-architectures.json").pairs
        XCTAssertEqual(Set(pairs.map(\.after)).isSuperset(of: ["sharp-gemma2-tuned", "sharp-opt-tuned", "sharp-phi3-bf16"]), true)
        for pair in pairs {
            let after = try ModelFixtures.load(pair.afterDir, for: self)
            let before = try ModelFixtures.load(pair.beforeDir, for: self)
            let samples = pair.samples.map { ScoringSample(name: $0.id, promptIDs: $0.promptIds, responseIDs: $0.responseIds) }
            let results = try LogProbScorer().compare(samples, after: after, before: before)
            let label = "\(pair.after) || \(pair.before)"
            for (result, expected) in zip(results, pair.samples) {
                assertClose(withMissingAsNaN(result.kl), withMissingAsNaN(expected.kl), absolute: 1e-4, "\(label) \(expected.id): KL")
                assertClose(result.klSum, expected.klSum, absolute: 1e-3, "\(label) \(expected.id): KL sum")
                assertClose(withMissingAsNaN(result.after.tokens), withMissingAsNaN(expected.logprobsAfter), absolute: 1e-4, "\(label) \(expected.id): after")
                assertClose(withMissingAsNaN(result.before.tokens), withMissingAsNaN(expected.logprobsBefore), absolute: 1e-4, "\(label) \(expected.id): before")
                XCTAssertTrue(result.kl.allSatisfy { ($0 ?? 0) >= -1e-6 }, "\(label) \(expected.id): KL is never meaningfully negative")
            }
        }
    }

    /// The fixtures cover what the conventions promise: a missing first token without BOS, a
    /// scored first token with Llama's BOS, an empty response, and contexts of about 300 tokens.
    func testFixturesCoverTheConventionEdgeCases() throws {
        let gpt2 = try LogProbFixture.load("gpt2")
        let emptyPrompt = try XCTUnwrap(gpt2.samples.first { $0.id == "empty-prompt" })
        XCTAssertEqual(emptyPrompt.promptIds, [])
        XCTAssertNil(try XCTUnwrap(emptyPrompt.logprobs).first ?? 0)
        let llama = try LogProbFixture.load("llama")
        let withBOS = try XCTUnwrap(llama.samples.first { $0.id == "empty-prompt" })
        XCTAssertEqual(withBOS.promptIds, [1], "the Llama tokenizer's post-processor adds <s>")
        XCTAssertNotNil(try XCTUnwrap(withBOS.logprobs).first ?? nil)
        XCTAssertTrue(gpt2.samples.contains { $0.responseIds.isEmpty })
        XCTAssertGreaterThanOrEqual(gpt2.samples.map { $0.promptIds.count + $0.responseIds.count }.max() ?? 0, 290)
    }
}
