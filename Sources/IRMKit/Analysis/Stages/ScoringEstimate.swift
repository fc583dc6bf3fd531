import Foundation

/// `irm score --estimate`: scores a few blocks of the data spread over it, and from their measured
/// time extrapolates the whole data's cost on this machine, so that a cluster run can be sized
/// (docs/cluster.md, "Sizing from a calibration").
///
/// Costs are in the shard plan's token units (`ShardPlan.blockCosts`: each block's prompts once,
/// plus every response token), which is what the scorer runs. The FLOP count is the usual forward
/// pass estimate, per model: `2·P` per trunk token (P the parameters outside the embedding and the
/// head), `4·L·q·c` for attention (L layers, q = heads × head size, c the positions the token
/// attends to: itself and those before it), and `2·W·V` per response token for the head (W the final width, V the vocabulary).
public struct ScoringEstimate: Sendable {
    public let samples: Int
    public let promptGroups: Int
    public let blocks: Int
    /// Token units of the whole data, and of the calibration blocks.
    public let tokens: Int
    public let calibrationBlocks: Int
    public let calibrationTokens: Int
    public let calibrationSeconds: Double
    public let loadSeconds: Double
    public let threads: Int
    public let flops: Double
    /// Peak resident memory of this process during the calibration, its anonymous part (the
    /// activations and scratch), and the size of the checkpoint files (mapped, shared between
    /// tasks on one node).
    public let peakResidentBytes: Int?
    public let anonymousBytes: Int?
    public let checkpointBytes: Int

    /// Seconds for the whole data at the calibration's rate, on `threads` threads.
    public var estimatedSeconds: Double {
        calibrationTokens > 0 ? calibrationSeconds * Double(tokens) / Double(calibrationTokens) : 0
    }

    public var estimatedCoreHours: Double { estimatedSeconds * Double(threads) / 3600 }

    /// The blocks to time: `count` of them at evenly spaced positions (all when there are fewer).
    public static func calibrationBlocks(_ plan: ShardPlan, count: Int) -> [Range<Int>] {
        let n = plan.blocks.count
        guard n > count else { return plan.blocks }
        return (0..<count).map { plan.blocks[($0 * n + n / (2 * count)) / count] }
    }

    /// Forward-pass FLOPs of `checkpoint`'s model over `sequences`, as the type's documentation
    /// says, in three parts: the trunk's GEMMs (each block's shared prompts counted once, as
    /// `ShardPlan` and the scorer run them), attention, and the vocabulary head over the response
    /// tokens (none for a reward model, whose head is one row per sample). The head's part is an
    /// upper bound: the scorer runs a row once when responses to one prompt share it. `outputWidth` is the
    /// head's rows (`TransformerModel.outputWidth`; `vocab_size` by default, which may be padded).
    public static func flopCount(_ checkpoint: Checkpoint, _ sequences: [ScoringSample], plan: ShardPlan, outputWidth: Int? = nil)
        -> (trunk: Double, attention: Double, head: Double) {
        let c = checkpoint.config
        let vocabulary = outputWidth ?? c.vocabSize
        let embedding = c.vocabSize * c.hiddenSize
        let head = checkpoint.kind == .rewardModel || c.tiedEmbeddings ? 0 : vocabulary * c.finalHiddenSize
        let trunkParameters = Double(max(checkpoint.parameterCount - embedding - head, 0))
        var trunkTokens = 0.0, attended = 0.0, responses = 0.0
        for block in plan.blocks {
            var lastPrompt: [Int32]? = nil
            for sample in sequences[block] {
                let prompt = sample.promptIDs.count, response = sample.responseIDs.count
                let start = lastPrompt == sample.promptIDs ? prompt : 0
                lastPrompt = sample.promptIDs
                let end = prompt + response
                trunkTokens += Double(end - start)
                // Σ over the positions run (start..<end) of the positions each attends to (p + 1).
                attended += Double(end * (end + 1) - start * (start + 1)) / 2
                responses += Double(response)
            }
        }
        let headFLOPs = checkpoint.kind == .rewardModel ? 0 : 2 * Double(c.finalHiddenSize * vocabulary) * responses
        return (2 * trunkParameters * trunkTokens, 4 * Double(c.layerCount * c.qDim) * attended, headFLOPs)
    }

