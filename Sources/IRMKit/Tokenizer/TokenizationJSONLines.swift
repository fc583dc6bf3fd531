import Foundation

/// One input of `irm tokenize`: a plain text, or a prompt and its response (encoded as the scorer
/// encodes them: the prompt with special tokens, the response without, so the boundary shows).
public enum TokenizationRecord: Sendable, Equatable {
    case text(String)
    case promptResponse(prompt: String, response: String)

    /// UTF-8 size of the record's text, for throughput figures.
    public var byteCount: Int {
        switch self {
        case .text(let text): text.utf8.count
        case .promptResponse(let prompt, let response): prompt.utf8.count + response.utf8.count
        }
    }
}

/// The core of `irm tokenize`: reads inputs, encodes them, and renders one JSON object per input with
/// `ids`, `tokens` and `offsets` (Unicode scalar index pairs). Output keys are sorted, so the same
/// input always gives the same bytes.
public enum TokenizationJSONLines {
    /// Reads a tokenizer.json file.
    public static func loadTokenizer(jsonPath path: String) throws -> Tokenizer {
        let data = try InputFile.contents(path, what: "the tokenizer.json file")
        try JSONValue.refuseByteOrderMark(data, source: path)
        guard let text = String(data: data, encoding: .utf8) else {
            throw IRMError("\(path): expected UTF-8 JSON text, found bytes that are not valid UTF-8")
        }
        return try Tokenizer(json: text, sourceDescription: path)
    }

    /// Parses JSON Lines: each non-blank line is an object with a string `text`, or with strings
    /// `prompt` and `response`. `source` names the file in errors, which also give the line number.
    public static func records(fromJSONL contents: String, source: String) throws -> [TokenizationRecord] {
        var records: [TokenizationRecord] = []
        for (index, line) in contents.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            // JSON whitespace only; Foundation's trimming is slow on large files.
            if line.utf8.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D || $0 == 0x0A }) { continue }
            let location = "\(source): line \(index + 1)"
            let value = try JSONValue.parse(Data(line.utf8), source: location)
            if let text = value["text"]?.stringValue {
                records.append(.text(text))
            } else if let prompt = value["prompt"]?.stringValue, let response = value["response"]?.stringValue {
                records.append(.promptResponse(prompt: prompt, response: response))
            } else {
                throw IRMError("\(location): expected an object with a string \"text\", or strings \"prompt\" and \"response\"; found \(value.brief)")
            }
        }
        return records
    }

    /// Reads a JSON Lines file of records.
    public static func records(fromFile path: String) throws -> [TokenizationRecord] {
        let data = try InputFile.contents(path, what: "the input file")
        guard let text = String(data: data, encoding: .utf8) else {
            throw IRMError("\(path): expected UTF-8 JSON Lines, found bytes that are not valid UTF-8")
        }
        return try records(fromJSONL: text, source: path)
    }

    /// The JSON object for one encoding.
    public static func jsonValue(of encoding: Encoding) -> JSONValue {
        .object([
            "ids": .array(encoding.ids.map { .int(Int64($0)) }),
            "tokens": .array(encoding.tokens.map { .string($0) }),
            "offsets": .array(encoding.offsets.map { .array([.int(Int64($0.lowerBound)), .int(Int64($0.upperBound))]) }),
        ])
    }

    /// One output line (without the newline). A text gives `{"ids", "offsets", "tokens"}`; a prompt and
    /// response give `{"prompt": {...}, "response": {...}}`, the response encoded without special tokens.
    public static func line(for record: TokenizationRecord, tokenizer: Tokenizer, addSpecialTokens: Bool) -> String {
        switch record {
        case .text(let text):
            return jsonValue(of: tokenizer.encode(text, addSpecialTokens: addSpecialTokens)).serialized()
        case .promptResponse(let prompt, let response):
            return JSONValue.object([
                "prompt": jsonValue(of: tokenizer.encode(prompt, addSpecialTokens: addSpecialTokens)),
                "response": jsonValue(of: tokenizer.encode(response, addSpecialTokens: false)),
            ]).serialized()
        }
    }

    /// Throughput of encoding records (nothing printed per record).
    public struct Benchmark: Sendable {
        public let byteCount: Int
        public let tokenCount: Int
        public let seconds: Double
        public var megabytesPerSecond: Double { seconds > 0 ? Double(byteCount) / 1e6 / seconds : 0 }

        /// One line for the benchmark table.
        public var summary: String {
            String(format: "irm: %.2f MB in %.3f s = %.2f MB/s, %d tokens", Double(byteCount) / 1e6, seconds, megabytesPerSecond, tokenCount)
        }
    }

    /// Encodes every record once, as `line(for:)` would, and times it.
    public static func benchmark(_ records: [TokenizationRecord], tokenizer: Tokenizer, addSpecialTokens: Bool) -> Benchmark {
        let clock = ContinuousClock()
        var tokens = 0
        let elapsed = clock.measure {
            for record in records {
                switch record {
                case .text(let text):
                    tokens += tokenizer.encode(text, addSpecialTokens: addSpecialTokens).count
                case .promptResponse(let prompt, let response):
                    tokens += tokenizer.encode(prompt, addSpecialTokens: addSpecialTokens).count
                    tokens += tokenizer.encode(response, addSpecialTokens: false).count
                }
            }
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        return Benchmark(byteCount: records.reduce(0) { $0 + $1.byteCount }, tokenCount: tokens, seconds: seconds)
    }
}
