import Foundation
import XCTest
@testable import IRMKit

/// Finite weights can still overflow float32 in the forward pass. The scorer used to hand the
/// resulting NaN and infinite log-probs on, and `analyze` then failed with "least squares: the
/// target has a non-finite value", naming neither the checkpoint nor the sample (issue 14, item 4).
/// Now the first non-finite result is an error naming the checkpoint, the sample, the response
/// position and the token id.
final class ScorerOverflowTests: XCTestCase {
    var work: URL!

    override func setUpWithError() throws {
        work = try Fixtures.temporaryDirectory(for: self)
    }

    /// `modelDir` with its final norm's scale at the largest float: every weight is finite, and
    /// the normalised hidden state times that scale overflows to ±infinity.
    func overflowing(_ modelDir: String, finalNorm: String) throws -> String {
        try ModelFixtures.edited(modelDir, in: work, [finalNorm: { values in
            for i in values.indices { values[i] = .greatestFiniteMagnitude }
        }])
    }

    static let overflowNote = "; the forward pass overflowed float32 (weights too large?)"

    func assertOverflow(_ body: @autoclosure () throws -> Any, _ prefix: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            let message = "\(error)"
            XCTAssertTrue(message.hasPrefix(prefix), "expected the prefix \(prefix)\nfound: \(message)", file: file, line: line)
            XCTAssertTrue(message.hasSuffix(Self.overflowNote), message, file: file, line: line)
            XCTAssertFalse(message.contains("-nan"), message, file: file, line: line)
        }
    }

    let samples = [
        ScoringSample(name: "d.jsonl: line 1 (id \"a\")", promptIDs: [5, 6, 7], responseIDs: [8, 9]),
        ScoringSample(name: "d.jsonl: line 2 (id \"b\")", promptIDs: [5, 6, 7], responseIDs: [10, 11, 12]),
    ]

    func testLogProbsOfAnOverflowingModelNameTheCheckpointSampleAndPosition() throws {
        let path = try overflowing("logprobs/models/sharp-neox-sequential", finalNorm: "gpt_neox.final_layer_norm.weight")
        let model = try ModelLoading.load(path: path)
        // The shared prompt's pass predicts both responses' first tokens; sample order decides.
        assertOverflow(try LogProbScorer().logProbs(of: samples, under: model),
                       "\(path): d.jsonl: line 1 (id \"a\"): the log-prob at response position 0 (token id 8) is ")
        assertOverflow(try LogProbScorer(options: ScoringOptions(sharePrompts: false)).logProbs(of: samples, under: model),
                       "\(path): d.jsonl: line 1 (id \"a\"): the log-prob at response position 0 (token id 8) is ")
        assertOverflow(try LogProbScorer().responseHiddenStates(of: samples, under: model),
                       "\(path): d.jsonl: line 1 (id \"a\"): the final hidden state that predicts the token at response position 0 (token id 8) is ")
        assertOverflow(try LogProbScorer().meanPooledHiddenStates(of: samples.map(\.responseIDs), under: model, names: ["first", "second"]),
                       "\(path): first: the final hidden state at position 0 (token id 8) is ")
    }

    /// The after-policy overflows and the before-policy does not: the message names the after's file.
    func testComparisonNamesTheCheckpointThatOverflowed() throws {
        let after = try overflowing("logprobs/models/sharp-neox-sequential", finalNorm: "gpt_neox.final_layer_norm.weight")
        let before = try ModelFixtures.load("logprobs/models/sharp-neox", for: self)
        let overflowingModel = try ModelLoading.load(path: after)
        assertOverflow(try LogProbScorer().compare(samples, after: overflowingModel, before: before),
                       "\(after): d.jsonl: line 1 (id \"a\"): the log-prob at response position 0 (token id 8) is ")
        // With the two swapped, the before-policy's log-prob is the one named.
        assertOverflow(try LogProbScorer().compare(samples, after: before, before: overflowingModel),
                       "\(after): d.jsonl: line 1 (id \"a\"): the log-prob at response position 0 (token id 8) is ")
    }

    func testRewardModelScoreOfAnOverflowingModelIsAnError() throws {
        let path = try overflowing("hf/gpt2-rm", finalNorm: "transformer.ln_f.weight")
        let model = try ModelLoading.load(path: path)
        assertOverflow(try LogProbScorer().rewards(of: samples, under: model), "\(path): d.jsonl: line 1 (id \"a\"): the score is ")
    }

    /// A token with no context stays `nil` ("not scored"), which the check does not mistake for a
    /// non-finite value.
    func testTokensWithNoContextStayNil() throws {
        let model = try ModelFixtures.load("logprobs/models/sharp-neox", for: self)
        let result = try LogProbScorer().logProbs(of: [ScoringSample(name: "s", promptIDs: [], responseIDs: [3, 4, 5])], under: model)
        XCTAssertNil(result[0].tokens[0])
        XCTAssertTrue(result[0].tokens.dropFirst().allSatisfy { $0?.isFinite ?? false }, "\(result[0].tokens)")
    }

    // MARK: The analysis

    func analysisOptions(after: String) throws -> AnalysisOptions {
        var options = AnalysisOptions(beforePath: try ModelFixtures.checkpointPath("logprobs/models/sharp-neox", for: self), afterPath: after,
                                      dataPath: Fixtures.path("analysis/pairs.jsonl"))
        options.reward = .none
        options.beta = 0.5
        options.bootstrapReplicates = 0
        options.featuresPath = try Fixtures.oneFeatureFile(for: self)
        return options
    }

    func testAnalyzeOfAnOverflowingPolicyNamesTheCheckpointNotLeastSquares() throws {
        let after = try overflowing("logprobs/models/sharp-neox-sequential", finalNorm: "gpt_neox.final_layer_norm.weight")
        XCTAssertThrowsError(try AnalysisPipeline.run(try analysisOptions(after: after))) { error in
            let message = "\(error)"
            XCTAssertTrue(message.hasPrefix("\(after): \(Fixtures.path("analysis/pairs.jsonl")): line 1 (id \"q000\", chosen): the log-prob at response position 0 (token id "),
                          message)
            XCTAssertFalse(message.contains("least squares"), message)
        }
    }

    /// Finite log-probs and a β so large that β·Δ overflows float64: the implicit reward is named,
    /// with both checkpoints and the sample, before any fit sees it.
    func testAnImplicitRewardThatOverflowsNamesThePairAndTheSample() throws {
        let after = try ModelFixtures.checkpointPath("logprobs/models/sharp-neox-sequential", for: self)
        var options = try analysisOptions(after: after)
        options.beta = .greatestFiniteMagnitude
        XCTAssertThrowsError(try AnalysisPipeline.run(options)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.hasPrefix("\(Fixtures.path("analysis/pairs.jsonl")): line 1 (id \"q000\", chosen): the implicit reward of \(after) against \(options.beforePath) at response position "),
                          message)
            XCTAssertTrue(message.hasSuffix("; expected a finite number: β is too large"), message)
        }
    }

    /// What the guard says when a log-prob read back from a score store is infinite.
    func testImplicitRewardGuardNamesAnInfiniteStoredLogProb() throws {
        let comparison = ResponseComparison(after: ResponseLogProbs(tokens: [-1, -.infinity]), before: ResponseLogProbs(tokens: [-2, -3]), kl: [0, 0])
        let reward = try ImplicitReward(after: comparison.after.tokens, before: comparison.before.tokens, beta: 1)
        let sequence = ScoringSample(name: "d.jsonl: line 4 (id \"x\")", promptIDs: [1], responseIDs: [2, 3])
        XCTAssertThrowsError(try PolicyComparison.requireFinite([reward], [comparison], [sequence], after: "a.h5", before: "b.h5")) { error in
            XCTAssertEqual("\(error)", "d.jsonl: line 4 (id \"x\"): the implicit reward of a.h5 against b.h5 at response position 1 is -inf (β = 1.0, log π_after = -inf, log π_before = -3.0); expected a finite number: the log-probs are not finite (read from a score store?)")
        }
        let finite = try ImplicitReward(after: [-1, nil], before: [-2, nil], beta: 1)
        XCTAssertNoThrow(try PolicyComparison.requireFinite([finite], [comparison], [sequence], after: "a.h5", before: "b.h5"))
    }

    /// `irm score` on the overflowing model: one line, exit status 1, no output file.
    func testScoreCommandPrintsOneLine() throws {
        let path = try overflowing("logprobs/models/sharp-neox-sequential", finalNorm: "gpt_neox.final_layer_norm.weight")
        let data = work.appendingPathComponent("d.jsonl")
        try Data(#"{"id": "first", "prompt": "hello there", "response": " good day to you"}"#.utf8).write(to: data)
        let out = work.appendingPathComponent("s.jsonl")
        let result = try CommandRunner.run(["score", "--model", path, "--data", data.path, "--out", out.path])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.hasPrefix("irm: error: \(path): \(data.path): line 1 (id \"first\"): the log-prob at response position 0 (token id "), result.stderr)
        XCTAssertTrue(result.stderr.hasSuffix(Self.overflowNote + "\n"), result.stderr)
        XCTAssertEqual(result.stderr.filter { $0 == "\n" }.count, 1, result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
    }
}
