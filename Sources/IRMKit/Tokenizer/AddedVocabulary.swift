/// One entry of tokenizer.json's `added_tokens`.
struct AddedToken: Sendable {
    let content: String
    let id: Int32
    let isSpecial: Bool
    /// Matched after normalization, against the normalized form of `content`.
    let isNormalized: Bool
    /// Only matched when no word character (`\w`) touches it on either side.
    let isSingleWord: Bool
    /// Swallows the whitespace on its left / right into the match.
    let stripsLeft: Bool
    let stripsRight: Bool
}

/// The added tokens and how Hugging Face finds them in text: leftmost-longest matches, tokens with
/// `normalized: false` in the raw text before anything else, the others in each normalized segment.
struct AddedVocabulary: Sendable {
    let tokens: [AddedToken]
    private let idForContent: [ByteKey: Int32]
    private let tokenForID: [Int32: AddedToken]
    /// What `decode` shows for an added token: its normalized form when it is normalized (Hugging
    /// Face's `simple_id_to_token`), else its content.
    private let decodingFormForID: [Int32: String]
    let specialContents: Set<ByteKey>
    let rawMatcher: AddedTokenMatcher
    let normalizedMatcher: AddedTokenMatcher

    /// Reads `added_tokens`. Ids are assigned as Hugging Face assigns them when it loads the file: a
    /// content that the model vocabulary has takes the model's id; any other takes the next id after
    /// the largest so far (which equals the listed id in any file Hugging Face wrote).
    init(node: TokenizerConfigNode?, model: BPEModel, normalizer: (any TextNormalizer)?) throws {
        var tokens: [AddedToken] = []
        var idForContent: [ByteKey: Int32] = [:]
        var tokenForID: [Int32: AddedToken] = [:]
        var decodingForm: [Int32: String] = [:]
        var special = Set<ByteKey>()
        var raw: [(scalars: [Unicode.Scalar], index: Int)] = []
        var normalized: [(scalars: [Unicode.Scalar], index: Int)] = []
        for item in try node?.elements() ?? [] {
            let content = try item.requiredString("content")
            guard !content.isEmpty else { continue }
            let key = ByteKey(content)
            let id: Int32
            if let existing = idForContent[key] {
                id = existing
            } else if let modelID = model.id(forToken: content) {
                id = modelID
            } else {
                let largestAdded = tokenForID.keys.max()
                if let largestAdded, Int(largestAdded) >= model.vocabularyCount || model.vocabularyCount == 0 {
                    id = largestAdded + 1
                } else {
                    id = Int32(model.vocabularyCount)
                }
            }
            if let listed = item.child("id")?.value.intValue, listed != Int(id) {
                throw item.failure("added token \(JSONValue.string(content).brief) is listed with id \(listed), but Hugging Face would give it id \(id); the file is inconsistent")
            }
            let token = AddedToken(content: content, id: id,
                                   isSpecial: try item.bool("special", default: false),
                                   isNormalized: try item.bool("normalized", default: true),
                                   isSingleWord: try item.bool("single_word", default: false),
                                   stripsLeft: try item.bool("lstrip", default: false),
                                   stripsRight: try item.bool("rstrip", default: false))
            // A token listed twice keeps one entry with its last flags.
            tokens.removeAll { $0.id == id }
            tokens.append(token)
            idForContent[key] = id
            tokenForID[id] = token
            if token.isSpecial { special.insert(key) }
        }
        for (index, token) in tokens.enumerated() {
            if token.isNormalized {
                var form = AlignedText(original: token.content.unicodeScalars, startingAt: 0)
                normalizer?.normalize(&form)
                normalized.append((form.scalars, index))
                decodingForm[token.id] = String(String.UnicodeScalarView(form.scalars))
            } else {
                raw.append((Array(token.content.unicodeScalars), index))
                decodingForm[token.id] = token.content
            }
        }
        self.tokens = tokens
        self.idForContent = idForContent
        self.tokenForID = tokenForID
        decodingFormForID = decodingForm
        specialContents = special
        rawMatcher = AddedTokenMatcher(patterns: raw, tokens: tokens)
        normalizedMatcher = AddedTokenMatcher(patterns: normalized, tokens: tokens)
    }

