import ArgumentParser
import Foundation
import IRMKit

extension ScoringConvention: ExpressibleByArgument {}
extension EOSRule: ExpressibleByArgument {}

/// How text becomes the scored token sequences, for every command that tokenises data (`score`,
/// `analyze`, `tokenize`): docs/scoring.md, "Conventions".
struct SequenceArguments: ParsableArguments {
    @Option(help: "trl (TRL's DPOTrainer: prompt + response tokenised together, EOS appended to text), separate (prompt and response tokenised apart, no EOS) or rewardbench (RewardBench 0.1.4's DPO scoring).")
    var convention: ScoringConvention = .trl

    @Option(help: "auto (the convention's rule), always or never: whether an EOS token ends each response.")
    var eos: EOSRule = .auto

    @Option(help: "The trainer's max_length (default: TRL 1024, RewardBench 2048): longer sequences are reported (trl) or truncated as RewardBench does (rewardbench).")
    var maxLength: Int?

    @Option(help: "A chat template to use instead of the checkpoint's: a .jinja file, or a tokenizer_config.json with a chat_template.")
    var chatTemplate: String?

    @Option(help: "The date strftime_now renders in chat templates, as YYYY-MM-DD (default: today, UTC).")
    var templateDate: String?

    func validate() throws {
        if let maxLength, maxLength < 1 { throw ValidationError("--max-length must be at least 1, found \(maxLength)") }
        if let templateDate { _ = try ChatFormatting.date(fromText: templateDate) }
    }

    var options: SequenceOptions {
        var o = SequenceOptions()
        o.convention = convention
        o.eos = eos
        o.maxLength = maxLength
        return o
    }

    func date() throws -> Date {
        try templateDate.map(ChatFormatting.date(fromText:)) ?? Date()
    }
}
