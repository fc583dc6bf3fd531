import Foundation
import XCTest
@testable import IRMKit

/// `irm convert` and `irm inspect` as a user runs them.
final class CheckpointCommandTests: XCTestCase {
    func testConvertThenInspectAsText() throws {
        let dir = try Fixtures.temporaryDirectory(for: self)
        let out = dir.appendingPathComponent("neox.h5").path
        let convert = try CommandRunner.run(["convert", Fixtures.path("hf/neox-legacy"), out, "--step", "300", "--beta", "0.05"])
        XCTAssertEqual(convert.status, 0, convert.stderr)
        XCTAssertTrue(convert.stdout.contains("gpt_neox policy, 28 tensors, 70272 parameters"), convert.stdout)
        XCTAssertTrue(convert.stdout.contains("dropped gpt_neox.layers.0.attention.rotary_emb.inv_freq (a buffer, not a weight)"), convert.stdout)

        let inspect = try CommandRunner.run(["inspect", out, "--check-values"])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        for fragment in ["format        irm-checkpoint v1", "architecture  gpt_neox", "kind          policy",
                         "parameters    70,272 in 28 tensors", "rotary_dim        4 of 16, theta 10000.0",
                         "parallel_residual true", "type          BPE, byte-level", "vocabulary    320 (1 added tokens)",
                         "training_step 300", "beta          0.05",
                         "gpt_neox.layers.1.attention.query_key_value.weight  f32   [144, 48]",
                         "validation: OK", "values: all finite"] {
            XCTAssertTrue(inspect.stdout.contains(fragment), "missing «\(fragment)» in:\n\(inspect.stdout)")
        }
    }

    func testInspectJSON() throws {
        let dir = try Fixtures.temporaryDirectory(for: self)
        let out = dir.appendingPathComponent("llama.h5").path
        XCTAssertEqual(try CommandRunner.run(["convert", Fixtures.path("hf/llama"), out, "--dtype", "bf16"]).status, 0)
        let inspect = try CommandRunner.run(["inspect", out, "--json"])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        let json = try JSONValue.parse(inspect.stdout, source: "inspect --json")
        XCTAssertEqual(json["architecture"]?.stringValue, "llama")
        XCTAssertEqual(json["format_version"]?.intValue, 1)
        XCTAssertEqual(json["configuration"]?["kv_heads"]?.intValue, 2)
        XCTAssertEqual(json["tokenizer"]?["prepended_token"]?.stringValue, "<s>")
        XCTAssertEqual(json["tokenizer"]?["byte_fallback"]?.boolValue, true)
        XCTAssertEqual(json["problems"]?.arrayValue?.count, 0)
        XCTAssertEqual(json["parameter_count"]?.intValue, 42848)
        let tensors = json["tensors"]?.arrayValue ?? []
        XCTAssertEqual(tensors.count, 21)
        XCTAssertTrue(tensors.allSatisfy { $0["dtype"]?.stringValue == "bf16" })
    }

    func testCheckValuesFindsNaNAndExitsNonZero() throws {
        let dir = try Fixtures.temporaryDirectory(for: self)
        let source = dir.appendingPathComponent("src.h5")
        _ = try HuggingFaceImporter.convert(directory: Fixtures.path("hf/gpt2"), output: source.path)
        let checkpoint = try Checkpoint.open(path: source.path)
        let poisoned = dir.appendingPathComponent("nan.h5")
        let writer = try CheckpointWriter(destination: poisoned, architecture: .gpt2, kind: .policy, configJSON: checkpoint.config.json.serialized(),
                                          tokenizerJSON: checkpoint.tokenizerJSON, tokenizerConfigJSON: nil, provenance: Provenance())
        for info in checkpoint.tensors {
            var values = try checkpoint.loadTensor(info.name).values
            if info.name == "transformer.h.1.ln_2.weight" { values[3] = .nan; values[4] = .infinity }
            try writer.addTensor(name: info.name, shape: info.shape, values: values, dtype: .f32)
        }
        try writer.finish()
        let plain = try CommandRunner.run(["inspect", poisoned.path])
        XCTAssertEqual(plain.status, 0, "without --check-values the values are not read")
        let checked = try CommandRunner.run(["inspect", poisoned.path, "--check-values"])
        XCTAssertEqual(checked.status, 1)
        XCTAssertTrue(checked.stdout.contains("transformer.h.1.ln_2.weight: 1 NaN, 1 infinite"), checked.stdout)
    }

    func testErrorsAreOneLineOnStderrWithNonZeroExit() throws {
        let dir = try Fixtures.temporaryDirectory(for: self)
        let missing = dir.appendingPathComponent("missing.h5").path
        let inspect = try CommandRunner.run(["inspect", missing])
        XCTAssertEqual(inspect.status, 1)
        XCTAssertEqual(inspect.stderr, "irm: error: \(missing): file not found\n")
        XCTAssertEqual(inspect.stdout, "")

        let convert = try CommandRunner.run(["convert", Fixtures.path("hf/gpt2"), dir.appendingPathComponent("x/y.h5").path])
        XCTAssertEqual(convert.status, 1)
        XCTAssertTrue(convert.stderr.hasPrefix("irm: error: cannot write"), convert.stderr)
        XCTAssertEqual(convert.stderr.filter { $0 == "\n" }.count, 1)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
    }
}
