/// One post-processor of tokenizer.json's `post_processor` section. It runs after the model, on the
/// whole encoding: it may add special tokens (only when asked to) and adjust offsets.
protocol PostProcessor: Sendable {
    func process(_ encoding: inout Encoding, addSpecialTokens: Bool)
    /// Special tokens put before the sequence when special tokens are added.
    var prefixTokens: [(id: Int32, token: String)] { get }
    /// Special tokens put after the sequence when special tokens are added.
    var suffixTokens: [(id: Int32, token: String)] { get }
}

extension PostProcessor {
    var prefixTokens: [(id: Int32, token: String)] { [] }
    var suffixTokens: [(id: Int32, token: String)] { [] }
}

/// `TemplateProcessing`, single-sequence template: special tokens around `$A`, with offsets 0..<0.
struct TemplatePostProcessor: PostProcessor {
    let prefixTokens: [(id: Int32, token: String)]
    let suffixTokens: [(id: Int32, token: String)]

    init(node: TokenizerConfigNode) throws {
        let single = try node.requiredChild("single")
        let specials = node.child("special_tokens")
        func resolve(_ name: String, at piece: TokenizerConfigNode) throws -> [(id: Int32, token: String)] {
            guard let entry = specials?.child(name) else {
                throw piece.failure("the template names special token \(JSONValue.string(name).brief), which special_tokens does not define")
            }
            let idNodes = try entry.array("ids")
            let tokenNodes = try entry.array("tokens")
            guard idNodes.count == tokenNodes.count else {
                throw entry.failure("expected as many ids as tokens, found \(idNodes.count) and \(tokenNodes.count)")
            }
            return try zip(idNodes, tokenNodes).map { idNode, tokenNode in
                guard let id = idNode.value.intValue, id >= 0, id < Int(Int32.max) else {
                    throw idNode.failure("expected a token id, found \(idNode.value.brief)")
                }
                guard let token = tokenNode.value.stringValue else {
                    throw tokenNode.failure("expected a token string, found \(tokenNode.value.brief)")
                }
                return (Int32(id), token)
            }
        }
        var prefix: [(id: Int32, token: String)] = []
        var suffix: [(id: Int32, token: String)] = []
        var seenSequence = false
        let pieces: [TokenizerConfigNode]
        if let text = single.value.stringValue {
            // The string form, "<s>:0 $A:0", splits on spaces.
            pieces = text.split(separator: " ").map {
                TokenizerConfigNode(value: .string(String($0)), path: single.path, source: single.source)
            }
        } else {
            pieces = try single.elements()
        }
        for piece in pieces {
            let isSequence: Bool
            var specialName: String?
            if let text = piece.value.stringValue {
                let id = String(text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
                isSequence = id.hasPrefix("$")
                if isSequence, !["$", "$A", "$a"].contains(id), Int(id.dropFirst()) == nil {
                    throw piece.failure("the single-sequence template can only use $A, found \"\(id)\"")
                }
                if !isSequence { specialName = id }
            } else if let sequence = piece.child("Sequence") {
                isSequence = true
                let id = try sequence.string("id") ?? "A"
                guard id == "A" else {
                    throw sequence.failure("the single-sequence template can only use sequence A, found \"\(id)\"")
                }
            } else if let special = piece.child("SpecialToken") {
                isSequence = false
                specialName = try special.requiredString("id")
            } else {
                throw piece.failure("expected a template piece {\"Sequence\": ...} or {\"SpecialToken\": ...}, found \(piece.value.brief)")
            }
            if isSequence {
                seenSequence = true
            } else if let name = specialName {
                let resolved = try resolve(name, at: piece)
                if seenSequence { suffix += resolved } else { prefix += resolved }
            }
        }
        guard seenSequence else {
            throw single.failure("expected the single-sequence template to contain $A, found none")
        }
        prefixTokens = prefix
        suffixTokens = suffix
    }

    func process(_ encoding: inout Encoding, addSpecialTokens: Bool) {
        guard addSpecialTokens, !(prefixTokens.isEmpty && suffixTokens.isEmpty) else { return }
        var result = Encoding()
        for (id, token) in prefixTokens { result.append(id: id, token: token, offsets: 0..<0) }
        result.append(contentsOf: encoding)
        for (id, token) in suffixTokens { result.append(id: id, token: token, offsets: 0..<0) }
        encoding = result
    }
}

/// The `ByteLevel` post-processor: with `trim_offsets`, offsets leave out the spaces (`Ġ` or
/// whitespace) at either end of a token, except one leading space on the first token when the
/// pre-tokenizer added it (`add_prefix_space`). Hugging Face's `process_offsets`, verbatim.
struct ByteLevelPostProcessor: PostProcessor {
    let trimsOffsets: Bool
    let addPrefixSpace: Bool

    func process(_ encoding: inout Encoding, addSpecialTokens: Bool) {
        guard trimsOffsets else { return }
        let spaceScalar = ByteLevelAlphabet.scalarForByte[0x20]
        func isSpace(_ scalar: Unicode.Scalar) -> Bool { scalar == spaceScalar || scalar.properties.isWhitespace }
        for index in encoding.tokens.indices {
            let scalars = Array(encoding.tokens[index].unicodeScalars)
            var leading = 0
            while leading < scalars.count, isSpace(scalars[leading]) { leading += 1 }
            var trailing = 0
            while trailing < scalars.count, isSpace(scalars[scalars.count - 1 - trailing]) { trailing += 1 }
            guard leading > 0 || trailing > 0 else { continue }
            var start = encoding.offsets[index].lowerBound
            var end = encoding.offsets[index].upperBound
            if leading > 0 {
                let isFirst = index == 0 || start == 0
                if isFirst && addPrefixSpace && leading == 1 { leading = 0 }
                start = min(start + leading, end)
            }
            if trailing > 0, end >= trailing {
                end = max(end - trailing, start)
            }
            encoding.offsets[index] = start..<end
        }
    }
}

/// A `Sequence` of post-processors, applied in order.
struct SequencePostProcessor: PostProcessor {
    let steps: [any PostProcessor]

    var prefixTokens: [(id: Int32, token: String)] { steps.flatMap { $0.prefixTokens } }
    var suffixTokens: [(id: Int32, token: String)] { steps.reversed().flatMap { $0.suffixTokens } }

    func process(_ encoding: inout Encoding, addSpecialTokens: Bool) {
        for step in steps { step.process(&encoding, addSpecialTokens: addSpecialTokens) }
    }
}

enum PostProcessorFactory {
    static let supported = ["TemplateProcessing", "ByteLevel", "Sequence"]

    static func make(_ node: TokenizerConfigNode) throws -> any PostProcessor {
        let type = try node.componentType()
        switch type {
        case "TemplateProcessing":
            return try TemplatePostProcessor(node: node)
        case "ByteLevel":
            return ByteLevelPostProcessor(trimsOffsets: try node.bool("trim_offsets", default: true),
                                          addPrefixSpace: try node.bool("add_prefix_space", default: true))
        case "Sequence":
            return SequencePostProcessor(steps: try node.array("processors").map { try make($0) })
        default:
            throw node.unsupported("post-processor", type: type, supported: supported)
        }
    }
}
