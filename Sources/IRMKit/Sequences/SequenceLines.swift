import Foundation

/// The lines `irm tokenize --data` prints: each sample's scored sequence as its convention builds it.
public enum SequenceLines {
    /// `{"id", "role"?, "format", "text", "prompt_end", "ids", "tokens"}`: the whole sequence as text
    /// (special tokens included, so a template's markup shows), its ids and token strings, and
    /// `prompt_end`, the number of leading ids that are prompt (the response is scored from there).
    public static func line(_ sample: Sample, _ sequence: ScoringSample, tokenizer: Tokenizer) -> String {
        let ids = sequence.promptIDs + sequence.responseIDs
        var object: [String: JSONValue] = [
            "id": .string(sample.id),
            "format": .string(sample.format.rawValue),
            "text": .string(tokenizer.decode(ids, skipSpecialTokens: false)),
            "prompt_end": .int(Int64(sequence.promptIDs.count)),
            "ids": .array(ids.map { .int(Int64($0)) }),
            "tokens": .array(ids.map { .string(tokenizer.tokenString($0) ?? "") }),
        ]
        if let role = sample.role { object["role"] = .string(role.rawValue) }
        return JSONValue.object(object).serialized()
    }
}
