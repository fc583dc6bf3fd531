import Foundation
import XCTest
@testable import IRMKit

/// `irm convert` and `irm inspect` on the families of scripts/fixtures/make_architecture_fixtures.py,
/// as a user runs them: each converts, validates, and lists the settings its forward pass uses,
/// as the fixture's config.json states them.
final class ArchitectureCommandTests: XCTestCase {
    func convertAndInspect(_ model: String) throws -> String {
        let out = try Fixtures.temporaryDirectory(for: self).appendingPathComponent("\(model).h5").path
        let convert = try CommandRunner.run(["convert", Fixtures.path("logprobs/models/\(model)"), out])
        XCTAssertEqual(convert.status, 0, convert.stderr)
        let inspect = try CommandRunner.run(["inspect", out, "--check-values"])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        return inspect.stdout
    }

    func testEveryNewFamilyConvertsAndInspectsWithItsSettings() throws {
        let expectations: [(String, [String])] = [
            ("sharp-gemma", ["architecture  gemma", "head_dim          16", "activation        gelu_pytorch_tanh", "tied_embeddings   true",
                             "norms             RMSNorm with (1 + w)", "embedding_scale   sqrt(hidden_size)",
                             "validation: OK, every tensor the gemma policy needs"]),
            // The legacy spelling hidden_act "gelu", which transformers reads as the tanh approximation.
            ("sharp-gemma-rm", ["kind          reward-model", "activation        gelu", "labels            1",
                                "validation: OK, every tensor the gemma reward-model needs"]),
            ("sharp-gemma2", ["architecture  gemma2", "layers            3", "attention_scale   0.288675 (query_pre_attn_scalar^-1/2)",
                              "attn_softcap      4.0", "final_softcap     8.0", "sliding_window    8 on 2 of 3 layers",
                              "model.layers.2.pre_feedforward_layernorm.weight", "validation: OK"]),
            ("sharp-phi3", ["architecture  phi3", "rotary_dim        8 of 8, theta 10000.0, scaling longrope", "fused             qkv_proj, gate_up_proj",
                            "sliding_window    8 on every layer", "model.layers.0.self_attn.qkv_proj.weight f32 [64, 32]",
                            "model.layers.1.mlp.gate_up_proj.weight f32 [128, 32]", "validation: OK",
                            "warning: RoPE scaling \"longrope\" switches to its long factors past 4096 tokens, per sequence"]),
            // Phi-3-mini-128k's spelling: rope_scaling {"type": "longrope"} and rope_theta at the top level.
            ("sharp-phi3-rm", ["kind          reward-model", "scaling longrope", "validation: OK"]),
            ("sharp-phi3-partial", ["rotary_dim        6 of 8, theta 10000.0", "validation: OK"]),
            ("sharp-olmo2", ["architecture  olmo2", "norms             after attention and MLP, QK-norm over all heads",
                             "model.layers.0.self_attn.q_norm.weight f32 [32]", "model.layers.0.self_attn.k_norm.weight f32 [16]",
                             "validation: OK"]),
            ("sharp-opt", ["architecture  opt", "layer_norm        before each block", "final_layer_norm  true", "positions         learned, offset 2",
                           "model.decoder.embed_positions.weight f32 [386, 32]", "validation: OK"]),
            ("sharp-opt-postln-rm", ["kind          reward-model", "final_hidden_size 32", "layer_norm        after each block (post-LN)",
                                     "final_layer_norm  false", "word_embed_proj   32 (project_in / project_out)",
                                     "score.weight", "validation: OK"]),
        ]
        for (model, fragments) in expectations {
            // Columns are padded to the longest name; compare with each run of spaces as one.
            func squeezed(_ text: String) -> String { text.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
            let text = try convertAndInspect(model)
            for fragment in fragments {
                XCTAssertTrue(squeezed(text).contains(squeezed(fragment)), "\(model): missing «\(fragment)» in:\n\(text)")
            }
            XCTAssertTrue(text.contains("values: all finite"), "\(model)")
        }
    }

    /// Tied heads are stored once: Gemma and OPT save no lm_head.
    func testTiedFamiliesStoreNoSeparateHead() throws {
        for model in ["sharp-gemma", "sharp-gemma2", "sharp-opt"] {
            let text = try convertAndInspect(model)
            XCTAssertFalse(text.contains("lm_head.weight"), "\(model): the head is the input embedding")
        }
    }

    /// A tensor the family needs and a tensor it does not have are both named at convert time.
    func testMissingAndForeignTensorsAreNamed() throws {
        let dir = try Fixtures.temporaryDirectory(for: self).appendingPathComponent("model")
        try FileManager.default.copyItem(at: Fixtures.url("logprobs/models/sharp-olmo2"), to: dir)
        // OLMo 2 has no norm before attention; a config that says gemma2 would need four per layer.
        let url = dir.appendingPathComponent("config.json")
        var object = try XCTUnwrap(JSONValue.parse(Data(contentsOf: url), source: "config").objectValue)
        object["model_type"] = .string("gemma2")
        object["architectures"] = .array([.string("Gemma2ForCausalLM")])
        try Data(JSONValue.object(object).serialized().utf8).write(to: url)
        let out = try Fixtures.temporaryDirectory(for: self).appendingPathComponent("m.h5").path
        let result = try CommandRunner.run(["convert", dir.path, out])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("the weights do not match the gemma2 policy that config.json describes"), result.stderr)
        XCTAssertTrue(result.stderr.contains("missing tensor model.layers.0.input_layernorm.weight"), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }
}
