/// JSON with object members in the order they were written: a schema's `properties` order is the order the answer's
/// keys are generated in.
public indirect enum OrderedJSON: Sendable, Equatable {
    case null
    case bool(Bool)
    /// A number, with its text as written (so `enum: [1.50]` is generated as written).
    case number(Double, String)
    case string(String)
    case array([OrderedJSON])
    case object([(String, OrderedJSON)])

    public static func == (a: OrderedJSON, b: OrderedJSON) -> Bool {
        switch (a, b) {
        case (.null, .null): true
        case let (.bool(x), .bool(y)): x == y
        case let (.number(x, _), .number(y, _)): x == y
        case let (.string(x), .string(y)): x == y
        case let (.array(x), .array(y)): x == y
        case let (.object(x), .object(y)): x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    /// The member `key` of an object.
    public subscript(key: String) -> OrderedJSON? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.0 == key }?.1
    }

    /// Compact JSON text (`{"a":1}`), strings escaped as JSON requires.
    public var text: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(_, let t): return t
        case .string(let s): return Self.quoted(s)
        case .array(let items): return "[" + items.map(\.text).joined(separator: ",") + "]"
        case .object(let members): return "{" + members.map { Self.quoted($0.0) + ":" + $0.1.text }.joined(separator: ",") + "}"
        }
    }

    /// `s` as a JSON string literal.
    public static func quoted(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }

    /// Parses JSON text; nesting deeper than `maxDepth` is refused.
    public static func parse(_ text: String, maxDepth: Int = 64) throws(GrammarError) -> OrderedJSON {
        var p = Parser(bytes: Array(text.utf8), maxDepth: maxDepth)
        p.space()
        let v = try p.value(0)
        p.space()
        guard p.at == p.bytes.count else { throw p.fail("text after the value") }
        return v
    }

    private struct Parser {
        let bytes: [UInt8]
        let maxDepth: Int
        var at = 0

        func fail(_ why: String) -> GrammarError { .invalidSchema("not JSON (\(why), byte \(at))", path: "$") }

        mutating func space() {
            while at < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[at]) { at += 1 }
        }

        mutating func literal(_ word: String, _ v: OrderedJSON) throws(GrammarError) -> OrderedJSON {
            let w = Array(word.utf8)
            guard at + w.count <= bytes.count, Array(bytes[at..<(at + w.count)]) == w else { throw fail("unexpected character") }
            at += w.count
            return v
        }

        mutating func value(_ depth: Int) throws(GrammarError) -> OrderedJSON {
            guard depth <= maxDepth else { throw fail("nested deeper than \(maxDepth)") }
            guard at < bytes.count else { throw fail("unexpected end") }
            switch bytes[at] {
            case UInt8(ascii: "n"): return try literal("null", .null)
            case UInt8(ascii: "t"): return try literal("true", .bool(true))
            case UInt8(ascii: "f"): return try literal("false", .bool(false))
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "["):
                at += 1; space()
                var items: [OrderedJSON] = []
                if at < bytes.count, bytes[at] == UInt8(ascii: "]") { at += 1; return .array(items) }
                while true {
                    items.append(try value(depth + 1)); space()
                    guard at < bytes.count else { throw fail("unterminated array") }
                    if bytes[at] == UInt8(ascii: ",") { at += 1; space(); continue }
                    guard bytes[at] == UInt8(ascii: "]") else { throw fail("expected ',' or ']'") }
                    at += 1
                    return .array(items)
                }
            case UInt8(ascii: "{"):
                at += 1; space()
                var members: [(String, OrderedJSON)] = []
                if at < bytes.count, bytes[at] == UInt8(ascii: "}") { at += 1; return .object(members) }
                while true {
                    guard at < bytes.count, bytes[at] == UInt8(ascii: "\"") else { throw fail("expected a key") }
                    let key = try string(); space()
                    guard at < bytes.count, bytes[at] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                    at += 1; space()
                    let v = try value(depth + 1)
                    if let i = members.firstIndex(where: { $0.0 == key }) { members[i].1 = v } else { members.append((key, v)) }
                    space()
                    guard at < bytes.count else { throw fail("unterminated object") }
                    if bytes[at] == UInt8(ascii: ",") { at += 1; space(); continue }
                    guard bytes[at] == UInt8(ascii: "}") else { throw fail("expected ',' or '}'") }
                    at += 1
                    return .object(members)
                }
            default:
                let start = at
                while at < bytes.count, "+-0123456789.eE".utf8.contains(bytes[at]) { at += 1 }
                let t = String(decoding: bytes[start..<at], as: UTF8.self)
                guard !t.isEmpty, let d = Double(t) else { throw fail("unexpected character") }
                return .number(d, t)
            }
        }

        mutating func string() throws(GrammarError) -> String {
            at += 1
            var scalars = String.UnicodeScalarView()
            var raw: [UInt8] = []
            func flush() { scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars); raw.removeAll() }
            while at < bytes.count {
                let b = bytes[at]
                if b == UInt8(ascii: "\"") { at += 1; flush(); return String(scalars) }
                if b < 0x20 { throw fail("control character in a string") }
                guard b == UInt8(ascii: "\\") else { raw.append(b); at += 1; continue }
                flush()
                at += 1
                guard at < bytes.count else { break }
                let e = bytes[at]; at += 1
                switch e {
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "b"): scalars.append("\u{8}")
                case UInt8(ascii: "f"): scalars.append("\u{C}")
                case UInt8(ascii: "u"):
                    var v = try hex4()
                    if (0xD800..<0xDC00).contains(v), at + 1 < bytes.count, bytes[at] == UInt8(ascii: "\\"), bytes[at + 1] == UInt8(ascii: "u") {
                        at += 2
                        let low = try hex4()
                        v = 0x10000 + ((v - 0xD800) << 10) + (low &- 0xDC00) & 0x3FF
                    }
                    scalars.append(Unicode.Scalar(v) ?? "\u{FFFD}")
                default: scalars.append(Unicode.Scalar(e))
                }
            }
            throw fail("unterminated string")
        }

        mutating func hex4() throws(GrammarError) -> UInt32 {
            guard at + 4 <= bytes.count, let v = UInt32(String(decoding: bytes[at..<(at + 4)], as: UTF8.self), radix: 16) else {
                throw fail("bad \\u escape")
            }
            at += 4
            return v
        }
    }
}
