/// Methods of Python's `str`, `dict` and `list` reachable from templates.
///
/// Mutating methods (`list.append`, `dict.update`, ...) are refused with a security error,
/// exactly as Jinja2's `ImmutableSandboxedEnvironment` (used by transformers) refuses them.
enum Methods {
    static let stringMethods: Set<String> = [
        "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "startswith", "endswith",
        "upper", "lower", "title", "capitalize", "casefold", "swapcase", "replace", "format",
        "find", "rfind", "index", "rindex", "count", "join", "isdigit", "isdecimal", "isnumeric",
        "isalpha", "isalnum", "isspace", "islower", "isupper", "istitle", "zfill", "center",
        "ljust", "rjust", "partition", "rpartition", "removeprefix", "removesuffix", "format_map",
    ]
    static let dictMethods: Set<String> = ["get", "items", "keys", "values", "copy"]
    static let dictMutators: Set<String> = ["pop", "popitem", "setdefault", "update", "clear"]
    static let listMethods: Set<String> = ["index", "count", "copy"]
    static let listMutators: Set<String> = ["append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear"]

    private static func unsafe(_ value: Value, _ name: String) -> String {
        "access to attribute '\(name)' of '\(value.typeName)' object is unsafe."
    }

    /// The method as a value (for `x.method` without a call), or `nil` when it is not a method.
    static func bound(_ value: Value, _ name: String) -> Value? {
        switch value {
        case .string, .markup:
            guard stringMethods.contains(name) else { return nil }
        case .dict:
            if dictMutators.contains(name) { return .undefined(unsafe(value, name), kind: .security) }
            guard dictMethods.contains(name) else { return nil }
        case .array:
            if listMutators.contains(name) { return .undefined(unsafe(value, name), kind: .security) }
            guard listMethods.contains(name) else { return nil }
        case .tuple:
            guard name == "index" || name == "count" else { return nil }
        default:
            return nil
        }
        return .function(Function(name: name) { arguments, _ throws(TemplateError) -> Value in
            guard let result = try call(value, name, arguments) else {
                throw .unsupported("'\(value.typeName)' object has no method '\(name)'")
            }
            return result
        })
    }

    /// Calls `value.name(arguments)`; returns `nil` when `name` is not a method of the value.
    static func call(_ value: Value, _ name: String, _ arguments: Arguments) throws(TemplateError) -> Value? {
        switch value {
        case .string(let text):
            return try stringMethod(text, name, arguments, markup: false)
        case .markup(let text):
            return try stringMethod(text, name, arguments, markup: true)
        case .dict(let dict):
            if dictMutators.contains(name) { throw TemplateError(.security, unsafe(value, name)) }
            return try dictMethod(dict, name, arguments)
        case .array(let items), .tuple(let items):
            if case .array = value, listMutators.contains(name) { throw TemplateError(.security, unsafe(value, name)) }
            return try listMethod(value, items, name, arguments)
        case .undefined(let undefined):
            throw undefined.error
        default:
            return nil
        }
    }

    // MARK: - dict

    private static func dictMethod(_ dict: Dict, _ name: String, _ arguments: Arguments) throws(TemplateError) -> Value? {
        switch name {
        case "get":
            let bound = try arguments.bind(["key", "default"], function: "get")
            guard let key = bound[0] else { throw .type("get expected at least 1 argument, got 0") }
            if let hashable = DictKey(key), let found = dict[hashable] { return found }
            return bound[1] ?? Value.none
        case "items":
            try expectNoArguments(arguments, name)
            return .array(dict.pairs.map { .tuple([$0.key.value, $0.value]) })
        case "keys":
            try expectNoArguments(arguments, name)
            return .array(dict.keys.map(\.value))
        case "values":
            try expectNoArguments(arguments, name)
            return .array(dict.values)
        case "copy":
            try expectNoArguments(arguments, name)
            return .dict(dict)
        default:
            return nil
        }
    }

