/// A recursive-descent parser for the Jinja2 statement and expression grammar.
struct Parser {
    private var tokens: [Token]
    private var index = 0
    private var depth = 0
    private var loopDepth = 0
    private static let maximumDepth = 200

    init(tokens: [Token]) {
        self.tokens = tokens
    }

    static func parse(_ source: String, trimBlocks: Bool, lstripBlocks: Bool) throws(TemplateError) -> [Statement] {
        let tokens = try Lexer.tokenize(source, trimBlocks: trimBlocks, lstripBlocks: lstripBlocks)
        var parser = Parser(tokens: tokens)
        let body = try parser.parseBody(until: [])
        try Validator.validate(body)
        return body
    }

    // MARK: - Token helpers

    private var current: Token { tokens[index] }
    private var line: Int { current.line }

    private func peek(_ offset: Int = 1) -> Token {
        tokens[min(index + offset, tokens.count - 1)]
    }

    private mutating func advance() {
        if index < tokens.count - 1 { index += 1 }
    }

    private func isOp(_ op: String) -> Bool {
        if case .op(op) = current.kind { return true }
        return false
    }

    private func isName(_ name: String) -> Bool {
        if case .name(name) = current.kind { return true }
        return false
    }

    private mutating func skipOp(_ op: String) -> Bool {
        guard isOp(op) else { return false }
        advance()
        return true
    }

    private mutating func skipName(_ name: String) -> Bool {
        guard isName(name) else { return false }
        advance()
        return true
    }

    private func describe(_ token: Token) -> String {
        switch token.kind {
        case .text: return "template text"
        case .variableBegin: return "'{{'"
        case .variableEnd: return "end of print statement"
        case .blockBegin: return "'{%'"
        case .blockEnd: return "end of statement block"
        case .name(let name): return "'\(name)'"
        case .string: return "string literal"
        case .integer(let value): return "'\(value)'"
        case .float(let value): return "'\(value)'"
        case .op(let op): return "'\(op)'"
        case .end: return "end of template"
        }
    }

    private func unexpected(expected: String) -> TemplateError {
        .syntax("expected \(expected), got \(describe(current))", line: line)
    }

    private mutating func expectOp(_ op: String) throws(TemplateError) {
        guard skipOp(op) else { throw unexpected(expected: "'\(op)'") }
    }

    private mutating func expectName() throws(TemplateError) -> String {
        guard case .name(let name) = current.kind else { throw unexpected(expected: "a name") }
        advance()
        return name
    }

    private mutating func expectBlockEnd() throws(TemplateError) {
        guard case .blockEnd = current.kind else { throw unexpected(expected: "end of statement block") }
        advance()
    }

    private mutating func enter() throws(TemplateError) {
        depth += 1
        guard depth <= Parser.maximumDepth else { throw .syntax("template is nested too deeply", line: line) }
    }

    /// Counts one more level of a left-nested chain (`a + b + c`, `x.y.z`, `v | f | g`) against
    /// the nesting limit, since evaluating it recurses as deeply as explicit nesting does.
    private mutating func deepen(_ levels: inout Int) throws(TemplateError) {
        try enter()
        levels += 1
    }

    // MARK: - Statements

    /// Parses statements until a block tag whose name is in `endNames`; leaves the parser on
    /// that name.
    private mutating func parseBody(until endNames: Set<String>) throws(TemplateError) -> [Statement] {
        try enter()
        defer { depth -= 1 }
        var body: [Statement] = []
        while true {
            let token = current
            switch token.kind {
            case .text(let text):
                body.append(Statement(line: token.line, kind: .text(text)))
                advance()
            case .variableBegin:
                advance()
                let expression = try parseTuple()
                guard case .variableEnd = current.kind else { throw unexpected(expected: "end of print statement") }
                advance()
                body.append(Statement(line: token.line, kind: .output(expression)))
            case .blockBegin:
                advance()
                guard case .name(let tag) = current.kind else { throw unexpected(expected: "a tag name") }
                if endNames.contains(tag) { return body }
                if let statement = try parseStatement(tag, line: token.line) { body.append(statement) }
            case .end:
                if endNames.isEmpty { return body }
                let expected = endNames.sorted().map { "'\($0)'" }.joined(separator: " or ")
                throw .syntax("unexpected end of template, expected \(expected)", line: token.line)
            default:
                throw unexpected(expected: "template content")
            }
        }
    }

