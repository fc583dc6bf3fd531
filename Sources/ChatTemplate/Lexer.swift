import Foundation

/// One lexical token of a template, with where it starts in the source.
struct Token: Sendable {
    enum Kind: Sendable, Equatable {
        /// Literal template text, after whitespace control has been applied.
        case data(String)
        case variableBegin, variableEnd, blockBegin, blockEnd
        case name(String)
        case string(String)
        case integer(Int)
        case float(Double)
        /// An operator or punctuation: `+ - * / // % ** ~ == != < <= > >= = . : | , ; ( ) [ ] { }`.
        case op(String)
        case end
    }

    var kind: Kind
    var location: SourceLocation
}

/// True for the characters Python's `str.isspace()` accepts (and `\s` matches in `re`), which is
/// what jinja2's whitespace control and the `trim` filter strip.
func isPythonWhitespace(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.value {
    case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
        return true
    default:
        return false
    }
}

/// Splits template source into tokens the way jinja2's lexer does for the environment transformers
/// uses (`trim_blocks=True`, `lstrip_blocks=True`, default delimiters, `keep_trailing_newline=False`).
///
/// Whitespace control happens here, as in jinja2: `{%-`/`{{-`/`{#-` strip all whitespace before the
/// tag, `-%}`/`-}}`/`-#}` all whitespace after it; `trim_blocks` drops one newline after `%}` and
/// `#}`; `lstrip_blocks` drops spaces and tabs between a line start and `{%` or `{#` (not `{{`),
/// unless the tag opens with `{%+`. `\r\n` and `\r` become `\n` and one trailing newline is removed.
struct Lexer {
    private let source: [Unicode.Scalar]
    private var lineStarts: [Int] = [0]
    private var tokens: [Token] = []
    private var position = 0
    /// Whether the last thing matched ended with a newline (jinja2's `line_starting`).
    private var lineStarting = true
    private let trimBlocks = true
    private let lstripBlocks = true

    init(source text: String) {
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(text.unicodeScalars.count)
        var iterator = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = iterator.next()
        while let scalar = pending {
            pending = iterator.next()
            if scalar == "\r" {
                scalars.append("\n")
                if pending == "\n" { pending = iterator.next() }
            } else {
                scalars.append(scalar)
            }
        }
        if scalars.last == "\n" { scalars.removeLast() }
        source = scalars
        for (index, scalar) in source.enumerated() where scalar == "\n" { lineStarts.append(index + 1) }
    }

    /// Tokenizes the whole template.
    static func tokenize(_ text: String) throws(ChatTemplateError) -> [Token] {
        var lexer = Lexer(source: text)
        try lexer.run()
        return lexer.tokens
    }

