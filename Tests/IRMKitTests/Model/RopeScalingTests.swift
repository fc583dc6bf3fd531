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
        assertRefused(#""rope_scaling": [1, 2]"#, #""rope_scaling" is an array of 2; expected an object"#)
        assertRefused(#""rope_scaling": {"rope_type": 3}"#, #""rope_scaling".rope_type should be a string"#)
    }

    /// longrope switches to its long factors past the original context, and dynamic recomputes θ
    /// past max_position_embeddings, per sequence; irm scores up to the extended context
    /// (longrope's max_position_embeddings, dynamic's factor × max_position_embeddings) and refuses
    /// beyond it. The values past the threshold are in LogProbParityTests (the *-long fixtures).
    func testLengthDependentScalingIsScoredUpToTheExtendedContext() throws {
        for (model, threshold, context) in [("sharp-llama-rope-longrope", 1024, 4096), ("sharp-llama-rope-dynamic", 512, 1024)] {
            let path = try ModelFixtures.checkpointPath("logprobs/models/\(model)", for: self)
            let checkpoint = try Checkpoint.open(path: path)
            XCTAssertEqual(checkpoint.config.scoringContext, context, model)
            XCTAssertEqual(checkpoint.config.ropeScaling?.uniformLength, threshold, model)
            let inspection = try CheckpointInspection(checkpoint: checkpoint, checkValues: false)
            XCTAssertTrue(inspection.isValid)
            XCTAssertTrue(inspection.warnings.contains { $0.contains("past \(threshold) tokens, per sequence") && $0.contains("irm scores up to \(context) tokens") },
                          "\(inspection.warnings)")
            let model = try ModelLoading.load(checkpoint: checkpoint)
            let tooLong = ScoringSample(name: "long", promptIDs: [Int32](repeating: 5, count: context - 20), responseIDs: [Int32](repeating: 6, count: 21))
            XCTAssertThrowsError(try LogProbScorer().logProbs(of: [tooLong], under: model)) {
                XCTAssertTrue("\($0)".contains("1 more than the model's context of \(context) positions"), "\($0)")
            }
            let fits = ScoringSample(name: "fits", promptIDs: [Int32](repeating: 5, count: threshold), responseIDs: [Int32](repeating: 6, count: 24))
            XCTAssertEqual(try LogProbScorer().logProbs(of: [fits], under: model).first?.tokens.compactMap { $0 }.count, 24)
        }
    }

    /// The frequency key splits lengths where the rotation changes: none up to the threshold, the
    /// length itself for dynamic (each has its own θ), one key for every long longrope sequence.
    func testFrequencyKeys() throws {
        let dynamic = try XCTUnwrap(config(rope: #""rope_scaling": {"rope_type": "dynamic", "factor": 2}"#, maxPositions: 512).ropeScaling)
        XCTAssertNil(dynamic.frequencyKey(sequenceLength: 512))
        XCTAssertEqual(dynamic.frequencyKey(sequenceLength: 513), 513)
        XCTAssertEqual(dynamic.frequencyKey(sequenceLength: 900), 900)
        XCTAssertEqual(dynamic.extendedContext, 1024)
        let longrope = try XCTUnwrap(config(rope: #""rope_scaling": {"rope_type": "longrope", "original_max_position_embeddings": 1024, "short_factor": [1, 1, 1, 1], "long_factor": [2, 2, 2, 2]}"#,
                                            maxPositions: 4096).ropeScaling)
        XCTAssertNil(longrope.frequencyKey(sequenceLength: 1024))
        XCTAssertEqual(longrope.frequencyKey(sequenceLength: 1025), longrope.frequencyKey(sequenceLength: 4000))
        XCTAssertNil(longrope.extendedContext)
        // θ' = θ·((factor·L/L₀) − (factor − 1))^(d/(d−2)), d = 8: for L = 1024, L₀ = 512, factor 2: θ·3^(4/3).
        let (grown, scale) = dynamic.frequencies(plain: RopeScaling.plainFrequencies(rotaryDim: 8, theta: 10000), rotaryDim: 8, theta: 10000, sequenceLength: 1024)
        XCTAssertEqual(scale, 1)
        let theta = 10000 * Foundation.pow(3.0, 4.0 / 3.0)
        for (i, w) in grown.enumerated() { XCTAssertEqual(w, 1 / Foundation.pow(theta, Double(2 * i) / 8), accuracy: 1e-15) }
        let (short, _) = longrope.frequencies(plain: [1, 0.1, 0.01, 0.001], rotaryDim: 8, theta: 10000, sequenceLength: 1000)
        let (long, _) = longrope.frequencies(plain: [1, 0.1, 0.01, 0.001], rotaryDim: 8, theta: 10000, sequenceLength: 2000)
        XCTAssertEqual(short, [1, 0.1, 0.01, 0.001])
        XCTAssertEqual(long, [0.5, 0.05, 0.005, 0.0005])
    }
}
