import Foundation

// The parser and compiler behind `LinearRegex`: pattern text -> syntax tree -> instructions, with the
// scalar sets (classes, escapes, Unicode properties) and the case folding they use.

// MARK: - Syntax tree

/// A zero-width test at a position of the subject.
enum RegexAssertion: Int32, Sendable {
    case textStart, textEnd, textEndOrFinalNewline, lineStart, lineEnd, wordBoundary, notWordBoundary
}

/// A parsed pattern. Case-insensitivity is resolved during parsing (into `scalar`'s flag and into the
/// sets), so the tree carries no flags.
indirect enum RegexNode: Sendable {
    case empty
    case scalar(Unicode.Scalar, caseInsensitive: Bool)
    case set(SetTerm)
    case any(dotAll: Bool)
    case concatenation([RegexNode])
    case alternation([RegexNode])
    case repetition(RegexNode, min: Int, max: Int?, greedy: Bool)
    case group(RegexNode, capture: Int?)
    case assertion(RegexAssertion)
    case lookaround(RegexNode, behind: Bool, negated: Bool)

    /// The fewest and most scalars a match can consume (`nil`: unbounded), saturating at `Int.max / 4`.
    var lengthBounds: (min: Int, max: Int?) {
        let cap = Int.max / 4
        func add(_ a: Int, _ b: Int) -> Int { min(cap, a + b) }
        func mul(_ a: Int, _ b: Int) -> Int { a == 0 || b == 0 ? 0 : (a > cap / b ? cap : a * b) }
        switch self {
        case .empty, .assertion, .lookaround: return (0, 0)
        case .scalar, .set, .any: return (1, 1)
        case .group(let node, _): return node.lengthBounds
        case .concatenation(let nodes):
            var low = 0, high: Int? = 0
            for node in nodes {
                let b = node.lengthBounds
                low = add(low, b.min)
                if let h = high, let m = b.max { high = add(h, m) } else { high = nil }
            }
            return (low, high)
        case .alternation(let nodes):
            var low = Int.max, high: Int? = 0
            for node in nodes {
                let b = node.lengthBounds
                low = min(low, b.min)
                if let h = high, let m = b.max { high = max(h, m) } else { high = nil }
            }
            return (nodes.isEmpty ? 0 : low, high)
        case .repetition(let node, let lower, let upper, _):
            let b = node.lengthBounds
            let low = mul(b.min, lower)
            guard let upper, let m = b.max else { return (low, b.max == 0 ? 0 : nil) }
            return (low, mul(m, upper))
        }
    }
}

// MARK: - Scalar sets

/// Unicode general categories as bits, for `SetTerm.categories`.
enum GeneralCategoryBits {
    static func bit(_ category: Unicode.GeneralCategory) -> UInt64 {
        let index: Int
        switch category {
        case .uppercaseLetter: index = 0
        case .lowercaseLetter: index = 1
        case .titlecaseLetter: index = 2
        case .modifierLetter: index = 3
        case .otherLetter: index = 4
        case .nonspacingMark: index = 5
        case .spacingMark: index = 6
        case .enclosingMark: index = 7
        case .decimalNumber: index = 8
        case .letterNumber: index = 9
        case .otherNumber: index = 10
        case .connectorPunctuation: index = 11
        case .dashPunctuation: index = 12
        case .openPunctuation: index = 13
        case .closePunctuation: index = 14
        case .initialPunctuation: index = 15
        case .finalPunctuation: index = 16
        case .otherPunctuation: index = 17
        case .mathSymbol: index = 18
        case .currencySymbol: index = 19
        case .modifierSymbol: index = 20
        case .otherSymbol: index = 21
        case .spaceSeparator: index = 22
        case .lineSeparator: index = 23
        case .paragraphSeparator: index = 24
        case .control: index = 25
        case .format: index = 26
        case .surrogate: index = 27
        case .privateUse: index = 28
        case .unassigned: index = 29
        @unknown default: index = 29
        }
        return 1 << UInt64(index)
    }

    static let casedLetter: UInt64 = 0b111
    static let letter: UInt64 = 0b11111
    static let mark: UInt64 = 0b111 << 5
    static let decimalNumber: UInt64 = 1 << 8
    static let number: UInt64 = 0b111 << 8
    static let connectorPunctuation: UInt64 = 1 << 11
    static let punctuation: UInt64 = 0b1111111 << 11
    static let symbol: UInt64 = 0b1111 << 18
    static let separator: UInt64 = 0b111 << 22
    static let other: UInt64 = 0b11111 << 25

    /// Short and long names (loosely matched, see `PropertyName.loose`) of the categories and their groups.
    static let byName: [String: UInt64] = {
        let named: [(UInt64, [String])] = [
            (letter, ["l", "letter"]), (casedLetter, ["lc", "l&", "casedletter"]),
            (1 << 0, ["lu", "uppercaseletter"]), (1 << 1, ["ll", "lowercaseletter"]), (1 << 2, ["lt", "titlecaseletter"]),
            (1 << 3, ["lm", "modifierletter"]), (1 << 4, ["lo", "otherletter"]),
            (mark, ["m", "mark", "combiningmark"]), (1 << 5, ["mn", "nonspacingmark"]), (1 << 6, ["mc", "spacingmark"]),
            (1 << 7, ["me", "enclosingmark"]),
            (number, ["n", "number"]), (1 << 8, ["nd", "decimalnumber"]), (1 << 9, ["nl", "letternumber"]), (1 << 10, ["no", "othernumber"]),
            (punctuation, ["p", "punctuation"]), (1 << 11, ["pc", "connectorpunctuation"]), (1 << 12, ["pd", "dashpunctuation"]),
            (1 << 13, ["ps", "openpunctuation"]), (1 << 14, ["pe", "closepunctuation"]), (1 << 15, ["pi", "initialpunctuation"]),
            (1 << 16, ["pf", "finalpunctuation"]), (1 << 17, ["po", "otherpunctuation"]),
            (symbol, ["s", "symbol"]), (1 << 18, ["sm", "mathsymbol"]), (1 << 19, ["sc", "currencysymbol"]),
            (1 << 20, ["sk", "modifiersymbol"]), (1 << 21, ["so", "othersymbol"]),
            (separator, ["z", "separator"]), (1 << 22, ["zs", "spaceseparator"]), (1 << 23, ["zl", "lineseparator"]),
            (1 << 24, ["zp", "paragraphseparator"]),
            (other, ["c", "other"]), (1 << 25, ["cc", "control"]), (1 << 26, ["cf", "format"]), (1 << 27, ["cs", "surrogate"]),
            (1 << 28, ["co", "privateuse"]), (1 << 29, ["cn", "unassigned"]),
        ]
        var table: [String: UInt64] = [:]
        for (bits, names) in named { for name in names { table[name] = bits } }
        return table
    }()
}

