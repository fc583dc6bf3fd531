/// The pattern of a `Split` pre-tokenizer or a `Replace` normalizer/decoder, found in Unicode scalars.
///
/// The GPT-2 pattern and the Llama 3 / Qwen2 patterns are recognised by their exact text and run by
/// hand-written scanners (about 25 times faster than a general regex engine); any other regex runs
/// on `LinearRegex` in Oniguruma's syntax, as Hugging Face compiles it. tokenizer.json comes from
/// the checkpoint, so its patterns are untrusted: the linear-time matcher keeps a pattern such as
/// `(a+)+$` from hanging the tokenizer, and constructs it cannot run in linear time are refused when
/// the tokenizer loads.
enum ScalarPattern: Sendable {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    /// (Llama 3, `maximumDigits` 3) and the same with `\p{N}` (Qwen2, `maximumDigits` 1).
    case llama3(maximumDigits: Int)
    /// A literal string (Hugging Face's `{"String": ...}` patterns).
    case literal([Unicode.Scalar])
    /// Any other regular expression.
    case regex(LinearRegex)

    static let gpt2Source = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Source = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Source = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// Reads a `{"String": ...}` or `{"Regex": ...}` pattern object.
    init(node: TokenizerConfigNode) throws {
        if let literal = try node.string("String") {
            self = .literal(Array(literal.unicodeScalars))
        } else if let source = try node.string("Regex") {
            switch source {
            case ScalarPattern.gpt2Source: self = .gpt2
            case ScalarPattern.llama3Source: self = .llama3(maximumDigits: 3)
            case ScalarPattern.qwen2Source: self = .llama3(maximumDigits: 1)
            default: self = .regex(try ScalarPattern.compile(source, node: node.child("Regex") ?? node))
            }
        } else {
            throw node.failure("expected a pattern object {\"String\": ...} or {\"Regex\": ...}, found \(node.value.brief)")
        }
    }

    /// Compiles a tokenizer.json regex; an error names the JSON path and the construct.
    static func compile(_ source: String, node: TokenizerConfigNode) throws -> LinearRegex {
        do {
            return try LinearRegex(source, syntax: .oniguruma)
        } catch {
            throw node.failure(error.isRefusal ? error.message : "the regex \(JSONValue.string(source).brief) does not parse: \(error.message)")
        }
    }

    /// Calls `body` with each match in `range` of `scalars`, left to right, without overlaps.
    func forEachMatch(in scalars: [Unicode.Scalar], range: Range<Int>, _ body: (Range<Int>) -> Void) {
        switch self {
        case .gpt2: GPT2Scanner.scan(scalars, range, body)
        case .llama3(let digits): Llama3Scanner.scan(scalars, range, maximumDigits: digits, body)
        case .literal(let needle): LiteralScanner.scan(scalars, range, needle: needle, body)
        case .regex(let regex): regex.forEachMatch(in: scalars, range: range, body)
        }
    }

    /// The matches as a list.
    func matches(in scalars: [Unicode.Scalar], range: Range<Int>) -> [Range<Int>] {
        var result: [Range<Int>] = []
        forEachMatch(in: scalars, range: range) { result.append($0) }
        return result
    }
}

// MARK: - Scalar classes

/// The classes the byte-level split patterns test: `\p{L}`, `\p{N}`, `\s` (Unicode White_Space) and
/// everything else.
enum ScalarClass: UInt8 {
    case other = 0, letter, number, whitespace

    private static let asciiTable: [ScalarClass] = (0..<128).map { value in
        classifySlowly(Unicode.Scalar(UInt8(value)))
    }

    @inline(__always)
    static func of(_ scalar: Unicode.Scalar) -> ScalarClass {
        scalar.value < 128 ? asciiTable[Int(scalar.value)] : classifySlowly(scalar)
    }

    static func classifySlowly(_ scalar: Unicode.Scalar) -> ScalarClass {
        let properties = scalar.properties
        if properties.isWhitespace { return .whitespace }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return .other
        }
    }
}