    // MARK: - list

    private static func listMethod(_ value: Value, _ items: [Value], _ name: String, _ arguments: Arguments) throws(TemplateError) -> Value? {
        switch name {
        case "index":
            let bound = try arguments.bind(["value", "start", "stop"], function: "index")
            guard let needle = bound[0] else { throw .type("index expected at least 1 argument, got 0") }
            if let position = items.firstIndex(where: { Operators.equal($0, needle) }) { return .int(position) }
            throw .type("ValueError: \(PythonFormat.repr(needle)) is not in list")
        case "count":
            let bound = try arguments.bind(["value"], function: "count")
            guard let needle = bound[0] else { throw .type("count() takes exactly one argument (0 given)") }
            return .int(items.filter { Operators.equal($0, needle) }.count)
        case "copy":
            guard case .array = value else { return nil }
            return .array(items)
        default:
            return nil
        }
    }

    // MARK: - str

    private static func expectNoArguments(_ arguments: Arguments, _ name: String) throws(TemplateError) {
        guard arguments.isEmpty else { throw .type("\(name)() takes no arguments") }
    }

    private static func optionalString(_ value: Value?, _ function: String) throws(TemplateError) -> String? {
        guard let value, !value.isNone else { return nil }
        guard let text = value.stringValue else {
            throw .type("\(function) arg must be None or str")
        }
        return text
    }

    /// A padding width, bounded so that `'x'.center(10**12)` fails instead of allocating.
    static func width(_ value: Int) throws(TemplateError) -> Int {
        guard value <= RenderLimits.maximumStringBytes else {
            throw TemplateError(.limit, "width \(value) exceeds \(RenderLimits.maximumStringBytes)")
        }
        return value
    }

    private static func integer(_ value: Value?, default defaultValue: Int, _ function: String) throws(TemplateError) -> Int {
        guard let value, !value.isNone else { return defaultValue }
        guard case .int(let int)? = value.number else {
            throw .type("'\(value.typeName)' object cannot be interpreted as an integer")
        }
        return int
    }

    private static func requiredString(_ value: Value?, _ function: String) throws(TemplateError) -> String {
        guard let value else { throw .type("\(function)() missing required argument") }
        guard let text = value.stringValue else {
            throw .type("\(function)() argument must be str, not \(value.typeName)")
        }
        return text
    }

    private static func affixes(_ value: Value?, _ function: String) throws(TemplateError) -> [String] {
        guard let value else { throw .type("\(function)() takes at least 1 argument (0 given)") }
        switch value {
        case .string(let text), .markup(let text): return [text]
        case .tuple(let items):
            var result: [String] = []
            for item in items {
                guard let text = item.stringValue else {
                    throw .type("tuple for \(function) must only contain str, not \(item.typeName)")
                }
                result.append(text)
            }
            return result
        default:
            throw .type("\(function) first arg must be str or a tuple of str, not \(value.typeName)")
        }
    }