/// A binary Unicode property that Swift's `Unicode.Scalar.Properties` answers directly.
enum NativeProperty: UInt8, Sendable {
    case alphabetic, whitespace, uppercase, lowercase, joinControl, asciiHexDigit

    func contains(_ c: Unicode.Scalar) -> Bool {
        let p = c.properties
        switch self {
        case .alphabetic: return p.isAlphabetic
        case .whitespace: return p.isWhitespace
        case .uppercase: return p.isUppercase
        case .lowercase: return p.isLowercase
        case .joinControl: return p.isJoinControl
        case .asciiHexDigit: return p.isASCIIHexDigit
        }
    }
}

/// A description of a set of scalars, evaluated on demand. `ScalarSet` wraps one with a table for ASCII.
indirect enum SetTerm: Sendable {
    /// Sorted, disjoint closed ranges of scalar values.
    case ranges([ClosedRange<UInt32>])
    /// A union of general categories (`GeneralCategoryBits`).
    case categories(UInt64)
    case property(NativeProperty)
    case union([SetTerm])
    case intersection([SetTerm])
    case complement(SetTerm)
    /// The scalars whose simple case fold equals the fold of some member (the case closure).
    case caseInsensitive(SetTerm)

    func contains(_ c: Unicode.Scalar) -> Bool {
        switch self {
        case .ranges(let ranges):
            let v = c.value
            var low = 0, high = ranges.count
            while low < high {
                let mid = (low + high) / 2
                if ranges[mid].upperBound < v { low = mid + 1 } else { high = mid }
            }
            return low < ranges.count && ranges[low].lowerBound <= v
        case .categories(let bits): return bits & GeneralCategoryBits.bit(c.properties.generalCategory) != 0
        case .property(let property): return property.contains(c)
        case .union(let terms): return terms.contains { $0.contains(c) }
        case .intersection(let terms): return terms.allSatisfy { $0.contains(c) }
        case .complement(let term): return !term.contains(c)
        case .caseInsensitive(let term):
            if term.contains(c) { return true }
            return CaseFolding.orbit(of: c).contains { $0 != c && term.contains($0) }
        }
    }

    /// Whether the set may change under case closure (ranges and cased categories may; `\d`, `\s`,
    /// `\p{L}` cannot), so that closure is only paid for where it can matter.
    var isCaseSensitive: Bool {
        switch self {
        case .ranges: return true
        case .categories(let bits): return bits & GeneralCategoryBits.casedLetter != 0 && bits & GeneralCategoryBits.letter != GeneralCategoryBits.letter
        case .property(let p): return p == .uppercase || p == .lowercase
        case .union(let terms), .intersection(let terms): return terms.contains { $0.isCaseSensitive }
        case .complement(let term): return term.isCaseSensitive
        case .caseInsensitive: return false
        }
    }

    static func scalars(_ values: [UInt32]) -> SetTerm {
        .ranges(normalized(values.map { $0...$0 }))
    }

    /// Sorts and merges overlapping or adjacent ranges.
    static func normalized(_ ranges: [ClosedRange<UInt32>]) -> [ClosedRange<UInt32>] {
        var result: [ClosedRange<UInt32>] = []
        for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = result.last, range.lowerBound <= last.upperBound &+ 1 {
                result[result.count - 1] = last.lowerBound...max(last.upperBound, range.upperBound)
            } else {
                result.append(range)
            }
        }
        return result
    }
}

/// A set of scalars with a bitmap for ASCII, so that the common case is two instructions.
struct ScalarSet: Sendable {
    let term: SetTerm
    private let asciiLow: UInt64
    private let asciiHigh: UInt64

    init(_ term: SetTerm) {
        self.term = term
        var low: UInt64 = 0, high: UInt64 = 0
        for v in 0..<128 where term.contains(Unicode.Scalar(UInt8(v))) {
            if v < 64 { low |= 1 << UInt64(v) } else { high |= 1 << UInt64(v - 64) }
        }
        asciiLow = low
        asciiHigh = high
    }

    @inline(__always)
    func contains(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        if v < 64 { return asciiLow >> UInt64(v) & 1 != 0 }
        if v < 128 { return asciiHigh >> UInt64(v - 64) & 1 != 0 }
        return term.contains(c)
    }

    var coversAllASCII: Bool { asciiLow == .max && asciiHigh == .max }
}

// MARK: - Case folding

/// Simple (one scalar to one scalar) Unicode case folding, as equivalence classes: two scalars match
/// under `(?i)` when they are in the same class. The classes join every scalar with its single-scalar
/// lower, upper and title case mappings (from Swift's Unicode tables), which reproduces
/// CaseFolding.txt's C and S entries (ſ, s and S; K, k and the Kelvin sign; σ, ς and Σ; ß and ẞ;
/// ι, ͅ and ι; Cherokee ꭰ and Ꭰ), except that the dotless ı stays apart from I, whose mapping to it is
/// Turkic-only there. Full folds that expand to several scalars (ß to ss, İ to i̇) are not applied, so
/// `(?i)ss` does not match `ß` (Oniguruma's does).
enum CaseFolding {
    private struct Table: Sendable {
        /// Each cased scalar's class representative (absent: the scalar represents itself).
        var folds: [UInt32: UInt32] = [:]
        /// Each representative's class.
        var classes: [UInt32: [Unicode.Scalar]] = [:]
    }

