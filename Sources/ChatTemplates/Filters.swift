import Foundation

/// Jinja2's built-in filters (plus transformers' `tojson`), with Jinja2's signatures.
extension Interpreter {
    static let filterNames: Set<String> = [
        "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e",
        "escape", "first", "float", "forceescape", "format", "indent", "int", "items", "join", "last",
        "length", "list", "lower", "map", "max", "min", "reject", "rejectattr", "replace", "reverse",
        "round", "safe", "select", "selectattr", "sort", "string", "striptags", "sum", "title",
        "tojson", "trim", "unique", "upper", "wordcount",
    ]

    func applyFilter(_ name: String, to value: Value, _ arguments: Arguments) throws(TemplateError) -> Value {
        func bind(_ parameters: [String]) throws(TemplateError) -> [Value?] {
            try arguments.bind(parameters, function: name)
        }
        func keepMarkup(_ text: String) -> Value {
            if case .markup = value { return .markup(text) }
            return .string(text)
        }
        switch name {
        case "abs":
            _ = try bind([])
            switch value.number {
            case .int(let int)?:
                guard int != Int.min else { throw TemplateError(.limit, "integer overflow") }
                return .int(Swift.abs(int))
            case .double(let double)?: return .double(Swift.abs(double))
            case nil:
                if case .undefined(let undefined) = value { throw undefined.error }
                throw .type("bad operand type for abs(): '\(value.typeName)'")
            }
        case "attr":
            let bound = try bind(["name"])
            guard let attribute = bound[0]?.stringValue else { throw .type("attr() requires an attribute name") }
            return try Access.attribute(value, attribute)
        case "batch":
            let bound = try bind(["linecount", "fill_with"])
            guard case .int(let size)? = bound[0]?.number, size > 0 else { throw .type("batch() requires a positive line count") }
            guard size <= limits.maximumListLength else { throw TemplateError(.limit, "batch size \(size) is too large") }
            var batches: [Value] = []
            var current: [Value] = []
            for item in try value.iterate() {
                current.append(item)
                if current.count == size {
                    batches.append(.array(current))
                    current = []
                }
            }
            if !current.isEmpty {
                if let fill = bound[1], !fill.isNone {
                    current.append(contentsOf: repeatElement(fill, count: size - current.count))
                }
                batches.append(.array(current))
            }
            return .generator(batches)
        case "capitalize":
            _ = try bind([])
            return keepMarkup(PythonString.capitalize(value.str))
        case "center":
            let bound = try bind(["width"])
            let width = try Methods.width(try integerArgument(bound[0], default: 80))
            return .string(Methods.pad(value.str, width: width, fill: " ", mode: "center"))
        case "count", "length":
            _ = try bind([])
            return .int(try value.length())
        case "d", "default":
            let bound = try bind(["default_value", "boolean"])
            let useDefault = value.isUndefined || ((bound[1]?.isTruthy ?? false) && !value.isTruthy)
            return useDefault ? (bound[0] ?? .emptyString) : value
        case "dictsort":
            let bound = try bind(["case_sensitive", "by", "reverse"])
            guard case .dict(let dict) = value else {
                if case .undefined(let undefined) = value { throw undefined.error }
                throw .type("dictsort expects a mapping, got \(value.typeName)")
            }
            let caseSensitive = bound[0]?.isTruthy ?? false
            let byValue: Bool
            switch bound[1]?.stringValue ?? "key" {
            case "key": byValue = false
            case "value": byValue = true
            default: throw .type("FilterArgumentError: You can only sort by either \"key\" or \"value\"")
            }
            let reverse = bound[2]?.isTruthy ?? false
            let pairs = dict.pairs.map { ($0.key.value, $0.value) }
            let sorted = try StableSort.sorted(pairs) { (a, b) throws(TemplateError) -> Bool in
                let left = Interpreter.sortKey(byValue ? a.1 : a.0, caseSensitive: caseSensitive)
                let right = Interpreter.sortKey(byValue ? b.1 : b.0, caseSensitive: caseSensitive)
                return reverse ? try Operators.less(right, left) : try Operators.less(left, right)
            }
            return .array(sorted.map { .tuple([$0.0, $0.1]) })
        case "e", "escape":
            _ = try bind([])
            if case .markup = value { return value }
            return .markup(Operators.escapeHTML(value.str))
        case "forceescape":
            _ = try bind([])
            return .markup(Operators.escapeHTML(value.str))
        case "first":
            _ = try bind([])
            return try value.iterate().first ?? .undefined("No first item, sequence was empty.")
        case "last":
            _ = try bind([])
            switch value {
            case .array, .tuple, .string, .markup:
                return try value.iterate().last ?? .undefined("No last item, sequence was empty.")
            case .undefined(let undefined): throw undefined.error
            default: throw .type("'\(value.typeName)' object is not reversible")
            }
        case "float":
            let bound = try bind(["default"])
            return Interpreter.toFloat(value) ?? bound[0] ?? .double(0)
        case "format":
            if !arguments.keyword.isEmpty {
                var mapping = Dict()
                for (key, item) in arguments.keyword { mapping[key] = item }
                return .string(try PrintfFormat.format(value.str, positional: [], mapping: mapping))
            }
            return .string(try PrintfFormat.format(value.str, positional: arguments.positional, mapping: nil))
        case "indent":
            let bound = try bind(["width", "first", "blank"])
            return try indent(value, width: bound[0], first: bound[1]?.isTruthy ?? false, blank: bound[2]?.isTruthy ?? false)
        case "int":
            let bound = try bind(["default", "base"])
            let base = try integerArgument(bound[1], default: 10)
            return Interpreter.toInt(value, base: base) ?? bound[0] ?? .int(0)
        case "items":
            _ = try bind([])
            switch value {
            case .undefined: return .generator([])
            case .dict(let dict): return .generator(dict.pairs.map { .tuple([$0.key.value, $0.value]) })
            default: throw .type("Can only get item pairs from a mapping.")
            }
        case "join":
            let bound = try bind(["d", "attribute"])
            var items = try value.iterate()
            if let attribute = bound[1], !attribute.isNone {
                items = try items.map { (item) throws(TemplateError) in try Interpreter.attributeGetter(item, attribute, default: nil) }
            }
            let separator = bound[0]?.str ?? ""
            var total = 0
            var pieces: [String] = []
            pieces.reserveCapacity(items.count)
            for item in items {
                let piece = item.str
                total += piece.utf8.count + separator.utf8.count
                guard total <= limits.maximumOutputBytes else {
                    throw TemplateError(.limit, "join result exceeds \(limits.maximumOutputBytes) bytes")
                }
                pieces.append(piece)
            }
            return .string(pieces.joined(separator: separator))
        case "list":
            _ = try bind([])
            return .array(try value.iterate())
        case "lower":
            _ = try bind([])
            return keepMarkup(value.str.lowercased())
        case "upper":
            _ = try bind([])
            return keepMarkup(value.str.uppercased())
        case "map":
            return try mapFilter(value, arguments)
        case "max", "min":
            let bound = try bind(["case_sensitive", "attribute"])
            let caseSensitive = bound[0]?.isTruthy ?? false
            let items = try value.iterate()
            guard var best = items.first else { return .undefined("No aggregated item, sequence was empty.") }
            func key(_ item: Value) throws(TemplateError) -> Value {
                var keyed = item
                if let attribute = bound[1], !attribute.isNone {
                    keyed = try Interpreter.attributeGetter(item, attribute, default: nil)
                }
                return Interpreter.sortKey(keyed, caseSensitive: caseSensitive)
            }
            var bestKey = try key(best)
            for item in items.dropFirst() {
                let itemKey = try key(item)
                let better = name == "max" ? try Operators.less(bestKey, itemKey) : try Operators.less(itemKey, bestKey)
                if better {
                    best = item
                    bestKey = itemKey
                }
            }
            return best
        case "reject", "select":
            return try selectFilter(value, arguments, attribute: false, keep: name == "select")
        case "rejectattr", "selectattr":
            return try selectFilter(value, arguments, attribute: true, keep: name == "selectattr")
        case "replace":
            let bound = try bind(["old", "new", "count"])
            guard let old = bound[0], let new = bound[1] else { throw .type("replace() missing required arguments") }
            let count = try integerArgument(bound[2], default: -1)
            return .string(try PythonString.replace(value.str, old.str, new.str, count: count))
        case "reverse":
            _ = try bind([])
            switch value {
            case .string(let text), .markup(let text):
                return keepMarkup(String(String.UnicodeScalarView(text.unicodeScalars.reversed())))
            case .array(let items), .tuple(let items):
                return .generator(items.reversed())
            case .undefined(let undefined):
                throw undefined.error
            default:
                return .array(try value.iterate().reversed())
            }
        case "round":
            let bound = try bind(["precision", "method"])
            let precision = try integerArgument(bound[0], default: 0)
            let method = bound[1]?.stringValue ?? "common"
            guard let number = value.number else {
                if case .undefined(let undefined) = value { throw undefined.error }
                throw .type("type \(value.typeName) doesn't define __round__ method")
            }
            let scale = pow(10, Double(precision))
            switch method {
            case "common":
                if case .int(let int) = number {
                    guard precision < 0 else { return .int(int) }
                    return .int(Int(Interpreter.pythonRound(Double(int), digits: precision)))
                }
                return .double(Interpreter.pythonRound(number.double, digits: precision))
            case "ceil": return .double((number.double * scale).rounded(.up) / scale)
            case "floor": return .double((number.double * scale).rounded(.down) / scale)
            default: throw .type("FilterArgumentError: method must be common, ceil or floor")
            }
        case "safe":
            _ = try bind([])
            if case .markup = value { return value }
            return .markup(value.str)
        case "sort":
            let bound = try bind(["reverse", "case_sensitive", "attribute"])
            let reverse = bound[0]?.isTruthy ?? false
            let caseSensitive = bound[1]?.isTruthy ?? false
            let items = try value.iterate()
            try charge(items.count * (Int.bitWidth - items.count.leadingZeroBitCount))
            var keyed: [(Value, Value)] = []
            for item in items {
                var key = item
                if let attribute = bound[2], !attribute.isNone {
                    key = try Interpreter.attributeGetter(item, attribute, default: nil)
                }
                keyed.append((Interpreter.sortKey(key, caseSensitive: caseSensitive), item))
            }
            let sorted = try StableSort.sorted(keyed) { (a, b) throws(TemplateError) -> Bool in
                reverse ? try Operators.less(b.0, a.0) : try Operators.less(a.0, b.0)
            }
            return .array(sorted.map(\.1))
        case "string":
            _ = try bind([])
            if case .markup = value { return value }
            return .string(value.str)
        case "striptags":
            _ = try bind([])
            return .string(Interpreter.stripTags(value.str))
        case "sum":
            let bound = try bind(["attribute", "start"])
            var total = bound[1] ?? .int(0)
            if total.isString { throw .type("sum() can't sum strings [use ''.join(seq) instead]") }
            for item in try value.iterate() {
                var term = item
                if let attribute = bound[0], !attribute.isNone {
                    term = try Interpreter.attributeGetter(item, attribute, default: nil)
                }
                total = try Operators.binary(.add, total, term)
            }
            return total
        case "title":
            _ = try bind([])
            return keepMarkup(Interpreter.titleCase(value.str))
        case "tojson":
            let bound = try bind(["ensure_ascii", "indent", "separators", "sort_keys"])
            return .string(try toJSON(value, ensureASCII: bound[0], indent: bound[1], separators: bound[2], sortKeys: bound[3]))
        case "trim":
            let bound = try bind(["chars"])
            let characters = bound[0].flatMap { $0.isNone ? nil : $0.str }
            return keepMarkup(PythonString.strip(value.str, characters))
        case "unique":
            let bound = try bind(["case_sensitive", "attribute"])
            let caseSensitive = bound[0]?.isTruthy ?? false
            var seenKeys: Set<DictKey> = []
            var seenOthers: [Value] = []
            var result: [Value] = []
            for item in try value.iterate() {
                var key = item
                if let attribute = bound[1], !attribute.isNone {
                    key = try Interpreter.attributeGetter(item, attribute, default: nil)
                }
                key = Interpreter.sortKey(key, caseSensitive: caseSensitive)
                if let hashable = DictKey(key) {
                    if seenKeys.insert(hashable).inserted { result.append(item) }
                } else if !seenOthers.contains(where: { Operators.equal($0, key) }) {
                    try charge(seenOthers.count)
                    seenOthers.append(key)
                    result.append(item)
                }
            }
            return .generator(result)
        case "wordcount":
            _ = try bind([])
            return .int(Interpreter.countWords(value.str))
        default:
            throw .unsupported("unknown filter '\(name)'")
        }
    }

