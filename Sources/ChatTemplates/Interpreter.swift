import Foundation

/// A lexical scope. `for` iterations, macro calls and capture blocks open a child frame;
/// `if` blocks do not, so `set` inside an `if` is visible after it (as in Jinja2).
final class Frame {
    var variables: [String: Value]
    let parent: Frame?

    init(parent: Frame?, variables: [String: Value] = [:]) {
        self.parent = parent
        self.variables = variables
    }

    func lookup(_ name: String) -> Value? {
        var frame: Frame? = self
        while let current = frame {
            if let value = current.variables[name] { return value }
            frame = current.parent
        }
        return nil
    }
}

/// Resource limits that keep hostile templates from exhausting the server.
struct RenderLimits: Sendable {
    /// The largest string any single operation may build, in UTF-8 bytes.
    static let maximumStringBytes = 16 * 1024 * 1024

    /// The largest output (in UTF-8 bytes) a render, or any captured block, may produce.
    var maximumOutputBytes = RenderLimits.maximumStringBytes
    /// The deepest nesting of macro calls (and recursive loops).
    var maximumCallDepth = 256
    /// The most work one render may do, in units of one loop iteration, one element of a
    /// collection a filter or method processes, or 16 bytes of a string it processes.
    var maximumWork = 20_000_000
    /// The most elements a list built by `+` or `*` may hold.
    var maximumListLength = 1_000_000
    /// The largest list `range()` may produce (Jinja2's sandbox uses the same bound).
    var maximumRange = 100_000
}

/// Evaluates a parsed template against a context.
final class Interpreter {
    enum Control {
        case normal, breakLoop, continueLoop
    }

    let limits: RenderLimits
    let now: Date
    private var callDepth = 0
    private var work = 0

    init(now: Date, limits: RenderLimits) {
        self.now = now
        self.limits = limits
    }

    // MARK: - Statements

    func render(_ body: [Statement], context: [String: Value]) throws(TemplateError) -> String {
        let root = Frame(parent: nil, variables: context)
        var output = ""
        _ = try execute(body, in: root, into: &output)
        return output
    }

    /// Renders `body` into a fresh buffer (macro bodies, `set` blocks, `filter` blocks).
    func capture(_ body: [Statement], in frame: Frame) throws(TemplateError) -> String {
        var output = ""
        _ = try execute(body, in: frame, into: &output)
        return output
    }

    private func append(_ text: String, to output: inout String) throws(TemplateError) {
        try charge(text.utf8.count / 16 + 1)
        output += text
        if output.utf8.count > limits.maximumOutputBytes {
            throw TemplateError(.limit, "output exceeds \(limits.maximumOutputBytes) bytes")
        }
    }

    func execute(_ body: [Statement], in frame: Frame, into output: inout String) throws(TemplateError) -> Control {
        for statement in body {
            do {
                let control = try execute(statement, in: frame, into: &output)
                if control != .normal { return control }
            } catch {
                throw error.at(line: statement.line)
            }
        }
        return .normal
    }

    private func execute(_ statement: Statement, in frame: Frame, into output: inout String) throws(TemplateError) -> Control {
        switch statement.kind {
        case .text(let text):
            try append(text, to: &output)
        case .output(let expression):
            let value = try evaluate(expression, in: frame)
            switch value {
            case .string(let string), .markup(let string): try append(string, to: &output)
            default: try append(value.str, to: &output)
            }
        case .if(let branches, let otherwise):
            for branch in branches where try evaluate(branch.condition, in: frame).isTruthy {
                return try execute(branch.body, in: frame, into: &output)
            }
            return try execute(otherwise, in: frame, into: &output)
        case .for(let loop):
            let iterable = try evaluate(loop.iterable, in: frame)
            try runLoop(loop, over: iterable, depth0: 0, in: frame, into: &output)
        case .set(let target, let expression):
            try assign(target, try evaluate(expression, in: frame), in: frame)
        case .setBlock(let target, let filters, let body):
            var value = Value.string(try capture(body, in: Frame(parent: frame)))
            value = try applyFilters(filters, to: value, in: frame)
            try assign(target, value, in: frame)
        case .macro(let definition):
            frame.variables[definition.name] = .function(makeMacro(definition, closure: frame))
        case .callBlock(let call, let definition):
            let caller = makeMacro(definition, closure: frame)
            guard case .call(let callee, let argumentNodes) = call.kind else {
                throw .syntax("expected a call expression after 'call'", line: call.line)
            }
            var arguments = try evaluateArguments(argumentNodes, in: frame)
            arguments.keyword.append(("caller", .function(caller)))
            let result = try callValue(try evaluate(callee, in: frame), arguments, line: call.line)
            try append(result.str, to: &output)
        case .filterBlock(let filters, let body):
            let value = try applyFilters(filters, to: .string(try capture(body, in: Frame(parent: frame))), in: frame)
            try append(value.str, to: &output)
        case .with(let assignments, let body):
            let inner = Frame(parent: frame)
            for (target, expression) in assignments {
                try assign(target, try evaluate(expression, in: frame), in: inner)
            }
            _ = try execute(body, in: inner, into: &output)
        case .break:
            return .breakLoop
        case .continue:
            return .continueLoop
        }
        return .normal
    }

