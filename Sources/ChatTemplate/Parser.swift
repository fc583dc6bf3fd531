import Foundation

/// Builds the syntax tree from tokens, following jinja2's grammar and operator precedence
/// (lowest first): `x if c else y`, `or`, `and`, `not`, comparisons and `in` (chained), `+ -`,
/// `~`, `* / // %`, `**`, unary `- +`, then postfix `.name`, `[...]`, `(...)`, and finally the
/// filter/test chain `| f`, `is t`. Filters and tests are checked against the supported set here,
/// so an unknown one fails at parse time with its line and column.
struct Parser {
    private let tokens: [Token]
    private var index = 0
    private var nesting = 0
    private var loopDepth = 0
    /// Bounds the syntax tree's depth so that neither parsing nor rendering can exhaust the stack.
    static let maximumNesting = 64

    init(tokens: [Token]) { self.tokens = tokens }

    static func parse(_ source: String) throws(ChatTemplateError) -> [Statement] {
        var parser = Parser(tokens: try Lexer.tokenize(source))
        let (body, _) = try parser.parseBody(until: [], opener: nil)
        return body
    }

    // MARK: - Token helpers

    private var current: Token { tokens[min(index, tokens.count - 1)] }
    private func peek(_ offset: Int) -> Token { tokens[min(index + offset, tokens.count - 1)] }
    private mutating func advance() { if index < tokens.count - 1 { index += 1 } }

    private func isOp(_ op: String, _ token: Token? = nil) -> Bool {
        if case .op(let value) = (token ?? current).kind { return value == op }
        return false
    }

    private func isName(_ name: String, _ token: Token? = nil) -> Bool {
        if case .name(let value) = (token ?? current).kind { return value == name }
        return false
    }

    private func describe(_ token: Token) -> String {
        switch token.kind {
        case .data: return "template text"
        case .variableBegin: return "'{{'"
        case .variableEnd: return "end of print statement '}}'"
        case .blockBegin: return "'{%'"
        case .blockEnd: return "end of statement block '%}'"
        case .name(let name): return "'\(name)'"
        case .string: return "string literal"
        case .integer(let value): return "integer \(value)"
        case .float(let value): return "number \(value)"
        case .op(let op): return "'\(op)'"
        case .end: return "end of template"
        }
    }

    private func failure(_ message: String, _ token: Token? = nil) -> ChatTemplateError {
        ChatTemplateError(message, at: (token ?? current).location)
    }

    private mutating func expectOp(_ op: String) throws(ChatTemplateError) {
        guard isOp(op) else { throw failure("expected '\(op)', found \(describe(current))") }
        advance()
    }

    private mutating func expectName() throws(ChatTemplateError) -> String {
        guard case .name(let name) = current.kind else {
            throw failure("expected a name, found \(describe(current))")
        }
        advance()
        return name
    }

    private mutating func expectBlockEnd() throws(ChatTemplateError) {
        guard case .blockEnd = current.kind else {
            throw failure("expected end of statement block '%}', found \(describe(current))")
        }
        advance()
    }

    private mutating func enter() throws(ChatTemplateError) {
        nesting += 1
        if nesting > Self.maximumNesting {
            throw failure("template nests deeper than \(Self.maximumNesting) levels")
        }
    }

    // MARK: - Statements

