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
            XCTAssertTrue(error.message.contains("declares shape [720575940379279680, 16]"), error.message)
            XCTAssertTrue(error.message.contains("the file is corrupt"), error.message)
        }
    }
}