    private func applyFilters(_ filters: [FilterCall], to value: Value, in frame: Frame) throws(TemplateError) -> Value {
        var result = value
        for filter in filters {
            do {
                let arguments = try evaluateArguments(filter.arguments, in: frame)
                result = try applyFilter(filter.name, to: result, arguments)
            } catch {
                throw error.at(line: filter.line)
            }
        }
        return result
    }

    private func runLoop(_ loop: ForLoop, over iterable: Value, depth0: Int, in frame: Frame, into output: inout String) throws(TemplateError) {
        var items = try iterable.iterate()
        if let condition = loop.condition {
            var kept: [Value] = []
            for item in items {
                let scope = Frame(parent: frame)
                try assign(loop.target, item, in: scope)
                if try evaluate(condition, in: scope).isTruthy { kept.append(item) }
            }
            items = kept
        }
        if items.isEmpty {
            _ = try execute(loop.elseBody, in: Frame(parent: frame), into: &output)
            return
        }
        var recurse: Function?
        if loop.recursive {
            recurse = Function(name: "loop") { [unowned self] arguments, _ throws(TemplateError) -> Value in
                guard arguments.positional.count == 1 else { throw .type("loop() takes exactly one argument") }
                try self.enterCall()
                defer { self.callDepth -= 1 }
                var nested = ""
                try self.runLoop(loop, over: arguments.positional[0], depth0: depth0 + 1, in: frame, into: &nested)
                return .string(nested)
            }
        }
        for index in items.indices {
            try charge(1)
            let scope = Frame(parent: frame)
            try assign(loop.target, items[index], in: scope)
            scope.variables["loop"] = .loop(LoopContext(items: items, index0: index, depth0: depth0, recurse: recurse))
            if try execute(loop.body, in: scope, into: &output) == .breakLoop { break }
        }
    }

    /// Accounts for work done, failing once the render exceeds its budget.
    func charge(_ units: Int) throws(TemplateError) {
        work += units
        guard work <= limits.maximumWork else {
            throw TemplateError(.limit, "template exceeded its work budget of \(limits.maximumWork) steps")
        }
    }

    /// The work of processing `value` once: its length for collections, a unit per 16 bytes of text.
    static func cost(of value: Value) -> Int {
        switch value {
        case .string(let text), .markup(let text): return text.utf8.count / 16 + 1
        case .array(let items), .tuple(let items), .generator(let items): return items.count + 1
        case .dict(let dict): return dict.count + 1
        default: return 1
        }
    }

    func enterCall() throws(TemplateError) {
        callDepth += 1
        guard callDepth <= limits.maximumCallDepth else {
            callDepth -= 1
            throw TemplateError(.limit, "maximum recursion depth of \(limits.maximumCallDepth) exceeded")
        }
    }

    private func assign(_ target: Target, _ value: Value, in frame: Frame) throws(TemplateError) {
        switch target {
        case .name(let name):
            frame.variables[name] = value
        case .attribute(let name, let attribute):
            guard case .namespace(let namespace) = frame.lookup(name) ?? Value.none else {
                throw TemplateError(.runtime, "cannot assign attribute on non-namespace object")
            }
            namespace.attributes[attribute] = value
        case .tuple(let targets):
            let items = try value.iterate()
            guard items.count == targets.count else {
                throw .type(items.count > targets.count
                    ? "too many values to unpack (expected \(targets.count))"
                    : "not enough values to unpack (expected \(targets.count), got \(items.count))")
            }
            for (target, item) in zip(targets, items) { try assign(target, item, in: frame) }
        }
    }

