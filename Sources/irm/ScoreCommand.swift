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

    @Option(help: "Where to write the scores (JSON lines).")
    var out: String

    @Option(help: "A second policy (.h5) to compare with: adds its log-probs and the exact per-token KL(model ‖ reference). Both models are held in memory.")
    var reference: String?

    @Flag(help: "The same as --eos always.")
    var appendEOS = false

    @OptionGroup var sequence: SequenceArguments

    @OptionGroup var engine: ScoringArguments

    @OptionGroup var output: OutputArguments

    @Flag(help: "Print where the time went (GEMMs, attention, head, softmax) on stderr at the end.")
    var profile = false

    func run() throws {
        try runReportingErrors {
            let outURL = URL(fileURLWithPath: out)
            try AtomicOutput.checkWritable(outURL)
            let samples = try SampleFile.read(path: data)

            let checkpoint = try Checkpoint.open(path: model)
            let referenceCheckpoint = try reference.map { try Checkpoint.open(path: $0) }
            if referenceCheckpoint != nil && checkpoint.kind != .policy {
                throw IRMError("\(model): is a reward model; --reference compares two policies (causal language models)")
            }
            if let referenceCheckpoint, referenceCheckpoint.kind != .policy {
                throw IRMError("\(referenceCheckpoint.path): is a reward model; --reference needs a policy (causal language model) checkpoint")
            }
            var sequenceOptions = sequence.options
            if appendEOS { sequenceOptions.eos = .always }
            let needsText = samples.contains { ($0.promptIDs == nil && $0.prompt != nil) || ($0.responseIDs == nil && $0.response != nil) }
            let tokenizer = needsText ? try Tokenizer(json: checkpoint.tokenizerJSON, sourceDescription: "\(model): /tokenizer/tokenizer.json") : nil
            let formatting = try ChatFormatting(checkpoint: checkpoint, templatePath: sequence.chatTemplate, date: try sequence.date())
            let (scoring, warnings, _) = try TrainingSequences(tokenizer: tokenizer, formatting: formatting, options: sequenceOptions,
                                                            source: data).build(samples)
            for warning in warnings { output.warn(warning) }

            let options = engine.options
            let computeProfile = profile ? ComputeProfile() : nil
            let scorer = LogProbScorer(options: options, profile: computeProfile)
            let progress = output.progressOutput.task("scoring", total: scoring.count)
            let update: ScoringProgress = { progress.update(done: $0, tokens: $1) }
            let loadStart = Date()
            var lines: [String] = []
            let policy = try ModelLoading.load(checkpoint: checkpoint)
            var loadSeconds = Date().timeIntervalSince(loadStart)
            var started = Date()
            switch checkpoint.kind {
            case .rewardModel:
                let scores = try scorer.rewards(of: scoring, under: policy, progress: update)
                lines = samples.indices.map { ScoreLines.rewardLine(samples[$0], scoring[$0], scores[$0]) }
            case .policy:
                if let referenceCheckpoint {
                    let before = try ModelLoading.load(checkpoint: referenceCheckpoint)
                    loadSeconds += Date().timeIntervalSince(started)
                    started = Date()
                    let (mismatch, resized) = try Tokenizer.difference(referenceCheckpoint, checkpoint)
                    if let mismatch {
                        throw IRMError("\(model) and \(referenceCheckpoint.path) have different tokenizers (\(mismatch)); the KL compares the probabilities the two give the same token ids")
                    }
                    if let resized { output.warn("a resized vocabulary: \(resized); the KL is over the shared rows, renormalised (added_row_mass gives the rest)") }
                    let results = try scorer.compare(scoring, after: policy, before: before, resizedVocabulary: resized != nil,
                                                      progress: update)
                    lines = samples.indices.map { ScoreLines.logProbLine(samples[$0], scoring[$0], results[$0].after, reference: results[$0]) }
                } else {
                    let results = try scorer.logProbs(of: scoring, under: policy, progress: update)
                    lines = samples.indices.map { ScoreLines.logProbLine(samples[$0], scoring[$0], results[$0]) }
                }
            }
            progress.finish()
            let scoringSeconds = Date().timeIntervalSince(started)
            try AtomicOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8), to: outURL)
            if let computeProfile {
                let tokens = scoring.reduce(0) { $0 + $1.tokenCount }
                FileHandle.standardError.write(Data(profileReport(computeProfile, load: loadSeconds, scoring: scoringSeconds, tokens: tokens).utf8))
            }
        }
    }

    private func profileReport(_ p: ComputeProfile, load: Double, scoring wall: Double, tokens: Int) -> String {
        func f(_ v: Double, _ digits: Int = 3) -> String { String(format: "%.\(digits)f", v) }
        let blockRate = p.gemmSeconds > 0 ? p.gemmFlops / p.gemmSeconds / 1e9 : 0
        let headRate = p.headSeconds > 0 ? p.headFlops / p.headSeconds / 1e9 : 0
        return """
            profile: load \(f(load)) s; scoring \(f(wall)) s, \(tokens) tokens, \(f(Double(tokens) / wall, 1)) tokens/s
            profile: forward \(f(p.totalSeconds)) s (block GEMMs \(f(p.gemmSeconds)) s at \(f(blockRate, 1)) GFLOP/s, attention \(f(p.attentionSeconds)) s)
            profile: head GEMMs \(f(p.headSeconds)) s at \(f(headRate, 1)) GFLOP/s, log-softmax \(f(p.softmaxSeconds)) s
            profile: flops block \(f(p.gemmFlops / 1e9, 2)) G, head \(f(p.headFlops / 1e9, 2)) G

            """
    }
}