    // MARK: - Helpers

    private func integerArgument(_ value: Value?, default defaultValue: Int) throws(TemplateError) -> Int {
        guard let value, !value.isNone else { return defaultValue }
        guard case .int(let int)? = value.number else {
            throw .type("'\(value.typeName)' object cannot be interpreted as an integer")
        }
        return int
    }

    /// Jinja2's `ignore_case`: lowercases strings for case-insensitive comparison.
    static func sortKey(_ value: Value, caseSensitive: Bool) -> Value {
        guard !caseSensitive, let text = value.stringValue else { return value }
        return .string(text.lowercased())
    }

    /// Jinja2's `make_attrgetter`: `"a.b"` looks up `a` then `b`; integer parts index.
    static func attributeGetter(_ item: Value, _ attribute: Value, default defaultValue: Value?) throws(TemplateError) -> Value {
        var parts: [Value]
        if let path = attribute.stringValue {
            parts = path.split(separator: ".", omittingEmptySubsequences: false).map { part in
                Int(part).map { .int($0) } ?? .string(String(part))
            }
        } else {
            parts = [attribute]
        }
        var current = item
        for part in parts {
            current = try Access.item(current, part)
            if current.isUndefined, let defaultValue { return defaultValue }
        }
        return current
    }

    private func mapFilter(_ value: Value, _ arguments: Arguments) throws(TemplateError) -> Value {
        guard value.isTruthy else { return .generator([]) }
        let items = try value.iterate()
        if arguments.positional.isEmpty {
            var attribute: Value?
            var defaultValue: Value?
            for (name, argument) in arguments.keyword {
                switch name {
                case "attribute": attribute = argument
                case "default": defaultValue = argument
                default: throw .type("Unexpected keyword argument '\(name)'")
                }
            }
            guard let attribute else { throw .type("map requires a filter argument") }
            return .generator(try items.map { (item) throws(TemplateError) in
                try Interpreter.attributeGetter(item, attribute, default: defaultValue)
            })
        }
        guard let filter = arguments.positional[0].stringValue else { throw .type("map filter name must be a string") }
        let rest = Arguments(positional: Array(arguments.positional.dropFirst()), keyword: arguments.keyword)
        return .generator(try items.map { (item) throws(TemplateError) in try applyFilter(filter, to: item, rest) })
    }

