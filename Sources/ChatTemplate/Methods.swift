import Foundation

/// Binds Python-style call arguments to parameter names, with Python's error texts.
struct BoundArguments {
    private var values: [String: Value] = [:]
    let function: String

    init(_ function: String, parameters: [String], positional: [Value], keyword: [(String, Value)]) throws(ChatTemplateError) {
        self.function = function
        guard positional.count <= parameters.count else {
            throw ChatTemplateError(
                message: "\(function)() takes at most \(parameters.count) argument(s) (\(positional.count) given)")
        }
        for (name, value) in zip(parameters, positional) { values[name] = value }
        for (name, value) in keyword {
            guard parameters.contains(name) else {
                throw ChatTemplateError(message: "'\(name)' is an invalid keyword argument for \(function)()")
            }
            guard values[name] == nil else {
                throw ChatTemplateError(message: "\(function)() got multiple values for argument '\(name)'")
            }
            values[name] = value
        }
    }

    subscript(name: String) -> Value? { values[name] }

    /// The argument, unless absent or None.
    func optional(_ name: String) -> Value? {
        guard let value = values[name] else { return nil }
        if case .none = value { return nil }
        return value
    }

    func string(_ name: String) throws(ChatTemplateError) -> String? {
        guard let value = optional(name) else { return nil }
        guard case .string(let s) = value else {
            if case .undefined(let message) = value { throw ChatTemplateError(message: message) }
            throw ChatTemplateError(message: "\(function)() argument '\(name)' must be str, not \(value.typeName)")
        }
        return s
    }

    func int(_ name: String) throws(ChatTemplateError) -> Int? {
        guard let value = optional(name) else { return nil }
        guard case .int(let i)? = value.numeric, !(value.isDouble) else {
            if case .undefined(let message) = value { throw ChatTemplateError(message: message) }
            throw ChatTemplateError(message: "\(function)() argument '\(name)' must be an integer, not \(value.typeName)")
        }
        return i
    }

    func required(_ name: String) throws(ChatTemplateError) -> Value {
        guard let value = values[name] else {
            throw ChatTemplateError(message: "\(function)() missing required argument '\(name)'")
        }
        return value
    }
}

extension Value {
    var isDouble: Bool { if case .double = self { true } else { false } }
}

/// The methods of strings, dicts, lists and the loop object that templates may call.
enum Methods {
    private static let stringMethods: Set<String> = [
        "strip", "lstrip", "rstrip", "startswith", "endswith", "split", "rsplit", "splitlines", "replace", "upper",
        "lower", "title", "capitalize", "find", "rfind", "count", "join", "format", "isdigit", "isalpha", "isalnum",
        "isspace", "islower", "isupper", "removeprefix", "removesuffix",
    ]
    /// Python has these, this renderer does not: calling one is an error that says so.
    private static let unsupportedStringMethods: Set<String> = [
        "casefold", "center", "encode", "expandtabs", "format_map", "index", "isascii", "isdecimal", "isidentifier",
        "isnumeric", "isprintable", "istitle", "ljust", "maketrans", "partition", "rindex", "rjust", "rpartition",
        "swapcase", "translate", "zfill",
    ]
    private static let dictMethods: Set<String> = ["get", "items", "keys", "values", "copy"]
    private static let unsafeDictMethods: Set<String> = ["clear", "pop", "popitem", "setdefault", "update"]
    private static let sequenceMethods: Set<String> = ["index", "count"]
    private static let unsafeListMethods: Set<String> = [
        "append", "clear", "pop", "reverse", "insert", "sort", "extend", "remove",
    ]

    /// The bound method `name` of `value`, an unsafe-attribute undefined for methods that would
    /// modify it (jinja2's immutable sandbox), or nil when the type has no such method.
    static func lookup(_ name: String, on value: Value) -> Value? {
        let bound = Value.function(FunctionValue(kind: .method(receiver: value, name: name)))
        switch value {
        case .string:
            if stringMethods.contains(name) || unsupportedStringMethods.contains(name) { return bound }
        case .dict:
            if dictMethods.contains(name) { return bound }
            if unsafeDictMethods.contains(name) {
                return .undefined("access to attribute '\(name)' of 'dict' object is unsafe.")
            }
        case .list:
            if sequenceMethods.contains(name) || name == "copy" { return bound }
            if unsafeListMethods.contains(name) {
                return .undefined("access to attribute '\(name)' of 'list' object is unsafe.")
            }
        case .tuple:
            if sequenceMethods.contains(name) { return bound }
        default:
            break
        }
        return nil
    }

