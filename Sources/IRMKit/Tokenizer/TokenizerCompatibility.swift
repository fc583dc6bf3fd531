import Foundation

extension Tokenizer {
    /// Whether two checkpoints map text to the same ids: `difference` says what differs, nil when
    /// they tokenise alike. A vocabulary that only adds
    /// tokens (the same ids for every token of the smaller one, as `resize_token_embeddings` leaves
    /// it) is alike: it gives a note instead.
    public static func difference(_ a: Checkpoint, _ b: Checkpoint) throws -> (difference: String?, note: String?) {
        let first = try JSONValue.parse(a.tokenizerJSON, source: "\(a.path): /tokenizer/tokenizer.json")
        let second = try JSONValue.parse(b.tokenizerJSON, source: "\(b.path): /tokenizer/tokenizer.json")
        if first == second && a.config.vocabSize == b.config.vocabSize { return (nil, nil) }
        let ta = try Tokenizer(json: a.tokenizerJSON, sourceDescription: a.path), tb = try Tokenizer(json: b.tokenizerJSON, sourceDescription: b.path)
        let sharedTokens = min(ta.vocabularySize, tb.vocabularySize)
        let sameShared = (0..<sharedTokens).allSatisfy { ta.tokenString(Int32($0)) == tb.tokenString(Int32($0)) }
        if sameShared && (ta.vocabularySize != tb.vocabularySize || a.config.vocabSize != b.config.vocabSize) {
            let (small, large, ts, tl) = ta.vocabularySize <= tb.vocabularySize ? (a, b, ta, tb) : (b, a, tb, ta)
            let added = (ts.vocabularySize..<tl.vocabularySize).prefix(5).compactMap { tl.tokenString(Int32($0)) }.map { "\"\($0)\"" }
            let addedText = added.isEmpty ? "" : ", adding \(added.joined(separator: ", "))\(tl.vocabularySize - ts.vocabularySize > 5 ? ", …" : "")"
            return (nil, "\(large.path) has \(tl.vocabularySize) tokens and \(large.config.vocabSize) embedding rows, \(small.path) \(ts.vocabularySize) and \(small.config.vocabSize), with the same ids for the shared tokens\(addedText)")
        }
        if a.config.vocabSize != b.config.vocabSize {
            return ("vocabulary sizes \(a.config.vocabSize) and \(b.config.vocabSize)", nil)
        }
        let sa = try a.tokenizerSummary(), sb = try b.tokenizerSummary()
        if sa.vocabularySize != sb.vocabularySize {
            return ("\(sa.vocabularySize) and \(sb.vocabularySize) tokens", nil)
        }
        if sa.modelType != sb.modelType || sa.style != sb.style {
            return ("\(sa.modelType) \(sa.style) and \(sb.modelType) \(sb.style)", nil)
        }
        let keys = Set((first.objectValue ?? [:]).keys).union((second.objectValue ?? [:]).keys).sorted()
        let differing = keys.filter { first[$0] != second[$0] }
        return ("tokenizer.json differs in \(differing.isEmpty ? "its content" : differing.map { "\"\($0)\"" }.joined(separator: ", "))", nil)
    }
}
