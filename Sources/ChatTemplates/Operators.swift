import Foundation

/// Python's arithmetic, concatenation and comparison operators.
enum Operators {
    private static func undefinedOperand(_ values: Value...) -> TemplateError? {
        for value in values {
            if case .undefined(let undefined) = value { return undefined.error }
        }
        return nil
    }

    private static func unsupported(_ symbol: String, _ left: Value, _ right: Value) -> TemplateError {
        .type("unsupported operand type(s) for \(symbol): '\(left.typeName)' and '\(right.typeName)'")
    }

    private static func overflow() -> TemplateError {
        TemplateError(.limit, "integer overflow")
    }

    static func negate(_ value: Value) throws(TemplateError) -> Value {
        if let error = undefinedOperand(value) { throw error }
        switch value.number {
        case .int(let int)?:
            guard int != Int.min else { throw overflow() }
            return .int(-int)
        case .double(let double)?: return .double(-double)
        case nil: throw .type("bad operand type for unary -: '\(value.typeName)'")
        }
    }

    static func plus(_ value: Value) throws(TemplateError) -> Value {
        if let error = undefinedOperand(value) { throw error }
        switch value.number {
        case .int(let int)?: return .int(int)
        case .double(let double)?: return .double(double)
        case nil: throw .type("bad operand type for unary +: '\(value.typeName)'")
        }
    }