    private func selectFilter(_ value: Value, _ arguments: Arguments, attribute: Bool, keep: Bool) throws(TemplateError) -> Value {
        guard value.isTruthy else { return .generator([]) }
        let items = try value.iterate()
        var positional = arguments.positional
        var attributeName: Value?
        if attribute {
            guard !positional.isEmpty else { throw .type("Missing parameter for attribute name") }
            attributeName = positional.removeFirst()
        }
        var testName: String?
        if !positional.isEmpty {
            guard let name = positional.removeFirst().stringValue else { throw .type("test name must be a string") }
            testName = name
        }
        let testArguments = Arguments(positional: positional, keyword: arguments.keyword)
        var result: [Value] = []
        for item in items {
            var subject = item
            if let attributeName { subject = try Interpreter.attributeGetter(item, attributeName, default: nil) }
            let passed = try testName.map { (name) throws(TemplateError) in try applyTest(name, to: subject, testArguments) } ?? subject.isTruthy
            if passed == keep { result.append(item) }
        }
        return .generator(result)
    }

    private func indent(_ value: Value, width: Value?, first: Bool, blank: Bool) throws(TemplateError) -> Value {
        let indentation: String
        if let text = width?.stringValue {
            indentation = text
        } else {
            indentation = String(repeating: " ", count: max(try Methods.width(try integerArgument(width, default: 4)), 0))
        }
        let text = value.str + "\n"
        var lines = PythonString.splitLines(text)
        let (extra, overflow) = indentation.utf8.count.multipliedReportingOverflow(by: lines.count + 1)
        guard !overflow, extra + text.utf8.count <= limits.maximumOutputBytes else {
            throw TemplateError(.limit, "indent result exceeds \(limits.maximumOutputBytes) bytes")
        }
        var result: String
        if blank {
            result = lines.joined(separator: "\n" + indentation)
        } else {
            result = lines.isEmpty ? "" : lines.removeFirst()
            if !lines.isEmpty {
                result += "\n" + lines.map { $0.isEmpty ? $0 : indentation + $0 }.joined(separator: "\n")
            }
        }
        if first { result = indentation + result }
        if case .markup = value { return .markup(result) }
        return .string(result)
    }

