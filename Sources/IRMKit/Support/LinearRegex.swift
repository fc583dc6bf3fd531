/// A regular expression run on a matcher with a guaranteed time bound, for patterns that come from
/// untrusted files (tokenizer.json `Split`/`Replace` patterns, features-file regexes, PEFT
/// `target_modules`).
///
/// Backtracking engines (Oniguruma, ICU, Python `re`, Swift `Regex`) take exponential time on
/// patterns such as `(a+)+$`: 9.6 s on 16 characters. This one is a Pike VM (a Thompson NFA simulated
/// one position at a time, as in RE2): each search visits every (instruction, position) pair at most
/// once, so it takes O(m × n) time for m instructions and n scalars, whatever the pattern. Finding
/// all matches stays O(m × n) in total, too: when a search for the leftmost-first match has to look
/// past the end of its match (higher-priority threads still alive that then die), the pairs it saw
/// there cannot lead to a match from any start, so they are remembered and later searches skip them
/// (caveat: the memory for this is capped at 32 MiB; past it a pathological pattern on a very long
/// text can cost O(m × n) per match again, never more).
///
/// Semantics are leftmost-first, like the backtracking engines: alternatives are tried in order,
/// greedy quantifiers prefer more, lazy ones less, so the matches have the same spans as Oniguruma's
/// or Python's. Positions are Unicode scalar indices. Two dialects are read (`Syntax`).
///
/// Supported: literals and escapes (`\n \r \t \f \v \a \e \0oo \ooo \xHH \x{H…} \uHHHH`, Python's
/// `\UHHHHHHHH`), `.`, classes with ranges, negation and escapes (Oniguruma also nests classes,
/// intersects with `&&` and reads `[:alpha:]`), `\d \D \s \S \w \W \h \H`, `\p{…}`/`\P{…}`/`\p{^…}`
/// (general categories natively; scripts, blocks and other properties from ICU), groups `( )`,
/// `(?: )`, named groups, `(?i)`, `(?i: )`, `(?-i: )`, alternation, `* + ? {n} {n,} {n,m} {,m}` and
/// their lazy forms, anchors `^ $ \A \z \Z \b \B`, and lookahead/lookbehind `(?= ) (?! ) (?<= ) (?<! )`
/// whose body matches at most `maximumLookaroundLength` scalars (checked at each position in
/// O(body) time; no lookaround inside another).
///
/// Refused at compile time with a `LinearRegexError` naming the construct: backreferences,
/// possessive quantifiers, atomic groups, recursion and subroutine calls, conditionals, unbounded
/// lookarounds, `\G`, `\K`, `\X`, `\R`, and patterns over `maximumStates` instructions (counted
/// repetitions are expanded, so `(a{100}){100}` is 10,000).
///
/// Case-insensitive matching uses simple case folding (one scalar to one: `ſ`, `s` and `S` match
/// each other, `K` (Kelvin) matches `k`); multi-scalar folds (`ß` against `ss`) are not applied.
public struct LinearRegex: Sendable, CustomStringConvertible {
    /// The dialect of a pattern.
    public enum Syntax: String, Sendable {
        /// Oniguruma's Ruby syntax, which Hugging Face `tokenizers` compiles tokenizer.json patterns
        /// with: `^`/`$` match at line starts and ends, `.` excludes only `\n`, `(?m)` lets `.` match
        /// `\n`, `(?i)` in a group applies to the rest of the group (alternatives included), `\w` is
        /// Alphabetic, marks, Nd and Pc (and ² ³ ¹ ¼ ½ ¾ outside classes), `(?i)` does not fold
        /// `\p{…}`, and an empty match right after the previous match is skipped (the `onig` crate's
        /// iteration).
        case oniguruma
        /// Python's syntax with the `regex` module's Unicode classes (features files, PEFT configs):
        /// `^` and `$` match at the text's start and at its end or before a final `\n` (`(?m)` makes them
        /// line anchors), `.` excludes only `\n` (`(?s)` includes it), flags such as `(?i)` stand at the
        /// start, `\w` is Unicode TR18's word class (Alphabetic, marks, Nd, Pc, U+200C/U+200D), `(?i)`
        /// folds property classes too, and an empty match may follow a non-empty one.
        case python
    }

