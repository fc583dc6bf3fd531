import Foundation

/// A value a chat template can see: the JSON-like data that transformers passes to
/// `apply_chat_template` (messages, tools, documents, special tokens, extra keyword arguments).
///
/// `undefined` behaves like a variable that was never passed (jinja2's default `Undefined`: it
/// prints as "", is falsy, and `is defined` is false); `none` is Python's `None`. Integers and
/// doubles stay apart because Python prints them differently (`1` against `1.0`).
public enum TemplateValue: Sendable, Equatable {
    case undefined
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([TemplateValue])
    case object(TemplateObject)
}

/// A string-keyed mapping that keeps insertion order, like a Python dict. Assigning an existing key
/// replaces its value and keeps its position.
public struct TemplateObject: Sendable, Equatable {
    private var entries: InsertionOrderedDictionary<TemplateValue>

    public init(_ pairs: [(String, TemplateValue)]) { entries = InsertionOrderedDictionary(pairs) }

    public init() { self.init([]) }

    public var keys: [String] { entries.keys }

    public subscript(key: String) -> TemplateValue? {
        get { entries[key] }
        set { entries[key] = newValue }
    }

    /// The entries in insertion order.
    public var pairs: [(String, TemplateValue)] { entries.pairs }

    public var count: Int { entries.count }

    /// Python dict equality: the same keys with equal values, in any order.
    public static func == (lhs: TemplateObject, rhs: TemplateObject) -> Bool {
        lhs.entries.hasSameEntries(as: rhs.entries)
    }
}

extension TemplateObject: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, TemplateValue)...) { self.init(elements) }
}

extension TemplateValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: TemplateValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, TemplateValue)...) { self = .object(TemplateObject(elements)) }
}

extension TemplateValue {
    /// The value under `key` when this is an object.
    public subscript(key: String) -> TemplateValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    public var arrayValue: [TemplateValue]? { if case .array(let a) = self { a } else { nil } }
    public var objectValue: TemplateObject? { if case .object(let o) = self { o } else { nil } }
    public var boolValue: Bool? { if case .bool(let b) = self { b } else { nil } }
}
