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
            encoded with special tokens and the response without, which is how irm scores the pair.
            """)

    @Option(help: "The irm checkpoint (.h5) whose embedded tokenizer to use.")
    var model: String?

    @Option(help: "A Hugging Face tokenizer.json to use instead of a checkpoint's.")
    var tokenizer: String?

    @Option(help: "The text to encode.")
    var text: String?

    @Option(help: "A JSON Lines file of {\"text\": ...} or {\"prompt\": ..., \"response\": ...} records.")
    var file: String?

    @Flag(name: .customLong("no-special"), help: "Do not add the post-processor's special tokens (such as <s>).")
    var noSpecial = false

    @Flag(help: ArgumentHelp("Print throughput instead of tokens.", visibility: .hidden))
    var benchmark = false

    func validate() throws {
        guard (model == nil) != (tokenizer == nil) else {
            throw ValidationError("Give exactly one of --model and --tokenizer.")
        }
        guard (text == nil) != (file == nil) else {
            throw ValidationError("Give exactly one of --text and --file.")
        }
    }

    func run() throws {
        try runReportingErrors {
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
