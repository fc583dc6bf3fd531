import Foundation

/// A value during rendering: the data types of `TemplateValue` plus what templates create
/// (tuples, namespaces, macros, bound methods, the `loop` object). Never leaves one render call.
indirect enum Value {
    /// Carries the message jinja2 would raise if the undefined value were used.
    case undefined(String)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([Value])
    case tuple([Value])
    case dict(Dict)
    case namespace(Namespace)
    case macro(MacroValue)
    /// A method looked up on a value (`text.split`), or a global function, waiting to be called.
    case function(FunctionValue)
    case loop(LoopState)
}

/// A Python dict whose keys are strings, during rendering.
typealias Dict = InsertionOrderedDictionary<Value>

/// A string-keyed dictionary that keeps insertion order, like a Python dict: assigning an existing
/// key replaces its value and keeps its position; assigning nil removes it.
struct InsertionOrderedDictionary<Element> {
    private(set) var keys: [String] = []
    private var storage: [String: Element] = [:]

    init() {}

    init(_ pairs: [(String, Element)]) {
        for (key, value) in pairs { self[key] = value }
    }

    subscript(key: String) -> Element? {
        get { storage[key] }
        set {
            if let newValue {
                if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    var count: Int { keys.count }
    var pairs: [(String, Element)] { keys.compactMap { key in storage[key].map { (key, $0) } } }
    var values: [Element] { keys.compactMap { storage[$0] } }
}

extension InsertionOrderedDictionary: Sendable where Element: Sendable {}

extension InsertionOrderedDictionary where Element: Equatable {
    /// Python dict equality: the same keys with equal values, in any order.
    func hasSameEntries(as other: Self) -> Bool { storage == other.storage }
}

/// `namespace(...)`: the one mutable object templates can assign into (`{% set ns.x = 1 %}`), so
/// that values survive the end of a loop iteration.
final class Namespace {
    var attributes: Dict
    init(_ attributes: Dict) { self.attributes = attributes }
}

/// A macro bound to the scope it was defined in, which it reads at call time.
struct MacroValue {
    let definition: MacroDefinition
    let closure: Scope
}

struct FunctionValue {
    indirect enum Kind {
        /// A method of `receiver` (for example `split` of a string), dispatched by name.
        case method(receiver: Value, name: String)
        /// A global function such as `range` or `raise_exception`.
        case global(String)
    }
    let kind: Kind
}

/// The `loop` variable inside a for loop.
final class LoopState {
    let items: [Value]
    var index0 = 0
    /// The last value passed to `loop.changed(...)`.
    var lastChanged: [Value]?

    init(items: [Value]) { self.items = items }

    var length: Int { items.count }
}

/// A chain of variable frames. Lookups walk outwards; assignments go into the innermost frame, as
/// jinja2 scopes `{% set %}` to the enclosing for-loop iteration or macro call.
final class Scope {
    private var variables: [String: Value] = [:]
    let parent: Scope?

    init(parent: Scope?) { self.parent = parent }

    func lookup(_ name: String) -> Value? {
        var scope: Scope? = self
        while let current = scope {
            if let value = current.variables[name] { return value }
            scope = current.parent
        }
        return nil
    }

    func assign(_ name: String, _ value: Value) { variables[name] = value }
}

// MARK: - Conversion

extension Value {
    /// The runtime form of a context value. Depth is bounded by the JSON reader and by
    /// `ValueLimits.maximumDepth` for values built in Swift.
    init(_ value: TemplateValue, depth: Int = 0) throws(ChatTemplateError) {
        guard depth < ValueLimits.maximumDepth else {
            throw ChatTemplateError(message: "context value nested deeper than \(ValueLimits.maximumDepth) levels")
        }
        switch value {
        case .undefined: self = .undefined("a context value is undefined")
        case .none: self = .none
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .array(let items):
            var converted: [Value] = []
            converted.reserveCapacity(items.count)
            for item in items { converted.append(try Value(item, depth: depth + 1)) }
            self = .list(converted)
        case .object(let object):
            var dict = Dict()
            for (key, item) in object.pairs { dict[key] = try Value(item, depth: depth + 1) }
            self = .dict(dict)
        }
    }
}

enum ValueLimits {
    /// How deeply lists and dicts may nest when printed, compared or serialised.
    static let maximumDepth = 256
}

func tooDeep() -> ChatTemplateError {
    ChatTemplateError(message: "value nested deeper than \(ValueLimits.maximumDepth) levels")
}

// MARK: - Python semantics

extension Value {
    var isUndefined: Bool { if case .undefined = self { true } else { false } }

    /// Python truthiness (`bool(x)`); undefined is false.
    var isTruthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .list(let items), .tuple(let items): return !items.isEmpty
        case .dict(let dict): return dict.count > 0
        case .namespace, .macro, .function, .loop: return true
        }
    }

    /// The Python type name, as error messages show it (`str`, `int`, `NoneType`, ...).
    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .list: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .namespace: return "Namespace"
        case .macro: return "Macro"
        case .function: return "builtin_function_or_method"
        case .loop: return "LoopContext"
        }
    }

    /// jinja2's `object_type_repr`, used in "has no attribute" messages.
    var objectTypeDescription: String {
        if case .none = self { return "None" }
        return "\(typeName) object"
    }

    /// A number as Python sees it for arithmetic: bools are integers.
    var numeric: Numeric? {
        switch self {
        case .bool(let b): return .int(b ? 1 : 0)
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        default: return nil
        }
    }

    enum Numeric {
        case int(Int)
        case double(Double)
        var asDouble: Double {
            switch self {
            case .int(let i): return Double(i)
            case .double(let d): return d
            }
        }
    }
}

