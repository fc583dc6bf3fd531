import ArgumentParser
import Foundation
import IRMKit

struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Score responses under a model: per-token log-probs (policy) or a reward (reward model).",
        discussion: """
            Reads the data formats of docs/data-formats.md (JSON lines, a JSON array, CSV or TSV; "-" for standard \
            input): "prompt" and "response" or "completion", or "chosen" and "rejected" (which give two samples), as \
            text or chat messages, an optional "id", and optionally pre-tokenised "prompt_ids"/"response_ids"/ \
            "chosen_ids"/"rejected_ids" (used verbatim). Text becomes token ids by --convention (default trl: \
            TRL's DPOTrainer tokenisation, EOS appended to text responses). The log-prob of each response token is \
            log_softmax(logits)[token] over the model's full output vocabulary, at the position before it; a first \
            token with no context at all is null. Writes one JSON line per sample (see docs/scoring.md), to a \
            temporary file renamed into place when complete.
            """)

    @Option(help: "The checkpoint to score with (.h5): a policy or a reward model.")
    var model: String

    @Option(help: "The prompt/response data: JSON lines, a JSON array, CSV or TSV, or - for standard input (docs/data-formats.md).")
    var data: String

    @Option(help: "Where to write the scores (JSON lines); not with --estimate.")
    var out: String?

    @Option(help: "A second policy (.h5) to compare with: adds its log-probs and the exact per-token KL(model ‖ reference). Both models are held in memory.")
    var reference: String?

    @Flag(help: "The same as --eos always.")
    var appendEOS = false

    @OptionGroup var sequence: SequenceArguments

    @OptionGroup var engine: ScoringArguments

    @OptionGroup var output: OutputArguments

    @Flag(help: "Print where the time went (GEMMs, attention, head, softmax) on stderr at the end.")
    var profile = false

    @Flag(help: "Score a few blocks spread over the data and print, for the whole data, the tokens, FLOPs, estimated time and core-hours on this machine and the memory per task; writes nothing (docs/cluster.md).")
    var estimate = false

    @Option(help: "With --estimate: about how many tokens to score for the calibration.")
    var estimateTokens = 1000

    @Option(help: "A score store directory: scores are read from it where it has them and kept there (docs/score-store.md); the same entries `irm analyze` uses. No store by default.")
    var store: String?

    @OptionGroup var sharding: ShardArguments

    func validate() throws {
        if estimate && out != nil { throw ValidationError("--estimate writes nothing; leave out --out") }
        if !estimate && sharding.shard == nil && out == nil { throw ValidationError("missing --out (where to write the scores)") }
        if sharding.shard != nil && store == nil { throw ValidationError("--shard scores into a score store: give --store DIR") }
        if sharding.shard != nil && estimate { throw ValidationError("give --estimate or --shard, not both") }
        if estimateTokens < 1 { throw ValidationError("--estimate-tokens must be at least 1, found \(estimateTokens)") }
    }

    func run() throws {
        try runReportingErrors {
            if let shard = sharding.value {
                let summary = try ScoreRun.scoreShard(try runOptions(), shard: shard, progress: output.progressOutput, warn: output.warn)
                ShardArguments.report(summary, output)
                return
            }
            guard let out else {
                let result = try ScoreRun.estimate(try runOptions(), calibrationTokens: estimateTokens, progress: output.progressOutput, warn: output.warn)
                print(result.report(), terminator: "")
                return
            }
            let outURL = URL(fileURLWithPath: out)
            let claim = try claimOutput(out, as: .file, label: "--out", warn: output.warn)
            defer { claim.release() }
            let options = try runOptions()
            let computeProfile = profile ? ComputeProfile() : nil
            let run = try ScoreRun(options, profile: computeProfile, progress: output.progressOutput, warn: output.warn)
            try AtomicOutput.write(Data((run.lines.joined(separator: "\n") + "\n").utf8), to: outURL)
            if let computeProfile {
                FileHandle.standardError.write(Data(profileReport(computeProfile, load: run.loadSeconds, scoring: run.scoringSeconds,
                                                                  tokens: run.tokenCount).utf8))
            }
        }
    }

    private func runOptions() throws -> ScoreRun.Options {
        var options = ScoreRun.Options(modelPath: model, dataPath: data)
        options.referencePath = reference
        options.sequences = sequence.options
        if appendEOS { options.sequences.eos = .always }
        options.chatTemplatePath = sequence.chatTemplate
        options.templateDate = try sequence.date()
        options.scoring = engine.options
        options.storeDirectory = store.map { URL(fileURLWithPath: $0) }
        return options
    }

    private func profileReport(_ p: ComputeProfile, load: Double, scoring wall: Double, tokens: Int) -> String {
        func f(_ v: Double, _ digits: Int = 3) -> String { String(format: "%.\(digits)f", v) }
        let blockRate = p.gemmSeconds > 0 ? p.gemmFlops / p.gemmSeconds / 1e9 : 0
        let headRate = p.headSeconds > 0 ? p.headFlops / p.headSeconds / 1e9 : 0
        return """
            profile: load \(f(load)) s; scoring \(f(wall)) s, \(tokens) tokens, \(f(Double(tokens) / wall, 1)) tokens/s
            profile: forward \(f(p.totalSeconds)) s (block GEMMs \(f(p.gemmSeconds)) s at \(f(blockRate, 1)) GFLOP/s, of which widening weights \(f(p.widenSeconds)) s; attention \(f(p.attentionSeconds)) s)
            profile: head GEMMs \(f(p.headSeconds)) s at \(f(headRate, 1)) GFLOP/s, log-softmax \(f(p.softmaxSeconds)) s
            profile: flops block \(f(p.gemmFlops / 1e9, 2)) G, head \(f(p.headFlops / 1e9, 2)) G

            """
    }
}
