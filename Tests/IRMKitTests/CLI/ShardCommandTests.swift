import Foundation
import XCTest
@testable import IRMKit

/// Sharded runs as a cluster user makes them: `--shard K/N` into separate stores, `irm store
/// merge`, then the final run, whose outputs are byte-identical to one unsharded run's.
final class ShardCommandTests: XCTestCase {
    func demo(_ name: String) -> String { Fixtures.repositoryPath("checkpoints/demo/\(name)") }

    func prompts(_ count: Int, in work: URL) throws -> String {
        let lines = try String(contentsOfFile: demo("prompts.jsonl"), encoding: .utf8).split(separator: "\n").prefix(count)
        let path = work.appendingPathComponent("prompts.jsonl").path
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func analyze(_ data: String, out: URL) -> [String] {
        ["analyze", "--before", demo("base.h5"), "--after", demo("rlhf.h5"), "--data", data, "--reward-model", demo("rm.h5"),
         "--convention", "separate", "--bootstrap", "20", "--threads", "2", "--out", out.path]
    }

    func drift(_ data: String, out: URL) -> [String] {
        ["drift", "--base", demo("base.h5"), "--checkpoint", demo("rlhf-step-0050.h5"), "--checkpoint", demo("rlhf.h5"), "--data", data,
         "--reward-model", demo("rm.h5"), "--convention", "separate", "--bootstrap", "20", "--threads", "2", "--out", out.path]
    }

    /// Runs `command` unsharded, then as `n` shards into their own stores, merges them and runs the
    /// final command on the merged store; asserts the outputs are identical byte for byte.
    func assertShardedEqualsUnsharded(_ command: (URL) -> [String], n: Int, work: URL, file: StaticString = #filePath, line: UInt = #line) throws {
        let single = work.appendingPathComponent("single")
        let plain = try CommandRunner.run(command(single) + ["--store", work.appendingPathComponent("single-store").path, "--quiet"])
        XCTAssertEqual(plain.status, 0, plain.stderr, file: file, line: line)
        let out = work.appendingPathComponent("sharded")
        var stores: [String] = []
        for k in 0..<n {
            let store = work.appendingPathComponent("shard-\(k)").path
            stores.append(store)
            let run = try CommandRunner.run(command(out) + ["--store", store, "--shard", "\(k)/\(n)"])
            XCTAssertEqual(run.status, 0, run.stderr, file: file, line: line)
            XCTAssertTrue(run.stderr.contains("irm: shard \(k)/\(n): samples"), run.stderr, file: file, line: line)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "a shard writes nothing at --out", file: file, line: line)
        }
        // A shard run again finds its blocks and scores nothing.
        let again = try CommandRunner.run(command(out) + ["--store", stores[0], "--shard", "0/\(n)"])
        XCTAssertEqual(again.status, 0, again.stderr, file: file, line: line)
        XCTAssertTrue(again.stderr.contains("already complete in the store; nothing scored"), again.stderr, file: file, line: line)

        let merged = work.appendingPathComponent("merged").path
        let partial = try CommandRunner.run(["store", "merge", "--into", merged] + stores.dropLast())
        XCTAssertEqual(partial.status, 1, file: file, line: line)
        XCTAssertTrue(partial.stderr.hasPrefix("irm: error: store merge: shard \(n - 1) of \(n) is missing"), partial.stderr, file: file, line: line)
        XCTAssertEqual(partial.stderr.split(separator: "\n").count, 1, partial.stderr, file: file, line: line)
        XCTAssertFalse(FileManager.default.fileExists(atPath: merged), "a failed merge writes nothing", file: file, line: line)

        let merge = try CommandRunner.run(["store", "merge", "--into", merged] + stores)
        XCTAssertEqual(merge.status, 0, merge.stderr, file: file, line: line)
        let final = try CommandRunner.run(command(out) + ["--store", merged, "--quiet"])
        XCTAssertEqual(final.status, 0, final.stderr, file: file, line: line)
        let expected = try Fixtures.files(in: single), found = try Fixtures.files(in: out)
        XCTAssertEqual(Set(found.keys), Set(expected.keys), file: file, line: line)
        for (name, bytes) in expected { XCTAssertTrue(found[name] == bytes, "\(name) differs from the unsharded run's", file: file, line: line) }
    }