    func id(forContent content: String) -> Int32? { idForContent[ByteKey(content)] }
    func token(forID id: Int32) -> AddedToken? { tokenForID[id] }
    func decodingForm(forID id: Int32) -> String? { decodingFormForID[id] }
    func isSpecial(_ content: String) -> Bool { specialContents.contains(ByteKey(content)) }
}

/// A piece of text after added-token extraction: either plain text to normalize and pre-tokenize, or
/// an added token that is already final.
struct AddedTokenSplit {
    let range: Range<Int>
    let token: AddedToken?
}

/// Leftmost-longest search for a set of added tokens (what Hugging Face's Aho-Corasick automaton with
/// `MatchKind::LeftmostLongest` finds), followed by the single_word, lstrip and rstrip rules.
struct AddedTokenMatcher: Sendable {
    /// Candidate patterns by first scalar, longest first.
    private let candidates: [UInt32: [(scalars: [Unicode.Scalar], token: AddedToken)]]
    /// Quick rejection for ASCII first scalars.
    private let asciiFirst: [Bool]

    var isEmpty: Bool { candidates.isEmpty }

    init(patterns: [(scalars: [Unicode.Scalar], index: Int)], tokens: [AddedToken]) {
        var candidates: [UInt32: [(scalars: [Unicode.Scalar], token: AddedToken)]] = [:]
        var asciiFirst = [Bool](repeating: false, count: 128)
        for (scalars, index) in patterns {
            guard let first = scalars.first else { continue }
            candidates[first.value, default: []].append((scalars, tokens[index]))
            if first.value < 128 { asciiFirst[Int(first.value)] = true }
        }
        for key in candidates.keys {
            candidates[key]?.sort { $0.scalars.count > $1.scalars.count }
        }
        self.candidates = candidates
        self.asciiFirst = asciiFirst
    }

    /// Splits `range` of `scalars` into plain pieces and added tokens, as Hugging Face's
    /// `AddedVocabulary::find_matches` does (plain pieces may be empty; callers drop those).
    func split(_ scalars: [Unicode.Scalar], range: Range<Int>) -> [AddedTokenSplit] {
        guard !candidates.isEmpty, !range.isEmpty else { return [AddedTokenSplit(range: range, token: nil)] }
        var result: [AddedTokenSplit] = []
        var startOffset = range.lowerBound
        var i = range.lowerBound
        while i < range.upperBound {
            let first = scalars[i]
            if first.value < 128 && !asciiFirst[Int(first.value)] { i += 1; continue }
            guard let list = candidates[first.value],
                  let found = list.first(where: { matches($0.scalars, in: scalars, at: i, end: range.upperBound) }) else {
                i += 1; continue
            }
            var start = i
            var stop = i + found.scalars.count
            let token = found.token
            i = stop
            if token.isSingleWord {
                let startSpace = start == range.lowerBound || !AddedTokenMatcher.isWordScalar(scalars[start - 1])
                let stopSpace = stop == range.upperBound || !AddedTokenMatcher.isWordScalar(scalars[stop])
                if !startSpace || !stopSpace { continue }
            }
            if token.stripsLeft {
                var newStart = start
                while newStart > range.lowerBound, scalars[newStart - 1].properties.isWhitespace { newStart -= 1 }
                start = max(newStart, startOffset)
            }
            if token.stripsRight {
                while stop < range.upperBound, scalars[stop].properties.isWhitespace { stop += 1 }
            }
            if startOffset < start { result.append(AddedTokenSplit(range: startOffset..<start, token: nil)) }
            result.append(AddedTokenSplit(range: start..<stop, token: token))
            startOffset = stop
        }
        if startOffset != range.upperBound {
            result.append(AddedTokenSplit(range: startOffset..<range.upperBound, token: nil))
        }
        return result
    }

    @inline(__always)
    private func matches(_ pattern: [Unicode.Scalar], in scalars: [Unicode.Scalar], at index: Int, end: Int) -> Bool {
        guard index + pattern.count <= end else { return false }
        for k in 1..<max(pattern.count, 1) where scalars[index + k] != pattern[k] { return false }
        return true
    }

    /// Rust regex `\w`: Alphabetic, marks, decimal digits, connector punctuation and join controls.
    static func isWordScalar(_ scalar: Unicode.Scalar) -> Bool {
        let properties = scalar.properties
        if properties.isAlphabetic || properties.isJoinControl { return true }
        switch properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }
}
