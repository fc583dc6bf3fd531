import Foundation

/// Python's `repr(float)` (also its `str()`): the shortest digits that read back to the same
/// double, in fixed notation when the decimal exponent is in [-4, 16) and otherwise in scientific
/// notation with a signed exponent of at least two digits (`1e-05`, `1e+16`). `nan`, `inf`, `-inf`.
func pythonFloatRepr(_ value: Double) -> String {
    if value.isNaN { return "nan" }
    if value.isInfinite { return value < 0 ? "-inf" : "inf" }
    if value == 0 { return value.sign == .minus ? "-0.0" : "0.0" }
    let (negative, digits, exponent) = shortestDigits(value)
    var result = negative ? "-" : ""
    if exponent < -4 || exponent >= 16 {
        result += String(digits.first ?? "0")
        if digits.count > 1 { result += "." + digits.dropFirst() }
        result += exponent < 0 ? "e-" : "e+"
        let magnitude = String(abs(exponent))
        result += (magnitude.count < 2 ? "0" : "") + magnitude
    } else if exponent < 0 {
        result += "0." + String(repeating: "0", count: -exponent - 1) + digits
    } else if digits.count > exponent + 1 {
        let split = digits.index(digits.startIndex, offsetBy: exponent + 1)
        result += digits[..<split] + "." + digits[split...]
    } else {
        result += digits + String(repeating: "0", count: exponent + 1 - digits.count) + ".0"
    }
    return result
}

/// The shortest round-trip decimal digits of a finite non-zero double and the exponent of the
/// first digit (value = 0.d1d2... × 10^(exponent+1)), taken from Swift's shortest description.
private func shortestDigits(_ value: Double) -> (negative: Bool, digits: String, exponent: Int) {
    var text = value.description
    let negative = text.hasPrefix("-")
    if negative { text.removeFirst() }
    var exponentPart = 0
    if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
        exponentPart = Int(text[text.index(after: e)...]) ?? 0
        text = String(text[..<e])
    }
    let integerPart: Substring
    let fractionPart: Substring
    if let dot = text.firstIndex(of: ".") {
        integerPart = text[..<dot]
        fractionPart = text[text.index(after: dot)...]
    } else {
        integerPart = Substring(text)
        fractionPart = ""
    }
    var digits = String(integerPart) + fractionPart
    var exponent = integerPart.count - 1 + exponentPart
    while digits.hasPrefix("0") && digits.count > 1 {
        digits.removeFirst()
        exponent -= 1
    }
    while digits.hasSuffix("0") && digits.count > 1 { digits.removeLast() }
    return (negative, digits, exponent)
}

/// Python's `repr(str)`: single quotes unless the text has a single quote and no double quote;
/// backslash escapes for the quote, backslash, `\t \n \r`, other control characters and
/// non-printable characters (`\x..`, `\u....`, `\U........`).
func pythonStringRepr(_ text: String) -> String {
    let quote: Unicode.Scalar = (text.unicodeScalars.contains("'") && !text.unicodeScalars.contains("\"")) ? "\"" : "'"
    var result = String.UnicodeScalarView()
    result.append(quote)
    for scalar in text.unicodeScalars {
        switch scalar {
        case quote, "\\":
            result.append("\\")
            result.append(scalar)
        case "\t": result.append(contentsOf: "\\t".unicodeScalars)
        case "\n": result.append(contentsOf: "\\n".unicodeScalars)
        case "\r": result.append(contentsOf: "\\r".unicodeScalars)
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F {
                result.append(contentsOf: hexEscape(scalar.value, "x", 2).unicodeScalars)
            } else if scalar.value < 0x7F || isPythonPrintable(scalar) {
                result.append(scalar)
            } else if scalar.value <= 0xFF {
                result.append(contentsOf: hexEscape(scalar.value, "x", 2).unicodeScalars)
            } else if scalar.value <= 0xFFFF {
                result.append(contentsOf: hexEscape(scalar.value, "u", 4).unicodeScalars)
            } else {
                result.append(contentsOf: hexEscape(scalar.value, "U", 8).unicodeScalars)
            }
        }
    }
    result.append(quote)
    return String(result)
}

private func hexEscape(_ value: UInt32, _ marker: String, _ width: Int) -> String {
    let hex = String(value, radix: 16)
    return "\\" + marker + String(repeating: "0", count: max(0, width - hex.count)) + hex
}

/// Python's `str.isprintable()` for one character: everything except the "Other" and
/// "Separator" general categories, where the ASCII space is printable.
private func isPythonPrintable(_ scalar: Unicode.Scalar) -> Bool {
    if scalar == " " { return true }
    switch scalar.properties.generalCategory {
    case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator, .spaceSeparator:
        return false
    default:
        return true
    }
}

/// Python's `str(x)` of a value, which is what `{{ x }}` prints (undefined prints "").
func pythonStr(_ value: Value) throws(ChatTemplateError) -> String {
    switch value {
    case .undefined: return ""
    case .string(let s): return s
    default: return try pythonRepr(value)
    }
}

