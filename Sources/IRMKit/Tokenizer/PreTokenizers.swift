/// Normalized text cut into pre-tokens: the text, and the ranges of it that the model will encode
/// one by one (sorted, disjoint, non-empty; gaps are delimiters a split removed).
struct PreTokenSplits {
    var text: AlignedText
    var pieces: [Range<Int>]
    /// Set by the ByteLevel pre-tokenizer: the model then reads each piece as UTF-8 bytes mapped
    /// through the byte-level alphabet, as Hugging Face's byte-level transform does.
    var isByteLevel = false

    init(text: AlignedText) {
        self.text = text
        pieces = text.isEmpty ? [] : [0..<text.count]
    }

    /// Puts `prefix(piece)` (when not nil) in front of each piece, rebuilding the text. A prepended
    /// scalar takes the alignment of the piece's first scalar, like Hugging Face's `prepend`.
    mutating func prependToPieces(_ prefix: (Range<Int>) -> Unicode.Scalar?) {
        var newScalars: [Unicode.Scalar] = []
        var newOrigins: [Range<Int>] = []
        var newPieces: [Range<Int>] = []
        newScalars.reserveCapacity(text.count + pieces.count)
        newOrigins.reserveCapacity(text.count + pieces.count)
        newPieces.reserveCapacity(pieces.count)
        var changed = false
        for piece in pieces {
            let start = newScalars.count
            if let scalar = prefix(piece) {
                newScalars.append(scalar)
                newOrigins.append(text.origins[piece.lowerBound])
                changed = true
            }
            newScalars.append(contentsOf: text.scalars[piece])
            newOrigins.append(contentsOf: text.origins[piece])
            newPieces.append(start..<newScalars.count)
        }
        guard changed else { return }
        text = AlignedText(scalars: newScalars, origins: newOrigins)
        pieces = newPieces
    }

    /// Splits every piece on the matches of `pattern` with Hugging Face's delimiter behaviour.
    mutating func split(on pattern: ScalarPattern, behavior: SplitBehavior, invert: Bool = false) {
        let scalars = text.scalars
        split(behavior: behavior, invert: invert) { piece, emit in
            pattern.forEachMatch(in: scalars, range: piece) { emit($0) }
        }
    }

    /// Splits every piece on each scalar for which `isDelimiter` holds (one match per scalar).
    mutating func split(where isDelimiter: (Unicode.Scalar) -> Bool, behavior: SplitBehavior) {
        let scalars = text.scalars
        split(behavior: behavior, invert: false) { piece, emit in
            for index in piece where isDelimiter(scalars[index]) { emit(index..<(index + 1)) }
        }
    }

    private mutating func split(behavior: SplitBehavior, invert: Bool,
                                matches: (Range<Int>, (Range<Int>) -> Void) -> Void) {
        var newPieces: [Range<Int>] = []
        newPieces.reserveCapacity(pieces.count * 2)
        var marked: [(Range<Int>, Bool)] = []
        for piece in pieces {
            marked.removeAll(keepingCapacity: true)
            var cursor = piece.lowerBound
            matches(piece) { match in
                if cursor != match.lowerBound { marked.append((cursor..<match.lowerBound, invert)) }
                marked.append((match, !invert))
                cursor = match.upperBound
            }
            if cursor != piece.upperBound { marked.append((cursor..<piece.upperBound, invert)) }
            behavior.apply(to: marked, into: &newPieces)
        }
        pieces = newPieces
    }
}

/// What `Split` does with the delimiters it finds (Hugging Face's `SplitDelimiterBehavior`).
enum SplitBehavior: String, Sendable {
    case removed = "Removed"
    case isolated = "Isolated"
    case mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext"
    case contiguous = "Contiguous"

    /// Reads the behaviour; Hugging Face's Python API writes it in snake case, its JSON in camel case.
    init(node: TokenizerConfigNode, key: String) throws {
        let text = try node.requiredString(key)
        let camel = text.split(separator: "_").map { $0.prefix(1).uppercased() + $0.dropFirst().lowercased() }.joined()
        guard let behavior = SplitBehavior(rawValue: text) ?? SplitBehavior(rawValue: camel) else {
            throw node.failure("expected \"\(key)\" to be one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous; found \"\(text)\"")
        }
        self = behavior
    }