    /// The most instructions a compiled pattern may have.
    public static let maximumStates = 10_000
    /// The longest match a lookahead or lookbehind body may have, in scalars.
    public static let maximumLookaroundLength = 64
    /// The largest count allowed in `{n,m}` (Oniguruma's own limit).
    public static let maximumRepetition = 100_000

    public let source: String
    public let syntax: Syntax
    public let caseInsensitive: Bool
    let program: LinearRegexProgram

    /// Compiles `source`. With `captures`, groups are recorded for `wholeMatch` and `prefixMatch`;
    /// without, only the whole match is (cheaper).
    public init(_ source: String, syntax: Syntax, caseInsensitive: Bool = false, captures: Bool = false) throws(LinearRegexError) {
        var parser = LinearRegexParser(source, syntax: syntax)
        let tree = try parser.parse(caseInsensitive: caseInsensitive)
        if LinearRegexCompiler.size(of: tree, captures: captures) + 2 > Self.maximumStates {
            throw LinearRegexError("the pattern needs more than \(Self.maximumStates) matcher states (a repetition {n,m} copies what it repeats m times); irm refuses larger patterns so that matching stays fast", refusal: true)
        }
        var compiler = LinearRegexCompiler(captures: captures, syntax: syntax)
        try compiler.compileProgram(tree)
        let groups = captures ? parser.captureCount : 0
        self.program = LinearRegexProgram(instructions: compiler.instructions, sets: compiler.sets, lookarounds: compiler.lookarounds,
                                          slotCount: 2 * (groups + 1), syntax: syntax, captureCount: groups)
        self.source = source
        self.syntax = syntax
        self.caseInsensitive = caseInsensitive
    }

    public var description: String { source }

    /// The number of capture groups recorded (0 unless compiled with `captures`).
    public var captureCount: Int { program.captureCount }

    /// Calls `body` with each match in `scalars[range]`, left to right and without overlaps. The range
    /// is the whole subject: anchors and `\b` see its ends as the text's ends. Empty matches follow
    /// the dialect's iteration rule (see `Syntax`).
    public func forEachMatch(in scalars: [Unicode.Scalar], range: Range<Int>, _ body: (Range<Int>) -> Void) {
        scalars.withUnsafeBufferPointer { text in
            var vm = PikeVM(program: program, text: text, lower: range.lowerBound, upper: range.upperBound, memo: true)
            switch syntax {
            case .python:
                // After an empty match at p the next match may start at p but must not be empty.
                var position = range.lowerBound
                var forbidEmptyAt = -1
                while position <= range.upperBound,
                      vm.search(from: position, lastStart: .max, requiredEnd: -1, forbidEmptyAt: forbidEmptyAt, stopAtFirst: false) {
                    let match = vm.matchStart..<vm.matchEnd
                    body(match)
                    forbidEmptyAt = match.isEmpty ? match.upperBound : -1
                    position = match.upperBound
                }
            case .oniguruma:
                // The onig crate's `find_iter`: an empty match where the previous match ended is dropped
                // and the search moves on by one scalar.
                var position = range.lowerBound
                var previousEnd = -1
                while position <= range.upperBound,
                      vm.search(from: position, lastStart: .max, requiredEnd: -1, forbidEmptyAt: -1, stopAtFirst: false) {
                    let match = vm.matchStart..<vm.matchEnd
                    if match.isEmpty, match.upperBound == previousEnd {
                        position += 1
                        continue
                    }
                    body(match)
                    position = match.upperBound
                    previousEnd = match.upperBound
                }
            }
        }
    }

    /// The matches in `scalars[range]`, as `forEachMatch` finds them.
    public func matches(in scalars: [Unicode.Scalar], range: Range<Int>) -> [Range<Int>] {
        var result: [Range<Int>] = []
        forEachMatch(in: scalars, range: range) { result.append($0) }
        return result
    }

    /// The matches in `text`, as ranges of Unicode scalar offsets.
    public func matches(in text: String) -> [Range<Int>] {
        let scalars = Array(text.unicodeScalars)
        return matches(in: scalars, range: 0..<scalars.count)
    }

    /// The number of non-overlapping matches in `text`.
    public func numberOfMatches(in text: String) -> Int {
        let scalars = Array(text.unicodeScalars)
        var count = 0
        forEachMatch(in: scalars, range: 0..<scalars.count) { _ in count += 1 }
        return count
    }

