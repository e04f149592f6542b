import NIOCore

/// Bounds on what one reply may hold, so that a wrong or hostile peer costs an error, never unbounded memory.
///
/// Memory held for one reply is at most about `maxReplyBytes` of bulk data plus `maxElements` values, and the
/// buffered input at most `max(maxBulkLength, maxLineLength)` plus one read.
public struct RESPLimits: Sendable, Hashable {
    /// Longest bulk string, in bytes (64 MiB by default). The header is checked before any of the body is buffered.
    public var maxBulkLength: Int
    /// Most values in one reply, counting the elements of every array at every depth (1 Mi by default).
    public var maxElements: Int
    /// Deepest nesting of arrays; a flat array is depth 1 (32 by default).
    public var maxDepth: Int
    /// Longest line of a simple string, an error, an integer or a header, CRLF excluded (1 MiB by default).
    public var maxLineLength: Int
    /// Most bulk bytes in one reply, all its bulk strings together (256 MiB by default).
    public var maxReplyBytes: Int

    public init(maxBulkLength: Int = 64 << 20, maxElements: Int = 1 << 20, maxDepth: Int = 32,
                maxLineLength: Int = 1 << 20, maxReplyBytes: Int = 256 << 20) {
        self.maxBulkLength = max(0, maxBulkLength)
        self.maxElements = max(0, maxElements)
        self.maxDepth = max(1, maxDepth)
        self.maxLineLength = max(16, maxLineLength)
        self.maxReplyBytes = max(0, maxReplyBytes)
    }
}

/// An incremental RESP2 parser: feed it whatever bytes arrived, split anywhere, and take the complete values out.
///
/// Bytes are consumed only once a whole scalar (a line, or a bulk string with its CRLF) is there; arrays are built on
/// a stack as their elements complete, so a large reply arriving in small pieces is parsed once, not again per piece.
/// After a thrown error the parser's state is meaningless: the connection it read must be closed.
public struct RESPParser: Sendable {
    public let limits: RESPLimits

    private struct Frame: Sendable {
        var remaining: Int
        var elements: [RESPValue]
    }

    /// The arrays being filled, outermost first.
    private var stack: [Frame] = []
    /// Elements announced by the array headers of the reply being parsed, and its bulk bytes: the reply-wide limits.
    private var elementsInReply = 0
    private var bytesInReply = 0
    /// How far past the reader index the current incomplete line was searched for CR.
    private var scannedLineBytes = 0

    public init(limits: RESPLimits = RESPLimits()) {
        self.limits = limits
    }

    /// The next complete value, consuming its bytes from `buffer`; nil when more bytes are needed.
    public mutating func next(from buffer: inout ByteBuffer) throws(RedisError) -> RESPValue? {
        while true {
            guard let token = try nextToken(from: &buffer) else { return nil }
            var value: RESPValue
            switch token {
            case .value(let scalar):
                value = scalar
            case .arrayHeader(let count):
                stack.append(Frame(remaining: count, elements: []))
                stack[stack.count - 1].elements.reserveCapacity(min(count, 1024))
                continue
            }
            // Attach the value to the innermost open array; close arrays that are now complete.
            while !stack.isEmpty {
                let top = stack.count - 1
                stack[top].elements.append(value)
                stack[top].remaining -= 1
                guard stack[top].remaining == 0 else { break }
                value = .array(stack.removeLast().elements)
            }
            if stack.isEmpty {
                elementsInReply = 0
                bytesInReply = 0
                return value
            }
        }
    }

    private enum Token {
        case value(RESPValue)
        /// An array with at least one element to come.
        case arrayHeader(Int)
    }