    private mutating func parseStatement(_ tag: String, line: Int) throws(TemplateError) -> Statement? {
        advance()
        switch tag {
        case "if": return try parseIf(line: line)
        case "for": return try parseFor(line: line)
        case "set": return try parseSet(line: line)
        case "macro": return try parseMacro(line: line)
        case "call": return try parseCallBlock(line: line)
        case "filter": return try parseFilterBlock(line: line)
        case "with": return try parseWith(line: line)
        case "print":
            let expression = try parseTuple()
            try expectBlockEnd()
            return Statement(line: line, kind: .output(expression))
        case "generation":
            // transformers' `{% generation %}` marks assistant text; it renders its body as is.
            try expectBlockEnd()
            let body = try parseBody(until: ["endgeneration"])
            advance()
            try expectBlockEnd()
            return Statement(line: line, kind: .with([], body: body))
        case "break", "continue":
            guard loopDepth > 0 else { throw .syntax("'\(tag)' outside of a loop", line: line) }
            try expectBlockEnd()
            return Statement(line: line, kind: tag == "break" ? .break : .continue)
        default:
            throw .syntax("unknown tag '\(tag)'", line: line)
        }
    }

    private mutating func parseIf(line: Int) throws(TemplateError) -> Statement {
        var branches: [(condition: Expression, body: [Statement])] = []
        var condition = try parseTuple(withConditional: false)
        try expectBlockEnd()
        while true {
            let body = try parseBody(until: ["elif", "else", "endif"])
            branches.append((condition, body))
            let tag = try expectName()
            switch tag {
            case "elif":
                condition = try parseTuple(withConditional: false)
                try expectBlockEnd()
            case "else":
                try expectBlockEnd()
                let otherwise = try parseBody(until: ["endif"])
                advance()
                try expectBlockEnd()
                return Statement(line: line, kind: .if(branches, otherwise: otherwise))
            default:
                try expectBlockEnd()
                return Statement(line: line, kind: .if(branches, otherwise: []))
            }
        }
    }

    private mutating func parseFor(line: Int) throws(TemplateError) -> Statement {
        let target = try parseTarget(allowAttribute: false)
        guard skipName("in") else { throw unexpected(expected: "'in'") }
        let iterable = try parseTuple(withConditional: false, extraEnd: "recursive")
        var condition: Expression?
        if skipName("if") { condition = try parseExpression() }
        let recursive = skipName("recursive")
        try expectBlockEnd()
        loopDepth += 1
        let body = try parseBody(until: ["endfor", "else"])
        loopDepth -= 1
        var elseBody: [Statement] = []
        if try expectName() == "else" {
            try expectBlockEnd()
            elseBody = try parseBody(until: ["endfor"])
            advance()
        }
        try expectBlockEnd()
        let loop = ForLoop(target: target, iterable: iterable, condition: condition, body: body, elseBody: elseBody, recursive: recursive)
        return Statement(line: line, kind: .for(loop))
    }

    private mutating func parseSet(line: Int) throws(TemplateError) -> Statement {
        let target = try parseTarget(allowAttribute: true)
        if skipOp("=") {
            let value = try parseTuple()
            try expectBlockEnd()
            return Statement(line: line, kind: .set(target, value))
        }
        var filters: [FilterCall] = []
        while skipOp("|") { filters.append(try parseFilterCall()) }
        try expectBlockEnd()
        let body = try parseBody(until: ["endset"])
        advance()
        try expectBlockEnd()
        return Statement(line: line, kind: .setBlock(target, filters: filters, body: body))
    }

    private mutating func parseParameters() throws(TemplateError) -> [(name: String, defaultValue: Expression?)] {
        var parameters: [(name: String, defaultValue: Expression?)] = []
        try expectOp("(")
        while !isOp(")") {
            if !parameters.isEmpty { try expectOp(",") }
            if isOp(")") { break }
            let name = try expectName()
            var defaultValue: Expression?
            if skipOp("=") {
                defaultValue = try parseExpression()
            } else if parameters.contains(where: { $0.defaultValue != nil }) {
                throw .syntax("non-default argument '\(name)' follows default argument", line: line)
            }
            parameters.append((name, defaultValue))
        }
        try expectOp(")")
        return parameters
    }