    /// Whether the pattern matches the empty text.
    public var matchesEmptyText: Bool { !matches(in: "").isEmpty }

    /// Python's `re.fullmatch`: the whole match and the groups (scalar ranges, nil for a group that
    /// did not take part) of the preferred match spanning all of `text`, or nil when there is none.
    public func wholeMatch(_ text: String) -> [Range<Int>?]? {
        anchoredMatch(text, toEnd: true)
    }

    /// Python's `re.match`: the preferred match starting at the start of `text`, with its groups.
    public func prefixMatch(_ text: String) -> [Range<Int>?]? {
        anchoredMatch(text, toEnd: false)
    }

    private func anchoredMatch(_ text: String, toEnd: Bool) -> [Range<Int>?]? {
        let scalars = Array(text.unicodeScalars)
        return scalars.withUnsafeBufferPointer { buffer -> [Range<Int>?]? in
            var vm = PikeVM(program: program, text: buffer, lower: 0, upper: scalars.count, memo: false)
            guard vm.search(from: 0, lastStart: 0, requiredEnd: toEnd ? scalars.count : -1, forbidEmptyAt: -1, stopAtFirst: false) else { return nil }
            return (0...program.captureCount).map { group in
                let start = vm.matchSlots[2 * group], end = vm.matchSlots[2 * group + 1]
                return start >= 0 && end >= start ? start..<end : nil
            }
        }
    }
}

/// Why a pattern was not compiled: malformed syntax, or a construct irm refuses (`isRefusal`). The
/// message names the construct and its position in the pattern; callers put the file and field in
/// front.
public struct LinearRegexError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    /// True for constructs refused by design (backreferences, possessive quantifiers, too many states…)
    /// rather than malformed syntax.
    public let isRefusal: Bool

    init(_ message: String, refusal: Bool) {
        self.message = message
        self.isRefusal = refusal
    }

    public var description: String { message }
}

// MARK: - Program

enum RegexOpcode: UInt8, Sendable {
    /// Consumes a scalar equal to `a`.
    case scalar
    /// Consumes a scalar whose simple case fold is `a`.
    case foldedScalar
    /// Consumes a scalar in `sets[a]`.
    case set
    case any
    case anyButNewline
    /// Continues at `a` (preferred) and at `b`.
    case split
    case jump
    /// Records the position in capture slot `a`.
    case save
    /// Continues when `RegexAssertion(rawValue: a)` holds.
    case assert
    /// Continues when `lookarounds[a]` holds.
    case look
    case match
}

struct RegexInstruction: Sendable {
    var op: RegexOpcode
    var a: Int32
    var b: Int32
}

/// A lookahead or lookbehind: its body compiled on its own, and the lengths its matches can have.
struct Lookaround: Sendable {
    let program: LinearRegexProgram
    let behind: Bool
    let negated: Bool
    let minLength: Int
    let maxLength: Int
    /// The body's only instruction when it is one scalar test (`(?!\S)`), checked without a search.
    let singleScalarTest: RegexInstruction?

    init(program: LinearRegexProgram, behind: Bool, negated: Bool, minLength: Int, maxLength: Int) {
        self.program = program
        self.behind = behind
        self.negated = negated
        self.minLength = minLength
        self.maxLength = maxLength
        let code = program.code
        singleScalarTest = code.count == 2 && code[1].op == .match && [.scalar, .foldedScalar, .set, .any, .anyButNewline].contains(code[0].op) ? code[0] : nil
    }
}

/// A compiled pattern: instructions, the sets and lookarounds they refer to, and a prefilter.
///
/// `@unchecked Sendable`: everything is immutable after `init`; the instruction buffer is allocated
/// once and only read.
final class LinearRegexProgram: @unchecked Sendable {
    let code: UnsafeMutableBufferPointer<RegexInstruction>
    let sets: [ScalarSet]
    let lookarounds: [Lookaround]
    /// Capture slots per thread: 2 × (groups + 1); slot 0 is the match start.
    let slotCount: Int
    let captureCount: Int
    /// `\w` for `\b`, as the dialect defines it.
    let wordSet: ScalarSet
    /// The scalars a match can start with; nil when any scalar can, or when a match can be empty.
    let firstSet: ScalarSet?
    /// The consuming and `match` instructions reachable from the start without consuming, in priority
    /// order, when that does not depend on the position (no anchor or lookaround on the way) and
    /// there are no capture groups; nil otherwise.
    let initialThreads: [Int]?