    private static let table: Table = {
        var parent: [UInt32: UInt32] = [:]
        func find(_ v: UInt32) -> UInt32 {
            var root = v
            while let p = parent[root], p != root { root = p }
            return root
        }
        func single(_ s: String) -> Unicode.Scalar? {
            var iterator = s.unicodeScalars.makeIterator()
            guard let first = iterator.next(), iterator.next() == nil else { return nil }
            return first
        }
        for v in UInt32(0)...0x10FFFF {
            guard let c = Unicode.Scalar(v), c.properties.changesWhenCaseMapped else { continue }
            let p = c.properties
            for mapping in [p.lowercaseMapping, p.uppercaseMapping, p.titlecaseMapping] {
                guard let m = single(mapping), m != c, !(v == 0x131 && m == "I") else { continue }
                let a = find(v), b = find(m.value)
                if parent[a] == nil { parent[a] = a }
                if parent[b] == nil { parent[b] = b }
                if a != b { parent[max(a, b)] = min(a, b) }
            }
        }
        var members: [UInt32: [Unicode.Scalar]] = [:]
        for v in parent.keys { if let c = Unicode.Scalar(v) { members[find(v), default: []].append(c) } }
        var table = Table()
        for (_, group) in members {
            // The representative is the lower-case ASCII letter where there is one (so that ASCII can be
            // folded without the table), else the smallest scalar.
            let sorted = group.sorted { $0.value < $1.value }
            let representative = sorted.first { $0.value >= 0x61 && $0.value <= 0x7A } ?? sorted[0]
            table.classes[representative.value] = sorted
            for c in sorted where c != representative { table.folds[c.value] = representative.value }
        }
        return table
    }()

    /// The representative of `c`'s class (for ASCII, the lower-case letter).
    @inline(__always)
    static func fold(_ c: Unicode.Scalar) -> Unicode.Scalar {
        let v = c.value
        if v < 128 { return v >= 0x41 && v <= 0x5A ? Unicode.Scalar(UInt8(v + 32)) : c }
        guard let f = table.folds[v] else { return c }
        return Unicode.Scalar(f) ?? c
    }

    /// Every scalar in `c`'s class, `c` included.
    static func orbit(of c: Unicode.Scalar) -> [Unicode.Scalar] {
        table.classes[fold(c).value] ?? [c]
    }
}

// MARK: - Unicode properties by name

/// Resolves `\p{NAME}` names: general categories natively, POSIX-style names with Oniguruma's
/// definitions, everything else (scripts, blocks, other binary properties) from ICU, tabulated once
/// per process by running the one-class pattern `\p{NAME}` over every scalar.
enum PropertyName {
    /// UAX44-LM3 loose matching: case, spaces, underscores and hyphens are ignored.
    static func loose(_ name: String) -> String {
        String(name.lowercased().unicodeScalars.filter { $0 != " " && $0 != "_" && $0 != "-" })
    }

    static func resolve(_ name: String) -> SetTerm? {
        var key = loose(name)
        for prefix in ["generalcategory=", "gc="] where key.hasPrefix(prefix) {
            key.removeFirst(prefix.count)
            return GeneralCategoryBits.byName[key].map { .categories($0) }
        }
        if let bits = GeneralCategoryBits.byName[key] { return .categories(bits) }
        if let term = posix[key] { return term }
        return ICUPropertyTables.shared.ranges(for: name).map { .ranges($0) }
    }

    static let word = SetTerm.union([.property(.alphabetic), .categories(GeneralCategoryBits.mark | GeneralCategoryBits.decimalNumber | GeneralCategoryBits.connectorPunctuation)])
    static let asciiHexDigit = SetTerm.property(.asciiHexDigit)

    /// POSIX bracket names as Oniguruma defines them for Unicode (measured against Hugging Face
    /// tokenizers' Oniguruma): `punct` is P and S, `graph` everything but White_Space, Cc, Cs and Cn.
    static let posix: [String: SetTerm] = {
        let graph = SetTerm.complement(.union([.property(.whitespace), .categories(GeneralCategoryBits.bit(.control) | GeneralCategoryBits.bit(.surrogate) | GeneralCategoryBits.bit(.unassigned))]))
        return [
            "alpha": .property(.alphabetic), "alphabetic": .property(.alphabetic),
            "alnum": .union([.property(.alphabetic), .categories(GeneralCategoryBits.decimalNumber)]),
            "blank": .union([.categories(GeneralCategoryBits.bit(.spaceSeparator)), .scalars([0x09])]),
            "cntrl": .categories(GeneralCategoryBits.bit(.control)),
            "digit": .categories(GeneralCategoryBits.decimalNumber),
            "graph": graph,
            "print": .union([graph, .categories(GeneralCategoryBits.bit(.spaceSeparator))]),
            "lower": .property(.lowercase), "lowercase": .property(.lowercase),
            "upper": .property(.uppercase), "uppercase": .property(.uppercase),
            "punct": .categories(GeneralCategoryBits.punctuation | GeneralCategoryBits.symbol),
            "space": .property(.whitespace), "whitespace": .property(.whitespace),
            "xdigit": asciiHexDigit, "asciihexdigit": asciiHexDigit,
            "word": word,
            "ascii": .ranges([0...0x7F]),
            "any": .ranges([0...0x10FFFF]),
            "assigned": .complement(.categories(GeneralCategoryBits.bit(.unassigned))),
            "joincontrol": .property(.joinControl),
        ]
    }()
}

/// Scalar ranges of ICU properties, computed on first use and kept for the process.
final class ICUPropertyTables: @unchecked Sendable {
    static let shared = ICUPropertyTables()
    private let lock = NSLock()
    private var tables: [String: [ClosedRange<UInt32>]?] = [:]

    /// Every scalar in order (UTF-16), to run the property pattern over.
    private lazy var allScalars: NSString = {
        var view = String.UnicodeScalarView()
        for v in UInt32(0)...0x10FFFF { if let c = Unicode.Scalar(v) { view.append(c) } }
        return String(view) as NSString
    }()

    func ranges(for name: String) -> [ClosedRange<UInt32>]? {
        // Only names made of these characters reach ICU, so the pattern is one class and nothing else.
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_ -=.")
        guard !name.isEmpty, name.count <= 80, name.allSatisfy({ allowed.contains($0) }) else { return nil }
        lock.lock()
        defer { lock.unlock() }
        if let cached = tables[name] { return cached }
        let computed = compute(name)
        tables[name] = computed
        return computed
    }

