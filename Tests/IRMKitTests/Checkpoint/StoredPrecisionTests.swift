import Foundation
import XCTest
@testable import IRMKit

/// Weights at their stored precision, mapped in place (Checkpoint/StoredTensor.swift,
/// Support/MappedFile.swift, Model/DenseWeight.swift): the fast widening against the plain
/// conversions, mapped models against the same models read into memory, files that cannot be
/// mapped (h5py's chunked and compressed layouts), files that must be refused (external storage,
/// links, unknown filters), and a mapped file that changes under irm.
final class StoredPrecisionTests: XCTestCase {
    // MARK: Widening

    func testFloat16WideningMatchesTheStandardConversionOnEveryBitPattern() {
        let patterns = (0...UInt16.max).map { $0 }
        for widen in [HalfPrecision.widenFloat16BitTrick, HalfPrecision.widenFloat16Converting, HalfPrecision.widenFloat16] {
            var widened = [Float](repeating: 0, count: patterns.count)
            patterns.withUnsafeBytes { source in
                widened.withUnsafeMutableBufferPointer { widen(source.baseAddress!, patterns.count, $0.baseAddress!) }
            }
            for (pattern, value) in zip(patterns, widened) {
                let expected = Float(Float16(bitPattern: pattern))
                if expected.isNaN {
                    XCTAssertTrue(value.isNaN, "pattern \(pattern)")
                    XCTAssertEqual(value.sign, expected.sign, "pattern \(pattern)")
                } else {
                    XCTAssertEqual(value.bitPattern, expected.bitPattern, "pattern \(String(pattern, radix: 16))")
                }
            }
        }
    }

    func testBFloat16WideningMatchesTheShiftOnEveryBitPatternAndEveryTailLength() {
        let patterns = (0...UInt16.max).map { $0 }
        var widened = [Float](repeating: 0, count: patterns.count)
        patterns.withUnsafeBytes { source in
            widened.withUnsafeMutableBufferPointer { HalfPrecision.widenBFloat16(source.baseAddress!, count: patterns.count, into: $0.baseAddress!) }
        }
        XCTAssertEqual(widened.map(\.bitPattern), patterns.map { BFloat16(bitPattern: $0).floatValue.bitPattern })
        // Lengths that end inside a 16-lane step, at odd offsets.
        for length in 0..<40 {
            let part = Array(patterns[(1000 + length)..<(1000 + 2 * length)])
            var out = [Float](repeating: -1, count: length + 1)
            part.withUnsafeBytes { source in
                out.withUnsafeMutableBufferPointer { HalfPrecision.widenFloat16(source.baseAddress!, count: length, into: $0.baseAddress!) }
            }
            XCTAssertEqual(Array(out.prefix(length)).map(\.bitPattern), part.map { Float(Float16(bitPattern: $0)).bitPattern })
            XCTAssertEqual(out[length], -1, "writes nothing past the range")
        }
    }

    func testHalfPrecisionNonFiniteScanFindsTheFirstBadValue() {
        for (limit, infinity, largestFinite) in [(UInt16(0x7C00), UInt16(0x7C00), UInt16(0x7BFF)), (0x7F80, 0x7F80, 0x7F7F)] {
            var values = [UInt16](repeating: largestFinite | 0x8000, count: 101)
            XCTAssertNil(values.withUnsafeBytes { HalfPrecision.firstNonFinite($0.baseAddress!, count: 101, magnitudeLimit: limit) })
            values[77] = infinity | 0x8000
            values[90] = infinity | 1  // a NaN
            XCTAssertEqual(values.withUnsafeBytes { HalfPrecision.firstNonFinite($0.baseAddress!, count: 101, magnitudeLimit: limit) }, 77)
        }
    }

