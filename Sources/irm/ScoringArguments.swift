import ArgumentParser
import Foundation
import IRMKit

/// How the scoring engine runs, for every command that scores responses (`score`, `analyze`).
/// The batching settings change results only by float32 rounding (docs/scoring.md, "Batch
/// invariance"); the thread count changes none ("Thread count").
struct ScoringArguments: ParsableArguments {
    @Option(help: "Threads irm computes on: the forward pass, the features, the bootstrap (default: the number of cores). Results do not depend on it.")
    var threads: Int?

    @Option(help: "Token rows per packed forward pass.")
    var batchTokens = ScoringOptions().tokensPerBatch

    @Option(help: "Rows of the vocabulary head per tile: the head's weight is read once per this many rows, and each thread holds rows × 1024 logits.")
    var headRows = ScoringOptions().headRows

    @Flag(help: "Run every sample as its own sequence instead of sharing the work of identical prompts.")
    var noSharePrompts = false

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, found \(threads)") }
        if batchTokens < 1 { throw ValidationError("--batch-tokens must be at least 1, found \(batchTokens)") }
        if headRows < 1 { throw ValidationError("--head-rows must be at least 1, found \(headRows)") }
    }

    var options: ScoringOptions {
        ScoringOptions(tokensPerBatch: batchTokens, sharePrompts: !noSharePrompts, headRows: headRows,
                       threads: threads ?? ProcessInfo.processInfo.activeProcessorCount)
    }
}

/// What long commands print besides their results and errors.
struct OutputArguments: ParsableArguments {
    @Flag(help: "Show progress lines on stderr (done/total, tokens/s, ETA) even when stderr is not a terminal.")
    var progress = false

    @Flag(help: "Print nothing but errors: no progress, no warnings, no summary.")
    var quiet = false

    /// Progress lines when stderr is a terminal or --progress asks, never with --quiet.
    var progressOutput: ProgressOutput {
        ProgressOutput(enabled: !quiet && (progress || isatty(STDERR_FILENO) != 0))
    }

    /// A warning on stderr, unless --quiet.
    func warn(_ text: String) {
        if !quiet { printWarning(text) }
    }
}

/// Where scores are kept between runs (docs/score-store.md).
struct StoreArguments: ParsableArguments {
    @Option(help: "The score store directory: each checkpoint's scores on the data are kept there and reused by later runs (default: .irm-store beside --out).")
    var store: String?

    @Flag(help: "Do not read or write a score store.")
    var noStore = false

    func validate() throws {
        if noStore && store != nil { throw ValidationError("give --store or --no-store, not both") }
    }

    /// The store directory for output `out`, or nil with --no-store.
    func directory(forOutput out: URL) -> URL? {
        if noStore { return nil }
        return store.map { URL(fileURLWithPath: $0) } ?? StageStore.defaultDirectory(forOutput: out)
    }
}

/// Where the training reward comes from, for `analyze` and `drift`.
struct RewardArguments: ParsableArguments {
    @Option(help: "The training reward model checkpoint (.h5, a sequence classifier); it tokenises with its own tokenizer. `irm drift` takes one per checkpoint for a reward-model series.")
    var rewardModel: [String] = []

    @Option(help: "Read the training reward from this numeric data field (default: \"reward\" when every sample has it).")
    var rewardField: String?

    @Option(help: "A white-box training reward: vader-utility (Marks et al.) or kim-seo (Kim & Seo), or none.")
    var reward: String?

    func validate() throws {
        let sources = [!rewardModel.isEmpty, rewardField != nil, reward != nil].filter { $0 }.count
        if sources > 1 { throw ValidationError("give at most one of --reward-model, --reward-field and --reward") }
        if let reward, !["vader-utility", "kim-seo", "none"].contains(reward) {
            throw ValidationError("--reward must be vader-utility, kim-seo or none, found \"\(reward)\"")
        }
    }

    /// The choice, or nil for the default (the data's "reward" field when every sample has it).
    var choice: AnalysisOptions.RewardChoice? {
        if let rewardModel = rewardModel.first { return .rewardModel(path: rewardModel) }
        if let rewardField { return .field(name: rewardField) }
        if let reward { return reward == "vader-utility" ? .vaderUtility : reward == "kim-seo" ? .kimSeo : AnalysisOptions.RewardChoice.none }
        return nil
    }
}

/// `--shard K/N`: score only shard K of N into the score store (docs/cluster.md).
struct ShardArguments: ParsableArguments {
    @Option(help: "Score only shard K of N (K from 0 to N-1, e.g. $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT) into the score store and stop: no fit, nothing written at --out. Shards are whole prompt groups balanced by tokens; `irm store merge` combines them (docs/cluster.md).")
    var shard: String?

    func validate() throws {
        if let shard {
            do { _ = try Shard(parsing: shard) } catch { throw ValidationError("\(error)") }
        }
    }

    /// The parsed shard, or nil without --shard (checked by `validate`).
    var value: Shard? { shard.flatMap { try? Shard(parsing: $0) } }

    /// Prints what a shard run did: its warnings, then its one-line summary (unless --quiet).
    static func report(_ summary: ShardSummary, _ output: OutputArguments) {
        summary.warnings.forEach(output.warn)
        if !output.quiet { printNote(summary.description) }
    }
}