    private func makeMacro(_ definition: MacroDefinition, closure: Frame) -> Function {
        Function(name: definition.name, isMacro: true) { arguments, interpreter throws(TemplateError) -> Value in
            try interpreter.enterCall()
            defer { interpreter.callDepth -= 1 }
            let scope = Frame(parent: closure)
            let parameters = definition.parameters
            var extraPositional: [Value] = []
            for (index, value) in arguments.positional.enumerated() {
                if index < parameters.count {
                    scope.variables[parameters[index].name] = value
                } else if definition.usesVarargs {
                    extraPositional.append(value)
                } else {
                    throw .type("macro '\(definition.name)' takes not more than \(parameters.count) argument(s)")
                }
            }
            var extraKeywords = Dict()
            for (name, value) in arguments.keyword {
                if let index = parameters.firstIndex(where: { $0.name == name }) {
                    guard index >= arguments.positional.count else {
                        throw .type("macro '\(definition.name)' got multiple values for argument '\(name)'")
                    }
                    scope.variables[name] = value
                } else if name == "caller", definition.usesCaller {
                    scope.variables[name] = value
                } else if definition.usesKwargs {
                    extraKeywords[name] = value
                } else {
                    throw .type("macro '\(definition.name)' takes no keyword argument '\(name)'")
                }
            }
            for parameter in parameters where scope.variables[parameter.name] == nil {
                if let defaultValue = parameter.defaultValue {
                    scope.variables[parameter.name] = try interpreter.evaluate(defaultValue, in: scope)
                } else {
                    scope.variables[parameter.name] = .undefined("parameter '\(parameter.name)' was not provided")
                }
            }
            if definition.usesVarargs { scope.variables["varargs"] = .tuple(extraPositional) }
            if definition.usesKwargs { scope.variables["kwargs"] = .dict(extraKeywords) }
            if definition.usesCaller, scope.variables["caller"] == nil {
                scope.variables["caller"] = .undefined("No caller defined")
            }
            return .string(try interpreter.capture(definition.body, in: scope))
        }
    }

    // MARK: - Expressions

    func evaluate(_ expression: Expression, in frame: Frame) throws(TemplateError) -> Value {
        do {
            return try evaluateKind(expression, in: frame)
        } catch {
            throw error.at(line: expression.line)
        }
    }

