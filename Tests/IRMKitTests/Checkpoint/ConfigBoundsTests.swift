import Foundation
import XCTest
@testable import IRMKit

/// Every value of an untrusted checkpoint's configuration is bounded when it is read (issue 14,
/// item 1): a rotary fraction past 1 made `applyRotary` write past the head ("free(): invalid
/// next size"), sizes such as 2^62 trapped on overflow, a layer count of 1e9 grew memory until the
/// process was killed, and a negative epsilon turned every log-prob into `null` with exit status 0.
/// Each bad value is refused with one line naming the file, the key and what is allowed.
final class ConfigBoundsTests: XCTestCase {
    var work: URL!
    /// Converted fixtures, by name (converting is the slow part; each test edits copies).
    private var converted: [String: Checkpoint] = [:]

    override func setUpWithError() throws {
        work = try Fixtures.temporaryDirectory(for: self)
    }

    /// A checkpoint holding the tensors and tokenizer of a fixture (relative to Tests/Fixtures)
    /// under an edited config, written as a stranger could write it: verbatim, unchecked.
    func checkpoint(_ fixture: String, _ edit: (inout [String: JSONValue]) -> Void) throws -> String {
        let source: Checkpoint
        if let cached = converted[fixture] {
            source = cached
        } else {
            let path = work.appendingPathComponent("\(fixture.replacingOccurrences(of: "/", with: "_")).h5").path
            _ = try HuggingFaceImporter.convert(directory: Fixtures.path(fixture), output: path)
            source = try Checkpoint.open(path: path)
            converted[fixture] = source
        }
        var config = try XCTUnwrap(source.config.json.objectValue)
        edit(&config)
        let out = work.appendingPathComponent("edited-\(UUID().uuidString.prefix(8)).h5")
        let writer = try CheckpointWriter(destination: out, architecture: source.architecture, kind: source.kind,
                                          configJSON: JSONValue.object(config).serialized(), tokenizerJSON: source.tokenizerJSON,
                                          tokenizerConfigJSON: nil, provenance: Provenance())
        for info in source.tensors {
            try writer.addTensor(name: info.name, shape: info.shape, values: try source.loadTensor(info.name).values, dtype: .f32)
        }
        try writer.finish()
        return out.path
    }

    /// Opening the checkpoint fails with one line that starts with the file and `/config`, and
    /// holds `expected`.
    func assertRefused(_ fixture: String, _ edit: (inout [String: JSONValue]) -> Void, _ expected: String,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let path = try checkpoint(fixture, edit)
        XCTAssertThrowsError(try Checkpoint.open(path: path), file: file, line: line) { error in
            let message = "\(error)"
            XCTAssertTrue(message.hasPrefix("\(path): /config: "), message, file: file, line: line)
            XCTAssertTrue(message.contains(expected), "«\(message)» should contain «\(expected)»", file: file, line: line)
            XCTAssertFalse(message.contains("\n"), "one line: \(message)", file: file, line: line)
        }
    }

    /// Sets `key` of the `rope_parameters` object.
    static func ropeParameter(_ key: String, _ value: JSONValue) -> (inout [String: JSONValue]) -> Void {
        { config in
            var rope = config["rope_parameters"]?.objectValue ?? [:]
            rope[key] = value
            config["rope_parameters"] = .object(rope)
        }
    }