    /// `markupsafe.escape` for a plain string.
    static func escapeHTML(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&#34;"
            case "'": result += "&#39;"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    static func binary(_ op: BinaryOperator, _ left: Value, _ right: Value) throws(TemplateError) -> Value {
        if op == .concat { return .string(left.str + right.str) }
        if let error = undefinedOperand(left, right) { throw error }
        switch op {
        case .add: return try add(left, right)
        case .subtract:
            return try arithmetic("-", left, right, { $0.subtractingReportingOverflow($1) }, { $0 - $1 })
        case .multiply: return try multiply(left, right)
        case .divide:
            guard let a = left.number, let b = right.number else { throw unsupported("/", left, right) }
            guard b.double != 0 else { throw .type("ZeroDivisionError: division by zero") }
            return .double(a.double / b.double)
        case .floorDivide:
            guard let a = left.number, let b = right.number else { throw unsupported("//", left, right) }
            if case .int(let x) = a, case .int(let y) = b {
                guard y != 0 else { throw .type("ZeroDivisionError: integer division or modulo by zero") }
                guard !(x == Int.min && y == -1) else { throw overflow() }
                let quotient = x / y
                return .int((x % y != 0 && (x < 0) != (y < 0)) ? quotient - 1 : quotient)
            }
            guard b.double != 0 else { throw .type("ZeroDivisionError: float floor division by zero") }
            return .double((a.double / b.double).rounded(.down))
        case .modulo:
            if let format = left.stringValue {
                return .string(try PrintfFormat.format(format, right))
            }
            guard let a = left.number, let b = right.number else { throw unsupported("%", left, right) }
            if case .int(let x) = a, case .int(let y) = b {
                guard y != 0 else { throw .type("ZeroDivisionError: integer modulo by zero") }
                guard y != -1 else { return .int(0) }
                let remainder = x % y
                return .int(remainder != 0 && (remainder < 0) != (y < 0) ? remainder + y : remainder)
            }
            guard b.double != 0 else { throw .type("ZeroDivisionError: float modulo") }
            let remainder = fmod(a.double, b.double)
            if remainder == 0 { return .double(copysign(0, b.double)) }
            return .double((remainder < 0) != (b.double < 0) ? remainder + b.double : remainder)
        case .power:
            guard let a = left.number, let b = right.number else { throw unsupported("** or pow()", left, right) }
            if case .int(let base) = a, case .int(let exponent) = b, exponent >= 0 {
                var result = 1
                var factor = base
                var remaining = exponent
                while remaining > 0 {
                    if remaining & 1 == 1 {
                        let (product, overflowed) = result.multipliedReportingOverflow(by: factor)
                        guard !overflowed else { throw overflow() }
                        result = product
                    }
                    remaining >>= 1
                    if remaining > 0 {
                        let (square, overflowed) = factor.multipliedReportingOverflow(by: factor)
                        guard !overflowed else { throw overflow() }
                        factor = square
                    }
                }
                return .int(result)
            }
            return .double(pow(a.double, b.double))
        case .concat:
            return .string(left.str + right.str)
        }
    }

    private static func arithmetic(
        _ symbol: String, _ left: Value, _ right: Value,
        _ integer: (Int, Int) -> (partialValue: Int, overflow: Bool),
        _ floating: (Double, Double) -> Double
    ) throws(TemplateError) -> Value {
        guard let a = left.number, let b = right.number else { throw unsupported(symbol, left, right) }
        if case .int(let x) = a, case .int(let y) = b {
            let (result, overflowed) = integer(x, y)
            guard !overflowed else { throw overflow() }
            return .int(result)
        }
        return .double(floating(a.double, b.double))
    }

    private static func add(_ left: Value, _ right: Value) throws(TemplateError) -> Value {
        switch (left, right) {
        case (.string(let a), .string(let b)): return .string(a + b)
        case (.markup(let a), .markup(let b)): return .markup(a + b)
        case (.markup(let a), .string(let b)): return .markup(a + escapeHTML(b))
        case (.string(let a), .markup(let b)): return .markup(escapeHTML(a) + b)
        case (.array(let a), .array(let b)): return .array(a + b)
        case (.tuple(let a), .tuple(let b)): return .tuple(a + b)
        case (.string, _), (.markup, _):
            throw .type("can only concatenate str (not \"\(right.typeName)\") to str")
        case (.array, _):
            throw .type("can only concatenate list (not \"\(right.typeName)\") to list")
        case (.tuple, _):
            throw .type("can only concatenate tuple (not \"\(right.typeName)\") to tuple")
        default:
            return try arithmetic("+", left, right, { $0.addingReportingOverflow($1) }, { $0 + $1 })
        }
    }

    private static func multiply(_ left: Value, _ right: Value) throws(TemplateError) -> Value {
        func repeatCount(_ value: Value) -> Int? {
            if case .int(let count)? = value.number { return max(count, 0) }
            return nil
        }
        switch (left, right) {
        case (.string(let text), _), (.markup(let text), _):
            guard let count = repeatCount(right) else { break }
            return try repeated(text, count, markup: { if case .markup = left { return true }; return false }())
        case (_, .string(let text)), (_, .markup(let text)):
            guard let count = repeatCount(left) else { break }
            return try repeated(text, count, markup: { if case .markup = right { return true }; return false }())
        case (.array(let items), _), (_, .array(let items)):
            let isLeft: Bool
            if case .array = left { isLeft = true } else { isLeft = false }
            guard let count = repeatCount(isLeft ? right : left) else { break }
            let (size, overflowed) = items.count.multipliedReportingOverflow(by: count)
            guard !overflowed, size <= 1_000_000 else { throw TemplateError(.limit, "list repetition too large") }
            return .array(Array([[Value]](repeating: items, count: count).joined()))
        default:
            break
        }
        if left.number == nil || right.number == nil {
            throw .type("can't multiply sequence by non-int of type '\(right.typeName)'")
        }
        return try arithmetic("*", left, right, { $0.multipliedReportingOverflow(by: $1) }, { $0 * $1 })
    }

    private static func repeated(_ text: String, _ count: Int, markup: Bool) throws(TemplateError) -> Value {
        let (size, overflowed) = text.utf8.count.multipliedReportingOverflow(by: count)
        guard !overflowed, size <= 16 * 1024 * 1024 else { throw TemplateError(.limit, "string repetition too large") }
        let result = String(repeating: text, count: count)
        return markup ? .markup(result) : .string(result)
    }

    /// Fails before computing a string or list that would exceed the render limits, so that
    /// repeated doubling (`x + x`, `x * n`) cannot exhaust memory.
    static func checkResultSize(_ op: BinaryOperator, _ left: Value, _ right: Value, limits: RenderLimits) throws(TemplateError) {
        func size(_ value: Value) -> (bytes: Int, elements: Int) {
            switch value {
            case .string(let text), .markup(let text): return (text.utf8.count, 0)
            case .array(let items), .tuple(let items): return (0, items.count)
            default: return (op == .concat ? value.str.utf8.count : 0, 0)
            }
        }
        var bytes = 0
        var elements = 0
        switch op {
        case .add, .concat:
            let (a, b) = (size(left), size(right))
            bytes = a.bytes + b.bytes
            elements = a.elements + b.elements
        case .multiply:
            for (sequence, factor) in [(left, right), (right, left)] {
                guard case .int(let count)? = factor.number, count > 0 else { continue }
                let (itemBytes, itemElements) = size(sequence)
                guard sequence.isString || itemElements > 0 else { continue }
                let scaledBytes = itemBytes.multipliedReportingOverflow(by: count)
                let scaledElements = itemElements.multipliedReportingOverflow(by: count)
                bytes = scaledBytes.overflow ? Int.max : scaledBytes.partialValue
                elements = scaledElements.overflow ? Int.max : scaledElements.partialValue
            }
        default:
            return
        }
        if bytes > limits.maximumOutputBytes {
            throw TemplateError(.limit, "string exceeds \(limits.maximumOutputBytes) bytes")
        }
        if elements > limits.maximumListLength {
            throw TemplateError(.limit, "list exceeds \(limits.maximumListLength) elements")
        }
    }

    // MARK: - Comparison

    /// Python's `==`.
    static func equal(_ left: Value, _ right: Value) -> Bool {
        switch (left, right) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.string(let a), .string(let b)), (.markup(let a), .markup(let b)),
            (.string(let a), .markup(let b)), (.markup(let a), .string(let b)):
            return a.utf8.elementsEqual(b.utf8)
        case (.array(let a), .array(let b)), (.tuple(let a), .tuple(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { equal($0, $1) }
        case (.dict(let a), .dict(let b)):
            guard a.count == b.count else { return false }
            for (key, value) in a.pairs {
                guard let other = b[key], equal(value, other) else { return false }
            }
            return true
        case (.namespace(let a), .namespace(let b)): return a === b
        case (.function(let a), .function(let b)): return a === b
        default:
            guard let a = left.number, let b = right.number else { return false }
            if case .int(let x) = a, case .int(let y) = b { return x == y }
            return a.double == b.double
        }
    }

    /// Python's `<`, raising `TypeError` for unordered types.
    static func less(_ left: Value, _ right: Value) throws(TemplateError) -> Bool {
        if let error = undefinedOperand(left, right) { throw error }
        if let a = left.number, let b = right.number {
            if case .int(let x) = a, case .int(let y) = b { return x < y }
            return a.double < b.double
        }
        if let a = left.stringValue, let b = right.stringValue {
            return a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars)
        }
        switch (left, right) {
        case (.array(let a), .array(let b)), (.tuple(let a), .tuple(let b)):
            for (x, y) in zip(a, b) where !equal(x, y) { return try less(x, y) }
            return a.count < b.count
        default:
            throw .type("'<' not supported between instances of '\(left.typeName)' and '\(right.typeName)'")
        }
    }