    private static func stringMethod(_ text: String, _ name: String, _ arguments: Arguments, markup: Bool) throws(TemplateError) -> Value? {
        func wrap(_ result: String) -> Value { markup ? .markup(result) : .string(result) }
        func wrapList(_ parts: [String]) -> Value { .array(parts.map(wrap)) }
        switch name {
        case "strip", "lstrip", "rstrip":
            let bound = try arguments.bind(["chars"], function: name)
            let characters = try optionalString(bound[0], name)
            switch name {
            case "strip": return wrap(PythonString.strip(text, characters))
            case "lstrip": return wrap(PythonString.lstrip(text, characters))
            default: return wrap(PythonString.rstrip(text, characters))
            }
        case "split", "rsplit":
            let bound = try arguments.bind(["sep", "maxsplit"], function: name)
            let separator = try optionalString(bound[0], name)
            let maxSplit = try integer(bound[1], default: -1, name)
            let parts = name == "split"
                ? try PythonString.split(text, separator: separator, maxSplit: maxSplit)
                : try PythonString.rsplit(text, separator: separator, maxSplit: maxSplit)
            return wrapList(parts)
        case "splitlines":
            let bound = try arguments.bind(["keepends"], function: name)
            return wrapList(PythonString.splitLines(text, keepEnds: bound[0]?.isTruthy ?? false))
        case "startswith", "endswith":
            let bound = try arguments.bind(["prefix", "start", "end"], function: name)
            let candidates = try affixes(bound[0], name)
            var subject = text
            if bound[1] != nil || bound[2] != nil {
                let start = try integer(bound[1], default: 0, name)
                let end: Int? = bound[2] == nil ? nil : try integer(bound[2], default: Int.max, name)
                let count = text.unicodeScalars.count
                let indices = try PythonString.sliceIndices(count: count, start: start, stop: end.map { min($0, count) }, step: 1)
                let scalars = Array(text.unicodeScalars)
                subject = String(String.UnicodeScalarView(indices.map { scalars[$0] }))
            }
            let matched = candidates.contains {
                name == "startswith" ? PythonString.hasPrefix(subject, $0) : PythonString.hasSuffix(subject, $0)
            }
            return .bool(matched)
        case "upper":
            try expectNoArguments(arguments, name)
            return wrap(text.uppercased())
        case "lower", "casefold":
            try expectNoArguments(arguments, name)
            return wrap(text.lowercased())
        case "swapcase":
            try expectNoArguments(arguments, name)
            var result = ""
            for scalar in text.unicodeScalars {
                let piece = String(scalar)
                result += scalar.properties.isUppercase ? piece.lowercased() : scalar.properties.isLowercase ? piece.uppercased() : piece
            }
            return wrap(result)
        case "title":
            try expectNoArguments(arguments, name)
            return wrap(PythonString.title(text))
        case "capitalize":
            try expectNoArguments(arguments, name)
            return wrap(PythonString.capitalize(text))
        case "replace":
            let bound = try arguments.bind(["old", "new", "count"], function: name)
            let old = try requiredString(bound[0], name)
            let new = try requiredString(bound[1], name)
            return wrap(try PythonString.replace(text, old, new, count: try integer(bound[2], default: -1, name)))
        case "format":
            return wrap(try StringFormat.format(text, arguments))
        case "format_map":
            guard arguments.positional.count == 1, case .dict(let mapping) = arguments.positional[0] else {
                throw .type("format_map() takes exactly one mapping argument")
            }
            var keywordArguments = Arguments()
            for (key, value) in mapping.pairs { keywordArguments.keyword.append((PythonFormat.str(key.value), value)) }
            return wrap(try StringFormat.format(text, keywordArguments))
        case "find", "rfind", "index", "rindex":
            let bound = try arguments.bind(["sub", "start", "end"], function: name)
            let needle = try requiredString(bound[0], name)
            let position = PythonString.find(text, needle, reverse: name.hasPrefix("r"))
            if position < 0, name.hasSuffix("index") { throw .type("ValueError: substring not found") }
            return .int(position)
        case "count":
            let bound = try arguments.bind(["sub", "start", "end"], function: name)
            return .int(PythonString.count(text, try requiredString(bound[0], name)))
        case "join":
            let bound = try arguments.bind(["iterable"], function: name)
            guard let iterable = bound[0] else { throw .type("join() takes exactly one argument (0 given)") }
            var parts: [String] = []
            var total = 0
            for (index, item) in try iterable.iterate().enumerated() {
                guard let piece = item.stringValue else {
                    throw .type("sequence item \(index): expected str instance, \(item.typeName) found")
                }
                total += piece.utf8.count + text.utf8.count
                guard total <= RenderLimits.maximumStringBytes else {
                    throw TemplateError(.limit, "join() result exceeds \(RenderLimits.maximumStringBytes) bytes")
                }
                parts.append(piece)
            }
            return wrap(parts.joined(separator: text))
        case "isdigit", "isdecimal", "isnumeric":
            try expectNoArguments(arguments, name)
            return .bool(!text.isEmpty && text.unicodeScalars.allSatisfy { $0.properties.numericType != nil })
        case "isalpha":
            try expectNoArguments(arguments, name)
            return .bool(!text.isEmpty && text.unicodeScalars.allSatisfy { $0.properties.isAlphabetic })
        case "isalnum":
            try expectNoArguments(arguments, name)
            return .bool(!text.isEmpty && text.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || $0.properties.numericType != nil })
        case "isspace":
            try expectNoArguments(arguments, name)
            return .bool(!text.isEmpty && text.unicodeScalars.allSatisfy(PythonString.isWhitespace))
        case "islower":
            try expectNoArguments(arguments, name)
            return .bool(PythonString.isLower(text))
        case "isupper":
            try expectNoArguments(arguments, name)
            return .bool(PythonString.isUpper(text))
        case "istitle":
            try expectNoArguments(arguments, name)
            return .bool(!text.isEmpty && PythonString.title(text) == text && text.unicodeScalars.contains { $0.properties.isCased })
        case "zfill":
            let bound = try arguments.bind(["width"], function: name)
            let width = try Methods.width(try integer(bound[0], default: 0, name))
            let count = text.unicodeScalars.count
            guard width > count else { return wrap(text) }
            let padding = String(repeating: "0", count: width - count)
            if let first = text.unicodeScalars.first, first == "-" || first == "+" {
                return wrap(String(first) + padding + String(text.unicodeScalars.dropFirst()))
            }
            return wrap(padding + text)
        case "center", "ljust", "rjust":
            let bound = try arguments.bind(["width", "fillchar"], function: name)
            let width = try Methods.width(try integer(bound[0], default: 0, name))
            let fill = try optionalString(bound[1], name) ?? " "
            return wrap(pad(text, width: width, fill: fill, mode: name))
        case "partition", "rpartition":
            let bound = try arguments.bind(["sep"], function: name)
            let separator = try requiredString(bound[0], name)
            guard !separator.isEmpty else { throw .type("ValueError: empty separator") }
            let parts = name == "partition"
                ? try PythonString.split(text, separator: separator, maxSplit: 1)
                : try PythonString.rsplit(text, separator: separator, maxSplit: 1)
            if parts.count == 2 { return .tuple([wrap(parts[0]), wrap(separator), wrap(parts[1])]) }
            return name == "partition" ? .tuple([wrap(text), wrap(""), wrap("")]) : .tuple([wrap(""), wrap(""), wrap(text)])
        case "removeprefix":
            let prefix = try requiredString(try arguments.bind(["prefix"], function: name)[0], name)
            guard PythonString.hasPrefix(text, prefix) else { return wrap(text) }
            return wrap(String(decoding: Array(text.utf8).dropFirst(prefix.utf8.count), as: UTF8.self))
        case "removesuffix":
            let suffix = try requiredString(try arguments.bind(["suffix"], function: name)[0], name)
            guard !suffix.isEmpty, PythonString.hasSuffix(text, suffix) else { return wrap(text) }
            return wrap(String(decoding: Array(text.utf8).dropLast(suffix.utf8.count), as: UTF8.self))
        default:
            return nil
        }
    }

    /// `str.center`, `str.ljust`, `str.rjust`. For `center`, CPython puts the extra padding
    /// character on the left only when both the padding and the width are odd.
    static func pad(_ text: String, width: Int, fill: String, mode: String) -> String {
        let count = text.unicodeScalars.count
        guard width > count else { return text }
        let padding = width - count
        switch mode {
        case "ljust": return text + String(repeating: fill, count: padding)
        case "rjust": return String(repeating: fill, count: padding) + text
        default:
            let left = padding / 2 + (padding & width & 1)
            return String(repeating: fill, count: left) + text + String(repeating: fill, count: padding - left)
        }
    }
}