/// Python `==`. Numbers compare across int/float/bool; list and tuple never equal each other;
/// dicts compare without regard to order; undefined equals only undefined.
func pythonEquals(_ a: Value, _ b: Value, depth: Int = 0) throws(ChatTemplateError) -> Bool {
    guard depth < ValueLimits.maximumDepth else { throw tooDeep() }
    if let x = a.numeric, let y = b.numeric {
        switch (x, y) {
        case (.int(let i), .int(let j)): return i == j
        default: return x.asDouble == y.asDouble
        }
    }
    switch (a, b) {
    case (.undefined, .undefined), (.none, .none): return true
    case (.string(let x), .string(let y)): return x.unicodeScalars.elementsEqual(y.unicodeScalars)
    case (.list(let x), .list(let y)), (.tuple(let x), .tuple(let y)):
        guard x.count == y.count else { return false }
        for (p, q) in zip(x, y) where !(try pythonEquals(p, q, depth: depth + 1)) { return false }
        return true
    case (.dict(let x), .dict(let y)):
        guard x.count == y.count else { return false }
        for (key, value) in x.pairs {
            guard let other = y[key], try pythonEquals(value, other, depth: depth + 1) else { return false }
        }
        return true
    case (.namespace(let x), .namespace(let y)): return x === y
    case (.loop(let x), .loop(let y)): return x === y
    case (.macro(let x), .macro(let y)): return x.definition === y.definition && x.closure === y.closure
    default: return false
    }
}

/// Python ordering (`<`): numbers, strings by code point, lists and tuples lexicographically.
/// Returns the sign of `a - b`; other combinations raise Python's TypeError text.
func pythonCompare(_ a: Value, _ b: Value, symbol: String, depth: Int = 0) throws(ChatTemplateError) -> Int {
    guard depth < ValueLimits.maximumDepth else { throw tooDeep() }
    if let x = a.numeric, let y = b.numeric {
        switch (x, y) {
        case (.int(let i), .int(let j)): return i < j ? -1 : (i > j ? 1 : 0)
        default:
            let p = x.asDouble, q = y.asDouble
            return p < q ? -1 : (p > q ? 1 : 0)
        }
    }
    switch (a, b) {
    case (.string(let x), .string(let y)):
        var i = x.unicodeScalars.makeIterator(), j = y.unicodeScalars.makeIterator()
        while true {
            switch (i.next(), j.next()) {
            case (nil, nil): return 0
            case (nil, _): return -1
            case (_, nil): return 1
            case (let p?, let q?): if p != q { return p.value < q.value ? -1 : 1 }
            }
        }
    case (.list(let x), .list(let y)), (.tuple(let x), .tuple(let y)):
        for (p, q) in zip(x, y) where !(try pythonEquals(p, q, depth: depth + 1)) {
            return try pythonCompare(p, q, symbol: symbol, depth: depth + 1)
        }
        return x.count < y.count ? -1 : (x.count > y.count ? 1 : 0)
    default:
        if case .undefined(let message) = a { throw ChatTemplateError(message: message) }
        if case .undefined(let message) = b { throw ChatTemplateError(message: message) }
        throw ChatTemplateError(
            message: "'\(symbol)' not supported between instances of '\(a.typeName)' and '\(b.typeName)'")
    }
}

/// The items of `value` as Python's `iter()` yields them: characters (Unicode scalars) of a string,
/// keys of a dict, nothing for undefined.
func pythonIterate(_ value: Value) throws(ChatTemplateError) -> [Value] {
    switch value {
    case .undefined: return []
    case .list(let items), .tuple(let items): return items
    case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
    case .dict(let dict): return dict.keys.map { .string($0) }
    default: throw ChatTemplateError(message: "'\(value.typeName)' object is not iterable")
    }
}

/// Python's `len()`; undefined has length 0.
func pythonLength(_ value: Value) throws(ChatTemplateError) -> Int {
    switch value {
    case .undefined: return 0
    case .string(let s): return s.unicodeScalars.count
    case .list(let items), .tuple(let items): return items.count
    case .dict(let dict): return dict.count
    case .loop(let loop): return loop.length
    default: throw ChatTemplateError(message: "object of type '\(value.typeName)' has no len()")
    }
}

/// Python's `x in container`.
func pythonContains(_ container: Value, _ item: Value) throws(ChatTemplateError) -> Bool {
    switch container {
    case .undefined: return false
    case .string(let s):
        guard case .string(let needle) = item else {
            if case .undefined(let message) = item { throw ChatTemplateError(message: message) }
            throw ChatTemplateError(message: "'in <string>' requires string as left operand, not \(item.typeName)")
        }
        if needle.isEmpty { return true }
        return Array(s.unicodeScalars).firstRange(of: Array(needle.unicodeScalars)) != nil
    case .list(let items), .tuple(let items):
        for element in items where try pythonEquals(element, item) { return true }
        return false
    case .dict(let dict):
        switch item {
        case .string(let key): return dict[key] != nil
        case .list, .dict: throw ChatTemplateError(message: "unhashable type: '\(item.typeName)'")
        default: return false
        }
    default:
        throw ChatTemplateError(message: "argument of type '\(container.typeName)' is not iterable")
    }
}