    /// Parses statements until a block tag named in `endTags`; consumes `{%` and that name and
    /// returns it (the caller parses the rest of the tag). Without end tags, parses to the end.
    private mutating func parseBody(
        until endTags: Set<String>, opener: (tag: String, location: SourceLocation)?
    ) throws(ChatTemplateError) -> ([Statement], String?) {
        try enter()
        defer { nesting -= 1 }
        var body: [Statement] = []
        while true {
            let token = current
            switch token.kind {
            case .end:
                if let opener {
                    let expected = endTags.sorted().map { "'\($0)'" }.joined(separator: " or ")
                    throw ChatTemplateError(
                        "unexpected end of template: '\(opener.tag)' opened here is never closed (expected \(expected))",
                        at: opener.location)
                }
                return (body, nil)
            case .data(let text):
                body.append(Statement(kind: .text(text), location: token.location))
                advance()
            case .variableBegin:
                advance()
                let expression = try parseTuple()
                guard case .variableEnd = current.kind else {
                    throw failure("expected end of print statement '}}', found \(describe(current))")
                }
                advance()
                body.append(Statement(kind: .output(expression), location: token.location))
            case .blockBegin:
                let nameToken = peek(1)
                guard case .name(let tag) = nameToken.kind else {
                    throw failure("expected a tag name after '{%', found \(describe(nameToken))", nameToken)
                }
                if endTags.contains(tag) {
                    advance()
                    advance()
                    return (body, tag)
                }
                advance()
                advance()
                body.append(try parseTag(tag, at: token.location, nameToken: nameToken, enclosing: opener, endTags: endTags))
            default:
                throw failure("unexpected \(describe(token))")
            }
        }
    }

    private static let endTagNames: Set<String> = [
        "endfor", "endif", "elif", "else", "endset", "endmacro", "endgeneration", "endraw",
    ]
    private static let unsupportedTags: Set<String> = [
        "include", "import", "from", "extends", "block", "endblock", "call", "endcall", "filter", "endfilter",
        "with", "endwith", "autoescape", "endautoescape", "do", "trans", "endtrans", "pluralize",
    ]

    private mutating func parseTag(
        _ tag: String, at location: SourceLocation, nameToken: Token,
        enclosing: (tag: String, location: SourceLocation)?, endTags: Set<String>
    ) throws(ChatTemplateError) -> Statement {
        switch tag {
        case "for": return try parseFor(at: location)
        case "if": return try parseIf(at: location)
        case "set": return try parseSet(at: location)
        case "macro": return try parseMacro(at: location)
        case "break", "continue":
            guard loopDepth > 0 else { throw failure("'\(tag)' outside of a for loop", nameToken) }
            try expectBlockEnd()
            return Statement(kind: tag == "break" ? .breakLoop : .continueLoop, location: location)
        case "generation":
            try expectBlockEnd()
            let (body, _) = try parseBody(until: ["endgeneration"], opener: ("generation", location))
            try expectBlockEnd()
            return Statement(kind: .generation(body), location: location)
        default:
            if Self.endTagNames.contains(tag) {
                var message = "unexpected tag '\(tag)'"
                if let enclosing {
                    let expected = endTags.sorted().map { "'\($0)'" }.joined(separator: " or ")
                    message += "; the innermost open block is '\(enclosing.tag)' (line \(enclosing.location.line)), which expects \(expected)"
                }
                throw failure(message, nameToken)
            }
            if Self.unsupportedTags.contains(tag) {
                throw failure("unsupported tag '\(tag)': this renderer does not implement it", nameToken)
            }
            throw failure("unknown tag '\(tag)'", nameToken)
        }
    }

    private mutating func parseAssignTarget(endName: String?, allowNamespace: Bool) throws(ChatTemplateError) -> AssignTarget {
        let first = try expectName()
        if allowNamespace && isOp(".") {
            advance()
            let attribute = try expectName()
            return .namespaceAttribute(namespace: first, attribute: attribute)
        }
        guard isOp(",") else { return .name(first) }
        var names = [first]
        while isOp(",") {
            advance()
            if let endName, isName(endName) { break }
            if isOp("=") { break }
            names.append(try expectName())
        }
        return .names(names)
    }

