import Foundation
import XCTest
@testable import IRMKit

/// Each bad input fails with a one-line message that names the file, what was expected and what
/// was found, and leaves no output file behind.
final class BadInputTests: XCTestCase {
    var work: URL!

    override func setUpWithError() throws {
        work = try Fixtures.temporaryDirectory(for: self)
    }

    /// A copy of a fixture model directory that a test may damage.
    func copyOfFixture(_ name: String) throws -> URL {
        let copy = work.appendingPathComponent("src-\(name)-\(UUID().uuidString.prefix(6))")
        try FileManager.default.copyItem(at: Fixtures.url("hf/\(name)"), to: copy)
        return copy
    }

    /// Writes a safetensors file from a header object and a data section.
    func writeSafetensors(_ header: String, data: [UInt8], to url: URL, headerLength: UInt64? = nil) throws {
        let headerBytes = Array(header.utf8)
        var bytes: [UInt8] = []
        let length = headerLength ?? UInt64(headerBytes.count)
        for i in 0..<8 { bytes.append(UInt8((length >> (8 * UInt64(i))) & 0xFF)) }
        bytes += headerBytes + data
        try Data(bytes).write(to: url)
    }

    /// Rewrites `dir`'s model.safetensors tensor by tensor, in name order: `edit` may drop a tensor
    /// (return nil), or return its dtype and bytes (unchanged or altered).
    func rewriteSafetensors(in dir: URL, _ edit: (SafetensorsFile, SafetensorsFile.Entry) throws -> (dtype: String, bytes: [UInt8])?) throws {
        let url = dir.appendingPathComponent("model.safetensors")
        let weights = try SafetensorsFile(path: url.path)
        var header: [String] = []
        var data: [UInt8] = []
        for entry in weights.entries.values.sorted(by: { $0.name < $1.name }) {
            guard let (dtype, bytes) = try edit(weights, entry) else { continue }
            let begin = data.count
            data += bytes
            header.append("\"\(entry.name)\":{\"dtype\":\"\(dtype)\",\"shape\":\(entry.shape),\"data_offsets\":[\(begin),\(data.count)]}")
        }
        try writeSafetensors("{\(header.joined(separator: ","))}", data: data, to: url)
    }

    /// Converts `directory` and asserts failure with every fragment in the message, a single line,
    /// and an output directory left empty.
    func assertConvertFails(_ directory: URL, _ fragments: [String], dtype: HuggingFaceImporter.TargetDType = .auto,
                            file: StaticString = #filePath, line: UInt = #line) throws {
        let outDir = work.appendingPathComponent("out-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: outDir, withIntermediateDirectories: true)
        var options = HuggingFaceImporter.Options()
        options.dtype = dtype
        XCTAssertThrowsError(try HuggingFaceImporter.convert(directory: directory.path, output: outDir.appendingPathComponent("m.h5").path, options: options),
                             file: file, line: line) { error in
            let message = "\(error)"
            for fragment in fragments {
                XCTAssertTrue(message.contains(fragment), "«\(message)» should contain «\(fragment)»", file: file, line: line)
            }
            XCTAssertFalse(message.contains("\n"), "one line: \(message)", file: file, line: line)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outDir.path), [], "no output left behind", file: file, line: line)
    }

    // MARK: HDF5 checkpoints

    func testTruncatedOrCorruptCheckpoint() throws {
        let good = work.appendingPathComponent("good.h5")
        _ = try HuggingFaceImporter.convert(directory: Fixtures.path("hf/gpt2"), output: good.path)
        let bytes = try Data(contentsOf: good)
        let truncated = work.appendingPathComponent("truncated.h5")
        try bytes.prefix(bytes.count / 3).write(to: truncated)
        XCTAssertThrowsError(try Checkpoint.open(path: truncated.path).loadAllTensors()) { error in
            XCTAssertTrue("\(error)".hasPrefix(truncated.path), "\(error)")
        }
        var corrupt = bytes
        for i in stride(from: 0, to: 64, by: 1) { corrupt[i] ^= 0x5A }  // destroy the superblock
        let corruptURL = work.appendingPathComponent("corrupt.h5")
        try corrupt.write(to: corruptURL)
        XCTAssertThrowsError(try Checkpoint.open(path: corruptURL.path)) { error in
            XCTAssertTrue("\(error)".contains("not an HDF5 file"), "\(error)")
        }
    }

    func testUnknownFormatVersionAndForeignFiles() throws {
        let path = work.appendingPathComponent("v2.h5").path
        _ = try HuggingFaceImporter.convert(directory: Fixtures.path("hf/gpt2"), output: path)
        try HDF5File.open(path, mode: .readWrite).root().setAttribute(CheckpointFormat.versionAttribute, .int(2))
        XCTAssertThrowsError(try Checkpoint.open(path: path)) { error in
            XCTAssertEqual("\(error)", "\(path): /: unknown format version 2; this irm (\(IRMVersion.string)) reads version 1")
        }
        let foreign = work.appendingPathComponent("foreign.h5").path
        try HDF5File.create(foreign).root().createDataset("x", values: [Float(1)], shape: [1])
        XCTAssertThrowsError(try Checkpoint.open(path: foreign)) { error in
            XCTAssertTrue("\(error)".contains("not an irm checkpoint"), "\(error)")
        }
    }

