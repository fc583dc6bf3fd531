import Foundation
import XCTest
@testable import IRMKit

/// `irm convert` on the Hugging Face fixture directories, checked against statistics that
/// safetensors + torch computed (Tests/Fixtures/hf/checksums.json, made by
/// scripts/fixtures/make_hf_fixtures.py).
final class ConvertTests: XCTestCase {
    static let fixtures: [(name: String, architecture: Architecture, kind: CheckpointKind)] = [
        ("gpt2", .gpt2, .policy), ("gpt2-f16", .gpt2, .policy), ("gpt2-legacy", .gpt2, .policy), ("gpt2-rm", .gpt2, .rewardModel),
        ("neox", .gptNeoX, .policy), ("neox-legacy", .gptNeoX, .policy), ("neox-sequential", .gptNeoX, .policy),
        ("neox-rm", .gptNeoX, .rewardModel), ("llama", .llama, .policy), ("llama-bf16", .llama, .policy),
        ("llama-rm", .llama, .rewardModel), ("mistral", .mistral, .policy), ("qwen2", .qwen2, .policy),
        ("qwen2-sharded", .qwen2, .policy), ("qwen2-rm", .qwen2, .rewardModel),
    ]

    struct Reference: Decodable {
        let dtype: String
        let shape: [Int]
        let sum: Double
        let picks: [String: Double]
    }

    static func references() throws -> [String: [String: Reference]] {
        let data = try Data(contentsOf: Fixtures.url("hf/checksums.json"))
        return try JSONDecoder().decode([String: [String: Reference]].self, from: data)
    }

    func convert(_ name: String, dtype: HuggingFaceImporter.TargetDType = .auto) throws -> Checkpoint {
        let out = try Fixtures.temporaryDirectory(for: self).appendingPathComponent("\(name).h5").path
        var options = HuggingFaceImporter.Options()
        options.dtype = dtype
        _ = try HuggingFaceImporter.convert(directory: Fixtures.path("hf/\(name)"), output: out, options: options)
        return try Checkpoint.open(path: out)
    }

    func testEveryArchitectureConvertsAndMatchesTheReferenceValues() throws {
        let references = try Self.references()
        for fixture in Self.fixtures {
            let checkpoint = try convert(fixture.name)
            XCTAssertEqual(checkpoint.architecture, fixture.architecture, fixture.name)
            XCTAssertEqual(checkpoint.kind, fixture.kind, fixture.name)
            XCTAssertEqual(checkpoint.tensorProblems(), [], fixture.name)
            XCTAssertEqual(checkpoint.tokenizerJSON, try String(contentsOfFile: Fixtures.path("hf/\(fixture.name)/tokenizer.json"), encoding: .utf8))
            XCTAssertNotNil(checkpoint.tokenizerConfigJSON)
            XCTAssertEqual(checkpoint.provenance.writtenBy, "irm \(IRMVersion.string)")

            guard let expected = references[fixture.name] else { return XCTFail("no reference for \(fixture.name)") }
            var seen = Set<String>()
            for (sourceName, reference) in expected {
                if TensorLayout.isNonWeightBuffer(sourceName) { continue }
                let name = TensorLayout.canonicalName(sourceName, architecture: fixture.architecture)
                seen.insert(name)
                let info = try XCTUnwrap(checkpoint.tensors.first { $0.name == name }, "\(fixture.name): \(name)")
                XCTAssertEqual(info.shape, reference.shape, "\(fixture.name): \(name)")
                let sourceDType: TensorDType = ["float32": .f32, "float16": .f16, "bfloat16": .bf16][reference.dtype] ?? .f64
                XCTAssertEqual(info.dtype, sourceDType, "auto keeps the source dtype: \(fixture.name) \(name)")
                let values = try checkpoint.loadTensor(name).values
                // Widening f16/bf16 to f32 is exact, so the picked values match exactly and the
                // float64 sum matches to rounding of the summation order.
                for (index, value) in reference.picks {
                    XCTAssertEqual(Double(values[Int(index)!]), value, "\(fixture.name): \(name)[\(index)]")
                }
                let sum = values.reduce(0.0) { $0 + Double($1) }
                assertClose(sum, reference.sum, absolute: 1e-9, relative: 1e-12, "\(fixture.name): \(name) sum")
            }
            XCTAssertEqual(Set(checkpoint.tensors.map(\.name)), seen, "\(fixture.name): no tensor invented or lost")
        }
    }

