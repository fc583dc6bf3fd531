import Foundation

/// Limits that keep a hostile template (they come from untrusted checkpoints) from exhausting the
/// stack, memory or time. Exceeding one is an error that names the limit.
enum RenderLimits {
    /// Nested macro calls (recursion included).
    static let maximumCallDepth = 32
    /// Loop iterations and macro calls over the whole render.
    static let maximumSteps = 2_000_000
    /// Bytes of text the render may produce, over all intermediate strings together.
    static let maximumBytes = 64 << 20
    /// Length of the final output, in UTF-8 bytes.
    static let maximumOutputBytes = 16 << 20
    /// `range()` lengths (jinja2's sandbox uses the same bound).
    static let maximumRange = 100_000
}

/// Per-render bookkeeping: budgets, call depth, and the time `strftime_now` reports.
final class RenderState {
    let now: Date
    var steps = 0
    var bytes = 0
    var callDepth = 0

    init(now: Date) { self.now = now }

    func chargeStep() throws(ChatTemplateError) {
        steps += 1
        if steps > RenderLimits.maximumSteps {
            throw ChatTemplateError(
                message: "template ran more than \(RenderLimits.maximumSteps) loop iterations and macro calls")
        }
    }

    func chargeBytes(_ count: Int) throws(ChatTemplateError) {
        bytes += count
        if bytes > RenderLimits.maximumBytes {
            throw ChatTemplateError(message: "template produced more than \(RenderLimits.maximumBytes) bytes of text")
        }
    }
}

/// How a statement list finished: normally, or by `{% break %}` / `{% continue %}`.
enum ControlFlow {
    case normal, breakLoop, continueLoop
}

extension ChatTemplateError {
    /// The error with `location` filled in if it has none yet (the innermost location wins).
    func located(_ location: SourceLocation) -> ChatTemplateError {
        guard line == nil else { return self }
        var copy = self
        copy.line = location.line
        copy.column = location.column
        return copy
    }
}

/// Evaluates the syntax tree with jinja2's runtime semantics (as configured by transformers).
struct Renderer {
    let state: RenderState

    // MARK: Statements

    func execute(_ statements: [Statement], in scope: Scope, into output: inout String) throws(ChatTemplateError) -> ControlFlow {
        for statement in statements {
            let flow: ControlFlow
            do {
                flow = try execute(statement, in: scope, into: &output)
            } catch {
                throw error.located(statement.location)
            }
            if flow != .normal { return flow }
        }
        return .normal
    }

    private func append(_ text: String, to output: inout String) throws(ChatTemplateError) {
        output += text
        try state.chargeBytes(text.utf8.count)
    }

    private func execute(_ statement: Statement, in scope: Scope, into output: inout String) throws(ChatTemplateError) -> ControlFlow {
        switch statement.kind {
        case .text(let text):
            try append(text, to: &output)
        case .output(let expression):
            try append(try pythonStr(try evaluate(expression, in: scope)), to: &output)
        case .conditional(let branches, let elseBody):
            for branch in branches where try evaluate(branch.condition, in: scope).isTruthy {
                return try execute(branch.body, in: scope, into: &output)
            }
            return try execute(elseBody, in: scope, into: &output)
        case .forLoop(let loop):
            return try executeFor(loop, in: scope, into: &output)
        case .set(let target, let expression):
            try assign(try evaluate(expression, in: scope), to: target, in: scope, at: statement.location)
        case .setBlock(let target, let filters, let body):
            var captured = ""
            _ = try execute(body, in: Scope(parent: scope), into: &captured)
            var value = Value.string(captured)
            for filter in filters {
                do {
                    value = try Filters.apply(filter.name, to: value, arguments: filter.arguments, in: scope, renderer: self)
                } catch {
                    throw error.located(filter.location)
                }
            }
            try assign(value, to: target, in: scope, at: statement.location)
        case .macro(let definition):
            scope.assign(definition.name, .macro(MacroValue(definition: definition, closure: scope)))
        case .breakLoop:
            return .breakLoop
        case .continueLoop:
            return .continueLoop
        case .generation(let body):
            return try execute(body, in: scope, into: &output)
        }
        return .normal
    }

