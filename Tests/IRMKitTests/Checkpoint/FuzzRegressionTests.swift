import Foundation
import XCTest
@testable import IRMKit

/// Inputs that crashed a fuzz target (scripts/fuzz/), kept as regression tests: each one must now
/// give an error that names the file and the object, never a crash.
final class FuzzRegressionTests: XCTestCase {
    /// scripts/fuzz checkpoint target: Tests/Fixtures/checkpoints/storage/chunked-gzip.h5 with two
    /// bytes of /tensors' link index changed, so that libhdf5 lists "transformer.wte.weight" twice.
    /// `Checkpoint.open` accepted it and `tensorProblems()` trapped in
    /// `Dictionary(uniqueKeysWithValues:)` ("Duplicate values for key").
    func testCheckpointWhoseTensorGroupListsALinkTwiceIsRefused() throws {
        let path = Fixtures.path("fuzz/checkpoint-duplicate-tensor-link.h5")
        XCTAssertThrowsError(try Checkpoint.open(path: path)) { error in
            guard let error = error as? HDF5Error else { return XCTFail("expected an HDF5Error, got \(error)") }
            XCTAssertEqual(error.file, path)
            XCTAssertEqual(error.object, "/tensors")
            XCTAssertTrue(error.message.contains("\"transformer.wte.weight\" more than once"), error.message)
        }
    }

    /// scripts/fuzz checkpoint target: Tests/Fixtures/checkpoints/handwritten-gpt2.h5 with one byte
    /// changed (offset 16319, 0x00 to 0x0a): the top byte of a tensor's first extent, so that its
    /// dataspace declares 720575940379279680 x 16 values. libhdf5 opens it as is, and
    /// `HDF5Dataset.storage()` trapped on an arithmetic overflow computing the byte count.
    func testCheckpointWhoseTensorShapeOverflowsIsRefused() throws {
        let path = Fixtures.path("fuzz/checkpoint-dataspace-overflow.h5")
        XCTAssertThrowsError(try Checkpoint.open(path: path)) { error in
            guard let error = error as? HDF5Error else { return XCTFail("expected an HDF5Error, got \(error)") }
            XCTAssertEqual(error.file, path)
            XCTAssertEqual(error.object, "/tensors/transformer.wte.weight")
            // Refused by irm's check of the dataset's header before libhdf5 opens it (and, were
            // that check passed, by HDF5Dataset.readInfo after).
            XCTAssertEqual(error.message, "its dataspace declares more elements than any file holds; the file is corrupt")
        }
    }

    /// scripts/fuzz checkpoint target, and the family of 50 more inputs it found: a damaged global
    /// heap collection under a variable-length string (h5py's default for `str`). libhdf5 1.10
    /// converts such strings trusting the heap: a `memcpy-param-overlap` or SEGV in `H5HG_read`, a
    /// hang in `H5HG__protect`, gigabyte `malloc`s in `H5T__conv_vlen`. irm now reads these strings
    /// itself (HDF5GlobalHeap.swift), checking every size.
    func testDamagedGlobalHeapsUnderVariableLengthStringsAreRefused() throws {
        let cases: [(String, String, String)] = [
            ("checkpoint-H5HG_read-overlap.h5", "/", "attribute 'irm_format': object 1 of the global heap collection at 2048 declares 18374687579187791186 bytes, more than the collection's remaining 2960"),
            ("checkpoint-H5HG-hang.h5", "/", "attribute 'irm_format': free space of 0 bytes in the global heap collection at 2048, less than its own header"),
            ("checkpoint-H5HG_read-dataset.h5", "/config", "the global heap collection at 2048 has no object 1601466471"),
        ]
        for (file, object, message) in cases {
            let path = Fixtures.path("fuzz/\(file)")
            XCTAssertThrowsError(try Checkpoint.open(path: path), file) { error in
                guard let error = error as? HDF5Error else { return XCTFail("\(file): expected an HDF5Error, got \(error)") }
                XCTAssertEqual(error.file, path)
                XCTAssertEqual(error.object, object, file)
                XCTAssertTrue(error.message.contains(message), "\(file): \(error.message)")
                XCTAssertTrue(error.message.hasSuffix("the file is corrupt"), "\(file): \(error.message)")
            }
        }
    }