    private func compute(_ name: String) -> [ClosedRange<UInt32>]? {
        guard let regex = try? NSRegularExpression(pattern: "\\p{\(name)}+") else { return nil }
        let text = allScalars
        var ranges: [ClosedRange<UInt32>] = []
        func scalar(at index: Int) -> UInt32 {
            let unit = UInt32(text.character(at: index))
            if (0xD800...0xDBFF).contains(unit), index + 1 < text.length {
                let low = UInt32(text.character(at: index + 1))
                return 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
            }
            return unit
        }
        regex.enumerateMatches(in: text as String, range: NSRange(location: 0, length: text.length)) { match, _, _ in
            guard let range = match?.range, range.length > 0 else { return }
            var last = range.location + range.length - 1
            if (0xDC00...0xDFFF).contains(UInt32(text.character(at: last))) { last -= 1 }
            ranges.append(scalar(at: range.location)...scalar(at: last))
        }
        return SetTerm.normalized(ranges)
    }
}

// MARK: - Parser

/// Reads a pattern in one of `LinearRegex.Syntax`'s dialects into a `RegexNode`.
struct LinearRegexParser {
    private struct Flags {
        var caseInsensitive: Bool
        var dotAll = false
        var multiline = false
    }

    private let pattern: [Unicode.Scalar]
    private let syntax: LinearRegex.Syntax
    private var i = 0
    private var insideLookaround = false
    private(set) var captureCount = 0

    init(_ source: String, syntax: LinearRegex.Syntax) {
        pattern = Array(source.unicodeScalars)
        self.syntax = syntax
    }

    mutating func parse(caseInsensitive: Bool) throws(LinearRegexError) -> RegexNode {
        var flags = Flags(caseInsensitive: caseInsensitive)
        let node = try parseAlternation(&flags)
        if i < pattern.count {
            throw syntaxError("unbalanced ) at character \(i + 1)")
        }
        return node
    }

    // MARK: Errors

    private func syntaxError(_ message: String) -> LinearRegexError {
        LinearRegexError(message, refusal: false)
    }

    /// A construct irm refuses because it cannot run in linear time (or is not implemented).
    private func refusal(_ construct: String, at start: Int, linear: Bool = true) -> LinearRegexError {
        let end = min(pattern.count, max(i, start + 1))
        let text = String(String.UnicodeScalarView(pattern[start..<end]))
        let why = linear ? " (irm runs untrusted patterns on a linear-time matcher)" : ""
        return LinearRegexError("\(construct): \(text) at character \(start + 1)\(why)", refusal: true)
    }

    // MARK: Reading

    private var peek: Unicode.Scalar? { i < pattern.count ? pattern[i] : nil }
    private func peek(_ offset: Int) -> Unicode.Scalar? { i + offset < pattern.count ? pattern[i + offset] : nil }

    private mutating func take(_ c: Unicode.Scalar) -> Bool {
        if peek == c { i += 1; return true }
        return false
    }

    // MARK: Structure

    private mutating func parseAlternation(_ flags: inout Flags) throws(LinearRegexError) -> RegexNode {
        var branches = [try parseConcatenation(&flags)]
        while take("|") { branches.append(try parseConcatenation(&flags)) }
        return branches.count == 1 ? branches[0] : .alternation(branches)
    }

    private mutating func parseConcatenation(_ flags: inout Flags) throws(LinearRegexError) -> RegexNode {
        var items: [RegexNode] = []
        while let c = peek, c != "|", c != ")" {
            let start = i
            if c == "(", peek(1) == "?", let switched = try parseFlagSwitch(&flags, at: start) {
                // Oniguruma: `a(?i)b|c` is `a(?i:b|c)`: the rest of the group, alternatives included.
                // Python: global flags stand at the start, so the rest is the whole pattern.
                if syntax == .oniguruma {
                    var inner = switched
                    items.append(.group(try parseAlternation(&inner), capture: nil))
                    break
                }
                flags = switched
                continue
            }
            var atom = try parseAtom(&flags)
            atom = try parseQuantifiers(atom, atomStart: start)
            items.append(atom)
        }
        switch items.count {
        case 0: return .empty
        case 1: return items[0]
        default: return .concatenation(items)
        }
    }

    /// Reads `(?flags)` when that is what stands at `i`, returning the new flags; nil (reading nothing)
    /// for any other `(?` group.
    private mutating func parseFlagSwitch(_ flags: inout Flags, at start: Int) throws(LinearRegexError) -> Flags? {
        var j = i + 2
        while j < pattern.count, pattern[j] != ")", pattern[j] != ":" {
            // Flags are lower-case letters; (?R) and the like are other constructs.
            guard pattern[j] == "-" || ("a"..."z").contains(pattern[j]) else { return nil }
            j += 1
        }
        guard j < pattern.count, pattern[j] == ")", j > i + 2 else { return nil }
        i += 2
        var switched = flags
        try parseFlags(&switched, until: ")", groupStart: start)
        // Python 3.11 rejects global flags anywhere but the start (earlier versions applied them to the whole pattern).
        if syntax == .python, !isAtGlobalFlagPosition(start) {
            throw syntaxError("global flags (\(String(String.UnicodeScalarView(pattern[start..<i])))) must stand at the start of the pattern (character \(start + 1)); use a scoped group such as (?i:...)")
        }
        return switched
    }

    /// Python allows a run of global-flag groups at the very start.
    private func isAtGlobalFlagPosition(_ start: Int) -> Bool {
        var k = 0
        while k < start {
            guard pattern[k] == "(", k + 1 < start, pattern[k + 1] == "?" else { return false }
            var j = k + 2
            while j < start, pattern[j] != ")" {
                guard ("a"..."z").contains(pattern[j]) || ("A"..."Z").contains(pattern[j]) else { return false }
                j += 1
            }
            guard j < start else { return false }
            k = j + 1
        }
        return true
    }

