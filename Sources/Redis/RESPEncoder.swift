import NIOCore

/// Writes RESP2: commands as arrays of bulk strings (the only form Redis takes), and any value (for tests and fakes).
public enum RESPEncoder {
    /// Appends one command, `*N\r\n` then `$len\r\narg\r\n` per argument, to `buffer`.
    public static func writeCommand<Arguments: Collection>(_ arguments: Arguments, into buffer: inout ByteBuffer)
    where Arguments.Element == ByteBuffer {
        buffer.reserveCapacity(minimumWritableBytes: 16 + arguments.reduce(0) { $0 + $1.readableBytes + 16 })
        buffer.writeInteger(UInt8(ascii: "*"))
        writeDecimal(Int64(arguments.count), into: &buffer)
        for argument in arguments {
            buffer.writeInteger(UInt8(ascii: "$"))
            writeDecimal(Int64(argument.readableBytes), into: &buffer)
            buffer.writeImmutableBuffer(argument)
            writeCRLF(into: &buffer)
        }
    }

    /// One command as a fresh buffer.
    public static func command(_ arguments: [ByteBuffer]) -> ByteBuffer {
        var buffer = ByteBuffer()
        writeCommand(arguments, into: &buffer)
        return buffer
    }

    /// Appends `value` in its RESP2 form. Simple strings and errors must not contain CR or LF (they are replaced by
    /// spaces here, as they would end the line).
    public static func write(_ value: RESPValue, into buffer: inout ByteBuffer) {
        switch value {
        case .simpleString(let text):
            buffer.writeInteger(UInt8(ascii: "+"))
            writeLine(text, into: &buffer)
        case .error(let text):
            buffer.writeInteger(UInt8(ascii: "-"))
            writeLine(text, into: &buffer)
        case .integer(let number):
            buffer.writeInteger(UInt8(ascii: ":"))
            writeDecimal(number, into: &buffer)
        case .bulkString(let bytes):
            buffer.writeInteger(UInt8(ascii: "$"))
            writeDecimal(Int64(bytes.readableBytes), into: &buffer)
            buffer.writeImmutableBuffer(bytes)
            writeCRLF(into: &buffer)
        case .null:
            buffer.writeStaticString("$-1\r\n")
        case .array(let elements):
            buffer.writeInteger(UInt8(ascii: "*"))
            writeDecimal(Int64(elements.count), into: &buffer)
            for element in elements { write(element, into: &buffer) }
        case .nullArray:
            buffer.writeStaticString("*-1\r\n")
        }
    }

    /// `number` in decimal, then CRLF (numbers of up to 15 digits are small strings: no allocation).
    static func writeDecimal(_ number: Int64, into buffer: inout ByteBuffer) {
        buffer.writeString(String(number))
        writeCRLF(into: &buffer)
    }

    private static func writeLine(_ text: String, into buffer: inout ByteBuffer) {
        buffer.writeBytes(text.utf8.map { $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\n") ? UInt8(ascii: " ") : $0 })
        writeCRLF(into: &buffer)
    }

    private static func writeCRLF(into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt16(0x0D0A))   // "\r\n", big-endian
    }
}
