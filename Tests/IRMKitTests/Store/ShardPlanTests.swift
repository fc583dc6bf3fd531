import Foundation
import XCTest
@testable import IRMKit

/// The shard plan (docs/cluster.md): whole prompt groups, blocks of at most 16 samples, shards
/// balanced by tokens, and the same plan for the same data everywhere.
final class ShardPlanTests: XCTestCase {
    /// `groups` prompt groups; group g has `sizes[g % sizes.count]` responses, prompt length
    /// 3 + g % 5 and response lengths 1 + (g + r) % 7.
    func sequences(groups: Int, sizes: [Int]) -> [ScoringSample] {
        var out: [ScoringSample] = []
        for g in 0..<groups {
            let prompt = (0..<(3 + g % 5)).map { Int32(g * 10 + $0) }
            for r in 0..<sizes[g % sizes.count] {
                out.append(ScoringSample(name: "g\(g)r\(r)", promptIDs: prompt, responseIDs: (0..<(1 + (g + r) % 7)).map { Int32($0) }))
            }
        }
        return out
    }

    func testBlocksAreWholePromptGroupsOfAtMostSixteenSamples() {
        let data = sequences(groups: 60, sizes: [2, 3, 1, 4])
        let plan = ShardPlan(data)
        XCTAssertEqual(plan.groups.count, 60)
        XCTAssertEqual(plan.blocks.first?.lowerBound, 0)
        XCTAssertEqual(plan.blocks.last?.upperBound, data.count)
        let groupStarts = Set(plan.groups.map(\.lowerBound))
        for (i, block) in plan.blocks.enumerated() {
            XCTAssertLessThanOrEqual(block.count, ShardPlan.samplesPerBlock)
            XCTAssertTrue(groupStarts.contains(block.lowerBound), "block \(i) starts a prompt group")
            if i > 0 { XCTAssertEqual(block.lowerBound, plan.blocks[i - 1].upperBound, "blocks are consecutive") }
            // Greedy packing: the next group did not fit.
            if i + 1 < plan.blocks.count, let next = plan.groups.first(where: { $0.lowerBound == block.upperBound }) {
                XCTAssertGreaterThan(block.count + next.count, ShardPlan.samplesPerBlock)
            }
            let expectedCost = plan.groups.filter { block.contains($0.lowerBound) }
                .reduce(0) { $0 + data[$1.lowerBound].promptIDs.count + data[$1].reduce(0) { $0 + $1.responseIDs.count } }
            XCTAssertEqual(plan.blockCosts[i], expectedCost, "a prompt counts once per block")
        }
    }

    func testAGroupLargerThanABlockIsCutIntoPiecesOfSixteen() {
        let plan = ShardPlan(sequences(groups: 3, sizes: [2, 40, 1]))
        XCTAssertEqual(plan.groups, [0..<2, 2..<42, 42..<43])
        // Pieces 0..<2 | 2..<18 | 18..<34 | 34..<42 | 42..<43 pack greedily into at most 16 samples.
        XCTAssertEqual(plan.blocks, [0..<2, 2..<18, 18..<34, 34..<43])
    }

    func testSamplesWithTheSamePromptElsewhereFormAnotherGroup() {
        var data = sequences(groups: 2, sizes: [2])
        data.append(data[0])
        XCTAssertEqual(ShardPlan(data).groups, [0..<2, 2..<4, 4..<5])
    }

    func testShardsCoverEveryBlockOnceAndAreBalancedByTokens() throws {
        let data = sequences(groups: 500, sizes: [2, 2, 3, 1, 6])
        let plan = ShardPlan(data)
        let total = plan.totalCost, largest = plan.blockCosts.max() ?? 0
        for n in [1, 2, 3, 7, 16, 64] {
            var covered: [Int] = []
            var sampleEnd = 0
            for k in 0..<n {
                let shard = try Shard(index: k, count: n)
                let indices = plan.blockIndices(of: shard)
                covered += Array(indices)
                let samples = plan.samples(of: shard)
                XCTAssertEqual(samples.lowerBound, sampleEnd, "shards are consecutive runs of samples")
                sampleEnd = samples.upperBound
                let cost = indices.reduce(0) { $0 + plan.blockCosts[$1] }
                // The boundary nearest to k·T/N: each shard is within one block of T/N on each side.
                XCTAssertLessThanOrEqual(abs(Double(cost) - Double(total) / Double(n)), Double(largest) + 1e-9, "shard \(k)/\(n): \(cost) of \(total)")
            }
            XCTAssertEqual(covered, Array(plan.blocks.indices), "N = \(n): every block in exactly one shard, in order")
            XCTAssertEqual(sampleEnd, data.count)
        }
    }

    func testMoreShardsThanBlocksLeavesEmptyShards() throws {
        let plan = ShardPlan(sequences(groups: 3, sizes: [2]))
        XCTAssertEqual(plan.blocks.count, 1)
        let shards = try (0..<4).map { try Shard(index: $0, count: 4) }
        XCTAssertEqual(shards.map { plan.blockIndices(of: $0).count }.reduce(0, +), 1)
        XCTAssertEqual(shards.filter { plan.samples(of: $0).isEmpty }.count, 3)
        XCTAssertEqual(ShardPlan([]).blocks, [])
        XCTAssertEqual(ShardPlan([]).samples(of: shards[2]), 0..<0)
    }

    /// The same data gives the same plan on every machine and run: integer arithmetic only, and a
    /// digest fixed here. The digest was computed independently in Python:
    /// `hashlib.sha256(b"irm-block-plan 1\n" + struct.pack("<q", 43) + struct.pack("<4q", 2, 18, 34, 43)).hexdigest()`,
    /// the sample count then the block ends.
    func testThePlanIsStable() {
        let data = sequences(groups: 3, sizes: [2, 40, 1])
        XCTAssertEqual(ShardPlan(data), ShardPlan(data))
        XCTAssertEqual(ShardPlan(data).digest, "8ec7087454221a3fc45cb9c4200be4d20ae6bbf030026a7f190cf824aa33d14a")
        let bounds = ShardPlan(sequences(groups: 500, sizes: [2, 2, 3, 1, 6])).shardBoundaries(count: 7)
        XCTAssertEqual(bounds, ShardPlan(sequences(groups: 500, sizes: [2, 2, 3, 1, 6])).shardBoundaries(count: 7))
    }

    func testShardArgumentsAreChecked() throws {
        XCTAssertEqual(try Shard(parsing: "2/8"), try Shard(index: 2, count: 8))
        for (text, expected) in [("3/3", "K must be from 0 to N-1 = 2"), ("0/0", "the number of shards N must be at least 1"),
                                 ("-1/3", "expected K/N"), ("1/", "expected K/N"), ("a/b", "expected K/N"), ("1/2/3", "expected K/N"),
                                 (" 1/2", "expected K/N"), ("+1/2", "expected K/N"), ("99999999999999999999/2", "expected K/N")] {
            XCTAssertThrowsError(try Shard(parsing: text), text) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(text): \(error)")
            }
        }
    }
}
