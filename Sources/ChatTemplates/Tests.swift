/// Jinja2's built-in tests (`value is defined`, `value is divisibleby 3`, ...).
extension Interpreter {
    static let testNames: Set<String> = [
        "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "==", "escaped", "even",
        "false", "filter", "float", "ge", ">=", "greaterthan", "gt", ">", "in", "integer", "iterable",
        "le", "<=", "lessthan", "lower", "lt", "<", "mapping", "ne", "!=", "none", "number", "odd",
        "sameas", "sequence", "string", "test", "true", "undefined", "upper",
    ]

    func applyTest(_ name: String, to value: Value, _ arguments: Arguments) throws(TemplateError) -> Bool {
        func argument() throws(TemplateError) -> Value {
            let bound = try arguments.bind(["other"], function: name)
            guard let other = bound[0] else { throw .type("test '\(name)' requires an argument") }
            return other
        }
        func noArguments() throws(TemplateError) {
            guard arguments.isEmpty else { throw .type("test '\(name)' takes no arguments") }
        }
        switch name {
        case "defined":
            try noArguments()
            return !value.isUndefined
        case "undefined":
            try noArguments()
            return value.isUndefined
        case "none":
            try noArguments()
            return value.isNone
        case "boolean":
            try noArguments()
            if case .bool = value { return true }
            return false
        case "true", "false":
            try noArguments()
            if case .bool(let bool) = value { return bool == (name == "true") }
            return false
        case "integer":
            try noArguments()
            if case .int = value { return true }
            return false
        case "float":
            try noArguments()
            if case .double = value { return true }
            return false
        case "number":
            try noArguments()
            return value.number != nil
        case "string":
            try noArguments()
            return value.isString
        case "mapping":
            try noArguments()
            if case .dict = value { return true }
            return false
        case "iterable":
            try noArguments()
            switch value {
            case .undefined, .string, .markup, .array, .tuple, .dict, .generator: return true
            default: return false
            }
        case "sequence":
            try noArguments()
            switch value {
            case .string, .markup, .array, .tuple, .dict: return true
            default: return false
            }
        case "callable":
            try noArguments()
            if case .function = value { return true }
            return false
        case "escaped":
            try noArguments()
            if case .markup = value { return true }
            return false
        case "odd", "even":
            try noArguments()
            guard case .int(let int)? = value.number else {
                if case .undefined(let undefined) = value { throw undefined.error }
                throw .type("test '\(name)' requires an integer, got \(value.typeName)")
            }
            return (int % 2 != 0) == (name == "odd")
        case "divisibleby":
            let other = try argument()
            guard case .int(let int)? = value.number, case .int(let divisor)? = other.number else {
                if case .undefined(let undefined) = value { throw undefined.error }
                throw .type("divisibleby requires integers")
            }
            guard divisor != 0 else { throw .type("ZeroDivisionError: integer division or modulo by zero") }
            return int % divisor == 0
        case "eq", "equalto", "==":
            return Operators.equal(value, try argument())
        case "ne", "!=":
            return !Operators.equal(value, try argument())
        case "lt", "lessthan", "<":
            return try Operators.less(value, try argument())
        case "le", "<=":
            let other = try argument()
            return try Operators.less(value, other) || Operators.equal(value, other)
        case "gt", "greaterthan", ">":
            return try Operators.less(try argument(), value)
        case "ge", ">=":
            let other = try argument()
            return try Operators.less(other, value) || Operators.equal(value, other)
        case "in":
            return try Operators.contains(try argument(), value)
        case "sameas":
            let other = try argument()
            switch (value, other) {
            case (.none, .none): return true
            case (.bool(let a), .bool(let b)): return a == b
            case (.namespace(let a), .namespace(let b)): return a === b
            case (.function(let a), .function(let b)): return a === b
            case (.int(let a), .int(let b)): return a == b && (-5...256).contains(a)
            default: return false
            }
        case "lower":
            try noArguments()
            return PythonString.isLower(value.str)
        case "upper":
            try noArguments()
            return PythonString.isUpper(value.str)
        case "filter":
            try noArguments()
            return value.stringValue.map(Interpreter.filterNames.contains) ?? false
        case "test":
            try noArguments()
            return value.stringValue.map(Interpreter.testNames.contains) ?? false
        default:
            throw .unsupported("unknown test '\(name)'")
        }
    }
}
