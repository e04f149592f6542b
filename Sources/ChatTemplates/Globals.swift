import Foundation

/// Global functions: Jinja2's `range`, `namespace`, `dict`, `joiner`, and transformers'
/// `raise_exception` and `strftime_now`.
enum Globals {
    static let names: Set<String> = ["range", "namespace", "dict", "joiner", "raise_exception", "strftime_now"]

    static func lookup(_ name: String) -> Value? {
        switch name {
        case "range": return .function(Function(name: name, body: range))
        case "namespace": return .function(Function(name: name, body: namespace))
        case "dict":
            return .function(Function(name: name) { arguments, _ throws(TemplateError) -> Value in
                .dict(try mapping(arguments, function: "dict"))
            })
        case "joiner": return .function(Function(name: name, body: joiner))
        case "raise_exception":
            return .function(Function(name: name) { arguments, _ throws(TemplateError) -> Value in
                let bound = try arguments.bind(["message"], function: "raise_exception")
                throw TemplateError(.raised, bound[0]?.str ?? "")
            })
        case "strftime_now":
            return .function(Function(name: name) { arguments, interpreter throws(TemplateError) -> Value in
                let bound = try arguments.bind(["format"], function: "strftime_now")
                guard let format = bound[0]?.stringValue else { throw .type("strftime_now() requires a format string") }
                return .string(Strftime.format(format, interpreter.now))
            })
        default:
            return nil
        }
    }

    private static func range(_ arguments: Arguments, _ interpreter: Interpreter) throws(TemplateError) -> Value {
        guard arguments.keyword.isEmpty else { throw .type("range() takes no keyword arguments") }
        var bounds: [Int] = []
        for value in arguments.positional {
            guard case .int(let int)? = value.number else {
                if case .undefined(let undefined) = value { throw undefined.error }
                throw .type("'\(value.typeName)' object cannot be interpreted as an integer")
            }
            bounds.append(int)
        }
        let (start, stop, step): (Int, Int, Int)
        switch bounds.count {
        case 1: (start, stop, step) = (0, bounds[0], 1)
        case 2: (start, stop, step) = (bounds[0], bounds[1], 1)
        case 3: (start, stop, step) = (bounds[0], bounds[1], bounds[2])
        default: throw .type("range expected 1 to 3 arguments, got \(bounds.count)")
        }
        guard step != 0 else { throw .type("ValueError: range() arg 3 must not be zero") }
        let tooBig = TemplateError(.security, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (\(interpreter.limits.maximumRange)).")
        let (span, spanOverflow) = step > 0 ? stop.subtractingReportingOverflow(start) : start.subtractingReportingOverflow(stop)
        guard !spanOverflow else { throw tooBig }
        let stepMagnitude = step.magnitude
        let count = span <= 0 ? 0 : Int((UInt(span) - 1) / stepMagnitude) + 1
        guard count <= interpreter.limits.maximumRange else {
            throw TemplateError(.security, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (\(interpreter.limits.maximumRange)).")
        }
        return .array((0..<count).map { .int(start + $0 * step) })
    }

    private static func mapping(_ arguments: Arguments, function: String) throws(TemplateError) -> Dict {
        var dict = Dict()
        guard arguments.positional.count <= 1 else {
            throw .type("\(function) expected at most 1 argument, got \(arguments.positional.count)")
        }
        if let source = arguments.positional.first {
            switch source {
            case .dict(let other):
                for (key, value) in other.pairs { dict[key] = value }
            default:
                for pair in try source.iterate() {
                    let items = try pair.iterate()
                    guard items.count == 2, let key = DictKey(items[0]) else {
                        throw .type("cannot convert \(function) update sequence element to a key/value pair")
                    }
                    dict[key] = items[1]
                }
            }
        }
        for (name, value) in arguments.keyword { dict[name] = value }
        return dict
    }

    private static func namespace(_ arguments: Arguments, _ interpreter: Interpreter) throws(TemplateError) -> Value {
        .namespace(Namespace(try mapping(arguments, function: "namespace")))
    }

    private static func joiner(_ arguments: Arguments, _ interpreter: Interpreter) throws(TemplateError) -> Value {
        let bound = try arguments.bind(["sep"], function: "joiner")
        let separator = bound[0]?.str ?? ", "
        let state = Namespace()
        return .function(Function(name: "joiner") { _, _ throws(TemplateError) -> Value in
            if state.attributes["used"] == nil {
                state.attributes["used"] = .bool(true)
                return .emptyString
            }
            return .string(separator)
        })
    }
}
