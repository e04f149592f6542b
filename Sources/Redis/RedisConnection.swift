import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One TCP connection to Redis: a NIO channel with the RESP decoder and the command handler.
///
/// Commands are pipelined: any number of tasks may send at once, each command is written at once, and replies are
/// matched to commands in order. Blocking commands (BLPOP, WAIT, …) and pub/sub do not belong here: they would hold
/// up every command behind them until the command timeout closes the connection.
///
/// When the channel drops, every command waiting on it fails with `RedisError.connection` (or `.timeout`, or
/// `.protocolViolation`, whichever closed it); a closed connection stays closed, and `RedisClient` opens a new one.
public final class RedisConnection: Sendable {
    let channel: any Channel
    /// `host:port`, for messages.
    public let endpoint: String

    private init(channel: any Channel, endpoint: String) {
        self.channel = channel
        self.endpoint = endpoint
    }

    /// False once the channel has closed, for whatever reason.
    public var isActive: Bool { channel.isActive }

    /// Connects, then sends AUTH (when the configuration has a password) and SELECT (when its database is not 0).
    ///
    /// TCP gets `connectTimeout`; AUTH and SELECT each get `commandTimeout`. A refused AUTH or SELECT closes the
    /// connection and throws `.connection` with Redis's reason (never the password).
    public static func connect(
        configuration: RedisConfiguration,
        on eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next()
    ) async throws(RedisError) -> RedisConnection {
        let endpoint = configuration.endpoint
        let limits = configuration.limits
        let commandTimeout = TimeAmount(clampedTimeout(configuration.commandTimeout))
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(TimeAmount(clampedTimeout(configuration.connectTimeout)))
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let decoder = ByteToMessageHandler(RESPDecoder(limits: limits))
                    let handler = RedisCommandHandler(commandTimeout: commandTimeout, endpoint: endpoint)
                    try channel.pipeline.syncOperations.addHandler(decoder)
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: configuration.host, port: configuration.port).get()
        } catch {
            if case ChannelError.connectTimeout = error { throw .timeout }
            throw .connection("cannot connect to \(endpoint): \(describeNetworkError(error))")
        }
        let connection = RedisConnection(channel: channel, endpoint: endpoint)
        let who = configuration.username.map { " as '\($0)'" } ?? ""
        var step = "authentication\(who)"
        do throws(RedisError) {
            if let password = configuration.password {
                var arguments = ["AUTH"]
                if let user = configuration.username { arguments.append(user) }
                arguments.append(password)
                let reply = try await connection.send(arguments.map { ByteBuffer(string: $0) })
                guard reply == .simpleString("OK") else { throw .protocolViolation("AUTH answered \(reply)") }
            }
            if configuration.database != 0 {
                step = "SELECT \(configuration.database)"
                _ = try await connection.send(["SELECT", "\(configuration.database)"].map { ByteBuffer(string: $0) })
            }
        } catch {
            connection.channel.close(promise: nil)
            if case .server(let message) = error { throw .connection("\(step) at \(endpoint) failed: \(message)") }
            throw error
        }
        return connection
    }

    /// Sends one command and returns its reply; an error reply throws `RedisError.server` and leaves the connection
    /// usable.
    public func send(_ arguments: [ByteBuffer]) async throws(RedisError) -> RESPValue {
        let reply = try await requestOrThrow(RESPEncoder.command(arguments), count: 1)[0]
        if case .error(let message) = reply { throw .server(message) }
        return reply
    }

    /// Writes all `commands` in one go and returns their replies in order; error replies are `.error` values here,
    /// not thrown.
    public func pipeline(_ commands: [[ByteBuffer]]) async throws(RedisError) -> [RESPValue] {
        guard !commands.isEmpty else { return [] }
        var bytes = ByteBuffer()
        for command in commands { RESPEncoder.writeCommand(command, into: &bytes) }
        return try await requestOrThrow(bytes, count: commands.count)
    }

    /// Closes once every command already sent has its reply (bounded by the command timeout); commands sent after
    /// this fail with `.closed`.
    public func close() async {
        channel.triggerUserOutboundEvent(RedisGracefulClose(), promise: nil)
        try? await channel.closeFuture.get()
    }

    /// Closes now; waiting commands fail with `.connection`.
    func closeNow() {
        channel.close(promise: nil)
    }

    /// Why a request failed: either it was never written (and may go to another connection), or it was.
    enum RequestFailure: Error {
        case notSent(RedisError)
        case failed(RedisError)

        var error: RedisError {
            switch self {
            case .notSent(let error), .failed(let error): return error
            }
        }
    }

    private func requestOrThrow(_ bytes: ByteBuffer, count: Int) async throws(RedisError) -> [RESPValue] {
        do {
            return try await request(bytes, count: count)
        } catch {
            throw error.error
        }
    }

    /// Writes `bytes`, which hold `count` encoded commands, and waits for their `count` replies.
    func request(_ bytes: ByteBuffer, count: Int) async throws(RequestFailure) -> [RESPValue] {
        guard channel.isActive else { throw .notSent(.connection("the connection to \(endpoint) was closed")) }
        let loop = channel.eventLoop
        let promises = (0..<count).map { _ in loop.makePromise(of: RESPValue.self) }
        let endpoint = self.endpoint
        channel.writeAndFlush(RedisRequest(bytes: bytes, promises: promises)).whenFailure { error in
            // Completing a promise twice keeps the first result: the handler's, when it saw the write.
            let failure: any Error
            switch error {
            case let notSent as RedisNotSent: failure = notSent
            case let redisError as RedisError: failure = redisError
            case ChannelError.ioOnClosedChannel:
                failure = RedisNotSent(reason: .connection("the connection to \(endpoint) was closed"))
            default: failure = RedisError.connection("\(endpoint): \(describeNetworkError(error))")
            }
            promises.forEach { $0.fail(failure) }
        }
        var replies: [RESPValue] = []
        replies.reserveCapacity(count)
        for promise in promises {
            do {
                replies.append(try await promise.futureResult.get())
            } catch let notSent as RedisNotSent {
                throw .notSent(notSent.reason)
            } catch let redisError as RedisError {
                throw .failed(redisError)
            } catch {
                throw .failed(.connection("\(endpoint): \(describeNetworkError(error))"))
            }
        }
        return replies
    }
}

extension RedisConnection {
    /// Sends one command of text arguments; see `send(_:)`.
    public func send(_ arguments: [String]) async throws(RedisError) -> RESPValue {
        try await send(arguments.map { ByteBuffer(string: $0) })
    }
}

/// Timeouts are kept between 1 ms and a day.
func clampedTimeout(_ timeout: Duration) -> Duration {
    min(max(timeout, .milliseconds(1)), .seconds(86_400))
}

/// A short reason for a socket-level error: "Connection refused", not the error's full dump.
func describeNetworkError(_ error: any Error) -> String {
    switch error {
    case let io as IOError:
        return String(cString: strerror(io.errnoCode))
    case let connection as NIOConnectionError:
        if let first = connection.connectionErrors.first { return describeNetworkError(first.error) }
        if connection.dnsAError != nil || connection.dnsAAAAError != nil { return "cannot resolve \(connection.host)" }
        return "no address found for \(connection.host)"
    case let channel as ChannelError:
        switch channel {
        case .connectTimeout: return "connect timed out"
        case .ioOnClosedChannel, .alreadyClosed, .eof: return "connection closed"
        default: return "\(channel)"
        }
    default:
        return "\(error)"
    }
}