    private func executeFor(_ loop: ForLoop, in scope: Scope, into output: inout String) throws(ChatTemplateError) -> ControlFlow {
        let iterable = try evaluate(loop.iterable, in: scope)
        if case .none = iterable { throw ChatTemplateError(message: "'NoneType' object is not iterable").located(loop.iterable.location) }
        var items = try pythonIterate(iterable)
        if let condition = loop.condition {
            var kept: [Value] = []
            for item in items {
                try state.chargeStep()
                let probe = Scope(parent: scope)
                try assign(item, to: loop.target, in: probe, at: condition.location)
                if try evaluate(condition, in: probe).isTruthy { kept.append(item) }
            }
            items = kept
        }
        if items.isEmpty {
            _ = try execute(loop.elseBody, in: Scope(parent: scope), into: &output)
            return .normal
        }
        let loopState = LoopState(items: items)
        for (offset, item) in items.enumerated() {
            try state.chargeStep()
            loopState.index0 = offset
            let iteration = Scope(parent: scope)
            iteration.assign("loop", .loop(loopState))
            try assign(item, to: loop.target, in: iteration, at: loop.iterable.location)
            if try execute(loop.body, in: iteration, into: &output) == .breakLoop { break }
        }
        return .normal
    }

    private func assign(_ value: Value, to target: AssignTarget, in scope: Scope, at location: SourceLocation) throws(ChatTemplateError) {
        switch target {
        case .name(let name):
            scope.assign(name, value)
        case .names(let names):
            let items: [Value]
            switch value {
            case .list(let values), .tuple(let values): items = values
            default: items = try pythonIterate(value)
            }
            guard items.count == names.count else {
                let problem = items.count < names.count ? "not enough" : "too many"
                throw ChatTemplateError("\(problem) values to unpack (expected \(names.count), got \(items.count))", at: location)
            }
            for (name, item) in zip(names, items) { scope.assign(name, item) }
        case .namespaceAttribute(let namespaceName, let attribute):
            guard case .namespace(let namespace)? = scope.lookup(namespaceName) else {
                throw ChatTemplateError("cannot assign attribute on non-namespace object '\(namespaceName)'", at: location)
            }
            try Globals.checkNamespaceName(attribute)
            namespace.attributes[attribute] = value
        }
    }

    // MARK: Expressions

    func evaluate(_ expression: Expression, in scope: Scope) throws(ChatTemplateError) -> Value {
        do {
            return try evaluateUnlocated(expression, in: scope)
        } catch {
            throw error.located(expression.location)
        }
    }

