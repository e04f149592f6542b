import Foundation

/// The runtime value of the interpreter: the JSON data model plus the Python/Jinja types that
/// templates can create (tuples, safe strings, generators, namespaces, callables, ...).
enum Value {
    case undefined(Undefined)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    /// A string marked safe (`markupsafe.Markup`): concatenating plain strings to it escapes them.
    case markup(String)
    case array([Value])
    case tuple([Value])
    case dict(Dict)
    /// The lazy result of `map`, `select`, ...: iterable once, no length, not JSON-serializable.
    case generator([Value])
    case namespace(Namespace)
    case loop(LoopContext)
    case function(Function)

    static var emptyString: Value { .string("") }

    static func undefined(_ hint: String, kind: TemplateError.Kind = .undefined) -> Value {
        .undefined(Undefined(hint: hint, kind: kind))
    }

    static func undefinedName(_ name: String) -> Value {
        .undefined(Undefined(hint: "'\(name)' is undefined"))
    }
}

/// Jinja's default `Undefined`: prints as the empty string, iterates as empty and is falsy, but
/// raises when used in arithmetic, attribute access or calls.
struct Undefined {
    var hint: String
    var kind: TemplateError.Kind = .undefined

    var error: TemplateError { TemplateError(kind, hint) }
}

/// A key of a template dictionary. Python allows any hashable value; templates use strings and
/// occasionally numbers.
enum DictKey: Hashable {
    case string(String)
    case int(Int)
    case double(Double)
    case bool(Bool)
    case none

    init?(_ value: Value) {
        switch value {
        case .string(let string), .markup(let string): self = .string(string)
        case .int(let int): self = .int(int)
        case .bool(let bool): self = .bool(bool)
        case .double(let double):
            if let int = Int(exactly: double) { self = .int(int) } else { self = .double(double) }
        case .none: self = .none
        default: return nil
        }
    }

    /// Python compares keys by value across numeric types: `1`, `1.0` and `True` are one key.
    private var numericValue: Int? {
        switch self {
        case .int(let int): return int
        case .bool(let bool): return bool ? 1 : 0
        default: return nil
        }
    }

    static func == (lhs: DictKey, rhs: DictKey) -> Bool {
        if let a = lhs.numericValue, let b = rhs.numericValue { return a == b }
        switch (lhs, rhs) {
        case (.string(let a), .string(let b)): return a == b
        case (.double(let a), .double(let b)): return a == b
        case (.none, .none): return true
        default: return false
        }
    }

    func hash(into hasher: inout Hasher) {
        if let number = numericValue {
            hasher.combine(0)
            hasher.combine(number)
            return
        }
        switch self {
        case .string(let string):
            hasher.combine(1)
            hasher.combine(string)
        case .double(let double):
            hasher.combine(2)
            hasher.combine(double)
        default:
            hasher.combine(3)
        }
    }

    var value: Value {
        switch self {
        case .string(let string): return .string(string)
        case .int(let int): return .int(int)
        case .double(let double): return .double(double)
        case .bool(let bool): return .bool(bool)
        case .none: return .none
        }
    }
}

/// An insertion-ordered dictionary (Python 3.7+ `dict` semantics).
struct Dict {
    private(set) var keys: [DictKey] = []
    private var storage: [DictKey: Value] = [:]

    init() {}

    init(minimumCapacity: Int) {
        keys.reserveCapacity(minimumCapacity)
        storage.reserveCapacity(minimumCapacity)
    }

    var count: Int { keys.count }
    var isEmpty: Bool { keys.isEmpty }

    subscript(key: DictKey) -> Value? {
        get { storage[key] }
        set {
            guard let newValue else { return }
            if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
        }
    }

    subscript(key: String) -> Value? {
        get { storage[.string(key)] }
        set { self[.string(key)] = newValue }
    }

    var values: [Value] { keys.map { storage[$0] ?? Value.none } }

    var pairs: [(key: DictKey, value: Value)] { keys.map { ($0, storage[$0] ?? Value.none) } }
}

/// The mutable object created by `namespace(...)`; assignable with `{% set ns.attr = value %}`.
final class Namespace {
    var attributes: Dict

    init(_ attributes: Dict = Dict()) {
        self.attributes = attributes
    }
}

/// Anything callable from a template: globals, bound methods, macros, `caller`, `loop.cycle`.
final class Function {
    typealias Body = (_ arguments: Arguments, _ interpreter: Interpreter) throws(TemplateError) -> Value

    let name: String
    let isMacro: Bool
    let body: Body

    init(name: String, isMacro: Bool = false, body: @escaping Body) {
        self.name = name
        self.isMacro = isMacro
        self.body = body
    }
}

/// Evaluated call arguments.
struct Arguments {
    var positional: [Value] = []
    var keyword: [(name: String, value: Value)] = []

    var isEmpty: Bool { positional.isEmpty && keyword.isEmpty }