/// Python's `repr(x)`, used for items inside printed lists, tuples and dicts.
func pythonRepr(_ value: Value, depth: Int = 0) throws(ChatTemplateError) -> String {
    guard depth < ValueLimits.maximumDepth else { throw tooDeep() }
    switch value {
    case .undefined: return "Undefined"
    case .none: return "None"
    case .bool(let b): return b ? "True" : "False"
    case .int(let i): return String(i)
    case .double(let d): return pythonFloatRepr(d)
    case .string(let s): return pythonStringRepr(s)
    case .list(let items):
        var parts: [String] = []
        for item in items { parts.append(try pythonRepr(item, depth: depth + 1)) }
        return "[" + parts.joined(separator: ", ") + "]"
    case .tuple(let items):
        var parts: [String] = []
        for item in items { parts.append(try pythonRepr(item, depth: depth + 1)) }
        return "(" + parts.joined(separator: ", ") + (items.count == 1 ? ",)" : ")")
    case .dict(let dict):
        var parts: [String] = []
        for (key, item) in dict.pairs {
            parts.append(pythonStringRepr(key) + ": " + (try pythonRepr(item, depth: depth + 1)))
        }
        return "{" + parts.joined(separator: ", ") + "}"
    case .namespace(let namespace):
        return "<Namespace " + (try pythonRepr(.dict(namespace.attributes), depth: depth + 1)) + ">"
    case .macro(let macro): return "<Macro \(pythonStringRepr(macro.definition.name))>"
    case .function(let function):
        switch function.kind {
        case .method(let receiver, let name): return "<built-in method \(name) of \(receiver.typeName) object>"
        case .global(let name): return "<function \(name)>"
        }
    case .loop(let loop): return "<LoopContext \(loop.index0 + 1)/\(loop.length)>"
    }
}

/// Options of Python's `json.dumps`, as transformers' `tojson` filter passes them.
struct JSONDumpOptions {
    var ensureASCII = false
    /// nil: one line. Otherwise the text repeated once per nesting level (Python's `indent`).
    var indent: String?
    var itemSeparator = ", "
    var keySeparator = ": "
    var sortKeys = false
}

/// Python's `json.dumps(value, ...)`: floats as `repr`, non-finite floats as `NaN`/`Infinity`,
/// tuples as arrays, keys in insertion order unless sorted.
func pythonJSONDumps(_ value: Value, _ options: JSONDumpOptions, level: Int = 0) throws(ChatTemplateError) -> String {
    guard level < ValueLimits.maximumDepth else { throw tooDeep() }
    switch value {
    case .none: return "null"
    case .bool(let b): return b ? "true" : "false"
    case .int(let i): return String(i)
    case .double(let d):
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
        return pythonFloatRepr(d)
    case .string(let s): return jsonQuote(s, ensureASCII: options.ensureASCII)
    case .list(let items), .tuple(let items):
        if items.isEmpty { return "[]" }
        var parts: [String] = []
        for item in items { parts.append(try pythonJSONDumps(item, options, level: level + 1)) }
        return wrap(parts, open: "[", close: "]", options: options, level: level)
    case .dict(let dict):
        if dict.count == 0 { return "{}" }
        var pairs = dict.pairs
        if options.sortKeys {
            pairs.sort { $0.0.unicodeScalars.lexicographicallyPrecedes($1.0.unicodeScalars) }
        }
        var parts: [String] = []
        for (key, item) in pairs {
            parts.append(jsonQuote(key, ensureASCII: options.ensureASCII) + options.keySeparator
                + (try pythonJSONDumps(item, options, level: level + 1)))
        }
        return wrap(parts, open: "{", close: "}", options: options, level: level)
    default:
        throw ChatTemplateError(message: "Object of type \(value.typeName) is not JSON serializable")
    }
}

private func wrap(_ parts: [String], open: String, close: String, options: JSONDumpOptions, level: Int) -> String {
    guard let indent = options.indent else {
        return open + parts.joined(separator: options.itemSeparator) + close
    }
    let inner = "\n" + String(repeating: indent, count: level + 1)
    let outer = "\n" + String(repeating: indent, count: level)
    return open + inner + parts.joined(separator: options.itemSeparator + inner) + outer + close
}

/// A JSON string literal as Python's json module writes it (lowercase `\u00xx` escapes).
func jsonQuote(_ text: String, ensureASCII: Bool) -> String {
    var result = String.UnicodeScalarView()
    result.append("\"")
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": result.append(contentsOf: "\\\"".unicodeScalars)
        case "\\": result.append(contentsOf: "\\\\".unicodeScalars)
        case "\n": result.append(contentsOf: "\\n".unicodeScalars)
        case "\r": result.append(contentsOf: "\\r".unicodeScalars)
        case "\t": result.append(contentsOf: "\\t".unicodeScalars)
        case "\u{08}": result.append(contentsOf: "\\b".unicodeScalars)
        case "\u{0C}": result.append(contentsOf: "\\f".unicodeScalars)
        default:
            if scalar.value < 0x20 {
                result.append(contentsOf: hexEscape(scalar.value, "u", 4).unicodeScalars)
            } else if ensureASCII && scalar.value > 0x7E {
                if scalar.value > 0xFFFF {
                    let offset = scalar.value - 0x10000
                    result.append(contentsOf: hexEscape(0xD800 + (offset >> 10), "u", 4).unicodeScalars)
                    result.append(contentsOf: hexEscape(0xDC00 + (offset & 0x3FF), "u", 4).unicodeScalars)
                } else {
                    result.append(contentsOf: hexEscape(scalar.value, "u", 4).unicodeScalars)
                }
            } else {
                result.append(scalar)
            }
        }
    }
    result.append("\"")
    return String(result)
}
