import Foundation

/// jinja2's built-in filters that chat templates use, plus transformers' `tojson`.
enum Filters {
    private static let supported: Set<String> = [
        "abs", "attr", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first", "float", "format",
        "indent", "int", "items", "join", "last", "length", "list", "lower", "map", "max", "min", "reject",
        "rejectattr", "replace", "reverse", "round", "safe", "select", "selectattr", "sort", "string", "sum", "title",
        "tojson", "trim", "unique", "upper",
    ]
    private static let knownUnsupported: Set<String> = [
        "batch", "center", "filesizeformat", "forceescape", "groupby", "pprint", "random", "slice", "striptags",
        "truncate", "urlencode", "urlize", "wordcount", "wordwrap", "xmlattr",
    ]

    static func isSupported(_ name: String) -> Bool { supported.contains(name) }
    static func isKnownUnsupported(_ name: String) -> Bool { knownUnsupported.contains(name) }

    static func apply(
        _ name: String, to value: Value, arguments: Arguments, in scope: Scope, renderer: Renderer
    ) throws(ChatTemplateError) -> Value {
        let (positional, keyword) = try renderer.evaluateArguments(arguments, in: scope)
        return try apply(name, to: value, positional: positional, keyword: keyword, renderer: renderer)
    }

    static func apply(
        _ name: String, to value: Value, positional: [Value], keyword: [(String, Value)], renderer: Renderer
    ) throws(ChatTemplateError) -> Value {
        func bind(_ parameters: [String]) throws(ChatTemplateError) -> BoundArguments {
            try BoundArguments(name, parameters: parameters, positional: positional, keyword: keyword)
        }
        let state = renderer.state
        switch name {
        case "abs":
            _ = try bind([])
            if case .undefined(let message) = value { throw ChatTemplateError(message: message) }
            switch value.numeric {
            case .int(let i)?:
                guard i != Int.min else { throw ChatTemplateError(message: "integer overflow in abs") }
                return .int(abs(i))
            case .double(let d)?: return .double(abs(d))
            case nil: throw ChatTemplateError(message: "bad operand type for abs(): '\(value.typeName)'")
            }
        case "attr":
            guard let attribute = try bind(["name"]).string("name") else {
                throw ChatTemplateError(message: "attr() needs an attribute name")
            }
            return try Access.attribute(of: value, attribute)
        case "capitalize":
            _ = try bind([])
            return .string(Methods.pythonCapitalize(try pythonStr(value)))
        case "count", "length":
            _ = try bind([])
            return .int(try pythonLength(value))
        case "d", "default":
            let args = try bind(["default_value", "boolean"])
            let useDefault = value.isUndefined || ((args["boolean"]?.isTruthy ?? false) && !value.isTruthy)
            return useDefault ? (args["default_value"] ?? .string("")) : value
        case "dictsort":
            let args = try bind(["case_sensitive", "by", "reverse"])
            guard case .dict(let dict) = value else {
                throw ChatTemplateError(message: "dictsort needs a mapping, not \(value.typeName)")
            }
            let byValue = try args.string("by") == "value"
            let caseSensitive = args["case_sensitive"]?.isTruthy ?? false
            var pairs: [Value] = dict.pairs.map { .tuple([.string($0.0), $0.1]) }
            pairs = try sorted(pairs, reverse: args["reverse"]?.isTruthy ?? false) { item throws(ChatTemplateError) in
                guard case .tuple(let pair) = item else { return item }
                let key = pair[byValue ? 1 : 0]
                return caseSensitive ? key : lowered(key)
            }
            return .list(pairs)
        case "e", "escape":
            _ = try bind([])
            return .string(htmlEscape(try pythonStr(value)))
        case "first":
            _ = try bind([])
            return try pythonIterate(value).first ?? .undefined("No first item, sequence was empty.")
        case "last":
            _ = try bind([])
            return try pythonIterate(value).last ?? .undefined("No last item, sequence was empty.")
        case "float":
            let args = try bind(["default"])
            return toFloat(value) ?? args["default"] ?? .double(0)
        case "format":
            return .string(try printfFormat(try pythonStr(value), positional))
        case "indent":
            let args = try bind(["width", "first", "blank"])
            let indentation: String
            if case .string(let text)? = args["width"] {
                indentation = text
            } else {
                indentation = String(repeating: " ", count: max(0, try args.int("width") ?? 4))
            }
            let text = try pythonStr(value) + "\n"
            let lines = try Methods.split(text, separator: "\n", maxSplit: -1, fromRight: false).dropLast()
            var result: String
            if args["blank"]?.isTruthy ?? false {
                result = lines.joined(separator: "\n" + indentation)
            } else {
                result = lines.first ?? ""
                let rest = lines.dropFirst()
                if !rest.isEmpty {
                    result += "\n" + rest.map { $0.isEmpty ? $0 : indentation + $0 }.joined(separator: "\n")
                }
            }
            if args["first"]?.isTruthy ?? false { result = indentation + result }
            try state.chargeBytes(result.utf8.count)
            return .string(result)
        case "int":
            let args = try bind(["default", "base"])
            return try toInt(value, base: try args.int("base") ?? 10) ?? args["default"] ?? .int(0)
        case "items":
            _ = try bind([])
            switch value {
            case .undefined: return .list([])
            case .dict(let dict): return .list(dict.pairs.map { .tuple([.string($0.0), $0.1]) })
            default: throw ChatTemplateError(message: "Can only get item pairs from a mapping.")
            }
        case "join":
            let args = try bind(["d", "attribute"])
            var items = try pythonIterate(value)
            if let attribute = args.optional("attribute") {
                var mapped: [Value] = []
                for item in items { mapped.append(try attributePath(item, attribute)) }
                items = mapped
            }
            var parts: [String] = []
            for item in items { parts.append(try pythonStr(item)) }
            let result = parts.joined(separator: try pythonStr(args["d"] ?? .string("")))
            try state.chargeBytes(result.utf8.count)
            return .string(result)
        case "list":
            _ = try bind([])
            return .list(try pythonIterate(value))
        case "lower":
            _ = try bind([])
            return .string(Methods.pythonLower(try pythonStr(value)))
        case "upper":
            _ = try bind([])
            return .string(Methods.pythonUpper(try pythonStr(value)))
        case "title":
            _ = try bind([])
            return .string(jinjaTitle(try pythonStr(value)))
        case "trim":
            let chars = try bind(["chars"]).string("chars")
            return .string(Methods.strip(try pythonStr(value), chars: chars, leading: true, trailing: true))
        case "string":
            _ = try bind([])
            return .string(try pythonStr(value))
        case "safe":
            _ = try bind([])
            return value
        case "map":
            let items = try pythonIterate(value)
            if let attribute = keyword.first(where: { $0.0 == "attribute" })?.1 {
                let args = try bind(["attribute", "default"])
                var result: [Value] = []
                for item in items {
                    let found = try attributePath(item, attribute)
                    result.append(found.isUndefined ? (args["default"] ?? found) : found)
                }
                return .list(result)
            }
            guard case .string(let filterName)? = positional.first else {
                throw ChatTemplateError(message: "map() needs a filter name or attribute=")
            }
            guard isSupported(filterName) else { throw ChatTemplateError(message: "unknown filter '\(filterName)' in map()") }
            var result: [Value] = []
            for item in items {
                result.append(try apply(filterName, to: item, positional: Array(positional.dropFirst()), keyword: keyword,
                                        renderer: renderer))
            }
            return .list(result)
        case "select", "reject", "selectattr", "rejectattr":
            let byAttribute = name.hasSuffix("attr")
            var rest = positional
            var attribute: Value?
            if byAttribute {
                guard !rest.isEmpty else { throw ChatTemplateError(message: "\(name)() needs an attribute name") }
                attribute = rest.removeFirst()
            }
            var testName: String?
            if !rest.isEmpty {
                guard case .string(let t) = rest.removeFirst() else {
                    throw ChatTemplateError(message: "\(name)() needs a test name")
                }
                guard Predicates.isSupported(t) else { throw ChatTemplateError(message: "unknown test '\(t)' in \(name)()") }
                testName = t
            }
            let keep = name.hasPrefix("select")
            var result: [Value] = []
            for item in try pythonIterate(value) {
                let subject = try attribute.map { a throws(ChatTemplateError) in try attributePath(item, a) } ?? item
                let passed = try testName.map { t throws(ChatTemplateError) in
                    try Predicates.evaluate(t, subject, positional: rest, keyword: keyword, renderer: renderer)
                } ?? subject.isTruthy
                if passed == keep { result.append(item) }
            }
            return .list(result)
        case "max", "min":
            let args = try bind(["case_sensitive", "attribute"])
            let caseSensitive = args["case_sensitive"]?.isTruthy ?? false
            let attribute = args.optional("attribute")
            var best: (item: Value, key: Value)?
            for item in try pythonIterate(value) {
                var key = try attribute.map { a throws(ChatTemplateError) in try attributePath(item, a) } ?? item
                if !caseSensitive { key = lowered(key) }
                if let current = best {
                    let order = try pythonCompare(key, current.key, symbol: "<")
                    if (name == "max" && order > 0) || (name == "min" && order < 0) { best = (item, key) }
                } else {
                    best = (item, key)
                }
            }
            return best?.item ?? .undefined("No aggregated item, sequence was empty.")
        case "replace":
            let args = try bind(["old", "new", "count"])
            let result = Methods.replace(try pythonStr(value), try pythonStr(try args.required("old")),
                                         try pythonStr(try args.required("new")), count: try args.int("count") ?? -1)
            try state.chargeBytes(result.utf8.count)
            return .string(result)
        case "reverse":
            _ = try bind([])
            if case .string(let s) = value { return .string(String(String.UnicodeScalarView(s.unicodeScalars.reversed()))) }
            return .list(try pythonIterate(value).reversed())
        case "round":
            let args = try bind(["precision", "method"])
            let precision = try args.int("precision") ?? 0
            let method = try args.string("method") ?? "common"
            guard let number = value.numeric else {
                if case .undefined(let message) = value { throw ChatTemplateError(message: message) }
                throw ChatTemplateError(message: "type \(value.typeName) doesn't define __round__ method")
            }
            // Python's round() of an int stays an int; jinja2's floor/ceil divide, giving a float.
            if case .int(let i) = number, method == "common", precision >= 0 { return .int(i) }
            return .double(try round(number.asDouble, precision: precision, method: method))
        case "sort":
            let args = try bind(["reverse", "case_sensitive", "attribute"])
            let caseSensitive = args["case_sensitive"]?.isTruthy ?? false
            let attribute = args.optional("attribute")
            return .list(try sorted(try pythonIterate(value), reverse: args["reverse"]?.isTruthy ?? false) { item throws(ChatTemplateError) in
                let key = try attribute.map { a throws(ChatTemplateError) in try attributePath(item, a) } ?? item
                return caseSensitive ? key : lowered(key)
            })
        case "sum":
            let args = try bind(["attribute", "start"])
            var total = args["start"] ?? .int(0)
            for item in try pythonIterate(value) {
                let term = try args.optional("attribute").map { a throws(ChatTemplateError) in try attributePath(item, a) } ?? item
                total = try Arithmetic.apply(.add, total, term, state: state)
            }
            return total
        case "tojson":
            let args = try bind(["ensure_ascii", "indent", "separators", "sort_keys"])
            var options = JSONDumpOptions()
            options.ensureASCII = args["ensure_ascii"]?.isTruthy ?? false
            options.sortKeys = args["sort_keys"]?.isTruthy ?? false
            if let indent = args.optional("indent") {
                switch indent {
                case .string(let s): options.indent = s
                default: options.indent = String(repeating: " ", count: max(0, try args.int("indent") ?? 0))
                }
                options.itemSeparator = ","
            }
            if let separators = args.optional("separators") {
                let parts = try pythonIterate(separators)
                guard parts.count == 2, case .string(let item) = parts[0], case .string(let key) = parts[1] else {
                    throw ChatTemplateError(message: "tojson separators must be a pair of strings")
                }
                options.itemSeparator = item
                options.keySeparator = key
            }
            let result = try pythonJSONDumps(value, options)
            try state.chargeBytes(result.utf8.count)
            return .string(result)
        case "unique":
            let args = try bind(["case_sensitive", "attribute"])
            let caseSensitive = args["case_sensitive"]?.isTruthy ?? false
            var seen: [Value] = []
            var result: [Value] = []
            for item in try pythonIterate(value) {
                var key = try args.optional("attribute").map { a throws(ChatTemplateError) in try attributePath(item, a) } ?? item
                if !caseSensitive { key = lowered(key) }
                var duplicate = false
                for earlier in seen where try pythonEquals(earlier, key) { duplicate = true; break }
                if !duplicate {
                    seen.append(key)
                    result.append(item)
                }
            }
            return .list(result)
        default:
            throw ChatTemplateError(message: "unknown filter '\(name)'")
        }
    }