    func testMissingAndMisshapedTensorsInACheckpoint() throws {
        let source = try Checkpoint.open(path: {
            let p = work.appendingPathComponent("src.h5").path
            _ = try HuggingFaceImporter.convert(directory: Fixtures.path("hf/gpt2"), output: p)
            return p
        }())
        let damaged = work.appendingPathComponent("damaged.h5")
        let writer = try CheckpointWriter(destination: damaged, architecture: .gpt2, kind: .policy, configJSON: source.config.json.serialized(),
                                          tokenizerJSON: source.tokenizerJSON, tokenizerConfigJSON: nil, provenance: Provenance())
        for info in source.tensors where info.name != "transformer.ln_f.bias" {
            var tensor = try source.loadTensor(info.name)
            if info.name == "transformer.h.0.mlp.c_fc.weight" {  // stored transposed by mistake
                tensor = CheckpointTensor(name: tensor.name, shape: tensor.shape.reversed(), values: tensor.values)
            }
            try writer.addTensor(name: tensor.name, shape: tensor.shape, values: tensor.values, dtype: .f32)
        }
        try writer.addTensor(name: "transformer.h.0.attn.bias", shape: [1], values: [1], dtype: .f32)
        try writer.finish()

        let checkpoint = try Checkpoint.open(path: damaged.path)
        let problems = checkpoint.tensorProblems()
        XCTAssertEqual(problems.map(\.kind), [.unexpected, .wrongShape, .missing])
        XCTAssertEqual(problems[1].description, "tensor transformer.h.0.mlp.c_fc.weight has shape [128, 32], expected [32, 128]")
        XCTAssertThrowsError(try checkpoint.loadAllTensors()) { error in
            XCTAssertEqual("\(error)", "\(damaged.path): /tensors: tensor transformer.h.0.mlp.c_fc.weight has shape [128, 32], expected [32, 128]")
        }
        XCTAssertThrowsError(try checkpoint.loadTensor("transformer.ln_f.bias")) { error in
            XCTAssertTrue("\(error)".contains("/tensors/transformer.ln_f.bias: missing tensor"), "\(error)")
        }
        let inspection = try CheckpointInspection(checkpoint: checkpoint, checkValues: false)
        XCTAssertFalse(inspection.isValid)
        XCTAssertTrue(inspection.text().contains("validation: 3 problems"), inspection.text())
    }

    // MARK: Hugging Face directories

    func testMissingOrMisshapedTensorInHuggingFaceWeights() throws {
        let misshaped = try copyOfFixture("gpt2")
        let configURL = misshaped.appendingPathComponent("config.json")
        let config = try String(contentsOf: configURL, encoding: .utf8).replacingOccurrences(of: "\"n_inner\": null", with: "\"n_inner\": 100")
        try config.write(to: configURL, atomically: true, encoding: .utf8)
        try assertConvertFails(misshaped, [misshaped.path, "transformer.h.0.mlp.c_fc.weight has shape [32, 128], expected [32, 100]"])

        let missing = try copyOfFixture("llama")
        try rewriteSafetensors(in: missing) { weights, entry in
            entry.name == "model.norm.weight" ? nil : (entry.dtype, weights.withBytes(of: entry) { Array($0) })
        }
        try assertConvertFails(missing, ["missing tensor model.norm.weight (expected shape [32])"])
    }