    /// Binds arguments to a Python-style signature, returning one value (or `nil`) per parameter.
    /// Fails on unknown keywords and excess positional arguments.
    func bind(_ parameters: [String], function: String) throws(TemplateError) -> [Value?] {
        guard positional.count <= parameters.count else {
            throw .type("\(function)() takes at most \(parameters.count) argument(s) (\(positional.count) given)")
        }
        var bound: [Value?] = positional.map { $0 }
        bound.append(contentsOf: repeatElement(nil, count: parameters.count - positional.count))
        for (name, value) in keyword {
            guard let index = parameters.firstIndex(of: name) else {
                throw .type("\(function)() got an unexpected keyword argument '\(name)'")
            }
            guard bound[index] == nil else {
                throw .type("\(function)() got multiple values for argument '\(name)'")
            }
            bound[index] = value
        }
        return bound
    }
}

/// The state behind the `loop` variable of a `for` block.
struct LoopContext {
    let items: [Value]
    let index0: Int
    let depth0: Int
    let recurse: Function?

    var length: Int { items.count }
}

// MARK: - Conversions

extension Value {
    init(_ value: JinjaValue) {
        switch value {
        case .undefined: self = .undefined(Undefined(hint: "value is undefined"))
        case .none: self = .none
        case .bool(let bool): self = .bool(bool)
        case .int(let int): self = .int(int)
        case .double(let double): self = .double(double)
        case .string(let string): self = .string(string)
        case .array(let array): self = .array(array.map(Value.init))
        case .object(let object):
            var dict = Dict(minimumCapacity: object.count)
            for (key, value) in object { dict[.string(key)] = Value(value) }
            self = .dict(dict)
        }
    }

    /// Converts back to the public data model; callables and namespaces have no counterpart.
    var jinjaValue: JinjaValue? {
        switch self {
        case .undefined: return .undefined
        case .none: return JinjaValue.none
        case .bool(let bool): return .bool(bool)
        case .int(let int): return .int(int)
        case .double(let double): return .double(double)
        case .string(let string), .markup(let string): return .string(string)
        case .array(let items), .tuple(let items), .generator(let items):
            var result: [JinjaValue] = []
            for item in items {
                guard let converted = item.jinjaValue else { return nil }
                result.append(converted)
            }
            return .array(result)
        case .dict(let dict):
            var object = JinjaObject()
            for (key, value) in dict.pairs {
                guard let converted = value.jinjaValue else { return nil }
                object[PythonFormat.str(key.value)] = converted
            }
            return .object(object)
        case .namespace, .loop, .function: return nil
        }
    }
}

// MARK: - Python semantics

extension Value {
    var isUndefined: Bool {
        if case .undefined = self { return true }
        return false
    }

    var isNone: Bool {
        if case .none = self { return true }
        return false
    }

    /// Python truthiness.
    var isTruthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let bool): return bool
        case .int(let int): return int != 0
        case .double(let double): return double != 0
        case .string(let string), .markup(let string): return !string.isEmpty
        case .array(let items), .tuple(let items): return !items.isEmpty
        case .dict(let dict): return !dict.isEmpty
        case .generator, .namespace, .loop, .function: return true
        }
    }

    /// The Python type name, as used in error messages.
    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .markup: return "Markup"
        case .array: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .generator: return "generator"
        case .namespace: return "Namespace"
        case .loop: return "LoopContext"
        case .function(let function): return function.isMacro ? "Macro" : "function"
        }
    }

    /// The string payload of `str` and `Markup` values.
    var stringValue: String? {
        switch self {
        case .string(let string), .markup(let string): return string
        default: return nil
        }
    }

    var isString: Bool { stringValue != nil }

    /// Python's `str(value)`.
    var str: String { PythonFormat.str(self) }

    /// Elements when iterating the value (`for x in value`).
    func iterate() throws(TemplateError) -> [Value] {
        switch self {
        case .undefined: return []
        case .array(let items), .tuple(let items), .generator(let items): return items
        case .dict(let dict): return dict.keys.map(\.value)
        case .string(let string): return string.unicodeScalars.map { .string(String($0)) }
        case .markup(let string): return string.unicodeScalars.map { .markup(String($0)) }
        case .namespace: throw .type("'Namespace' object is not iterable")
        default: throw .type("'\(typeName)' object is not iterable")
        }
    }

    /// Python's `len(value)`.
    func length() throws(TemplateError) -> Int {
        switch self {
        case .undefined: return 0
        case .string(let string), .markup(let string): return string.unicodeScalars.count
        case .array(let items), .tuple(let items): return items.count
        case .dict(let dict): return dict.count
        case .loop(let loop): return loop.length
        default: throw .type("object of type '\(typeName)' has no len()")
        }
    }

    /// Numeric view for arithmetic (bools count as integers, as in Python).
    enum Number {
        case int(Int)
        case double(Double)

        var double: Double {
            switch self {
            case .int(let int): return Double(int)
            case .double(let double): return double
            }
        }
    }

    var number: Number? {
        switch self {
        case .int(let int): return .int(int)
        case .bool(let bool): return .int(bool ? 1 : 0)
        case .double(let double): return .double(double)
        default: return nil
        }
    }
}
