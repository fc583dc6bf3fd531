import Foundation

/// The output lines of `irm score`: one JSON line per scored sample.
public enum ScoreLines {
    /// `{"id", "role"?, "prompt_ids", "response_ids", "logprobs", "logprob_sum", "logprob_mean"}`,
    /// plus `reference_logprobs`, `reference_logprob_sum`, `reference_logprob_mean`, `kl` and
    /// `kl_sum` when a reference model was compared, and `added_row_mass` when the model has output
    /// rows the reference lacks. Missing values are `null`.
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
            if let mass = reference.addedRowMass { field("added_row_mass", numbers(mass), into: &out) }
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
