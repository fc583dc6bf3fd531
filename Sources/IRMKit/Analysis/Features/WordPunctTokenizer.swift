/// How nltk's `WordPunctTokenizer` (`\w+|[^\w\s]+`) classifies a Unicode scalar. nltk compiles its
/// patterns with the third-party `regex` module (since nltk 3.9), whose Unicode classes follow
/// Unicode TR18, and the fixtures come from nltk 3.10.4.
enum WordPunctClass: UInt8, Sendable {
    /// `\w`: Alphabetic (letters, letter numbers, other-alphabetic marks), any combining mark
    /// (Mn, Mc, Me), decimal digits (Nd), connector punctuation (Pc, which includes "_") and the
    /// joiners U+200C/U+200D.
    case word
    /// `\s`: the Unicode White_Space property.
    case space
    /// Anything else: punctuation, symbols, emoji, superscript and circled digits (No), format
    /// characters such as U+200B, and the ASCII separators U+001C–U+001F.
    case other

    /// Differences from nltk can only come from the Unicode versions of the `regex` module and of
    /// Swift disagreeing about newly assigned characters. (Older nltk, on the stdlib `re`, put
    /// combining marks outside `\w`, No digits inside it and U+001C–U+001F in `\s`.)
    @inline(__always)
    static func of(_ scalar: Unicode.Scalar) -> WordPunctClass {
        let v = scalar.value
        if v < 128 { return asciiTable[Int(v)] }
        let properties = scalar.properties
        if properties.isWhitespace { return .space }
        if properties.isAlphabetic || properties.isJoinControl { return .word }
        switch properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation:
            return .word
        default:
            return .other
        }
    }

    private static let asciiTable: [WordPunctClass] = (0..<128).map { v -> WordPunctClass in
        switch v {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x5F: return .word
        case 0x09...0x0D, 0x20: return .space
        default: return .other
        }
    }
}

/// One token of a word/punctuation split: the half-open scalar range `start..<end` and whether it
/// is a word run (`\w+`) or a punctuation run (`[^\w\s]+`).
struct TokenSpan: Sendable, Equatable {
    var start: Int
    var end: Int
    var isWord: Bool
}

/// nltk's `WordPunctTokenizer`: the regular expression `\w+|[^\w\s]+`, i.e. maximal runs of word
/// characters and maximal runs of characters that are neither word characters nor whitespace.
/// Whitespace separates tokens and is dropped.
///
/// This is a hand-written scanner over Unicode scalars (Python strings are sequences of code
/// points, so the split is on scalars, not on grapheme clusters); see `WordPunctClass` for the
/// character classes and their approximation.
public enum WordPunctTokenizer {
    /// The tokens of `text`, in order.
    public static func tokenize(_ text: String) -> [String] {
        let scalars = Array(text.unicodeScalars)
        return spans(of: scalars).map { string(scalars, $0) }
    }

    /// The token spans of `scalars`.
    static func spans(of scalars: [Unicode.Scalar]) -> [TokenSpan] {
        var spans: [TokenSpan] = []
        spans.reserveCapacity(scalars.count / 4)
        var i = 0
        let n = scalars.count
        while i < n {
            let c = WordPunctClass.of(scalars[i])
            if c == .space { i += 1; continue }
            let start = i
            i += 1
            while i < n, WordPunctClass.of(scalars[i]) == c { i += 1 }
            spans.append(TokenSpan(start: start, end: i, isWord: c == .word))
        }
        return spans
    }

    @inline(__always)
    static func string(_ scalars: [Unicode.Scalar], _ span: TokenSpan) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars[span.start..<span.end])
        return String(view)
    }

    /// The scalars as a lower-cased string: ASCII is mapped byte by byte, anything else goes
    /// through Swift's full Unicode `lowercased()` (same result, much faster for ASCII).
    static func lowercasedString(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var ascii = true
        for s in scalars where s.value >= 128 { ascii = false; break }
        if ascii {
            return String(unsafeUninitializedCapacity: scalars.count) { buffer in
                var k = 0
                for s in scalars {
                    let v = UInt8(truncatingIfNeeded: s.value)
                    buffer[k] = v >= 0x41 && v <= 0x5A ? v | 0x20 : v
                    k += 1
                }
                return k
            }
        }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view).lowercased()
    }
}