    private mutating func nextToken(from buffer: inout ByteBuffer) throws(RedisError) -> Token? {
        guard let type = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
        switch type {
        case UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: ":"), UInt8(ascii: "$"), UInt8(ascii: "*"):
            break
        default:
            let shown = type >= 0x20 && type < 0x7f ? " ('\(Character(Unicode.Scalar(type)))')" : ""
            throw .protocolViolation("byte 0x\(String(type, radix: 16))\(shown) where a RESP type was expected (is this a Redis server?)")
        }
        guard let lineLength = try findLineEnd(in: buffer) else { return nil }
        // The line without its type byte and CRLF.
        let lineStart = buffer.readerIndex + 1
        let headerBytes = 1 + lineLength + 2
        switch type {
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            let text = buffer.getString(at: lineStart, length: lineLength) ?? ""
            buffer.moveReaderIndex(forwardBy: headerBytes)
            scannedLineBytes = 0
            return .value(type == UInt8(ascii: "+") ? .simpleString(text) : .error(text))
        case UInt8(ascii: ":"):
            let number = try integer(in: buffer, at: lineStart, length: lineLength, what: "integer")
            buffer.moveReaderIndex(forwardBy: headerBytes)
            scannedLineBytes = 0
            return .value(.integer(number))
        case UInt8(ascii: "$"):
            let length = try integer(in: buffer, at: lineStart, length: lineLength, what: "bulk string length")
            if length == -1 {
                buffer.moveReaderIndex(forwardBy: headerBytes)
                scannedLineBytes = 0
                    return .value(.null)
            }
            guard length >= 0 else { throw .protocolViolation("negative bulk string length \(length)") }
            guard length <= limits.maxBulkLength else {
                throw .protocolViolation("a bulk string of \(length) bytes exceeds the limit of \(limits.maxBulkLength) bytes")
            }
            let count = Int(length)
            guard count <= limits.maxReplyBytes - bytesInReply else {
                throw .protocolViolation("a reply of more than \(limits.maxReplyBytes) bulk bytes exceeds the limit")
            }
            // Header, body and CRLF must all be there before anything is consumed.
            guard buffer.readableBytes >= headerBytes + count + 2 else { return nil }
            let bodyStart = buffer.readerIndex + headerBytes
            guard buffer.getInteger(at: bodyStart + count, as: UInt8.self) == UInt8(ascii: "\r"),
                  buffer.getInteger(at: bodyStart + count + 1, as: UInt8.self) == UInt8(ascii: "\n") else {
                throw .protocolViolation("a bulk string of \(count) bytes is not followed by CRLF")
            }
            // A copy, so that a value kept (a cache entry) does not pin the whole read buffer.
            var body = ByteBufferAllocator().buffer(capacity: count)
            if let slice = buffer.getSlice(at: bodyStart, length: count) { body.writeImmutableBuffer(slice) }
            buffer.moveReaderIndex(forwardBy: headerBytes + count + 2)
            scannedLineBytes = 0
            bytesInReply += count
            return .value(.bulkString(body))
        case UInt8(ascii: "*"):
            let count = try integer(in: buffer, at: lineStart, length: lineLength, what: "array length")
            guard count >= -1 else { throw .protocolViolation("negative array length \(count)") }
            guard stack.count < limits.maxDepth else {
                throw .protocolViolation("arrays nested deeper than \(limits.maxDepth) exceed the limit")
            }
            guard count <= limits.maxElements - elementsInReply else {
                throw .protocolViolation("a reply of more than \(limits.maxElements) values exceeds the limit")
            }
            buffer.moveReaderIndex(forwardBy: headerBytes)
            scannedLineBytes = 0
            elementsInReply += max(0, Int(count))
            switch count {
            case -1: return .value(.nullArray)
            case 0: return .value(.array([]))
            default: return .arrayHeader(Int(count))
            }
        default:
            throw .protocolViolation("byte 0x\(String(type, radix: 16)) where a RESP type was expected")
        }
    }

    /// The length of the line after the type byte, up to its CR, once the CRLF is in the buffer; nil before.
    private mutating func findLineEnd(in buffer: ByteBuffer) throws(RedisError) -> Int? {
        let view = buffer.readableBytesView
        // Resume where the last search stopped: the bytes before it hold no CR.
        var index = view.startIndex + 1 + scannedLineBytes
        let limit = view.startIndex + 1 + limits.maxLineLength
        while index < view.endIndex {
            if view[index] == UInt8(ascii: "\r") {
                guard index + 1 < view.endIndex else {
                    scannedLineBytes = index - view.startIndex - 1
                    return nil
                }
                guard view[index + 1] == UInt8(ascii: "\n") else {
                    throw .protocolViolation("a line ends with CR not followed by LF")
                }
                return index - view.startIndex - 1
            }
            guard index < limit else {
                throw .protocolViolation("a line longer than \(limits.maxLineLength) bytes exceeds the limit")
            }
            index += 1
        }
        scannedLineBytes = max(0, index - view.startIndex - 1)
        return nil
    }

    /// A strict decimal Int64: an optional minus and 1 to 19 digits that fit.
    private func integer(in buffer: ByteBuffer, at index: Int, length: Int, what: String) throws(RedisError) -> Int64 {
        guard let bytes = buffer.getBytes(at: index, length: length), !bytes.isEmpty, bytes.count <= 20 else {
            throw .protocolViolation("malformed \(what)")
        }
        let negative = bytes[0] == UInt8(ascii: "-")
        let digits = negative ? bytes.dropFirst() : bytes[...]
        guard !digits.isEmpty else { throw .protocolViolation("malformed \(what)") }
        var value: Int64 = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else {
                throw .protocolViolation("malformed \(what) '\(String(decoding: bytes, as: UTF8.self))'")
            }
            let digit = Int64(byte - UInt8(ascii: "0"))
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            // Accumulating negatively reaches Int64.min without overflowing.
            let (next, overflow2) = negative ? times10.subtractingReportingOverflow(digit)
                                             : times10.addingReportingOverflow(digit)
            guard !overflow1, !overflow2 else { throw .protocolViolation("\(what) out of the 64-bit range") }
            value = next
        }
        return value
    }
}

/// `RESPParser` as a NIO decoder: emits one `RESPValue` per complete reply; a thrown `RedisError` closes the channel.
public struct RESPDecoder: ByteToMessageDecoder {
    public typealias InboundOut = RESPValue

    private var parser: RESPParser

    public init(limits: RESPLimits = RESPLimits()) {
        parser = RESPParser(limits: limits)
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let value = try parser.next(from: &buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(value))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer,
                                    seenEOF: Bool) throws -> DecodingState {
        // A partial reply at EOF is dropped: the commands waiting for it fail as the channel goes inactive.
        try decode(context: context, buffer: &buffer)
    }
}
