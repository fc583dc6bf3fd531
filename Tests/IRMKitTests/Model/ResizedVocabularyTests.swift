import Foundation
import XCTest
@testable import IRMKit

/// A tuned policy with an added token (embeddings resized to 380 rows) against its 379-row base:
/// each model's own log-probs, the KL over the shared rows renormalised, and the after-policy's
/// mass on the added row, against float64 transformers (scripts/fixtures/make_resized_vocab_fixture.py).
final class ResizedVocabularyTests: XCTestCase {
    struct Fixture: Decodable {
        let afterDir: String
        let beforeDir: String
        let sharedRows: Int
        let samples: [Sample]
        struct Sample: Decodable {
            let id: String
            let promptIds: [Int32]
            let responseIds: [Int32]
            let logprobsAfter: [Double?]
            let logprobsBefore: [Double?]
            let klShared: [Double?]
            let addedRowMass: [Double?]
        }
    }

    func fixture() throws -> Fixture {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(Fixture.self, from: Data(contentsOf: Fixtures.url("logprobs/kl-resized.json")))
    }

    func testLogProbsKLAndAddedMassMatchTransformers() throws {
        let f = try fixture()
        let after = try ModelFixtures.load(f.afterDir, for: self), before = try ModelFixtures.load(f.beforeDir, for: self)
        XCTAssertEqual(after.outputWidth, f.sharedRows + 1)
        let samples = f.samples.map { ScoringSample(name: $0.id, promptIDs: $0.promptIds, responseIDs: $0.responseIds) }
        XCTAssertThrowsError(try LogProbScorer().compare(samples, after: after, before: before)) {
            XCTAssertTrue("\($0)".contains("different vocabularies"), "without the caller's word that only tokens were added: \($0)")
        }
        let results = try LogProbScorer().compare(samples, after: after, before: before, resizedVocabulary: true)
        for (result, expected) in zip(results, f.samples) {
            assertClose(withMissingAsNaN(result.after.tokens), withMissingAsNaN(expected.logprobsAfter), absolute: 1e-4, "\(expected.id): after")
            assertClose(withMissingAsNaN(result.before.tokens), withMissingAsNaN(expected.logprobsBefore), absolute: 1e-4, "\(expected.id): before")
            assertClose(withMissingAsNaN(result.kl), withMissingAsNaN(expected.klShared), absolute: 1e-4, "\(expected.id): KL over the shared rows")
            assertClose(withMissingAsNaN(try XCTUnwrap(result.addedRowMass)), withMissingAsNaN(expected.addedRowMass), absolute: 1e-6,
                        "\(expected.id): mass on the added row")
        }
        // The same vocabulary reports no added mass.
        XCTAssertNil(try LogProbScorer().compare(Array(samples.prefix(1)), after: before, before: before).first?.addedRowMass)
    }

    /// `irm analyze` accepts the pair (same ids for the shared tokens), with a warning, and no
    /// --allow-tokenizer-mismatch.
    func testAnalyzeAcceptsAnAddedTokenWithAWarning() throws {
        let f = try fixture()
        let dir = try Fixtures.temporaryDirectory(for: self)
        let result = try CommandRunner.run([
            "analyze", "--before", try ModelFixtures.checkpointPath(f.beforeDir, for: self),
            "--after", try ModelFixtures.checkpointPath(f.afterDir, for: self),
            "--data", Fixtures.path("trl/llama/standard.jsonl"), "--reward", "none", "--beta", "0.5",
            "--features", try Fixtures.oneFeatureFile(for: self), "--bootstrap", "0", "--out", dir.appendingPathComponent("out").path])
        XCTAssertEqual(result.status, 0, result.stderr)
        let report = try String(contentsOf: dir.appendingPathComponent("out/report.md"), encoding: .utf8)
        // "<pad>" would be an HTML tag to a Markdown renderer (shown as nothing): it is written "&lt;pad>".
        XCTAssertTrue(report.contains("a resized vocabulary") && report.contains("adding \"&lt;pad>\""), report)
        XCTAssertTrue(report.contains("on the output rows the before-policy lacks"), report)
    }
}
