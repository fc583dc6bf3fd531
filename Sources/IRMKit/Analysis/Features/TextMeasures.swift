import Foundation

/// One text, scanned once: its Unicode scalars, its nltk-wordpunct token spans, and its word tokens
/// (the `\w+` runs) lower-cased. Every text feature reads from this, so a response is scanned once
/// however many features are computed.
struct TextProfile {
    let scalars: [Unicode.Scalar]
    let spans: [TokenSpan]
    /// The `\w+` runs, lower-cased with Swift's full Unicode `lowercased()`, in order.
    let words: [String]

    init(_ text: String) {
        scalars = Array(text.unicodeScalars)
        spans = WordPunctTokenizer.spans(of: scalars)
        var words: [String] = []
        words.reserveCapacity(spans.count)
        for span in spans where span.isWord {
            words.append(WordPunctTokenizer.lowercasedString(scalars[span.start..<span.end]))
        }
        self.words = words
    }
}

/// Repetition measures over token sequences.
public enum RepetitionMeasures {
    /// distinct-n (Li et al. 2016): the number of distinct n-grams divided by the number of
    /// n-grams, or 1 when the sequence has fewer than n tokens (no n-gram, so nothing repeats).
    public static func distinctRatio(_ tokens: [String], n: Int) -> Double {
        guard n >= 1, tokens.count >= n else { return 1 }
        let total = tokens.count - n + 1
        let (ids, distinct) = interned(tokens)
        if n == 1 { return Double(distinct) / Double(total) }
        return distinctRatio(ids: ids, n: n)
    }

    /// distinct-n over interned token ids (each id < ids.count).
    static func distinctRatio(ids: [Int32], n: Int) -> Double {
        guard n >= 1, ids.count >= n else { return 1 }
        let total = ids.count - n + 1
        if n <= 3, ids.count < (1 << 21) {
            // Up to three ids below 2^21 pack exactly into one UInt64.
            var seen = Set<UInt64>(minimumCapacity: total)
            for i in 0..<total {
                var key: UInt64 = 0
                for k in 0..<n { key = key << 21 | UInt64(UInt32(bitPattern: ids[i + k])) }
                seen.insert(key)
            }
            return Double(seen.count) / Double(total)
        }
        var seen = Set<NGramKey>(minimumCapacity: total)
        for i in 0..<total { seen.insert(NGramKey(ids[i..<(i + n)])) }
        return Double(seen.count) / Double(total)
    }

    /// The largest n such that some n-gram of `tokens` occurs at least twice (occurrences may
    /// overlap: "a a a" repeats the 2-gram "a a"), or 0 when no token repeats.
    ///
    /// Binary search on n (a repeated n-gram contains a repeated (n-1)-gram). Each step hashes the
    /// n-grams with a rolling polynomial hash and confirms a hash hit by comparing the ids, falling
    /// back to an exact set on a genuine collision, so the answer is exact; O(L log L) expected
    /// time for L tokens.
    public static func longestRepeatedNGram(_ tokens: [String]) -> Int {
        longestRepeatedNGram(ids: interned(tokens).ids)
    }