    /// jinja2's attribute getter for `map(attribute=)`, `selectattr`, `sort(attribute=)`: a
    /// dotted path whose parts are item lookups, numeric parts being integer indices.
    private static func attributePath(_ item: Value, _ path: Value) throws(ChatTemplateError) -> Value {
        guard case .string(let text) = path else { return try Access.item(of: item, path) }
        var current = item
        for part in text.split(separator: ".", omittingEmptySubsequences: false) {
            let key: Value = Int(part).map { .int($0) } ?? .string(String(part))
            current = try Access.item(of: current, key)
        }
        return current
    }

    private static func lowered(_ value: Value) -> Value {
        if case .string(let s) = value { return .string(Methods.pythonLower(s)) }
        return value
    }

    /// A stable sort by Python ordering of the keys (`sorted(..., key=..., reverse=...)`).
    private static func sorted(
        _ items: [Value], reverse: Bool, key: (Value) throws(ChatTemplateError) -> Value
    ) throws(ChatTemplateError) -> [Value] {
        var keyed: [(key: Value, item: Value)] = []
        for item in items { keyed.append((try key(item), item)) }
        // Merge sort: stable, and lets the comparison throw.
        func mergeSort(_ slice: ArraySlice<(key: Value, item: Value)>) throws(ChatTemplateError) -> [(key: Value, item: Value)] {
            if slice.count <= 1 { return Array(slice) }
            let middle = slice.startIndex + slice.count / 2
            let left = try mergeSort(slice[..<middle]), right = try mergeSort(slice[middle...])
            var merged: [(key: Value, item: Value)] = []
            merged.reserveCapacity(slice.count)
            var i = 0, j = 0
            while i < left.count && j < right.count {
                let order = try pythonCompare(right[j].key, left[i].key, symbol: "<")
                let takeRight = reverse ? order > 0 : order < 0
                if takeRight { merged.append(right[j]); j += 1 } else { merged.append(left[i]); i += 1 }
            }
            merged += left[i...]
            merged += right[j...]
            return merged
        }
        return try mergeSort(keyed[...]).map { $0.item }
    }

