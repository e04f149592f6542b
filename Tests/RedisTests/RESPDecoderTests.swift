import NIOCore
@testable import Redis
import Testing

/// Parses `bytes` fed in pieces of the given sizes (the rest in one piece), returning every value that came out.
func parseAll(_ bytes: [UInt8], pieces: [Int] = [], limits: RESPLimits = RESPLimits()) throws(RedisError) -> [RESPValue] {
    var parser = RESPParser(limits: limits)
    var buffer = ByteBuffer()
    var values: [RESPValue] = []
    var offset = 0
    var sizes = pieces
    while offset < bytes.count {
        let size = sizes.isEmpty ? bytes.count - offset : min(sizes.removeFirst(), bytes.count - offset)
        buffer.writeBytes(bytes[offset..<offset + size])
        offset += size
        while let value = try parser.next(from: &buffer) { values.append(value) }
    }
    return values
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// One sample of every type, nulls and nesting included, with its wire form.
let samples: [(wire: String, value: RESPValue)] = [
    ("+OK\r\n", .simpleString("OK")),
    ("+\r\n", .simpleString("")),
    ("-ERR unknown command 'FOO'\r\n", .error("ERR unknown command 'FOO'")),
    (":0\r\n", .integer(0)),
    (":-42\r\n", .integer(-42)),
    (":9223372036854775807\r\n", .integer(.max)),
    (":-9223372036854775808\r\n", .integer(.min)),
    ("$5\r\nhello\r\n", RESPValue(bulk: "hello")),
    ("$0\r\n\r\n", RESPValue(bulk: "")),
    ("$-1\r\n", .null),
    ("*-1\r\n", .nullArray),
    ("*0\r\n", .array([])),
    ("*3\r\n:1\r\n$-1\r\n+two\r\n", .array([.integer(1), .null, .simpleString("two")])),
    ("*2\r\n*2\r\n$1\r\na\r\n*0\r\n*1\r\n*-1\r\n", .array([.array([RESPValue(bulk: "a"), .array([])]), .array([.nullArray])])),
    ("*2\r\n-NOSCRIPT no script\r\n:7\r\n", .array([.error("NOSCRIPT no script"), .integer(7)])),
]

@Suite struct RESPDecoderTests {
    @Test(arguments: samples.indices)
    func decodesEveryType(_ index: Int) throws {
        let (wire, value) = samples[index]
        #expect(try parseAll(bytes(wire)) == [value])
    }

    @Test(arguments: samples.indices)
    func decodesEachSampleFedOneByteAtATime(_ index: Int) throws {
        let (wire, value) = samples[index]
        var parser = RESPParser()
        var buffer = ByteBuffer()
        let all = bytes(wire)
        for (position, byte) in all.enumerated() {
            buffer.writeInteger(byte)
            let decoded = try parser.next(from: &buffer)
            if position < all.count - 1 {
                #expect(decoded == nil, "a value came out after \(position + 1) of \(all.count) bytes")
            } else {
                #expect(decoded == value)
            }
        }
        #expect(buffer.readableBytes == 0)
    }

    @Test func splitsAtEveryPositionOfAStream() throws {
        let wire = bytes(samples.map(\.wire).joined())
        let expected = samples.map(\.value)
        for split in 0...wire.count {
            #expect(try parseAll(wire, pieces: [split]) == expected, "split at \(split)")
        }
        #expect(try parseAll(wire, pieces: Array(repeating: 1, count: wire.count)) == expected)
        #expect(try parseAll(wire, pieces: Array(repeating: 7, count: wire.count)) == expected)
    }

    @Test func bulkStringsAreBinarySafe() throws {
        let payload: [UInt8] = [0, 13, 10, 0, 255, 36, 13, 10, 42, 0]
        let wire = bytes("$\(payload.count)\r\n") + payload + bytes("\r\n")
        let values = try parseAll(wire, pieces: [3, 1, 1, 1, 1, 1, 1])
        #expect(values == [.bulkString(ByteBuffer(bytes: payload))])
        #expect(values.first?.bytesValue == payload)
    }

    @Test func largeBulkStringArrivingInPieces() throws {
        let payload = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let wire = bytes("$\(payload.count)\r\n") + payload + bytes("\r\n")
        let values = try parseAll(wire, pieces: Array(repeating: 4096, count: wire.count / 4096 + 1))
        #expect(values.first?.bytesValue == payload)
    }

    @Test func accessors() {
        #expect(RESPValue(bulk: "12").int64Value == 12)
        #expect(RESPValue.integer(3).int64Value == 3)
        #expect(RESPValue.simpleString("OK").stringValue == "OK")
        #expect(RESPValue.null.bytesValue == nil && RESPValue.null.isNull && RESPValue.nullArray.isNull)
        #expect(RESPValue.array([.integer(1)]).arrayValue == [.integer(1)])
        #expect(RESPValue.nullArray.arrayValue == nil)
        #expect(RESPValue(bulk: [1, 2]).bufferValue == ByteBuffer(bytes: [1, 2]))
    }

    // MARK: Limits and malformed input

    @Test func bulkLongerThanTheLimitFailsOnItsHeader() {
        let limits = RESPLimits(maxBulkLength: 1024)
        #expect(throws: RedisError.self) { try parseAll(bytes("$1025\r\n"), limits: limits) }
        // Exactly the limit is fine.
        let wire = bytes("$1024\r\n") + Array(repeating: 120, count: 1024) + bytes("\r\n")
        #expect((try? parseAll(wire, limits: limits))?.count == 1)
        // The default is 64 MiB: a header announcing more fails before any body arrives.
        #expect(throws: RedisError.self) { try parseAll(bytes("$\((64 << 20) + 1)\r\n")) }
    }

    @Test func tooManyElementsFail() {
        let limits = RESPLimits(maxElements: 4)
        #expect(throws: RedisError.self) { try parseAll(bytes("*5\r\n"), limits: limits) }
        // The count is across nesting: 2 + 2 + 1 elements.
        #expect(throws: RedisError.self) {
            try parseAll(bytes("*2\r\n*2\r\n:1\r\n:2\r\n*1\r\n:3\r\n"), limits: limits)
        }
        #expect((try? parseAll(bytes("*2\r\n*1\r\n:1\r\n:2\r\n"), limits: limits))?.count == 1)
        // A huge announced count fails at once instead of waiting (and reserving) for it.
        #expect(throws: RedisError.self) { try parseAll(bytes("*9223372036854775807\r\n")) }
    }

    @Test func limitsAreReplyWideNotStreamWide() throws {
        let limits = RESPLimits(maxElements: 2, maxReplyBytes: 4)
        let wire = bytes(String(repeating: "*2\r\n$2\r\nab\r\n$2\r\ncd\r\n", count: 10))
        #expect(try parseAll(wire, limits: limits).count == 10)
        #expect(throws: RedisError.self) { try parseAll(bytes("*2\r\n$3\r\nabc\r\n$2\r\ncd\r\n"), limits: limits) }
    }

    @Test func nestingDeeperThanTheLimitFails() throws {
        let limits = RESPLimits(maxDepth: 3)
        #expect(try parseAll(bytes("*1\r\n*1\r\n*1\r\n:1\r\n"), limits: limits) == [.array([.array([.array([.integer(1)])])])])
        #expect(throws: RedisError.self) { try parseAll(bytes("*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n"), limits: limits) }
        // Deeply nested input fed byte by byte fails as soon as the limit is crossed, without recursion.
        let deep = bytes(String(repeating: "*1\r\n", count: 100_000))
        #expect(throws: RedisError.self) { try parseAll(deep, pieces: Array(repeating: 1, count: deep.count)) }
    }

    @Test func longLineWithoutCRLFFails() {
        let limits = RESPLimits(maxLineLength: 100)
        let long = bytes("+" + String(repeating: "x", count: 101))
        #expect(throws: RedisError.self) { try parseAll(long, pieces: Array(repeating: 1, count: long.count), limits: limits) }
        #expect((try? parseAll(bytes("+" + String(repeating: "x", count: 100) + "\r\n"), limits: limits))?.count == 1)
    }

    @Test(arguments: [
        "HTTP/1.1 400 Bad Request\r\n", ":12a\r\n", ":\r\n", ":-\r\n", ":9223372036854775808\r\n",
        ":-9223372036854775809\r\n", "+OK\rX", "$3\r\nabcde\r\n", "$-2\r\n", "*-2\r\n", "$x\r\n", "\u{0}",
    ])
    func malformedInputIsAProtocolViolation(_ wire: String) {
        #expect {
            try parseAll(bytes(wire))
        } throws: { error in
            guard case .protocolViolation = error as? RedisError else { return false }
            return true
        }
    }

    @Test func errorsSayWhatWasWrong() {
        #expect(throws: RedisError.protocolViolation("a bulk string of 11 bytes exceeds the limit of 10 bytes")) {
            try parseAll(bytes("$11\r\n"), limits: RESPLimits(maxBulkLength: 10))
        }
        #expect(throws: RedisError.protocolViolation("byte 0x48 ('H') where a RESP type was expected (is this a Redis server?)")) {
            try parseAll(bytes("HTTP/1.1"))
        }
    }
}