    private mutating func parseFor(at location: SourceLocation) throws(ChatTemplateError) -> Statement {
        let target = try parseAssignTarget(endName: "in", allowNamespace: false)
        guard isName("in") else { throw failure("expected 'in' in the for tag, found \(describe(current))") }
        advance()
        let iterable = try parseTuple(withCondition: false, extraEndNames: ["recursive"])
        var condition: Expression?
        if isName("if") {
            advance()
            condition = try parseExpression()
        }
        if isName("recursive") { throw failure("unsupported: recursive for loops") }
        try expectBlockEnd()
        loopDepth += 1
        let (body, end) = try parseBody(until: ["endfor", "else"], opener: ("for", location))
        loopDepth -= 1
        var elseBody: [Statement] = []
        if end == "else" {
            try expectBlockEnd()
            (elseBody, _) = try parseBody(until: ["endfor"], opener: ("for", location))
        }
        try expectBlockEnd()
        let loop = ForLoop(target: target, iterable: iterable, condition: condition, body: body, elseBody: elseBody)
        return Statement(kind: .forLoop(loop), location: location)
    }

    private mutating func parseIf(at location: SourceLocation) throws(ChatTemplateError) -> Statement {
        var branches: [(condition: Expression, body: [Statement])] = []
        var elseBody: [Statement] = []
        while true {
            let condition = try parseTuple(withCondition: false)
            try expectBlockEnd()
            let (body, end) = try parseBody(until: ["elif", "else", "endif"], opener: ("if", location))
            branches.append((condition, body))
            if end == "elif" { continue }
            if end == "else" {
                try expectBlockEnd()
                (elseBody, _) = try parseBody(until: ["endif"], opener: ("if", location))
            }
            try expectBlockEnd()
            return Statement(kind: .conditional(branches, elseBody: elseBody), location: location)
        }
    }

    private mutating func parseSet(at location: SourceLocation) throws(ChatTemplateError) -> Statement {
        let target = try parseAssignTarget(endName: nil, allowNamespace: true)
        if isOp("=") {
            advance()
            let value = try parseTuple()
            try expectBlockEnd()
            return Statement(kind: .set(target, value), location: location)
        }
        var filters: [FilterApplication] = []
        while isOp("|") {
            advance()
            let (name, nameLocation) = try parseCallableName(kind: "filter")
            let arguments = isOp("(") ? try parseCallArguments() : Arguments()
            filters.append(FilterApplication(name: name, arguments: arguments, location: nameLocation))
        }
        try expectBlockEnd()
        let (body, _) = try parseBody(until: ["endset"], opener: ("set", location))
        try expectBlockEnd()
        return Statement(kind: .setBlock(target, filters: filters, body: body), location: location)
    }

    private mutating func parseMacro(at location: SourceLocation) throws(ChatTemplateError) -> Statement {
        let name = try expectName()
        try expectOp("(")
        var parameters: [(name: String, defaultValue: Expression?)] = []
        while !isOp(")") {
            if !parameters.isEmpty { try expectOp(",") }
            if isOp(")") { break }
            let parameter = try expectName()
            if isOp("=") {
                advance()
                parameters.append((parameter, try parseExpression()))
            } else {
                if parameters.contains(where: { $0.defaultValue != nil }) {
                    throw failure("non-default argument follows default argument")
                }
                parameters.append((parameter, nil))
            }
        }
        advance()
        try expectBlockEnd()
        let savedLoopDepth = loopDepth
        loopDepth = 0
        let (body, _) = try parseBody(until: ["endmacro"], opener: ("macro", location))
        loopDepth = savedLoopDepth
        try expectBlockEnd()
        let definition = MacroDefinition(name: name, parameters: parameters, body: body, location: location)
        return Statement(kind: .macro(definition), location: location)
    }

    // MARK: - Expressions

    private func isTupleEnd(_ extraEndNames: Set<String>) -> Bool {
        switch current.kind {
        case .variableEnd, .blockEnd, .end: return true
        case .op(")"): return true
        case .name(let name): return extraEndNames.contains(name)
        default: return false
        }
    }