    static func longestRepeatedNGram(ids: [Int32]) -> Int {
        guard ids.count >= 2, Set(ids).count < ids.count else { return 0 }
        var lo = 1, hi = ids.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if hasRepeatedNGram(ids, n: mid) { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    private static func hasRepeatedNGram(_ ids: [Int32], n: Int) -> Bool {
        guard n >= 1, ids.count > n else { return false }
        let base: UInt64 = 0x9E37_79B9_7F4A_7C15
        var power: UInt64 = 1
        for _ in 0..<n { power = power &* base }
        @inline(__always) func digit(_ k: Int) -> UInt64 { UInt64(UInt32(bitPattern: ids[k])) &+ 1 }
        var hash: UInt64 = 0
        for k in 0..<n { hash = hash &* base &+ digit(k) }
        var firstStart: [UInt64: Int] = [:]
        firstStart.reserveCapacity(ids.count - n + 1)
        var collided = false
        var i = 0
        while true {
            if let j = firstStart[hash] {
                if ids[j..<(j + n)].elementsEqual(ids[i..<(i + n)]) { return true }
                collided = true
            } else {
                firstStart[hash] = i
            }
            guard i + n < ids.count else { break }
            hash = hash &* base &+ digit(i + n) &- power &* digit(i)
            i += 1
        }
        guard collided else { return false }
        var seen = Set<NGramKey>(minimumCapacity: ids.count - n + 1)
        for k in 0...(ids.count - n) where !seen.insert(NGramKey(ids[k..<(k + n)])).inserted {
            return true
        }
        return false
    }

    /// Each token replaced by the index of its first distinct occurrence, and the number of
    /// distinct tokens.
    static func interned(_ tokens: [String]) -> (ids: [Int32], distinct: Int) {
        var table: [String: Int32] = [:]
        table.reserveCapacity(tokens.count)
        let ids = tokens.map { token in
            if let id = table[token] { return id }
            let id = Int32(table.count)
            table[token] = id
            return id
        }
        return (ids, table.count)
    }

    /// An n-gram of interned token ids, hashed and compared exactly.
    private struct NGramKey: Hashable {
        let ids: ArraySlice<Int32>
        init(_ ids: ArraySlice<Int32>) { self.ids = ids }
        static func == (a: NGramKey, b: NGramKey) -> Bool { a.ids.elementsEqual(b.ids) }
        func hash(into hasher: inout Hasher) {
            hasher.combine(ids.count)
            for id in ids { hasher.combine(id) }
        }
    }
}

/// Markdown-style layout counts. Lines are separated by "\n" (a "\r" before it is whitespace).
/// Lines inside fenced code blocks are not counted as list items, numbered items or headers.
public struct FormatCounts: Equatable, Sendable {
    /// Lines starting (after spaces/tabs) with "-", "*", "+" or "•" and then a space or tab.
    public var listItems = 0
    /// Lines starting (after spaces/tabs) with 1–9 digits, then "." or ")", then a space or tab.
    public var numberedItems = 0
    /// Lines starting (after at most 3 spaces) with 1–6 "#" and then a space or tab.
    public var headers = 0
    /// "**text**" spans: scanning left to right, an opening "**" closed by the next "**" on the same
    /// line with at least one character between them; the scan resumes after the closing "**".
    /// ("__text__" is not counted: it collides with identifiers such as `__init__`.)
    public var boldSpans = 0
    /// Fenced code blocks: lines starting (after at most 3 spaces) with "```" or "~~~" are fences;
    /// blocks = ceil(fences / 2), so an unclosed fence still counts as a block.
    public var codeBlocks = 0
    /// The number of "\n" characters.
    public var lineBreaks = 0
    /// Maximal runs of lines that are not blank (blank: only whitespace).
    public var paragraphs = 0

    public init() {}

    public init(_ text: String) { self.init(scalars: Array(text.unicodeScalars)) }

    init(scalars: [Unicode.Scalar]) {
        var fences = 0
        var inFence = false
        var previousBlank = true
        var lineStart = 0
        let n = scalars.count
        while lineStart <= n {
            var lineEnd = lineStart
            while lineEnd < n, scalars[lineEnd] != "\n" { lineEnd += 1 }
            let line = scalars[lineStart..<lineEnd]
            var indent = line.startIndex
            while indent < line.endIndex, line[indent] == " " || line[indent] == "\t" { indent += 1 }
            let blank = line[indent...].allSatisfy { WordPunctClass.of($0) == .space }
            if !blank && previousBlank { paragraphs += 1 }
            previousBlank = blank
            let content = line[indent...]
            let smallIndent = line[line.startIndex..<indent].allSatisfy { $0 == " " } && indent - line.startIndex <= 3
            if smallIndent, Self.startsWith(content, "```") || Self.startsWith(content, "~~~") {
                fences += 1
                inFence.toggle()
            } else if !inFence {
                if Self.isBullet(content) { listItems += 1 }
                if Self.isNumbered(content) { numberedItems += 1 }
                if smallIndent, Self.isHeader(content) { headers += 1 }
            }
            if lineEnd < n { lineBreaks += 1 }
            lineStart = lineEnd + 1
        }
        codeBlocks = (fences + 1) / 2
        boldSpans = Self.countBold(scalars)
    }

    private static func startsWith(_ s: ArraySlice<Unicode.Scalar>, _ prefix: String) -> Bool {
        s.starts(with: prefix.unicodeScalars)
    }

    private static func isBlankOrTab(_ s: ArraySlice<Unicode.Scalar>, at i: Int) -> Bool {
        i < s.endIndex && (s[i] == " " || s[i] == "\t")
    }

    private static func isBullet(_ s: ArraySlice<Unicode.Scalar>) -> Bool {
        guard let first = s.first, first == "-" || first == "*" || first == "+" || first == "•" else { return false }
        return isBlankOrTab(s, at: s.startIndex + 1)
    }

    private static func isNumbered(_ s: ArraySlice<Unicode.Scalar>) -> Bool {
        var i = s.startIndex
        while i < s.endIndex, i - s.startIndex < 9, ("0"..."9").contains(s[i]) { i += 1 }
        guard i > s.startIndex, i < s.endIndex, s[i] == "." || s[i] == ")" else { return false }
        return isBlankOrTab(s, at: i + 1)
    }

    private static func isHeader(_ s: ArraySlice<Unicode.Scalar>) -> Bool {
        var i = s.startIndex
        while i < s.endIndex, s[i] == "#" { i += 1 }
        let hashes = i - s.startIndex
        return hashes >= 1 && hashes <= 6 && isBlankOrTab(s, at: i)
    }

    private static func countBold(_ s: [Unicode.Scalar]) -> Int {
        var count = 0
        var i = 0
        let n = s.count
        while i + 1 < n {
            guard s[i] == "*", s[i + 1] == "*" else { i += 1; continue }
            // The closing "**" must be on the same line, after at least one character of text.
            var close = -1
            var k = i + 2
            while k + 1 < n, s[k] != "\n" {
                if k >= i + 3, s[k] == "*", s[k + 1] == "*" { close = k; break }
                k += 1
            }
            if close >= 0 {
                count += 1
                i = close + 2
            } else {
                i += 2
            }
        }
        return count
    }
}

/// Sentence splitting, syllables and the Flesch reading ease.
public enum Readability {
    @inline(__always)
    static func isTerminator(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x2E, 0x21, 0x3F, 0x2026, 0x3002, 0xFF01, 0xFF1F: true  // . ! ? … 。 ！ ？
        default: false
        }
    }

    @inline(__always)
    static func isCloser(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x22, 0x27, 0x201D, 0x2019, 0x29, 0x5D, 0x7D, 0x2A, 0x5F: true  // " ' ” ’ ) ] } * _
        default: false
        }
    }

