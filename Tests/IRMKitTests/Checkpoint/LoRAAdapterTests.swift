import Foundation
import XCTest
@testable import IRMKit

/// PEFT LoRA adapters merged by `irm convert --adapter` and in memory, against peft's own
/// `merge_and_unload()` (Tests/Fixtures/lora, made by scripts/fixtures/make_lora_fixtures.py).
///
/// Tolerance, per merged tensor, in the Frobenius norm: ‖W_irm − W_peft‖ ≤ 1e-6 · ‖W_peft‖. Because
/// a large W could hide a wrong delta, also ‖W_irm − W_peft‖ ≤ 1e-5 · ‖W_peft − W_base‖ (peft sums
/// in float32, irm in Double, so the deltas agree to float32 rounding, about 1e-7 relative).
/// Tensors peft left alone must be bit-identical to the base.
final class LoRAAdapterTests: XCTestCase {
    static let goodAdapters: [(adapter: String, base: String)] = [
        ("llama-all", "llama"), ("llama-regex", "llama"), ("qwen2-rslora", "qwen2"), ("llama-patterns", "llama"),
        ("gpt2-conv1d-bias-all", "gpt2"), ("neox-lora-only-bias", "neox"), ("llama-rm-score", "llama-rm"),
        ("llama-lm-head-embedding", "llama"), ("llama-bf16", "llama"), ("gpt2-f16", "gpt2"),
        // The families of make_architecture_fixtures.py: Phi-3's fused projections, Gemma 2 "all-linear",
        // an OPT reward model with its score head, rsLoRA on OLMo 2.
        ("phi3-fused", "sharp-phi3"), ("gemma2-all", "sharp-gemma2"), ("opt-rm-score", "sharp-opt-rm"), ("olmo2-rslora", "sharp-olmo2"),
    ]

    /// A base's Hugging Face directory: Tests/Fixtures/hf/NAME, or the sharp models' folder.
    static func baseDirectory(_ base: String) -> String {
        base.hasPrefix("sharp-") ? "logprobs/models/\(base)" : "hf/\(base)"
    }

    var work: URL!

    override func setUpWithError() throws {
        work = try Fixtures.temporaryDirectory(for: self)
    }

    // MARK: Helpers

    func convert(_ base: String, adapter: String? = nil, dtype: HuggingFaceImporter.TargetDType = .auto) throws -> (Checkpoint, HuggingFaceImporter.Report) {
        let out = work.appendingPathComponent("\(base)-\(adapter ?? "plain")-\(UUID().uuidString.prefix(6)).h5").path
        var options = HuggingFaceImporter.Options()
        options.dtype = dtype
        options.adapterPath = adapter.map { Fixtures.path("lora/\($0)") }
        let report = try HuggingFaceImporter.convert(directory: Fixtures.path(Self.baseDirectory(base)), output: out, options: options)
        return (try Checkpoint.open(path: out), report)
    }

    /// peft's merged tensors that differ from the base, under irm's names.
    func expectedTensors(_ adapter: String, architecture: Architecture) throws -> [String: [Float]] {
        let file = try SafetensorsFile(path: Fixtures.path("lora/\(adapter)/expected.safetensors"))
        var result: [String: [Float]] = [:]
        for entry in file.entries.values {
            result[TensorLayout.canonicalName(entry.name, architecture: architecture)] = try file.floatValues(of: entry)
        }
        return result
    }

    static func frobenius(_ x: [Float], minus y: [Float]) -> Double {
        zip(x, y).reduce(0.0) { $0 + (Double($1.0) - Double($1.1)) * (Double($1.0) - Double($1.1)) }.squareRoot()
    }