    /// Turns (range, isDelimiter) marks into pieces, dropping empty ones, exactly as Hugging Face's
    /// `NormalizedString::split` folds them (including its treatment of adjacent delimiters).
    func apply(to marks: [(Range<Int>, Bool)], into pieces: inout [Range<Int>]) {
        let firstNew = pieces.count
        switch self {
        case .isolated:
            for (range, _) in marks { pieces.append(range) }
        case .removed:
            for (range, isMatch) in marks where !isMatch { pieces.append(range) }
        case .contiguous:
            var previousWasMatch = false
            for (range, isMatch) in marks {
                if isMatch == previousWasMatch, pieces.count > firstNew, let last = pieces.last {
                    pieces[pieces.count - 1] = last.lowerBound..<range.upperBound
                } else {
                    pieces.append(range)
                }
                previousWasMatch = isMatch
            }
        case .mergedWithPrevious:
            var previousWasMatch = false
            for (range, isMatch) in marks {
                if isMatch, !previousWasMatch, pieces.count > firstNew, let last = pieces.last {
                    pieces[pieces.count - 1] = last.lowerBound..<range.upperBound
                } else {
                    pieces.append(range)
                }
                previousWasMatch = isMatch
            }
        case .mergedWithNext:
            var reversed: [Range<Int>] = []
            var previousWasMatch = false
            for (range, isMatch) in marks.reversed() {
                if isMatch, !previousWasMatch, let last = reversed.last {
                    reversed[reversed.count - 1] = range.lowerBound..<last.upperBound
                } else {
                    reversed.append(range)
                }
                previousWasMatch = isMatch
            }
            pieces.append(contentsOf: reversed.reversed())
        }
        // Hugging Face drops pieces whose normalized text is empty.
        var write = firstNew
        for read in firstNew..<pieces.count where !pieces[read].isEmpty {
            pieces[write] = pieces[read]
            write += 1
        }
        pieces.removeLast(pieces.count - write)
    }
}

/// One pre-tokenizer of tokenizer.json's `pre_tokenizer` section.
protocol PreTokenizer: Sendable {
    func preTokenize(_ splits: inout PreTokenSplits)
}

/// The `ByteLevel` pre-tokenizer: an optional leading space, the GPT-2 split pattern (`use_regex`),
/// then the byte-level alphabet (applied by the model, which reads pieces as UTF-8 bytes).
struct ByteLevelPreTokenizer: PreTokenizer {
    let addPrefixSpace: Bool
    let useRegex: Bool

    func preTokenize(_ splits: inout PreTokenSplits) {
        if addPrefixSpace {
            let scalars = splits.text.scalars
            splits.prependToPieces { piece in scalars[piece.lowerBound] == " " ? nil : " " }
        }
        if useRegex { splits.split(on: .gpt2, behavior: .isolated) }
        splits.isByteLevel = true
    }
}

/// The `Split` pre-tokenizer: a string or regex pattern with a delimiter behaviour, optionally inverted.
struct SplitPreTokenizer: PreTokenizer {
    let pattern: ScalarPattern
    let behavior: SplitBehavior
    let invert: Bool

    func preTokenize(_ splits: inout PreTokenSplits) {
        splits.split(on: pattern, behavior: behavior, invert: invert)
    }
}

/// Where Metaspace puts a replacement character in front of the text.
enum PrependScheme: String, Sendable {
    case always, never, first