    /// The number of sentences: the text is cut after every run of terminators (". ! ? … 。 ！ ？")
    /// that is followed, after optional closing quotes/brackets/emphasis (" ' ” ’ ) ] } * _), by
    /// whitespace or the end of the text, and at every "\n"; the pieces that contain at least one
    /// word character are sentences. "3.14" and "Hello.World" are not cut; "e.g. this" is.
    public static func sentenceCount(_ text: String) -> Int { sentenceCount(Array(text.unicodeScalars)) }

    static func sentenceCount(_ s: [Unicode.Scalar]) -> Int {
        var count = 0
        var hasWord = false
        var i = 0
        let n = s.count
        while i < n {
            let c = s[i]
            if c == "\n" {
                if hasWord { count += 1 }
                hasWord = false
                i += 1
            } else if isTerminator(c) {
                var j = i
                while j < n, isTerminator(s[j]) { j += 1 }
                var k = j
                while k < n, isCloser(s[k]) { k += 1 }
                if k == n || WordPunctClass.of(s[k]) == .space {
                    if hasWord { count += 1 }
                    hasWord = false
                }
                i = k
            } else {
                if WordPunctClass.of(c) == .word { hasWord = true }
                i += 1
            }
        }
        if hasWord { count += 1 }
        return count
    }

