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
            ("hf/llama", { $0["partial_rotary_factor"] = .double(0.5) }, #"partial rotary embeddings (4 of 8 dimensions, "partial_rotary_factor") are not supported for llama"#),
            ("hf/gpt2", { $0["activation_function"] = .string("relu") }, "activation_function \"relu\" is not supported for gpt2"),
            ("hf/neox", { $0["hidden_act"] = .string("gelu_new") }, "hidden_act \"gelu_new\" is not supported for gpt_neox"),
            ("hf/llama", { $0["rope_parameters"] = .object(["rope_type": .string("su"), "factor": .int(2), "rope_theta": .double(10000)]) },
             "\"rope_parameters\".rope_type \"su\" is not supported"),
            ("hf/mistral", { $0["sliding_window"] = .int(0) }, #""sliding_window" is 0; expected a whole number from 1 to 2147483647"#),
            ("hf/qwen2", { $0["use_sliding_window"] = .bool(true); $0["sliding_window"] = .int(4); $0["layer_types"] = .array([.string("sliding_attention")]) },
             "layer_types should list 2 entries (num_hidden_layers), found an array of 1"),
            ("hf/llama", { $0["partial_rotary_factor"] = .double(1.5) }, #""partial_rotary_factor" is 1.5; expected a number in (0, 1]"#),
            ("hf/neox-legacy", { $0["rotary_pct"] = .double(2) }, #""rotary_pct" is 2.0; expected a number in (0, 1]"#),
            // The families of make_architecture_fixtures.py.
            ("logprobs/models/sharp-gemma2", { $0["attn_logit_softcapping"] = .double(-1) }, #""attn_logit_softcapping" is -1.0; expected a finite number > 0, or null for no cap"#),
            ("logprobs/models/sharp-gemma2", { $0["final_logit_softcapping"] = .int(0) }, #""final_logit_softcapping" is 0; expected a finite number > 0, or null for no cap"#),
            ("logprobs/models/sharp-gemma2", { $0["query_pre_attn_scalar"] = .int(0) }, #""query_pre_attn_scalar" is 0; expected a finite number > 0"#),
            ("logprobs/models/sharp-gemma2", { $0["hidden_activation"] = .string("gelu") },
             "hidden_activation \"gelu\" is not supported for gemma2; irm computes GeGLU with the tanh-approximated gelu"),
            ("logprobs/models/sharp-gemma2", { $0["layer_types"] = .array([.string("sliding_attention"), .string("chunked_attention"), .string("full_attention")]) },
             "layer_types[1] should be \"sliding_attention\" or \"full_attention\", found \"chunked_attention\""),
            ("logprobs/models/sharp-gemma", { $0["use_bidirectional_attention"] = .bool(true) }, "use_bidirectional_attention is true; irm scores causal language models only"),
            ("logprobs/models/sharp-phi3", { $0["rope_parameters"] = .object(["rope_type": .string("linear"), "factor": .int(2), "rope_theta": .double(10000)]) },
             "Phi-3 takes longrope scaling only (as transformers does), found \"linear\""),
            ("logprobs/models/sharp-phi3", { $0["sliding_window"] = .int(-4) }, #""sliding_window" is -4; expected a whole number from 1 to 2147483647"#),
            ("logprobs/models/sharp-opt", { $0["word_embed_proj_dim"] = .int(0) }, #""word_embed_proj_dim" is 0; expected a whole number from 1 to 2147483647"#),
            ("logprobs/models/sharp-opt", { $0["activation_function"] = .string("gelu") }, "activation_function \"gelu\" is not supported for opt; irm computes relu"),
            ("logprobs/models/sharp-olmo2", { $0["hidden_act"] = .string("relu") }, "hidden_act \"relu\" is not supported for olmo2"),
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