    /// The word-at-a-time scan against the plain definition (`isFinite` of the widened value): one
    /// non-finite value at every position of every lane and of the tail, among finite values of
    /// every exponent (a borrow between lanes must not flag a finite neighbour), and a random mix.
    func testHalfPrecisionNonFiniteScanAgreesWithThePlainDefinitionAtEveryPosition() {
        var random = SeededGenerator(seed: 99)
        for (limit, widen) in [(UInt16(0x7C00), { (b: UInt16) in Float(Float16(bitPattern: b)) }),
                               (0x7F80, { (b: UInt16) in BFloat16(bitPattern: b).floatValue })] as [(UInt16, (UInt16) -> Float)] {
            let count = 37
            func finite() -> UInt16 {
                while true {
                    let b = UInt16.random(in: 0...UInt16.max, using: &random)
                    if widen(b).isFinite { return b }
                }
            }
            func plain(_ v: [UInt16]) -> Int? { v.firstIndex { !widen($0).isFinite } }
            func scan(_ v: [UInt16]) -> Int? { v.withUnsafeBytes { HalfPrecision.firstNonFinite($0.baseAddress!, count: v.count, magnitudeLimit: limit) } }
            for _ in 0..<20 {
                let clean = (0..<count).map { _ in finite() }
                XCTAssertNil(scan(clean))
                for position in 0..<count {
                    for bad in [limit, limit | 0x8000, limit | 1, limit | 0x8000 | (limit ^ 0x7FFF)] {
                        var values = clean
                        values[position] = bad
                        XCTAssertEqual(scan(values), position, "limit \(limit), \(bad) at \(position)")
                        XCTAssertEqual(scan(Array(values[..<(position + 1)])), plain(Array(values[..<(position + 1)])))
                    }
                }
                let mixed = (0..<count).map { _ in UInt16.random(in: 0...UInt16.max, using: &random) }
                XCTAssertEqual(scan(mixed), plain(mixed))
            }
        }
    }

    // MARK: Mapped models

    /// Every architecture in f32, f16 and bf16: `irm convert` writes contiguous tensors, a model
    /// maps every matrix of them at its stored precision, and its log-probs agree with the same
    /// checkpoint read into float32 arrays. The two differ only by how sgemm blocks the panels.
    func testConvertedCheckpointsAreMappedAndScoreAsWhenRead() throws {
        let names = ["sharp-gpt2", "sharp-neox", "sharp-llama", "sharp-gemma2-f16", "sharp-olmo2-bf16", "sharp-opt-bf16", "sharp-phi3-f16", "gpt2-f16", "llama-bf16"]
        for name in names {
            let fixture = try LogProbFixture.load(name)
            let checkpoint = try Checkpoint.open(path: ModelFixtures.checkpointPath(fixture.modelDir, for: self))
            XCTAssertTrue(checkpoint.storageSummary.hasPrefix("all "), "\(name): \(checkpoint.storageSummary)")
            let mapped = try ModelLoading.load(checkpoint: checkpoint)
            let read = try ModelLoading.load(checkpoint: checkpoint, allowMapping: false)
            XCTAssertTrue(mapped.outputHead.isMapped, name)
            XCTAssertFalse(read.outputHead.isMapped, name)
            let stored = try XCTUnwrap(checkpoint.tensors.first { $0.shape.count == 2 }).dtype
            XCTAssertEqual(mapped.outputHead.element, StoredTensor.Element(stored), name)
            let samples = fixture.scoringSamples
            let a = try LogProbScorer().logProbs(of: samples, under: mapped)
            let b = try LogProbScorer().logProbs(of: samples, under: read)
            for (x, y) in zip(a, b) {
                assertClose(withMissingAsNaN(x.tokens), withMissingAsNaN(y.tokens), absolute: 2e-5, "\(name): mapped vs read")
            }
        }
    }