@Suite struct RESPEncoderTests {
    @Test func encodesACommandAsAnArrayOfBulkStrings() {
        let command = RESPEncoder.command(["SET", "key", "välue"].map { ByteBuffer(string: $0) })
        #expect(String(buffer: command) == "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$6\r\nvälue\r\n")
        #expect(String(buffer: RESPEncoder.command([])) == "*0\r\n")
    }

    @Test func encodesBinaryArgumentsVerbatim() throws {
        let payload: [UInt8] = [0, 13, 10, 255]
        let command = RESPEncoder.command([ByteBuffer(string: "SET"), ByteBuffer(bytes: payload)])
        #expect(Array(command.readableBytesView) == bytes("*2\r\n$3\r\nSET\r\n$4\r\n") + payload + bytes("\r\n"))
        // And the parser reads it back.
        #expect(try parseAll(Array(command.readableBytesView)) == [.array([RESPValue(bulk: "SET"), RESPValue(bulk: payload)])])
    }

    @Test(arguments: samples.indices)
    func everyValueRoundTrips(_ index: Int) throws {
        let (wire, value) = samples[index]
        var buffer = ByteBuffer()
        RESPEncoder.write(value, into: &buffer)
        #expect(String(buffer: buffer) == wire)
        #expect(try parseAll(Array(buffer.readableBytesView)) == [value])
    }

    @Test func lineBreaksInSimpleStringsCannotEndTheLine() {
        var buffer = ByteBuffer()
        RESPEncoder.write(.error("ERR a\r\nb"), into: &buffer)
        #expect(String(buffer: buffer) == "-ERR a  b\r\n")
    }
}
