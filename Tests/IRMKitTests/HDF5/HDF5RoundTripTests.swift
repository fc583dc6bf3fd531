import Foundation
import XCTest
@testable import IRMKit

final class HDF5RoundTripTests: XCTestCase {
    private func newFile() throws -> (HDF5File, String) {
        let dir = try Fixtures.temporaryDirectory(for: self)
        let path = dir.appendingPathComponent("roundtrip.h5").path
        return (try HDF5File.create(path), path)
    }

    func testEveryDTypeRoundTripsWithShape() throws {
        let (file, path) = try newFile()
        let root = try file.root()
        let group = try root.createGroup("data")
        let f32: [Float] = [1.5, -2.25, .pi, 0, -0.0, 1e-30, 3.4e38]
        let f64: [Double] = [1.0 / 3.0, -1e300, .leastNonzeroMagnitude, 42]
        let f16: [Float16] = [1, -0.5, 65504, 6e-8, 0.1]
        let bf16: [BFloat16] = [1, -3.5, 1e30, 0.1].map(BFloat16.init)
        let i32: [Int32] = [.min, -1, 0, 7, .max]
        let i64: [Int64] = [.min, -1, 0, 1 << 40, .max]
        let u16: [UInt16] = [0, 1, 65535]
        try group.createDataset("f32", values: f32, shape: [7])
        try group.createDataset("f64", values: f64, shape: [2, 2])
        try group.createDataset("f16", values: f16, shape: [5, 1])
        try group.createDataset("bf16", values: bf16, shape: [2, 2])
        try group.createDataset("i32", values: i32, shape: [5])
        try group.createDataset("i64", values: i64, shape: [1, 5])
        try group.createDataset("u16", values: u16, shape: [3])
        try group.createDataset("scalar", values: [Float(7)], shape: [])
        try group.createDataset("empty", values: [Float](), shape: [0, 4])
        try group.createStringDataset("text", value: "héllo ▁ 世界 👍🏽\n\"quoted\"\u{0}after-nul-is-cut")
        try file.flush()

        let reopened = try HDF5File.open(path)
        let data = try reopened.root().group("data")
        XCTAssertEqual(try data.dataset("f32").read(as: Float.self, expectedShape: [7]).values.map(\.bitPattern), f32.map(\.bitPattern))
        XCTAssertEqual(try data.dataset("f64").read(as: Double.self).values, f64)
        XCTAssertEqual(try data.dataset("f64").info.shape, [2, 2])
        XCTAssertEqual(try data.dataset("f16").read(as: Float16.self).values.map(\.bitPattern), f16.map(\.bitPattern))
        XCTAssertEqual(try data.dataset("f16").info.elementType, .float16)
        XCTAssertEqual(try data.dataset("bf16").info.elementType, .bfloat16)
        XCTAssertEqual(try data.dataset("bf16").readBits(), bf16.map(\.bitPattern))
        XCTAssertEqual(try data.dataset("bf16").readFloat32().values, bf16.map(\.floatValue))
        XCTAssertEqual(try data.dataset("f16").readFloat32().values, f16.map { Float($0) })
        XCTAssertEqual(try data.dataset("i32").read(as: Int32.self).values, i32)
        XCTAssertEqual(try data.dataset("i64").read(as: Int64.self).values, i64)
        XCTAssertEqual(try data.dataset("u16").read(as: UInt16.self).values, u16)
        XCTAssertEqual(try data.dataset("scalar").read(as: Float.self).shape, [])
        XCTAssertEqual(try data.dataset("scalar").read(as: Float.self).values, [7])
        XCTAssertEqual(try data.dataset("empty").read(as: Float.self).values, [])
        XCTAssertEqual(try data.dataset("empty").info.shape, [0, 4])
        // Variable-length C strings end at the first NUL, as in h5py.
        XCTAssertEqual(try data.dataset("text").readString(), "héllo ▁ 世界 👍🏽\n\"quoted\"")
        XCTAssertEqual(try data.childNames(), ["bf16", "empty", "f16", "f32", "f64", "i32", "i64", "scalar", "text", "u16"])
        XCTAssertEqual(try reopened.root().kind(of: "data"), .group)
        XCTAssertEqual(data.kind(of: "f32"), .dataset)
        XCTAssertNil(data.kind(of: "absent"))
    }

