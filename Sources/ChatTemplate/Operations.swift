import Foundation

/// Attribute, item and slice access with jinja2's lookup rules: `x.name` tries the Python
/// attribute (a method) first and then the key; `x[key]` tries the key first and then the
/// attribute. A failed lookup gives undefined, carrying jinja2's message for when it is used.
enum Access {
    static func attribute(of value: Value, _ name: String) throws(ChatTemplateError) -> Value {
        switch value {
        case .undefined(let message):
            throw ChatTemplateError(message: message)
        case .dict(let dict):
            if let method = Methods.lookup(name, on: value) { return method }
            return dict[name] ?? .undefined("'dict object' has no attribute '\(name)'")
        case .namespace(let namespace):
            return namespace.attributes[name] ?? .undefined("'Namespace' object has no attribute '\(name)'")
        case .loop(let loop):
            return loopAttribute(loop, name)
        default:
            if let method = Methods.lookup(name, on: value) { return method }
            return .undefined("'\(value.objectTypeDescription)' has no attribute '\(name)'")
        }
    }

    private static func loopAttribute(_ loop: LoopState, _ name: String) -> Value {
        let i = loop.index0, n = loop.length
        switch name {
        case "index": return .int(i + 1)
        case "index0": return .int(i)
        case "revindex": return .int(n - i)
        case "revindex0": return .int(n - i - 1)
        case "first": return .bool(i == 0)
        case "last": return .bool(i == n - 1)
        case "length": return .int(n)
        case "depth": return .int(1)
        case "depth0": return .int(0)
        case "previtem": return i > 0 ? loop.items[i - 1] : .undefined("there is no previous item")
        case "nextitem": return i + 1 < n ? loop.items[i + 1] : .undefined("there is no next item")
        case "cycle", "changed": return .function(FunctionValue(kind: .method(receiver: .loop(loop), name: name)))
        default: return .undefined("'LoopContext' object has no attribute '\(name)'")
        }
    }

    static func item(of value: Value, _ key: Value) throws(ChatTemplateError) -> Value {
        if case .undefined(let message) = value { throw ChatTemplateError(message: message) }
        switch (value, key) {
        case (.list(let items), _), (.tuple(let items), _):
            if case .int(let index)? = key.numeric {
                let resolved = index < 0 ? index + items.count : index
                if resolved >= 0 && resolved < items.count { return items[resolved] }
            }
        case (.string(let text), _):
            if case .int(let index)? = key.numeric {
                let scalars = Array(text.unicodeScalars)
                let resolved = index < 0 ? index + scalars.count : index
                if resolved >= 0 && resolved < scalars.count { return .string(String(scalars[resolved])) }
            }
        case (.dict(let dict), .string(let name)):
            if let found = dict[name] { return found }
        default:
            break
        }
        if case .string(let name) = key {
            if case .namespace = value { return try attribute(of: value, name) }
            if case .loop = value { return try attribute(of: value, name) }
            if let method = Methods.lookup(name, on: value) { return method }
            return .undefined("'\(value.objectTypeDescription)' has no attribute '\(name)'")
        }
        return .undefined("\(value.objectTypeDescription) has no element \(try pythonRepr(key))")
    }