    init(instructions: [RegexInstruction], sets: [ScalarSet], lookarounds: [Lookaround], slotCount: Int,
         syntax: LinearRegex.Syntax, captureCount: Int) {
        code = UnsafeMutableBufferPointer.allocate(capacity: instructions.count)
        _ = code.initialize(from: instructions)
        self.sets = sets
        self.lookarounds = lookarounds
        self.slotCount = slotCount
        self.captureCount = captureCount
        switch syntax {
        case .oniguruma: wordSet = ScalarSet(.union([PropertyName.word, .scalars([0xB2, 0xB3, 0xB9, 0xBC, 0xBD, 0xBE])]))
        case .python: wordSet = ScalarSet(.union([PropertyName.word, .property(.joinControl)]))
        }
        firstSet = Self.firstSet(instructions, sets: sets)
        initialThreads = slotCount == 2 ? Self.startClosure(instructions) : nil
    }

    private static func startClosure(_ code: [RegexInstruction]) -> [Int]? {
        var visited = Set<Int>()
        var result: [Int] = []
        var stack = [0]
        while let top = stack.popLast() {
            var pc = top
            while pc < code.count, visited.insert(pc).inserted {
                let ins = code[pc]
                switch ins.op {
                case .jump: pc = Int(ins.a)
                case .split: stack.append(Int(ins.b)); pc = Int(ins.a)
                case .save: pc += 1
                case .assert, .look: return nil
                default: result.append(pc); pc = code.count
                }
            }
        }
        return result
    }

    deinit { code.deallocate() }

    private static func firstSet(_ code: [RegexInstruction], sets: [ScalarSet]) -> ScalarSet? {
        var visited = Set<Int>()
        var stack = [0]
        var terms: [SetTerm] = []
        while let pc = stack.popLast() {
            guard pc < code.count, visited.insert(pc).inserted else { continue }
            let ins = code[pc]
            switch ins.op {
            case .match, .any, .anyButNewline: return nil
            case .jump: stack.append(Int(ins.a))
            case .split: stack.append(Int(ins.b)); stack.append(Int(ins.a))
            case .save, .assert, .look: stack.append(pc + 1)
            case .scalar: terms.append(.scalars([UInt32(bitPattern: ins.a)]))
            case .foldedScalar: terms.append(.caseInsensitive(.scalars([UInt32(bitPattern: ins.a)])))
            case .set: terms.append(sets[Int(ins.a)].term)
            }
        }
        let set = ScalarSet(.union(terms))
        return set.coversAllASCII ? nil : set
    }

    /// Whether the consuming instruction `ins` accepts `c` (false for the other opcodes).
    @inline(__always)
    func accepts(_ ins: RegexInstruction, _ c: Unicode.Scalar) -> Bool {
        switch ins.op {
        case .scalar: return c.value == UInt32(bitPattern: ins.a)
        case .foldedScalar: return CaseFolding.fold(c).value == UInt32(bitPattern: ins.a)
        case .set: return sets[Int(ins.a)].contains(c)
        case .any: return true
        case .anyButNewline: return c != "\n"
        default: return false
        }
    }
}

extension LinearRegexCompiler {
    /// `save 0; pattern; match` (the match's end is the position where `match` is reached).
    mutating func compileProgram(_ tree: RegexNode) throws(LinearRegexError) {
        _ = emit(.save, 0)
        try compile(tree)
        _ = emit(.match)
    }
}

// MARK: - Pike VM

/// The threads of one position: a sparse set of instruction indices in priority order, each with
/// its capture slots. The buffers belong to a `PikeStorage`.
private struct ThreadList {
    let dense: UnsafeMutablePointer<Int32>
    let sparse: UnsafeMutablePointer<Int32>
    let slots: UnsafeMutablePointer<Int>
    var count = 0

    @inline(__always)
    func contains(_ pc: Int) -> Bool {
        let d = Int(sparse[pc])
        return d < count && dense[d] == Int32(truncatingIfNeeded: pc)
    }

