/// Python's `str()` and `repr()` for template values, which is what `{{ value }}` prints.
enum PythonFormat {
    /// Python's `str(value)`.
    static func str(_ value: Value) -> String {
        switch value {
        case .undefined: return ""
        case .string(let string), .markup(let string): return string
        default:
            var output = ""
            repr(value, into: &output)
            return output
        }
    }

    /// Python's `repr(value)`.
    static func repr(_ value: Value) -> String {
        var output = ""
        repr(value, into: &output)
        return output
    }

    static func repr(_ value: Value, into output: inout String) {
        switch value {
        case .undefined: output += "Undefined"
        case .none: output += "None"
        case .bool(let bool): output += bool ? "True" : "False"
        case .int(let int): output += String(int)
        case .double(let double): output += float(double)
        case .string(let string): quote(string, into: &output)
        case .markup(let string):
            output += "Markup("
            quote(string, into: &output)
            output += ")"
        case .array(let items):
            sequence(items, open: "[", close: "]", into: &output)
        case .tuple(let items):
            if items.count == 1 {
                output += "("
                repr(items[0], into: &output)
                output += ",)"
            } else {
                sequence(items, open: "(", close: ")", into: &output)
            }
        case .generator: output += "<generator object>"
        case .dict(let dict): mapping(dict, into: &output)
        case .namespace(let namespace):
            output += "<Namespace "
            mapping(namespace.attributes, into: &output)
            output += ">"
        case .loop: output += "<LoopContext>"
        case .function(let function):
            output += function.isMacro ? "<Macro '\(function.name)'>" : "<function \(function.name)>"
        }
    }

    private static func sequence(_ items: [Value], open: String, close: String, into output: inout String) {
        output += open
        for (index, item) in items.enumerated() {
            // Past the size limit the caller fails anyway; stop building.
            if output.utf8.count > RenderLimits.maximumStringBytes { return }
            if index > 0 { output += ", " }
            repr(item, into: &output)
        }
        output += close
    }

    private static func mapping(_ dict: Dict, into output: inout String) {
        output += "{"
        for (index, pair) in dict.pairs.enumerated() {
            if output.utf8.count > RenderLimits.maximumStringBytes { return }
            if index > 0 { output += ", " }
            repr(pair.key.value, into: &output)
            output += ": "
            repr(pair.value, into: &output)
        }
        output += "}"
    }

    /// Python's string literal quoting: single quotes unless the text contains a single quote
    /// and no double quote; non-printable characters escaped.
    static func quote(_ string: String, into output: inout String) {
        var hasSingle = false
        var hasDouble = false
        for scalar in string.unicodeScalars {
            if scalar == "'" { hasSingle = true } else if scalar == "\"" { hasDouble = true }
        }
        let quote: Unicode.Scalar = hasSingle && !hasDouble ? "\"" : "'"
        var scalars = String.UnicodeScalarView()
        scalars.append(quote)
        for scalar in string.unicodeScalars {
            switch scalar {
            case quote, "\\":
                scalars.append("\\")
                scalars.append(scalar)
            case "\n": scalars.append(contentsOf: "\\n".unicodeScalars)
            case "\r": scalars.append(contentsOf: "\\r".unicodeScalars)
            case "\t": scalars.append(contentsOf: "\\t".unicodeScalars)
            default:
                if isPrintable(scalar) {
                    scalars.append(scalar)
                } else {
                    let hex = String(scalar.value, radix: 16)
                    let (prefix, width) = scalar.value < 0x100 ? ("\\x", 2) : scalar.value < 0x10000 ? ("\\u", 4) : ("\\U", 8)
                    scalars.append(contentsOf: prefix.unicodeScalars)
                    scalars.append(contentsOf: String(repeating: "0", count: width - hex.count).unicodeScalars)
                    scalars.append(contentsOf: hex.unicodeScalars)
                }
            }
        }
        scalars.append(quote)
        output.unicodeScalars.append(contentsOf: scalars)
    }

    /// Python's `str.isprintable()` for one character.
    static func isPrintable(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.value < 0x7F { return scalar.value >= 0x20 }
        if scalar.value < 0xA0 { return false }
        switch scalar.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned,
            .lineSeparator, .paragraphSeparator, .spaceSeparator:
            return false
        default:
            return true
        }
    }

    /// Python's `repr(float)`: the shortest round-tripping digits, in fixed notation for
    /// exponents from -4 to 15 and in scientific notation otherwise.
    static func float(_ value: Double) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value < 0 ? "-inf" : "inf" }
        if value == 0 { return value.sign == .minus ? "-0.0" : "0.0" }
        // Swift's description also yields the shortest round-tripping digits; only the layout
        // differs from Python's, so extract digits and exponent and lay them out again.
        var text = Swift.abs(value).description
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(text[text.index(after: e)...]) ?? 0
            text = String(text[..<e])
        }
        var digits = ""
        var pointPosition = text.count
        for (offset, character) in text.enumerated() {
            if character == "." { pointPosition = offset } else { digits.append(character) }
        }
        // value = 0.digits * 10^(pointPosition + exponent)
        var decimalExponent = pointPosition + exponent
        while digits.hasPrefix("0") && digits.count > 1 {
            digits.removeFirst()
            decimalExponent -= 1
        }
        while digits.hasSuffix("0") && digits.count > 1 { digits.removeLast() }
        let scientificExponent = decimalExponent - 1
        var result = value < 0 ? "-" : ""
        if scientificExponent < -4 || scientificExponent >= 16 {
            result += String(digits.prefix(1))
            if digits.count > 1 { result += "." + digits.dropFirst() }
            let magnitude = Swift.abs(scientificExponent)
            result += scientificExponent < 0 ? "e-" : "e+"
            result += magnitude < 10 ? "0\(magnitude)" : String(magnitude)
        } else if decimalExponent <= 0 {
            result += "0." + String(repeating: "0", count: -decimalExponent) + digits
        } else if decimalExponent >= digits.count {
            result += digits + String(repeating: "0", count: decimalExponent - digits.count) + ".0"
        } else {
            let split = digits.index(digits.startIndex, offsetBy: decimalExponent)
            result += digits[..<split] + "." + digits[split...]
        }
        return result
    }
}