    /// Python slicing `value[start:stop:step]` of a list, tuple or string (code points).
    static func slice(_ value: Value, start: Value?, stop: Value?, step: Value?) throws(ChatTemplateError) -> Value {
        if case .undefined(let message) = value { throw ChatTemplateError(message: message) }
        func bound(_ v: Value?) throws(ChatTemplateError) -> Int? {
            guard let v else { return nil }
            if case .none = v { return nil }
            guard case .int(let i)? = v.numeric else {
                throw ChatTemplateError(message: "slice indices must be integers or None or have an __index__ method")
            }
            return i
        }
        let stepValue = try bound(step) ?? 1
        guard stepValue != 0 else { throw ChatTemplateError(message: "slice step cannot be zero") }
        let startValue = try bound(start), stopValue = try bound(stop)
        func indices(_ count: Int) -> [Int] {
            func clamp(_ raw: Int?, defaultValue: Int) -> Int {
                guard var i = raw else { return defaultValue }
                if i < 0 {
                    i += count
                    if i < 0 { i = stepValue < 0 ? -1 : 0 }
                } else if i >= count {
                    i = stepValue < 0 ? count - 1 : count
                }
                return i
            }
            let first = clamp(startValue, defaultValue: stepValue < 0 ? count - 1 : 0)
            let last = clamp(stopValue, defaultValue: stepValue < 0 ? -1 : count)
            var result: [Int] = []
            var i = first
            while stepValue > 0 ? i < last : i > last {
                result.append(i)
                i += stepValue
            }
            return result
        }
        switch value {
        case .list(let items): return .list(indices(items.count).map { items[$0] })
        case .tuple(let items): return .tuple(indices(items.count).map { items[$0] })
        case .string(let text):
            let scalars = Array(text.unicodeScalars)
            var view = String.UnicodeScalarView()
            for i in indices(scalars.count) { view.append(scalars[i]) }
            return .string(String(view))
        default:
            return .undefined("\(value.objectTypeDescription) cannot be sliced")
        }
    }
}

/// Python's arithmetic on template values, with 64-bit integers that report overflow.
enum Arithmetic {
    private static func overflow() -> ChatTemplateError {
        ChatTemplateError(message: "integer overflow: Python integers are unbounded, this renderer uses 64-bit integers")
    }

    static func negate(_ value: Value) throws(ChatTemplateError) -> Value {
        if case .undefined(let message) = value { throw ChatTemplateError(message: message) }
        switch value.numeric {
        case .int(let i)?:
            let (result, overflowed) = Int(0).subtractingReportingOverflow(i)
            if overflowed { throw overflow() }
            return .int(result)
        case .double(let d)?: return .double(-d)
        case nil: throw ChatTemplateError(message: "bad operand type for unary -: '\(value.typeName)'")
        }
    }

    static func apply(_ op: BinaryOperator, _ a: Value, _ b: Value, state: RenderState) throws(ChatTemplateError) -> Value {
        if op == .concatenate {
            let text = try pythonStr(a) + pythonStr(b)
            try state.chargeBytes(text.utf8.count)
            return .string(text)
        }
        if case .undefined(let message) = a { throw ChatTemplateError(message: message) }
        if case .undefined(let message) = b { throw ChatTemplateError(message: message) }
        if let x = a.numeric, let y = b.numeric { return try numeric(op, x, y) }
        switch (op, a, b) {
        case (.add, .string(let x), .string(let y)):
            try state.chargeBytes(x.utf8.count + y.utf8.count)
            return .string(x + y)
        case (.add, .list(let x), .list(let y)):
            try state.chargeBytes(8 * (x.count + y.count))
            return .list(x + y)
        case (.add, .tuple(let x), .tuple(let y)):
            try state.chargeBytes(8 * (x.count + y.count))
            return .tuple(x + y)
        case (.multiply, .string, _), (.multiply, .list, _), (.multiply, .tuple, _):
            return try repeated(a, b, state: state)
        case (.multiply, _, .string), (.multiply, _, .list), (.multiply, _, .tuple):
            return try repeated(b, a, state: state)
        case (.modulo, .string, _):
            throw ChatTemplateError(message: "unsupported: printf-style formatting with '%' on strings")
        case (.add, .string, _):
            throw ChatTemplateError(message: "can only concatenate str (not \"\(b.typeName)\") to str")
        case (.add, .list, _):
            throw ChatTemplateError(message: "can only concatenate list (not \"\(b.typeName)\") to list")
        case (.add, .tuple, _):
            throw ChatTemplateError(message: "can only concatenate tuple (not \"\(b.typeName)\") to tuple")
        default:
            throw ChatTemplateError(
                message: "unsupported operand type(s) for \(op.rawValue): '\(a.typeName)' and '\(b.typeName)'")
        }
    }

