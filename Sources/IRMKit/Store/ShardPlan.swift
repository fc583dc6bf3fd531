import Foundation

/// How a data set's samples are cut for scoring: into prompt groups, blocks and shards
/// (docs/cluster.md, "The shard plan").
///
/// - A *prompt group* is a maximal run of consecutive samples with the same prompt ids: the
///   responses to one prompt, which share its forward pass. Samples with the same prompt elsewhere in
///   the file form another group (sort the file by prompt to share them).
/// - A *block* is a run of whole prompt groups of at most `samplesPerBlock` samples; a group larger
///   than that is cut into pieces of `samplesPerBlock`. A block is the unit of arithmetic: its
///   samples are always scored together, in one call of the scorer, and committed to the score
///   store as one file. Every result therefore depends only on the block a sample is in, never on
///   the shard, the batch of a run or where a run was interrupted, which is what makes a merged
///   sharded run bit-identical to an unsharded one (at any thread count).
/// - A *shard* `K/N` is a contiguous run of blocks. Shard boundaries fall where the running cost
///   (tokens, each prompt counted once per block) is nearest to `K·T/N`, so shards are balanced by
///   tokens, not by lines.
///
/// Everything is a function of the token ids alone, in integer arithmetic, so the plan is the same
/// for the same data on every machine and every run.
public struct ShardPlan: Sendable, Equatable {
    /// Samples per block at most (the memory held per block: the base's final hidden states of its
    /// response tokens).
    public static let samplesPerBlock = 16

    /// The prompt groups, in order; together they cover `0..<sampleCount`.
    public let groups: [Range<Int>]
    /// The blocks, in order; together they cover `0..<sampleCount`.
    public let blocks: [Range<Int>]
    /// Each block's cost: its prompt tokens once per group piece, plus every response's tokens.
    public let blockCosts: [Int]
    public let sampleCount: Int

    public init(_ sequences: [ScoringSample], samplesPerBlock: Int = ShardPlan.samplesPerBlock) {
        precondition(samplesPerBlock >= 1, "a block holds at least one sample")
        var groups: [Range<Int>] = []
        var start = 0
        for i in sequences.indices where i > 0 && sequences[i].promptIDs != sequences[i - 1].promptIDs {
            groups.append(start..<i)
            start = i
        }
        if !sequences.isEmpty { groups.append(start..<sequences.count) }

        // Pieces: groups, the larger ones cut into runs of `samplesPerBlock`.
        var pieces: [Range<Int>] = []
        for group in groups {
            for lower in stride(from: group.lowerBound, to: group.upperBound, by: samplesPerBlock) {
                pieces.append(lower..<min(lower + samplesPerBlock, group.upperBound))
            }
        }
        func cost(_ piece: Range<Int>) -> Int {
            sequences[piece.lowerBound].promptIDs.count + sequences[piece].reduce(0) { $0 + $1.responseIDs.count }
        }
        var blocks: [Range<Int>] = [], costs: [Int] = []
        var current: Range<Int>? = nil, currentCost = 0
        for piece in pieces {
            if let open = current, open.count + piece.count <= samplesPerBlock {
                current = open.lowerBound..<piece.upperBound
                currentCost += cost(piece)
            } else {
                if let open = current {
                    blocks.append(open)
                    costs.append(currentCost)
                }
                current = piece
                currentCost = cost(piece)
            }
        }
        if let open = current {
            blocks.append(open)
            costs.append(currentCost)
        }
        self.groups = groups
        self.blocks = blocks
        blockCosts = costs
        sampleCount = sequences.count
    }

    /// The total cost (tokens, prompts counted once per block).
    public var totalCost: Int { blockCosts.reduce(0, +) }

    /// The indices into `blocks` of shard `shard`: a contiguous, possibly empty run. The shards of
    /// one N cover every block exactly once. Boundary k (0 < k < N) is the block boundary whose
    /// running cost is nearest to k·T/N (the earlier one on a tie), never before boundary k-1.
    public func blockIndices(of shard: Shard) -> Range<Int> {
        let bounds = shardBoundaries(count: shard.count)
        return bounds[shard.index]..<bounds[shard.index + 1]
    }

