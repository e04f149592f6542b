import Foundation

/// Python's `str.format` mini-language (`'{}'.format(x)`, `'{name:>10}'.format(name=x)`).
enum StringFormat {
    static func format(_ template: String, _ arguments: Arguments) throws(TemplateError) -> String {
        let scalars = Array(template.unicodeScalars)
        var result = String.UnicodeScalarView()
        var index = 0
        var automaticIndex = 0
        var usedManual = false
        while index < scalars.count {
            let scalar = scalars[index]
            if scalar == "}" {
                guard index + 1 < scalars.count, scalars[index + 1] == "}" else {
                    throw .type("ValueError: Single '}' encountered in format string")
                }
                result.append("}")
                index += 2
                continue
            }
            guard scalar == "{" else {
                result.append(scalar)
                index += 1
                continue
            }
            if index + 1 < scalars.count, scalars[index + 1] == "{" {
                result.append("{")
                index += 2
                continue
            }
            var end = index + 1
            var nesting = 1
            while end < scalars.count {
                if scalars[end] == "{" { nesting += 1 }
                if scalars[end] == "}" {
                    nesting -= 1
                    if nesting == 0 { break }
                }
                end += 1
            }
            guard end < scalars.count else { throw .type("ValueError: Single '{' encountered in format string") }
            let field = String(String.UnicodeScalarView(scalars[(index + 1)..<end]))
            index = end + 1

            var fieldName = field
            var spec = ""
            var conversion: Character?
            if let colon = field.firstIndex(of: ":") {
                fieldName = String(field[..<colon])
                spec = String(field[field.index(after: colon)...])
            }
            if let bang = fieldName.firstIndex(of: "!") {
                conversion = fieldName[fieldName.index(after: bang)...].first
                fieldName = String(fieldName[..<bang])
            }
            if spec.contains("{") {
                spec = try format(spec, arguments)
            }
            var value = try resolve(fieldName, arguments, automaticIndex: &automaticIndex, usedManual: &usedManual)
            switch conversion {
            case "r"?: value = .string(PythonFormat.repr(value))
            case "s"?: value = .string(value.str)
            case "a"?: value = .string(PythonFormat.repr(value))
            case nil: break
            default: throw .type("ValueError: Unknown conversion specifier")
            }
            result.append(contentsOf: try FormatSpec.apply(spec, to: value).unicodeScalars)
        }
        return String(result)
    }

    private static func resolve(_ field: String, _ arguments: Arguments, automaticIndex: inout Int, usedManual: inout Bool) throws(TemplateError) -> Value {
        var name = Substring(field)
        var rest = Substring("")
        if let split = field.firstIndex(where: { $0 == "." || $0 == "[" }) {
            name = field[..<split]
            rest = field[split...]
        }
        var value: Value
        if name.isEmpty {
            guard !usedManual else { throw .type("ValueError: cannot switch from manual field specification to automatic field numbering") }
            guard automaticIndex < arguments.positional.count else {
                throw .type("IndexError: Replacement index \(automaticIndex) out of range for positional args tuple")
            }
            value = arguments.positional[automaticIndex]
            automaticIndex += 1
        } else if let position = Int(name) {
            usedManual = true
            guard position < arguments.positional.count else {
                throw .type("IndexError: Replacement index \(position) out of range for positional args tuple")
            }
            value = arguments.positional[position]
        } else {
            guard let found = arguments.keyword.first(where: { $0.name == name }) else { throw .type("KeyError: '\(name)'") }
            value = found.value
        }
        while !rest.isEmpty {
            if rest.first == "." {
                rest = rest.dropFirst()
                let attribute = rest.prefix { $0 != "." && $0 != "[" }
                rest = rest.dropFirst(attribute.count)
                value = try Access.attribute(value, String(attribute))
            } else {
                rest = rest.dropFirst()
                guard let close = rest.firstIndex(of: "]") else { throw .type("ValueError: Missing ']' in format string") }
                let key = String(rest[..<close])
                rest = rest[rest.index(after: close)...]
                value = try Access.item(value, Int(key).map { .int($0) } ?? .string(key))
            }
        }
        return value
    }
}

/// Python's format-spec mini-language, shared by `str.format` and `%`-formatting.
enum FormatSpec {
    struct Parsed {
        var fill: Character = " "
        var align: Character?
        var sign: Character = "-"
        var alternate = false
        var zeroPad = false
        var width = 0
        var grouping: Character?
        var precision: Int?
        var type: Character?
    }

