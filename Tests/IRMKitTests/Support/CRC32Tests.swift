import Foundation
import XCTest
@testable import IRMKit

/// CRC-32 against the values Python's zlib.crc32 gave (Tests/Fixtures/checkpoints/crc32.json, made
/// by scripts/fixtures/make_crc32_fixture.py).
final class CRC32Tests: XCTestCase {
    struct Vectors: Decodable {
        struct Pattern: Decodable { let bytes: Int; let crc32: UInt32 }
        let vectors: [String: UInt32]
        let pattern: Pattern
    }

    func testKnownVectorsAndALongPatternInParallelRunsMatchZlib() throws {
        let fixture = try JSONDecoder().decode(Vectors.self, from: Data(contentsOf: Fixtures.url("checkpoints/crc32.json")))
        XCTAssertEqual(CRC32.checksum(Array("123456789".utf8)), 0xCBF4_3926)
        XCTAssertFalse(fixture.vectors.isEmpty)
        for (text, crc) in fixture.vectors {
            XCTAssertEqual(CRC32.checksum(Array(text.utf8)), crc, text)
        }
        // Byte i is (31 i + i / 256) mod 256, as the script builds it.
        let bytes = [UInt8](unsafeUninitializedCapacity: fixture.pattern.bytes) { buffer, initialised in
            for i in 0..<buffer.count { buffer[i] = UInt8(truncatingIfNeeded: i &* 31 &+ (i >> 8)) }
            initialised = buffer.count
        }
        XCTAssertGreaterThan(bytes.count, 2 * CRC32.parallelRun)
        bytes.withUnsafeBytes { raw in
            for runs in [1, 2, 3] {
                XCTAssertEqual(CRC32.checksum(raw, runs: runs), fixture.pattern.crc32, "\(runs) runs")
            }
        }
        XCTAssertEqual(CRC32.hex(0xCBF4_3926), "0xcbf43926")
        XCTAssertEqual(CRC32.hex(0x1F), "0x0000001f")
    }
}