    /// Reads flag letters (`i`, and `m`/`s` as the dialect defines them), an optional `-` and letters to
    /// clear, up to `terminator` (consumed).
    private mutating func parseFlags(_ flags: inout Flags, until terminator: Unicode.Scalar, groupStart: Int) throws(LinearRegexError) {
        var on = true
        while let c = peek, c != terminator {
            i += 1
            switch c {
            case "-": on = false
            case "i": flags.caseInsensitive = on
            case "m" where syntax == .oniguruma: flags.dotAll = on  // Ruby's m is dot-all
            case "m" where syntax == .python: flags.multiline = on
            case "s" where syntax == .python: flags.dotAll = on
            case "u" where syntax == .python: break  // Unicode matching is the only mode
            case "x":
                throw refusal("the extended (verbose) flag x is not supported", at: groupStart, linear: false)
            default:
                throw refusal("the inline flag \(c) is not supported (supported: i\(syntax == .python ? ", m, s" : ", m"))", at: groupStart, linear: false)
            }
        }
        guard take(terminator) else { throw syntaxError("missing ) for the group opened at character \(groupStart + 1)") }
    }

    private mutating func parseGroupBody(_ flags: Flags, groupStart: Int) throws(LinearRegexError) -> RegexNode {
        var inner = flags
        let body = try parseAlternation(&inner)
        guard take(")") else { throw syntaxError("missing ) for the group opened at character \(groupStart + 1)") }
        return body
    }

    private mutating func parseGroup(_ flags: inout Flags) throws(LinearRegexError) -> RegexNode {
        let start = i
        i += 1
        guard take("?") else {
            captureCount += 1
            let index = captureCount
            return .group(try parseGroupBody(flags, groupStart: start), capture: index)
        }
        guard let c = peek else { throw syntaxError("missing ) for the group opened at character \(start + 1)") }
        switch c {
        case ":":
            i += 1
            return .group(try parseGroupBody(flags, groupStart: start), capture: nil)
        case "=", "!":
            i += 1
            return try parseLookaround(flags, behind: false, negated: c == "!", start: start)
        case "<" where peek(1) == "=" || peek(1) == "!":
            let negated = peek(1) == "!"
            i += 2
            return try parseLookaround(flags, behind: true, negated: negated, start: start)
        case "<", "'", "P":
            if c == "P" {
                i += 1
                if peek == "=" { i += 1; throw refusal("backreferences are not supported", at: start) }
                if peek == ">" { i += 1; throw refusal("subroutine calls are not supported", at: start) }
                guard peek == "<" else { throw syntaxError("unknown group syntax at character \(start + 1)") }
            }
            let close: Unicode.Scalar = peek == "'" ? "'" : ">"
            i += 1
            let nameStart = i
            while let n = peek, n != close { guard n == "_" || n.properties.isAlphabetic || n.properties.numericType != nil else { break }; i += 1 }
            guard i > nameStart, take(close) else { throw syntaxError("bad group name at character \(start + 1)") }
            captureCount += 1
            let index = captureCount
            return .group(try parseGroupBody(flags, groupStart: start), capture: index)
        case ">":
            i += 1
            throw refusal("atomic groups are not supported", at: start)
        case "#":
            while let n = peek, n != ")" { i += 1 }
            guard take(")") else { throw syntaxError("missing ) for the comment opened at character \(start + 1)") }
            return .empty
        case "(":
            i += 1
            throw refusal("conditional groups are not supported", at: start)
        case "~":
            i += 1
            throw refusal("absent groups are not supported", at: start)
        case "R", "&", "+", "0"..."9":
            i += 1
            throw refusal("recursion and subroutine calls are not supported", at: start)
        default:
            guard c == "-" || ("a"..."z").contains(c) || ("A"..."Z").contains(c) else {
                throw syntaxError("unknown group syntax (?\(c) at character \(start + 1)")
            }
            var scoped = flags
            try parseFlags(&scoped, until: ":", groupStart: start)
            return .group(try parseGroupBody(scoped, groupStart: start), capture: nil)
        }
    }

    private mutating func parseLookaround(_ flags: Flags, behind: Bool, negated: Bool, start: Int) throws(LinearRegexError) -> RegexNode {
        if insideLookaround { throw refusal("lookarounds inside lookarounds are not supported", at: start) }
        insideLookaround = true
        let body = try parseGroupBody(flags, groupStart: start)
        insideLookaround = false
        let kind = behind ? "lookbehind" : "lookahead"
        guard let longest = body.lengthBounds.max else {
            throw refusal("\(kind)s with an unbounded body are not supported (the body may match at most \(LinearRegex.maximumLookaroundLength) characters)", at: start)
        }
        if longest > LinearRegex.maximumLookaroundLength {
            throw refusal("\(kind)s whose body can match \(longest) characters are not supported (at most \(LinearRegex.maximumLookaroundLength))", at: start)
        }
        return .lookaround(body, behind: behind, negated: negated)
    }

    // MARK: Quantifiers

    private mutating func parseQuantifiers(_ atom: RegexNode, atomStart: Int) throws(LinearRegexError) -> RegexNode {
        var node = atom
        var quantified = false
        while let c = peek {
            let start = i
            var lower = 0, upper: Int? = nil, braces = false, exact = false
            switch c {
            case "*": i += 1
            case "+": i += 1; lower = 1
            case "?": i += 1; upper = 1
            case "{":
                guard let (l, u, isExact) = try parseBraces() else { return node }
                lower = l; upper = u; braces = true; exact = isExact
            default: return node
            }
            switch node {
            case .assertion, .lookaround, .empty:
                throw syntaxError("nothing to repeat at character \(start + 1): a quantifier cannot follow an anchor, a lookaround or nothing")
            default: break
            }
            if quantified, syntax == .python {
                throw syntaxError("multiple repeat at character \(start + 1)")
            }
            var greedy = true
            if peek == "?" {
                // Oniguruma's Ruby syntax reads `x{n}?` as `(?:x{n})?`, not as a lazy `{n}`.
                if !(syntax == .oniguruma && exact) { i += 1; greedy = false }
            } else if peek == "+" {
                // Possessive, except after braces in Oniguruma's Ruby syntax, where `x{n}+` is `(?:x{n})+`.
                if !(syntax == .oniguruma && braces) {
                    i += 1
                    throw refusal("possessive quantifiers are not supported", at: start)
                }
            }
            node = .repetition(node, min: lower, max: upper, greedy: greedy)
            quantified = true
        }
        return node
    }