    /// Checks every tensor of `merged` against peft's reference and the base; returns the worst
    /// relative error (against ‖W_peft‖) and the worst error relative to the delta.
    @discardableResult
    func checkAgainstPeft(_ label: String, merged: [String: [Float]], base: [String: [Float]], expected: [String: [Float]],
                          file: StaticString = #filePath, line: UInt = #line) -> (relative: Double, ofDelta: Double) {
        var worst = (relative: 0.0, ofDelta: 0.0)
        XCTAssertEqual(Set(merged.keys), Set(base.keys), "\(label): no tensor invented or lost", file: file, line: line)
        XCTAssertFalse(expected.isEmpty, "\(label): the reference changes something", file: file, line: line)
        for (name, values) in merged.sorted(by: { $0.key < $1.key }) {
            guard let reference = expected[name] else {
                XCTAssertEqual(values, base[name], "\(label): \(name) is untouched by peft, so must be the base's bits", file: file, line: line)
                continue
            }
            guard let baseValues = base[name], values.count == reference.count else {
                XCTFail("\(label): \(name): \(values.count) values, reference \(reference.count)", file: file, line: line)
                continue
            }
            let error = Self.frobenius(values, minus: reference)
            let relative = error / Self.frobenius(reference, minus: [Float](repeating: 0, count: reference.count))
            let deltaNorm = Self.frobenius(reference, minus: baseValues)
            let ofDelta = deltaNorm > 0 ? error / deltaNorm : (error == 0 ? 0 : .infinity)
            XCTAssertLessThanOrEqual(relative, 1e-6, "\(label): \(name) ‖irm − peft‖/‖peft‖", file: file, line: line)
            XCTAssertLessThanOrEqual(ofDelta, 1e-5, "\(label): \(name) ‖irm − peft‖/‖peft − base‖", file: file, line: line)
            worst = (max(worst.relative, relative), max(worst.ofDelta, ofDelta))
        }
        for name in expected.keys where merged[name] == nil {
            XCTFail("\(label): peft changed \(name), which irm's merge lacks", file: file, line: line)
        }
        return worst
    }

    func values(of checkpoint: Checkpoint) throws -> [String: [Float]] {
        try checkpoint.loadAllTensors().mapValues(\.values)
    }

    // MARK: Good adapters

    func testConvertWithAdapterMatchesPeftMergeAndUnload() throws {
        var report: [String] = []
        for (adapter, base) in Self.goodAdapters {
            let (plain, _) = try convert(base)
            let (merged, convertReport) = try convert(base, adapter: adapter)
            let expected = try expectedTensors(adapter, architecture: plain.architecture)
            let worst = checkAgainstPeft("convert \(adapter)", merged: try values(of: merged), base: try values(of: plain), expected: expected)
            XCTAssertEqual(convertReport.adaptedTensorCount, expected.count, adapter)
            XCTAssertEqual(convertReport.warnings, [], "\(adapter): trained on this very base")
            XCTAssertEqual(merged.tensors.map(\.dtype), plain.tensors.map(\.dtype), "\(adapter): the base's storage types are kept")
            XCTAssertEqual(merged.kind, plain.kind)
            report.append("\(adapter): max rel \(worst.relative), of delta \(worst.ofDelta)")
        }
        print("LoRA merge vs peft (Frobenius):\n  " + report.joined(separator: "\n  "))
    }

    func testInMemoryMergeMatchesPeftAndConvertBitForBit() throws {
        for (adapter, base) in Self.goodAdapters {
            let (plain, _) = try convert(base)
            let (converted, _) = try convert(base, adapter: adapter)
            let loaded = try LoRAAdapter.load(directory: Fixtures.path("lora/\(adapter)"))
            let (tensors, merge) = try loaded.mergedTensors(of: plain)
            let merged = tensors.mapValues(\.values)
            let expected = try expectedTensors(adapter, architecture: plain.architecture)
            checkAgainstPeft("in memory \(adapter)", merged: merged, base: try values(of: plain), expected: expected)
            XCTAssertEqual(Set(merge.changedTensors), Set(expected.keys), "\(adapter): irm changes exactly what peft changed")
            XCTAssertEqual(merged, try values(of: converted), "\(adapter): in-memory and convert merges agree bit for bit")
        }
    }