    func testAttributesRoundTrip() throws {
        let (file, path) = try newFile()
        let root = try file.root()
        let values: [String: HDF5AttributeValue] = [
            "s": .string("ünïcode ✓"), "i": .int(-42), "d": .double(0.125),
            "ss": .strings(["a", "", "β"]), "ii": .ints([1, 2, 3]), "dd": .doubles([0.5, -1e-9]),
        ]
        for (name, value) in values { try root.setAttribute(name, value) }
        try root.setAttribute("i", .int(7))  // replacing an attribute is allowed
        try root.createDataset("x", values: [Float(1)], shape: [1])
        try root.dataset("x").setAttribute("unit", .string("nats"))
        try file.flush()

        let reopened = try HDF5File.open(path).root()
        for (name, value) in values where name != "i" {
            XCTAssertEqual(try reopened.attribute(name), value, name)
        }
        XCTAssertEqual(try reopened.attribute("i"), .int(7))
        XCTAssertNil(try reopened.attribute("absent"))
        XCTAssertEqual(try reopened.attributeNames().sorted(), ["d", "dd", "i", "ii", "s", "ss"])
        XCTAssertEqual(try reopened.dataset("x").attribute("unit")?.stringValue, "nats")
    }

    /// New files use HDF5's 1.8 format, whose superblock and object headers carry checksums;
    /// groups keep their links in their header; strings are fixed-length, so nothing lives in the
    /// global heap (whose corruption libhdf5 does not detect).
    func testNewFilesAreChecksummedWithFixedLengthStringsAndLinksInTheHeader() throws {
        let (file, path) = try newFile()
        let root = try file.root()
        let group = try root.createGroup("many")
        for index in 0..<40 { try group.createDataset("x\(index)", values: [Float(index)], shape: [1]) }
        let values: [String: HDF5AttributeValue] = [
            "exact": .string("bfloat16"), "empty": .string(""), "mixed": .strings(["a", "", "βγ", "a longer one"]),
        ]
        for (name, value) in values { try group.setAttribute(name, value) }
        try group.setAttribute("crc", uint32: 4_000_000_000)
        try root.createStringDataset("text", value: "fixed ✓")
        try file.flush()

        let reopened = try HDF5File.open(path)
        XCTAssertEqual(reopened.superblockVersion, 2)
        let many = try reopened.root().group("many")
        for holder in [try reopened.root(), many, try many.dataset("x7")] as [any HDF5AttributeHolder] {
            XCTAssertEqual(holder.objectHeaderVersion, 2, holder.path)
        }
        for (name, value) in values { XCTAssertEqual(try many.attribute(name), value, name) }
        XCTAssertEqual(try many.attribute("crc"), .int(4_000_000_000))
        XCTAssertEqual(try many.childNames().count, 40)
        XCTAssertEqual(try reopened.root().dataset("text").readString(), "fixed ✓")
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertEqual(bytes[8], 2, "superblock version, after the 8-byte signature")
        for signature in ["GCOL", "FRHP"] {
            let pattern = Array(signature.utf8)
            XCTAssertFalse((0...(bytes.count - 4)).contains { Array(bytes[$0..<($0 + 4)]) == pattern }, "no \(signature) block")
        }

        // An attribute beyond the 64 KiB of a header message goes to the object's dense attribute
        // storage (a fractal heap), which the 1.8 format allows.
        let (large, largePath) = try newFile()
        let long = String(repeating: "long ", count: 20_000)
        try large.root().setAttribute("long", .string(long))
        try large.flush()
        XCTAssertEqual(try HDF5File.open(largePath).root().attribute("long"), .string(long))
        XCTAssertGreaterThan(try HDF5File.open(largePath).sizeOnDisk, 100_000)
    }