    /// Python's `x in container`.
    static func contains(_ container: Value, _ item: Value) throws(TemplateError) -> Bool {
        switch container {
        case .string(let text), .markup(let text):
            guard let needle = item.stringValue else {
                if case .undefined(let undefined) = item { throw undefined.error }
                throw .type("'in <string>' requires string as left operand, not \(item.typeName)")
            }
            return PythonString.contains(text, needle)
        case .array(let items), .tuple(let items), .generator(let items):
            return items.contains { equal($0, item) }
        case .dict(let dict):
            guard let key = DictKey(item) else {
                if case .undefined = item { return false }
                throw .type("unhashable type: '\(item.typeName)'")
            }
            return dict[key] != nil
        case .undefined:
            return false
        default:
            throw .type("argument of type '\(container.typeName)' is not iterable")
        }
    }

    static func compare(_ op: CompareOperator, _ left: Value, _ right: Value) throws(TemplateError) -> Bool {
        switch op {
        case .equal: return equal(left, right)
        case .notEqual: return !equal(left, right)
        case .less: return try less(left, right)
        case .greater: return try less(right, left)
        case .lessOrEqual: return try less(left, right) || equal(left, right)
        case .greaterOrEqual: return try less(right, left) || equal(left, right)
        case .in: return try contains(right, left)
        case .notIn: return try !contains(right, left)
        }
    }
}