    func testMergedModelScoresExactlyAsTheConvertMergedModel() throws {
        let samples = [
            ScoringSample(name: "a", promptIDs: [1, 5, 9, 13], responseIDs: [20, 33, 7, 100, 2]),
            ScoringSample(name: "b", promptIDs: [1, 44], responseIDs: [8, 8, 61, 250, 3, 17]),
        ]
        for (adapter, base) in [("llama-all", "llama"), ("gpt2-conv1d-bias-all", "gpt2"), ("qwen2-rslora", "qwen2"),
                                ("neox-lora-only-bias", "neox"), ("llama-lm-head-embedding", "llama")] {
            let (plain, _) = try convert(base)
            let (converted, _) = try convert(base, adapter: adapter)
            let adapted = try ModelLoading.load(checkpoint: plain, adapterDirectory: Fixtures.path("lora/\(adapter)"))
            XCTAssertEqual(adapted.inputFiles, [Fixtures.path("lora/\(adapter)/adapter_config.json"), Fixtures.path("lora/\(adapter)/adapter_model.safetensors")])
            XCTAssertTrue(adapted.description.hasPrefix("LoRA r="), adapted.description)
            let inMemory = try LogProbScorer().logProbs(of: samples, under: adapted.model)
            let fromFile = try LogProbScorer().logProbs(of: samples, under: ModelLoading.load(checkpoint: converted))
            let unadapted = try LogProbScorer().logProbs(of: samples, under: ModelLoading.load(checkpoint: plain))
            XCTAssertEqual(inMemory, fromFile, "\(adapter): log-probs of the two merges are identical")
            XCTAssertNotEqual(inMemory.map(\.sum), unadapted.map(\.sum), "\(adapter): the adapter changes the log-probs")
        }
        let (plainRM, _) = try convert("llama-rm")
        let (convertedRM, _) = try convert("llama-rm", adapter: "llama-rm-score")
        let adaptedRM = try ModelLoading.load(checkpoint: plainRM, adapterDirectory: Fixtures.path("lora/llama-rm-score"))
        let scores = try LogProbScorer().rewards(of: samples, under: adaptedRM.model)
        XCTAssertEqual(scores, try LogProbScorer().rewards(of: samples, under: ModelLoading.load(checkpoint: convertedRM)))
        XCTAssertNotEqual(scores, try LogProbScorer().rewards(of: samples, under: ModelLoading.load(checkpoint: plainRM)))
    }

    func testHalfPrecisionBaseKeepsItsStorageTypeAndRoundsOnce() throws {
        // llama-bf16 has llama's shapes but other weights, and another name: a warning, not an error.
        let (merged, report) = try convert("llama-bf16", adapter: "llama-all")
        XCTAssertTrue(report.warnings.contains { $0.contains("adapter_config.json: base_model_name_or_path: expected the base") && $0.contains("Tests/Fixtures/hf/llama") },
                      "\(report.warnings)")
        let (wide, _) = try convert("llama-bf16", dtype: .f32)
        let (wideMerged, _) = try LoRAAdapter.load(directory: Fixtures.path("lora/llama-all")).mergedTensors(of: wide)
        for info in merged.tensors {
            XCTAssertEqual(info.dtype, .bf16, info.name)
            let expected = try XCTUnwrap(wideMerged[info.name]).values.map { BFloat16($0).floatValue }
            XCTAssertEqual(try merged.loadTensor(info.name).values, expected, "\(info.name): Double → Float → bf16, once")
        }
    }

    func testProvenanceRecordsTheAdapter() throws {
        let (merged, _) = try convert("llama", adapter: "llama-patterns")
        XCTAssertEqual(merged.provenance.adapterSource, Fixtures.path("lora/llama-patterns"))
        XCTAssertEqual(merged.provenance.adapterConfig, try String(contentsOfFile: Fixtures.path("lora/llama-patterns/adapter_config.json"), encoding: .utf8))
        let (plain, _) = try convert("llama")
        XCTAssertNil(plain.provenance.adapterSource)
        XCTAssertNil(plain.provenance.adapterConfig)
    }