    private mutating func parseMacroBody(name: String, parameters: [(name: String, defaultValue: Expression?)], end: String) throws(TemplateError) -> MacroDefinition {
        let savedLoopDepth = loopDepth
        loopDepth = 0
        let body = try parseBody(until: [end])
        loopDepth = savedLoopDepth
        advance()
        try expectBlockEnd()
        let usage = NameUsage(body)
        return MacroDefinition(
            name: name, parameters: parameters, body: body,
            usesCaller: usage.names.contains("caller"),
            usesVarargs: usage.names.contains("varargs"),
            usesKwargs: usage.names.contains("kwargs"))
    }

    private mutating func parseMacro(line: Int) throws(TemplateError) -> Statement {
        let name = try expectName()
        let parameters = try parseParameters()
        try expectBlockEnd()
        let macro = try parseMacroBody(name: name, parameters: parameters, end: "endmacro")
        return Statement(line: line, kind: .macro(macro))
    }

    private mutating func parseCallBlock(line: Int) throws(TemplateError) -> Statement {
        let parameters = isOp("(") ? try parseParameters() : []
        let call = try parseExpression()
        guard case .call = call.kind else { throw .syntax("expected a call expression after 'call'", line: line) }
        try expectBlockEnd()
        let macro = try parseMacroBody(name: "caller", parameters: parameters, end: "endcall")
        return Statement(line: line, kind: .callBlock(call: call, macro: macro))
    }

    private mutating func parseFilterBlock(line: Int) throws(TemplateError) -> Statement {
        var filters = [try parseFilterCall()]
        while skipOp("|") { filters.append(try parseFilterCall()) }
        try expectBlockEnd()
        let body = try parseBody(until: ["endfilter"])
        advance()
        try expectBlockEnd()
        return Statement(line: line, kind: .filterBlock(filters, body: body))
    }

    private mutating func parseWith(line: Int) throws(TemplateError) -> Statement {
        var assignments: [(Target, Expression)] = []
        while case .name = current.kind {
            if !assignments.isEmpty { try expectOp(",") }
            let target = try parseTarget(allowAttribute: false)
            try expectOp("=")
            assignments.append((target, try parseExpression()))
            if !isOp(",") { break }
        }
        try expectBlockEnd()
        let body = try parseBody(until: ["endwith"])
        advance()
        try expectBlockEnd()
        return Statement(line: line, kind: .with(assignments, body: body))
    }

    /// `name`, `ns.attr` (for `set`), `a, b` or `(a, b)`.
    private mutating func parseTarget(allowAttribute: Bool) throws(TemplateError) -> Target {
        var targets: [Target] = []
        var isTuple = false
        while true {
            if skipOp("(") {
                targets.append(try parseTarget(allowAttribute: false))
                try expectOp(")")
            } else {
                let name = try expectName()
                if allowAttribute, skipOp(".") {
                    targets.append(.attribute(name, try expectName()))
                } else {
                    targets.append(.name(name))
                }
            }
            guard skipOp(",") else { break }
            isTuple = true
            if case .name("in") = current.kind { break }
            if isOp("=") || isOp(")") { break }
        }
        if case .name(let name) = targets.first, !isTuple, ["true", "false", "none", "True", "False", "None"].contains(name) {
            throw .syntax("cannot assign to '\(name)'", line: line)
        }
        return isTuple ? .tuple(targets) : targets[0]
    }

    private mutating func parseFilterCall() throws(TemplateError) -> FilterCall {
        let filterLine = line
        var name = try expectName()
        while skipOp(".") { name += "." + (try expectName()) }
        let arguments = isOp("(") ? try parseCallArguments() : []
        return FilterCall(name: name, arguments: arguments, line: filterLine)
    }

    // MARK: - Expressions

    private func isTupleEnd(_ extraEnd: String?) -> Bool {
        switch current.kind {
        case .variableEnd, .blockEnd, .end: return true
        case .op(")"): return true
        case .name(let name): return name == extraEnd
        default: return false
        }
    }

    private mutating func parseTuple(withConditional: Bool = true, extraEnd: String? = nil, explicitParentheses: Bool = false) throws(TemplateError) -> Expression {
        let start = line
        var items: [Expression] = []
        var isTuple = false
        while true {
            if !items.isEmpty { try expectOp(",") }
            if isTupleEnd(extraEnd) { break }
            items.append(withConditional ? try parseExpression() : try parseOr())
            if isOp(",") { isTuple = true } else { break }
        }
        if !isTuple {
            if let first = items.first { return first }
            if !explicitParentheses { throw unexpected(expected: "an expression") }
        }
        return Expression(line: start, kind: .tuple(items))
    }

