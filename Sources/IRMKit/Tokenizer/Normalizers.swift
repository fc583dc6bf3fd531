/// One normalizer of tokenizer.json's `normalizer` section. Normalizers rewrite text before
/// pre-tokenization and keep each scalar's alignment to the original input.
protocol TextNormalizer: Sendable {
    func normalize(_ text: inout AlignedText)
}

/// `NFC`, `NFD`, `NFKC` or `NFKD`.
struct UnicodeFormNormalizer: TextNormalizer {
    let form: UnicodeNormalizationForm
    func normalize(_ text: inout AlignedText) { text.normalize(form) }
}

/// `Lowercase`: each scalar's full lowercase mapping (İ becomes i + combining dot, as in Rust).
struct LowercaseNormalizer: TextNormalizer {
    func normalize(_ text: inout AlignedText) {
        guard text.scalars.contains(where: { !($0.value < 0x41 || ($0.value > 0x5A && $0.value < 0x80)) }) else { return }
        var items: [(Unicode.Scalar, Int)] = []
        items.reserveCapacity(text.count)
        for scalar in text.scalars {
            if scalar.value < 0x80 {
                let value = scalar.value
                items.append(((0x41...0x5A).contains(value) ? Unicode.Scalar(UInt8(value + 32)) : scalar, 0))
                continue
            }
            for (index, lower) in scalar.properties.lowercaseMapping.unicodeScalars.enumerated() {
                items.append((lower, index > 0 ? 1 : 0))
            }
        }
        text.transform(items)
    }
}

/// `Prepend`: puts a string in front of non-empty text.
struct PrependNormalizer: TextNormalizer {
    let prefix: [Unicode.Scalar]
    func normalize(_ text: inout AlignedText) { text.prepend(prefix) }
}

/// `Replace`: every match of a string or regex pattern becomes `content`.
struct ReplaceNormalizer: TextNormalizer {
    let pattern: ScalarPattern
    let content: [Unicode.Scalar]

    func normalize(_ text: inout AlignedText) {
        guard !text.isEmpty else { return }
        text.replace(pattern.matches(in: text.scalars, range: 0..<text.count), with: content)
    }
}

/// `Strip`: removes leading and/or trailing whitespace (Unicode White_Space).
struct StripNormalizer: TextNormalizer {
    let left: Bool
    let right: Bool

    func normalize(_ text: inout AlignedText) {
        var start = 0
        var end = text.count
        if left { while start < end, text.scalars[start].properties.isWhitespace { start += 1 } }
        if right { while end > start, text.scalars[end - 1].properties.isWhitespace { end -= 1 } }
        if start != 0 || end != text.count { text = text.slice(start..<end) }
    }
}

/// A `Sequence` of normalizers, applied in order.
struct SequenceNormalizer: TextNormalizer {
    let steps: [any TextNormalizer]
    func normalize(_ text: inout AlignedText) {
        for step in steps { step.normalize(&text) }
    }
}

enum NormalizerFactory {
    static let supported = ["NFC", "NFD", "NFKC", "NFKD", "Lowercase", "Prepend", "Replace", "Strip", "Sequence"]

    static func make(_ node: TokenizerConfigNode) throws -> any TextNormalizer {
        let type = try node.componentType()
        switch type {
        case "NFC", "NFD", "NFKC", "NFKD":
            guard let form = UnicodeNormalizationForm(rawValue: type) else {
                throw node.unsupported("normalizer", type: type, supported: supported)
            }
            return UnicodeFormNormalizer(form: form)
        case "Lowercase":
            return LowercaseNormalizer()
        case "Prepend":
            return PrependNormalizer(prefix: Array(try node.requiredString("prepend").unicodeScalars))
        case "Replace":
            return ReplaceNormalizer(pattern: try ScalarPattern(node: try node.requiredChild("pattern")),
                                     content: Array(try node.requiredString("content").unicodeScalars))
        case "Strip":
            return StripNormalizer(left: try node.bool("strip_left", default: true),
                                   right: try node.bool("strip_right", default: true))
        case "Sequence":
            return SequenceNormalizer(steps: try node.array("normalizers").map { try make($0) })
        default:
            throw node.unsupported("normalizer", type: type, supported: supported)
        }
    }
}