    func testPeftMatchingRules() throws {
        let patterns = try LoRAAdapter.load(directory: Fixtures.path("lora/llama-patterns"))
        XCTAssertEqual(try patterns.resolvedRank("model.layers.0.self_attn.q_proj"), 2)
        XCTAssertEqual(try patterns.resolvedRank("model.layers.1.mlp.down_proj"), 6)
        XCTAssertEqual(try patterns.resolvedRank("model.layers.0.mlp.down_proj"), 4)
        XCTAssertEqual(try patterns.resolvedAlpha("model.layers.1.self_attn.v_proj"), 3)
        XCTAssertEqual(try patterns.resolvedAlpha("model.layers.0.self_attn.o_proj"), 1.5)
        XCTAssertEqual(try patterns.resolvedAlpha("model.layers.1.self_attn.o_proj"), 8)
        // Suffix rule: at a dot boundary only.
        XCTAssertTrue(patterns.isTargeted("model.layers.0.self_attn.k_proj"))
        XCTAssertFalse(patterns.isTargeted("model.layers.0.self_attn.xk_proj"))
        let regex = try LoRAAdapter.load(directory: Fixtures.path("lora/llama-regex"))
        XCTAssertTrue(regex.isTargeted("model.layers.1.self_attn.v_proj"))
        XCTAssertFalse(regex.isTargeted("model.layers.0.self_attn.v_proj"))
        XCTAssertFalse(regex.isTargeted("x.model.layers.1.self_attn.v_proj"), "full match, not search")
        let layers = try LoRAAdapter.load(directory: Fixtures.path("lora/qwen2-rslora"))
        XCTAssertTrue(layers.isTargeted("model.layers.1.mlp.down_proj"))
        XCTAssertFalse(layers.isTargeted("model.layers.0.mlp.down_proj"), "layers_to_transform [1]")
        XCTAssertTrue(layers.usesRSLoRA)
        let excluded = try LoRAAdapter.load(directory: try editedCopy("llama-all") { $0["exclude_modules"] = .array([.string("layers.1.mlp.up_proj")]) }.path)
        XCTAssertFalse(excluded.isTargeted("model.layers.1.mlp.up_proj"))
        XCTAssertTrue(excluded.isTargeted("model.layers.0.mlp.up_proj"))
        let excludedByRegex = try LoRAAdapter.load(directory: try editedCopy("llama-all") { $0["exclude_modules"] = .string(".*\\.0\\..*") }.path)
        XCTAssertFalse(excludedByRegex.isTargeted("model.layers.0.mlp.up_proj"))
        XCTAssertTrue(excludedByRegex.isTargeted("model.layers.1.mlp.up_proj"))
        let rm = try LoRAAdapter.load(directory: Fixtures.path("lora/llama-rm-score"))
        XCTAssertFalse(rm.isTargeted("score"), "modules_to_save are never LoRA targets")
    }

    // MARK: Bad adapters

    /// Merges `adapter` into `base` by convert and in memory; both must fail with one line holding
    /// every fragment, and convert must leave nothing behind.
    func assertMergeFails(_ adapter: URL, base: String = "llama", _ fragments: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let outDir = work.appendingPathComponent("out-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: outDir, withIntermediateDirectories: true)
        var options = HuggingFaceImporter.Options()
        options.adapterPath = adapter.path
        XCTAssertThrowsError(try HuggingFaceImporter.convert(directory: Fixtures.path("hf/\(base)"), output: outDir.appendingPathComponent("m.h5").path, options: options),
                             file: file, line: line) { error in
            let message = "\(error)"
            for fragment in fragments {
                XCTAssertTrue(message.contains(fragment), "convert: «\(message)» should contain «\(fragment)»", file: file, line: line)
            }
            XCTAssertFalse(message.contains("\n"), "one line: \(message)", file: file, line: line)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outDir.path), [], "no output left behind", file: file, line: line)
        let plainPath = outDir.appendingPathComponent("plain.h5").path
        _ = try HuggingFaceImporter.convert(directory: Fixtures.path("hf/\(base)"), output: plainPath)
        let plain = try Checkpoint.open(path: plainPath)
        // In memory, the base is the checkpoint file rather than the model directory.
        let inMemoryFragments = fragments.map { $0.replacingOccurrences(of: Fixtures.path("hf/\(base)"), with: plainPath) }
        XCTAssertThrowsError(try ModelLoading.load(checkpoint: plain, adapterDirectory: adapter.path), file: file, line: line) { error in
            let message = "\(error)"
            for fragment in inMemoryFragments {
                XCTAssertTrue(message.contains(fragment), "in memory: «\(message)» should contain «\(fragment)»", file: file, line: line)
            }
            XCTAssertFalse(message.contains("\n"), "one line: \(message)", file: file, line: line)
        }
    }