    /// markupsafe's escape: `& < > ' "` become entities.
    private static func htmlEscape(_ s: String) -> String {
        var result = ""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "'": result += "&#39;"
            case "\"": result += "&#34;"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// jinja2's `title` filter: words start after runs of whitespace, `-`, `(`, `{`, `[`, `<`; each
    /// word gets an uppercase first character and lowercase rest.
    private static func jinjaTitle(_ s: String) -> String {
        func isBoundary(_ c: Unicode.Scalar) -> Bool { isPythonWhitespace(c) || "-({[<".unicodeScalars.contains(c) }
        var result = ""
        var atWordStart = true
        for scalar in s.unicodeScalars {
            if isBoundary(scalar) {
                result.unicodeScalars.append(scalar)
                atWordStart = true
            } else if atWordStart {
                result += scalar.properties.uppercaseMapping
                atWordStart = false
            } else {
                result += scalar.properties.lowercaseMapping
            }
        }
        return result
    }

    /// Python's `float(x)` for the `float` filter; nil where Python raises.
    private static func toFloat(_ value: Value) -> Value? {
        switch value {
        case .double(let d): return .double(d)
        case .int(let i): return .double(Double(i))
        case .bool(let b): return .double(b ? 1 : 0)
        case .string(let s):
            let trimmed = Methods.strip(s, chars: nil, leading: true, trailing: true).replacingOccurrences(of: "_", with: "")
            switch trimmed.lowercased() {
            case "inf", "+inf", "infinity", "+infinity": return .double(.infinity)
            case "-inf", "-infinity": return .double(-.infinity)
            case "nan", "+nan", "-nan": return .double(.nan)
            default: break
            }
            guard trimmed.unicodeScalars.allSatisfy({ "0123456789.eE+-".unicodeScalars.contains($0) }),
                  let d = Double(trimmed) else { return nil }
            return .double(d)
        default: return nil
        }
    }

    /// jinja2's `int` filter: `int(x)`, else `int(float(x))`; nil where both fail.
    private static func toInt(_ value: Value, base: Int) throws(ChatTemplateError) -> Value? {
        switch value {
        case .int(let i): return .int(i)
        case .bool(let b): return .int(b ? 1 : 0)
        case .double(let d):
            guard d.isFinite else { throw ChatTemplateError(message: "cannot convert float \(pythonFloatRepr(d)) to integer") }
            guard let i = Int(exactly: d.rounded(.towardZero)) else { throw ChatTemplateError(message: "integer overflow") }
            return .int(i)
        case .string(let s):
            let trimmed = Methods.strip(s, chars: nil, leading: true, trailing: true).replacingOccurrences(of: "_", with: "")
            if let i = Int(trimmed.hasPrefix("+") ? String(trimmed.dropFirst()) : trimmed, radix: base) { return .int(i) }
            if case .double(let d)? = toFloat(value) {
                guard d.isFinite else { throw ChatTemplateError(message: "cannot convert float \(pythonFloatRepr(d)) to integer") }
                return Int(exactly: d.rounded(.towardZero)).map { .int($0) }
            }
            return nil
        default:
            return nil
        }
    }

    /// Python's `round(x, n)` (ties to even on the exact binary value), or jinja2's `floor`/`ceil`.
    private static func round(_ x: Double, precision: Int, method: String) throws(ChatTemplateError) -> Double {
        switch method {
        case "common":
            guard x.isFinite, (0...15).contains(precision) else { return x }
            return Double(String(format: "%.\(precision)f", x)) ?? x
        case "floor", "ceil":
            let scale = Foundation.pow(10.0, Double(precision))
            return (method == "floor" ? (x * scale).rounded(.down) : (x * scale).rounded(.up)) / scale
        default:
            throw ChatTemplateError(message: "method must be common, ceil or floor")
        }
    }

    /// Python's `%` string formatting for the `format` filter: `%s %r %d %i %f %%`, with optional
    /// precision for `%f` (`%.2f`).
    private static func printfFormat(_ format: String, _ arguments: [Value]) throws(ChatTemplateError) -> String {
        let scalars = Array(format.unicodeScalars)
        var result = ""
        var next = 0
        var i = 0
        func argument() throws(ChatTemplateError) -> Value {
            guard next < arguments.count else { throw ChatTemplateError(message: "not enough arguments for format string") }
            defer { next += 1 }
            return arguments[next]
        }
        while i < scalars.count {
            guard scalars[i] == "%", i + 1 < scalars.count else {
                result.unicodeScalars.append(scalars[i])
                i += 1
                continue
            }
            var j = i + 1
            var precision: Int?
            if scalars[j] == ".", j + 1 < scalars.count {
                var digits = ""
                j += 1
                while j < scalars.count, ("0"..."9").contains(scalars[j]) {
                    digits.unicodeScalars.append(scalars[j])
                    j += 1
                }
                precision = Int(digits) ?? 0
            }
            guard j < scalars.count else { throw ChatTemplateError(message: "incomplete format") }
            switch scalars[j] {
            case "%": result += "%"
            case "s": result += try pythonStr(try argument())
            case "r": result += try pythonRepr(try argument())
            case "d", "i":
                let value = try argument()
                guard let number = value.numeric else {
                    throw ChatTemplateError(message: "%d format: a real number is required, not \(value.typeName)")
                }
                switch number {
                case .int(let n): result += String(n)
                case .double(let d): result += String(Int(exactly: d.rounded(.towardZero)) ?? 0)
                }
            case "f":
                let value = try argument()
                guard let number = value.numeric else {
                    throw ChatTemplateError(message: "must be real number, not \(value.typeName)")
                }
                result += String(format: "%.\(precision ?? 6)f", number.asDouble)
            default:
                throw ChatTemplateError(message: "unsupported format character '\(scalars[j])'")
            }
            i = j + 1
        }
        guard next == arguments.count else {
            throw ChatTemplateError(message: "not all arguments converted during string formatting")
        }
        return result
    }
}

/// jinja2's built-in tests (`x is defined`, `x is string`, ...).
enum Predicates {
    private static let supported: Set<String> = [
        "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "escaped", "even", "false", "filter", "float",
        "ge", "greaterthan", "gt", "in", "integer", "iterable", "le", "lessthan", "lower", "lt", "mapping", "ne",
        "none", "number", "odd", "sameas", "sequence", "string", "test", "true", "undefined", "upper",
        "==", "!=", "<", "<=", ">", ">=",
    ]