    @inline(__always)
    mutating func insert(_ pc: Int) -> Int {
        sparse[pc] = Int32(truncatingIfNeeded: count)
        dense[count] = Int32(truncatingIfNeeded: pc)
        count += 1
        return count - 1
    }
}

/// An exploration frame: an instruction to explore, or (when `slot >= 0`) a capture slot to restore.
private struct Frame {
    var pc: Int32
    var slot: Int32
    var value: Int
}

/// The raw buffers of one `PikeVM`, sized from the program once and freed with it.
private final class PikeStorage {
    let size: Int
    let slotCount: Int
    let dense: UnsafeMutablePointer<Int32>
    let sparse: UnsafeMutablePointer<Int32>
    let slots: UnsafeMutablePointer<Int>
    let scratch: UnsafeMutablePointer<Int>
    let matchSlots: UnsafeMutablePointer<Int>
    /// Each instruction is explored at most once per list and pushes at most one frame, so this bounds the stack.
    let frames: UnsafeMutablePointer<Frame>

    init(size: Int, slotCount: Int) {
        self.size = size
        self.slotCount = slotCount
        dense = .allocate(capacity: 2 * size)
        sparse = .allocate(capacity: 2 * size)
        sparse.initialize(repeating: 0, count: 2 * size)
        slots = .allocate(capacity: 2 * size * slotCount)
        scratch = .allocate(capacity: slotCount)
        matchSlots = .allocate(capacity: slotCount)
        matchSlots.initialize(repeating: -1, count: slotCount)
        frames = .allocate(capacity: 2 * size + 2)
    }

    func list(_ k: Int) -> ThreadList {
        ThreadList(dense: dense + k * size, sparse: sparse + k * size, slots: slots + k * size * slotCount)
    }

    deinit {
        dense.deallocate()
        sparse.deallocate()
        slots.deallocate()
        scratch.deallocate()
        matchSlots.deallocate()
        frames.deallocate()
    }
}

/// One matching run over a text, reused across the searches of one `forEachMatch` call.
struct PikeVM {
    /// The memo's budget in 64-bit words (32 MiB), and the log's in entries.
    private static let memoWordLimit = 1 << 22
    private static let logLimit = 1 << 22

    private let program: LinearRegexProgram
    private let code: UnsafeMutableBufferPointer<RegexInstruction>
    private let text: UnsafeBufferPointer<Unicode.Scalar>
    private let lower: Int
    private let upper: Int
    private let slotCount: Int
    private let storage: PikeStorage
    private let scratch: UnsafeMutablePointer<Int>
    private let frames: UnsafeMutablePointer<Frame>
    private var lookarounds: [PikeVM]

    /// The capture slots of the last match found (slot 1: its end).
    let matchSlots: UnsafeMutablePointer<Int>
    private var matched = false
    var matchStart: Int { matchSlots[0] }
    var matchEnd: Int { matchSlots[1] }

    // Pairs (instruction, position) known not to lead to a match: rows of bits from `deadBase`.
    private let memo: Bool
    private let rowWords: Int
    private var dead: [UInt64] = []
    private var deadBase = 0
    private var deadRows = 0
    private var log: [Int] = []
    private var logging = false
    private var logOverflow = false

    init(program: LinearRegexProgram, text: UnsafeBufferPointer<Unicode.Scalar>, lower: Int, upper: Int, memo: Bool) {
        self.program = program
        self.code = program.code
        self.text = text
        self.lower = lower
        self.upper = upper
        self.slotCount = program.slotCount
        self.memo = memo
        storage = PikeStorage(size: program.code.count, slotCount: program.slotCount)
        scratch = storage.scratch
        frames = storage.frames
        matchSlots = storage.matchSlots
        rowWords = (program.code.count + 63) / 64
        lookarounds = program.lookarounds.map {
            PikeVM(program: $0.program, text: text, lower: lower, upper: upper, memo: false)
        }
    }