    static func parse(_ spec: String) throws(TemplateError) -> Parsed {
        var parsed = Parsed()
        var characters = Array(spec)
        var index = 0
        let aligns: Set<Character> = ["<", ">", "^", "="]
        if characters.count >= 2, aligns.contains(characters[1]) {
            parsed.fill = characters[0]
            parsed.align = characters[1]
            index = 2
        } else if let first = characters.first, aligns.contains(first) {
            parsed.align = first
            index = 1
        }
        if index < characters.count, "+- ".contains(characters[index]) {
            parsed.sign = characters[index]
            index += 1
        }
        if index < characters.count, characters[index] == "#" {
            parsed.alternate = true
            index += 1
        }
        if index < characters.count, characters[index] == "0" {
            parsed.zeroPad = true
            index += 1
        }
        var digits = ""
        while index < characters.count, characters[index].isASCII, characters[index].isNumber {
            digits.append(characters[index])
            index += 1
        }
        parsed.width = Int(digits) ?? 0
        if index < characters.count, characters[index] == "," || characters[index] == "_" {
            parsed.grouping = characters[index]
            index += 1
        }
        if index < characters.count, characters[index] == "." {
            index += 1
            var precision = ""
            while index < characters.count, characters[index].isASCII, characters[index].isNumber {
                precision.append(characters[index])
                index += 1
            }
            guard let value = Int(precision) else { throw .type("ValueError: Format specifier missing precision") }
            parsed.precision = value
        }
        if index < characters.count {
            parsed.type = characters[index]
            index += 1
        }
        guard index == characters.count else { throw .type("ValueError: Invalid format specifier '\(spec)'") }
        characters.removeAll()
        return parsed
    }

    static func apply(_ spec: String, to value: Value) throws(TemplateError) -> String {
        if spec.isEmpty { return value.str }
        let parsed = try parse(spec)
        _ = try Methods.width(parsed.width)
        var body: String
        var isNumeric = false
        var negative = false
        switch parsed.type {
        case nil where value.isString, "s"?:
            guard let text = value.stringValue ?? (parsed.type == nil ? value.str : nil) else {
                throw .type("ValueError: Unknown format code 's' for object of type '\(value.typeName)'")
            }
            body = text
            if let precision = parsed.precision { body = String(String.UnicodeScalarView(text.unicodeScalars.prefix(precision))) }
        case "d"?, "n"?, "x"?, "X"?, "o"?, "b"?, "c"?:
            guard case .int(let int)? = value.number else {
                throw .type("ValueError: Unknown format code '\(parsed.type ?? "d")' for object of type '\(value.typeName)'")
            }
            isNumeric = true
            negative = int < 0
            let magnitude = int.magnitude
            switch parsed.type {
            case "x"?: body = (parsed.alternate ? "0x" : "") + String(magnitude, radix: 16)
            case "X"?: body = (parsed.alternate ? "0X" : "") + String(magnitude, radix: 16).uppercased()
            case "o"?: body = (parsed.alternate ? "0o" : "") + String(magnitude, radix: 8)
            case "b"?: body = (parsed.alternate ? "0b" : "") + String(magnitude, radix: 2)
            case "c"?: body = Unicode.Scalar(UInt32(clamping: int)).map { String($0) } ?? ""
            default: body = group(String(magnitude), parsed.grouping)
            }
        case "f"?, "F"?, "e"?, "E"?, "g"?, "G"?, "%"?, nil:
            guard let number = value.number else {
                if parsed.type == nil { body = value.str; break }
                throw .type("ValueError: Unknown format code '\(parsed.type ?? "f")' for object of type '\(value.typeName)'")
            }
            isNumeric = true
            var double = number.double
            negative = double < 0 || (double == 0 && double.sign == .minus)
            double = Swift.abs(double)
            switch parsed.type {
            case nil:
                if case .int(let int) = number {
                    body = group(String(int.magnitude), parsed.grouping)
                } else if let precision = parsed.precision {
                    body = String(format: "%.\(max(precision, 1))g", double)
                } else {
                    body = PythonFormat.float(double)
                }
            case "%"?:
                body = String(format: "%.\(parsed.precision ?? 6)f", double * 100) + "%"
            case "g"?, "G"?:
                body = String(format: "%\(parsed.alternate ? "#" : "").\(parsed.precision ?? 6)\(parsed.type ?? "g")", double)
            default:
                let code = parsed.type ?? "f"
                body = String(format: "%.\(parsed.precision ?? 6)\(code)", double)
                if code == "f" || code == "F" {
                    let parts = body.split(separator: ".", maxSplits: 1)
                    if let grouping = parsed.grouping, let integer = parts.first {
                        body = group(String(integer), grouping) + (parts.count > 1 ? "." + parts[1] : "")
                    }
                }
            }
        default:
            throw .type("ValueError: Unknown format code '\(parsed.type ?? " ")' for object of type '\(value.typeName)'")
        }
        var signText = ""
        if isNumeric {
            if negative { signText = "-" } else if parsed.sign == "+" { signText = "+" } else if parsed.sign == " " { signText = " " }
        }
        let length = signText.unicodeScalars.count + body.unicodeScalars.count
        guard parsed.width > length else { return signText + body }
        let padding = parsed.width - length
        let align = parsed.align ?? (parsed.zeroPad && isNumeric ? "=" : (isNumeric ? ">" : "<"))
        let fill = parsed.align == nil && parsed.zeroPad ? "0" : String(parsed.fill)
        switch align {
        case "<": return signText + body + String(repeating: fill, count: padding)
        case "^":
            let left = padding / 2
            return String(repeating: fill, count: left) + signText + body + String(repeating: fill, count: padding - left)
        case "=": return signText + String(repeating: fill, count: padding) + body
        default: return String(repeating: fill, count: padding) + signText + body
        }
    }

    private static func group(_ digits: String, _ separator: Character?) -> String {
        guard let separator else { return digits }
        var result = ""
        for (offset, character) in digits.enumerated() {
            if offset > 0, (digits.count - offset) % 3 == 0 { result.append(separator) }
            result.append(character)
        }
        return result
    }
}

/// Python's `%`-formatting (`'%s: %d' % (name, count)`), used by `%` on strings and the
/// `format` filter.
enum PrintfFormat {
    static func format(_ template: String, _ argument: Value) throws(TemplateError) -> String {
        var positional: [Value]
        var mapping: Dict?
        switch argument {
        case .tuple(let items): positional = items
        case .dict(let dict):
            positional = [argument]
            mapping = dict
        default: positional = [argument]
        }
        return try format(template, positional: positional, mapping: mapping)
    }

