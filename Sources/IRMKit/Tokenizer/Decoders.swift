/// One decoder of tokenizer.json's `decoder` section. Like Hugging Face's `decode_chain`, each
/// decoder maps a list of token strings to a new list; the final list is concatenated.
protocol TokenDecoder: Sendable {
    func decodeChain(_ tokens: [String]) -> [String]
}

/// `ByteLevel`: maps each token's alphabet scalars back to bytes (a token with a scalar outside the
/// alphabet, such as an added token, contributes its own UTF-8), then reads all bytes as UTF-8,
/// replacing invalid sequences with U+FFFD (one per maximal invalid subsequence, as Rust's
/// `from_utf8_lossy` and Swift's decoding both do).
struct ByteLevelDecoder: TokenDecoder {
    func decodeChain(_ tokens: [String]) -> [String] {
        var bytes: [UInt8] = []
        for token in tokens {
            if let decoded = ByteLevelAlphabet.decode(token) {
                bytes.append(contentsOf: decoded)
            } else {
                bytes.append(contentsOf: token.utf8)
            }
        }
        return [String(decoding: bytes, as: UTF8.self)]
    }
}

/// `Metaspace`: the replacement character becomes a space, except in the first token, where it is
/// dropped unless the prepend scheme is `never` (Hugging Face drops every one there, not only the
/// leading one).
struct MetaspaceDecoder: TokenDecoder {
    let replacement: Unicode.Scalar
    let prependScheme: PrependScheme

    func decodeChain(_ tokens: [String]) -> [String] {
        tokens.enumerated().map { index, token in
            var scalars = String.UnicodeScalarView()
            for scalar in token.unicodeScalars {
                if scalar == replacement {
                    if index == 0 && prependScheme != .never { continue }
                    scalars.append(" ")
                } else {
                    scalars.append(scalar)
                }
            }
            return String(scalars)
        }
    }
}

/// `Replace`: each match of the pattern in each token becomes `content`.
struct ReplaceDecoder: TokenDecoder {
    let pattern: ScalarPattern
    let content: String

    func decodeChain(_ tokens: [String]) -> [String] {
        tokens.map { token in
            let scalars = Array(token.unicodeScalars)
            var result = String.UnicodeScalarView()
            var cursor = 0
            pattern.forEachMatch(in: scalars, range: 0..<scalars.count) { match in
                result.append(contentsOf: scalars[cursor..<match.lowerBound])
                result.append(contentsOf: content.unicodeScalars)
                cursor = match.upperBound
            }
            result.append(contentsOf: scalars[cursor...])
            return String(result)
        }
    }
}

/// `ByteFallback`: runs of `<0xNN>` tokens become the text their bytes spell, or one U+FFFD per
/// byte when the run is not valid UTF-8.
struct ByteFallbackDecoder: TokenDecoder {
    static func byteValue(_ token: String) -> UInt8? {
        let utf8 = Array(token.utf8)
        guard utf8.count == 6, utf8[0] == UInt8(ascii: "<"), utf8[1] == UInt8(ascii: "0"), utf8[2] == UInt8(ascii: "x"),
              utf8[5] == UInt8(ascii: ">") else { return nil }
        return UInt8(String(decoding: utf8[3..<5], as: UTF8.self), radix: 16)
    }

    func decodeChain(_ tokens: [String]) -> [String] {
        var result: [String] = []
        var pending: [UInt8] = []
        func flush() {
            guard !pending.isEmpty else { return }
            if let text = String(validating: pending, as: UTF8.self) {
                result.append(text)
            } else {
                result.append(contentsOf: repeatElement("\u{FFFD}", count: pending.count))
            }
            pending.removeAll()
        }
        for token in tokens {
            if let byte = ByteFallbackDecoder.byteValue(token) {
                pending.append(byte)
            } else {
                flush()
                result.append(token)
            }
        }
        flush()
        return result
    }
}

/// `Fuse`: all tokens become one string.
struct FuseDecoder: TokenDecoder {
    func decodeChain(_ tokens: [String]) -> [String] { [tokens.joined()] }
}

/// `Strip`: removes up to `start` leading and `stop` trailing copies of `content` from each token.
struct StripDecoder: TokenDecoder {
    let content: Unicode.Scalar
    let start: Int
    let stop: Int

    func decodeChain(_ tokens: [String]) -> [String] {
        tokens.map { token in
            let scalars = Array(token.unicodeScalars)
            var startCut = 0
            while startCut < min(start, scalars.count), scalars[startCut] == content { startCut += 1 }
            var stopCut = scalars.count
            var removed = 0
            while removed < stop, stopCut > startCut, scalars[stopCut - 1] == content { stopCut -= 1; removed += 1 }
            return String(String.UnicodeScalarView(scalars[startCut..<stopCut]))
        }
    }
}

/// A `Sequence` of decoders, applied in order.
struct SequenceDecoder: TokenDecoder {
    let steps: [any TokenDecoder]
    func decodeChain(_ tokens: [String]) -> [String] {
        steps.reduce(tokens) { $1.decodeChain($0) }
    }
}

enum DecoderFactory {
    static let supported = ["ByteLevel", "Metaspace", "Replace", "ByteFallback", "Fuse", "Strip", "Sequence"]

    static func make(_ node: TokenizerConfigNode) throws -> any TokenDecoder {
        let type = try node.componentType()
        switch type {
        case "ByteLevel":
            return ByteLevelDecoder()
        case "Metaspace":
            return MetaspaceDecoder(replacement: try node.scalar("replacement"), prependScheme: try PrependScheme(node: node))
        case "Replace":
            return ReplaceDecoder(pattern: try ScalarPattern(node: try node.requiredChild("pattern")),
                                  content: try node.requiredString("content"))
        case "ByteFallback":
            return ByteFallbackDecoder()
        case "Fuse":
            return FuseDecoder()
        case "Strip":
            let content = try node.scalar("content")
            return StripDecoder(content: content, start: try node.int("start", default: 0), stop: try node.int("stop", default: 0))
        case "Sequence":
            return SequenceDecoder(steps: try node.array("decoders").map { try make($0) })
        default:
            throw node.unsupported("decoder", type: type, supported: supported)
        }
    }
}
