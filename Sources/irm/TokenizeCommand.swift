import ArgumentParser
import Foundation
import IRMKit

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Encode text with a checkpoint's tokenizer and print ids, tokens and offsets as JSON lines.",
        discussion: """
            Each input gives one JSON object per line: {"ids": [...], "offsets": [[start, end], ...], "tokens": [...]}. \
            Offsets are Unicode scalar indices into the input (Python str indices, as Hugging Face reports them). \
            A JSONL record with "prompt" and "response" prints {"prompt": {...}, "response": {...}}: the prompt \
            encoded with special tokens and the response without.

            --data FILE (with --model) reads a data file in any format of docs/data-formats.md, chat messages \
            included, and prints, per sample, the sequence that --convention scores: {"id", "role", "format", \
            "text", "prompt_end", "ids", "tokens"}, where "text" is the rendered, tokenised sequence decoded with \
            its special tokens and the first "prompt_end" ids are the prompt.
            """)

    @Option(help: "The irm checkpoint (.h5) whose embedded tokenizer to use.")
    var model: String?

    @Option(help: "A Hugging Face tokenizer.json to use instead of a checkpoint's.")
    var tokenizer: String?

    @Option(help: "The text to encode.")
    var text: String?

    @Option(help: "A JSON Lines file of {\"text\": ...} or {\"prompt\": ..., \"response\": ...} records.")
    var file: String?

    @Option(help: "A data file (any format of docs/data-formats.md; needs --model): print the scored sequence of each sample.")
    var data: String?

    @OptionGroup var sequence: SequenceArguments

    @Flag(name: .customLong("no-special"), help: "Do not add the post-processor's special tokens (such as <s>).")
    var noSpecial = false

    @Flag(help: ArgumentHelp("Print throughput instead of tokens.", visibility: .hidden))
    var benchmark = false

    func validate() throws {
        guard (model == nil) != (tokenizer == nil) else {
            throw ValidationError("Give exactly one of --model and --tokenizer.")
        }
        guard [text != nil, file != nil, data != nil].filter({ $0 }).count == 1 else {
            throw ValidationError("Give exactly one of --text, --file and --data.")
        }
        if data != nil && model == nil {
            throw ValidationError("--data needs --model (the checkpoint's tokenizer and chat template).")
        }
    }

    func run() throws {
        try runReportingErrors {
            if let data, let model {
                let checkpoint = try Checkpoint.open(path: model)
                let tokenizer = try Tokenizer(json: checkpoint.tokenizerJSON, sourceDescription: "\(model): /tokenizer/tokenizer.json")
                let formatting = try ChatFormatting(checkpoint: checkpoint, templatePath: sequence.chatTemplate, date: try sequence.date())
                let samples = try SampleFile.read(path: data)
                let (sequences, warnings, _) = try TrainingSequences(tokenizer: tokenizer, formatting: formatting, options: sequence.options,
                                                                     source: data).build(samples)
                for warning in warnings { printWarning(warning) }
                let lines = zip(samples, sequences).map { SequenceLines.line($0, $1, tokenizer: tokenizer) }
                FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
                return
            }
            let loaded: Tokenizer
            if let model {
                let checkpoint = try Checkpoint.open(path: model)
                loaded = try Tokenizer(json: checkpoint.tokenizerJSON, sourceDescription: "checkpoint \(model): /tokenizer/tokenizer.json")
            } else {
                loaded = try TokenizationJSONLines.loadTokenizer(jsonPath: tokenizer ?? "")
            }
            let records: [TokenizationRecord]
            if let text {
                records = [.text(text)]
            } else {
                records = try TokenizationJSONLines.records(fromFile: file ?? "")
            }
            if benchmark {
                print(TokenizationJSONLines.benchmark(records, tokenizer: loaded, addSpecialTokens: !noSpecial).summary)
                return
            }
            var output = ""
            for record in records {
                output += TokenizationJSONLines.line(for: record, tokenizer: loaded, addSpecialTokens: !noSpecial)
                output += "\n"
            }
            FileHandle.standardOutput.write(Data(output.utf8))
        }
    }
}
