import XCTest
@testable import IRMKit

final class SmokeTests: XCTestCase {
    func testVersion() { XCTAssertFalse(IRMVersion.string.isEmpty) }
}
