import Foundation

/// A constant written in the template source.
enum Constant: Sendable, Equatable {
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
}

/// An expression of the template language, with the place it starts in the source.
struct Expression: Sendable {
    indirect enum Kind: Sendable {
        case constant(Constant)
        case name(String)
        case list([Expression])
        case tuple([Expression])
        case dict([(key: Expression, value: Expression)])
        /// `object.name`
        case attribute(Expression, String)
        /// `object[key]`
        case item(Expression, Expression)
        /// `object[start:stop:step]`
        case slice(Expression, start: Expression?, stop: Expression?, step: Expression?)
        case call(Expression, Arguments)
        /// `value | name(arguments)`
        case filter(Expression, name: String, Arguments)
        /// `value is [not] name(arguments)`
        case test(Expression, name: String, Arguments, negated: Bool)
        case not(Expression)
        case negate(Expression)
        case plus(Expression)
        case binary(BinaryOperator, Expression, Expression)
        case and(Expression, Expression)
        case or(Expression, Expression)
        /// `a < b <= c`: Python's chained comparison.
        case compare(Expression, [(CompareOperator, Expression)])
        /// `then if condition else otherwise`; a missing `else` gives undefined.
        case conditional(condition: Expression, then: Expression, otherwise: Expression?)
    }

    var kind: Kind
    var location: SourceLocation
}

struct Arguments: Sendable {
    var positional: [Expression] = []
    var keyword: [(name: String, value: Expression)] = []
}

enum BinaryOperator: String, Sendable {
    case add = "+", subtract = "-", multiply = "*", divide = "/", floorDivide = "//", modulo = "%"
    case power = "**", concatenate = "~"
}

enum CompareOperator: String, Sendable {
    case equal = "==", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
    case contains = "in", notContains = "not in"
}

/// Where `{% set %}` and `{% for %}` store values.
enum AssignTarget: Sendable {
    case name(String)
    case names([String])
    /// `ns.attribute`: assignment into a `namespace()` object.
    case namespaceAttribute(namespace: String, attribute: String)
}

/// A filter applied by `{% set x | filter %}...{% endset %}`.
struct FilterApplication: Sendable {
    var name: String
    var arguments: Arguments
    var location: SourceLocation
}

/// A `{% macro %}` definition. A class so that macro values can refer to it without copying the body.
final class MacroDefinition: Sendable {
    let name: String
    let parameters: [(name: String, defaultValue: Expression?)]
    let body: [Statement]
    let location: SourceLocation

    init(name: String, parameters: [(name: String, defaultValue: Expression?)], body: [Statement], location: SourceLocation) {
        self.name = name
        self.parameters = parameters
        self.body = body
        self.location = location
    }
}

struct ForLoop: Sendable {
    var target: AssignTarget
    var iterable: Expression
    var condition: Expression?
    var body: [Statement]
    var elseBody: [Statement]
}

/// A statement of the template: text, an output `{{ }}`, or a tag.
struct Statement: Sendable {
    indirect enum Kind: Sendable {
        case text(String)
        case output(Expression)
        case conditional([(condition: Expression, body: [Statement])], elseBody: [Statement])
        case forLoop(ForLoop)
        case set(AssignTarget, Expression)
        case setBlock(AssignTarget, filters: [FilterApplication], body: [Statement])
        case macro(MacroDefinition)
        case breakLoop
        case continueLoop
        /// `{% generation %}`: transformers' assistant-mask marker; renders its body unchanged.
        case generation([Statement])
    }

    var kind: Kind
    var location: SourceLocation
}