    static func isSupported(_ name: String) -> Bool { supported.contains(name) }
    static func isKnownUnsupported(_ name: String) -> Bool { false }

    static func evaluate(
        _ name: String, _ value: Value, positional: [Value], keyword: [(String, Value)], renderer: Renderer
    ) throws(ChatTemplateError) -> Bool {
        func other() throws(ChatTemplateError) -> Value {
            let args = try BoundArguments(name, parameters: ["other"], positional: positional, keyword: keyword)
            return try args.required("other")
        }
        switch name {
        case "defined": return !value.isUndefined
        case "undefined": return value.isUndefined
        case "none": if case .none = value { return true }; return false
        case "boolean", "true", "false":
            guard case .bool(let b) = value else { return false }
            return name == "boolean" || b == (name == "true")
        case "string": if case .string = value { return true }; return false
        case "number":
            switch value {
            case .int, .double, .bool: return true
            default: return false
            }
        case "integer": if case .int = value { return true }; return false
        case "float": if case .double = value { return true }; return false
        case "mapping": if case .dict = value { return true }; return false
        case "iterable":
            switch value {
            case .undefined, .string, .list, .tuple, .dict: return true
            default: return false
            }
        case "sequence":
            switch value {
            case .undefined, .string, .list, .tuple, .dict: return true
            default: return false
            }
        case "callable":
            switch value {
            case .macro, .function: return true
            default: return false
            }
        case "escaped": return false
        case "lower":
            let s = try pythonStr(value)
            let cased = s.unicodeScalars.filter { $0.properties.isCased }
            return !cased.isEmpty && cased.allSatisfy { $0.properties.isLowercase }
        case "upper":
            let s = try pythonStr(value)
            let cased = s.unicodeScalars.filter { $0.properties.isCased }
            return !cased.isEmpty && cased.allSatisfy { $0.properties.isUppercase }
        case "odd", "even":
            let remainder = try Arithmetic.apply(.modulo, value, .int(2), state: renderer.state)
            return try pythonEquals(remainder, .int(name == "odd" ? 1 : 0))
        case "divisibleby":
            let remainder = try Arithmetic.apply(.modulo, value, try other(), state: renderer.state)
            return try pythonEquals(remainder, .int(0))
        case "eq", "equalto", "==": return try pythonEquals(value, try other())
        case "ne", "!=": return !(try pythonEquals(value, try other()))
        case "lt", "lessthan", "<": return try pythonCompare(value, try other(), symbol: "<") < 0
        case "le", "<=": return try pythonCompare(value, try other(), symbol: "<=") <= 0
        case "gt", "greaterthan", ">": return try pythonCompare(value, try other(), symbol: ">") > 0
        case "ge", ">=": return try pythonCompare(value, try other(), symbol: ">=") >= 0
        case "in": return try pythonContains(try other(), value)
        case "sameas":
            // Python identity: exact for None, booleans and shared objects; values otherwise.
            let target = try other()
            switch (value, target) {
            case (.none, .none), (.undefined, .undefined): return true
            case (.bool(let a), .bool(let b)): return a == b
            case (.int(let a), .int(let b)): return a == b
            case (.string(let a), .string(let b)): return a == b
            case (.namespace(let a), .namespace(let b)): return a === b
            default: return false
            }
        case "filter":
            guard case .string(let n) = value else { return false }
            return Filters.isSupported(n)
        case "test":
            guard case .string(let n) = value else { return false }
            return isSupported(n)
        default:
            throw ChatTemplateError(message: "unknown test '\(name)'")
        }
    }
}