    func testShardedAnalyzeMergesToTheUnshardedOutputs() throws {
        let work = try Fixtures.temporaryDirectory(for: self)
        let data = try prompts(40, in: work)
        try assertShardedEqualsUnsharded({ self.analyze(data, out: $0) }, n: 3, work: work)
    }

    func testShardedDriftMergesToTheUnshardedOutputs() throws {
        let work = try Fixtures.temporaryDirectory(for: self)
        let data = try prompts(24, in: work)
        try assertShardedEqualsUnsharded({ self.drift(data, out: $0) }, n: 2, work: work)
    }

    /// `irm score` keeps no store unless asked; with `--store`, its shards merge to the same lines.
    func testShardedScoreMergesToTheUnshardedLines() throws {
        let work = try Fixtures.temporaryDirectory(for: self)
        let data = try prompts(30, in: work)
        for (index, extra) in [["--model", demo("rlhf.h5"), "--reference", demo("base.h5")], ["--model", demo("rm.h5")]].enumerated() {
            let command = ["score"] + extra + ["--data", data, "--convention", "separate", "--threads", "2", "--quiet"]
            let single = work.appendingPathComponent("single.jsonl").path
            let plain = try CommandRunner.run(command + ["--out", single])
            XCTAssertEqual(plain.status, 0, plain.stderr)
            let stores = (0..<3).map { work.appendingPathComponent("\(index)-shard-\($0)").path }
            for (k, store) in stores.enumerated() {
                let run = try CommandRunner.run(command + ["--store", store, "--shard", "\(k)/3"])
                XCTAssertEqual(run.status, 0, run.stderr)
            }
            let merged = work.appendingPathComponent("\(index)-merged").path
            let merge = try CommandRunner.run(["store", "merge", "--into", merged] + stores)
            XCTAssertEqual(merge.status, 0, merge.stderr)
            let out = work.appendingPathComponent("merged.jsonl").path
            let final = try CommandRunner.run(command + ["--store", merged, "--out", out])
            XCTAssertEqual(final.status, 0, final.stderr)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out)), try Data(contentsOf: URL(fileURLWithPath: single)), "\(extra)")
        }
        let noStore = try CommandRunner.run(["score", "--model", demo("rm.h5"), "--data", data, "--shard", "0/2"])
        XCTAssertEqual(noStore.status, 64, noStore.stderr)
        XCTAssertTrue(noStore.stderr.contains("give --store DIR"), noStore.stderr)
    }

    func testBadShardArgumentsAreOneLineErrors() throws {
        let work = try Fixtures.temporaryDirectory(for: self)
        let data = try prompts(4, in: work)
        let out = work.appendingPathComponent("out")
        for (shard, expected) in [("3/3", "K must be from 0 to N-1 = 2"), ("0/0", "N must be at least 1"), ("x", "expected K/N")] {
            let run = try CommandRunner.run(analyze(data, out: out) + ["--shard", shard])
            XCTAssertEqual(run.status, 64, run.stderr)
            XCTAssertTrue(run.stderr.hasPrefix("irm: error: --shard"), run.stderr)
            XCTAssertTrue(run.stderr.contains(expected), run.stderr)
            XCTAssertEqual(run.stderr.split(separator: "\n").count, 1, run.stderr)
        }
        let noStore = try CommandRunner.run(analyze(data, out: out) + ["--shard", "0/2", "--no-store"])
        XCTAssertEqual(noStore.status, 1, noStore.stderr)
        XCTAssertTrue(noStore.stderr.contains("--shard scores into a score store"), noStore.stderr)
        let merge = try CommandRunner.run(["store", "merge", "--into", work.appendingPathComponent("m").path, data])
        XCTAssertEqual(merge.status, 1, merge.stderr)
        XCTAssertTrue(merge.stderr.contains("is not a directory"), merge.stderr)
    }
}
