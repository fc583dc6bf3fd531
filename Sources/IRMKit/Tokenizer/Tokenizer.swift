/// The result of encoding one text.
///
/// Offsets are ranges of **Unicode scalar indices** into the encoded text, the same numbers Hugging
/// Face's Python API reports (Python `str` indices). A token made of some of the bytes of a scalar
/// (byte-level BPE splitting an emoji, or byte fallback) gets the whole scalar's range, so
/// neighbouring tokens can share a range. Special tokens added by the post-processor have `0..<0`.
public struct Encoding: Sendable, Equatable {
    public var ids: [Int32] = []
    public var tokens: [String] = []
    public var offsets: [Range<Int>] = []

    public init() {}

    public var count: Int { ids.count }

    mutating func append(id: Int32, token: String, offsets range: Range<Int>) {
        ids.append(id)
        tokens.append(token)
        offsets.append(range)
    }

    mutating func append(contentsOf other: Encoding) {
        ids += other.ids
        tokens += other.tokens
        offsets += other.offsets
    }
}

/// A Hugging Face tokenizer.json BPE tokenizer: byte-level (GPT-2, GPT-NeoX/Pythia, Llama 3, Qwen2)
/// or SentencePiece style (Llama 2, Mistral, TinyLlama: Metaspace, byte fallback, unknown token).
///
/// Built from the file's sections, each its own type chosen by the section's `type`: added tokens,
/// normalizer, pre-tokenizer, BPE model, post-processor and decoder. A component irm does not
/// implement is an error naming its type and JSON path, never a silent approximation. Encoding gives
/// the same ids, tokens and offsets as Hugging Face `tokenizers` (checked against fixtures made with
/// 0.23.3); see docs/tokenizers.md for the supported components and the known gaps.
///
/// Thread-safe: encoding and decoding read immutable state plus a locked word cache.
public final class Tokenizer: Sendable {
    /// Where the JSON came from, used in error messages (e.g. `checkpoint foo.h5`).
    public let sourceDescription: String
    private let addedVocabulary: AddedVocabulary
    private let normalizer: (any TextNormalizer)?
    private let preTokenizer: (any PreTokenizer)?
    private let model: BPEModel
    private let postProcessor: (any PostProcessor)?
    private let decoder: (any TokenDecoder)?

    /// Reads a tokenizer.json document. Throws `IRMError` for malformed JSON, a missing or ill-typed
    /// field, and any component type irm does not support (the message names the component and its
    /// JSON path inside `sourceDescription`).
    public init(json: String, sourceDescription: String) throws {
        self.sourceDescription = sourceDescription
        let root = TokenizerConfigNode(value: try JSONValue.parse(json, source: sourceDescription),
                                       path: "", source: sourceDescription)
        guard root.value.objectValue != nil else {
            throw root.failure("expected a tokenizer.json object, found \(root.value.brief)")
        }
        for key in ["truncation", "padding"] {
            if let node = root.child(key) {
                throw node.failure("\(key) settings are not supported; expected null (irm encodes whole texts)")
            }
        }
        normalizer = try root.child("normalizer").map(NormalizerFactory.make)
        let preTokenizer = try root.child("pre_tokenizer").map(PreTokenizerFactory.make)
        self.preTokenizer = preTokenizer
        let isByteLevel = Tokenizer.containsByteLevel(preTokenizer)
        model = try BPEModel(node: try root.requiredChild("model"), byteLevel: isByteLevel)
        addedVocabulary = try AddedVocabulary(node: root.child("added_tokens"), model: model, normalizer: normalizer)
        postProcessor = try root.child("post_processor").map(PostProcessorFactory.make)
        decoder = try root.child("decoder").map(DecoderFactory.make)
    }

    private static func containsByteLevel(_ preTokenizer: (any PreTokenizer)?) -> Bool {
        switch preTokenizer {
        case is ByteLevelPreTokenizer: true
        case let sequence as SequencePreTokenizer: sequence.steps.contains { containsByteLevel($0) }
        default: false
        }
    }

    // MARK: Vocabulary

    /// Hugging Face's `get_vocab_size(with_added_tokens=True)`: the model's entries plus the added
    /// tokens the model does not have.
    public var vocabularySize: Int {
        model.vocabularyCount + addedVocabulary.tokens.filter { model.id(forToken: $0.content) == nil }.count
    }

    /// The token string for an id (added tokens first, then the model), or nil for an unknown id.
    public func tokenString(_ id: Int32) -> String? {
        addedVocabulary.token(forID: id)?.content ?? model.token(forID: id)
    }

