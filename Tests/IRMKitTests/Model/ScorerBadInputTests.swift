import Foundation
import XCTest
@testable import IRMKit

/// Bad input gives an error that names the sample and says what was expected; nothing crashes and
/// nothing comes out as NaN.
final class ScorerBadInputTests: XCTestCase {
    func testTokenIDsOutsideTheVocabulary() throws {
        let model = try ModelFixtures.load("hf/gpt2", for: self)
        for (prompt, response, fragment) in [([1, 320] as [Int32], [2] as [Int32], "token id 320 at prompt position 1"),
                                             ([1], [5, -1], "token id -1 at response position 1")] {
            let sample = ScoringSample(name: "line 4 (id \"q\")", promptIDs: prompt, responseIDs: response)
            XCTAssertThrowsError(try LogProbScorer().logProbs(of: [sample], under: model)) { error in
                XCTAssertTrue("\(error)".contains("line 4 (id \"q\"): \(fragment) is outside the model's vocabulary (ids 0..<320)"), "\(error)")
            }
        }
        // NeoX's output vocabulary is padded to 336 rows; ids up to 335 have embeddings and are fine.
        let neox = try ModelFixtures.load("hf/neox", for: self)
        let result = try LogProbScorer().logProbs(of: [ScoringSample(name: "s", promptIDs: [335], responseIDs: [330])], under: neox)
        XCTAssertTrue(result[0].tokens[0].map { $0.isFinite && $0 < 0 } ?? false)
    }

    func testSequencesLongerThanTheContext() throws {
        let model = try ModelFixtures.load("hf/qwen2", for: self)
        let sample = ScoringSample(name: "line 9 (id \"long\")", promptIDs: Array(repeating: 5, count: 500), responseIDs: Array(repeating: 6, count: 20))
        XCTAssertThrowsError(try LogProbScorer().logProbs(of: [sample], under: model)) { error in
            XCTAssertEqual("\(error)", "line 9 (id \"long\"): prompt + response is 520 tokens (500 + 20), 8 more than the model's context of 512 positions")
        }
    }

    func testCheckpointKindsThatDoNotFitTheRequest() throws {
        let rewardModel = try ModelFixtures.load("hf/gpt2-rm", for: self)
        let policy = try ModelFixtures.load("hf/gpt2", for: self)
        let sample = ScoringSample(name: "s", promptIDs: [1, 2], responseIDs: [3])
        XCTAssertThrowsError(try LogProbScorer().logProbs(of: [sample], under: rewardModel)) {
            XCTAssertTrue("\($0)".contains("is a reward model (sequence classifier), not a policy"), "\($0)")
        }
        XCTAssertThrowsError(try LogProbScorer().compare([sample], after: policy, before: rewardModel)) {
            XCTAssertTrue("\($0)".contains("the \"before\" model is a reward model"), "\($0)")
        }
        XCTAssertThrowsError(try LogProbScorer().rewards(of: [sample], under: policy)) {
            XCTAssertTrue("\($0)".contains("not a reward model"), "\($0)")
        }
        let llama = try ModelFixtures.load("hf/llama", for: self)
        XCTAssertThrowsError(try LogProbScorer().compare([sample], after: llama, before: policy)) {
            XCTAssertTrue("\($0)".contains("different vocabularies"), "\($0)")
        }
        XCTAssertThrowsError(try LogProbScorer().rewards(of: [ScoringSample(name: "empty", promptIDs: [], responseIDs: [])], under: rewardModel)) {
            XCTAssertTrue("\($0)".contains("empty: prompt and response are both empty"), "\($0)")
        }
    }

    func testEdgeCasesScoreWithoutNaN() throws {
        let model = try ModelFixtures.load("logprobs/models/sharp-gpt2", for: self)
        let samples = [
            ScoringSample(name: "nothing", promptIDs: [], responseIDs: []),
            ScoringSample(name: "one token, no context", promptIDs: [], responseIDs: [7]),
            ScoringSample(name: "prompt only", promptIDs: [1, 2, 3], responseIDs: []),
            ScoringSample(name: "full context", promptIDs: [], responseIDs: Array(repeating: 300, count: 512)),
        ]
        let results = try LogProbScorer().logProbs(of: samples, under: model)
        XCTAssertEqual(results[0], ResponseLogProbs(tokens: []))
        XCTAssertEqual(results[1].tokens, [nil])
        XCTAssertNil(results[1].mean)
        XCTAssertEqual(results[1].sum, 0)
        XCTAssertEqual(results[2].tokens, [])
        XCTAssertEqual(results[3].scoredCount, 511)
        XCTAssertTrue(results[3].tokens.dropFirst().allSatisfy { $0.map { $0.isFinite && $0 <= 0 } ?? false })
    }

    func testPackedBatchRejectsWhatTheModelCannotRun() throws {
        let config = try ModelFixtures.load("hf/gpt2", for: self).config
        XCTAssertThrowsError(try PackedBatch(segments: [ForwardSegment(tokens: [1, 999], outputRows: [0])], config: config)) {
            XCTAssertTrue("\($0)".contains("token id 999 is outside the vocabulary"), "\($0)")
        }
        XCTAssertThrowsError(try PackedBatch(segments: [ForwardSegment(tokens: [1, 2], outputRows: [2])], config: config)) {
            XCTAssertTrue("\($0)".contains("output row 2 is outside its 2 tokens"), "\($0)")
        }
        XCTAssertThrowsError(try PackedBatch(segments: [ForwardSegment(tokens: Array(repeating: 1, count: 513), outputRows: [])], config: config)) {
            XCTAssertTrue("\($0)".contains("513 positions exceed the model's context of 512"), "\($0)")
        }
    }

    func testLoadingReportsMissingAndMisshapedTensors() throws {
        let checkpoint = try Checkpoint.open(path: ModelFixtures.checkpointPath("hf/llama", for: self))
        var tensors = try checkpoint.loadAllTensors()
        tensors["model.layers.1.mlp.up_proj.weight"] = nil
        var weights = CheckpointWeights(tensors: tensors, source: "llama.h5")
        XCTAssertThrowsError(try ModelLoading.build(config: checkpoint.config, kind: .policy, weights: &weights)) {
            XCTAssertEqual("\($0)", "llama.h5: /tensors/model.layers.1.mlp.up_proj.weight: missing tensor (expected shape [64, 32])")
        }
        tensors = try checkpoint.loadAllTensors()
        let norm = try XCTUnwrap(tensors["model.norm.weight"])
        tensors["model.norm.weight"] = CheckpointTensor(name: norm.name, shape: [31], values: Array(norm.values.prefix(31)))
        weights = CheckpointWeights(tensors: tensors, source: "llama.h5")
        XCTAssertThrowsError(try ModelLoading.build(config: checkpoint.config, kind: .policy, weights: &weights)) {
            XCTAssertEqual("\($0)", "llama.h5: /tensors/model.norm.weight: expected shape [32], found [31]")
        }
    }
}
