import ArgumentParser
import Foundation
import IRMKit

/// How the scoring engine runs, for every command that scores responses (`score`, `analyze`).
/// These settings change results only by float32 rounding (docs/scoring.md, "Batch invariance").
struct ScoringArguments: ParsableArguments {
    @Option(help: "BLAS and attention threads (default: the number of cores).")
    var threads: Int?

    @Option(help: "Token rows per packed forward pass.")
    var batchTokens = ScoringOptions().tokensPerBatch

    @Option(help: "Rows of the vocabulary head per GEMM; the logits held at once are rows × vocabulary floats.")
    var headRows = ScoringOptions().headRows

    @Flag(help: "Run every sample as its own sequence instead of sharing the work of identical prompts.")
    var noSharePrompts = false

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if batchTokens < 1 { throw ValidationError("--batch-tokens must be at least 1") }
        if headRows < 1 { throw ValidationError("--head-rows must be at least 1") }
    }

    var options: ScoringOptions {
        ScoringOptions(tokensPerBatch: batchTokens, sharePrompts: !noSharePrompts, headRows: headRows,
                       threads: threads ?? ProcessInfo.processInfo.activeProcessorCount)
    }
}
