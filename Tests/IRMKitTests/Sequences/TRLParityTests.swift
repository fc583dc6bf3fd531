import Foundation
import XCTest
@testable import IRMKit

/// `--convention trl` against TRL 1.16's DPOTrainer: its token ids and its `rewards/chosen` /
/// `rewards/rejected` per pair (Tests/Fixtures/trl, scripts/fixtures/make_trl_fixtures.py).
final class TRLParityTests: XCTestCase {
    struct Expected: Decodable {
        let beta: Double
        let pairs: [Pair]
        let batchMetrics: [String: Double]

        struct Pair: Decodable {
            let id: String
            let promptIds: [Int32]
            let chosenIds: [Int32]
            let rejectedIds: [Int32]
            let rewardsChosen: Double
            let rewardsRejected: Double
        }
    }

    /// The before/after checkpoints of one family, converted once per test.
    struct Family {
        let before: Checkpoint
        let after: Checkpoint
        let directory: URL
    }

    func family(_ name: String) throws -> Family {
        let temporary = try Fixtures.temporaryDirectory(for: self)
        var paths: [String] = []
        for side in ["before", "after"] {
            let out = temporary.appendingPathComponent("\(side).h5").path
            _ = try HuggingFaceImporter.convert(directory: Fixtures.path("trl/\(name)/\(side)"), output: out)
            paths.append(out)
        }
        return Family(before: try Checkpoint.open(path: paths[0]), after: try Checkpoint.open(path: paths[1]),
                      directory: Fixtures.url("trl/\(name)"))
    }

    func expected(_ family: Family, _ format: String) throws -> Expected {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(Expected.self, from: Data(contentsOf: family.directory.appendingPathComponent("expected-\(format).json")))
    }

    func sequences(_ family: Family, _ format: String, convention: ScoringConvention = .trl) throws -> (samples: [Sample], sequences: [ScoringSample]) {
        let path = family.directory.appendingPathComponent("\(format).jsonl").path
        let samples = try SampleFile.read(path: path)
        var options = SequenceOptions()
        options.convention = convention
        let tokenizer = try Tokenizer(json: family.before.tokenizerJSON, sourceDescription: "before")
        let formatting = try ChatFormatting(checkpoint: family.before, date: Date(timeIntervalSince1970: 0))
        let built = try TrainingSequences(tokenizer: tokenizer, formatting: formatting, options: options, source: path).build(samples)
        return (samples, built.sequences)
    }

    /// TRL's token ids exactly, then its rewards within 1e-4 per sample, and its pair accuracy.
    func checkParity(_ name: String, _ format: String) throws {
        let family = try family(name)
        let expected = try expected(family, format)
        let (samples, built) = try sequences(family, format)
        XCTAssertEqual(samples.count, 2 * expected.pairs.count)
        for (k, pair) in expected.pairs.enumerated() {
            let chosen = built[2 * k], rejected = built[2 * k + 1]
            XCTAssertEqual(samples[2 * k].id, pair.id)
            XCTAssertEqual(chosen.promptIDs, pair.promptIds, "\(name) \(format) \(pair.id): prompt ids")
            XCTAssertEqual(chosen.responseIDs, pair.chosenIds, "\(name) \(format) \(pair.id): chosen ids")
            XCTAssertEqual(rejected.promptIDs, pair.promptIds, "\(name) \(format) \(pair.id): prompt ids (rejected)")
            XCTAssertEqual(rejected.responseIDs, pair.rejectedIds, "\(name) \(format) \(pair.id): rejected ids")
        }
        let scorer = LogProbScorer(options: ScoringOptions(threads: 1))
        let comparisons = try scorer.compare(built, after: try ModelLoading.load(checkpoint: family.after),
                                             before: try ModelLoading.load(checkpoint: family.before))
        let rewards = try comparisons.map { try ImplicitReward(after: $0.after.tokens, before: $0.before.tokens, beta: expected.beta).value(.sum) }
        let expectedRewards = expected.pairs.flatMap { [$0.rewardsChosen, $0.rewardsRejected] }
        assertClose(rewards, expectedRewards, absolute: 1e-4, "\(name) \(format): rewards/chosen and rewards/rejected per pair")

        let pairs = AnalysisPipeline.preferencePairs(samples)
        let metrics = try XCTUnwrap(try TrainerRewardMetrics(pairs: pairs, rewards: rewards, beta: expected.beta, bootstrapReplicates: 0, seed: 0))
        for metric in metrics.metrics {
            let reference = try XCTUnwrap(expected.batchMetrics[metric.name], metric.name)
            assertClose(metric.value, reference, absolute: metric.name == "rewards/accuracies" ? 0 : 1e-4, "\(name) \(format): \(metric.name)")
        }
    }

