import NIOCore

/// One RESP2 value: what Redis answers, and (as an array of bulk strings) what a command is.
///
/// Bulk strings are bytes, not text: a cached response may hold any byte, zero included. `null` is RESP2's null bulk
/// string (`$-1`, what `GET` answers for a missing key); `nullArray` is its null array (`*-1`). An `error` is a reply
/// (`-ERR …`), not a thrown error: `RedisClient` turns a top-level one into `RedisError.server`, while errors nested in
/// an array (a script's or a pipeline's results) stay values.
public enum RESPValue: Sendable, Hashable {
    /// `+OK`: a short status line.
    case simpleString(String)
    /// `-ERR …`: an error reply; the text starts with a code (`ERR`, `NOSCRIPT`, `WRONGTYPE`, …).
    case error(String)
    /// `:42`: a signed 64-bit integer.
    case integer(Int64)
    /// `$3\r\nabc`: binary-safe bytes.
    case bulkString(ByteBuffer)
    /// `$-1`: the null bulk string.
    case null
    /// `*2\r\n…`: values of any type, arrays included.
    case array([RESPValue])
    /// `*-1`: the null array.
    case nullArray
}

extension RESPValue {
    /// A bulk string holding the UTF-8 bytes of `string`.
    public init(bulk string: String) {
        self = .bulkString(ByteBuffer(string: string))
    }

    /// A bulk string holding `bytes`.
    public init(bulk bytes: [UInt8]) {
        self = .bulkString(ByteBuffer(bytes: bytes))
    }

    /// The text of a simple string or of a bulk string (as UTF-8, invalid sequences replaced); nil for other types.
    public var stringValue: String? {
        switch self {
        case .simpleString(let text): return text
        case .bulkString(let buffer): return String(buffer: buffer)
        default: return nil
        }
    }

    /// The bytes of a bulk string (or of a simple string's text); nil for other types, nulls included.
    public var bytesValue: [UInt8]? {
        switch self {
        case .bulkString(let buffer): return Array(buffer.readableBytesView)
        case .simpleString(let text): return Array(text.utf8)
        default: return nil
        }
    }

    /// The bytes of a bulk string as a buffer; nil for other types, nulls included.
    public var bufferValue: ByteBuffer? {
        if case .bulkString(let buffer) = self { return buffer }
        return nil
    }

    /// An integer reply, or a bulk or simple string that spells a decimal integer (what `GET` of a counter answers).
    public var int64Value: Int64? {
        switch self {
        case .integer(let value): return value
        case .bulkString(let buffer): return Int64(String(buffer: buffer))
        case .simpleString(let text): return Int64(text)
        default: return nil
        }
    }

    /// The elements of an array; nil for other types and for the null array.
    public var arrayValue: [RESPValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// True for the null bulk string and the null array.
    public var isNull: Bool {
        switch self {
        case .null, .nullArray: return true
        default: return false
        }
    }
}

extension RESPValue: CustomStringConvertible {
    /// A one-line rendering for logs and test failures; bulk strings longer than 64 bytes are cut.
    public var description: String {
        switch self {
        case .simpleString(let text): return "+\(text)"
        case .error(let text): return "-\(text)"
        case .integer(let value): return ":\(value)"
        case .null: return "(null)"
        case .nullArray: return "(null array)"
        case .array(let elements): return "[" + elements.map(\.description).joined(separator: ", ") + "]"
        case .bulkString(let buffer):
            let shown = buffer.getSlice(at: buffer.readerIndex, length: min(64, buffer.readableBytes)) ?? buffer
            let more = buffer.readableBytes > 64 ? "… (\(buffer.readableBytes) bytes)" : ""
            return "\"" + String(buffer: shown).debugDescription.dropFirst().dropLast() + "\"" + more
        }
    }
}
