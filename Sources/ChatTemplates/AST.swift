/// A constant written in the template source.
enum Literal: Sendable {
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
}

enum BinaryOperator: String, Sendable {
    case add = "+"
    case subtract = "-"
    case multiply = "*"
    case divide = "/"
    case floorDivide = "//"
    case modulo = "%"
    case power = "**"
    case concat = "~"
}

enum CompareOperator: String, Sendable {
    case equal = "=="
    case notEqual = "!="
    case less = "<"
    case lessOrEqual = "<="
    case greater = ">"
    case greaterOrEqual = ">="
    case `in` = "in"
    case notIn = "not in"
}

/// A call argument: positional when `name` is nil.
struct ArgumentNode: Sendable {
    var name: String?
    var value: Expression
}

/// An expression with the line it starts on.
struct Expression: Sendable {
    var line: Int
    var kind: Kind

    indirect enum Kind: Sendable {
        case literal(Literal)
        case name(String)
        case list([Expression])
        case tuple([Expression])
        case dict([(key: Expression, value: Expression)])
        case attribute(Expression, String)
        case item(Expression, Expression)
        case slice(Expression, start: Expression?, stop: Expression?, step: Expression?)
        case call(Expression, [ArgumentNode])
        case filter(Expression, name: String, [ArgumentNode])
        case test(Expression, name: String, negated: Bool, [ArgumentNode])
        case negate(Expression)
        case plus(Expression)
        case not(Expression)
        case and(Expression, Expression)
        case or(Expression, Expression)
        case binary(BinaryOperator, Expression, Expression)
        case compare(Expression, [(CompareOperator, Expression)])
        case conditional(test: Expression, then: Expression, otherwise: Expression?)
    }
}

/// A filter application inside `{% filter %}` or `{% set x | filter %}`.
struct FilterCall: Sendable {
    var name: String
    var arguments: [ArgumentNode]
    var line: Int
}

/// An assignment target of `set` or `for`.
indirect enum Target: Sendable {
    case name(String)
    case attribute(String, String)
    case tuple([Target])
}

/// A macro (or `call` block) definition.
struct MacroDefinition: Sendable {
    var name: String
    var parameters: [(name: String, defaultValue: Expression?)]
    var body: [Statement]
    /// Whether the body refers to `caller`, `varargs` or `kwargs`.
    var usesCaller: Bool
    var usesVarargs: Bool
    var usesKwargs: Bool
}

struct ForLoop: Sendable {
    var target: Target
    var iterable: Expression
    var condition: Expression?
    var body: [Statement]
    var elseBody: [Statement]
    var recursive: Bool
}

/// A statement with the line it starts on.
struct Statement: Sendable {
    var line: Int
    var kind: Kind

    indirect enum Kind: Sendable {
        case text(String)
        case output(Expression)
        case `if`([(condition: Expression, body: [Statement])], otherwise: [Statement])
        case `for`(ForLoop)
        case set(Target, Expression)
        case setBlock(Target, filters: [FilterCall], body: [Statement])
        case macro(MacroDefinition)
        case callBlock(call: Expression, macro: MacroDefinition)
        case filterBlock([FilterCall], body: [Statement])
        case with([(Target, Expression)], body: [Statement])
        case `break`
        case `continue`
    }
}