    private static func repeated(_ sequence: Value, _ count: Value, state: RenderState) throws(ChatTemplateError) -> Value {
        guard case .int(let times)? = count.numeric else {
            throw ChatTemplateError(message: "can't multiply sequence by non-int of type '\(count.typeName)'")
        }
        let n = max(0, times)
        switch sequence {
        case .string(let s):
            let (size, overflowed) = s.utf8.count.multipliedReportingOverflow(by: n)
            if overflowed { throw overflow() }
            try state.chargeBytes(size)
            return .string(String(repeating: s, count: n))
        case .list(let items), .tuple(let items):
            let (size, overflowed) = items.count.multipliedReportingOverflow(by: n)
            if overflowed { throw overflow() }
            try state.chargeBytes(8 * size)
            var result: [Value] = []
            for _ in 0..<n { result += items }
            if case .tuple = sequence { return .tuple(result) }
            return .list(result)
        default:
            throw ChatTemplateError(message: "can't multiply sequence by non-int")
        }
    }

    private static func numeric(_ op: BinaryOperator, _ x: Value.Numeric, _ y: Value.Numeric) throws(ChatTemplateError) -> Value {
        if case .int(let i) = x, case .int(let j) = y {
            switch op {
            case .add:
                let (r, o) = i.addingReportingOverflow(j)
                if o { throw overflow() }
                return .int(r)
            case .subtract:
                let (r, o) = i.subtractingReportingOverflow(j)
                if o { throw overflow() }
                return .int(r)
            case .multiply:
                let (r, o) = i.multipliedReportingOverflow(by: j)
                if o { throw overflow() }
                return .int(r)
            case .divide:
                guard j != 0 else { throw ChatTemplateError(message: "division by zero") }
                return .double(Double(i) / Double(j))
            case .floorDivide:
                guard j != 0 else { throw ChatTemplateError(message: "integer division or modulo by zero") }
                if i == Int.min && j == -1 { throw overflow() }
                var q = i / j
                if (i % j != 0) && ((i < 0) != (j < 0)) { q -= 1 }
                return .int(q)
            case .modulo:
                guard j != 0 else { throw ChatTemplateError(message: "integer modulo by zero") }
                if j == -1 { return .int(0) }
                var r = i % j
                if r != 0 && ((r < 0) != (j < 0)) { r += j }
                return .int(r)
            case .power:
                if j < 0 {
                    guard i != 0 else { throw ChatTemplateError(message: "0.0 cannot be raised to a negative power") }
                    return .double(Foundation.pow(Double(i), Double(j)))
                }
                var result = 1, base = i, exponent = j
                while exponent > 0 {
                    if exponent & 1 == 1 {
                        let (r, o) = result.multipliedReportingOverflow(by: base)
                        if o { throw overflow() }
                        result = r
                    }
                    exponent >>= 1
                    if exponent > 0 {
                        let (b, o) = base.multipliedReportingOverflow(by: base)
                        if o { throw overflow() }
                        base = b
                    }
                }
                return .int(result)
            case .concatenate:
                break
            }
        }
        let p = x.asDouble, q = y.asDouble
        switch op {
        case .add: return .double(p + q)
        case .subtract: return .double(p - q)
        case .multiply: return .double(p * q)
        case .divide:
            guard q != 0 else { throw ChatTemplateError(message: "float division by zero") }
            return .double(p / q)
        case .floorDivide:
            guard q != 0 else { throw ChatTemplateError(message: "float floor division by zero") }
            return .double((p / q).rounded(.down))
        case .modulo:
            guard q != 0 else { throw ChatTemplateError(message: "float modulo") }
            var r = fmod(p, q)
            if r != 0 && ((r < 0) != (q < 0)) { r += q }
            return .double(r)
        case .power:
            if p == 0 && q < 0 { throw ChatTemplateError(message: "0.0 cannot be raised to a negative power") }
            return .double(Foundation.pow(p, q))
        case .concatenate:
            return .string(pythonFloatRepr(p) + pythonFloatRepr(q))
        }
    }
}
