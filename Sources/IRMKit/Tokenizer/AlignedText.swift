import Foundation

/// Text under normalization: its Unicode scalars and, for each scalar, the range of scalars of the
/// original input it stands for. This mirrors Hugging Face's `NormalizedString` alignments, kept per
/// scalar instead of per byte (every byte of a scalar carries the same alignment there, so nothing is
/// lost). An empty range (`0..<0`) marks a scalar inserted at the very start, as Hugging Face does.
struct AlignedText {
    var scalars: [Unicode.Scalar]
    var origins: [Range<Int>]

    /// Scalars of the original input, each aligned to itself.
    init<C: Collection>(original: C, startingAt offset: Int) where C.Element == Unicode.Scalar {
        scalars = Array(original)
        origins = (0..<scalars.count).map { offset + $0 ..< offset + $0 + 1 }
    }

    init(scalars: [Unicode.Scalar], origins: [Range<Int>]) {
        self.scalars = scalars
        self.origins = origins
    }

    var isEmpty: Bool { scalars.isEmpty }
    var count: Int { scalars.count }

    /// The original range covered by `range` of this text: from the first scalar's origin start to the
    /// last scalar's origin end (Hugging Face's `convert_offsets`). An empty range maps to itself.
    func originalRange(of range: Range<Int>) -> Range<Int> {
        guard !range.isEmpty else { return range }
        let start = origins[range.lowerBound].lowerBound
        let end = origins[range.upperBound - 1].upperBound
        return start ..< max(start, end)
    }

    func slice(_ range: Range<Int>) -> AlignedText {
        AlignedText(scalars: Array(scalars[range]), origins: Array(origins[range]))
    }

    /// Puts `prefix` before the text; every inserted scalar takes the first scalar's alignment.
    /// Does nothing on empty text, like Hugging Face's `prepend`.
    mutating func prepend(_ prefix: [Unicode.Scalar]) {
        guard let first = origins.first, !prefix.isEmpty else { return }
        scalars.insert(contentsOf: prefix, at: 0)
        origins.insert(contentsOf: repeatElement(first, count: prefix.count), at: 0)
    }

    /// Replaces each of the (sorted, disjoint) `matches` by `content`. Inserted scalars take the
    /// alignment of the last scalar they replace, or of the scalar before an empty match, exactly as
    /// Hugging Face's `NormalizedString::replace` does.
    mutating func replace(_ matches: [Range<Int>], with content: [Unicode.Scalar]) {
        guard !matches.isEmpty else { return }
        var newScalars: [Unicode.Scalar] = []
        var newOrigins: [Range<Int>] = []
        newScalars.reserveCapacity(scalars.count)
        newOrigins.reserveCapacity(scalars.count)
        var cursor = 0
        for match in matches {
            newScalars.append(contentsOf: scalars[cursor..<match.lowerBound])
            newOrigins.append(contentsOf: origins[cursor..<match.lowerBound])
            let alignment = match.upperBound >= 1 ? origins[match.upperBound - 1] : 0..<0
            newScalars.append(contentsOf: content)
            newOrigins.append(contentsOf: repeatElement(alignment, count: content.count))
            cursor = match.upperBound
        }
        newScalars.append(contentsOf: scalars[cursor...])
        newOrigins.append(contentsOf: origins[cursor...])
        scalars = newScalars
        origins = newOrigins
    }

    /// Rewrites the text from a list of (scalar, change) pairs with Hugging Face's `transform`
    /// semantics: change 0 replaces the next old scalar (and takes its alignment), +1 inserts a scalar
    /// (aligned like the scalar before it), and -n replaces the next old scalar and removes n more.
    mutating func transform(_ items: [(Unicode.Scalar, Int)]) {
        var newScalars: [Unicode.Scalar] = []
        var newOrigins: [Range<Int>] = []
        newScalars.reserveCapacity(items.count)
        newOrigins.reserveCapacity(items.count)
        var oldIndex = 0
        for (scalar, change) in items {
            let alignment: Range<Int>
            if change > 0 {
                alignment = oldIndex >= 1 ? origins[min(oldIndex, origins.count) - 1] : 0..<0
            } else {
                alignment = oldIndex < origins.count ? origins[oldIndex] : (origins.last ?? 0..<0)
                oldIndex += 1 - change
            }
            newScalars.append(scalar)
            newOrigins.append(alignment)
        }
        scalars = newScalars
        origins = newOrigins
    }
}

