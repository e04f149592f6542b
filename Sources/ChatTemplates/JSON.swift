/// Options of Python's `json.dumps` that templates use through the `tojson` filter.
struct JSONOptions {
    /// The indentation unit; `nil` writes everything on one line.
    var indent: String?
    var itemSeparator: String
    var keySeparator: String
    var ensureASCII = false
    var sortKeys = false

    init(indent: String?, separators: (String, String)? = nil, ensureASCII: Bool = false, sortKeys: Bool = false) {
        self.indent = indent
        let defaults = indent == nil ? (", ", ": ") : (",", ": ")
        (itemSeparator, keySeparator) = separators ?? defaults
        self.ensureASCII = ensureASCII
        self.sortKeys = sortKeys
    }
}

/// Writes values exactly like Python's `json.dumps`.
struct JSONWriter {
    var options: JSONOptions

    func write(_ value: Value, into output: inout String, level: Int) throws(TemplateError) {
        guard output.utf8.count <= RenderLimits.maximumStringBytes else {
            throw TemplateError(.limit, "JSON output exceeds \(RenderLimits.maximumStringBytes) bytes")
        }
        switch value {
        case .none: output += "null"
        case .bool(let bool): output += bool ? "true" : "false"
        case .int(let int): output += String(int)
        case .double(let double):
            if double.isNaN {
                output += "NaN"
            } else if double.isInfinite {
                output += double < 0 ? "-Infinity" : "Infinity"
            } else {
                output += PythonFormat.float(double)
            }
        case .string(let string), .markup(let string): writeString(string, into: &output)
        case .array(let items), .tuple(let items):
            guard !items.isEmpty else {
                output += "[]"
                return
            }
            output += "["
            for (index, item) in items.enumerated() {
                if index > 0 { output += options.itemSeparator }
                newline(level + 1, into: &output)
                try write(item, into: &output, level: level + 1)
            }
            newline(level, into: &output)
            output += "]"
        case .dict(let dict):
            guard !dict.isEmpty else {
                output += "{}"
                return
            }
            var pairs: [(key: String, value: Value)] = []
            pairs.reserveCapacity(dict.count)
            for (key, item) in dict.pairs { pairs.append((try keyString(key), item)) }
            if options.sortKeys {
                pairs = try StableSort.sorted(pairs) { $0.key.unicodeScalars.lexicographicallyPrecedes($1.key.unicodeScalars) }
            }
            output += "{"
            for (index, pair) in pairs.enumerated() {
                if index > 0 { output += options.itemSeparator }
                newline(level + 1, into: &output)
                writeString(pair.key, into: &output)
                output += options.keySeparator
                try write(pair.value, into: &output, level: level + 1)
            }
            newline(level, into: &output)
            output += "}"
        case .undefined, .generator, .namespace, .loop, .function:
            throw .type("Object of type \(value.typeName) is not JSON serializable")
        }
    }

    private func newline(_ level: Int, into output: inout String) {
        guard let indent = options.indent else { return }
        output += "\n"
        for _ in 0..<level { output += indent }
    }

    private func keyString(_ key: DictKey) throws(TemplateError) -> String {
        switch key {
        case .string(let string): return string
        case .int(let int): return String(int)
        case .double(let double): return PythonFormat.float(double)
        case .bool(let bool): return bool ? "true" : "false"
        case .none: return "null"
        }
    }

    private func writeString(_ string: String, into output: inout String) {
        var scalars = String.UnicodeScalarView()
        scalars.append("\"")
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": scalars.append(contentsOf: "\\\"".unicodeScalars)
            case "\\": scalars.append(contentsOf: "\\\\".unicodeScalars)
            case "\n": scalars.append(contentsOf: "\\n".unicodeScalars)
            case "\r": scalars.append(contentsOf: "\\r".unicodeScalars)
            case "\t": scalars.append(contentsOf: "\\t".unicodeScalars)
            case "\u{08}": scalars.append(contentsOf: "\\b".unicodeScalars)
            case "\u{0C}": scalars.append(contentsOf: "\\f".unicodeScalars)
            default:
                if scalar.value < 0x20 || (options.ensureASCII && scalar.value >= 0x7F) {
                    if scalar.value > 0xFFFF {
                        let offset = scalar.value - 0x10000
                        appendEscape(0xD800 + (offset >> 10), to: &scalars)
                        appendEscape(0xDC00 + (offset & 0x3FF), to: &scalars)
                    } else {
                        appendEscape(scalar.value, to: &scalars)
                    }
                } else {
                    scalars.append(scalar)
                }
            }
        }
        scalars.append("\"")
        output.unicodeScalars.append(contentsOf: scalars)
    }

    private func appendEscape(_ code: UInt32, to scalars: inout String.UnicodeScalarView) {
        let hex = String(code, radix: 16)
        scalars.append(contentsOf: "\\u".unicodeScalars)
        scalars.append(contentsOf: String(repeating: "0", count: 4 - hex.count).unicodeScalars)
        scalars.append(contentsOf: hex.unicodeScalars)
    }
}

/// A strict JSON parser that keeps object keys in document order.
struct JSONParser {
    private let bytes: [UInt8]
    private var position = 0
    private var depth = 0
    private static let maximumDepth = 512

    init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    mutating func parseDocument() throws(TemplateError) -> JinjaValue {
        let value = try parseValue()
        skipWhitespace()
        guard position == bytes.count else { throw failure("unexpected trailing characters") }
        return value
    }

    private func failure(_ message: String) -> TemplateError {
        TemplateError(.syntax, "invalid JSON at offset \(position): \(message)")
    }

