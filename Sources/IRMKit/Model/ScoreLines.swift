import Foundation

/// The pieces of `irm score` that are not argument parsing: turning data-file samples into token
/// ids, and writing one JSON line per scored sample.
public enum ScoreLines {
    /// Encodes text with the checkpoint's tokenizer: `(text, addSpecialTokens) -> ids`.
    public typealias TextEncoder = (String, Bool) throws -> [Int32]

    /// Token ids for each sample. Ids given in the file (`prompt_ids`, `response_ids`, …) are used
    /// verbatim; text is encoded, the prompt with the tokenizer's special tokens (so a BOS that
    /// its post-processor adds comes first) and the response without. `eos`, when given, is
    /// appended to every response.
    public static func scoringSamples(_ samples: [Sample], source: String, encode: TextEncoder?, eos: Int32?) throws -> [ScoringSample] {
        try samples.map { sample in
            func ids(_ given: [Int32]?, _ text: String?, special: Bool, field: String) throws -> [Int32] {
                if let given { return given }
                guard let text else { return [] }
                guard let encode else {
                    throw IRMError("\(source): \(sample.label): \"\(field)\" is text, but no tokenizer is available; give \"\(field)_ids\" instead")
                }
                return try encode(text, special)
            }
            let responseField = sample.role?.rawValue ?? "response"
            var response = try ids(sample.responseIDs, sample.response, special: false, field: responseField)
            if let eos { response.append(eos) }
            return ScoringSample(name: "\(source): \(sample.label)",
                                 promptIDs: try ids(sample.promptIDs, sample.prompt, special: true, field: "prompt"),
                                 responseIDs: response)
        }
    }

    /// `{"id", "role"?, "prompt_ids", "response_ids", "logprobs", "logprob_sum", "logprob_mean"}`,
    /// plus `reference_logprobs`, `reference_logprob_sum`, `reference_logprob_mean`, `kl` and
    /// `kl_sum` when a reference model was compared. Missing values are `null`.
    public static func logProbLine(_ sample: Sample, _ ids: ScoringSample, _ result: ResponseLogProbs,
                                   reference: ResponseComparison? = nil) -> String {
        var out = header(sample, ids)
        field("logprobs", numbers(result.tokens), into: &out)
        field("logprob_sum", JSONValue.format(result.sum), into: &out)
        field("logprob_mean", result.mean.map(JSONValue.format) ?? "null", into: &out)
        if let reference {
            field("reference_logprobs", numbers(reference.before.tokens), into: &out)
            field("reference_logprob_sum", JSONValue.format(reference.before.sum), into: &out)
            field("reference_logprob_mean", reference.before.mean.map(JSONValue.format) ?? "null", into: &out)
            field("kl", numbers(reference.kl), into: &out)
            field("kl_sum", JSONValue.format(reference.klSum), into: &out)
        }
        return out + "}"
    }

    /// `{"id", "role"?, "prompt_ids", "response_ids", "score"}`; `score` is a number, or an array
    /// for a reward model with several labels.
    public static func rewardLine(_ sample: Sample, _ ids: ScoringSample, _ score: [Double]) -> String {
        var out = header(sample, ids)
        field("score", score.count == 1 ? JSONValue.format(score[0]) : numbers(score.map { $0 }), into: &out)
        return out + "}"
    }

    private static func header(_ sample: Sample, _ ids: ScoringSample) -> String {
        var out = "{\"id\":"
        JSONValue.writeString(sample.id, into: &out)
        if let role = sample.role { out += ",\"role\":\"\(role.rawValue)\"" }
        field("prompt_ids", "[" + ids.promptIDs.map(String.init).joined(separator: ",") + "]", into: &out)
        field("response_ids", "[" + ids.responseIDs.map(String.init).joined(separator: ",") + "]", into: &out)
        return out
    }

    private static func field(_ key: String, _ value: String, into out: inout String) {
        out += ",\"\(key)\":" + value
    }

    private static func numbers(_ values: [Double?]) -> String {
        "[" + values.map { $0.map(JSONValue.format) ?? "null" }.joined(separator: ",") + "]"
    }
}