    private func evaluateKind(_ expression: Expression, in frame: Frame) throws(TemplateError) -> Value {
        switch expression.kind {
        case .literal(let literal):
            switch literal {
            case .none: return .none
            case .bool(let bool): return .bool(bool)
            case .int(let int): return .int(int)
            case .double(let double): return .double(double)
            case .string(let string): return .string(string)
            }
        case .name(let name):
            if let value = frame.lookup(name) { return value }
            return Globals.lookup(name) ?? .undefinedName(name)
        case .list(let items):
            var values: [Value] = []
            values.reserveCapacity(items.count)
            for item in items { values.append(try evaluate(item, in: frame)) }
            return .array(values)
        case .tuple(let items):
            var values: [Value] = []
            values.reserveCapacity(items.count)
            for item in items { values.append(try evaluate(item, in: frame)) }
            return .tuple(values)
        case .dict(let pairs):
            var dict = Dict(minimumCapacity: pairs.count)
            for pair in pairs {
                let key = try evaluate(pair.key, in: frame)
                guard let hashable = DictKey(key) else { throw .type("unhashable type: '\(key.typeName)'") }
                dict[hashable] = try evaluate(pair.value, in: frame)
            }
            return .dict(dict)
        case .attribute(let base, let name):
            return try Access.attribute(try evaluate(base, in: frame), name)
        case .item(let base, let key):
            return try Access.item(try evaluate(base, in: frame), try evaluate(key, in: frame))
        case .slice(let base, let start, let stop, let step):
            let value = try evaluate(base, in: frame)
            return try Access.slice(
                value,
                start: try start.map { (e) throws(TemplateError) in try evaluate(e, in: frame) },
                stop: try stop.map { (e) throws(TemplateError) in try evaluate(e, in: frame) },
                step: try step.map { (e) throws(TemplateError) in try evaluate(e, in: frame) })
        case .call(let callee, let argumentNodes):
            let arguments = try evaluateArguments(argumentNodes, in: frame)
            if case .attribute(let baseExpression, let name) = callee.kind {
                let base = try evaluate(baseExpression, in: frame)
                try charge(Interpreter.cost(of: base))
                if let result = try Methods.call(base, name, arguments) { return try checkSize(result) }
                return try callValue(try Access.attribute(base, name), arguments, line: expression.line)
            }
            return try callValue(try evaluate(callee, in: frame), arguments, line: expression.line)
        case .filter(let base, let name, let argumentNodes):
            let value = try evaluate(base, in: frame)
            try charge(Interpreter.cost(of: value))
            return try checkSize(try applyFilter(name, to: value, try evaluateArguments(argumentNodes, in: frame)))
        case .test(let base, let name, let negated, let argumentNodes):
            let value = try evaluate(base, in: frame)
            let result = try applyTest(name, to: value, try evaluateArguments(argumentNodes, in: frame))
            return .bool(result != negated)
        case .negate(let operand):
            return try Operators.negate(try evaluate(operand, in: frame))
        case .plus(let operand):
            return try Operators.plus(try evaluate(operand, in: frame))
        case .not(let operand):
            return .bool(!(try evaluate(operand, in: frame).isTruthy))
        case .and(let left, let right):
            let value = try evaluate(left, in: frame)
            return value.isTruthy ? try evaluate(right, in: frame) : value
        case .or(let left, let right):
            let value = try evaluate(left, in: frame)
            return value.isTruthy ? value : try evaluate(right, in: frame)
        case .binary(let op, let left, let right):
            let lhs = try evaluate(left, in: frame)
            let rhs = try evaluate(right, in: frame)
            try Operators.checkResultSize(op, lhs, rhs, limits: limits)
            let result = try Operators.binary(op, lhs, rhs)
            try charge(Interpreter.cost(of: result))
            return result
        case .compare(let left, let operations):
            var lhs = try evaluate(left, in: frame)
            for (op, rightExpression) in operations {
                let rhs = try evaluate(rightExpression, in: frame)
                guard try Operators.compare(op, lhs, rhs) else { return .bool(false) }
                lhs = rhs
            }
            return .bool(true)
        case .conditional(let test, let then, let otherwise):
            if try evaluate(test, in: frame).isTruthy { return try evaluate(then, in: frame) }
            if let otherwise { return try evaluate(otherwise, in: frame) }
            return .undefined("the inline if-expression on line \(expression.line) evaluated to false and no else section was defined.")
        }
    }

    /// Rejects strings and lists beyond the render limits.
    func checkSize(_ value: Value) throws(TemplateError) -> Value {
        switch value {
        case .string(let text), .markup(let text):
            if text.utf8.count > limits.maximumOutputBytes {
                throw TemplateError(.limit, "string exceeds \(limits.maximumOutputBytes) bytes")
            }
        case .array(let items), .tuple(let items), .generator(let items):
            if items.count > limits.maximumListLength {
                throw TemplateError(.limit, "list exceeds \(limits.maximumListLength) elements")
            }
        default:
            break
        }
        return value
    }

    func evaluateArguments(_ nodes: [ArgumentNode], in frame: Frame) throws(TemplateError) -> Arguments {
        var arguments = Arguments()
        for node in nodes {
            let value = try evaluate(node.value, in: frame)
            if let name = node.name {
                arguments.keyword.append((name, value))
            } else {
                arguments.positional.append(value)
            }
        }
        return arguments
    }

    func callValue(_ callee: Value, _ arguments: Arguments, line: Int) throws(TemplateError) -> Value {
        switch callee {
        case .function(let function):
            return try function.body(arguments, self)
        case .loop(let loop):
            guard let recurse = loop.recurse else {
                throw .type("the loop is not recursive: add 'recursive' to the for tag to call loop()")
            }
            return try recurse.body(arguments, self)
        case .undefined(let undefined):
            throw undefined.error
        default:
            throw .type("'\(callee.typeName)' object is not callable")
        }
    }
}