    /// The block index where each shard starts, and `blocks.count` at the end (N + 1 values).
    public func shardBoundaries(count n: Int) -> [Int] {
        precondition(n >= 1, "at least one shard")
        var prefix = [0]
        prefix.reserveCapacity(blockCosts.count + 1)
        for cost in blockCosts { prefix.append(prefix[prefix.count - 1] + cost) }
        let total = prefix[prefix.count - 1]
        var bounds = [0]
        var b = 0
        for k in 1..<max(n, 1) {
            // Target k·T/N as a fraction: compare prefix·N with k·T exactly (no rounding).
            let target = total.multipliedFullWidth(by: k)
            func scaled(_ i: Int) -> (high: Int, low: UInt) { prefix[i].multipliedFullWidth(by: n) }
            func less(_ x: (high: Int, low: UInt), _ y: (high: Int, low: UInt)) -> Bool { x.high < y.high || (x.high == y.high && x.low < y.low) }
            while b < blocks.count && less(scaled(b + 1), target) { b += 1 }
            // Boundary b has prefix·N < k·T (or b is the end); b + 1 has ≥. Take the nearer.
            if b < blocks.count {
                let below = Double(total) * Double(k) / Double(n) - Double(prefix[b])
                let above = Double(prefix[b + 1]) - Double(total) * Double(k) / Double(n)
                if above < below { b += 1 }
            }
            bounds.append(max(b, bounds[bounds.count - 1]))
        }
        bounds.append(blocks.count)
        return bounds
    }

    /// The samples of shard `shard`, as one range (empty when the shard has no block).
    public func samples(of shard: Shard) -> Range<Int> {
        let indices = blockIndices(of: shard)
        guard let first = indices.first, let last = indices.last else {
            let at = indices.lowerBound < blocks.count ? blocks[indices.lowerBound].lowerBound : sampleCount
            return at..<at
        }
        return blocks[first].lowerBound..<blocks[last].upperBound
    }

    /// SHA-256 (hex) of the block boundaries: `"irm-block-plan 1\n"`, then the sample count and
    /// every block's end as little-endian int64. Recorded by score store entries, so that blocks of
    /// another plan are never mixed in.
    public var digest: String { Self.digest(of: blocks, sampleCount: sampleCount) }

    public static func digest(of blocks: [Range<Int>], sampleCount: Int) -> String {
        var bytes = Array("irm-block-plan 1\n".utf8)
        func append(_ value: Int) { withUnsafeBytes(of: Int64(value).littleEndian) { bytes.append(contentsOf: $0) } }
        append(sampleCount)
        for block in blocks { append(block.upperBound) }
        return SHA256.hex(bytes)
    }
}

/// Shard `index` of `count` (`--shard K/N`, K from 0 to N-1: Slurm's `SLURM_ARRAY_TASK_ID` of an
/// array `0-(N-1)`, Kubernetes' `JOB_COMPLETION_INDEX`).
public struct Shard: Sendable, Hashable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    public init(index: Int, count: Int) throws {
        guard count >= 1 else { throw IRMError("--shard \(index)/\(count): the number of shards N must be at least 1") }
        guard count <= 1_000_000 else { throw IRMError("--shard \(index)/\(count): at most 1000000 shards") }
        guard index >= 0, index < count else {
            throw IRMError("--shard \(index)/\(count): K must be from 0 to N-1 = \(count - 1) (shards are numbered from 0, as Slurm's array task ids 0-\(count - 1))")
        }
        self.index = index
        self.count = count
    }

    /// Parses `K/N`, e.g. `2/8`.
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.count <= 18 && $0.allSatisfy { ("0"..."9").contains($0) } }),
              let k = Int(parts[0]), let n = Int(parts[1]) else {
            throw IRMError("--shard \"\(MessageText.oneLine(text))\": expected K/N with whole numbers 0 ≤ K < N, e.g. 0/4")
        }
        try self.init(index: k, count: n)
    }

    public var description: String { "\(index)/\(count)" }
}
