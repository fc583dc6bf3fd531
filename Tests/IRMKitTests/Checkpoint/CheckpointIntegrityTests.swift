import Foundation
import XCTest
@testable import IRMKit

/// Corruption made visible (format 1.1): irm writes checkpoints in HDF5's checksummed 1.8 format
/// without variable-length strings, stores zlib's CRC-32 with every dataset and checks it whenever
/// values are read, and still reads files written by others and by earlier versions of irm.
final class CheckpointIntegrityTests: XCTestCase {
    struct Fixture: Decodable {
        struct Model: Decodable {
            let auto: [String: UInt32]
            let f16: [String: UInt32]?
            let strings: [String: UInt32]
        }
        let models: [String: Model]
    }

    func fixture(_ model: String) throws -> Fixture.Model {
        let all = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: Fixtures.url("checkpoints/crc32.json")))
        return try XCTUnwrap(all.models[model], model)
    }

    func convert(_ model: String, dtype: HuggingFaceImporter.TargetDType = .auto) throws -> String {
        let out = try Fixtures.temporaryDirectory(for: self).appendingPathComponent("\(model).h5").path
        var options = HuggingFaceImporter.Options()
        options.dtype = dtype
        _ = try HuggingFaceImporter.convert(directory: Fixtures.path("hf/\(model)"), output: out, options: options)
        return out
    }

    /// The offsets of every occurrence of `signature` in `bytes`.
    func offsets(of signature: String, in bytes: [UInt8]) -> [Int] {
        let pattern = Array(signature.utf8)
        guard bytes.count >= pattern.count else { return [] }
        return (0...(bytes.count - pattern.count)).filter { start in
            bytes[start] == pattern[0] && Array(bytes[start..<(start + pattern.count)]) == pattern
        }
    }

    // MARK: What irm writes

    func testAConvertedCheckpointIsVersion1_1WithChecksummedHeadersNoGlobalHeapAndZlibCRCs() throws {
        for (model, dtype) in [("gpt2", HuggingFaceImporter.TargetDType.auto), ("llama-bf16", .auto), ("gpt2", .f16)] {
            let expected = try fixture(model)
            let path = try convert(model, dtype: dtype)
            let checkpoint = try Checkpoint.open(path: path)
            XCTAssertEqual(checkpoint.formatVersion, 1)
            XCTAssertEqual(checkpoint.formatMinorVersion, 1)
            let crcs = dtype == .f16 ? try XCTUnwrap(expected.f16) : expected.auto
            XCTAssertEqual(checkpoint.tensorChecksums, crcs, "\(model) \(dtype): every tensor's crc32 is Python zlib's")

            let file = try HDF5File.open(path)
            let root = try file.root()
            XCTAssertEqual(file.superblockVersion, 2)
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            XCTAssertEqual(Array(bytes[0..<8]), [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A], "the HDF5 signature")
            XCTAssertEqual(bytes[8], 2, "superblock version 2 (checksummed)")
            let tensors = try root.group("tensors")
            let holders: [any HDF5AttributeHolder] = [root, tensors, try root.dataset("config"), try tensors.dataset(checkpoint.tensors[0].name)]
            for holder in holders {
                XCTAssertEqual(holder.objectHeaderVersion, 2, "\(holder.path): a version 2 (checksummed) object header")
            }
            XCTAssertEqual(offsets(of: "GCOL", in: bytes), [], "no global heap collection: no variable-length strings")
            XCTAssertEqual(offsets(of: "FRHP", in: bytes), [], "no fractal heap: every group's links are in its header")
            for (object, crc) in expected.strings {
                let parts = object.split(separator: "/").map(String.init)
                let group = parts.count == 1 ? root : try root.group(parts[0])
                XCTAssertEqual(try group.dataset(parts.last!).attribute("crc32"), .int(Int64(crc)), object)
            }
        }
    }

    func testAttributesAndStringsReadBackAsWritten() throws {
        let path = try convert("gpt2")
        let root = try HDF5File.open(path).root()
        XCTAssertEqual(try root.attribute("irm_format"), .string("irm-checkpoint"))
        XCTAssertEqual(try root.attribute("irm_format_minor"), .int(1))
        XCTAssertEqual(try root.attribute("architecture"), .string("gpt2"))
        XCTAssertEqual(try root.group("provenance").attribute("written_by"), .string("irm \(IRMVersion.string)"))
        let config = try String(contentsOfFile: Fixtures.path("hf/gpt2/config.json"), encoding: .utf8)
        XCTAssertEqual(try root.dataset("config").readString(), config)
    }

    // MARK: Damaged files

    /// One bit of a stored value flipped: loading fails naming the tensor, whether the model maps
    /// it or reads it, and `irm inspect --check-values` lists it and exits 1.
    func testAFlippedValueBitFailsTheLoadNamingTheTensorMappedOrRead() throws {
        let expected = try fixture("gpt2")
        for name in ["transformer.h.1.mlp.c_fc.weight", "transformer.ln_f.weight"] {
            let path = try convert("gpt2")
            guard case .contiguous(let offset, let byteCount)? = try Checkpoint.open(path: path).tensorStorage[name] else {
                return XCTFail("\(name) is not contiguous")
            }
            let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: path))
            let target = UInt64(offset + (byteCount / 2) / 4 * 4)  // the lowest mantissa byte of a float32: stays finite
            try handle.seek(toOffset: target)
            let byte = try XCTUnwrap(handle.readData(ofLength: 1).first)
            try handle.seek(toOffset: target)
            try handle.write(contentsOf: Data([byte ^ 0x01]))
            try handle.close()

            let checkpoint = try Checkpoint.open(path: path)
            let stored = try XCTUnwrap(expected.auto[name])
            let message = "\(path): /tensors/\(name): checksum mismatch (stored crc32 \(CRC32.hex(stored)), computed "
            for allowMapping in [true, false] {
                XCTAssertThrowsError(try ModelLoading.load(checkpoint: checkpoint, allowMapping: allowMapping), "\(name) mapping \(allowMapping)") { error in
                    let text = "\(error)"
                    XCTAssertTrue(text.hasPrefix(message), text)
                    XCTAssertTrue(text.hasSuffix("): the file is corrupt or was modified after irm wrote it"), text)
                }
            }
            XCTAssertThrowsError(try checkpoint.loadTensor(name)) { XCTAssertTrue("\($0)".hasPrefix(message), "\($0)") }

            let plain = try CommandRunner.run(["inspect", path])
            XCTAssertEqual(plain.status, 0, "without --check-values the values are not read")
            let checked = try CommandRunner.run(["inspect", path, "--check-values"])
            XCTAssertEqual(checked.status, 1, checked.stdout + checked.stderr)
            XCTAssertTrue(checked.stdout.contains("checksums: 1 of 28 tensors do not match their stored crc32"), checked.stdout)
            XCTAssertTrue(checked.stdout.contains("  - /tensors/\(name): stored crc32 \(CRC32.hex(stored)), computed 0x"), checked.stdout)
        }
    }

    func testAChangedStringDatasetFailsTheOpen() throws {
        let path = try convert("gpt2")
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        // The stored config, found by its text: `"n_layer": 2` becomes `"n_layer": 3`.
        let text = Array("\"n_layer\": 2".utf8)
        let found = try XCTUnwrap((0...(bytes.count - text.count)).first { Array(bytes[$0..<($0 + text.count)]) == text })
        var damaged = bytes
        damaged[found + text.count - 1] = UInt8(ascii: "3")
        try Data(damaged).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try Checkpoint.open(path: path)) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(path): /config: checksum mismatch (stored crc32 0x"), "\(error)")
        }
    }

    /// Every object header (`OHDR`) and header continuation (`OCHK`) of an irm-written file, one
    /// byte changed in each: opening is an error naming the file, never a crash or a silent misread.
    func testADamagedObjectHeaderIsAnErrorNotACrash() throws {
        let path = try convert("gpt2")
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let headers = offsets(of: "OHDR", in: bytes) + offsets(of: "OCHK", in: bytes)
        XCTAssertGreaterThan(headers.count, 28, "a version 2 header for every object")
        let damaged = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("damaged.h5")
        func damage(_ start: Int) throws {
            var copy = bytes
            copy[start + 12] ^= 0x10
            try Data(copy).write(to: damaged)
        }
        var tensorsHeader: Int? = nil
        for start in headers {
            try damage(start)
            XCTAssertThrowsError(try ModelLoading.load(path: damaged.path), "header at \(start)") { error in
                let text = "\(error)"
                XCTAssertTrue(text.hasPrefix("\(damaged.path): /"), text)
                XCTAssertFalse(text.contains("\n"), text)
                if text.hasPrefix("\(damaged.path): /tensors: "), tensorsHeader == nil { tensorsHeader = start }
            }
        }
        // The /tensors group's header, through the command line: one error line, exit status 1.
        try damage(try XCTUnwrap(tensorsHeader))
        let inspect = try CommandRunner.run(["inspect", damaged.path])
        XCTAssertEqual(inspect.status, 1)
        // irm's own check of the header (HDF5ObjectHeader) or libhdf5's checksum, whichever sees
        // the damage first.
        XCTAssertTrue(inspect.stderr.hasPrefix("irm: error: \(damaged.path): /tensors: "), inspect.stderr)
        XCTAssertTrue(inspect.stderr.contains("corrupt"), inspect.stderr)
        XCTAssertEqual(inspect.stderr.filter { $0 == "\n" }.count, 1, inspect.stderr)
        XCTAssertEqual(inspect.stdout, "")
    }

    func testACRC32AttributeOfAnotherTypeIsAnErrorNamingTheTensor() throws {
        let path = try convert("gpt2")
        try HDF5File.open(path, mode: .readWrite).root().group("tensors").dataset("transformer.wte.weight").setAttribute("crc32", .string("0x1234"))
        XCTAssertThrowsError(try Checkpoint.open(path: path)) { error in
            XCTAssertEqual("\(error)", "\(path): /tensors/transformer.wte.weight: attribute \"crc32\" is \"0x1234\"; expected an unsigned 32-bit integer (a CRC-32)")
        }
    }

    // MARK: Files written by others

    /// h5py's file (variable-length string attributes and datasets, no crc32, format 1.0) and a
    /// checkpoint of the demo, written by irm before format 1.1, still load, mapped or read.
    func testFilesWrittenByH5pyAndByEarlierIrmStillLoad() throws {
        for path in [Fixtures.path("checkpoints/handwritten-gpt2.h5"), Fixtures.repositoryPath("checkpoints/demo/rm.h5")] {
            let checkpoint = try Checkpoint.open(path: path)
            XCTAssertEqual(checkpoint.formatMinorVersion, 0, path)
            XCTAssertEqual(checkpoint.tensorChecksums, [:], path)
            XCTAssertLessThan(try XCTUnwrap(try HDF5File.open(path).superblockVersion), 2, "\(path): the original HDF5 format")
            for allowMapping in [true, false] {
                XCTAssertNoThrow(try ModelLoading.load(checkpoint: checkpoint, allowMapping: allowMapping), path)
            }
            let inspection = try CheckpointInspection(checkpoint: checkpoint, checkValues: true)
            XCTAssertTrue(inspection.isValid, path)
            XCTAssertTrue(inspection.text().contains("format        irm-checkpoint v1.0"), inspection.text())
            XCTAssertTrue(inspection.text().contains("checksums: none stored"), inspection.text())
        }
        let handwritten = try HDF5File.open(Fixtures.path("checkpoints/handwritten-gpt2.h5")).root()
        XCTAssertEqual(try handwritten.attribute("architecture"), .string("gpt2"), "h5py's variable-length str attribute")
        XCTAssertEqual(try handwritten.group("provenance").attribute("source_model"), .string("hand-written example"))
    }
}