    private mutating func skipWhitespace() {
        while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
    }

    private mutating func parseValue() throws(TemplateError) -> JinjaValue {
        skipWhitespace()
        guard position < bytes.count else { throw failure("unexpected end of input") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): return try parseLiteral("true", .bool(true))
        case UInt8(ascii: "f"): return try parseLiteral("false", .bool(false))
        case UInt8(ascii: "n"): return try parseLiteral("null", .none)
        default: return try parseNumber()
        }
    }

    private mutating func parseLiteral(_ word: String, _ value: JinjaValue) throws(TemplateError) -> JinjaValue {
        let expected = Array(word.utf8)
        guard position + expected.count <= bytes.count,
            Array(bytes[position..<position + expected.count]) == expected
        else { throw failure("unexpected character") }
        position += expected.count
        return value
    }

    private mutating func nest() throws(TemplateError) {
        depth += 1
        guard depth <= Self.maximumDepth else { throw failure("nesting too deep") }
    }

    private mutating func parseObject() throws(TemplateError) -> JinjaValue {
        try nest()
        defer { depth -= 1 }
        position += 1
        var object = JinjaObject()
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
            position += 1
            return .object(object)
        }
        while true {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw failure("expected a key") }
            let key = try parseString()
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw failure("expected ':'") }
            position += 1
            object[key] = try parseValue()
            skipWhitespace()
            guard position < bytes.count else { throw failure("unterminated object") }
            if bytes[position] == UInt8(ascii: ",") {
                position += 1
            } else if bytes[position] == UInt8(ascii: "}") {
                position += 1
                return .object(object)
            } else {
                throw failure("expected ',' or '}'")
            }
        }
    }

    private mutating func parseArray() throws(TemplateError) -> JinjaValue {
        try nest()
        defer { depth -= 1 }
        position += 1
        var array: [JinjaValue] = []
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
            position += 1
            return .array(array)
        }
        while true {
            array.append(try parseValue())
            skipWhitespace()
            guard position < bytes.count else { throw failure("unterminated array") }
            if bytes[position] == UInt8(ascii: ",") {
                position += 1
            } else if bytes[position] == UInt8(ascii: "]") {
                position += 1
                return .array(array)
            } else {
                throw failure("expected ',' or ']'")
            }
        }
    }

    private mutating func parseHex4() throws(TemplateError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw failure("truncated \\u escape") }
        var code: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw failure("invalid \\u escape")
            }
            code = code << 4 | digit
            position += 1
        }
        return code
    }

    private mutating func parseString() throws(TemplateError) -> String {
        position += 1
        var buffer: [UInt8] = []
        while true {
            guard position < bytes.count else { throw failure("unterminated string") }
            let byte = bytes[position]
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                return String(decoding: buffer, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard position < bytes.count else { throw failure("unterminated string") }
                let escape = bytes[position]
                position += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): buffer.append(escape)
                case UInt8(ascii: "b"): buffer.append(0x08)
                case UInt8(ascii: "f"): buffer.append(0x0C)
                case UInt8(ascii: "n"): buffer.append(0x0A)
                case UInt8(ascii: "r"): buffer.append(0x0D)
                case UInt8(ascii: "t"): buffer.append(0x09)
                case UInt8(ascii: "u"):
                    var code = try parseHex4()
                    if (0xD800..<0xDC00).contains(code), position + 1 < bytes.count,
                        bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u")
                    {
                        let saved = position
                        position += 2
                        let low = try parseHex4()
                        if (0xDC00..<0xE000).contains(low) {
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            position = saved
                        }
                    }
                    let scalar = Unicode.Scalar(code) ?? "\u{FFFD}"
                    buffer.append(contentsOf: Array(String(scalar).utf8))
                default:
                    throw failure("invalid escape")
                }
            case 0..<0x20:
                throw failure("control character in string")
            default:
                buffer.append(byte)
            }
        }
    }

    private mutating func parseNumber() throws(TemplateError) -> JinjaValue {
        let start = position
        var isInteger = true
        if position < bytes.count, bytes[position] == UInt8(ascii: "-") { position += 1 }
        while position < bytes.count {
            let byte = bytes[position]
            if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                position += 1
            } else if byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E")
                || ((byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-")) && !isInteger)
            {
                isInteger = false
                position += 1
            } else {
                break
            }
        }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        guard !text.isEmpty, text != "-" else { throw failure("unexpected character") }
        if isInteger, let int = Int(text) { return .int(int) }
        guard let double = Double(text) else { throw failure("invalid number '\(text)'") }
        return .double(double)
    }
}

/// A stable merge sort with a throwing comparison (Python's `sorted` is stable).
enum StableSort {
    static func sorted<T>(_ items: [T], by less: (T, T) throws(TemplateError) -> Bool) throws(TemplateError) -> [T] {
        guard items.count > 1 else { return items }
        var source = items
        var buffer = items
        var width = 1
        while width < source.count {
            var start = 0
            while start < source.count {
                let middle = min(start + width, source.count)
                let end = min(start + 2 * width, source.count)
                var left = start
                var right = middle
                var out = start
                while left < middle && right < end {
                    if try less(source[right], source[left]) {
                        buffer[out] = source[right]
                        right += 1
                    } else {
                        buffer[out] = source[left]
                        left += 1
                    }
                    out += 1
                }
                while left < middle {
                    buffer[out] = source[left]
                    left += 1
                    out += 1
                }
                while right < end {
                    buffer[out] = source[right]
                    right += 1
                    out += 1
                }
                start = end
            }
            swap(&source, &buffer)
            width *= 2
        }
        return source
    }
}