    /// The id of an exact token string (compared by its UTF-8 bytes, not by canonical equivalence).
    public func id(forToken token: String) -> Int32? {
        addedVocabulary.id(forContent: token) ?? model.id(forToken: token)
    }

    /// Whether a token string is one of the added tokens marked special.
    public func isSpecialToken(_ token: String) -> Bool { addedVocabulary.isSpecial(token) }

    /// Ids of the special tokens the post-processor puts before the text when `addSpecialTokens` is
    /// true (e.g. `<s>` for Llama 2, `<|begin_of_text|>` for Llama 3; empty for GPT-2).
    public var prefixSpecialTokenIds: [Int32] { postProcessor?.prefixTokens.map(\.id) ?? [] }

    /// Ids of the special tokens the post-processor puts after the text (e.g. `</s>` in templates that
    /// end with it). Callers that concatenate a prompt and a response should know about these.
    public var suffixSpecialTokenIds: [Int32] { postProcessor?.suffixTokens.map(\.id) ?? [] }

    /// Whether `encode(_:addSpecialTokens: true)` starts with a special token.
    public var addsBOS: Bool { !prefixSpecialTokenIds.isEmpty }

    /// The first special token the post-processor prepends, if any.
    public var bosTokenId: Int32? { prefixSpecialTokenIds.first }

    /// `text` without the special tokens the tokenizer would find in it (`</s>`, `<|eot_id|>`, …):
    /// what a reader sees, for the text features. Only the tokens' own text is removed (the
    /// whitespace an `lstrip`/`rstrip` token would swallow stays).
    public func removingSpecialTokens(from text: String) -> String {
        let scalars = Tokenizer.unicodeScalars(of: text)
        var out = String.UnicodeScalarView()
        for split in addedVocabulary.rawMatcher.split(scalars, range: 0..<scalars.count) {
            if let token = split.token, token.isSpecial {
                let content = Array(token.content.unicodeScalars)
                // Keep what the match swallowed around the token's own text.
                if let start = Self.firstIndex(of: content, in: scalars, within: split.range) {
                    out.append(contentsOf: scalars[split.range.lowerBound..<start])
                    out.append(contentsOf: scalars[(start + content.count)..<split.range.upperBound])
                }
                continue
            }
            out.append(contentsOf: scalars[split.range])
        }
        return String(out)
    }

    private static func firstIndex(of needle: [Unicode.Scalar], in haystack: [Unicode.Scalar], within range: Range<Int>) -> Int? {
        guard needle.count <= range.count else { return nil }
        for start in range.lowerBound...(range.upperBound - needle.count) where haystack[start..<(start + needle.count)].elementsEqual(needle) {
            return start
        }
        return nil
    }

    // MARK: Encoding

    /// Encodes `text` as Hugging Face's `Tokenizer.encode(text, add_special_tokens=...)` does.
    ///
    /// Added tokens are always recognised in the text (Hugging Face does so whatever
    /// `add_special_tokens` says); `addSpecialTokens` only controls what the post-processor adds.
    /// To score a prompt and a response as one sequence, encode the prompt with special tokens and
    /// the response without, then concatenate.
    public func encode(_ text: String, addSpecialTokens: Bool = true) -> Encoding {
        let scalars = Tokenizer.unicodeScalars(of: text)
        var encoding = Encoding()
        encoding.ids.reserveCapacity(scalars.count / 3 + 4)
        encoding.tokens.reserveCapacity(scalars.count / 3 + 4)
        encoding.offsets.reserveCapacity(scalars.count / 3 + 4)
        for split in addedVocabulary.rawMatcher.split(scalars, range: 0..<scalars.count) {
            if let token = split.token {
                encoding.append(id: token.id, token: String(String.UnicodeScalarView(scalars[split.range])), offsets: split.range)
                continue
            }
            guard !split.range.isEmpty else { continue }
            var text = AlignedText(original: scalars[split.range], startingAt: split.range.lowerBound)
            normalizer?.normalize(&text)
            for part in addedVocabulary.normalizedMatcher.split(text.scalars, range: 0..<text.count) {
                if let token = part.token {
                    encoding.append(id: token.id, token: String(String.UnicodeScalarView(text.scalars[part.range])),
                                    offsets: text.originalRange(of: part.range))
                    continue
                }
                guard !part.range.isEmpty else { continue }
                encodePlain(part.range == 0..<text.count ? text : text.slice(part.range), into: &encoding)
            }
        }
        postProcessor?.process(&encoding, addSpecialTokens: addSpecialTokens)
        return encoding
    }