    func testTiedHeadIsStoredOnceAndBuffersAreDropped() throws {
        let gpt2 = try convert("gpt2-legacy")
        XCTAssertFalse(gpt2.tensors.contains { $0.name == "lm_head.weight" })
        XCTAssertFalse(gpt2.tensors.contains { $0.name.hasSuffix(".attn.bias") })
        XCTAssertTrue(gpt2.tensors.contains { $0.name == "transformer.h.1.attn.c_attn.bias" })
        let neox = try convert("neox-legacy")
        XCTAssertEqual(neox.config.rotaryDim, 4, "rotary_pct 0.25 of head_dim 16, from the pre-v5 keys")
        XCTAssertEqual(neox.config.ropeTheta, 10000)
        XCTAssertFalse(neox.tensors.contains { $0.name.contains("inv_freq") || $0.name.hasSuffix("attention.bias") })
        XCTAssertTrue(neox.tensors.contains { $0.name == "embed_out.weight" })
        let qwen = try convert("qwen2")
        XCTAssertTrue(qwen.config.tiedEmbeddings)
        XCTAssertFalse(qwen.tensors.contains { $0.name == "lm_head.weight" })
        XCTAssertEqual(qwen.config.kvHeadCount, 1)
        XCTAssertEqual(qwen.config.ropeTheta, 1_000_000)
        XCTAssertTrue(qwen.config.qkvBias)
        XCTAssertFalse(qwen.config.attentionOutputBias)
    }

    func testDTypeConversionRoundsToNearestEven() throws {
        let source = try convert("llama")
        let f16 = try convert("llama", dtype: .f16)
        let bf16 = try convert("llama", dtype: .bf16)
        let f32FromBF16 = try convert("llama-bf16", dtype: .f32)
        XCTAssertTrue(f16.tensors.allSatisfy { $0.dtype == .f16 })
        XCTAssertTrue(bf16.tensors.allSatisfy { $0.dtype == .bf16 })
        XCTAssertTrue(f32FromBF16.tensors.allSatisfy { $0.dtype == .f32 })
        for info in source.tensors {
            let exact = try source.loadTensor(info.name).values
            XCTAssertEqual(try f16.loadTensor(info.name).values, exact.map { Float(Float16($0)) }, info.name)
            XCTAssertEqual(try bf16.loadTensor(info.name).values, exact.map { BFloat16($0).floatValue }, info.name)
        }
        let bf16Source = try convert("llama-bf16")
        for info in bf16Source.tensors {
            XCTAssertEqual(try f32FromBF16.loadTensor(info.name).values, try bf16Source.loadTensor(info.name).values, info.name)
        }
    }

    func testShardedAndSingleFileGiveTheSameLayout() throws {
        let sharded = try convert("qwen2-sharded")
        let single = try convert("qwen2")
        XCTAssertEqual(sharded.tensors.map(\.name), single.tensors.map(\.name))
        XCTAssertEqual(sharded.tensors.map(\.shape), single.tensors.map(\.shape))
    }

    func testConvertIsDeterministic() throws {
        let dir = try Fixtures.temporaryDirectory(for: self)
        var files: [Data] = []
        for name in ["a.h5", "b.h5"] {
            let out = dir.appendingPathComponent(name).path
            _ = try HuggingFaceImporter.convert(directory: Fixtures.path("hf/neox"), output: out)
            files.append(try Data(contentsOf: URL(fileURLWithPath: out)))
        }
        XCTAssertEqual(files[0], files[1])
    }

    func testProvenanceOptionsAreRecorded() throws {
        let out = try Fixtures.temporaryDirectory(for: self).appendingPathComponent("p.h5").path
        var options = HuggingFaceImporter.Options()
        options.sourceModel = "EleutherAI/pythia-70m"
        options.trainingStep = 1200
        options.beta = 0.1
        options.notes = "DPO on HH, lr 5e-7"
        _ = try HuggingFaceImporter.convert(directory: Fixtures.path("hf/neox"), output: out, options: options)
        let p = try Checkpoint.open(path: out).provenance
        XCTAssertEqual(p, Provenance(sourceModel: "EleutherAI/pythia-70m", trainingStep: 1200, beta: 0.1,
                                     notes: "DPO on HH, lr 5e-7", writtenBy: "irm \(IRMVersion.string)"))
    }

    func testHandWrittenH5pyCheckpointFromTheFormatDocReads() throws {
        // Written by the h5py example in docs/checkpoint-format.md (scripts/fixtures/make_handwritten_checkpoint.py).
        let checkpoint = try Checkpoint.open(path: Fixtures.path("checkpoints/handwritten-gpt2.h5"))
        XCTAssertEqual(checkpoint.architecture, .gpt2)
        XCTAssertEqual(checkpoint.kind, .policy)
        XCTAssertEqual(checkpoint.config.hiddenSize, 16)
        XCTAssertEqual(checkpoint.config.intermediateSize, 64)
        XCTAssertEqual(checkpoint.tensorProblems(), [])
        XCTAssertEqual(checkpoint.tensors.first { $0.name == "transformer.wpe.weight" }?.dtype, .bf16)
        XCTAssertEqual(checkpoint.provenance.sourceModel, "hand-written example")
        XCTAssertEqual(checkpoint.provenance.trainingStep, 0)
        let tensors = try checkpoint.loadAllTensors()
        XCTAssertEqual(tensors.count, 16)
        XCTAssertEqual(tensors["transformer.wte.weight"]?.shape, [320, 16])
        XCTAssertEqual(try checkpoint.tokenizerSummary().vocabularySize, 320)
    }
}