    /// An expression, or a tuple when commas separate several (`{{ a, b }}`, `(a, b)`).
    private mutating func parseTuple(
        withCondition: Bool = true, extraEndNames: Set<String> = [], explicitParentheses: Bool = false
    ) throws(ChatTemplateError) -> Expression {
        let location = current.location
        var items: [Expression] = []
        var isTuple = false
        while true {
            if !items.isEmpty { try expectOp(",") }
            if isTupleEnd(extraEndNames) { break }
            items.append(try parseExpression(withCondition: withCondition))
            if isOp(",") { isTuple = true } else { break }
        }
        if !isTuple {
            if let only = items.first { return only }
            if !explicitParentheses { throw failure("expected an expression, found \(describe(current))") }
        }
        return Expression(kind: .tuple(items), location: location)
    }

    private mutating func parseExpression(withCondition: Bool = true) throws(ChatTemplateError) -> Expression {
        try enter()
        defer { nesting -= 1 }
        guard withCondition else { return try parseOr() }
        var expression = try parseOr()
        while isName("if") {
            let location = current.location
            advance()
            let condition = try parseOr()
            var otherwise: Expression?
            if isName("else") {
                advance()
                otherwise = try parseExpression()
            }
            expression = Expression(
                kind: .conditional(condition: condition, then: expression, otherwise: otherwise), location: location)
        }
        return expression
    }

    private mutating func parseOr() throws(ChatTemplateError) -> Expression {
        var left = try parseAnd()
        while isName("or") {
            let location = current.location
            advance()
            left = Expression(kind: .or(left, try parseAnd()), location: location)
        }
        return left
    }

    private mutating func parseAnd() throws(ChatTemplateError) -> Expression {
        var left = try parseNot()
        while isName("and") {
            let location = current.location
            advance()
            left = Expression(kind: .and(left, try parseNot()), location: location)
        }
        return left
    }

    private mutating func parseNot() throws(ChatTemplateError) -> Expression {
        if isName("not") {
            let location = current.location
            advance()
            try enter()
            defer { nesting -= 1 }
            return Expression(kind: .not(try parseNot()), location: location)
        }
        return try parseCompare()
    }

    private mutating func parseCompare() throws(ChatTemplateError) -> Expression {
        let location = current.location
        let first = try parseMath1()
        var operations: [(CompareOperator, Expression)] = []
        while true {
            if case .op(let op) = current.kind, let comparison = CompareOperator(rawValue: op),
               comparison != .contains, comparison != .notContains {
                advance()
                operations.append((comparison, try parseMath1()))
            } else if isName("in") {
                advance()
                operations.append((.contains, try parseMath1()))
            } else if isName("not"), isName("in", peek(1)) {
                advance()
                advance()
                operations.append((.notContains, try parseMath1()))
            } else {
                break
            }
        }
        if operations.isEmpty { return first }
        return Expression(kind: .compare(first, operations), location: location)
    }

    private mutating func parseMath1() throws(ChatTemplateError) -> Expression {
        var left = try parseConcat()
        while isOp("+") || isOp("-") {
            let location = current.location
            let op: BinaryOperator = isOp("+") ? .add : .subtract
            advance()
            left = Expression(kind: .binary(op, left, try parseConcat()), location: location)
        }
        return left
    }

    private mutating func parseConcat() throws(ChatTemplateError) -> Expression {
        var left = try parseMath2()
        while isOp("~") {
            let location = current.location
            advance()
            left = Expression(kind: .binary(.concatenate, left, try parseMath2()), location: location)
        }
        return left
    }

    private mutating func parseMath2() throws(ChatTemplateError) -> Expression {
        var left = try parsePower()
        while true {
            let op: BinaryOperator
            if isOp("*") { op = .multiply } else if isOp("/") { op = .divide } else if isOp("//") {
                op = .floorDivide
            } else if isOp("%") { op = .modulo } else { break }
            let location = current.location
            advance()
            left = Expression(kind: .binary(op, left, try parsePower()), location: location)
        }
        return left
    }

    private mutating func parsePower() throws(ChatTemplateError) -> Expression {
        var left = try parseUnary()
        while isOp("**") {
            let location = current.location
            advance()
            left = Expression(kind: .binary(.power, left, try parseUnary()), location: location)
        }
        return left
    }