    /// Reads `{n}`, `{n,}`, `{n,m}` or `{,m}` at `i`; nil (reading nothing) when the brace does not
    /// start one, in which case it is a literal `{`.
    private mutating func parseBraces() throws(LinearRegexError) -> (Int, Int?, Bool)? {
        let start = i
        var j = i + 1
        func number() -> Int?? {
            var value = 0, digits = 0
            while j < pattern.count, ("0"..."9").contains(pattern[j]) {
                value = min(value * 10 + Int(pattern[j].value - 48), Int(Int32.max)); digits += 1; j += 1
            }
            return digits == 0 ? .some(nil) : .some(value)
        }
        guard let first = number() else { return nil }
        var second: Int?? = first
        var exact = true
        if j < pattern.count, pattern[j] == "," {
            j += 1
            exact = false
            second = number()
        }
        guard j < pattern.count, pattern[j] == "}" else { return nil }
        let lower = first ?? 0
        guard first != nil || (second ?? nil) != nil else { return nil }
        let upper: Int? = exact ? first : (second ?? nil)
        i = j + 1
        let limit = LinearRegex.maximumRepetition
        if lower > limit || (upper ?? 0) > limit {
            throw refusal("repetition counts above \(limit) are not supported", at: start, linear: false)
        }
        if let upper, upper < lower {
            throw syntaxError("the repetition {\(lower),\(upper)} at character \(start + 1) has its minimum above its maximum")
        }
        return (lower, upper, exact)
    }

    // MARK: Atoms

    private mutating func parseAtom(_ flags: inout Flags) throws(LinearRegexError) -> RegexNode {
        let start = i
        guard let c = peek else { return .empty }
        switch c {
        case "(":
            return try parseGroup(&flags)
        case "[":
            return .set(try parseClass(flags))
        case ".":
            i += 1
            return .any(dotAll: flags.dotAll)
        case "^":
            i += 1
            return .assertion(syntax == .oniguruma || flags.multiline ? .lineStart : .textStart)
        case "$":
            i += 1
            return .assertion(syntax == .oniguruma || flags.multiline ? .lineEnd : .textEndOrFinalNewline)
        case "\\":
            switch try parseEscape(inClass: false, flags: flags) {
            case .scalar(let s): return .scalar(s, caseInsensitive: flags.caseInsensitive)
            case .set(let term): return .set(term)
            case .assertion(let a): return .assertion(a)
            }
        case "*", "+", "?":
            throw syntaxError("nothing to repeat at character \(start + 1)")
        case "{":
            if try parseBraces() != nil { throw syntaxError("nothing to repeat at character \(start + 1)") }
            i += 1
            return .scalar(c, caseInsensitive: flags.caseInsensitive)
        default:
            i += 1
            return .scalar(c, caseInsensitive: flags.caseInsensitive)
        }
    }

    private enum Escape {
        case scalar(Unicode.Scalar)
        case set(SetTerm)
        case assertion(RegexAssertion)
    }

    private mutating func hexValue(digits range: ClosedRange<Int>, start: Int) throws(LinearRegexError) -> Unicode.Scalar {
        var value: UInt32 = 0, count = 0
        while count < range.upperBound, let c = peek, let d = c.properties.isASCIIHexDigit ? UInt32(String(c), radix: 16) : nil {
            value = value * 16 + d; count += 1; i += 1
        }
        guard count >= range.lowerBound, let scalar = Unicode.Scalar(value) else {
            throw syntaxError("bad hexadecimal escape at character \(start + 1)")
        }
        return scalar
    }

    private mutating func parseEscape(inClass: Bool, flags: Flags) throws(LinearRegexError) -> Escape {
        let start = i
        i += 1
        guard let c = peek else { throw syntaxError("the pattern ends with a backslash") }
        i += 1
        func ascii(_ v: UInt8) -> Escape { .scalar(Unicode.Scalar(v)) }
        func notInClass(_ what: String) throws(LinearRegexError) {
            if inClass { throw LinearRegexError("\(what) cannot stand inside a character class (character \(start + 1))", refusal: false) }
        }
        switch c {
        case "d": return .set(.categories(GeneralCategoryBits.decimalNumber))
        case "D": return .set(.complement(.categories(GeneralCategoryBits.decimalNumber)))
        case "s": return .set(.property(.whitespace))
        case "S": return .set(.complement(.property(.whitespace)))
        case "w": return .set(wordSet(inClass: inClass))
        case "W": return .set(.complement(wordSet(inClass: inClass)))
        case "h" where syntax == .oniguruma: return .set(PropertyName.asciiHexDigit)
        case "H" where syntax == .oniguruma: return .set(.complement(PropertyName.asciiHexDigit))
        case "p", "P": return .set(try parseProperty(negated: c == "P", start: start, flags: flags))
        case "b":
            if inClass { return ascii(0x08) }
            return .assertion(.wordBoundary)
        case "B":
            try notInClass("\\B")
            return .assertion(.notWordBoundary)
        case "A":
            try notInClass("\\A")
            return .assertion(.textStart)
        case "z":
            try notInClass("\\z")
            return .assertion(.textEnd)
        case "Z":
            try notInClass("\\Z")
            return .assertion(syntax == .oniguruma ? .textEndOrFinalNewline : .textEnd)
        case "G": throw refusal("the search-start anchor \\G is not supported", at: start, linear: false)
        case "n": return ascii(0x0A)
        case "r": return ascii(0x0D)
        case "t": return ascii(0x09)
        case "f": return ascii(0x0C)
        case "v": return ascii(0x0B)
        case "a": return ascii(0x07)
        case "e": return ascii(0x1B)
        case "0":
            var value: UInt32 = 0, count = 0
            while count < 2, let d = peek, ("0"..."7").contains(d) { value = value * 8 + (d.value - 48); count += 1; i += 1 }
            return .scalar(Unicode.Scalar(UInt8(value)))
        case "1"..."9":
            // Three octal digits are an octal escape; anything else is a group reference.
            if let d1 = peek, let d2 = peek(1), ("0"..."7").contains(c), ("0"..."7").contains(d1), ("0"..."7").contains(d2) {
                let value = (c.value - 48) * 64 + (d1.value - 48) * 8 + (d2.value - 48)
                if value <= 0o377 { i += 2; return .scalar(Unicode.Scalar(UInt8(value))) }
            }
            while let d = peek, ("0"..."9").contains(d) { i += 1 }
            throw refusal("backreferences are not supported", at: start)
        case "k":
            if peek == "<" || peek == "'" || peek == "{" { while let n = peek, n != ">", n != "'", n != "}" { i += 1 }; i += 1 }
            throw refusal("backreferences are not supported", at: start)
        case "g":
            if peek == "<" || peek == "'" { while let n = peek, n != ">", n != "'" { i += 1 }; i += 1 }
            throw refusal("subroutine calls are not supported", at: start)
        case "K": throw refusal("\\K (keep) is not supported", at: start)
        case "x":
            if take("{") {
                let scalar = try hexValue(digits: 1...8, start: start)
                guard take("}") else { throw syntaxError("missing } in the escape at character \(start + 1)") }
                return .scalar(scalar)
            }
            return .scalar(try hexValue(digits: syntax == .oniguruma ? 1...2 : 2...2, start: start))
        case "u": return .scalar(try hexValue(digits: 4...4, start: start))
        case "U" where syntax == .python: return .scalar(try hexValue(digits: 8...8, start: start))
        case "X": throw refusal("the grapheme-cluster escape \\X is not supported", at: start, linear: false)
        case "R": throw refusal("the line-break escape \\R is not supported", at: start, linear: false)
        case "N": throw refusal("the escape \\N is not supported", at: start, linear: false)
        default:
            if c.isASCII, c.properties.isAlphabetic || ("0"..."9").contains(c) {
                throw syntaxError("unknown escape \\\(c) at character \(start + 1)")
            }
            return .scalar(c)
        }
    }

