import Foundation
import XCTest
@testable import IRMKit

/// RoPE scaling configurations: what is read, what is refused (naming the key), and the length
/// limit of the types that change with the sequence's length. The log-prob parity of each type is
/// in LogProbParityTests (fixtures from scripts/fixtures/make_rope_fixtures.py).
final class RopeScalingTests: XCTestCase {
    func config(rope: String, maxPositions: Int = 8192) throws -> ModelConfig {
        let text = """
            {"model_type": "llama", "vocab_size": 379, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": \(maxPositions), \(rope)}
            """
        return try ModelConfig(json: try JSONValue.parse(text, source: "config.json"), source: "config.json")
    }

    func assertRefused(_ rope: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try config(rope: rope), file: file, line: line) {
            XCTAssertTrue("\($0)".contains(expected), "expected \"\(expected)\" in: \($0)", file: file, line: line)
        }
    }

    func testBothSpellingsAreRead() throws {
        let new = try config(rope: #""rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}"#)
        let old = try config(rope: #""rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}"#)
        XCTAssertEqual(new.ropeScaling, old.ropeScaling)
        XCTAssertEqual(new.ropeTheta, 500000)
        XCTAssertEqual(new.ropeScalingType, "llama3")
        XCTAssertNil(try config(rope: #""rope_scaling": {"type": "default"}"#).ropeScaling)
        // yarn's factor defaults to max_position_embeddings / original_max_position_embeddings.
        let yarn = try config(rope: #""rope_scaling": {"type": "yarn", "original_max_position_embeddings": 2048}"#)
        XCTAssertEqual(yarn.ropeScaling?.factor, 4)
    }

    func testBadScalingConfigurationsNameTheKey() {
        assertRefused(#""rope_scaling": {"rope_type": "su", "factor": 2}"#, #"config.json: "rope_scaling".rope_type "su" is not supported"#)
        assertRefused(#""rope_parameters": {"rope_type": "llama3", "factor": 8, "low_freq_factor": 1, "original_max_position_embeddings": 8192}"#,
                      #"rope_type "llama3" needs "high_freq_factor""#)
        assertRefused(#""rope_parameters": {"rope_type": "llama3", "factor": 8, "low_freq_factor": 4, "high_freq_factor": 1, "original_max_position_embeddings": 8192}"#,
                      "high_freq_factor (1.0) must be greater than low_freq_factor (4.0)")
        assertRefused(#""rope_scaling": {"rope_type": "linear", "factor": -2}"#, #""rope_scaling".factor should be positive, found -2.0"#)
        assertRefused(#""rope_scaling": {"rope_type": "linear"}"#, #"rope_type "linear" needs "factor""#)
        assertRefused(#""rope_scaling": {"rope_type": "dynamic", "factor": "2"}"#, #""rope_scaling".factor should be a finite number"#)
        assertRefused(#""rope_scaling": {"rope_type": "yarn", "factor": 4}"#, #"needs "original_max_position_embeddings""#)
        assertRefused(#""rope_scaling": {"rope_type": "longrope", "original_max_position_embeddings": 4096, "short_factor": [1, 1], "long_factor": [1, 1, 1, 1]}"#,
                      #""rope_scaling".short_factor should hold 4 positive numbers (one per rotary frequency), found 2 entries"#)
        assertRefused(#""rope_scaling": [1, 2]"#, #""rope_scaling" should be an object"#)
        assertRefused(#""rope_scaling": {"rope_type": 3}"#, #""rope_scaling".rope_type should be a string"#)
    }

    /// longrope switches to its long factors past the original context, per sequence; irm scores
    /// up to there and says why beyond it.
    func testLongropeIsScoredUpToItsOriginalContext() throws {
        let path = try ModelFixtures.checkpointPath("logprobs/models/sharp-llama-rope-longrope", for: self)
        let checkpoint = try Checkpoint.open(path: path)
        XCTAssertEqual(checkpoint.config.scoringContext, 1024)
        XCTAssertEqual(checkpoint.config.maxPositions, 4096)
        let inspection = try CheckpointInspection(checkpoint: checkpoint, checkValues: false)
        XCTAssertTrue(inspection.isValid)
        XCTAssertTrue(inspection.warnings.contains { $0.contains("irm scores sequences up to 1024 tokens") }, "\(inspection.warnings)")
        let model = try ModelLoading.load(checkpoint: checkpoint)
        let long = ScoringSample(name: "long", promptIDs: [Int32](repeating: 5, count: 1000), responseIDs: [Int32](repeating: 6, count: 30))
        XCTAssertThrowsError(try LogProbScorer().logProbs(of: [long], under: model)) {
            XCTAssertTrue("\($0)".contains("6 more than the model's context of 1024 positions (longrope RoPE changes past 1024 tokens"), "\($0)")
        }
        let fits = ScoringSample(name: "fits", promptIDs: [Int32](repeating: 5, count: 1000), responseIDs: [Int32](repeating: 6, count: 24))
        XCTAssertEqual(try LogProbScorer().logProbs(of: [fits], under: model).first?.tokens.count, 24)
    }
}