    static func call(
        _ name: String, on receiver: Value, positional: [Value], keyword: [(String, Value)], renderer: Renderer
    ) throws(ChatTemplateError) -> Value {
        switch receiver {
        case .string(let text):
            return try stringMethod(name, text, positional: positional, keyword: keyword, state: renderer.state)
        case .dict(let dict):
            switch name {
            case "get":
                let args = try BoundArguments("get", parameters: ["key", "default"], positional: positional, keyword: keyword)
                let key = try args.required("key")
                if case .string(let k) = key, let found = dict[k] { return found }
                return args["default"] ?? .none
            case "items":
                _ = try BoundArguments("items", parameters: [], positional: positional, keyword: keyword)
                return .list(dict.pairs.map { .tuple([.string($0.0), $0.1]) })
            case "keys":
                _ = try BoundArguments("keys", parameters: [], positional: positional, keyword: keyword)
                return .list(dict.keys.map { .string($0) })
            case "values":
                _ = try BoundArguments("values", parameters: [], positional: positional, keyword: keyword)
                return .list(dict.values)
            case "copy":
                return receiver
            default: break
            }
        case .list(let items), .tuple(let items):
            switch name {
            case "copy": return receiver
            case "count":
                let args = try BoundArguments("count", parameters: ["value"], positional: positional, keyword: keyword)
                let needle = try args.required("value")
                var n = 0
                for item in items where try pythonEquals(item, needle) { n += 1 }
                return .int(n)
            case "index":
                let args = try BoundArguments("index", parameters: ["value"], positional: positional, keyword: keyword)
                let needle = try args.required("value")
                for (i, item) in items.enumerated() where try pythonEquals(item, needle) { return .int(i) }
                throw ChatTemplateError(message: "\(try pythonRepr(needle)) is not in \(receiver.typeName)")
            default: break
            }
        case .loop(let loop):
            switch name {
            case "cycle":
                guard !positional.isEmpty else { throw ChatTemplateError(message: "no items for cycling given") }
                return positional[loop.index0 % positional.count]
            case "changed":
                defer { loop.lastChanged = positional }
                guard let last = loop.lastChanged, last.count == positional.count else { return .bool(true) }
                for (a, b) in zip(last, positional) where !(try pythonEquals(a, b)) { return .bool(true) }
                return .bool(false)
            default: break
            }
        default:
            break
        }
        throw ChatTemplateError(message: "unsupported method '\(name)' of \(receiver.typeName) object")
    }

    // MARK: - Strings

