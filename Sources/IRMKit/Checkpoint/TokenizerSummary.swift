/// What `irm inspect` and validation need to know about an embedded tokenizer.json, read without
/// building the tokenizer itself.
public struct TokenizerSummary: Sendable, Equatable, Codable {
    /// The model section's type: `BPE`, `Unigram`, `WordPiece` or `WordLevel`.
    public let modelType: String
    /// `byte-level` (GPT-2 style), `metaspace` (SentencePiece style), or the pre-tokenizer's type.
    public let style: String
    /// Size of the vocabulary including added tokens that are not in the model vocabulary
    /// (Hugging Face `get_vocab_size(with_added_tokens=True)`).
    public let vocabularySize: Int
    /// The largest token id the tokenizer can produce.
    public let maxTokenID: Int
    public let addedTokenCount: Int
    public let byteFallback: Bool
    /// The special token the post-processor puts first, if any (e.g. `<s>` for Llama).
    public let prependedToken: String?

    public init(json text: String, source: String) throws {
        let json = try JSONValue.parse(text, source: source)
        guard let model = json["model"]?.objectValue else {
            throw IRMError("\(source): expected a tokenizer.json with a \"model\" object, found none")
        }
        modelType = model["type"]?.stringValue ?? (model["merges"] != nil ? "BPE" : "unknown")
        var ids = Set<Int>()
        if let vocab = model["vocab"]?.objectValue {
            for value in vocab.values { if let id = value.intValue { ids.insert(id) } }
        } else if let vocab = model["vocab"]?.arrayValue {
            ids.formUnion(0..<vocab.count)  // Unigram: a list of [piece, score]
        }
        let modelIDs = ids
        var added = 0
        for token in json["added_tokens"]?.arrayValue ?? [] {
            if let id = token["id"]?.intValue {
                added += 1
                ids.insert(id)
            }
        }
        addedTokenCount = added
        vocabularySize = modelIDs.count + ids.subtracting(modelIDs).count
        maxTokenID = ids.max() ?? -1
        byteFallback = model["byte_fallback"]?.boolValue ?? false

        func types(_ value: JSONValue?) -> [String] {
            guard let value, let object = value.objectValue else { return [] }
            let type = object["type"]?.stringValue ?? ""
            if type == "Sequence" {
                let children = object["pretokenizers"]?.arrayValue ?? object["normalizers"]?.arrayValue
                    ?? object["decoders"]?.arrayValue ?? object["processors"]?.arrayValue ?? []
                return children.flatMap { types($0) }
            }
            return [type]
        }
        let preTokenizers = types(json["pre_tokenizer"])
        let normalizers = types(json["normalizer"])
        let decoders = types(json["decoder"])
        if preTokenizers.contains("ByteLevel") {
            style = "byte-level"
        } else if preTokenizers.contains("Metaspace") || normalizers.contains("Prepend") || decoders.contains("Metaspace") {
            style = "metaspace"
        } else {
            style = preTokenizers.first ?? "none"
        }
        var first: String? = nil
        if let post = json["post_processor"]?.objectValue {
            let processors = post["type"]?.stringValue == "Sequence" ? (post["processors"]?.arrayValue ?? []) : [.object(post)]
            for processor in processors where processor["type"]?.stringValue == "TemplateProcessing" {
                if let head = processor["single"]?.arrayValue?.first, let special = head["SpecialToken"]?["id"]?.stringValue {
                    first = special
                }
            }
        }
        prependedToken = first
    }
}
