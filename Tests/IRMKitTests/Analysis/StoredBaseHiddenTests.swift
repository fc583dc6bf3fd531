import XCTest
@testable import IRMKit

/// The comparison against a base through the base's stored final hidden states
/// (`PolicyComparison.compareInBlocks`, `LogProbScorer.compare(beforeHidden:)`): the same numbers as
/// running the base's trunk, and a second checkpoint against the same base runs only its own trunk.
final class StoredBaseHiddenTests: XCTestCase {
    func demo(_ name: String) -> String { Fixtures.repositoryPath("checkpoints/demo/\(name).h5") }

    func prepared(_ base: Checkpoint) throws -> PreparedData {
        var options = SequenceOptions()
        options.convention = .separate
        return try PreparedData(dataPath: Fixtures.repositoryPath("checkpoints/demo/prompts.jsonl"), checkpoint: base, sequenceOptions: options,
                                chatTemplatePath: nil, templateDate: Date(timeIntervalSince1970: 0))
    }

    /// The head on stored hidden states gives what running the base's trunk gives, token by token.
    func testStoredHiddenStatesGiveTheSameComparison() throws {
        let base = try LoadedPolicy(checkpoint: try Checkpoint.open(path: demo("base")), adapter: nil)
        let after = try LoadedPolicy(checkpoint: try Checkpoint.open(path: demo("rlhf")), adapter: nil)
        let samples = Array(try prepared(base.checkpoint).sequences.prefix(40))
        let scorer = LogProbScorer()
        let live = try scorer.compare(samples, after: after.model, before: base.model)
        let hidden = try scorer.responseHiddenStates(of: samples, under: base.model)
        XCTAssertEqual(hidden.map(\.count), samples.map { $0.responseIDs.count * base.model.config.finalHiddenSize })
        let stored = try scorer.compare(samples, after: after.model, before: base.model, beforeHidden: hidden)
        for (i, (a, b)) in zip(live, stored).enumerated() {
            XCTAssertEqual(a.after.tokens, b.after.tokens, "sample \(i)")
            for (x, y) in zip(a.before.tokens, b.before.tokens) {
                XCTAssertEqual(x ?? .nan, y ?? .nan, accuracy: 1e-9, "sample \(i) base log-prob")
            }
            for (x, y) in zip(a.kl, b.kl) { XCTAssertEqual(x ?? .nan, y ?? .nan, accuracy: 1e-9, "sample \(i) KL") }
        }
        // States of the wrong shape are refused, not read out of bounds.
        XCTAssertThrowsError(try scorer.compare(samples, after: after.model, before: base.model, beforeHidden: Array(hidden.dropLast()))) {
            XCTAssertTrue("\($0)".contains("cover 39 samples"), "\($0)")
        }
        var short = hidden
        short[3].removeLast()
        XCTAssertThrowsError(try scorer.compare(samples, after: after.model, before: base.model, beforeHidden: short)) {
            XCTAssertTrue("\($0)".contains("sample 3"), "\($0)")
        }
    }

    /// With a store, the second checkpoint compared against the base runs its own trunk only (half
    /// the trunk tokens of the first comparison, which ran the base too), and its results equal a
    /// comparison without a store.
    func testASecondCheckpointDoesNotRerunTheBase() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("irm-stored-hidden-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try StageStore(directory: directory)
        let base = try LoadedPolicy(checkpoint: try Checkpoint.open(path: demo("base")), adapter: nil)
        let first = try LoadedPolicy(checkpoint: try Checkpoint.open(path: demo("rlhf-step-0050")), adapter: nil)
        let second = try LoadedPolicy(checkpoint: try Checkpoint.open(path: demo("rlhf")), adapter: nil)
        let data = try prepared(base.checkpoint)
        let profile = ComputeProfile()
        let scorer = LogProbScorer(options: ScoringOptions(), profile: profile)
        _ = try PolicyComparison(data, after: first, before: base, resizedVocabulary: false, beta: 1, scorer: scorer, store: store)
        let firstTokens = profile.trunkTokens
        XCTAssertGreaterThan(firstTokens, 0)
        let withStore = try PolicyComparison(data, after: second, before: base, resizedVocabulary: false, beta: 1, scorer: scorer, store: store)
        XCTAssertEqual(2 * (profile.trunkTokens - firstTokens), firstTokens, "the second comparison ran the base's trunk again")
        let without = try PolicyComparison(data, after: second, before: base, resizedVocabulary: false, beta: 1, scorer: LogProbScorer(), store: nil)
        XCTAssertEqual(withStore.comparisons.map(\.after.tokens), without.comparisons.map(\.after.tokens))
        XCTAssertEqual(withStore.comparisons.map(\.before.tokens), without.comparisons.map(\.before.tokens))
        XCTAssertEqual(withStore.comparisons.map(\.kl), without.comparisons.map(\.kl))
        // A third run reads everything: no trunk at all.
        let before = profile.trunkTokens
        _ = try PolicyComparison(data, after: second, before: base, resizedVocabulary: false, beta: 1, scorer: scorer, store: store)
        XCTAssertEqual(profile.trunkTokens, before)
    }
}
