import Foundation
import XCTest
@testable import IRMKit

/// `ParallelMap` keeps to `ComputeThreads.count` (what `--threads` sets) and gives the serial
/// `map`'s result at any thread count.
final class ParallelMapTests: XCTestCase {
    /// Counts how many transforms run at once.
    private final class Concurrency: @unchecked Sendable {
        private let lock = NSLock()
        private var running = 0
        private(set) var peak = 0

        func enter() {
            lock.lock()
            running += 1
            peak = max(peak, running)
            lock.unlock()
        }

        func leave() {
            lock.lock()
            running -= 1
            lock.unlock()
        }
    }

    func testKeepsToTheThreadCountAndGivesTheSerialResult() throws {
        let saved = ComputeThreads.count
        defer { ComputeThreads.set(saved) }
        let values = Array(0..<400)
        let serial = values.map { $0 * $0 + 1 }
        for threads in [1, 2, 3] {
            ComputeThreads.set(threads)
            let perElement = Concurrency(), perIndex = Concurrency()
            let mapped = ParallelMap.map(values) { (v: Int) -> Int in
                perElement.enter()
                defer { perElement.leave() }
                usleep(200)
                return v * v + 1
            }
            let indexed = try ParallelMap.map(count: 40) { (i: Int) throws -> Int in
                perIndex.enter()
                defer { perIndex.leave() }
                usleep(2000)
                return serial[i]
            }
            XCTAssertEqual(mapped, serial, "\(threads) threads")
            XCTAssertEqual(indexed, Array(serial.prefix(40)), "\(threads) threads, one task per index")
            XCTAssertLessThanOrEqual(perElement.peak, threads, "\(threads) threads: transforms at once")
            XCTAssertLessThanOrEqual(perIndex.peak, threads, "\(threads) threads, one task per index: transforms at once")
        }
    }

    func testRethrowsTheFirstErrorInIndexOrder() {
        struct Failure: Error, Equatable { let index: Int }
        XCTAssertThrowsError(try ParallelMap.map(count: 20) { (i: Int) throws -> Int in
            if i % 7 == 3 { throw Failure(index: i) }
            return i
        }) { error in
            XCTAssertEqual(error as? Failure, Failure(index: 3))
        }
    }
}