    private func toJSON(_ value: Value, ensureASCII: Value?, indent: Value?, separators: Value?, sortKeys: Value?) throws(TemplateError) -> String {
        var indentation: String?
        if let indent, !indent.isNone {
            if let text = indent.stringValue {
                indentation = text
            } else if case .int(let count)? = indent.number {
                indentation = String(repeating: " ", count: max(try Methods.width(count), 0))
            } else {
                throw .type("indent must be an integer or a string")
            }
        }
        var separatorPair: (String, String)?
        if let separators, !separators.isNone {
            let parts = try separators.iterate()
            guard parts.count == 2, let item = parts[0].stringValue, let key = parts[1].stringValue else {
                throw .type("separators must be a pair of strings")
            }
            separatorPair = (item, key)
        }
        let options = JSONOptions(
            indent: indentation, separators: separatorPair,
            ensureASCII: ensureASCII?.isTruthy ?? false, sortKeys: sortKeys?.isTruthy ?? false)
        var output = ""
        try JSONWriter(options: options).write(value, into: &output, level: 0)
        return output
    }

    static func toInt(_ value: Value, base: Int) -> Value? {
        switch value {
        case .int, .bool:
            if case .int(let int)? = value.number { return .int(int) }
            return nil
        case .double(let double):
            guard double.isFinite, let int = Int(exactly: double.rounded(.towardZero)) else { return nil }
            return .int(int)
        case .string(let text), .markup(let text):
            var trimmed = PythonString.strip(text).replacingOccurrences(of: "_", with: "")
            var sign = ""
            if let first = trimmed.first, first == "-" || first == "+" {
                sign = String(first)
                trimmed.removeFirst()
            }
            var radix = base
            let prefixes: [(String, Int)] = [("0x", 16), ("0o", 8), ("0b", 2)]
            for (prefix, prefixRadix) in prefixes where trimmed.lowercased().hasPrefix(prefix) && (base == prefixRadix || base == 0) {
                trimmed.removeFirst(2)
                radix = prefixRadix
            }
            if radix == 0 { radix = 10 }
            if (2...36).contains(radix), let int = Int(sign + trimmed, radix: radix) { return .int(int) }
            trimmed = sign + trimmed
            if base == 10, let double = Double(trimmed), double.isFinite, let int = Int(exactly: double.rounded(.towardZero)) {
                return .int(int)
            }
            return nil
        default:
            return nil
        }
    }