    func testSentencePieceWithBOSStandardFormat() throws { try checkParity("llama", "standard") }
    func testSentencePieceWithBOSConversationalFormat() throws { try checkParity("llama", "conversational") }
    func testByteLevelWithoutBOSStandardFormat() throws { try checkParity("qwen2", "standard") }
    func testByteLevelWithoutBOSConversationalFormat() throws { try checkParity("qwen2", "conversational") }

    /// The old rule (response tokenised alone, no EOS) builds other sequences from the same data:
    /// what the parity above guards against.
    func testTheSeparateConventionDiffersFromTRL() throws {
        let family = try family("llama")
        let expected = try expected(family, "standard")
        let (_, built) = try sequences(family, "standard", convention: .separate)
        let differing = expected.pairs.indices.filter { built[2 * $0].responseIDs != expected.pairs[$0].chosenIds }
        XCTAssertEqual(differing.count, expected.pairs.count, "every chosen response differs at least by TRL's EOS")
        // The response that starts with a space, tokenised alone, begins with "▁▁"; tokenised with its
        // prompt, the space merges with the prompt's last letter ("s▁"), so TRL's response starts one
        // token earlier.
        let space = try XCTUnwrap(expected.pairs.firstIndex { $0.id == "space" })
        let tokenizer = try Tokenizer(json: family.before.tokenizerJSON, sourceDescription: "before")
        XCTAssertEqual(built[2 * space].responseIDs.first.flatMap(tokenizer.tokenString), "▁▁")
        XCTAssertEqual(expected.pairs[space].chosenIds.first.flatMap(tokenizer.tokenString), "s▁")
    }

    // MARK: RewardBench

    struct RewardBenchExpected: Decodable {
        let pairs: [Pair]
        struct Pair: Decodable {
            let id: String
            let error: String?
            let chosenPromptIds: [Int32]?
            let chosenIds: [Int32]?
            let rejectedPromptIds: [Int32]?
            let rejectedIds: [Int32]?
            let chosenLogratio: Double?
            let rejectedLogratio: Double?
        }
    }

    /// `--convention rewardbench` against RewardBench 0.1.4's own `prepare_dialogue_from_tokenizer`,
    /// `tokenize_row` and `inference_step` (scripts/fixtures/make_rewardbench_fixtures.py): its ids,
    /// quirks included (the double BOS, the EOS after the template's `</s>`), and its log-ratios.
    func testRewardBenchConventionMatchesRewardBench() throws {
        let family = try family("llama")
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let scorer = LogProbScorer(options: ScoringOptions(threads: 1))
        let after = try ModelLoading.load(checkpoint: family.after), before = try ModelLoading.load(checkpoint: family.before)
        let tokenizer = try Tokenizer(json: family.before.tokenizerJSON, sourceDescription: "before")
        let formatting = try ChatFormatting(checkpoint: family.before, date: Date(timeIntervalSince1970: 0))
        var options = SequenceOptions()
        options.convention = .rewardbench
        var compared = 0
        for format in ["standard", "conversational"] {
            let expected = try decoder.decode(RewardBenchExpected.self, from: Data(contentsOf: family.directory.appendingPathComponent("expected-rewardbench-\(format).json")))
            let samples = try SampleFile.read(path: family.directory.appendingPathComponent("\(format).jsonl").path)
            for (k, pair) in expected.pairs.enumerated() {
                let builder = TrainingSequences(tokenizer: tokenizer, formatting: formatting, options: options, source: format)
                let group = Array(samples[(2 * k)..<(2 * k + 2)])
                XCTAssertEqual(group[0].id, pair.id)
                if pair.error != nil {
                    XCTAssertThrowsError(try builder.build(group), "\(format) \(pair.id)") {
                        XCTAssertTrue("\($0)".contains("the prompt's last turn to be the user's"), "\($0)")
                    }
                    continue
                }
                let (built, warnings, _) = try builder.build(group)
                XCTAssertEqual(built[0].promptIDs, pair.chosenPromptIds, "\(format) \(pair.id): chosen prompt ids")
                XCTAssertEqual(built[0].responseIDs, pair.chosenIds, "\(format) \(pair.id): chosen ids")
                XCTAssertEqual(built[1].promptIDs, pair.rejectedPromptIds, "\(format) \(pair.id): rejected prompt ids")
                XCTAssertEqual(built[1].responseIDs, pair.rejectedIds, "\(format) \(pair.id): rejected ids")
                if format == "conversational" {
                    XCTAssertTrue(warnings.contains { $0.contains("have two") || $0.contains("has two") }, "\(warnings)")
                }
                let comparisons = try scorer.compare(built, after: after, before: before)
                let ratios = try comparisons.map { try ImplicitReward(after: $0.after.tokens, before: $0.before.tokens, beta: 1).value(.sum) }
                assertClose(ratios, [pair.chosenLogratio ?? .nan, pair.rejectedLogratio ?? .nan], absolute: 1e-4, "\(format) \(pair.id)")
                compared += 1
            }
        }
        XCTAssertEqual(compared, 11, "8 standard pairs and 3 of the 4 conversational ones")
    }
}
