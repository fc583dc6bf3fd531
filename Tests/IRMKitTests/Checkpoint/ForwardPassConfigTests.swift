import Foundation
import XCTest
@testable import IRMKit

/// What the forward pass needs is checked when the config is read, so `convert` and `inspect`
/// refuse what `score` would (issue: inspect said "validation: OK" for checkpoints score refused).
final class ForwardPassConfigTests: XCTestCase {
    func configWith(_ directory: String, _ change: (inout [String: JSONValue]) -> Void) throws -> String {
        let dir = try Fixtures.temporaryDirectory(for: self).appendingPathComponent("model")
        try FileManager.default.copyItem(at: Fixtures.url(directory), to: dir)
        let url = dir.appendingPathComponent("config.json")
        var object = try XCTUnwrap(JSONValue.parse(Data(contentsOf: url), source: "config").objectValue)
        change(&object)
        try Data(JSONValue.object(object).serialized().utf8).write(to: url)
        return dir.path
    }

    func testWhatTheForwardPassCannotComputeIsRefusedAtConvert() throws {
        let cases: [(String, (inout [String: JSONValue]) -> Void, String)] = [
            ("hf/llama", { $0["hidden_act"] = .string("gelu") }, "hidden_act \"gelu\" is not supported for llama; irm computes SwiGLU with silu"),
            ("hf/llama", { $0["partial_rotary_factor"] = .double(0.5) }, "partial rotary embeddings (4 of 8 dimensions, partial_rotary_factor) are not supported for llama"),
            ("hf/gpt2", { $0["activation_function"] = .string("relu") }, "activation_function \"relu\" is not supported for gpt2"),
            ("hf/neox", { $0["hidden_act"] = .string("gelu_new") }, "hidden_act \"gelu_new\" is not supported for gpt_neox"),
            ("hf/llama", { $0["rope_parameters"] = .object(["rope_type": .string("su"), "factor": .int(2), "rope_theta": .double(10000)]) },
             "\"rope_parameters\".rope_type \"su\" is not supported"),
            ("hf/mistral", { $0["sliding_window"] = .int(0) }, "sliding_window must be positive, found 0"),
            ("hf/qwen2", { $0["use_sliding_window"] = .bool(true); $0["sliding_window"] = .int(4); $0["layer_types"] = .array([.string("sliding_attention")]) },
             "layer_types should list 2 entries (num_hidden_layers), found an array of 1"),
        ]
        for (source, change, expected) in cases {
            let dir = try configWith(source, change)
            let out = try Fixtures.temporaryDirectory(for: self).appendingPathComponent("m.h5").path
            let result = try CommandRunner.run(["convert", dir, out])
            XCTAssertEqual(result.status, 1, "\(expected): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("config.json: ") && result.stderr.contains(expected), result.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        }
    }
}