    /// scripts/fuzz checkpoint target (fork mode): one byte of chunked-gzip.h5's layout message
    /// changed, so that a tensor's chunk is 16 x 16580656 values in a 16 x 48 dataset. libhdf5's
    /// `H5Dread` inflated the 3 KB chunk and copied it as if it held the declared size (SEGV in
    /// `H5VM_memcpyvv`). irm decodes chunks itself now and refuses the layout at open.
    func testChunkShapeLargerThanItsDatasetIsRefused() throws {
        let path = Fixtures.path("fuzz/checkpoint-chunk-dims-overread.h5")
        XCTAssertThrowsError(try Checkpoint.open(path: path)) { error in
            guard let error = error as? HDF5Error else { return XCTFail("expected an HDF5Error, got \(error)") }
            XCTAssertEqual(error.file, path)
            XCTAssertEqual(error.object, "/tensors/transformer.h.0.attn.c_attn.weight")
            XCTAssertEqual(error.message, "declares chunk shape [16, 16580656] for a dataset of shape [16, 48]; the file is corrupt")
        }
    }

    /// scripts/fuzz checkpoint target (2026-12-02): damaged attribute messages in version 1 object
    /// headers (no checksum) of h5py's files. libhdf5 1.10.8 decodes every attribute message on
    /// `H5Aexists` and copies the sizes the message declares: a use-after-free (an attribute whose
    /// datatype claims 15,628 bytes) and a heap-buffer-overflow (one whose datatype claims 93 bytes
    /// of a 72-byte message) in `H5O__msg_iterate_real`, and a heap-buffer-overflow in `H5A__read`. irm now checks each object's attribute
    /// messages itself before libhdf5 decodes them (HDF5ObjectHeader.swift).
    func testDamagedAttributeMessagesAreRefusedBeforeLibhdf5DecodesThem() throws {
        let cases: [(String, String, String)] = [
            ("checkpoint-H5O-attribute-use-after-free.h5", "/",
             "attribute 3: its name (19 bytes), datatype (15628) and dataspace (8) do not fit in its 64-byte message; the file is corrupt"),
            ("checkpoint-H5O-attribute-overread.h5", "/provenance",
             "attribute 1: its name (13 bytes), datatype (93) and dataspace (8) do not fit in its 72-byte message; the file is corrupt"),
            // A variable-length string type whose stored width is 1: libhdf5 sized the value's
            // buffer by it and then copied 16-byte heap IDs out of it (H5A__read).
            ("checkpoint-H5A-vlen-width-overread.h5", "/",
             "attribute 'architecture': its variable-length string type declares 1-byte elements, expected 16; the file is corrupt"),
        ]
        for (file, object, message) in cases {
            let path = Fixtures.path("fuzz/\(file)")
            XCTAssertThrowsError(try Checkpoint.open(path: path), file) { error in
                guard let error = error as? HDF5Error else { return XCTFail("\(file): expected an HDF5Error, got \(error)") }
                XCTAssertEqual(error.file, path)
                XCTAssertEqual(error.object, object, file)
                XCTAssertEqual(error.message, message, file)
            }
        }
    }

    /// scripts/fuzz checkpoint target (2026-12-02): the `/config` dataset's layout message damaged
    /// (a chunked layout of 0 dimensions). `H5Oopen` made libhdf5 1.10.8 write past an array in
    /// `H5D__chunk_set_sizes`: SIGSEGV in plain `irm inspect`. irm now checks a dataset's
    /// dataspace, datatype width and layout before libhdf5 opens it (HDF5ObjectHeader.swift).
    func testDamagedLayoutMessageIsRefusedBeforeLibhdf5OpensTheDataset() throws {
        let path = Fixtures.path("fuzz/checkpoint-H5D-layout-chunk-dims.h5")
        XCTAssertThrowsError(try Checkpoint.open(path: path)) { error in
            guard let error = error as? HDF5Error else { return XCTFail("expected an HDF5Error, got \(error)") }
            XCTAssertEqual(error.file, path)
            XCTAssertEqual(error.object, "/config")
            XCTAssertEqual(error.message, "its layout message declares 0 chunk dimensions, expected 2 to 33; the file is corrupt")
        }
    }
}