    /// A syllable estimate for a lower-cased word: the number of maximal runs of the letters
    /// a, e, i, o, u, y; minus one for a final silent "e" (the word ends in "e", not in consonant +
    /// "le", and has more than one run); at least 1. Letters outside ASCII and digits are consonants,
    /// so a number or a CJK word counts 1.
    public static func syllables(_ word: String) -> Int {
        @inline(__always) func isVowel(_ b: UInt8) -> Bool {
            switch b {
            case 0x61, 0x65, 0x69, 0x6F, 0x75, 0x79: true  // a e i o u y
            default: false
            }
        }
        var runs = 0
        var inRun = false
        var last: UInt8 = 0, secondLast: UInt8 = 0, thirdLast: UInt8 = 0
        var n = 0
        for b in word.utf8 {
            let v = isVowel(b)
            if v && !inRun { runs += 1 }
            inRun = v
            thirdLast = secondLast
            secondLast = last
            last = b
            n += 1
        }
        if runs > 1, last == 0x65 {
            let consonantLE = n >= 3 && secondLast == 0x6C && !isVowel(thirdLast)
            if !consonantLE { runs -= 1 }
        }
        return max(runs, 1)
    }

    /// Flesch reading ease, 206.835 − 1.015·(W/S) − 84.6·(Y/W), for W word tokens (`\w+` runs),
    /// S sentences (`sentenceCount`) and Y syllables (the sum of `syllables` over the words).
    /// 0 when the text has no word (the formula is undefined there).
    public static func fleschReadingEase(words: [String], sentences: Int) -> Double {
        guard !words.isEmpty, sentences > 0 else { return 0 }
        let w = Double(words.count)
        let y = Double(words.reduce(0) { $0 + syllables($1) })
        return 206.835 - 1.015 * (w / Double(sentences)) - 84.6 * (y / w)
    }
}

/// How a response ends.
public enum Ending {
    static let cleanEnds: Set<Unicode.Scalar> = [
        ".", "!", "?", "\u{2026}", "\u{3002}", "\u{FF01}", "\u{FF1F}",
        ")", "]", "}", "\"", "'", "\u{201D}", "\u{2019}", "`", "*", ">",
    ]

    /// 1 when the last non-whitespace character is sentence-final punctuation (". ! ? … 。 ！ ？"),
    /// a closing bracket or quote (") ] } \" ' ” ’"), a backtick (a closed code fence or span), "*"
    /// (closing emphasis), ">" (a closing tag) or a symbol of category So (emoji such as 😊);
    /// otherwise 0, which includes a response cut off mid-sentence and the empty response.
    public static func endsCleanly(_ text: String) -> Bool { endsCleanly(Array(text.unicodeScalars)) }

    static func endsCleanly(_ s: [Unicode.Scalar]) -> Bool {
        var i = s.count - 1
        while i >= 0, WordPunctClass.of(s[i]) == .space || s[i] == "\u{FE0F}" { i -= 1 }
        guard i >= 0 else { return false }
        let last = s[i]
        return cleanEnds.contains(last) || last.properties.generalCategory == .otherSymbol
    }
}

/// Fixed phrase lists for tone, matched case-insensitively on whole words.
///
/// A phrase and a text are both reduced to their lower-cased `\w+` runs, so matching respects word
/// boundaries and ignores the punctuation between words ("I can't" is the run sequence
/// i, can, t, and so is "I can’t"). Occurrences are counted left to right, taking the longest
/// phrase that starts at a position and resuming after it, so they never overlap.
public struct PhraseList: Sendable {
    public let phrases: [String]
    fileprivate let byFirstWord: [String: [[String]]]

    public init(_ phrases: [String]) {
        self.phrases = phrases
        var index: [String: [[String]]] = [:]
        for phrase in phrases {
            let words = TextProfile(phrase).words
            guard let first = words.first else { continue }
            index[first, default: []].append(words)
        }
        for key in index.keys { index[key]?.sort { $0.count > $1.count } }
        byFirstWord = index
    }