    private func evaluateUnlocated(_ expression: Expression, in scope: Scope) throws(ChatTemplateError) -> Value {
        switch expression.kind {
        case .constant(let constant):
            switch constant {
            case .none: return .none
            case .bool(let b): return .bool(b)
            case .int(let i): return .int(i)
            case .double(let d): return .double(d)
            case .string(let s): return .string(s)
            }
        case .name(let name):
            return scope.lookup(name) ?? .undefined("'\(name)' is undefined")
        case .list(let items):
            var values: [Value] = []
            for item in items { values.append(try evaluate(item, in: scope)) }
            return .list(values)
        case .tuple(let items):
            var values: [Value] = []
            for item in items { values.append(try evaluate(item, in: scope)) }
            return .tuple(values)
        case .dict(let entries):
            var dict = Dict()
            for entry in entries {
                let key = try evaluate(entry.key, in: scope)
                guard case .string(let name) = key else {
                    throw ChatTemplateError("unsupported: dict keys must be strings, found \(key.typeName)", at: entry.key.location)
                }
                dict[name] = try evaluate(entry.value, in: scope)
            }
            return .dict(dict)
        case .attribute(let base, let name):
            return try Access.attribute(of: try evaluate(base, in: scope), name)
        case .item(let base, let key):
            return try Access.item(of: try evaluate(base, in: scope), try evaluate(key, in: scope))
        case .slice(let base, let start, let stop, let step):
            let value = try evaluate(base, in: scope)
            return try Access.slice(
                value, start: try start.map { e throws(ChatTemplateError) in try evaluate(e, in: scope) },
                stop: try stop.map { e throws(ChatTemplateError) in try evaluate(e, in: scope) },
                step: try step.map { e throws(ChatTemplateError) in try evaluate(e, in: scope) })
        case .call(let callee, let arguments):
            let function = try evaluate(callee, in: scope)
            let (positional, keyword) = try evaluateArguments(arguments, in: scope)
            return try call(function, positional: positional, keyword: keyword)
        case .filter(let base, let name, let arguments):
            return try Filters.apply(name, to: try evaluate(base, in: scope), arguments: arguments, in: scope, renderer: self)
        case .test(let base, let name, let arguments, let negated):
            let value = try evaluate(base, in: scope)
            let (positional, keyword) = try evaluateArguments(arguments, in: scope)
            let result = try Predicates.evaluate(name, value, positional: positional, keyword: keyword, renderer: self)
            return .bool(result != negated)
        case .not(let operand):
            return .bool(!(try evaluate(operand, in: scope).isTruthy))
        case .negate(let operand):
            return try Arithmetic.negate(try evaluate(operand, in: scope))
        case .plus(let operand):
            let value = try evaluate(operand, in: scope)
            guard let number = value.numeric else {
                if case .undefined(let message) = value { throw ChatTemplateError(message: message) }
                throw ChatTemplateError(message: "bad operand type for unary +: '\(value.typeName)'")
            }
            switch number {
            case .int(let i): return .int(i)
            case .double(let d): return .double(d)
            }
        case .binary(let op, let left, let right):
            let a = try evaluate(left, in: scope)
            let b = try evaluate(right, in: scope)
            return try Arithmetic.apply(op, a, b, state: state)
        case .and(let left, let right):
            let a = try evaluate(left, in: scope)
            return a.isTruthy ? try evaluate(right, in: scope) : a
        case .or(let left, let right):
            let a = try evaluate(left, in: scope)
            return a.isTruthy ? a : try evaluate(right, in: scope)
        case .compare(let first, let operations):
            var left = try evaluate(first, in: scope)
            for (op, rightExpression) in operations {
                let right = try evaluate(rightExpression, in: scope)
                let holds: Bool
                switch op {
                case .equal: holds = try pythonEquals(left, right)
                case .notEqual: holds = !(try pythonEquals(left, right))
                case .less: holds = try pythonCompare(left, right, symbol: "<") < 0
                case .lessOrEqual: holds = try pythonCompare(left, right, symbol: "<=") <= 0
                case .greater: holds = try pythonCompare(left, right, symbol: ">") > 0
                case .greaterOrEqual: holds = try pythonCompare(left, right, symbol: ">=") >= 0
                case .contains: holds = try pythonContains(right, left)
                case .notContains: holds = !(try pythonContains(right, left))
                }
                if !holds { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .conditional(let condition, let then, let otherwise):
            if try evaluate(condition, in: scope).isTruthy { return try evaluate(then, in: scope) }
            if let otherwise { return try evaluate(otherwise, in: scope) }
            return .undefined("the inline if-expression on line \(expression.location.line) evaluated to false and no else section was defined.")
        }
    }

    func evaluateArguments(_ arguments: Arguments, in scope: Scope) throws(ChatTemplateError) -> ([Value], [(String, Value)]) {
        var positional: [Value] = []
        for argument in arguments.positional { positional.append(try evaluate(argument, in: scope)) }
        var keyword: [(String, Value)] = []
        for (name, argument) in arguments.keyword { keyword.append((name, try evaluate(argument, in: scope))) }
        return (positional, keyword)
    }

    /// Calls a macro, a bound method or a global function.
    func call(_ function: Value, positional: [Value], keyword: [(String, Value)]) throws(ChatTemplateError) -> Value {
        switch function {
        case .undefined(let message):
            throw ChatTemplateError(message: message)
        case .macro(let macro):
            return try callMacro(macro, positional: positional, keyword: keyword)
        case .function(let function):
            switch function.kind {
            case .method(let receiver, let name):
                return try Methods.call(name, on: receiver, positional: positional, keyword: keyword, renderer: self)
            case .global(let name):
                return try Globals.call(name, positional: positional, keyword: keyword, state: state)
            }
        default:
            throw ChatTemplateError(message: "'\(function.typeName)' object is not callable")
        }
    }

    private func callMacro(_ macro: MacroValue, positional: [Value], keyword: [(String, Value)]) throws(ChatTemplateError) -> Value {
        let definition = macro.definition
        guard positional.count <= definition.parameters.count else {
            throw ChatTemplateError(
                message: "macro '\(definition.name)' takes not more than \(definition.parameters.count) argument(s)")
        }
        try state.chargeStep()
        state.callDepth += 1
        defer { state.callDepth -= 1 }
        guard state.callDepth <= RenderLimits.maximumCallDepth else {
            throw ChatTemplateError(message: "macro calls nest deeper than \(RenderLimits.maximumCallDepth) levels")
        }
        let frame = Scope(parent: macro.closure)
        var given: [String: Value] = [:]
        for (parameter, value) in zip(definition.parameters, positional) { given[parameter.name] = value }
        for (name, value) in keyword {
            guard definition.parameters.contains(where: { $0.name == name }) else {
                throw ChatTemplateError(message: "macro '\(definition.name)' has no argument named '\(name)'")
            }
            guard given[name] == nil else {
                throw ChatTemplateError(message: "macro '\(definition.name)' got multiple values for argument '\(name)'")
            }
            given[name] = value
        }
        for parameter in definition.parameters {
            if let value = given[parameter.name] {
                frame.assign(parameter.name, value)
            } else if let defaultValue = parameter.defaultValue {
                frame.assign(parameter.name, try evaluate(defaultValue, in: frame))
            } else {
                frame.assign(parameter.name, .undefined("'\(parameter.name)' is undefined"))
            }
        }
        var output = ""
        _ = try execute(definition.body, in: frame, into: &output)
        return .string(output)
    }
}