    private mutating func parseUnary(withFilter: Bool = true) throws(ChatTemplateError) -> Expression {
        try enter()
        defer { nesting -= 1 }
        let location = current.location
        var node: Expression
        if isOp("-") {
            advance()
            node = Expression(kind: .negate(try parseUnary(withFilter: false)), location: location)
        } else if isOp("+") {
            advance()
            node = Expression(kind: .plus(try parseUnary(withFilter: false)), location: location)
        } else {
            node = try parsePrimary()
        }
        node = try parsePostfix(node)
        if withFilter { node = try parseFilterChain(node) }
        return node
    }

    private mutating func parsePrimary() throws(ChatTemplateError) -> Expression {
        let token = current
        switch token.kind {
        case .name(let name):
            advance()
            switch name {
            case "true", "True": return Expression(kind: .constant(.bool(true)), location: token.location)
            case "false", "False": return Expression(kind: .constant(.bool(false)), location: token.location)
            case "none", "None": return Expression(kind: .constant(.none), location: token.location)
            default: return Expression(kind: .name(name), location: token.location)
            }
        case .string(let first):
            advance()
            var text = first
            while case .string(let next) = current.kind {
                text += next
                advance()
            }
            return Expression(kind: .constant(.string(text)), location: token.location)
        case .integer(let value):
            advance()
            return Expression(kind: .constant(.int(value)), location: token.location)
        case .float(let value):
            advance()
            return Expression(kind: .constant(.double(value)), location: token.location)
        case .op("("):
            advance()
            let inner = try parseTuple(explicitParentheses: true)
            try expectOp(")")
            return inner
        case .op("["):
            advance()
            var items: [Expression] = []
            while !isOp("]") {
                if !items.isEmpty { try expectOp(",") }
                if isOp("]") { break }
                items.append(try parseExpression())
            }
            advance()
            return Expression(kind: .list(items), location: token.location)
        case .op("{"):
            advance()
            var entries: [(key: Expression, value: Expression)] = []
            while !isOp("}") {
                if !entries.isEmpty { try expectOp(",") }
                if isOp("}") { break }
                let key = try parseExpression()
                try expectOp(":")
                entries.append((key, try parseExpression()))
            }
            advance()
            return Expression(kind: .dict(entries), location: token.location)
        default:
            throw failure("unexpected \(describe(token))")
        }
    }

    private mutating func parsePostfix(_ base: Expression) throws(ChatTemplateError) -> Expression {
        var node = base
        while true {
            let location = current.location
            if isOp(".") {
                advance()
                let token = current
                switch token.kind {
                case .name(let name):
                    advance()
                    node = Expression(kind: .attribute(node, name), location: location)
                case .integer(let value):
                    advance()
                    node = Expression(
                        kind: .item(node, Expression(kind: .constant(.int(value)), location: token.location)),
                        location: location)
                default:
                    throw failure("expected a name or number after '.', found \(describe(token))")
                }
            } else if isOp("[") {
                advance()
                node = try parseSubscript(node, at: location)
            } else if isOp("(") {
                node = Expression(kind: .call(node, try parseCallArguments()), location: location)
            } else {
                return node
            }
        }
    }

    private enum Subscript {
        case index(Expression)
        case slice(Expression?, Expression?, Expression?)
    }

    private mutating func parseSubscript(_ base: Expression, at location: SourceLocation) throws(ChatTemplateError) -> Expression {
        var parts: [Subscript] = []
        while !isOp("]") {
            if !parts.isEmpty { try expectOp(",") }
            parts.append(try parseSubscribed())
        }
        advance()
        switch parts.count {
        case 0:
            throw ChatTemplateError("expected an index or slice inside '[]'", at: location)
        case 1:
            switch parts[0] {
            case .index(let key): return Expression(kind: .item(base, key), location: location)
            case .slice(let start, let stop, let step):
                return Expression(kind: .slice(base, start: start, stop: stop, step: step), location: location)
            }
        default:
            var keys: [Expression] = []
            for part in parts {
                guard case .index(let key) = part else {
                    throw ChatTemplateError("unsupported: a slice inside a tuple subscript", at: location)
                }
                keys.append(key)
            }
            return Expression(kind: .item(base, Expression(kind: .tuple(keys), location: location)), location: location)
        }
    }