    /// Looks for the leftmost-first match starting in `from...lastStart`. With `requiredEnd >= 0` only
    /// a match ending there counts; an empty match starting at `forbidEmptyAt` does not count; with
    /// `stopAtFirst` any match ends the search (for lookarounds, which only ask whether one exists).
    /// On success the match is in `matchSlots`.
    mutating func search(from start: Int, lastStart: Int, requiredEnd: Int, forbidEmptyAt: Int, stopAtFirst: Bool) -> Bool {
        var clist = storage.list(0)
        var nlist = storage.list(1)
        matched = false
        logging = false
        logOverflow = false
        if !log.isEmpty { log.removeAll(keepingCapacity: true) }
        var pos = start
        while true {
            if !matched, pos <= lastStart {
                if clist.count == 0, lastStart == .max, let first = program.firstSet {
                    while pos < upper, !first.contains(text[pos]) { pos += 1 }
                    if pos >= upper { break }
                }
                addInitialThreads(&clist, pos)
            }
            if clist.count == 0 { break }
            if step(&clist, &nlist, pos, requiredEnd: requiredEnd, forbidEmptyAt: forbidEmptyAt, stopAtFirst: stopAtFirst) { break }
            if pos >= upper || (requiredEnd >= 0 && pos >= requiredEnd) { break }
            swap(&clist, &nlist)
            nlist.count = 0
            pos += 1
        }
        if matched, memo { rememberDeadPairs(after: matchEnd) }
        return matched
    }

    /// A new thread at `pos`, of the lowest priority. When the program's start closure does not depend
    /// on the position, its threads are inserted directly.
    @inline(__always)
    private mutating func addInitialThreads(_ list: inout ThreadList, _ pos: Int) {
        if let threads = program.initialThreads {
            for pc in threads where !list.contains(pc) && !(deadRows > 0 && isDead(pc, pos)) {
                let base = list.insert(pc) * slotCount
                list.slots[base] = pos
                list.slots[base + 1] = -1
            }
            return
        }
        for s in 0..<slotCount { scratch[s] = -1 }
        add(&list, 0, pos)
    }

    /// Runs every thread of `clist` over the scalar at `pos`, in priority order, into `nlist`. A match
    /// cuts the threads after it (they have lower priority). Returns true to end the search at once.
    private mutating func step(_ clist: inout ThreadList, _ nlist: inout ThreadList, _ pos: Int,
                               requiredEnd: Int, forbidEmptyAt: Int, stopAtFirst: Bool) -> Bool {
        let hasScalar = pos < upper
        let c = hasScalar ? text[pos] : Unicode.Scalar(UInt8(0))
        var k = 0
        while k < clist.count {
            let pc = Int(clist.dense[k])
            let ins = code[pc]
            if ins.op == .match {
                let base = k * slotCount
                let threadStart = clist.slots[base]
                if (requiredEnd < 0 || pos == requiredEnd) && !(threadStart == pos && pos == forbidEmptyAt) {
                    for s in 0..<slotCount { matchSlots[s] = clist.slots[base + s] }
                    matchSlots[1] = pos
                    matched = true
                    if stopAtFirst { return true }
                    if memo { startLogging(nlist, at: pos + 1) }
                    return false
                }
            } else if hasScalar, program.accepts(ins, c) {
                let base = k * slotCount
                for s in 0..<slotCount { scratch[s] = clist.slots[base + s] }
                add(&nlist, pc + 1, pos + 1)
            }
            k += 1
        }
        return false
    }

    /// Adds the thread at `pc0` and everything reachable from it without consuming a scalar, in
    /// priority order, carrying `scratch` as its capture slots (RE2's AddToThreadq).
    private mutating func add(_ list: inout ThreadList, _ pc0: Int, _ pos: Int) {
        var top = 0
        frames[0] = Frame(pc: Int32(truncatingIfNeeded: pc0), slot: -1, value: 0)
        top = 1
        while top > 0 {
            top -= 1
            let frame = frames[top]
            if frame.slot >= 0 {
                scratch[Int(frame.slot)] = frame.value
                continue
            }
            var pc = Int(frame.pc)
            follow: while true {
                if list.contains(pc) || (deadRows > 0 && isDead(pc, pos)) { break }
                let index = list.insert(pc)
                if logging { record(pc, pos) }
                let ins = code[pc]
                switch ins.op {
                case .jump:
                    pc = Int(ins.a)
                case .split:
                    frames[top] = Frame(pc: ins.b, slot: -1, value: 0)
                    top += 1
                    pc = Int(ins.a)
                case .save:
                    let slot = Int(ins.a)
                    if slot < slotCount {
                        frames[top] = Frame(pc: 0, slot: Int32(truncatingIfNeeded: slot), value: scratch[slot])
                        top += 1
                        scratch[slot] = pos
                    }
                    pc += 1
                case .assert:
                    guard let assertion = RegexAssertion(rawValue: ins.a), holds(assertion, at: pos) else { break follow }
                    pc += 1
                case .look:
                    guard lookaroundHolds(Int(ins.a), at: pos) else { break follow }
                    pc += 1
                default:
                    let base = index * slotCount
                    for s in 0..<slotCount { list.slots[base + s] = scratch[s] }
                    break follow
                }
            }
        }
    }