// MARK: - Unicode normalization forms

/// The four Unicode normalization forms of Hugging Face's `NFC`, `NFD`, `NFKC` and `NFKD` normalizers.
enum UnicodeNormalizationForm: String, Sendable {
    case nfc = "NFC", nfd = "NFD", nfkc = "NFKC", nfkd = "NFKD"

    func apply(to string: String) -> String {
        switch self {
        case .nfc: string.precomposedStringWithCanonicalMapping
        case .nfd: string.decomposedStringWithCanonicalMapping
        case .nfkc: string.precomposedStringWithCompatibilityMapping
        case .nfkd: string.decomposedStringWithCompatibilityMapping
        }
    }

    var composes: Bool { self == .nfc || self == .nfkc }
}

extension AlignedText {
    /// Applies a Unicode normalization form, keeping alignments.
    ///
    /// The text is cut into chunks that normalize independently (a boundary falls before a scalar
    /// with canonical combining class 0 that cannot compose with what precedes it). A chunk that
    /// normalization leaves alone keeps its alignments; in a chunk that changes, the first output
    /// scalar takes the first input's alignment (absorbing any surplus), the following outputs take
    /// the following inputs' alignments, and surplus outputs are aligned like insertions.
    /// Caveat: inside a changed chunk, this can align a scalar to a neighbour of the one Hugging
    /// Face's `unicode-normalization-alignments` picks; the chunk's overall range is the same.
    mutating func normalize(_ form: UnicodeNormalizationForm) {
        guard !scalars.isEmpty else { return }
        // Fast exit: most text is already in the requested form.
        if scalars.allSatisfy({ $0.value < 0xA0 }) { return }
        let whole = String(String.UnicodeScalarView(scalars))
        if form.apply(to: whole).unicodeScalars.elementsEqual(scalars) { return }

        var items: [(Unicode.Scalar, Int)] = []
        items.reserveCapacity(scalars.count + 8)
        var chunkStart = 0
        func flush(_ end: Int) {
            guard end > chunkStart else { return }
            let input = scalars[chunkStart..<end]
            let output: [Unicode.Scalar]
            if input.count == 1, let only = input.first, only.value < 0xA0 {
                output = [only]
            } else {
                output = Array(form.apply(to: String(String.UnicodeScalarView(input))).unicodeScalars)
            }
            if output.elementsEqual(input) || output.isEmpty {
                // No Unicode form maps text to nothing; keeping the input is the safe reading.
                items.append(contentsOf: input.map { ($0, 0) })
            } else if output.count <= input.count {
                for (index, scalar) in output.enumerated() {
                    items.append((scalar, index == 0 ? output.count - input.count : 0))
                }
            } else {
                for (index, scalar) in output.enumerated() {
                    items.append((scalar, index < input.count ? 0 : 1))
                }
            }
            chunkStart = end
        }
        for index in 1..<scalars.count where AlignedText.startsNormalizationChunk(scalars[index], composing: form.composes) {
            flush(index)
        }
        flush(scalars.count)
        transform(items)
    }

    /// Whether a normalization chunk may start at `scalar`: it has canonical combining class 0 and is
    /// not one of the starters that compose with a preceding scalar (Hangul vowel and trailing jamo,
    /// and the few Indic, Sinhala, Myanmar and Balinese vowel signs with NFC_Quick_Check = Maybe).
    static func startsNormalizationChunk(_ scalar: Unicode.Scalar, composing: Bool) -> Bool {
        let value = scalar.value
        if value < 0x300 { return true }
        if scalar.properties.canonicalCombiningClass.rawValue != 0 { return false }
        guard composing else { return true }
        switch value {
        case 0x1161...0x1175, 0x11A8...0x11C2,
             0x0B3E, 0x0B56, 0x0B57, 0x0BBE, 0x0BD7, 0x0C56, 0x0CC2, 0x0CD5, 0x0CD6, 0x0D3E, 0x0D57,
             0x0DCA, 0x0DCF, 0x0DDF, 0x102E, 0x1B35, 0x0CBC, 0x0B3C:
            return false
        default:
            return true
        }
    }
}
