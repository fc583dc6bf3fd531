import Foundation

/// A tree that JSON text can be parsed into: `JSONValue` (keys in a dictionary), or a type that keeps
/// the order of an object's keys, as Python's `json.loads` does (chat-template values).
protocol JSONTree {
    static var jsonNull: Self { get }
    static func jsonBool(_ value: Bool) -> Self
    static func jsonInteger(_ value: Int64) -> Self
    static func jsonDouble(_ value: Double) -> Self
    static func jsonString(_ value: String) -> Self
    static func jsonArray(_ items: [Self]) -> Self
    /// The members in the order of the text; keys are unique (the parser rejects duplicates).
    static func jsonObject(_ members: [(String, Self)]) -> Self
}

extension JSONValue: JSONTree {
    static var jsonNull: JSONValue { .null }
    static func jsonBool(_ value: Bool) -> JSONValue { .bool(value) }
    static func jsonInteger(_ value: Int64) -> JSONValue { .int(value) }
    static func jsonDouble(_ value: Double) -> JSONValue { .double(value) }
    static func jsonString(_ value: String) -> JSONValue { .string(value) }
    static func jsonArray(_ items: [JSONValue]) -> JSONValue { .array(items) }
    static func jsonObject(_ members: [(String, JSONValue)]) -> JSONValue {
        .object(Dictionary(members, uniquingKeysWith: { _, last in last }))
    }
}

/// A strict RFC 8259 parser over UTF-8 bytes. Integers that fit in Int64 stay integers; everything
/// else numeric becomes a Double. Errors carry the line and column.
struct JSONParser<Value: JSONTree> {
    let bytes: [UInt8]
    let source: String
    var index = 0
    var depth = 0
    static var maximumDepth: Int { 512 }

    init(bytes: [UInt8], source: String) {
        self.bytes = bytes
        self.source = source
    }

    mutating func parseDocument() throws -> Value {
        skipWhitespace()
        let value = try parseValue()
        skipWhitespace()
        guard index == bytes.count else { throw failure("unexpected text after the JSON value") }
        return value
    }

    private func failure(_ message: String) -> IRMError {
        var line = 1, column = 1
        for byte in bytes[..<min(index, bytes.count)] {
            if byte == UInt8(ascii: "\n") { line += 1; column = 1 } else if byte & 0xC0 != 0x80 { column += 1 }
        }
        return IRMError("\(source): malformed JSON at line \(line), column \(column): \(message)")
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private mutating func parseValue() throws -> Value {
        guard index < bytes.count else { throw failure("expected a value, found the end of the text") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return Value.jsonString(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return Value.jsonBool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return Value.jsonBool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return Value.jsonNull
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        case UInt8(ascii: "N"), UInt8(ascii: "I"):
            throw failure("NaN and Infinity are not JSON; write null or a finite number")
        default: throw failure("unexpected character '\(Character(Unicode.Scalar(bytes[index])))'")
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws {
        let count = literal.utf8CodeUnitCount
        let expected = UnsafeBufferPointer(start: literal.utf8Start, count: count)
        guard index + count <= bytes.count, bytes[index..<(index + count)].elementsEqual(expected) else {
            throw failure("expected '\(literal)'")
        }
        index += count
    }

    private mutating func enter() throws {
        depth += 1
        if depth > JSONParser.maximumDepth { throw failure("nesting deeper than \(JSONParser.maximumDepth) levels") }
    }

    private mutating func parseObject() throws -> Value {
        try enter()
        defer { depth -= 1 }
        index += 1
        var result: [(String, Value)] = []
        var keys: Set<String> = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return Value.jsonObject(result) }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw failure("expected a string key") }
            let key = try parseString()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw failure("expected ':' after key \"\(key)\"") }
            index += 1
            skipWhitespace()
            let value = try parseValue()
            guard keys.insert(key).inserted else { throw failure("duplicate key \"\(key)\"") }
            result.append((key, value))
            skipWhitespace()
            guard index < bytes.count else { throw failure("unterminated object") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "}") { index += 1; return Value.jsonObject(result) }
            throw failure("expected ',' or '}' in an object")
        }
    }

    private mutating func parseArray() throws -> Value {
        try enter()
        defer { depth -= 1 }
        index += 1
        var result: [Value] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return Value.jsonArray(result) }
        while true {
            skipWhitespace()
            result.append(try parseValue())
            skipWhitespace()
            guard index < bytes.count else { throw failure("unterminated array") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "]") { index += 1; return Value.jsonArray(result) }
            throw failure("expected ',' or ']' in an array")
        }
    }

    private mutating func parseHex4() throws -> UInt32 {
        guard index + 4 <= bytes.count else { throw failure("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[index]
            let digit: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw failure("invalid hex digit in \\u escape")
            }
            value = value * 16 + digit
            index += 1
        }
        return value
    }

    private mutating func parseString() throws -> String {
        index += 1  // opening quote
        var out = [UInt8]()
        while true {
            guard index < bytes.count else { throw failure("unterminated string") }
            let c = bytes[index]
            if c == UInt8(ascii: "\"") { index += 1; break }
            if c < 0x20 { throw failure("unescaped control character in a string") }
            if c != UInt8(ascii: "\\") { out.append(c); index += 1; continue }
            index += 1
            guard index < bytes.count else { throw failure("unterminated escape") }
            let e = bytes[index]
            index += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalarValue = try parseHex4()
                if (0xD800...0xDBFF).contains(scalarValue) {
                    // A high surrogate must pair with a low one; a lone one becomes U+FFFD, as Python does
                    // not allow it in UTF-8 either.
                    if index + 6 <= bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") {
                        let save = index
                        index += 2
                        let low = try parseHex4()
                        if (0xDC00...0xDFFF).contains(low) {
                            scalarValue = 0x10000 + ((scalarValue - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            index = save
                            scalarValue = 0xFFFD
                        }
                    } else {
                        scalarValue = 0xFFFD
                    }
                } else if (0xDC00...0xDFFF).contains(scalarValue) {
                    scalarValue = 0xFFFD
                }
                let scalar = Unicode.Scalar(scalarValue) ?? "\u{FFFD}"
                out.append(contentsOf: Array(String(Character(scalar)).utf8))
            default: throw failure("invalid escape '\\\(Character(Unicode.Scalar(e)))'")
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private mutating func parseNumber() throws -> Value {
        let start = index
        var isInteger = true
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        func digits() -> Int {
            let s = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            return index - s
        }
        guard index < bytes.count else { throw failure("truncated number") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else if digits() == 0 {
            throw failure("expected digits in a number")
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            isInteger = false
            index += 1
            guard digits() > 0 else { throw failure("expected digits after the decimal point") }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            isInteger = false
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digits() > 0 else { throw failure("expected digits in the exponent") }
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        if isInteger, let value = Int64(text) { return Value.jsonInteger(value) }
        guard let value = Double(text) else { throw failure("number out of range") }
        return Value.jsonDouble(value)
    }
}