    private func isWord(_ position: Int) -> Bool {
        position >= lower && position < upper && program.wordSet.contains(text[position])
    }

    private func holds(_ assertion: RegexAssertion, at pos: Int) -> Bool {
        switch assertion {
        case .textStart: return pos == lower
        case .textEnd: return pos == upper
        case .textEndOrFinalNewline: return pos == upper || (pos == upper - 1 && text[pos] == "\n")
        case .lineStart: return pos == lower || text[pos - 1] == "\n"
        case .lineEnd: return pos == upper || text[pos] == "\n"
        case .wordBoundary: return isWord(pos - 1) != isWord(pos)
        case .notWordBoundary: return isWord(pos - 1) == isWord(pos)
        }
    }

    private mutating func lookaroundHolds(_ index: Int, at pos: Int) -> Bool {
        let look = program.lookarounds[index]
        let found: Bool
        if let test = look.singleScalarTest {
            let position = look.behind ? pos - 1 : pos
            found = position >= lower && position < upper && look.program.accepts(test, text[position])
        } else if look.behind {
            let latest = pos - look.minLength
            found = latest >= lower && lookarounds[index].search(from: max(lower, pos - look.maxLength), lastStart: latest,
                                                                 requiredEnd: pos, forbidEmptyAt: -1, stopAtFirst: true)
        } else {
            found = lookarounds[index].search(from: pos, lastStart: pos, requiredEnd: -1, forbidEmptyAt: -1, stopAtFirst: true)
        }
        return found != look.negated
    }

    // MARK: Memo of dead pairs

    @inline(__always)
    private func isDead(_ pc: Int, _ pos: Int) -> Bool {
        let row = pos - deadBase
        guard row >= 0, row < deadRows else { return false }
        return dead[row * rowWords + pc >> 6] >> UInt64(pc & 63) & 1 != 0
    }

    /// After a match ending at `pos - 1`, every pair from here on belongs to a thread of higher
    /// priority than the match that outlived it; if the match stands, those pairs are dead.
    private mutating func startLogging(_ nlist: ThreadList, at pos: Int) {
        if !log.isEmpty { log.removeAll(keepingCapacity: true) }
        logOverflow = false
        logging = true
        for k in 0..<nlist.count { record(Int(nlist.dense[k]), pos) }
    }

    @inline(__always)
    private mutating func record(_ pc: Int, _ pos: Int) {
        guard !logOverflow else { return }
        if log.count >= Self.logLimit {
            logOverflow = true
            log = []
            return
        }
        log.append(pos &* code.count &+ pc)
    }

    /// Marks the logged pairs (all at positions after `end`, where the search's match ended) as dead:
    /// the search ran every thread there to its end without finding a match of higher priority, and
    /// whether a pair leads to a match depends only on the pair.
    private mutating func rememberDeadPairs(after end: Int) {
        defer {
            logging = false
            if !log.isEmpty { log.removeAll(keepingCapacity: true) }
        }
        guard !logOverflow, let last = log.last else { return }
        let size = code.count
        if deadRows > 0, end - deadBase > deadRows / 2 {
            let drop = min(deadRows, end - deadBase)
            dead.removeFirst(drop * rowWords)
            deadRows -= drop
            deadBase += drop
        }
        if deadRows == 0 { deadBase = end + 1 }
        let needed = last / size - deadBase + 1
        guard needed * rowWords <= Self.memoWordLimit else { return }
        if needed > deadRows {
            dead.append(contentsOf: repeatElement(0, count: (needed - deadRows) * rowWords))
            deadRows = needed
        }
        for entry in log {
            let pos = entry / size, pc = entry % size
            let row = pos - deadBase
            guard row >= 0 else { continue }
            dead[row * rowWords + pc >> 6] |= 1 << UInt64(pc & 63)
        }
    }
}