    func testSafetensorsHeaderProblems() throws {
        let four = [UInt8](repeating: 0, count: 16)
        let cases: [(String, [UInt8], UInt64?, [String])] = [
            ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
             four, nil, ["overlap", "corrupt"]),
            ("{\"a\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]}}", four, nil, ["run past the end of the data section (16 bytes"]),
            ("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", four, nil, ["shape [3] of F32 needs 12 bytes, but data_offsets give 8"]),
            ("{}", four, 1 << 40, ["header claims 1099511627776 bytes; expected at most 100000000"]),
            ("{\"a\":1}", four, 5000, ["header claims 5000 bytes but the file has only"]),
            ("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]", four, nil, ["malformed JSON at line 1"]),
        ]
        for (index, (header, data, length, fragments)) in cases.enumerated() {
            let dir = try copyOfFixture("gpt2")
            try writeSafetensors(header, data: data, to: dir.appendingPathComponent("model.safetensors"), headerLength: length)
            try assertConvertFails(dir, fragments + ["model.safetensors"])
            _ = index
        }
    }

    func testBadConfigJSON() throws {
        let nonUTF8 = try copyOfFixture("gpt2")
        try Data([0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x7D]).write(to: nonUTF8.appendingPathComponent("config.json"))
        try assertConvertFails(nonUTF8, ["config.json", "expected UTF-8 JSON text, found bytes that are not valid UTF-8"])

        let malformed = try copyOfFixture("gpt2")
        try "{\n  \"model_type\": \"gpt2\",\n  \"n_embd\": 32,,\n}".write(to: malformed.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        try assertConvertFails(malformed, ["config.json: malformed JSON at line 3"])

        let wrongType = try copyOfFixture("gpt2")
        let url = wrongType.appendingPathComponent("config.json")
        try String(contentsOf: url, encoding: .utf8).replacingOccurrences(of: "\"n_layer\": 2", with: "\"n_layer\": \"two\"")
            .write(to: url, atomically: true, encoding: .utf8)
        try assertConvertFails(wrongType, ["config.json: \"n_layer\" is \"two\"; expected a whole number from 1 to 2147483647"])
    }

    func testUnknownArchitectureListsTheSupportedOnes() throws {
        let dir = try copyOfFixture("gpt2")
        let url = dir.appendingPathComponent("config.json")
        try String(contentsOf: url, encoding: .utf8).replacingOccurrences(of: "\"model_type\": \"gpt2\"", with: "\"model_type\": \"falcon\"")
            .write(to: url, atomically: true, encoding: .utf8)
        try assertConvertFails(dir, ["unsupported model_type \"falcon\"; irm supports gpt2, gpt_neox, llama, mistral, qwen2"])
    }

    func testUnsupportedDType() throws {
        let dir = try copyOfFixture("gpt2")
        try rewriteSafetensors(in: dir) { weights, entry in
            // I32 has F32's width, so only the dtype is wrong.
            (entry.name == "transformer.ln_f.bias" ? "I32" : entry.dtype, weights.withBytes(of: entry) { Array($0) })
        }
        try assertConvertFails(dir, ["tensor transformer.ln_f.bias", "has dtype I32; irm imports F32, F16 and BF16"])
    }

    func testFloat16OverflowFailsMidWriteAndLeavesNothing() throws {
        let dir = try copyOfFixture("gpt2")
        try rewriteSafetensors(in: dir) { weights, entry in
            guard entry.name == "transformer.wte.weight" else {  // written last: the failure comes mid-file
                return (entry.dtype, weights.withBytes(of: entry) { Array($0) })
            }
            var values = try weights.floatValues(of: entry)
            values[5] = 1e6
            return (entry.dtype, values.withUnsafeBytes { Array($0) })
        }
        try assertConvertFails(dir, ["tensor transformer.wte.weight holds values up to 1000000.0, beyond float16's range"], dtype: .f16)
    }

    func testUnwritableOutputPath() throws {
        let nowhere = work.appendingPathComponent("no/such/dir/out.h5").path
        XCTAssertThrowsError(try HuggingFaceImporter.convert(directory: Fixtures.path("hf/gpt2"), output: nowhere)) { error in
            XCTAssertTrue("\(error)".contains("cannot write \(nowhere): the directory"), "\(error)")
            XCTAssertTrue("\(error)".contains("does not exist"), "\(error)")
        }
        XCTAssertThrowsError(try HuggingFaceImporter.convert(directory: Fixtures.path("hf/gpt2"), output: work.path)) { error in
            XCTAssertTrue("\(error)".contains("it is a directory"), "\(error)")
        }
        // An existing output is replaced only once the new file is complete.
        let existing = work.appendingPathComponent("existing.h5")
        try Data("previous content".utf8).write(to: existing)
        let broken = try copyOfFixture("gpt2")
        try Data("{".utf8).write(to: broken.appendingPathComponent("config.json"))
        XCTAssertThrowsError(try HuggingFaceImporter.convert(directory: broken.path, output: existing.path))
        XCTAssertEqual(try String(contentsOf: existing, encoding: .utf8), "previous content")
    }

    func testMissingPiecesOfAModelDirectory() throws {
        let noTokenizer = try copyOfFixture("gpt2")
        try FileManager.default.removeItem(at: noTokenizer.appendingPathComponent("tokenizer.json"))
        try assertConvertFails(noTokenizer, ["no tokenizer.json found", "--tokenizer"])

        let noWeights = try copyOfFixture("gpt2")
        try FileManager.default.moveItem(at: noWeights.appendingPathComponent("model.safetensors"), to: noWeights.appendingPathComponent("pytorch_model.bin"))
        try assertConvertFails(noWeights, ["no model.safetensors", "found pytorch_model.bin", "safe_serialization=True"])

        let missingShard = try copyOfFixture("qwen2-sharded")
        try FileManager.default.removeItem(at: missingShard.appendingPathComponent("model-00003-of-00005.safetensors"))
        try assertConvertFails(missingShard, ["model-00003-of-00005.safetensors: shard listed in model.safetensors.index.json is missing"])

        try assertConvertFails(work.appendingPathComponent("does-not-exist"), ["expected a Hugging Face model directory", "found nothing"])
    }
}