    /// The sum of `flopCount`'s parts.
    public static func flops(_ checkpoint: Checkpoint, _ sequences: [ScoringSample], plan: ShardPlan, outputWidth: Int? = nil) -> Double {
        let count = flopCount(checkpoint, sequences, plan: plan, outputWidth: outputWidth)
        return count.trunk + count.attention + count.head
    }

    public init(samples: Int, plan: ShardPlan, calibration: [Range<Int>], calibrationSeconds: Double, loadSeconds: Double,
                threads: Int, flops: Double, checkpointBytes: Int) {
        self.samples = samples
        promptGroups = plan.groups.count
        blocks = plan.blocks.count
        tokens = plan.totalCost
        calibrationBlocks = calibration.count
        let index = Dictionary(uniqueKeysWithValues: plan.blocks.enumerated().map { ($1.lowerBound, $0) })
        calibrationTokens = calibration.reduce(0) { $0 + (index[$1.lowerBound].map { plan.blockCosts[$0] } ?? 0) }
        self.calibrationSeconds = calibrationSeconds
        self.loadSeconds = loadSeconds
        self.threads = threads
        self.flops = flops
        let status = Self.memoryStatus()
        peakResidentBytes = status["VmHWM"]
        anonymousBytes = status["RssAnon"]
        self.checkpointBytes = checkpointBytes
        var largest: [Int: Double] = [:]
        let total = Double(plan.totalCost)
        for n in Self.shardCounts where n <= plan.blocks.count && total > 0 {
            let bounds = plan.shardBoundaries(count: n)
            let costs = (0..<n).map { k in plan.blockCosts[bounds[k]..<bounds[k + 1]].reduce(0, +) }
            largest[n] = Double(costs.max() ?? 0) / (total / Double(n))
        }
        largestShard = largest
    }

    /// Values in bytes of /proc/self/status (Linux); empty elsewhere.
    static func memoryStatus() -> [String: Int] {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return [:] }
        var out: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == ":" || $0 == " " || $0 == "\t" })
            if parts.count == 3, parts[2] == "kB", let kilobytes = Int(parts[1]) { out[String(parts[0])] = kilobytes * 1024 }
        }
        return out
    }

    /// The report `irm score --estimate` prints.
    public func report() -> String {
        func gb(_ bytes: Int?) -> String {
            guard let bytes else { return "unknown" }
            return bytes >= 1_000_000_000 ? String(format: "%.2f GB", Double(bytes) / 1e9) : String(format: "%.1f MB", Double(bytes) / 1e6)
        }
        func duration(_ seconds: Double) -> String {
            seconds >= 3600 ? String(format: "%.1f h", seconds / 3600) : seconds >= 60 ? String(format: "%.1f min", seconds / 60) : String(format: "%.1f s", seconds)
        }
        let rate = calibrationSeconds > 0 ? Double(calibrationTokens) / calibrationSeconds : 0
        var lines = [
            "data: \(samples) samples in \(promptGroups) prompt groups, \(blocks) blocks, \(tokens) tokens (prompts counted once per block)",
            String(format: "calibration: %d block%@, %d tokens in %.2f s on %d threads: %.1f tokens/s (load %.2f s, not counted)",
                   calibrationBlocks, calibrationBlocks == 1 ? "" : "s", calibrationTokens, calibrationSeconds, threads, rate, loadSeconds),
            String(format: "compute: %.3g FLOP (%.2f GFLOP/s measured)", flops,
                   calibrationSeconds > 0 && tokens > 0 ? flops * Double(calibrationTokens) / Double(tokens) / calibrationSeconds / 1e9 : 0),
            String(format: "estimate: %@ on %d threads, %.3g core-hours", duration(estimatedSeconds), threads, estimatedCoreHours),
            "memory per task: peak RSS \(gb(peakResidentBytes)), of which anonymous \(gb(anonymousBytes)); checkpoints \(gb(checkpointBytes)) mapped read-only (file-backed, shared by the tasks of a node)",
        ]
        for n in Self.shardCounts where largestShard[n] != nil {
            lines.append("  --shard K/\(n): about \(duration(estimatedSeconds / Double(n))) per task with \(threads) threads each (largest shard \(largestShardFraction(n)))")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func largestShardFraction(_ n: Int) -> String {
        guard let share = largestShard[n] else { return "n/a" }
        return String(format: "%.2f× the mean", share)
    }

    /// For N shards (N in `shardCounts`), the largest shard's tokens over the mean shard's.
    public let largestShard: [Int: Double]
    public static let shardCounts = [4, 16, 64]
}