    static func toFloat(_ value: Value) -> Value? {
        switch value {
        case .int, .bool, .double:
            return value.number.map { .double($0.double) }
        case .string(let text), .markup(let text):
            let trimmed = PythonString.strip(text).lowercased()
            switch trimmed {
            case "inf", "+inf", "infinity", "+infinity": return .double(.infinity)
            case "-inf", "-infinity": return .double(-.infinity)
            case "nan", "+nan", "-nan": return .double(.nan)
            default: return Double(trimmed).map { .double($0) }
            }
        default:
            return nil
        }
    }

    /// Python's `round(x, n)`: round half to even on the exact binary value.
    static func pythonRound(_ value: Double, digits: Int) -> Double {
        guard value.isFinite else { return value }
        if digits == 0 { return value.rounded(.toNearestOrEven) }
        let formatted = String(format: "%.\(max(digits, 0))f", value)
        if digits > 0, let parsed = Double(formatted) { return parsed }
        let scale = pow(10, Double(-digits))
        return (value / scale).rounded(.toNearestOrEven) * scale
    }

    /// Jinja2's `title` filter: capitalizes each word, words split on whitespace and `-([{<`.
    static func titleCase(_ text: String) -> String {
        var result = ""
        var atWordStart = true
        for scalar in text.unicodeScalars {
            let isSeparator = PythonString.isWhitespace(scalar) || "-([{<".unicodeScalars.contains(scalar)
            if isSeparator {
                result.unicodeScalars.append(scalar)
                atWordStart = true
            } else {
                result += atWordStart ? String(scalar).uppercased() : String(scalar).lowercased()
                atWordStart = false
            }
        }
        return result
    }

    static func countWords(_ text: String) -> Int {
        var count = 0
        var inWord = false
        for scalar in text.unicodeScalars {
            let isWordCharacter = scalar.properties.isAlphabetic || scalar.properties.numericType != nil || scalar == "_"
            if isWordCharacter && !inWord { count += 1 }
            inWord = isWordCharacter
        }
        return count
    }

    static func stripTags(_ text: String) -> String {
        var result = ""
        var inTag = false
        var inComment = false
        let scalars = Array(text.unicodeScalars)
        var index = 0
        while index < scalars.count {
            if !inTag, !inComment, index + 3 < scalars.count, String(String.UnicodeScalarView(scalars[index..<index + 4])) == "<!--" {
                inComment = true
                index += 4
                continue
            }
            if inComment {
                if index + 2 < scalars.count, String(String.UnicodeScalarView(scalars[index..<index + 3])) == "-->" {
                    inComment = false
                    index += 3
                } else {
                    index += 1
                }
                continue
            }
            if scalars[index] == "<" {
                inTag = true
            } else if scalars[index] == ">", inTag {
                inTag = false
            } else if !inTag {
                result.unicodeScalars.append(scalars[index])
            }
            index += 1
        }
        let words = (try? PythonString.split(result, separator: nil)) ?? []
        return words.joined(separator: " ")
    }
}