    func testTypeAndShapeMismatchesNameTheObject() throws {
        let (file, path) = try newFile()
        let root = try file.root()
        try root.createDataset("w", values: [Float](repeating: 1, count: 6), shape: [2, 3])
        try file.flush()
        let dataset = try HDF5File.open(path).root().dataset("w")
        XCTAssertThrowsError(try dataset.read(as: Float.self, expectedShape: [3, 2])) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains(path), message)
            XCTAssertTrue(message.contains("/w"), message)
            XCTAssertTrue(message.contains("expected shape [3, 2], found [2, 3]"), message)
        }
        XCTAssertThrowsError(try dataset.read(as: Double.self)) { error in
            XCTAssertTrue("\(error)".contains("expected float64 values, found float32"), "\(error)")
        }
        XCTAssertThrowsError(try dataset.readString()) { error in
            XCTAssertTrue("\(error)".contains("expected a string"), "\(error)")
        }
        XCTAssertThrowsError(try HDF5File.open(path).root().dataset("missing")) { error in
            XCTAssertTrue("\(error)".contains("/missing: expected a dataset, found nothing"), "\(error)")
        }
        XCTAssertThrowsError(try HDF5File.open(path).root().group("w")) { error in
            XCTAssertTrue("\(error)".contains("/w: expected a group, found a dataset"), "\(error)")
        }
        XCTAssertThrowsError(try root.createDataset("bad", values: [Float(1), 2], shape: [3])) { error in
            XCTAssertTrue("\(error)".contains("expected 3 float32 values for shape [3], found 8 bytes"), "\(error)")
        }
        XCTAssertThrowsError(try root.createDataset("w", values: [Float(1)], shape: [1])) { error in
            XCTAssertTrue("\(error)".contains("already taken"), "\(error)")
        }
    }

    func testOpeningBadFilesGivesActionableErrors() throws {
        let dir = try Fixtures.temporaryDirectory(for: self)
        let missing = dir.appendingPathComponent("nope.h5").path
        XCTAssertThrowsError(try HDF5File.open(missing)) { XCTAssertEqual("\($0)", "\(missing): file not found") }

        let text = dir.appendingPathComponent("text.h5")
        try Data("just text, not HDF5".utf8).write(to: text)
        XCTAssertThrowsError(try HDF5File.open(text.path)) { error in
            XCTAssertTrue("\(error)".contains("not an HDF5 file"), "\(error)")
        }
        XCTAssertThrowsError(try HDF5File.open(dir.path)) { error in
            XCTAssertTrue("\(error)".contains("found a directory"), "\(error)")
        }
        XCTAssertThrowsError(try HDF5File.create(dir.appendingPathComponent("no/such/dir/x.h5").path)) { error in
            XCTAssertTrue("\(error)".contains("cannot create the file"), "\(error)")
        }
    }

    func testTruncatedFileFailsCleanly() throws {
        let (file, path) = try newFile()
        try file.root().createDataset("big", values: [Float](repeating: 0.5, count: 100_000), shape: [100_000])
        try file.flush()
        let full = try Data(contentsOf: URL(fileURLWithPath: path))
        for keep in [full.count / 2, 1000, 100] {
            let truncated = URL(fileURLWithPath: path + ".cut\(keep)")
            try full.prefix(keep).write(to: truncated)
            let outcome = Result { try HDF5File.open(truncated.path).root().dataset("big").read(as: Float.self) }
            guard case .failure(let error) = outcome else {
                XCTFail("reading a file truncated to \(keep) bytes should fail")
                continue
            }
            XCTAssertTrue("\(error)".hasPrefix(truncated.path), "\(error)")
        }
    }

    func testSameContentGivesByteIdenticalFiles() throws {
        let dir = try Fixtures.temporaryDirectory(for: self)
        var digests: [Data] = []
        for name in ["a.h5", "b.h5"] {
            let path = dir.appendingPathComponent(name).path
            do {
                let file = try HDF5File.create(path)
                let root = try file.root()
                try root.setAttribute("k", .string("v"))
                try root.createGroup("g").createDataset("x", values: [Float(1), 2, 3], shape: [3])
                try root.createStringDataset("s", value: "text")
            }
            Thread.sleep(forTimeInterval: 1.1)  // modification times, if recorded, would now differ
            digests.append(try Data(contentsOf: URL(fileURLWithPath: path)))
        }
        XCTAssertEqual(digests[0], digests[1])
    }

    func testBFloat16Rounding() {
        // Ties to even on the 16th bit; NaN stays NaN; infinities stay.
        XCTAssertEqual(BFloat16(Float(bitPattern: 0x3F80_8000)).bitPattern, 0x3F80)  // tie, even stays
        XCTAssertEqual(BFloat16(Float(bitPattern: 0x3F81_8000)).bitPattern, 0x3F82)  // tie, odd rounds up
        XCTAssertEqual(BFloat16(Float(bitPattern: 0x3F80_8001)).bitPattern, 0x3F81)
        XCTAssertTrue(BFloat16(Float.nan).floatValue.isNaN)
        XCTAssertEqual(BFloat16(Float.infinity).floatValue, .infinity)
        XCTAssertEqual(BFloat16(-Float.infinity).floatValue, -.infinity)
        XCTAssertEqual(BFloat16(Float(1)).floatValue, 1)
    }
}