    func testRotaryFractionOutsideZeroToOneIsRefused() throws {
        // Above 1 the rotary width exceeded the head, and applyRotary wrote past the buffer.
        try assertRefused("hf/llama", Self.ropeParameter("partial_rotary_factor", .double(1.5)),
                          #""rope_parameters.partial_rotary_factor" is 1.5; expected a number in (0, 1]"#)
        try assertRefused("hf/neox", Self.ropeParameter("partial_rotary_factor", .double(4)),
                          #""rope_parameters.partial_rotary_factor" is 4.0; expected a number in (0, 1]"#)
        for value: JSONValue in [.double(1.5), .int(-1), .double(1e300), .int(0)] {
            try assertRefused("hf/neox-legacy", { $0["rotary_pct"] = value }, #""rotary_pct" is \#(value.brief); expected a number in (0, 1]"#)
        }
        // A number written as a string was ignored (and the default used).
        try assertRefused("hf/neox", Self.ropeParameter("partial_rotary_factor", .string("0.5")),
                          #""rope_parameters.partial_rotary_factor" is "0.5"; expected a number in (0, 1]"#)
        // floor(16 × 0.1875) = 3 dimensions cannot be rotated in pairs.
        try assertRefused("hf/neox-legacy", { $0["rotary_pct"] = .double(0.1875) },
                          #"the rotary width must be even, found 3 of 16 dimensions ("rotary_pct" 0.1875 of the head)"#)
    }

    func testSizesAreWholeNumbersThatFitBLAS() throws {
        let tooLarge = "expected a whole number from 1 to 2147483647"
        // 3e18 overflowed 3 × hidden in the tensor table; written as a float it would trap on conversion.
        try assertRefused("hf/neox", { $0["hidden_size"] = .int(3_000_000_000_000_000_000) }, #""hidden_size" is 3000000000000000000; \#(tooLarge)"#)
        try assertRefused("hf/llama", { $0["hidden_size"] = .double(3e18) }, #""hidden_size" is 3e+18; \#(tooLarge)"#)
        // 2^62 heads overflowed heads × head_dim.
        try assertRefused("hf/llama", { $0["num_attention_heads"] = .int(1 << 62); $0["num_key_value_heads"] = .int(1 << 62) },
                          #""num_attention_heads" is 4611686018427387904; \#(tooLarge)"#)
        try assertRefused("hf/llama", { $0["head_dim"] = .int(1 << 62) }, #""head_dim" is 4611686018427387904; \#(tooLarge)"#)
        try assertRefused("hf/llama", { $0["head_dim"] = .int(1 << 30) },
                          #""num_attention_heads" × "head_dim" (4 × 1073741824) exceeds 2147483647"#)
        try assertRefused("hf/llama", { $0["max_position_embeddings"] = .int(1 << 62) }, #""max_position_embeddings" is 4611686018427387904; \#(tooLarge)"#)
        try assertRefused("hf/llama", { $0["intermediate_size"] = .int(0) }, #""intermediate_size" is 0; \#(tooLarge)"#)
        try assertRefused("hf/llama", { $0["vocab_size"] = .int(-379) }, #""vocab_size" is -379; \#(tooLarge)"#)
        try assertRefused("hf/llama", { $0["num_labels"] = .int(0) }, #""num_labels" is 0; \#(tooLarge)"#)
        try assertRefused("hf/gpt2", { $0["n_embd"] = .string("32") }, #""n_embd" is "32"; \#(tooLarge)"#)
        try assertRefused("logprobs/models/sharp-opt", { $0["word_embed_proj_dim"] = .int(1 << 62) },
                          #""word_embed_proj_dim" is 4611686018427387904; \#(tooLarge)"#)
        try assertRefused("hf/llama", { $0["eos_token_id"] = .int(1 << 40) }, #""eos_token_id" is 1099511627776; expected a token id from -2147483648 to 2147483647"#)
        // A value the family derives is bounded too: GPT-2's default n_inner is 4 × n_embd.
        try assertRefused("hf/gpt2", { $0["n_embd"] = .int(1 << 30); $0["n_head"] = .int(1); $0["n_inner"] = nil },
                          "the intermediate size is 4294967296; expected a whole number from 1 to 2147483647")
    }

    func testHeadsDivideTheHiddenSize() throws {
        try assertRefused("hf/gpt2", { $0["n_head"] = .int(5) }, #""n_embd" (32) is not a multiple of "n_head" (5)"#)
        try assertRefused("hf/neox", { $0["num_attention_heads"] = .int(5) }, #""hidden_size" (48) is not a multiple of "num_attention_heads" (5)"#)
        try assertRefused("hf/llama", { $0["num_key_value_heads"] = .int(3) },
                          #""num_attention_heads" (4) must be a multiple of "num_key_value_heads" (3)"#)
        try assertRefused("hf/llama", { $0["head_dim"] = .int(7) }, "the rotary width must be even, found 7 of 7 dimensions (the whole head)")
    }

    func testLayerCountIsBoundedByTheTensorsBeforeAnythingIsAllocatedPerLayer() throws {
        // 1e9 layers grew memory until the process was killed; 2^40 asked for 17 TB at once.
        try assertRefused("hf/llama", { $0["num_hidden_layers"] = .int(1_000_000_000) },
                          #""num_hidden_layers" is 1000000000; expected at most 21, the number of tensors the weights hold (every layer has its own)"#)
        try assertRefused("hf/gpt2", { $0["n_layer"] = .int(1 << 40) }, #""n_layer" is 1099511627776; expected a whole number from 1 to 2147483647"#)
        try assertRefused("hf/llama", { $0["num_hidden_layers"] = .double(1e300) }, #""num_hidden_layers" is 1e+300; expected a whole number"#)
        // convert counts the safetensors entries before it reads the config.
        let dir = work.appendingPathComponent("layers")
        try FileManager.default.copyItem(at: Fixtures.url("hf/qwen2"), to: dir)
        let configURL = dir.appendingPathComponent("config.json")
        var config = try XCTUnwrap(JSONValue.parse(Data(contentsOf: configURL), source: "config").objectValue)
        config["num_hidden_layers"] = .int(1_000_000_000)
        try Data(JSONValue.object(config).serialized().utf8).write(to: configURL)
        XCTAssertThrowsError(try HuggingFaceImporter.convert(directory: dir.path, output: work.appendingPathComponent("q.h5").path)) { error in
            XCTAssertTrue("\(error)".hasPrefix(configURL.path + #": "num_hidden_layers" is 1000000000; expected at most"#), "\(error)")
        }
    }

    func testEpsilonThetaAndScalingAreFinitePositiveNumbers() throws {
        let positive = "expected a finite number > 0"
        // A negative epsilon gave null log-probs with exit status 0.
        try assertRefused("hf/neox", { $0["layer_norm_eps"] = .int(-1) }, #""layer_norm_eps" is -1; \#(positive)"#)
        try assertRefused("hf/gpt2", { $0["layer_norm_epsilon"] = .int(0) }, #""layer_norm_epsilon" is 0; \#(positive)"#)
        try assertRefused("hf/llama", { $0["rms_norm_eps"] = .double(-1e-6) }, #""rms_norm_eps" is -1e-06; \#(positive)"#)
        try assertRefused("hf/llama", Self.ropeParameter("rope_theta", .int(0)), #""rope_parameters.rope_theta" is 0; \#(positive)"#)
        // A θ written as a string was ignored (and 10000 used).
        try assertRefused("hf/llama", Self.ropeParameter("rope_theta", .string("500000")), #""rope_parameters.rope_theta" is "500000"; \#(positive)"#)
        try assertRefused("hf/neox-legacy", { $0["rotary_emb_base"] = .double(-10000) }, #""rotary_emb_base" is -10000.0; \#(positive)"#)
        try assertRefused("logprobs/models/sharp-gemma2", { $0["query_pre_attn_scalar"] = .double(-256) }, #""query_pre_attn_scalar" is -256.0; \#(positive)"#)
        try assertRefused("logprobs/models/sharp-gemma2", { $0["final_logit_softcapping"] = .string("30") },
                          #""final_logit_softcapping" is "30"; expected a finite number > 0, or null for no cap"#)
        try assertRefused("hf/mistral", { $0["sliding_window"] = .int(-1) }, #""sliding_window" is -1; expected a whole number from 1 to 2147483647"#)
        // factor × max_position_embeddings became the context as an Int: 1e300 trapped.
        try assertRefused("hf/llama", { $0["rope_parameters"] = .object(["rope_type": .string("dynamic"), "factor": .double(1e300), "rope_theta": .double(10000)]) },
                          #""rope_parameters".factor is 1e+300; dynamic scaling extends the context to factor × max_position_embeddings (512)"#)
        try assertRefused("hf/llama", { $0["rope_parameters"] = .object(["rope_type": .string("yarn"), "factor": .int(4), "mscale": .int(-1),
                                                                         "original_max_position_embeddings": .int(128), "rope_theta": .double(10000)]) },
                          #""rope_parameters".mscale should be 0 or more, found -1.0"#)
    }

    /// `irm score` and `irm inspect` on a bad configuration: status 1, one `irm: error:` line.
    func testCommandsExitWithOneLineForABadConfig() throws {
        let path = try checkpoint("hf/neox-legacy") { $0["rotary_pct"] = .double(1.5) }
        let data = work.appendingPathComponent("d.jsonl")
        try Data(#"{"prompt": "hello there", "response": " good day to you"}"#.utf8).write(to: data)
        let scores = work.appendingPathComponent("s.jsonl")
        for arguments in [["score", "--model", path, "--data", data.path, "--out", scores.path], ["inspect", path]] {
            let result = try CommandRunner.run(arguments)
            XCTAssertEqual(result.status, 1, "\(arguments[0]): \(result.stderr)")
            XCTAssertEqual(result.stderr, "irm: error: \(path): /config: \"rotary_pct\" is 1.5; expected a number in (0, 1]\n")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: scores.path))
    }
}

/// The provenance β scales every implicit reward; one that is not a finite positive number is an
/// error, not an absence (issue 14, item 4: a β stored as a string was ignored, and β = 1 used).
final class ProvenanceBetaTests: XCTestCase {
    var work: URL!

    override func setUpWithError() throws {
        work = try Fixtures.temporaryDirectory(for: self)
    }

    func testABetaThatIsNotAPositiveNumberIsRefusedNamingTheAttribute() throws {
        let path = work.appendingPathComponent("m.h5").path
        var options = HuggingFaceImporter.Options()
        options.beta = 0.1
        options.trainingStep = 300
        options.notes = "a DPO run"
        _ = try HuggingFaceImporter.convert(directory: Fixtures.path("hf/gpt2"), output: path, options: options)
        XCTAssertEqual(try Checkpoint.open(path: path).provenance.beta, 0.1)
        let cases: [(String, HDF5AttributeValue, String)] = [
            (Provenance.betaAttribute, .string("0.1"), #"attribute "beta" is "0.1"; expected a finite number > 0"#),
            (Provenance.betaAttribute, .double(.nan), #"attribute "beta" is nan; expected a finite number > 0"#),
            (Provenance.betaAttribute, .double(-.infinity), #"attribute "beta" is -inf; expected a finite number > 0"#),
            (Provenance.betaAttribute, .int(0), #"attribute "beta" is 0; expected a finite number > 0"#),
            (Provenance.trainingStepAttribute, .string("300"), #"attribute "training_step" is "300"; expected an integer"#),
            (Provenance.notesAttribute, .double(1), #"attribute "notes" is 1.0; expected a string"#),
        ]
        for (attribute, value, expected) in cases {
            let original = try Self.replaceProvenanceAttribute(attribute, with: value, in: path)
            XCTAssertThrowsError(try Checkpoint.open(path: path)) { error in
                XCTAssertEqual("\(error)", "\(path): /provenance: \(expected)")
            }
            if let original { _ = try Self.replaceProvenanceAttribute(attribute, with: original, in: path) }
        }
        XCTAssertEqual(try Checkpoint.open(path: path).provenance.beta, 0.1)
    }

    /// Sets a provenance attribute as another tool could have written it; returns the one replaced.
    /// The file is closed on return.
    static func replaceProvenanceAttribute(_ name: String, with value: HDF5AttributeValue, in path: String) throws -> HDF5AttributeValue? {
        let file = try HDF5File.open(path, mode: .readWrite)
        let provenance = try file.root().group(CheckpointFormat.provenanceGroup)
        let original = try provenance.attribute(name)
        try provenance.setAttribute(name, value)
        try file.flush()
        return original
    }

    func testConvertRefusesABetaThatIsNotAPositiveNumber() throws {
        let out = work.appendingPathComponent("m.h5")
        for beta in [Double.nan, .infinity, 0, -0.1] {
            var options = HuggingFaceImporter.Options()
            options.beta = beta
            XCTAssertThrowsError(try HuggingFaceImporter.convert(directory: Fixtures.path("hf/gpt2"), output: out.path, options: options)) { error in
                XCTAssertEqual("\(error)", "--beta is \(beta); expected a finite number > 0 (the KL coefficient used in training)")
            }
            XCTAssertThrowsError(try CheckpointWriter(destination: out, architecture: .gpt2, kind: .policy, configJSON: "{}", tokenizerJSON: "{}",
                                                      tokenizerConfigJSON: nil, provenance: Provenance(beta: beta))) { error in
                XCTAssertTrue("\(error)".contains(#"/provenance: attribute "beta" would be \#(beta); expected a finite number > 0"#), "\(error)")
            }
        }
        for argument in ["nan", "inf", "0", "-1"] {
            let result = try CommandRunner.run(["convert", Fixtures.path("hf/gpt2"), out.path, "--beta=\(argument)"])
            XCTAssertEqual(result.status, 1, result.stderr)
            XCTAssertTrue(result.stderr.hasPrefix("irm: error: --beta is ") && result.stderr.hasSuffix("(the KL coefficient used in training)\n")
                          && result.stderr.filter { $0 == "\n" }.count == 1, result.stderr)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: work.path), [], "no output left behind")
    }
}
