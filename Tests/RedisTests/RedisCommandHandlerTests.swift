import NIOCore
import NIOEmbedded
@testable import Redis
import Synchronization
import Testing

/// The result of a future, once it has one (callbacks run inline on an embedded loop).
final class Outcome: Sendable {
    private let state = Mutex<Result<RESPValue, any Error>?>(nil)

    init(_ future: EventLoopFuture<RESPValue>) {
        future.whenComplete { result in self.state.withLock { $0 = result } }
    }

    var result: Result<RESPValue, any Error>? { state.withLock { $0 } }
    var value: RESPValue? { try? result?.get() }
    var error: RedisError? {
        guard case .failure(let error) = result else { return nil }
        return error as? RedisError
    }
}

/// Drives the decoder and the command handler on an embedded channel: no sockets, virtual time.
@Suite struct RedisCommandHandlerTests {
    let channel = EmbeddedChannel()

    init() throws {
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPDecoder(limits: RESPLimits(maxBulkLength: 100))))
        try channel.pipeline.syncOperations.addHandler(RedisCommandHandler(commandTimeout: .seconds(2), endpoint: "redis.test:6379"))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 6379)).wait()
    }

    /// Writes one command, returning what will become of its reply.
    func send(_ arguments: String...) throws -> Outcome {
        let promise = channel.embeddedEventLoop.makePromise(of: RESPValue.self)
        let outcome = Outcome(promise.futureResult)
        channel.writeAndFlush(RedisRequest(bytes: RESPEncoder.command(arguments.map { ByteBuffer(string: $0) }),
                                           promises: [promise]), promise: nil)
        return outcome
    }

    func written() throws -> String {
        var all = ByteBuffer()
        while var chunk = try channel.readOutbound(as: ByteBuffer.self) { all.writeBuffer(&chunk) }
        return String(buffer: all)
    }

    @Test func commandsArePipelinedAndRepliesMatchedInOrder() throws {
        let first = try send("ECHO", "a")
        let second = try send("INCR", "n")
        let third = try send("GET", "missing")
        // All three are on the wire before any reply.
        #expect(try written() == "*2\r\n$4\r\nECHO\r\n$1\r\na\r\n*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n*2\r\n$3\r\nGET\r\n$7\r\nmissing\r\n")
        #expect(first.result == nil)

        // Replies split across reads, and two in one read.
        try channel.writeInbound(ByteBuffer(string: "$1\r\n"))
        #expect(first.result == nil)
        try channel.writeInbound(ByteBuffer(string: "a\r\n:7\r\n$-1"))
        #expect(first.value == RESPValue(bulk: "a"))
        #expect(second.value == .integer(7))
        #expect(third.result == nil)
        try channel.writeInbound(ByteBuffer(string: "\r\n"))
        #expect(third.value == .null)
        #expect(channel.isActive)
    }

    @Test func anErrorReplyIsAValueAndTheConnectionStays() throws {
        let failing = try send("NOPE")
        let next = try send("PING")
        try channel.writeInbound(ByteBuffer(string: "-ERR unknown command 'NOPE'\r\n+PONG\r\n"))
        #expect(failing.value == .error("ERR unknown command 'NOPE'"))
        #expect(next.value == .simpleString("PONG"))
        #expect(channel.isActive)
    }

    @Test func aProtocolViolationFailsEveryWaitingCommandAndCloses() throws {
        let first = try send("GET", "a")
        let second = try send("GET", "b")
        _ = try? channel.writeInbound(ByteBuffer(string: "$101\r\n"))
        #expect(first.error == .protocolViolation("a bulk string of 101 bytes exceeds the limit of 100 bytes"))
        #expect(second.error == first.error)
        #expect(!channel.isActive)
    }

    @Test func anUnsolicitedReplyCloses() throws {
        _ = try? channel.writeInbound(ByteBuffer(string: "+HELLO\r\n"))
        #expect(!channel.isActive)
    }

    @Test func theChannelDroppingFailsWaitingCommands() throws {
        let waiting = try send("GET", "a")
        channel.pipeline.fireChannelInactive()
        #expect(waiting.error == .connection("the connection to redis.test:6379 was closed"))
        // A command written afterwards was never sent, so it may go elsewhere.
        let promise = channel.embeddedEventLoop.makePromise(of: RESPValue.self)
        channel.write(RedisRequest(bytes: ByteBuffer(string: "x"), promises: [promise]), promise: nil)
        #expect(throws: RedisNotSent.self) { try promise.futureResult.wait() }
    }

    @Test func aStuckReplyTimesOutEveryCommandAndCloses() throws {
        let first = try send("GET", "a")
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        let second = try send("GET", "b")
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(999))
        #expect(first.result == nil)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(2))
        #expect(first.error == .timeout)
        #expect(second.error == .timeout)
        #expect(!channel.isActive)
    }

    @Test func answeredCommandsDoNotTimeOut() throws {
        for round in 0..<5 {
            let outcome = try send("PING")
            channel.embeddedEventLoop.advanceTime(by: .milliseconds(1500))
            try channel.writeInbound(ByteBuffer(string: "+PONG\r\n"))
            #expect(outcome.value == .simpleString("PONG"), "round \(round)")
        }
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        #expect(channel.isActive)
    }

    @Test func gracefulCloseWaitsForReplies() throws {
        let waiting = try send("GET", "a")
        channel.pipeline.triggerUserOutboundEvent(RedisGracefulClose(), promise: nil)
        #expect(channel.isActive)
        let late = try send("GET", "b")
        #expect(late.error == .closed)
        try channel.writeInbound(ByteBuffer(string: "$1\r\nx\r\n"))
        #expect(waiting.value == RESPValue(bulk: "x"))
        #expect(!channel.isActive)
    }
}