    static func format(_ template: String, positional: [Value], mapping: Dict?) throws(TemplateError) -> String {
        let characters = Array(template)
        var result = ""
        var index = 0
        var next = 0
        while index < characters.count {
            let character = characters[index]
            guard character == "%" else {
                result.append(character)
                index += 1
                continue
            }
            index += 1
            guard index < characters.count else { throw .type("ValueError: incomplete format") }
            var value: Value?
            if characters[index] == "(" {
                guard let close = characters[index...].firstIndex(of: ")") else { throw .type("ValueError: incomplete format key") }
                let key = String(characters[(index + 1)..<close])
                guard let mapping else { throw .type("TypeError: format requires a mapping") }
                guard let found = mapping[key] else { throw .type("KeyError: '\(key)'") }
                value = found
                index = close + 1
            }
            var spec = ""
            var flags = ""
            while index < characters.count, "-+ #0".contains(characters[index]) {
                flags.append(characters[index])
                index += 1
            }
            while index < characters.count, characters[index].isNumber || characters[index] == "." {
                spec.append(characters[index])
                index += 1
            }
            guard index < characters.count else { throw .type("ValueError: incomplete format") }
            let code = characters[index]
            index += 1
            if code == "%" {
                result.append("%")
                continue
            }
            if value == nil {
                guard next < positional.count else { throw .type("TypeError: not enough arguments for format string") }
                value = positional[next]
                next += 1
            }
            guard let value else { continue }
            let width = Int(spec.split(separator: ".", omittingEmptySubsequences: false).first ?? "") ?? 0
            let precision = spec.contains(".") ? Int(spec.split(separator: ".", omittingEmptySubsequences: false).last ?? "") ?? 0 : nil
            var align: String = flags.contains("-") ? "<" : ">"
            var fill = " "
            if flags.contains("0"), !flags.contains("-"), code != "s", code != "r" {
                fill = "0"
                align = "="
            }
            let sign = flags.contains("+") ? "+" : flags.contains(" ") ? " " : ""
            var formatSpec = fill + align + sign + (width > 0 ? String(width) : "")
            if let precision { formatSpec += ".\(precision)" }
            switch code {
            case "s":
                result += try FormatSpec.apply(formatSpec + "s", to: .string(value.str))
            case "r", "a":
                result += try FormatSpec.apply(formatSpec + "s", to: .string(PythonFormat.repr(value)))
            case "d", "i", "u":
                guard let number = value.number else { throw .type("TypeError: %\(code) format: a real number is required, not \(value.typeName)") }
                let int: Int
                switch number {
                case .int(let i): int = i
                case .double(let d): int = Int(d.rounded(.towardZero))
                }
                result += try FormatSpec.apply(formatSpec.replacingOccurrences(of: ".\(precision ?? 0)", with: "") + "d", to: .int(int))
            case "f", "F", "e", "E", "g", "G", "x", "X", "o", "c":
                result += try FormatSpec.apply(formatSpec + String(code), to: value)
            default:
                throw .type("ValueError: unsupported format character '\(code)'")
            }
        }
        if mapping == nil, next < positional.count {
            throw .type("TypeError: not all arguments converted during string formatting")
        }
        return result
    }
}