    func testPanelGEMMMatchesTheReferenceForStackedHalfPrecisionParts() throws {
        // Three bf16 parts stacked (as q/k/v), applied by panels narrower than the matrix.
        let inFeatures = 37, rows = 5
        var random = SeededRandom(seed: 7)
        let parts = [11, 3, 29].map { out in (0..<(out * inFeatures)).map { _ in BFloat16(Float(random.unitInterval() * 2 - 1)).floatValue } }
        let x = (0..<(rows * inFeatures)).map { _ in Float(random.unitInterval() * 2 - 1) }
        let directory = try Fixtures.temporaryDirectory(for: self)
        let path = directory.appendingPathComponent("parts.h5").path
        let file = try HDF5File.create(path)
        let root = try file.root()
        for (index, values) in parts.enumerated() {
            try root.createDataset("p\(index)", values: values.map(BFloat16.init), shape: [values.count / inFeatures, inFeatures])
        }
        try file.flush()
        let mapping = try MappedFile(path: path)
        var weights: [DenseWeight] = []
        for (index, values) in parts.enumerated() {
            guard case .contiguous(let offset, _) = try root.dataset("p\(index)").storage() else { return XCTFail("p\(index) is not contiguous") }
            let tensor = StoredTensor(name: "p\(index)", shape: [values.count / inFeatures, inFeatures], element: .bfloat16, mapping: mapping, byteOffset: offset)
            weights.append(DenseWeight(tensor: tensor, outFeatures: values.count / inFeatures, inFeatures: inFeatures, layout: .outByIn))
        }
        let stacked = DenseWeight(stacking: weights)
        XCTAssertNil(stacked.float32Pointer)
        XCTAssertEqual(stacked.floatValues(), parts.flatMap { $0 })
        let expected = ReferenceKernels.linear(x, rows: rows, weight: parts.flatMap { $0 }, outFeatures: stacked.outFeatures, inFeatures: inFeatures, bias: nil)
        // One panel, panels of 5 output rows (crossing the parts' boundaries), and one row each.
        for panelElements in [Kernels.panelElements, 5 * inFeatures, inFeatures] {
            var output = [Float](repeating: 0, count: rows * stacked.outFeatures)
            x.withUnsafeBufferPointer { input in
                output.withUnsafeMutableBufferPointer {
                    Kernels.gemmByPanels(input.baseAddress!, rows: rows, weight: stacked, output: $0.baseAddress!, beta: 0, profile: nil, panelElements: panelElements)
                }
            }
            assertClose(output.map(Double.init), expected, absolute: 1e-5, relative: 1e-5, "panels of \(panelElements / inFeatures) rows")
        }
        // GPT-2's [in, out] layout, by panels of columns.
        let conv = DenseWeight(values: parts[2], outFeatures: inFeatures, inFeatures: 29, layout: .inByOut)
        let y = (0..<(rows * 29)).map { _ in Float(random.unitInterval() * 2 - 1) }
        var transposed = [Float](repeating: 0, count: parts[2].count)
        for i in 0..<29 { for o in 0..<inFeatures { transposed[o * 29 + i] = parts[2][i * inFeatures + o] } }
        let expectedConv = ReferenceKernels.linear(y, rows: rows, weight: transposed, outFeatures: inFeatures, inFeatures: 29, bias: nil)
        for panelElements in [Kernels.panelElements, 4 * 29, 29] {
            var output = [Float](repeating: 0, count: rows * inFeatures)
            y.withUnsafeBufferPointer { input in
                output.withUnsafeMutableBufferPointer {
                    Kernels.gemmByPanels(input.baseAddress!, rows: rows, weight: conv, output: $0.baseAddress!, beta: 0, profile: nil, panelElements: panelElements)
                }
            }
            assertClose(output.map(Double.init), expectedConv, absolute: 1e-5, relative: 1e-5, "[in, out] panels of \(panelElements / 29) columns")
        }
    }

    // MARK: Files written by others

    func testChunkedAndCompressedTensorsAreReadWithANoteAndScoreAsTheContiguousFile() throws {
        let contiguous = try Checkpoint.open(path: Fixtures.path("checkpoints/handwritten-gpt2.h5"))
        let chunked = try Checkpoint.open(path: Fixtures.path("checkpoints/storage/chunked-gzip.h5"))
        XCTAssertTrue(contiguous.storageSummary.hasPrefix("all 16 tensors contiguous"), contiguous.storageSummary)
        XCTAssertEqual(chunked.storageSummary,
                       "0 of 16 tensors mapped in place; 16 read into memory as float32 (16 chunked, shuffle + deflate): convert the model with `irm convert` to map them")
        XCTAssertEqual(chunked.tensorStorage["transformer.wte.weight"], .chunked(filters: ["shuffle", "deflate"]))
        let samples = [ScoringSample(name: "s", promptIDs: [5, 9, 200], responseIDs: [17, 4, 300, 2])]
        let a = try LogProbScorer().logProbs(of: samples, under: ModelLoading.load(checkpoint: contiguous))
        let b = try LogProbScorer().logProbs(of: samples, under: ModelLoading.load(checkpoint: chunked))
        assertClose(withMissingAsNaN(a[0].tokens), withMissingAsNaN(b[0].tokens), absolute: 1e-5)
    }

