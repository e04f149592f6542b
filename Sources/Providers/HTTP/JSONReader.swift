extension JSONValue {
    /// The member `key` of an object (nil when absent, null, or this is not an object).
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self, let v = members[key], v != .null else { return nil }
        return v
    }
}

/// Reads JSON text (RFC 8259) into `JSONValue`s: for the answers an upstream sends on every request, where decoding
/// through `Codable` costs more than the rest of the request. Nesting is bounded; anything that is not JSON is an
/// error naming the offset.
public struct JSONReader {
    public struct Failure: Error, CustomStringConvertible {
        public let offset: Int
        public let reason: String
        public var description: String { "not JSON at byte \(offset): \(reason)" }
    }

    public static func parse(_ bytes: some Collection<UInt8>, maxDepth: Int = 128) throws -> JSONValue {
        let array = Array(bytes)
        return try array.withUnsafeBufferPointer { buffer in
            var reader = JSONReader(bytes: buffer, maxDepth: maxDepth)
            reader.skipSpace()
            let value = try reader.value(depth: 0)
            reader.skipSpace()
            guard reader.at == buffer.count else { throw reader.failure("text after the value") }
            return value
        }
    }

    private let bytes: UnsafeBufferPointer<UInt8>
    private let maxDepth: Int
    private var at = 0

    private init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int) { self.bytes = bytes; self.maxDepth = maxDepth }

    private func failure(_ reason: String) -> Failure { Failure(offset: at, reason: reason) }

    private mutating func skipSpace() {
        while at < bytes.count, bytes[at] == 0x20 || bytes[at] == 0x0A || bytes[at] == 0x0D || bytes[at] == 0x09 { at += 1 }
    }

    private mutating func expect(_ literal: StaticString, _ value: JSONValue) throws -> JSONValue {
        let n = literal.utf8CodeUnitCount
        guard at + n <= bytes.count else { throw failure("unexpected end") }
        for i in 0..<n where bytes[at + i] != literal.utf8Start[i] { throw failure("unexpected character") }
        at += n
        return value
    }

    private mutating func value(depth: Int) throws -> JSONValue {
        guard depth < maxDepth else { throw failure("nested deeper than \(maxDepth)") }
        guard at < bytes.count else { throw failure("unexpected end") }
        switch bytes[at] {
        case UInt8(ascii: "{"):
            at += 1
            var members: [String: JSONValue] = [:]
            skipSpace()
            if at < bytes.count, bytes[at] == UInt8(ascii: "}") { at += 1; return .object(members) }
            while true {
                skipSpace()
                guard at < bytes.count, bytes[at] == UInt8(ascii: "\"") else { throw failure("expected a member name") }
                let key = try string()
                skipSpace()
                guard at < bytes.count, bytes[at] == UInt8(ascii: ":") else { throw failure("expected ':'") }
                at += 1
                skipSpace()
                members[key] = try value(depth: depth + 1)
                skipSpace()
                guard at < bytes.count else { throw failure("unexpected end") }
                if bytes[at] == UInt8(ascii: ",") { at += 1; continue }
                guard bytes[at] == UInt8(ascii: "}") else { throw failure("expected ',' or '}'") }
                at += 1
                return .object(members)
            }
        case UInt8(ascii: "["):
            at += 1
            var elements: [JSONValue] = []
            skipSpace()
            if at < bytes.count, bytes[at] == UInt8(ascii: "]") { at += 1; return .array(elements) }
            while true {
                skipSpace()
                elements.append(try value(depth: depth + 1))
                skipSpace()
                guard at < bytes.count else { throw failure("unexpected end") }
                if bytes[at] == UInt8(ascii: ",") { at += 1; continue }
                guard bytes[at] == UInt8(ascii: "]") else { throw failure("expected ',' or ']'") }
                at += 1
                return .array(elements)
            }
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "t"): return try expect("true", .bool(true))
        case UInt8(ascii: "f"): return try expect("false", .bool(false))
        case UInt8(ascii: "n"): return try expect("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(try number())
        default:
            throw failure("unexpected character")
        }
    }

    private mutating func number() throws -> Double {
        let start = at
        func digits() -> Int {
            let s = at
            while at < bytes.count, bytes[at] >= UInt8(ascii: "0"), bytes[at] <= UInt8(ascii: "9") { at += 1 }
            return at - s
        }
        if bytes[at] == UInt8(ascii: "-") { at += 1 }
        let intStart = at
        guard digits() > 0 else { throw failure("expected a digit") }
        if bytes[intStart] == UInt8(ascii: "0"), at - intStart > 1 { throw failure("leading zero") }
        if at < bytes.count, bytes[at] == UInt8(ascii: ".") {
            at += 1
            guard digits() > 0 else { throw failure("expected a digit after '.'") }
        }
        if at < bytes.count, bytes[at] == UInt8(ascii: "e") || bytes[at] == UInt8(ascii: "E") {
            at += 1
            if at < bytes.count, bytes[at] == UInt8(ascii: "+") || bytes[at] == UInt8(ascii: "-") { at += 1 }
            guard digits() > 0 else { throw failure("expected a digit in the exponent") }
        }
        guard let d = Double(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<at]), as: UTF8.self)) else {
            throw Failure(offset: start, reason: "unreadable number")
        }
        return d
    }

    /// A string from its opening quote; escapes resolved, UTF-8 validated (invalid sequences become U+FFFD).
    private mutating func string() throws -> String {
        at += 1
        let start = at
        // Fast path: no escapes.
        while at < bytes.count {
            let c = bytes[at]
            if c == UInt8(ascii: "\"") {
                let s = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<at]), as: UTF8.self)
                at += 1
                return s
            }
            if c == UInt8(ascii: "\\") { break }
            guard c >= 0x20 else { throw failure("control character in a string") }
            at += 1
        }
        var out = Array(bytes[start..<at])
        while at < bytes.count {
            let c = bytes[at]
            if c == UInt8(ascii: "\"") { at += 1; return String(decoding: out, as: UTF8.self) }
            guard c >= 0x20 else { throw failure("control character in a string") }
            guard c == UInt8(ascii: "\\") else { out.append(c); at += 1; continue }
            at += 1
            guard at < bytes.count else { break }
            let e = bytes[at]
            at += 1
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800..<0xDC00).contains(scalar), at + 1 < bytes.count, bytes[at] == UInt8(ascii: "\\"), bytes[at + 1] == UInt8(ascii: "u") {
                    let save = at
                    at += 2
                    let low = try hex4()
                    if (0xDC00..<0xE000).contains(low) { scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00) } else { at = save }
                }
                out.append(contentsOf: Array(String(Unicode.Scalar(scalar).map(Character.init) ?? "\u{FFFD}").utf8))
            default:
                throw failure("unknown escape")
            }
        }
        throw failure("unterminated string")
    }

    private mutating func hex4() throws -> UInt32 {
        guard at + 4 <= bytes.count else { throw failure("short \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[at]
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw failure("bad hex digit in \\u escape")
            }
            v = v << 4 | d
            at += 1
        }
        return v
    }
}