    private static func scalars(_ s: String) -> [Unicode.Scalar] { Array(s.unicodeScalars) }
    private static func text(_ s: some Sequence<Unicode.Scalar>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: s)
        return String(view)
    }

    /// Python `str.strip` family: `chars` nil strips whitespace, otherwise any of its characters.
    static func strip(_ s: String, chars: String?, leading: Bool, trailing: Bool) -> String {
        let set = chars.map { Set($0.unicodeScalars) }
        let shouldStrip: (Unicode.Scalar) -> Bool = { scalar in set?.contains(scalar) ?? isPythonWhitespace(scalar) }
        let all = scalars(s)
        var start = 0, end = all.count
        if leading { while start < end, shouldStrip(all[start]) { start += 1 } }
        if trailing { while end > start, shouldStrip(all[end - 1]) { end -= 1 } }
        return text(all[start..<end])
    }

    private static func find(_ needle: [Unicode.Scalar], in haystack: [Unicode.Scalar], from start: Int) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        if needle.isEmpty { return start <= haystack.count ? start : nil }
        var i = start
        while i + needle.count <= haystack.count {
            if haystack[i] == needle[0] && haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }

    private static func rfind(_ needle: [Unicode.Scalar], in haystack: [Unicode.Scalar], before end: Int) -> Int? {
        var i = min(end, haystack.count) - needle.count
        while i >= 0 {
            if haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i -= 1
        }
        return nil
    }

    /// Python `str.split` (`fromRight` false) and `str.rsplit` (true).
    static func split(_ s: String, separator: String?, maxSplit: Int, fromRight: Bool) throws(ChatTemplateError) -> [String] {
        let all = scalars(s)
        let limit = maxSplit < 0 ? Int.max : maxSplit
        guard let separator else {
            var words: [String] = []
            if !fromRight {
                var i = 0
                while true {
                    while i < all.count, isPythonWhitespace(all[i]) { i += 1 }
                    if i >= all.count { break }
                    if words.count == limit {
                        words.append(text(all[i...]))
                        break
                    }
                    let start = i
                    while i < all.count, !isPythonWhitespace(all[i]) { i += 1 }
                    words.append(text(all[start..<i]))
                }
                return words
            }
            var end = all.count
            while true {
                while end > 0, isPythonWhitespace(all[end - 1]) { end -= 1 }
                if end == 0 { break }
                if words.count == limit {
                    words.append(text(all[..<end]))
                    break
                }
                var start = end
                while start > 0, !isPythonWhitespace(all[start - 1]) { start -= 1 }
                words.append(text(all[start..<end]))
                end = start
            }
            return words.reversed()
        }
        let sep = scalars(separator)
        guard !sep.isEmpty else { throw ChatTemplateError(message: "empty separator") }
        var parts: [String] = []
        if !fromRight {
            var start = 0
            while parts.count < limit, let found = find(sep, in: all, from: start) {
                parts.append(text(all[start..<found]))
                start = found + sep.count
            }
            parts.append(text(all[start...]))
            return parts
        }
        var end = all.count
        while parts.count < limit, let found = rfind(sep, in: all, before: end) {
            parts.append(text(all[(found + sep.count)..<end]))
            end = found
        }
        parts.append(text(all[..<end]))
        return parts.reversed()
    }

    /// Python `str.replace(old, new, count)`.
    static func replace(_ s: String, _ old: String, _ new: String, count: Int) -> String {
        let all = scalars(s), oldScalars = scalars(old), newScalars = scalars(new)
        let limit = count < 0 ? Int.max : count
        var result: [Unicode.Scalar] = []
        var replaced = 0
        if oldScalars.isEmpty {
            for scalar in all {
                if replaced < limit { result += newScalars; replaced += 1 }
                result.append(scalar)
            }
            if replaced < limit { result += newScalars }
            return text(result)
        }
        var i = 0
        while i < all.count {
            if replaced < limit, i + oldScalars.count <= all.count,
               all[i..<(i + oldScalars.count)].elementsEqual(oldScalars) {
                result += newScalars
                i += oldScalars.count
                replaced += 1
            } else {
                result.append(all[i])
                i += 1
            }
        }
        return text(result)
    }

    private static func titlecased(_ scalar: Unicode.Scalar) -> String { scalar.properties.titlecaseMapping }

    /// Python `str.title()`: a cased character after an uncased one is titlecased, others lowercased.
    static func pythonTitle(_ s: String) -> String {
        var result = ""
        var previousCased = false
        for scalar in s.unicodeScalars {
            result += previousCased ? scalar.properties.lowercaseMapping : titlecased(scalar)
            previousCased = scalar.properties.isCased
        }
        return result
    }

    /// Python `str.capitalize()`: the first character titlecased, the rest lowercased.
    static func pythonCapitalize(_ s: String) -> String {
        var result = ""
        for (i, scalar) in s.unicodeScalars.enumerated() {
            result += i == 0 ? titlecased(scalar) : scalar.properties.lowercaseMapping
        }
        return result
    }

    static func pythonUpper(_ s: String) -> String { s.unicodeScalars.map { $0.properties.uppercaseMapping }.joined() }
    static func pythonLower(_ s: String) -> String { s.unicodeScalars.map { $0.properties.lowercaseMapping }.joined() }

    private static func affixArgument(_ value: Value, method: String) throws(ChatTemplateError) -> [[Unicode.Scalar]] {
        switch value {
        case .string(let s): return [scalars(s)]
        case .tuple(let items), .list(let items):
            var result: [[Unicode.Scalar]] = []
            for item in items {
                guard case .string(let s) = item else {
                    throw ChatTemplateError(message: "tuple for \(method) must only contain str, not \(item.typeName)")
                }
                result.append(scalars(s))
            }
            return result
        default:
            throw ChatTemplateError(
                message: "\(method) first arg must be str or a tuple of str, not \(value.typeName)")
        }
    }

    private static func stringMethod(
        _ name: String, _ s: String, positional: [Value], keyword: [(String, Value)], state: RenderState
    ) throws(ChatTemplateError) -> Value {
        func bind(_ parameters: [String]) throws(ChatTemplateError) -> BoundArguments {
            try BoundArguments(name, parameters: parameters, positional: positional, keyword: keyword)
        }
        switch name {
        case "strip", "lstrip", "rstrip":
            let chars = try bind(["chars"]).string("chars")
            return .string(strip(s, chars: chars, leading: name != "rstrip", trailing: name != "lstrip"))
        case "startswith", "endswith":
            let args = try bind(["prefix", "start", "end"])
            let affixes = try affixArgument(try args.required("prefix"), method: name)
            var all = scalars(s)
            if args.optional("start") != nil || args.optional("end") != nil {
                guard case .string(let sliced) = try Access.slice(.string(s), start: args["start"], stop: args["end"], step: nil) else {
                    return .bool(false)
                }
                all = scalars(sliced)
            }
            for affix in affixes {
                let matches = name == "startswith" ? all.starts(with: affix) : all.reversed().starts(with: affix.reversed())
                if matches { return .bool(true) }
            }
            return .bool(false)
        case "split", "rsplit":
            let args = try bind(["sep", "maxsplit"])
            let parts = try split(s, separator: try args.string("sep"), maxSplit: try args.int("maxsplit") ?? -1,
                                  fromRight: name == "rsplit")
            return .list(parts.map { .string($0) })
        case "splitlines":
            let keepEnds = try bind(["keepends"]).optional("keepends")?.isTruthy ?? false
            var lines: [String] = []
            let all = scalars(s)
            var start = 0, i = 0
            while i < all.count {
                let scalar = all[i]
                let isBreak = ["\n", "\r", "\u{0B}", "\u{0C}", "\u{1C}", "\u{1D}", "\u{1E}", "\u{85}", "\u{2028}", "\u{2029}"]
                    .contains(scalar)
                if isBreak {
                    var end = i + 1
                    if scalar == "\r", end < all.count, all[end] == "\n" { end += 1 }
                    lines.append(text(all[start..<(keepEnds ? end : i)]))
                    start = end
                    i = end
                } else {
                    i += 1
                }
            }
            if start < all.count { lines.append(text(all[start...])) }
            return .list(lines.map { .string($0) })
        case "replace":
            let args = try bind(["old", "new", "count"])
            guard let old = try args.string("old"), let new = try args.string("new") else {
                throw ChatTemplateError(message: "replace() needs the old and new strings")
            }
            let result = replace(s, old, new, count: try args.int("count") ?? -1)
            try state.chargeBytes(result.utf8.count)
            return .string(result)
        case "upper": _ = try bind([]); return .string(pythonUpper(s))
        case "lower": _ = try bind([]); return .string(pythonLower(s))
        case "title": _ = try bind([]); return .string(pythonTitle(s))
        case "capitalize": _ = try bind([]); return .string(pythonCapitalize(s))
        case "find", "rfind", "count":
            let args = try bind(["sub", "start", "end"])
            guard let sub = try args.string("sub") else { throw ChatTemplateError(message: "\(name)() needs a string") }
            var all = scalars(s)
            var offset = 0
            if args.optional("start") != nil || args.optional("end") != nil {
                let startIndex = try args.int("start") ?? 0
                offset = startIndex < 0 ? max(0, startIndex + all.count) : min(startIndex, all.count)
                if case .string(let sliced) = try Access.slice(.string(s), start: args["start"], stop: args["end"], step: nil) {
                    all = scalars(sliced)
                }
            }
            let needle = scalars(sub)
            if name == "count" {
                if needle.isEmpty { return .int(all.count + 1) }
                var n = 0, i = 0
                while let found = find(needle, in: all, from: i) {
                    n += 1
                    i = found + needle.count
                }
                return .int(n)
            }
            let found = name == "find" ? find(needle, in: all, from: 0) : rfind(needle, in: all, before: all.count)
            return .int(found.map { $0 + offset } ?? -1)
        case "join":
            let items = try pythonIterate(try bind(["iterable"]).required("iterable"))
            var parts: [String] = []
            for (i, item) in items.enumerated() {
                guard case .string(let part) = item else {
                    throw ChatTemplateError(message: "sequence item \(i): expected str instance, \(item.typeName) found")
                }
                parts.append(part)
            }
            let result = parts.joined(separator: s)
            try state.chargeBytes(result.utf8.count)
            return .string(result)
        case "format":
            let result = try format(s, positional: positional, keyword: keyword)
            try state.chargeBytes(result.utf8.count)
            return .string(result)
        case "isdigit", "isalpha", "isalnum", "isspace", "islower", "isupper":
            _ = try bind([])
            let all = scalars(s)
            func isDigit(_ c: Unicode.Scalar) -> Bool {
                c.properties.numericType == .decimal || c.properties.numericType == .digit
            }
            func isAlpha(_ c: Unicode.Scalar) -> Bool {
                switch c.properties.generalCategory {
                case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
                default: return false
                }
            }
            switch name {
            case "isdigit": return .bool(!all.isEmpty && all.allSatisfy(isDigit))
            case "isalpha": return .bool(!all.isEmpty && all.allSatisfy(isAlpha))
            case "isalnum": return .bool(!all.isEmpty && all.allSatisfy { isAlpha($0) || $0.properties.numericType != nil })
            case "isspace": return .bool(!all.isEmpty && all.allSatisfy(isPythonWhitespace))
            case "islower":
                let cased = all.filter { $0.properties.isCased }
                return .bool(!cased.isEmpty && cased.allSatisfy { $0.properties.isLowercase })
            default:
                let cased = all.filter { $0.properties.isCased }
                return .bool(!cased.isEmpty && cased.allSatisfy { $0.properties.isUppercase })
            }
        case "removeprefix", "removesuffix":
            guard let affix = try bind(["affix"]).string("affix") else {
                throw ChatTemplateError(message: "\(name)() needs a string")
            }
            let all = scalars(s), part = scalars(affix)
            if name == "removeprefix", all.starts(with: part) { return .string(text(all[part.count...])) }
            if name == "removesuffix", !part.isEmpty, all.reversed().starts(with: part.reversed()) {
                return .string(text(all[..<(all.count - part.count)]))
            }
            return .string(s)
        default:
            throw ChatTemplateError(message: "unsupported method '\(name)' of str object")
        }
    }

    /// `str.format` with `{}`, `{0}`, `{name}` fields and `!s`/`!r` conversions; format specs
    /// (`{:>10}`) are refused.
    private static func format(_ s: String, positional: [Value], keyword: [(String, Value)]) throws(ChatTemplateError) -> String {
        let all = scalars(s)
        var result = ""
        var automatic = 0
        var i = 0
        while i < all.count {
            let c = all[i]
            if c == "{" {
                if i + 1 < all.count, all[i + 1] == "{" {
                    result += "{"
                    i += 2
                    continue
                }
                guard let close = all[(i + 1)...].firstIndex(of: "}") else {
                    throw ChatTemplateError(message: "Single '{' encountered in format string")
                }
                var field = text(all[(i + 1)..<close])
                var conversion: String?
                if let bang = field.firstIndex(of: "!") {
                    conversion = String(field[field.index(after: bang)...])
                    field = String(field[..<bang])
                }
                if field.contains(":") || (conversion?.contains(":") ?? false) {
                    throw ChatTemplateError(message: "unsupported: format specifications in str.format")
                }
                let value: Value
                if field.isEmpty {
                    guard automatic < positional.count else {
                        throw ChatTemplateError(message: "Replacement index \(automatic) out of range for positional args tuple")
                    }
                    value = positional[automatic]
                    automatic += 1
                } else if let index = Int(field) {
                    guard index >= 0, index < positional.count else {
                        throw ChatTemplateError(message: "Replacement index \(index) out of range for positional args tuple")
                    }
                    value = positional[index]
                } else if let found = keyword.first(where: { $0.0 == field }) {
                    value = found.1
                } else {
                    throw ChatTemplateError(message: "KeyError: '\(field)'")
                }
                switch conversion {
                case nil, "s": result += try pythonStr(value)
                case "r": result += try pythonRepr(value)
                default: throw ChatTemplateError(message: "unsupported: format conversion '!\(conversion ?? "")'")
                }
                i = close + 1
            } else if c == "}" {
                guard i + 1 < all.count, all[i + 1] == "}" else {
                    throw ChatTemplateError(message: "Single '}' encountered in format string")
                }
                result += "}"
                i += 2
            } else {
                result.unicodeScalars.append(c)
                i += 1
            }
        }
        return result
    }
}