    func testValuesOutsideTheFileAndUnknownFiltersAreRefusedNamingTheTensor() throws {
        let tensor = "/tensors/transformer.h.0.mlp.c_fc.weight"
        let cases: [(String, String)] = [
            ("external.h5", "keeps its values in other files (HDF5 external storage: external.bin); irm reads only what the checkpoint itself holds"),
            ("external-link.h5", "is a soft or external link; irm reads only objects stored in the file itself"),
            ("soft-link.h5", "is a soft or external link; irm reads only objects stored in the file itself"),
            ("lzf.h5", "compressed with filter 32000"),
        ]
        for (file, message) in cases {
            let path = Fixtures.path("checkpoints/storage/\(file)")
            XCTAssertThrowsError(try Checkpoint.open(path: path), file) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains(path), "\(file): \(text)")
                XCTAssertTrue(text.contains(tensor), "\(file): \(text)")
                XCTAssertTrue(text.contains(message), "\(file): \(text)")
            }
        }
    }

    func testATruncatedCheckpointIsRefusedWhenOpened() throws {
        let directory = try Fixtures.temporaryDirectory(for: self)
        let path = directory.appendingPathComponent("huge.h5").path
        let source = try Checkpoint.open(path: Fixtures.path("checkpoints/handwritten-gpt2.h5"))
        XCTAssertFalse(source.tensors.isEmpty)
        try FileManager.default.copyItem(atPath: Fixtures.path("checkpoints/handwritten-gpt2.h5"), toPath: path)
        // Truncate the copy inside the largest tensor's values: open must fail naming it.
        let largest = try XCTUnwrap(source.tensors.max { $0.elementCount < $1.elementCount })
        guard case .contiguous(let offset, _)? = source.tensorStorage[largest.name] else { return XCTFail("not contiguous") }
        XCTAssertEqual(truncate(path, off_t(offset + 8)), 0)
        XCTAssertThrowsError(try Checkpoint.open(path: path)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(path), text)
        }
    }

    // MARK: A mapped file that changes

    func testAMappedCheckpointRewrittenOrTruncatedDuringARunIsAnErrorNamingIt() throws {
        let directory = try Fixtures.temporaryDirectory(for: self)
        for change in ["truncate", "rewrite", "replace"] {
            let path = directory.appendingPathComponent("\(change).h5").path
            try FileManager.default.copyItem(atPath: Fixtures.path("checkpoints/handwritten-gpt2.h5"), toPath: path)
            let model = try ModelLoading.load(path: path)
            XCTAssertTrue(model.outputHead.isMapped)
            let samples = [ScoringSample(name: "s", promptIDs: [5, 9], responseIDs: [17, 4])]
            _ = try LogProbScorer().logProbs(of: samples, under: model)
            switch change {
            case "truncate":
                // Shrinks the file but leaves every page irm touched in place, so no SIGBUS.
                var info = stat()
                XCTAssertEqual(stat(path, &info), 0)
                XCTAssertEqual(truncate(path, info.st_size - 1), 0)
            case "rewrite":
                let handle = try XCTUnwrap(FileHandle(forWritingAtPath: path))
                try handle.seek(toOffset: 100)
                try handle.write(contentsOf: Data([0]))
                var times = [timespec(tv_sec: 1_000_000, tv_nsec: 0), timespec(tv_sec: 1_000_000, tv_nsec: 0)]
                XCTAssertEqual(futimens(handle.fileDescriptor, &times), 0)
                try handle.close()
            default:
                try FileManager.default.removeItem(atPath: path)
                try FileManager.default.copyItem(atPath: Fixtures.path("checkpoints/handwritten-gpt2.h5"), toPath: path)
            }
            XCTAssertThrowsError(try LogProbScorer().logProbs(of: samples, under: model), change) { error in
                let text = "\(error)"
                XCTAssertTrue(text.hasPrefix("\(path): the file "), "\(change): \(text)")
                XCTAssertTrue(text.contains("while irm was using it"), "\(change): \(text)")
            }
        }
    }

    /// A page of a mapping touched after the file shrank raises SIGBUS; irm's handler turns it into
    /// one error line and exit status 1. Run in a child process (this test binary, running only
    /// `childTouchesATruncatedMapping`), since the handler ends the process.
    func testTouchingATruncatedMappingEndsWithAnErrorLineNotACrash() throws {
        let directory = try Fixtures.temporaryDirectory(for: self)
        let path = directory.appendingPathComponent("shrinking.bin").path
        try Data(repeating: 7, count: 3 * 65536).write(to: URL(fileURLWithPath: path))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0])
        process.arguments = ["IRMKitTests.StoredPrecisionTests/testChildTouchesATruncatedMapping"]
        var environment = ProcessInfo.processInfo.environment
        environment[Self.childVariable] = path
        process.environment = environment
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .exit, stderr)
        XCTAssertEqual(process.terminationStatus, 1, stderr)
        XCTAssertTrue(stderr.contains("irm: error: \(path): the file shrank while irm was reading it"), stderr)
        // The output the child had begun leaves neither its temporary file nor its lock.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), ["shrinking.bin"])
    }

    static let childVariable = "IRM_TEST_TRUNCATED_MAPPING"

    /// Only does something in the child process of the test above.
    func testChildTouchesATruncatedMapping() throws {
        guard let path = ProcessInfo.processInfo.environment[Self.childVariable] else { return }
        let mapping = try MappedFile(path: path)
        let output = try AtomicOutput.PendingFile(destination: URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("out.txt"))
        try Data("partial".utf8).write(to: output.temporary)
        XCTAssertEqual(truncate(path, 0), 0)
        var sum = 0
        for offset in stride(from: 0, to: mapping.byteCount, by: 4096) { sum &+= Int(mapping.base.load(fromByteOffset: offset, as: UInt8.self)) }
        print("not reached: \(sum)")
        exit(3)
    }
}