    /// Pre-tokenizes normalized text and runs the model on each piece.
    private func encodePlain(_ text: AlignedText, into encoding: inout Encoding) {
        var splits = PreTokenSplits(text: text)
        preTokenizer?.preTokenize(&splits)
        let scalars = splits.text.scalars
        let origins = splits.text.origins
        // The UTF-8 of all pieces back to back, each byte's scalar index, and each piece's byte range,
        // so that the model sees the whole text in one call.
        var bytes: [UInt8] = []
        var byteToScalar: [Int32] = []
        var pieces: [Range<Int>] = []
        bytes.reserveCapacity(scalars.count + scalars.count / 2)
        byteToScalar.reserveCapacity(scalars.count + scalars.count / 2)
        pieces.reserveCapacity(splits.pieces.count)
        for piece in splits.pieces {
            let pieceStart = bytes.count
            for index in piece {
                let value = scalars[index].value
                let position = Int32(index)
                if value < 0x80 {
                    bytes.append(UInt8(value))
                    byteToScalar.append(position)
                } else if value < 0x800 {
                    bytes.append(UInt8(0xC0 | (value >> 6)))
                    bytes.append(UInt8(0x80 | (value & 0x3F)))
                    byteToScalar.append(position); byteToScalar.append(position)
                } else if value < 0x10000 {
                    bytes.append(UInt8(0xE0 | (value >> 12)))
                    bytes.append(UInt8(0x80 | ((value >> 6) & 0x3F)))
                    bytes.append(UInt8(0x80 | (value & 0x3F)))
                    byteToScalar.append(position); byteToScalar.append(position); byteToScalar.append(position)
                } else {
                    bytes.append(UInt8(0xF0 | (value >> 18)))
                    bytes.append(UInt8(0x80 | ((value >> 12) & 0x3F)))
                    bytes.append(UInt8(0x80 | ((value >> 6) & 0x3F)))
                    bytes.append(UInt8(0x80 | (value & 0x3F)))
                    for _ in 0..<4 { byteToScalar.append(position) }
                }
            }
            pieces.append(pieceStart..<bytes.count)
        }
        byteToScalar.withUnsafeBufferPointer { byteToScalar in
            origins.withUnsafeBufferPointer { origins in
                model.tokenize(bytes, pieces: pieces, byteLevel: splits.isByteLevel) { id, byteStart, byteEnd in
                    let first = Int(byteToScalar[byteStart])
                    let last = Int(byteToScalar[max(byteEnd - 1, byteStart)])
                    let start = origins[first].lowerBound
                    let end = max(start, origins[last].upperBound)
                    encoding.append(id: id, token: model.token(forID: id) ?? "", offsets: start..<end)
                }
            }
        }
    }

    /// The text's Unicode scalars, decoded straight from its UTF-8 (`Array(text.unicodeScalars)`
    /// walks the string twice through generic index code).
    static func unicodeScalars(of text: String) -> [Unicode.Scalar] {
        var text = text
        return text.withUTF8 { utf8 in
            [Unicode.Scalar](unsafeUninitializedCapacity: utf8.count) { scalars, count in
                var index = 0
                var written = 0
                let end = utf8.count
                while index < end {
                    let lead = UInt32(utf8[index])
                    var value: UInt32
                    var length: Int
                    if lead < 0x80 {
                        value = lead; length = 1
                    } else if lead < 0xE0 {
                        value = lead & 0x1F; length = 2
                    } else if lead < 0xF0 {
                        value = lead & 0x0F; length = 3
                    } else {
                        value = lead & 0x07; length = 4
                    }
                    var k = 1
                    while k < length, index + k < end {
                        value = value << 6 | (UInt32(utf8[index + k]) & 0x3F)
                        k += 1
                    }
                    // A String's UTF-8 is always valid, so the replacement is never used.
                    scalars.initializeElement(at: written, to: Unicode.Scalar(value) ?? "\u{FFFD}")
                    written += 1
                    index += length
                }
                count = written
            }
        }
    }

    // MARK: Decoding

    /// Decodes ids to text as Hugging Face's `Tokenizer.decode(ids, skip_special_tokens=...)` does:
    /// unknown ids are dropped, added tokens appear in their normalized form, and without a decoder
    /// the tokens are joined with spaces.
    public func decode(_ ids: [Int32], skipSpecialTokens: Bool) -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for id in ids {
            guard let token = addedVocabulary.decodingForm(forID: id) ?? model.token(forID: id) else { continue }
            if skipSpecialTokens, addedVocabulary.isSpecial(token) { continue }
            tokens.append(token)
        }
        guard let decoder else { return tokens.joined(separator: " ") }
        return decoder.decodeChain(tokens).joined()
    }
}