    /// The number of non-overlapping occurrences in `words` (lower-cased `\w+` runs).
    public func count(in words: [String]) -> Int {
        PhraseCounter([self]).counts(in: words)[0]
    }

    public func count(in text: String) -> Int { count(in: TextProfile(text).words) }

    public static let refusal = PhraseList([
        "i can't help", "i cannot help", "i can't assist", "i cannot assist", "i can't provide",
        "i cannot provide", "i can't do that", "i cannot do that", "i can't comply", "i cannot comply",
        "i won't", "i will not", "i'm unable", "i am unable", "i'm not able to", "i am not able to",
        "i must decline", "i have to decline", "i refuse", "as an ai", "as a language model",
        "i'm not comfortable", "i am not comfortable", "i don't feel comfortable",
        "i do not feel comfortable", "against my guidelines",
    ])

    public static let apology = PhraseList([
        "sorry", "apologize", "apologise", "apologies", "apologizing", "apologising",
        "i regret", "forgive me", "pardon me",
    ])

    public static let hedging = PhraseList([
        "might", "may", "maybe", "perhaps", "possibly", "probably", "likely", "unlikely",
        "seems", "seem", "appears", "i think", "i believe", "i guess", "i suppose", "not sure",
        "not certain", "could be", "generally", "typically", "usually", "somewhat", "arguably",
        "it depends", "in some cases", "to some extent", "roughly", "approximately",
    ])

    public static let firstPerson = PhraseList([
        "i", "me", "my", "mine", "myself", "we", "us", "our", "ours", "ourselves",
    ])

    public static let secondPerson = PhraseList([
        "you", "your", "yours", "yourself", "yourselves",
    ])
}

/// Several phrase lists counted in one pass, with one dictionary lookup per word: each list keeps
/// its own left-to-right, longest-first, non-overlapping scan (a list's scan resumes after its own
/// matches only), so the counts equal those of `PhraseList.count(in:)` list by list.
struct PhraseCounter: Sendable {
    /// For each first word: (list index, phrase words), longest phrases first within a list.
    private let candidates: [String: [(list: Int, words: [String])]]
    private let listCount: Int

    init(_ lists: [PhraseList]) {
        var table: [String: [(list: Int, words: [String])]] = [:]
        for (l, list) in lists.enumerated() {
            for (first, phrases) in list.byFirstWord {
                table[first, default: []].append(contentsOf: phrases.map { (l, $0) })
            }
        }
        candidates = table
        listCount = lists.count
    }

    func counts(in words: [String]) -> [Int] {
        var counts = [Int](repeating: 0, count: listCount)
        var resume = [Int](repeating: 0, count: listCount)
        for i in words.indices {
            guard let options = candidates[words[i]] else { continue }
            for option in options where resume[option.list] <= i {
                let end = i + option.words.count
                if end <= words.count, words[i..<end].elementsEqual(option.words) {
                    counts[option.list] += 1
                    resume[option.list] = end
                }
            }
        }
        return counts
    }

    /// refusal, apology, hedging, first person, second person.
    static let tone = PhraseCounter([.refusal, .apology, .hedging, .firstPerson, .secondPerson])
}

/// Counts of maximal runs of question or exclamation marks ("??" is one question).
enum PunctuationRuns {
    /// (runs of "?" or "？", runs of "!" or "！").
    static func count(_ s: [Unicode.Scalar]) -> (questions: Int, exclamations: Int) {
        var questions = 0, exclamations = 0
        var previous: UInt32 = 0
        for c in s {
            let v = c.value
            let kind: UInt32 = (v == 0x3F || v == 0xFF1F) ? 1 : (v == 0x21 || v == 0xFF01) ? 2 : 0
            if kind == 1 && previous != 1 { questions += 1 }
            if kind == 2 && previous != 2 { exclamations += 1 }
            previous = kind
        }
        return (questions, exclamations)
    }
}