    private func location(_ index: Int) -> SourceLocation {
        var low = 0, high = lineStarts.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if lineStarts[mid] <= index { low = mid } else { high = mid - 1 }
        }
        return SourceLocation(line: low + 1, column: index - lineStarts[low] + 1)
    }

    private func at(_ index: Int) -> Unicode.Scalar? { index < source.count ? source[index] : nil }

    private func matches(_ literal: String, at index: Int) -> Bool {
        var i = index
        for scalar in literal.unicodeScalars {
            guard at(i) == scalar else { return false }
            i += 1
        }
        return true
    }

    private func string(_ range: Range<Int>) -> String {
        String(String.UnicodeScalarView(source[range]))
    }

    private func skipWhitespace(from index: Int) -> Int {
        var i = index
        while let s = at(i), isPythonWhitespace(s) { i += 1 }
        return i
    }

    private mutating func run() throws(ChatTemplateError) {
        while position < source.count {
            guard let opener = nextOpener(from: position) else {
                emitData(string(position..<source.count), at: position)
                break
            }
            let kind = source[opener + 1]
            let signIndex = opener + 2
            let sign: Unicode.Scalar? = (at(signIndex) == "-" || at(signIndex) == "+") ? at(signIndex) : nil
            let rawEnd = kind == "%" ? rawBeginEnd(at: opener) : nil
            var text = Array(source[position..<opener])
            if sign == "-" {
                while let last = text.last, isPythonWhitespace(last) { text.removeLast() }
            } else if sign != "+" && lstripBlocks && kind != "{" {
                let lineStart = (text.lastIndex(of: "\n").map { $0 + 1 }) ?? 0
                if lineStart > 0 || lineStarting {
                    let tail = text[lineStart...]
                    if !tail.isEmpty && tail.allSatisfy(isPythonWhitespace) { text.removeSubrange(lineStart...) }
                }
            }
            emitData(String(String.UnicodeScalarView(text)), at: position)
            let bodyStart = signIndex + (sign == nil ? 0 : 1)
            if let rawEnd {
                try lexRaw(bodyStart: rawEnd, openedAt: opener)
            } else if kind == "#" {
                try lexComment(bodyStart: bodyStart, openedAt: opener)
            } else {
                try lexTag(isBlock: kind == "%", bodyStart: bodyStart, openedAt: opener)
            }
        }
        tokens.append(Token(kind: .end, location: location(source.count)))
    }

    private mutating func emitData(_ text: String, at index: Int) {
        guard !text.isEmpty else { return }
        tokens.append(Token(kind: .data(text), location: location(index)))
    }

    private func nextOpener(from index: Int) -> Int? {
        var i = index
        while i + 1 < source.count {
            if source[i] == "{", source[i + 1] == "{" || source[i + 1] == "%" || source[i + 1] == "#" { return i }
            i += 1
        }
        return nil
    }

    /// If a `{% raw %}` tag starts at `index`, the index just after it (jinja2 does not apply
    /// `trim_blocks` to this tag).
    private func rawBeginEnd(at index: Int) -> Int? {
        var i = index + 2
        if at(i) == "-" || at(i) == "+" { i += 1 }
        i = skipWhitespace(from: i)
        guard matches("raw", at: i) else { return nil }
        i = skipWhitespace(from: i + 3)
        if matches("-%}", at: i) { return skipWhitespace(from: i + 3) }
        if matches("%}", at: i) { return i + 2 }
        return nil
    }

    private mutating func lexRaw(bodyStart: Int, openedAt opener: Int) throws(ChatTemplateError) {
        lineStarting = bodyStart > 0 && source[bodyStart - 1] == "\n"
        var p = bodyStart
        while p + 1 < source.count {
            if source[p] == "{", source[p + 1] == "%" {
                var i = p + 2
                let sign: Unicode.Scalar? = (at(i) == "-" || at(i) == "+") ? at(i) : nil
                if sign != nil { i += 1 }
                i = skipWhitespace(from: i)
                if matches("endraw", at: i) {
                    i = skipWhitespace(from: i + 6)
                    var after: Int?
                    if matches("+%}", at: i) {
                        after = i + 3
                    } else if matches("-%}", at: i) {
                        after = skipWhitespace(from: i + 3)
                    } else if matches("%}", at: i) {
                        after = i + 2 + (trimBlocks && at(i + 2) == "\n" ? 1 : 0)
                    }
                    if let after {
                        var text = Array(source[bodyStart..<p])
                        if sign == "-" {
                            while let last = text.last, isPythonWhitespace(last) { text.removeLast() }
                        } else if sign != "+" && lstripBlocks {
                            let lineStart = (text.lastIndex(of: "\n").map { $0 + 1 }) ?? 0
                            if lineStart > 0 || lineStarting {
                                let tail = text[lineStart...]
                                if !tail.isEmpty && tail.allSatisfy(isPythonWhitespace) {
                                    text.removeSubrange(lineStart...)
                                }
                            }
                        }
                        emitData(String(String.UnicodeScalarView(text)), at: bodyStart)
                        position = after
                        lineStarting = after > 0 && source[after - 1] == "\n"
                        return
                    }
                }
            }
            p += 1
        }
        throw ChatTemplateError("missing '{% endraw %}' for the raw block opened here", at: location(opener))
    }

    private mutating func lexComment(bodyStart: Int, openedAt opener: Int) throws(ChatTemplateError) {
        var p = bodyStart
        while p < source.count {
            if (source[p] == "+" || source[p] == "-") && matches("#}", at: p + 1) {
                position = source[p] == "-" ? skipWhitespace(from: p + 3) : p + 3
                lineStarting = source[position - 1] == "\n"
                return
            }
            if matches("#}", at: p) {
                position = p + 2 + (trimBlocks && at(p + 2) == "\n" ? 1 : 0)
                lineStarting = source[position - 1] == "\n"
                return
            }
            p += 1
        }
        throw ChatTemplateError("missing '#}' to end the comment opened here", at: location(opener))
    }

    private mutating func lexTag(isBlock: Bool, bodyStart: Int, openedAt opener: Int) throws(ChatTemplateError) {
        tokens.append(Token(kind: isBlock ? .blockBegin : .variableBegin, location: location(opener)))
        var brackets: [(closer: Unicode.Scalar, at: Int)] = []
        var p = bodyStart
        while true {
            guard p < source.count else {
                let what = isBlock ? "'%}' to close the '{%' tag" : "'}}' to close the '{{' tag"
                throw ChatTemplateError("unexpected end of template: missing \(what) opened here", at: location(opener))
            }
            if brackets.isEmpty {
                var end: Int?
                if isBlock {
                    if matches("+%}", at: p) {
                        end = p + 3
                    } else if matches("-%}", at: p) {
                        end = skipWhitespace(from: p + 3)
                    } else if matches("%}", at: p) {
                        end = p + 2 + (trimBlocks && at(p + 2) == "\n" ? 1 : 0)
                    }
                } else if matches("-}}", at: p) {
                    end = skipWhitespace(from: p + 3)
                } else if matches("}}", at: p) {
                    end = p + 2
                }
                if let end {
                    tokens.append(Token(kind: isBlock ? .blockEnd : .variableEnd, location: location(p)))
                    position = end
                    lineStarting = source[end - 1] == "\n"
                    return
                }
            }
            let scalar = source[p]
            if isPythonWhitespace(scalar) {
                p += 1
                continue
            }
            let start = location(p)
            if let (value, next) = scanFloat(at: p) {
                tokens.append(Token(kind: .float(value), location: start))
                p = next
            } else if let (value, next) = try scanInteger(at: p) {
                tokens.append(Token(kind: .integer(value), location: start))
                p = next
            } else if scalar == "_" || scalar.properties.isXIDStart {
                var q = p + 1
                while let s = at(q), s == "_" || s.properties.isXIDContinue { q += 1 }
                tokens.append(Token(kind: .name(string(p..<q)), location: start))
                p = q
            } else if scalar == "'" || scalar == "\"" {
                var q = p + 1
                while true {
                    guard let s = at(q) else {
                        throw ChatTemplateError("unterminated string literal", at: start)
                    }
                    if s == "\\" { q += 2; continue }
                    if s == scalar { break }
                    q += 1
                }
                let value = try decodeStringLiteral(Array(source[(p + 1)..<q]), at: start)
                tokens.append(Token(kind: .string(value), location: start))
                p = q + 1
            } else if let op = Self.operators.first(where: { matches($0, at: p) }) {
                switch op {
                case "(": brackets.append((")", p))
                case "[": brackets.append(("]", p))
                case "{": brackets.append(("}", p))
                case ")", "]", "}":
                    guard let open = brackets.popLast() else {
                        throw ChatTemplateError("unexpected '\(op)'", at: start)
                    }
                    guard String(open.closer) == op else {
                        throw ChatTemplateError("unexpected '\(op)', expected '\(open.closer)'", at: start)
                    }
                default: break
                }
                tokens.append(Token(kind: .op(op), location: start))
                p += op.unicodeScalars.count
            } else {
                throw ChatTemplateError("unexpected character '\(scalar)' in a tag", at: start)
            }
        }
    }

    /// Longest first, so that `//` wins over `/`.
    private static let operators = [
        "//", "**", "==", "!=", ">=", "<=",
        "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", "=", ".", ":", "|", ",", ";", "<", ">",
    ]

    private func isDigit(_ s: Unicode.Scalar?) -> Bool { s.map { ("0"..."9").contains($0) } ?? false }

    /// Digits with single underscores between them (`1_000`); returns the index after them.
    private func scanDigits(at index: Int) -> Int? {
        guard isDigit(at(index)) else { return nil }
        var i = index + 1
        while true {
            if isDigit(at(i)) { i += 1 } else if at(i) == "_", isDigit(at(i + 1)) { i += 2 } else { break }
        }
        return i
    }

    /// jinja2's float rule: digits, then `.digits`, an exponent, or both; not right after a `.`.
    private func scanFloat(at index: Int) -> (Double, Int)? {
        if index > 0, source[index - 1] == "." { return nil }
        guard var i = scanDigits(at: index) else { return nil }
        var sawFraction = false
        if at(i) == ".", let afterFraction = scanDigits(at: i + 1) {
            i = afterFraction
            sawFraction = true
        }
        if at(i) == "e" || at(i) == "E" {
            var j = i + 1
            if at(j) == "+" || at(j) == "-" { j += 1 }
            if let afterExponent = scanDigits(at: j) {
                i = afterExponent
                sawFraction = true
            }
        }
        guard sawFraction else { return nil }
        let text = string(index..<i).replacingOccurrences(of: "_", with: "")
        return Double(text).map { ($0, i) }
    }

    private func scanInteger(at index: Int) throws(ChatTemplateError) -> (Int, Int)? {
        guard isDigit(at(index)) else { return nil }
        var radix = 10
        var digitsStart = index
        if at(index) == "0", let marker = at(index + 1) {
            switch marker {
            case "x", "X": radix = 16
            case "o", "O": radix = 8
            case "b", "B": radix = 2
            default: break
            }
            if radix != 10 { digitsStart = index + 2 }
        }
        var i = digitsStart
        var digits = ""
        while let s = at(i) {
            if s == "_" { i += 1; continue }
            guard s.isASCII, let d = Int(String(s), radix: radix), d < radix else { break }
            digits.unicodeScalars.append(s)
            i += 1
        }
        if radix != 10 && digits.isEmpty { return nil }
        guard let value = Int(digits, radix: radix) else {
            throw ChatTemplateError("integer literal '\(string(index..<i))' is out of range", at: location(index))
        }
        return (value, i)
    }

    /// Decodes backslash escapes as Python's `unicode-escape` codec does, which is what jinja2
    /// applies to string literals.
    private func decodeStringLiteral(_ body: [Unicode.Scalar], at start: SourceLocation) throws(ChatTemplateError) -> String {
        var result = String.UnicodeScalarView()
        var i = 0
        func hexValue(_ count: Int) throws(ChatTemplateError) -> Unicode.Scalar {
            guard i + count <= body.count else {
                throw ChatTemplateError("truncated escape in a string literal", at: start)
            }
            let text = String(String.UnicodeScalarView(body[i..<(i + count)]))
            guard text.unicodeScalars.allSatisfy({ $0.isASCII }), let value = UInt32(text, radix: 16),
                  let scalar = Unicode.Scalar(value)
            else { throw ChatTemplateError("invalid escape in a string literal", at: start) }
            i += count
            return scalar
        }
        while i < body.count {
            let scalar = body[i]
            i += 1
            guard scalar == "\\", i < body.count else {
                result.append(scalar)
                continue
            }
            let escape = body[i]
            i += 1
            switch escape {
            case "\n": break
            case "\\": result.append("\\")
            case "'": result.append("'")
            case "\"": result.append("\"")
            case "a": result.append("\u{07}")
            case "b": result.append("\u{08}")
            case "f": result.append("\u{0C}")
            case "n": result.append("\n")
            case "r": result.append("\r")
            case "t": result.append("\t")
            case "v": result.append("\u{0B}")
            case "x": result.append(try hexValue(2))
            case "u": result.append(try hexValue(4))
            case "U": result.append(try hexValue(8))
            case "0"..."7":
                var value = escape.value - 48
                var taken = 1
                while taken < 3, i < body.count, ("0"..."7").contains(body[i]) {
                    value = value * 8 + body[i].value - 48
                    i += 1
                    taken += 1
                }
                if let decoded = Unicode.Scalar(value) { result.append(decoded) }
            case "N":
                throw ChatTemplateError("\\N{...} escapes in string literals are not supported", at: start)
            default:
                result.append("\\")
                result.append(escape)
            }
        }
        return String(result)
    }
}