    /// Reads `prepend_scheme`, honouring the legacy `add_prefix_space` (false means never).
    init(node: TokenizerConfigNode) throws {
        let scheme = try node.string("prepend_scheme")
        var value = PrependScheme.always
        if let scheme {
            guard let parsed = PrependScheme(rawValue: scheme) else {
                throw node.failure("expected \"prepend_scheme\" to be always, never or first; found \"\(scheme)\"")
            }
            value = parsed
        }
        if let addPrefixSpace = node.child("add_prefix_space")?.value.boolValue, !addPrefixSpace {
            guard value == .never || scheme == nil else {
                throw node.failure("add_prefix_space is false but prepend_scheme is \"\(value.rawValue)\"; they disagree")
            }
            value = .never
        }
        self = value
    }
}

/// The `Metaspace` pre-tokenizer (SentencePiece style): spaces become the replacement character
/// (usually ▁), one is put in front according to the prepend scheme, and with `split` the text is
/// cut before each replacement character.
struct MetaspacePreTokenizer: PreTokenizer {
    let replacement: Unicode.Scalar
    let prependScheme: PrependScheme
    let splitsOnReplacement: Bool

    func preTokenize(_ splits: inout PreTokenSplits) {
        for piece in splits.pieces {
            for index in piece where splits.text.scalars[index] == " " {
                splits.text.scalars[index] = replacement
            }
        }
        if prependScheme != .never {
            let text = splits.text
            let replacement = replacement
            let scheme = prependScheme
            splits.prependToPieces { piece in
                guard text.scalars[piece.lowerBound] != replacement else { return nil }
                // "first" only prepends to the piece that starts the original input.
                if scheme == .first, text.origins[piece.lowerBound].lowerBound != 0 { return nil }
                return replacement
            }
        }
        if splitsOnReplacement {
            let replacement = replacement
            splits.split(where: { $0 == replacement }, behavior: .mergedWithNext)
        }
    }
}

/// The `Digits` pre-tokenizer: numeric scalars (general category N) become their own pieces, one by
/// one or in runs.
struct DigitsPreTokenizer: PreTokenizer {
    let individualDigits: Bool

    func preTokenize(_ splits: inout PreTokenSplits) {
        splits.split(where: { ScalarClass.of($0) == .number }, behavior: individualDigits ? .isolated : .contiguous)
    }
}

/// A `Sequence` of pre-tokenizers, applied in order.
struct SequencePreTokenizer: PreTokenizer {
    let steps: [any PreTokenizer]

    func preTokenize(_ splits: inout PreTokenSplits) {
        for step in steps { step.preTokenize(&splits) }
    }
}

enum PreTokenizerFactory {
    static let supported = ["ByteLevel", "Split", "Metaspace", "Digits", "Sequence"]

    static func make(_ node: TokenizerConfigNode) throws -> any PreTokenizer {
        let type = try node.componentType()
        switch type {
        case "ByteLevel":
            return ByteLevelPreTokenizer(addPrefixSpace: try node.bool("add_prefix_space", default: true),
                                         useRegex: try node.bool("use_regex", default: true))
        case "Split":
            return SplitPreTokenizer(pattern: try ScalarPattern(node: try node.requiredChild("pattern")),
                                     behavior: try SplitBehavior(node: node, key: "behavior"),
                                     invert: try node.bool("invert", default: false))
        case "Metaspace":
            return MetaspacePreTokenizer(replacement: try node.scalar("replacement"),
                                         prependScheme: try PrependScheme(node: node),
                                         splitsOnReplacement: try node.bool("split", default: true))
        case "Digits":
            return DigitsPreTokenizer(individualDigits: try node.bool("individual_digits", default: false))
        case "Sequence":
            let children = try node.array("pretokenizers")
            let steps = try children.map { try make($0) }
            // The byte-level transform happens inside ByteLevel in Hugging Face, so anything after it
            // would see mapped characters; irm applies the alphabet in the model and cannot do that.
            if let index = steps.firstIndex(where: { $0 is ByteLevelPreTokenizer }), index != steps.count - 1 {
                throw children[index + 1].failure(
                    "a pre-tokenizer after ByteLevel is not supported (it would work on byte-level characters); expected ByteLevel to come last")
            }
            return SequencePreTokenizer(steps: steps)
        default:
            throw node.unsupported("pre-tokenizer", type: type, supported: supported)
        }
    }
}