    mutating func parseExpression() throws(TemplateError) -> Expression {
        var levels = 0
        defer { depth -= levels }
        try enter()
        defer { depth -= 1 }
        var expression = try parseOr()
        while isName("if") {
            try deepen(&levels)
            let start = line
            advance()
            let test = try parseOr()
            var otherwise: Expression?
            if skipName("else") { otherwise = try parseExpression() }
            expression = Expression(line: start, kind: .conditional(test: test, then: expression, otherwise: otherwise))
        }
        return expression
    }

    /// A left-associative chain `operand (operator operand)*`; `combine` recognizes the operator at the current
    /// token and says how two operands join (nil: the chain ends).
    private mutating func parseChain(
        _ operand: (inout Self) throws(TemplateError) -> Expression,
        _ combine: (Self) -> ((Expression, Expression) -> Expression.Kind)?
    ) throws(TemplateError) -> Expression {
        var levels = 0
        defer { depth -= levels }
        var left = try operand(&self)
        while let join = combine(self) {
            try deepen(&levels)
            let start = line
            advance()
            left = Expression(line: start, kind: join(left, try operand(&self)))
        }
        return left
    }

    private mutating func parseOr() throws(TemplateError) -> Expression {
        try parseChain({ p throws(TemplateError) in try p.parseAnd() }) { p in p.isName("or") ? { .or($0, $1) } : nil }
    }
    private mutating func parseAnd() throws(TemplateError) -> Expression {
        try parseChain({ p throws(TemplateError) in try p.parseNot() }) { p in p.isName("and") ? { .and($0, $1) } : nil }
    }
    private mutating func parseNot() throws(TemplateError) -> Expression {
        if isName("not") {
            let start = line
            advance()
            try enter()
            defer { depth -= 1 }
            return Expression(line: start, kind: .not(try parseNot()))
        }
        return try parseCompare()
    }

    private mutating func parseCompare() throws(TemplateError) -> Expression {
        let start = line
        let left = try parseMath1()
        var operations: [(CompareOperator, Expression)] = []
        while true {
            if case .op(let op) = current.kind, let comparison = CompareOperator(rawValue: op), comparison != .in, comparison != .notIn {
                advance()
                operations.append((comparison, try parseMath1()))
            } else if isName("in") {
                advance()
                operations.append((.in, try parseMath1()))
            } else if isName("not"), case .name("in") = peek().kind {
                advance()
                advance()
                operations.append((.notIn, try parseMath1()))
            } else {
                break
            }
        }
        return operations.isEmpty ? left : Expression(line: start, kind: .compare(left, operations))
    }

    private mutating func parseMath1() throws(TemplateError) -> Expression {
        try parseChain({ p throws(TemplateError) in try p.parseConcat() }) { p in
            guard case .op(let op) = p.current.kind, op == "+" || op == "-" else { return nil }
            return { .binary(op == "+" ? .add : .subtract, $0, $1) }
        }
    }
    private mutating func parseConcat() throws(TemplateError) -> Expression {
        try parseChain({ p throws(TemplateError) in try p.parseMath2() }) { p in p.isOp("~") ? { .binary(.concat, $0, $1) } : nil }
    }
    private mutating func parseMath2() throws(TemplateError) -> Expression {
        try parseChain({ p throws(TemplateError) in try p.parsePower() }) { p in
            guard case .op(let op) = p.current.kind, let operation = BinaryOperator(rawValue: op),
                  [.multiply, .divide, .floorDivide, .modulo].contains(operation) else { return nil }
            return { .binary(operation, $0, $1) }
        }
    }
    private mutating func parsePower() throws(TemplateError) -> Expression {
        try parseChain({ p throws(TemplateError) in try p.parseUnary() }) { p in p.isOp("**") ? { .binary(.power, $0, $1) } : nil }
    }
    private mutating func parseUnary(withFilter: Bool = true) throws(TemplateError) -> Expression {
        try enter()
        defer { depth -= 1 }
        let start = line
        var expression: Expression
        if skipOp("-") {
            expression = Expression(line: start, kind: .negate(try parseUnary(withFilter: false)))
        } else if skipOp("+") {
            expression = Expression(line: start, kind: .plus(try parseUnary(withFilter: false)))
        } else {
            expression = try parsePrimary()
        }
        expression = try parsePostfix(expression)
        if withFilter { expression = try parseFilterExpression(expression) }
        return expression
    }