    /// `\w`. Oniguruma counts ² ³ ¹ ¼ ½ ¾ as word characters outside a class only (its Latin-1 table);
    /// Python's `regex` module adds the joiners U+200C/U+200D (Unicode TR18).
    private func wordSet(inClass: Bool) -> SetTerm {
        switch syntax {
        case .oniguruma:
            return inClass ? PropertyName.word : .union([PropertyName.word, .scalars([0xB2, 0xB3, 0xB9, 0xBC, 0xBD, 0xBE])])
        case .python:
            return .union([PropertyName.word, .property(.joinControl)])
        }
    }

    private mutating func parseProperty(negated: Bool, start: Int, flags: Flags) throws(LinearRegexError) -> SetTerm {
        var name: String
        if take("{") {
            let nameStart = i
            while let n = peek, n != "}" { i += 1 }
            guard peek == "}" else { throw syntaxError("missing } in the property at character \(start + 1)") }
            name = String(String.UnicodeScalarView(pattern[nameStart..<i]))
            i += 1
        } else if syntax == .python, let n = peek, n.isASCII, n.properties.isAlphabetic {
            i += 1
            name = String(n)
        } else {
            throw syntaxError("\\p and \\P need a name in braces, such as \\p{L} (character \(start + 1))")
        }
        var negate = negated
        if name.hasPrefix("^") { negate.toggle(); name.removeFirst() }
        guard let term = PropertyName.resolve(name) else {
            throw syntaxError("unknown Unicode property \\p{\(name)} at character \(start + 1)")
        }
        // Python's `regex` folds property classes under (?i) (so (?i)\p{Lu} matches a); Oniguruma does not.
        let closed = syntax == .python && flags.caseInsensitive && term.isCaseSensitive ? SetTerm.caseInsensitive(term) : term
        return negate ? .complement(closed) : closed
    }

    // MARK: Classes

    private mutating func parseClass(_ flags: Flags) throws(LinearRegexError) -> SetTerm {
        let start = i
        i += 1
        let negated = take("^")
        var operands: [SetTerm] = []  // the operands of && (Oniguruma)
        var items: [SetTerm] = []
        var scalars: [ClosedRange<UInt32>] = []
        var first = true
        func flush() -> SetTerm {
            var parts = items
            if !scalars.isEmpty {
                // Oniguruma folds the ranges and literals of a class but not the properties in it.
                let ranges = SetTerm.ranges(SetTerm.normalized(scalars))
                parts.append(flags.caseInsensitive && syntax == .oniguruma ? .caseInsensitive(ranges) : ranges)
            }
            items = []
            scalars = []
            return parts.count == 1 ? parts[0] : .union(parts)
        }
        while true {
            guard let c = peek else { throw syntaxError("missing ] for the class opened at character \(start + 1)") }
            if c == "]", !first { i += 1; break }
            first = false
            if syntax == .oniguruma {
                if c == "[" {
                    if peek(1) == ":", let posix = parsePOSIXClass() { items.append(posix); continue }
                    items.append(try parseClass(flags))
                    continue
                }
                if c == "&", peek(1) == "&" {
                    i += 2
                    operands.append(flush())
                    continue
                }
            }
            let low: UInt32
            if c == "\\" {
                switch try parseEscape(inClass: true, flags: flags) {
                case .set(let term): items.append(term); continue
                case .scalar(let s): low = s.value
                case .assertion: throw syntaxError("an anchor cannot stand inside a character class (character \(start + 1))")
                }
            } else {
                i += 1
                low = c.value
            }
            if peek == "-", let next = peek(1), next != "]" {
                let dash = i
                i += 1
                let high: UInt32
                if next == "\\" {
                    guard case .scalar(let s) = try parseEscape(inClass: true, flags: flags) else {
                        throw syntaxError("bad character range at character \(dash + 1): a range must end in a single character")
                    }
                    high = s.value
                } else if syntax == .oniguruma, next == "[" {
                    throw syntaxError("bad character range at character \(dash + 1)")
                } else {
                    i += 1
                    high = next.value
                }
                guard low <= high else { throw syntaxError("bad character range at character \(dash + 1): its start is above its end") }
                scalars.append(low...high)
            } else {
                scalars.append(low...low)
            }
        }
        var term = flush()
        if !operands.isEmpty { term = .intersection(operands + [term]) }
        if flags.caseInsensitive, syntax == .python, term.isCaseSensitive { term = .caseInsensitive(term) }
        return negated ? .complement(term) : term
    }

