import Foundation
import XCTest
@testable import IRMKit

/// irm reads variable-length strings (HDF5GlobalHeap.swift) and chunked datasets
/// (HDF5ChunkedRead.swift) without libhdf5's code for them. These tests hold those readers to what
/// h5py reads from files h5py wrote (scripts/fixtures/make_hdf5_reader_fixtures.py), and check that
/// chunks libhdf5 1.10 would copy past or silently fill are errors naming the dataset and chunk.
final class HDF5ReaderParityTests: XCTestCase {
    struct Expected: Decodable {
        let attributes: [String: String]
        let list: [String]
        let many: [String]
        let fixed: String
        let text: String
        let text_short: String
        let chunked: [String: [Double]]
        let f16_big_endian_contiguous: [Double]
    }

    private func expected() throws -> Expected {
        try JSONDecoder().decode(Expected.self, from: Data(contentsOf: Fixtures.url("hdf5/readers.json")))
    }

    func testVariableLengthStringsReadAsH5pyReadsThem() throws {
        let expected = try expected()
        let root = try HDF5File.open(Fixtures.path("hdf5/readers.h5")).root()
        for (name, value) in expected.attributes {
            XCTAssertEqual(try root.attribute(name), .string(value), name)
        }
        XCTAssertEqual(expected.attributes["big"]?.utf8.count, 10000, "a string larger than a 4 KiB heap collection")
        XCTAssertEqual(try root.attribute("list"), .strings(expected.list))
        XCTAssertEqual(expected.many.count, 700)
        XCTAssertEqual(try root.attribute("many"), .strings(expected.many), "strings spread over more than one heap collection")
        XCTAssertEqual(try root.attribute("fixed"), .string(expected.fixed))
        XCTAssertEqual(try root.dataset("text").readString(), expected.text)
        XCTAssertEqual(try root.dataset("text_short").readString(), expected.text_short)
    }

    func testChunkedDatasetsDecodedByIrmMatchH5py() throws {
        let expected = try expected()
        let group = try HDF5File.open(Fixtures.path("hdf5/readers.h5")).root().group("chunked")
        XCTAssertEqual(expected.chunked.count, 7)
        for (name, values) in expected.chunked {
            let dataset = try group.dataset(name)
            guard case .chunked = try dataset.storage() else { return XCTFail("\(name) is not chunked") }
            let got: [Double]
            switch dataset.info.elementType {
            case .int64: got = try dataset.read(as: Int64.self).values.map(Double.init)
            case .uint16: got = try dataset.readBits().map(Double.init)
            case .float64: got = try dataset.read(as: Double.self).values
            default: got = try dataset.readFloat32().values.map(Double.init)
            }
            XCTAssertEqual(got, values, name)
        }
        XCTAssertEqual(try group.dataset("f32_shuffle_deflate_fletcher32").storage(), .chunked(filters: ["shuffle", "deflate", "fletcher32"]))
    }

    func testBigEndianHalfFloatsReadAsTheirValues() throws {
        let expected = try expected()
        let dataset = try HDF5File.open(Fixtures.path("hdf5/readers.h5")).root().dataset("f16_big_endian_contiguous")
        XCTAssertEqual(try dataset.readFloat32().values.map(Double.init), expected.f16_big_endian_contiguous)
    }

    func testDamagedChunksAreErrorsNamingTheDatasetAndTheChunk() throws {
        let path = Fixtures.path("hdf5/damaged-chunks.h5")
        let root = try HDF5File.open(path).root()
        let cases: [(String, String)] = [
            ("deflate_short", "the chunk at [0, 4]: decodes to 40 bytes where its chunk shape holds 64; the file is corrupt"),
            ("deflate_long", "the chunk at [0, 4]: it inflates to more than the 68 bytes its chunk shape allows; the file is corrupt"),
            ("deflate_broken", "the chunk at [0, 4]: its deflate stream is damaged"),
            ("fletcher32_mismatch", "the chunk at [0, 4]: its fletcher32 checksum does not match its bytes; the file is corrupt"),
            ("chunk_never_written", "the chunk at [0, 4] was never written"),
        ]
        for (name, message) in cases {
            XCTAssertThrowsError(try root.dataset(name).readFloat32(), name) { error in
                guard let error = error as? HDF5Error else { return XCTFail("\(name): expected an HDF5Error, got \(error)") }
                XCTAssertEqual(error.file, path)
                XCTAssertEqual(error.object, "/\(name)")
                XCTAssertTrue(error.message.hasPrefix(message), "\(name): \(error.message)")
            }
        }
    }

    /// Attribute messages are checked by irm before libhdf5 decodes them (HDF5ObjectHeader.swift);
    /// the check must accept what h5py writes in 1.8-format headers too: checksummed chunks,
    /// creation order, and more than 8 attributes (dense storage, which the check leaves to libhdf5).
    func testAttributesInChecksummedHeadersAndDenseStorageReadAsWritten() throws {
        let root = try HDF5File.open(Fixtures.path("hdf5/attributes-v2.h5")).root()
        XCTAssertEqual(root.objectHeaderVersion, 2)
        for i in 0..<12 {
            let name = String(format: "a%02d", i)
            XCTAssertEqual(try root.attribute(name), i % 3 == 0 ? .string("value \(i)") : .int(Int64(i)), name)
        }
        XCTAssertEqual(try root.attribute("floats"), .doubles([1.5, -2.25]))
        XCTAssertEqual(try root.attributeNames().count, 13)
        let data = try root.dataset("data")
        XCTAssertEqual(try data.attribute("unit"), .string("nats"))
        XCTAssertEqual(try data.attribute("count"), .int(6))
    }

    func testAttributeTypesLibhdf5DecodesUncheckedAreRefusedNamingTheAttribute() throws {
        let path = Fixtures.path("hdf5/attribute-bool.h5")
        let root = try HDF5File.open(path).root()
        XCTAssertThrowsError(try root.attribute("name")) { error in
            guard let error = error as? HDF5Error else { return XCTFail("expected an HDF5Error, got \(error)") }
            XCTAssertEqual(error.file, path)
            XCTAssertEqual(error.object, "/")
            XCTAssertTrue(error.message.hasPrefix("attribute 'flag': has an enum (h5py writes bool this way) datatype, which irm does not read"), error.message)
        }
    }
}