    private mutating func parsePrimary() throws(TemplateError) -> Expression {
        let token = current
        switch token.kind {
        case .name(let name):
            advance()
            switch name {
            case "true", "True": return Expression(line: token.line, kind: .literal(.bool(true)))
            case "false", "False": return Expression(line: token.line, kind: .literal(.bool(false)))
            case "none", "None": return Expression(line: token.line, kind: .literal(.none))
            default: return Expression(line: token.line, kind: .name(name))
            }
        case .string(var string):
            advance()
            while case .string(let next) = current.kind {
                string += next
                advance()
            }
            return Expression(line: token.line, kind: .literal(.string(string)))
        case .integer(let value):
            advance()
            return Expression(line: token.line, kind: .literal(.int(value)))
        case .float(let value):
            advance()
            return Expression(line: token.line, kind: .literal(.double(value)))
        case .op("("):
            advance()
            let expression = try parseTuple(explicitParentheses: true)
            try expectOp(")")
            return expression
        case .op("["):
            advance()
            var items: [Expression] = []
            while !isOp("]") {
                if !items.isEmpty { try expectOp(",") }
                if isOp("]") { break }
                items.append(try parseExpression())
            }
            try expectOp("]")
            return Expression(line: token.line, kind: .list(items))
        case .op("{"):
            advance()
            var pairs: [(key: Expression, value: Expression)] = []
            while !isOp("}") {
                if !pairs.isEmpty { try expectOp(",") }
                if isOp("}") { break }
                let key = try parseExpression()
                try expectOp(":")
                pairs.append((key, try parseExpression()))
            }
            try expectOp("}")
            return Expression(line: token.line, kind: .dict(pairs))
        default:
            throw .syntax("unexpected \(describe(token))", line: token.line)
        }
    }

    private mutating func parsePostfix(_ base: Expression) throws(TemplateError) -> Expression {
        var levels = 0
        defer { depth -= levels }
        var expression = base
        while true {
            try deepen(&levels)
            let start = line
            if skipOp(".") {
                switch current.kind {
                case .name(let name):
                    advance()
                    expression = Expression(line: start, kind: .attribute(expression, name))
                case .integer(let value):
                    advance()
                    expression = Expression(line: start, kind: .item(expression, Expression(line: start, kind: .literal(.int(value)))))
                default:
                    throw unexpected(expected: "an attribute name")
                }
            } else if skipOp("[") {
                expression = try parseSubscript(expression, line: start)
            } else if isOp("(") {
                expression = Expression(line: start, kind: .call(expression, try parseCallArguments()))
            } else {
                return expression
            }
        }
    }

    private mutating func parseSubscript(_ base: Expression, line start: Int) throws(TemplateError) -> Expression {
        var items: [Expression] = []
        var slice: (Expression?, Expression?, Expression?)?
        while !isOp("]") {
            if !items.isEmpty || slice != nil { try expectOp(",") }
            var first: Expression?
            if !isOp(":") {
                first = try parseExpression()
                if !isOp(":") {
                    items.append(first ?? Expression(line: start, kind: .literal(.none)))
                    continue
                }
            }
            advance()
            var stop: Expression?
            var step: Expression?
            if !isOp("]") && !isOp(",") && !isOp(":") { stop = try parseExpression() }
            if skipOp(":") {
                if !isOp("]") && !isOp(",") { step = try parseExpression() }
            }
            guard items.isEmpty, slice == nil else { throw .syntax("multi-dimensional slices are not supported", line: start) }
            slice = (first, stop, step)
        }
        try expectOp("]")
        if let slice {
            guard items.isEmpty else { throw .syntax("multi-dimensional slices are not supported", line: start) }
            return Expression(line: start, kind: .slice(base, start: slice.0, stop: slice.1, step: slice.2))
        }
        guard !items.isEmpty else { throw .syntax("expected a subscript", line: start) }
        let key = items.count == 1 ? items[0] : Expression(line: start, kind: .tuple(items))
        return Expression(line: start, kind: .item(base, key))
    }

    private mutating func parseCallArguments() throws(TemplateError) -> [ArgumentNode] {
        try expectOp("(")
        var arguments: [ArgumentNode] = []
        while !isOp(")") {
            if !arguments.isEmpty { try expectOp(",") }
            if isOp(")") { break }
            if isOp("*") || isOp("**") {
                throw .syntax("argument unpacking with '*' or '**' is not supported", line: line)
            }
            if case .name(let name) = current.kind, case .op("=") = peek().kind {
                advance()
                advance()
                arguments.append(ArgumentNode(name: name, value: try parseExpression()))
            } else {
                if arguments.contains(where: { $0.name != nil }) {
                    throw .syntax("positional argument follows keyword argument", line: line)
                }
                arguments.append(ArgumentNode(name: nil, value: try parseExpression()))
            }
        }
        try expectOp(")")
        return arguments
    }