    /// `[:name:]` or `[:^name:]` inside an Oniguruma class; nil (reading nothing) when it is not one.
    private mutating func parsePOSIXClass() -> SetTerm? {
        var j = i + 2
        var negate = false
        if j < pattern.count, pattern[j] == "^" { negate = true; j += 1 }
        let nameStart = j
        while j < pattern.count, pattern[j].isASCII, pattern[j].properties.isAlphabetic { j += 1 }
        guard j + 1 < pattern.count, pattern[j] == ":", pattern[j + 1] == "]" else { return nil }
        let name = String(String.UnicodeScalarView(pattern[nameStart..<j]))
        guard let term = PropertyName.posix[PropertyName.loose(name)] else { return nil }
        i = j + 2
        return negate ? .complement(term) : term
    }
}

// MARK: - Compiler

/// Turns a `RegexNode` into instructions for `LinearRegexProgram` (Thompson's construction, with
/// ordered splits so that the first branch is preferred, as in backtracking engines).
struct LinearRegexCompiler {
    private(set) var instructions: [RegexInstruction] = []
    private(set) var sets: [ScalarSet] = []
    private(set) var lookarounds: [Lookaround] = []
    let captures: Bool
    let syntax: LinearRegex.Syntax

    init(captures: Bool, syntax: LinearRegex.Syntax) {
        self.captures = captures
        self.syntax = syntax
    }

    /// The number of instructions `node` compiles to, saturating above the limit.
    static func size(of node: RegexNode, captures: Bool) -> Int {
        let cap = LinearRegex.maximumStates + 1
        func add(_ a: Int, _ b: Int) -> Int { min(cap, a + b) }
        func mul(_ a: Int, _ b: Int) -> Int { a == 0 || b == 0 ? 0 : (a > cap / b ? cap : min(cap, a * b)) }
        switch node {
        case .empty: return 0
        case .scalar, .set, .any, .assertion: return 1
        case .lookaround(let body, _, _): return add(1, add(size(of: body, captures: false), 1))
        case .group(let body, let capture): return add(size(of: body, captures: captures), capture != nil && captures ? 2 : 0)
        case .concatenation(let nodes): return nodes.reduce(0) { add($0, size(of: $1, captures: captures)) }
        case .alternation(let nodes): return nodes.reduce(2 * (nodes.count - 1)) { add($0, size(of: $1, captures: captures)) }
        case .repetition(let body, let lower, let upper, _):
            let s = size(of: body, captures: captures)
            if let upper { return add(mul(s, lower), mul(add(s, 1), upper - lower)) }
            return lower == 0 ? add(s, 2) : add(mul(s, lower), 1)
        }
    }

    mutating func emit(_ op: RegexOpcode, _ a: Int32 = 0, _ b: Int32 = 0) -> Int {
        instructions.append(RegexInstruction(op: op, a: a, b: b))
        return instructions.count - 1
    }

    private mutating func patch(_ at: Int, a: Int? = nil, b: Int? = nil) {
        if let a { instructions[at].a = Int32(a) }
        if let b { instructions[at].b = Int32(b) }
    }

    mutating func compile(_ node: RegexNode) throws(LinearRegexError) {
        switch node {
        case .empty:
            break
        case .scalar(let c, let caseInsensitive):
            if caseInsensitive, CaseFolding.orbit(of: c).count > 1 {
                _ = emit(.foldedScalar, Int32(bitPattern: CaseFolding.fold(c).value))
            } else {
                _ = emit(.scalar, Int32(bitPattern: c.value))
            }
        case .set(let term):
            sets.append(ScalarSet(term))
            _ = emit(.set, Int32(sets.count - 1))
        case .any(let dotAll):
            _ = emit(dotAll ? .any : .anyButNewline)
        case .assertion(let assertion):
            _ = emit(.assert, assertion.rawValue)
        case .group(let body, let capture):
            if let capture, captures {
                _ = emit(.save, Int32(2 * capture))
                try compile(body)
                _ = emit(.save, Int32(2 * capture + 1))
            } else {
                try compile(body)
            }
        case .concatenation(let nodes):
            for node in nodes { try compile(node) }
        case .alternation(let nodes):
            var jumps: [Int] = []
            for (k, node) in nodes.enumerated() {
                if k < nodes.count - 1 {
                    let split = emit(.split)
                    patch(split, a: split + 1)
                    try compile(node)
                    jumps.append(emit(.jump))
                    patch(split, b: instructions.count)
                } else {
                    try compile(node)
                }
            }
            for jump in jumps { patch(jump, a: instructions.count) }
        case .repetition(let body, let lower, let upper, let greedy):
            try compileRepetition(body, lower: lower, upper: upper, greedy: greedy)
        case .lookaround(let body, let behind, let negated):
            var sub = LinearRegexCompiler(captures: false, syntax: syntax)
            try sub.compile(body)
            _ = sub.emit(.match)
            let bounds = body.lengthBounds
            let program = LinearRegexProgram(instructions: sub.instructions, sets: sub.sets, lookarounds: [],
                                             slotCount: 2, syntax: syntax, captureCount: 0)
            lookarounds.append(Lookaround(program: program, behind: behind, negated: negated,
                                          minLength: bounds.min, maxLength: bounds.max ?? 0))
            _ = emit(.look, Int32(lookarounds.count - 1))
        }
    }

    private mutating func compileRepetition(_ body: RegexNode, lower: Int, upper: Int?, greedy: Bool) throws(LinearRegexError) {
        if let upper {
            for _ in 0..<lower { try compile(body) }
            // (?:x(?:x(?:x)?)?)?: each optional copy skips to the common end.
            var splits: [Int] = []
            for _ in lower..<upper {
                splits.append(emit(.split))
                let split = splits[splits.count - 1]
                patch(split, a: greedy ? split + 1 : -1, b: greedy ? -1 : split + 1)
                try compile(body)
            }
            let end = instructions.count
            for split in splits {
                if greedy { patch(split, b: end) } else { patch(split, a: end) }
            }
            return
        }
        if lower == 0 {
            // L: split(body, end); body; jump L; end:
            let split = emit(.split)
            try compile(body)
            _ = emit(.jump, Int32(split))
            let end = instructions.count
            patch(split, a: greedy ? split + 1 : end, b: greedy ? end : split + 1)
            return
        }
        for _ in 0..<(lower - 1) { try compile(body) }
        // L: body; split(L, end)
        let loop = instructions.count
        try compile(body)
        let split = emit(.split)
        patch(split, a: greedy ? loop : split + 1, b: greedy ? split + 1 : loop)
    }
}
