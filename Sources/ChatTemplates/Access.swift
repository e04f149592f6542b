/// Attribute, subscript and slice access with Jinja2's sandboxed lookup rules: `a.b` tries the
/// attribute (method) first and then the item; `a['b']` tries the item first and then the
/// attribute. Missing entries yield `undefined`, which only fails when used.
enum Access {
    /// Python's `object_type_repr`, used in undefined hints.
    private static func typeRepr(_ value: Value) -> String {
        switch value {
        case .none: return "None"
        default: return "\(value.typeName) object"
        }
    }

    private static func missingAttribute(_ value: Value, _ name: String) -> Value {
        .undefined("'\(typeRepr(value))' has no attribute '\(name)'")
    }

    static func attribute(_ value: Value, _ name: String) throws(TemplateError) -> Value {
        if case .undefined(let undefined) = value { throw undefined.error }
        if name.hasPrefix("_") {
            return .undefined("access to attribute '\(name)' of '\(value.typeName)' object is unsafe.", kind: .security)
        }
        if let method = Methods.bound(value, name) { return method }
        switch value {
        case .dict(let dict):
            return dict[name] ?? missingAttribute(value, name)
        case .namespace(let namespace):
            return namespace.attributes[name] ?? missingAttribute(value, name)
        case .loop(let loop):
            return loopAttribute(loop, name) ?? missingAttribute(value, name)
        default:
            return missingAttribute(value, name)
        }
    }

    static func item(_ value: Value, _ key: Value) throws(TemplateError) -> Value {
        if case .undefined(let undefined) = value { throw undefined.error }
        switch value {
        case .dict(let dict):
            if let hashable = DictKey(key), let found = dict[hashable] { return found }
        case .array(let items), .tuple(let items):
            if case .int(let index)? = key.number {
                let resolved = index < 0 ? index + items.count : index
                if items.indices.contains(resolved) { return items[resolved] }
                return .undefined("\(value.typeName) object has no element \(index)")
            }
        case .string(let string), .markup(let string):
            if case .int(let index)? = key.number {
                let scalars = string.unicodeScalars
                let count = scalars.count
                let resolved = index < 0 ? index + count : index
                guard resolved >= 0, resolved < count else {
                    return .undefined("\(value.typeName) object has no element \(index)")
                }
                let character = String(scalars[scalars.index(scalars.startIndex, offsetBy: resolved)])
                if case .markup = value { return .markup(character) }
                return .string(character)
            }
        default:
            break
        }
        if case .undefined(let undefined) = key { throw undefined.error }
        if let name = key.stringValue { return try attribute(value, name) }
        return .undefined("\(typeRepr(value)) has no element \(PythonFormat.repr(key))")
    }

    static func slice(_ value: Value, start: Value?, stop: Value?, step: Value?) throws(TemplateError) -> Value {
        if case .undefined(let undefined) = value { throw undefined.error }
        func bound(_ value: Value?) throws(TemplateError) -> Int? {
            guard let value else { return nil }
            switch value {
            case .none: return nil
            case .int(let int): return int
            case .bool(let bool): return bool ? 1 : 0
            default: throw .type("slice indices must be integers or None or have an __index__ method")
            }
        }
        let (from, to, by) = (try bound(start), try bound(stop), try bound(step))
        switch value {
        case .array(let items), .tuple(let items):
            let selected = try PythonString.sliceIndices(count: items.count, start: from, stop: to, step: by).map { items[$0] }
            if case .tuple = value { return .tuple(selected) }
            return .array(selected)
        case .string(let string), .markup(let string):
            let scalars = Array(string.unicodeScalars)
            var result = String.UnicodeScalarView()
            for index in try PythonString.sliceIndices(count: scalars.count, start: from, stop: to, step: by) {
                result.append(scalars[index])
            }
            if case .markup = value { return .markup(String(result)) }
            return .string(String(result))
        default:
            throw .type("'\(value.typeName)' object is not subscriptable")
        }
    }

    private static func loopAttribute(_ loop: LoopContext, _ name: String) -> Value? {
        let index = loop.index0
        switch name {
        case "index": return .int(index + 1)
        case "index0": return .int(index)
        case "revindex": return .int(loop.length - index)
        case "revindex0": return .int(loop.length - index - 1)
        case "first": return .bool(index == 0)
        case "last": return .bool(index == loop.length - 1)
        case "length": return .int(loop.length)
        case "depth": return .int(loop.depth0 + 1)
        case "depth0": return .int(loop.depth0)
        case "previtem":
            return index > 0 ? loop.items[index - 1] : .undefined("there is no previous item")
        case "nextitem":
            return index + 1 < loop.length ? loop.items[index + 1] : .undefined("there is no next item")
        case "cycle":
            return .function(Function(name: "cycle") { arguments, _ throws(TemplateError) -> Value in
                guard !arguments.positional.isEmpty else { throw .type("no items for cycling given") }
                return arguments.positional[index % arguments.positional.count]
            })
        case "changed":
            return nil
        default:
            return nil
        }
    }
}