    private mutating func parseFilterExpression(_ base: Expression) throws(TemplateError) -> Expression {
        var levels = 0
        defer { depth -= levels }
        var expression = base
        while true {
            try deepen(&levels)
            let start = line
            if skipOp("|") {
                let filter = try parseFilterCall()
                expression = Expression(line: start, kind: .filter(expression, name: filter.name, filter.arguments))
            } else if isName("is") {
                advance()
                expression = try parseTest(expression, line: start)
            } else if isOp("(") {
                expression = Expression(line: start, kind: .call(expression, try parseCallArguments()))
            } else {
                return expression
            }
        }
    }

    private mutating func parseTest(_ base: Expression, line start: Int) throws(TemplateError) -> Expression {
        let negated = skipName("not")
        var name = try expectName()
        while skipOp(".") { name += "." + (try expectName()) }
        var arguments: [ArgumentNode] = []
        if isOp("(") {
            arguments = try parseCallArguments()
        } else {
            var takesArgument = false
            switch current.kind {
            case .name(let word): takesArgument = !["else", "or", "and"].contains(word)
            case .string, .integer, .float, .op("("), .op("["), .op("{"): takesArgument = true
            default: break
            }
            if takesArgument {
                if isName("is") { throw .syntax("you cannot chain multiple tests with 'is'", line: line) }
                let argument = try parsePostfix(try parsePrimary())
                arguments = [ArgumentNode(name: nil, value: argument)]
            }
        }
        return Expression(line: start, kind: .test(base, name: name, negated: negated, arguments))
    }
}

/// Collects the variable names a macro body refers to (to detect `caller`, `varargs`, `kwargs`).
struct NameUsage {
    private(set) var names: Set<String> = []

    init(_ body: [Statement]) {
        for statement in body { visit(statement) }
    }

    private mutating func visit(_ statement: Statement) {
        switch statement.kind {
        case .text, .break, .continue: break
        case .output(let expression): visit(expression)
        case .if(let branches, let otherwise):
            for branch in branches {
                visit(branch.condition)
                branch.body.forEach { visit($0) }
            }
            otherwise.forEach { visit($0) }
        case .for(let loop):
            visit(loop.iterable)
            if let condition = loop.condition { visit(condition) }
            loop.body.forEach { visit($0) }
            loop.elseBody.forEach { visit($0) }
        case .set(_, let expression): visit(expression)
        case .setBlock(_, let filters, let body):
            filters.forEach { $0.arguments.forEach { visit($0.value) } }
            body.forEach { visit($0) }
        case .macro(let macro):
            macro.parameters.forEach { if let value = $0.defaultValue { visit(value) } }
            macro.body.forEach { visit($0) }
        case .callBlock(let call, let macro):
            visit(call)
            macro.body.forEach { visit($0) }
        case .filterBlock(let filters, let body):
            filters.forEach { $0.arguments.forEach { visit($0.value) } }
            body.forEach { visit($0) }
        case .with(let assignments, let body):
            assignments.forEach { visit($0.1) }
            body.forEach { visit($0) }
        }
    }

    private mutating func visit(_ expression: Expression) {
        switch expression.kind {
        case .literal: break
        case .name(let name): names.insert(name)
        case .list(let items), .tuple(let items): items.forEach { visit($0) }
        case .dict(let pairs):
            for pair in pairs {
                visit(pair.key)
                visit(pair.value)
            }
        case .attribute(let base, _), .negate(let base), .plus(let base), .not(let base): visit(base)
        case .item(let base, let key):
            visit(base)
            visit(key)
        case .slice(let base, let start, let stop, let step):
            visit(base)
            [start, stop, step].forEach { if let value = $0 { visit(value) } }
        case .call(let base, let arguments), .filter(let base, _, let arguments), .test(let base, _, _, let arguments):
            visit(base)
            arguments.forEach { visit($0.value) }
        case .and(let left, let right), .or(let left, let right), .binary(_, let left, let right):
            visit(left)
            visit(right)
        case .compare(let left, let operations):
            visit(left)
            operations.forEach { visit($0.1) }
        case .conditional(let test, let then, let otherwise):
            visit(test)
            visit(then)
            if let otherwise { visit(otherwise) }
        }
    }
}