    func fixture(_ name: String) -> URL { Fixtures.url("lora/\(name)") }

    /// A copy of a fixture adapter whose adapter_config.json `edit` may change.
    func editedCopy(_ name: String, config edit: (inout [String: JSONValue]) -> Void = { _ in }) throws -> URL {
        let copy = work.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(6))")
        try FileManager.default.copyItem(at: fixture(name), to: copy)
        let configURL = copy.appendingPathComponent("adapter_config.json")
        var object = try XCTUnwrap(JSONValue.parse(try Data(contentsOf: configURL), source: configURL.path).objectValue)
        edit(&object)
        try Data(JSONValue.object(object).serialized(pretty: true).utf8).write(to: configURL)
        return copy
    }

    /// Rewrites an adapter's safetensors file, tensor by tensor; `edit` may drop (nil) or rename one.
    func rewriteWeights(of dir: URL, _ edit: (String) -> String?) throws {
        let url = dir.appendingPathComponent("adapter_model.safetensors")
        let weights = try SafetensorsFile(path: url.path)
        var header: [String] = [], data: [UInt8] = []
        for entry in weights.entries.values.sorted(by: { $0.name < $1.name }) {
            guard let name = edit(entry.name) else { continue }
            let begin = data.count
            weights.withBytes(of: entry) { data += $0 }
            header.append("\"\(name)\":{\"dtype\":\"\(entry.dtype)\",\"shape\":\(entry.shape),\"data_offsets\":[\(begin),\(data.count)]}")
        }
        let headerBytes = Array("{\(header.joined(separator: ","))}".utf8)
        var bytes = (0..<8).map { UInt8((UInt64(headerBytes.count) >> (8 * UInt64($0))) & 0xFF) }
        bytes += headerBytes + data
        try Data(bytes).write(to: url)
    }

    func testRefusedMethodsAreNamed() throws {
        try assertMergeFails(fixture("bad-dora"), ["bad-dora/adapter_config.json: use_dora: expected it unset, found true", "DoRA"])
        try assertMergeFails(fixture("bad-ia3"), ["bad-ia3/adapter_config.json: peft_type: expected \"LORA\", found \"IA3\""])
        let pissa = try editedCopy("llama-all") { $0["init_lora_weights"] = .string("pissa_niter_4") }
        try assertMergeFails(pissa, ["adapter_config.json: init_lora_weights", "\"pissa_niter_4\"", "rewrites the base weights"])
        let replicated = try editedCopy("llama-all") { $0["layer_replication"] = .array([.array([.int(0), .int(2)])]) }
        try assertMergeFails(replicated, ["adapter_config.json: layer_replication: expected it unset", "layer replication"])
        let dora = try editedCopy("llama-all")
        try rewriteWeights(of: dora) { $0.replacingOccurrences(of: "layers.1.self_attn.q_proj.lora_B.weight", with: "layers.1.self_attn.q_proj.lora_magnitude_vector") }
        try assertMergeFails(dora, ["adapter_model.safetensors: tensor base_model.model.model.layers.1.self_attn.q_proj.lora_magnitude_vector", "DoRA"])
    }

    func testAdapterOfAnotherBaseNamesTheTensorBothShapesAndBothDirectories() throws {
        try assertMergeFails(fixture("bad-wrong-shape"), [
            "bad-wrong-shape/adapter_model.safetensors: tensor base_model.model.model.layers.0.mlp.up_proj.lora_B.weight",
            "expected [64, 4] to fit model.layers.0.mlp.up_proj.weight [64, 32] of \(Fixtures.path("hf/llama"))", "found [48, 4]",
            "the adapter in \(Fixtures.path("lora/bad-wrong-shape"))",
        ])
        // Llama's k_proj has 2 KV heads, Qwen2's one.
        try assertMergeFails(fixture("llama-all"), base: "qwen2", ["llama-all/adapter_model.safetensors: tensor base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight",
                                                               "expected [8, 4]", "found [16, 4]"])
        // Another architecture altogether.
        try assertMergeFails(fixture("gpt2-f16"), base: "llama", ["gpt2-f16/adapter_model.safetensors: tensor base_model.model.transformer.h.0.attn.c_attn.lora_A.weight",
                                                              "expected a base tensor model.transformer.h.0.attn.c_attn.weight", "found none"])
        // A score head needs a reward-model base.
        try assertMergeFails(fixture("llama-rm-score"), base: "llama", ["tensor base_model.model.score.weight: expected a base tensor score.weight", "sequence-classification"])
    }

    func testBadTensorsAreNamed() throws {
        try assertMergeFails(fixture("bad-nonfinite"), ["bad-nonfinite/adapter_model.safetensors: tensor base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight",
                                                        "expected finite values, found nan at [3, 1]"])
        let noB = try editedCopy("llama-all")
        try rewriteWeights(of: noB) { $0.hasSuffix("layers.1.mlp.up_proj.lora_B.weight") ? nil : $0 }
        try assertMergeFails(noB, ["adapter_model.safetensors: tensor base_model.model.model.layers.1.mlp.up_proj.lora_B.weight: missing"])
        let noPair = try editedCopy("llama-all")
        try rewriteWeights(of: noPair) { $0.contains("layers.1.mlp.up_proj.") ? nil : $0 }
        try assertMergeFails(noPair, ["adapter_model.safetensors: expected lora_A/lora_B for model.layers.1.mlp.up_proj, which adapter_config.json targets"])
        let stray = try editedCopy("llama-all")
        try rewriteWeights(of: stray) { $0.replacingOccurrences(of: "layers.1.", with: "layers.7.") }
        try assertMergeFails(stray, ["tensor base_model.model.model.layers.7.mlp.down_proj.lora_A.weight: expected a base tensor model.layers.7.mlp.down_proj.weight in \(Fixtures.path("hf/llama")), found none"])
        let unknown = try editedCopy("llama-all")
        try rewriteWeights(of: unknown) { $0.replacingOccurrences(of: "layers.0.mlp.up_proj.lora_A.weight", with: "layers.0.mlp.up_proj.lora_C.weight") }
        try assertMergeFails(unknown, ["tensor base_model.model.model.layers.0.mlp.up_proj.lora_C.weight", "a LoRA tensor irm does not know"])
    }

    func testConfigThatDisagreesWithTheWeightsIsNamed() throws {
        try assertMergeFails(try editedCopy("llama-all") { $0["r"] = .int(0) }, ["adapter_config.json: r: expected a positive integer, found 0"])
        try assertMergeFails(try editedCopy("llama-all") { $0["r"] = .int(8) }, ["adapter_config.json: r: expected rank 4", "found 8"])
        try assertMergeFails(try editedCopy("llama-all") { $0["peft_type"] = nil }, ["adapter_config.json: peft_type: expected \"LORA\", found no such key"])
        try assertMergeFails(try editedCopy("llama-all") { $0["target_modules"] = .array([.string("q_proj")]) },
                             ["expected only modules that adapter_config.json targets (target_modules [\"q_proj\"]), found model.layers.0.mlp.down_proj"])
        try assertMergeFails(try editedCopy("llama-regex") { $0["target_modules"] = .string("model\\.layers\\.[01]\\.self_attn\\.(q|v)_proj") },
                             ["expected lora_A/lora_B for model.layers.0.self_attn.q_proj"])
        try assertMergeFails(try editedCopy("llama-all") { $0["exclude_modules"] = .array([.string("k_proj")]) },
                             ["expected only modules that adapter_config.json targets", "found model.layers.0.self_attn.k_proj"])
        try assertMergeFails(try editedCopy("llama-all") { $0["target_modules"] = .string("(unclosed") }, ["adapter_config.json: target_modules: expected a regular expression, found \"(unclosed\""])
        // adapter_config.json is untrusted: its patterns run on the linear-time matcher, which refuses what it cannot bound.
        try assertMergeFails(try editedCopy("llama-all") { $0["target_modules"] = .string("(q_proj)\\1") },
                             ["adapter_config.json: target_modules: expected a regular expression, found \"(q_proj)\\1\": backreferences are not supported"])
        try assertMergeFails(try editedCopy("gpt2-conv1d-bias-all") { $0["bias"] = .string("none") }, base: "gpt2",
                             ["tensor base_model.model.transformer.h.0.attn.c_attn.base_layer.bias: expected only LoRA weights (bias = \"none\")"])
        try assertMergeFails(try editedCopy("gpt2-conv1d-bias-all") { $0["bias"] = .string("lora_only") }, base: "gpt2",
                             ["tensor base_model.model.transformer.h.0.ln_1.bias: expected trained biases only on LoRA modules (bias = \"lora_only\")"])
        try assertMergeFails(try editedCopy("neox-lora-only-bias") { $0["lora_bias"] = .bool(false) }, base: "neox",
                             ["lora_B.bias: expected no LoRA B bias (lora_bias = false)"])
    }

    func testMissingPiecesOfAnAdapterDirectory() throws {
        let pickled = try editedCopy("llama-all")
        try FileManager.default.moveItem(at: pickled.appendingPathComponent("adapter_model.safetensors"), to: pickled.appendingPathComponent("adapter_model.bin"))
        try assertMergeFails(pickled, ["adapter_model.bin: expected adapter_model.safetensors", "safe_serialization=True"])
        try assertMergeFails(work.appendingPathComponent("nowhere"), ["nowhere: expected a PEFT adapter directory", "found nothing"])
        try assertMergeFails(Fixtures.url("hf/llama"), ["hf/llama: expected a PEFT adapter directory with adapter_config.json, found none"])
        // An adapter given where the base belongs.
        XCTAssertThrowsError(try HuggingFaceImporter.convert(directory: Fixtures.path("lora/llama-all"), output: work.appendingPathComponent("x.h5").path)) {
            XCTAssertTrue("\($0)".contains("found a PEFT adapter (adapter_config.json); pass the base model's directory and merge the adapter with --adapter"), "\($0)")
        }
    }

    // MARK: Command line

    func testConvertAdapterOnTheCommandLine() throws {
        let out = work.appendingPathComponent("merged.h5").path
        let adapter = Fixtures.path("lora/llama-all")
        let convert = try CommandRunner.run(["convert", Fixtures.path("hf/llama"), "--adapter", adapter, out])
        XCTAssertEqual(convert.status, 0, convert.stderr)
        XCTAssertTrue(convert.stdout.contains("merged LoRA r=4 alpha=8 on 14 modules from \(adapter) into 14 tensors"), convert.stdout)
        XCTAssertEqual(convert.stderr, "")
        let inspect = try CommandRunner.run(["inspect", out])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        XCTAssertTrue(inspect.stdout.contains("adapter       \(adapter)"), inspect.stdout)

        let warned = try CommandRunner.run(["convert", Fixtures.path("hf/llama-bf16"), "--adapter", adapter, work.appendingPathComponent("w.h5").path])
        XCTAssertEqual(warned.status, 0, warned.stderr)
        XCTAssertTrue(warned.stderr.hasPrefix("irm: warning: \(adapter)/adapter_config.json: base_model_name_or_path"), warned.stderr)

        let failed = try CommandRunner.run(["convert", Fixtures.path("hf/qwen2"), "--adapter", adapter, work.appendingPathComponent("bad.h5").path])
        XCTAssertEqual(failed.status, 1)
        XCTAssertTrue(failed.stderr.hasPrefix("irm: error: \(adapter)/adapter_model.safetensors: tensor "), failed.stderr)
        XCTAssertEqual(failed.stderr.filter { $0 == "\n" }.count, 1, "one line: \(failed.stderr)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: work.appendingPathComponent("bad.h5").path))
    }
}