    /// One entry of a subscript: an index expression, or `start:stop:step` with optional parts.
    private mutating func parseSubscribed() throws(ChatTemplateError) -> Subscript {
        var start: Expression?
        if !isOp(":") {
            let key = try parseExpression()
            guard isOp(":") else { return .index(key) }
            start = key
        }
        advance()
        var stop: Expression?
        if !isOp(":") && !isOp("]") && !isOp(",") { stop = try parseExpression() }
        var step: Expression?
        if isOp(":") {
            advance()
            if !isOp("]") && !isOp(",") { step = try parseExpression() }
        }
        return .slice(start, stop, step)
    }

    private mutating func parseCallArguments() throws(ChatTemplateError) -> Arguments {
        try expectOp("(")
        var arguments = Arguments()
        var needComma = false
        while !isOp(")") {
            if needComma {
                try expectOp(",")
                if isOp(")") { break }
            }
            if isOp("*") || isOp("**") {
                throw failure("unsupported: '*args' and '**kwargs' in calls")
            }
            if case .name(let name) = current.kind, isOp("=", peek(1)) {
                advance()
                advance()
                arguments.keyword.append((name, try parseExpression()))
            } else {
                guard arguments.keyword.isEmpty else {
                    throw failure("positional argument follows keyword argument")
                }
                arguments.positional.append(try parseExpression())
            }
            needComma = true
        }
        advance()
        return arguments
    }

    /// A filter or test name (dotted names are allowed by jinja2), checked against the supported set.
    private mutating func parseCallableName(kind: String) throws(ChatTemplateError) -> (String, SourceLocation) {
        let token = current
        var name = try expectName()
        while isOp(".") {
            advance()
            name += "." + (try expectName())
        }
        let supported = kind == "filter" ? Filters.isSupported(name) : Predicates.isSupported(name)
        if !supported {
            let known = kind == "filter" ? Filters.isKnownUnsupported(name) : Predicates.isKnownUnsupported(name)
            let message = known
                ? "unsupported \(kind) '\(name)': jinja2 has it but this renderer does not implement it"
                : "unknown \(kind) '\(name)'"
            throw failure(message, token)
        }
        return (name, token.location)
    }

    private mutating func parseFilterChain(_ base: Expression) throws(ChatTemplateError) -> Expression {
        var node = base
        while true {
            if isOp("|") {
                advance()
                let (name, location) = try parseCallableName(kind: "filter")
                let arguments = isOp("(") ? try parseCallArguments() : Arguments()
                node = Expression(kind: .filter(node, name: name, arguments), location: location)
            } else if isName("is") {
                advance()
                var negated = false
                if isName("not") {
                    negated = true
                    advance()
                }
                let (name, location) = try parseCallableName(kind: "test")
                var arguments = Arguments()
                if isOp("(") {
                    arguments = try parseCallArguments()
                } else if startsBareTestArgument() {
                    if isName("is") { throw failure("you cannot chain multiple tests with 'is'") }
                    arguments.positional = [try parsePostfix(try parsePrimary())]
                }
                node = Expression(kind: .test(node, name: name, arguments, negated: negated), location: location)
            } else if isOp("(") {
                node = Expression(kind: .call(node, try parseCallArguments()), location: current.location)
            } else {
                return node
            }
        }
    }

    /// jinja2 lets a test take one argument without parentheses: `x is divisibleby 3`.
    private func startsBareTestArgument() -> Bool {
        switch current.kind {
        case .name(let name): return !["else", "or", "and"].contains(name)
        case .string, .integer, .float: return true
        case .op(let op): return op == "(" || op == "[" || op == "{"
        default: return false
        }
    }
}