/// Hand-written matcher for the GPT-2 split pattern (also GPT-NeoX's ByteLevel pre-tokenizer):
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`, leftmost-first like
/// the backtracking engines Hugging Face and tiktoken use. The matches tile the range.
enum GPT2Scanner {
    static func scan(_ s: [Unicode.Scalar], _ range: Range<Int>, _ body: (Range<Int>) -> Void) {
        let end = range.upperBound
        var i = range.lowerBound
        while i < end {
            let c = s[i]
            if c == "'", i + 1 < end {
                let n = s[i + 1]
                if n == "s" || n == "t" || n == "m" || n == "d" {
                    body(i..<(i + 2)); i += 2; continue
                }
                if i + 2 < end {
                    let n2 = s[i + 2]
                    if (n == "r" && n2 == "e") || (n == "v" && n2 == "e") || (n == "l" && n2 == "l") {
                        body(i..<(i + 3)); i += 3; continue
                    }
                }
            }
            let cls = ScalarClass.of(c)
            var runStart = -1
            var runClass = ScalarClass.other
            if c == " ", i + 1 < end {
                let next = ScalarClass.of(s[i + 1])
                if next != .whitespace { runStart = i + 1; runClass = next }
            } else if cls != .whitespace {
                runStart = i; runClass = cls
            }
            if runStart >= 0 {
                var k = runStart + 1
                while k < end, ScalarClass.of(s[k]) == runClass { k += 1 }
                body(i..<k); i = k; continue
            }
            // A whitespace run: `\s+(?!\S)` leaves its last scalar to the next token when a
            // non-space follows, unless the run is a single scalar (then `\s+` takes it).
            var k = i + 1
            while k < end, ScalarClass.of(s[k]) == .whitespace { k += 1 }
            let stop = (k < end && k - i >= 2) ? k - 1 : k
            body(i..<stop); i = stop
        }
    }
}

/// Hand-written matcher for the Llama 3 split pattern and Qwen2's variant (single digits):
/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`.
/// Caveat: case-insensitive contractions accept the letters' simple case folds (s, S and ſ; t, T;
/// and so on), as Oniguruma does; multi-scalar folds cannot occur in these short alternatives.
enum Llama3Scanner {
    @inline(__always)
    private static func isNewline(_ c: Unicode.Scalar) -> Bool { c == "\n" || c == "\r" }

    @inline(__always)
    private static func folded(_ c: Unicode.Scalar) -> Unicode.Scalar {
        switch c.value {
        case 0x41...0x5A: Unicode.Scalar(UInt8(c.value + 32))
        case 0x17F: "s"  // LATIN SMALL LETTER LONG S folds to s
        default: c
        }
    }

    static func scan(_ s: [Unicode.Scalar], _ range: Range<Int>, maximumDigits: Int, _ body: (Range<Int>) -> Void) {
        let end = range.upperBound
        var i = range.lowerBound
        while i < end {
            let c = s[i]
            if c == "'", i + 1 < end {
                let n = folded(s[i + 1])
                if n == "s" || n == "t" || n == "m" || n == "d" {
                    body(i..<(i + 2)); i += 2; continue
                }
                if i + 2 < end {
                    let n2 = folded(s[i + 2])
                    if (n == "r" && n2 == "e") || (n == "v" && n2 == "e") || (n == "l" && n2 == "l") {
                        body(i..<(i + 3)); i += 3; continue
                    }
                }
            }
            let cls = ScalarClass.of(c)
            var letterStart = -1
            if cls == .letter {
                letterStart = i
            } else if cls != .number, !isNewline(c), i + 1 < end, ScalarClass.of(s[i + 1]) == .letter {
                letterStart = i + 1
            }
            if letterStart >= 0 {
                var k = letterStart + 1
                while k < end, ScalarClass.of(s[k]) == .letter { k += 1 }
                body(i..<k); i = k; continue
            }
            if cls == .number {
                var k = i + 1
                while k < end, k - i < maximumDigits, ScalarClass.of(s[k]) == .number { k += 1 }
                body(i..<k); i = k; continue
            }
            var otherStart = -1
            if cls == .other {
                otherStart = i
            } else if c == " ", i + 1 < end, ScalarClass.of(s[i + 1]) == .other {
                otherStart = i + 1
            }
            if otherStart >= 0 {
                var k = otherStart + 1
                while k < end, ScalarClass.of(s[k]) == .other { k += 1 }
                while k < end, isNewline(s[k]) { k += 1 }
                body(i..<k); i = k; continue
            }
            // Whitespace. `\s*[\r\n]+` ends just after the run's last newline, if it has one.
            var k = i + 1
            while k < end, ScalarClass.of(s[k]) == .whitespace { k += 1 }
            var lastNewline = -1
            var p = k - 1
            while p >= i {
                if isNewline(s[p]) { lastNewline = p; break }
                p -= 1
            }
            if lastNewline >= 0 {
                body(i..<(lastNewline + 1)); i = lastNewline + 1; continue
            }
            let stop = (k < end && k - i >= 2) ? k - 1 : k
            body(i..<stop); i = stop
        }
    }
}

/// Finds non-overlapping occurrences of a literal scalar sequence, leftmost first.
enum LiteralScanner {
    static func scan(_ s: [Unicode.Scalar], _ range: Range<Int>, needle: [Unicode.Scalar], _ body: (Range<Int>) -> Void) {
        guard let first = needle.first else { return }
        var i = range.lowerBound
        let last = range.upperBound - needle.count
        while i <= last {
            if s[i] == first {
                var matched = true
                var j = 1
                while j < needle.count {
                    if s[i + j] != needle[j] { matched = false; break }
                    j += 1
                }
                if matched {
                    body(i..<(i + needle.count)); i += needle.count; continue
                }
            }
            i += 1
        }
    }
}
