import Foundation

/// The global functions transformers' environment gives templates: jinja2's `range`, `namespace`
/// and `dict`, and transformers' `raise_exception` and `strftime_now`.
enum Globals {
    static let names = ["raise_exception", "strftime_now", "range", "namespace", "dict"]

    /// A scope holding the globals; the render context sits on top of it.
    static func scope() -> Scope {
        let scope = Scope(parent: nil)
        for name in names { scope.assign(name, .function(FunctionValue(kind: .global(name)))) }
        return scope
    }

    static func call(_ name: String, positional: [Value], keyword: [(String, Value)], state: RenderState) throws(ChatTemplateError) -> Value {
        switch name {
        case "raise_exception":
            let args = try BoundArguments("raise_exception", parameters: ["message"], positional: positional, keyword: keyword)
            let message = try pythonStr(try args.required("message"))
            throw ChatTemplateError(message: message, isRaisedByTemplate: true)
        case "strftime_now":
            let args = try BoundArguments("strftime_now", parameters: ["format"], positional: positional, keyword: keyword)
            guard case .string(let format) = try args.required("format") else {
                throw ChatTemplateError(message: "strftime() argument 1 must be str")
            }
            return .string(try strftime(format, state.now))
        case "range":
            return try range(positional, keyword)
        case "namespace":
            var attributes = Dict()
            if let first = positional.first {
                guard positional.count == 1, case .dict(let initial) = first else {
                    throw ChatTemplateError(message: "namespace() takes at most one positional argument, a dict")
                }
                attributes = initial
            }
            for (key, value) in keyword { attributes[key] = value }
            for key in attributes.keys { try checkNamespaceName(key) }
            return .namespace(Namespace(attributes))
        case "dict":
            var result = Dict()
            if let first = positional.first {
                guard positional.count == 1 else { throw ChatTemplateError(message: "dict expected at most 1 argument") }
                switch first {
                case .dict(let initial): result = initial
                case .list(let items), .tuple(let items):
                    for item in items {
                        guard case .string(let key)? = (try pythonIterate(item)).first, try pythonLength(item) == 2 else {
                            throw ChatTemplateError(message: "dict() needs (str, value) pairs")
                        }
                        result[key] = try pythonIterate(item)[1]
                    }
                default:
                    throw ChatTemplateError(message: "'\(first.typeName)' object is not iterable")
                }
            }
            for (key, value) in keyword { result[key] = value }
            return .dict(result)
        default:
            throw ChatTemplateError(message: "'\(name)' is undefined")
        }
    }

    /// transformers refuses underscore-prefixed namespace attributes (a sandbox guard).
    static func checkNamespaceName(_ name: String) throws(ChatTemplateError) {
        if name.hasPrefix("_") {
            throw ChatTemplateError(
                message: "Chat templates cannot store underscore-prefixed attributes on a namespace, but got \(pythonStringRepr(name)). Please rename the attribute.")
        }
    }

    /// `range(stop)`, `range(start, stop[, step])` as a list, bounded like jinja2's sandbox.
    private static func range(_ positional: [Value], _ keyword: [(String, Value)]) throws(ChatTemplateError) -> Value {
        guard keyword.isEmpty else { throw ChatTemplateError(message: "range() takes no keyword arguments") }
        var numbers: [Int] = []
        for value in positional {
            guard case .int(let i)? = value.numeric, !value.isDouble else {
                throw ChatTemplateError(message: "'\(value.typeName)' object cannot be interpreted as an integer")
            }
            numbers.append(i)
        }
        let start: Int, stop: Int, step: Int
        switch numbers.count {
        case 1: (start, stop, step) = (0, numbers[0], 1)
        case 2: (start, stop, step) = (numbers[0], numbers[1], 1)
        case 3: (start, stop, step) = (numbers[0], numbers[1], numbers[2])
        default: throw ChatTemplateError(message: "range expected 1 to 3 arguments, got \(numbers.count)")
        }
        guard step != 0 else { throw ChatTemplateError(message: "range() arg 3 must not be zero") }
        let span = step > 0 ? Double(stop) - Double(start) : Double(start) - Double(stop)
        let count = span <= 0 ? 0 : Int(((span - 1) / Double(abs(step))).rounded(.down)) + 1
        guard count <= RenderLimits.maximumRange else {
            throw ChatTemplateError(
                message: "Range too big. The sandbox blocks ranges larger than MAX_RANGE (\(RenderLimits.maximumRange)).")
        }
        return .list((0..<count).map { .int(start + $0 * step) })
    }

    private static let weekdays = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
    private static let months = [
        "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
        "November", "December",
    ]

    /// C-locale `strftime` of `date` in UTC, with glibc's `-` flag (no padding, as in `%-d`).
    static func strftime(_ format: String, _ date: Date) throws(ChatTemplateError) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
        let year = c.year ?? 1970, month = c.month ?? 1, day = c.day ?? 1
        let hour = c.hour ?? 0, minute = c.minute ?? 0, second = c.second ?? 0
        let weekday = (c.weekday ?? 1) - 1
        let dayOfYear = calendar.ordinality(of: .day, in: .year, for: date) ?? 1
        func padded(_ n: Int, _ width: Int, _ pad: Bool) -> String {
            let text = String(n)
            return pad ? String(repeating: "0", count: max(0, width - text.count)) + text : text
        }
        var result = ""
        let scalars = Array(format.unicodeScalars)
        var i = 0
        while i < scalars.count {
            guard scalars[i] == "%", i + 1 < scalars.count else {
                result.unicodeScalars.append(scalars[i])
                i += 1
                continue
            }
            var pad = true
            var j = i + 1
            if scalars[j] == "-", j + 1 < scalars.count {
                pad = false
                j += 1
            }
            let hour12 = hour % 12 == 0 ? 12 : hour % 12
            switch scalars[j] {
            case "a": result += String(weekdays[weekday].prefix(3))
            case "A": result += weekdays[weekday]
            case "b", "h": result += String(months[month - 1].prefix(3))
            case "B": result += months[month - 1]
            case "d": result += padded(day, 2, pad)
            case "e": result += pad ? (day < 10 ? " " : "") + String(day) : String(day)
            case "m": result += padded(month, 2, pad)
            case "y": result += padded(year % 100, 2, pad)
            case "Y": result += String(year)
            case "H": result += padded(hour, 2, pad)
            case "I": result += padded(hour12, 2, pad)
            case "M": result += padded(minute, 2, pad)
            case "S": result += padded(second, 2, pad)
            case "p": result += hour < 12 ? "AM" : "PM"
            case "j": result += padded(dayOfYear, 3, pad)
            case "w": result += String(weekday)
            case "u": result += String(weekday == 0 ? 7 : weekday)
            case "F": result += "\(year)-\(padded(month, 2, true))-\(padded(day, 2, true))"
            case "D", "x": result += "\(padded(month, 2, true))/\(padded(day, 2, true))/\(padded(year % 100, 2, true))"
            case "T", "X": result += "\(padded(hour, 2, true)):\(padded(minute, 2, true)):\(padded(second, 2, true))"
            case "c":
                result += "\(weekdays[weekday].prefix(3)) \(months[month - 1].prefix(3)) \(day < 10 ? " " : "")\(day) "
                    + "\(padded(hour, 2, true)):\(padded(minute, 2, true)):\(padded(second, 2, true)) \(year)"
            case "Z": result += "UTC"
            case "z": result += "+0000"
            case "%": result += "%"
            default:
                throw ChatTemplateError(message: "unsupported strftime directive '%\(scalars[j])'")
            }
            i = j + 1
        }
        return result
    }
}
