import NIOCore
import NIOPosix
import Synchronization

/// The handle users hold: a small pool of pipelined connections to one Redis, safe to share across tasks.
///
/// Connections open lazily, on the first commands that need them, up to `poolSize`; commands are spread over them in
/// turn, and many commands share one connection at a time (pipelining), so the pool is small. A slot whose connection
/// was lost (server restart, `CLIENT KILL`, timeout, protocol error) opens a new one on the next command that lands
/// there. A command whose connection turns out to be closed before it was written is sent once more on another
/// one; a command that was written when its connection dropped fails with `.connection`, since it may have run.
/// Connecting is bounded: at most one attempt per slot at a time, commands for that slot wait for it.
///
/// Speaks RESP2 without TLS. Blocking commands (BLPOP, WAIT, …), MULTI across calls and pub/sub do not fit a shared
/// pipelined connection and are not supported; a script (`eval`) is the way to run several commands atomically.
public final class RedisClient: Sendable {
    public let configuration: RedisConfiguration
    private let eventLoopGroup: any EventLoopGroup
    private let pool: Mutex<Pool>

    private typealias Opening = Task<Result<RedisConnection, RedisError>, Never>

    private enum Slot {
        case idle
        case connecting(id: Int, Opening)
        case ready(RedisConnection)
    }

    private struct Pool {
        var slots: [Slot]
        var next = 0
        var nextID = 0
        var closed = false
    }

    /// A client for `configuration`; nothing connects until the first command.
    public init(configuration: RedisConfiguration,
                eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        pool = Mutex(Pool(slots: Array(repeating: .idle, count: max(1, configuration.poolSize))))
    }

    /// A client for `redis://[[user]:password@]host[:port][/db]`, with the pool size and timeouts given.
    public convenience init(url: String, poolSize: Int = 4, connectTimeout: Duration = .seconds(5),
                            commandTimeout: Duration = .seconds(5)) throws(RedisError) {
        var configuration = try RedisConfiguration(url: url)
        configuration.poolSize = poolSize
        configuration.connectTimeout = connectTimeout
        configuration.commandTimeout = commandTimeout
        self.init(configuration: configuration)
    }

    deinit {
        // Without close(), connections still open are dropped here (their channels would otherwise stay open).
        pool.withLock { pool in
            for case .ready(let connection) in pool.slots { connection.closeNow() }
        }
    }

    // MARK: Commands

    /// Sends one command and returns its reply. An error reply throws `.server`; the connection stays usable.
    public func send(_ arguments: [ByteBuffer]) async throws(RedisError) -> RESPValue {
        let reply = try await execute(RESPEncoder.command(arguments), count: 1)[0]
        if case .error(let message) = reply { throw .server(message) }
        return reply
    }

    /// Sends one command of text arguments (UTF-8); see `send(_:)`.
    public func send(_ arguments: [String]) async throws(RedisError) -> RESPValue {
        try await send(arguments.map { ByteBuffer(string: $0) })
    }

    /// Sends one command of binary arguments; see `send(_:)`.
    public func send(bytes arguments: [[UInt8]]) async throws(RedisError) -> RESPValue {
        try await send(arguments.map { ByteBuffer(bytes: $0) })
    }

    /// Writes all `commands` at once on one connection and returns their replies in order. Error replies are
    /// `.error` values in the result, not thrown; a lost connection throws.
    public func pipeline(_ commands: [[ByteBuffer]]) async throws(RedisError) -> [RESPValue] {
        guard !commands.isEmpty else { return [] }
        var bytes = ByteBuffer()
        for command in commands { RESPEncoder.writeCommand(command, into: &bytes) }
        return try await execute(bytes, count: commands.count)
    }

    /// `pipeline(_:)` with text arguments.
    public func pipeline(_ commands: [[String]]) async throws(RedisError) -> [RESPValue] {
        try await pipeline(commands.map { $0.map { ByteBuffer(string: $0) } })
    }

    /// Closes every connection once its commands are answered (bounded by the command timeout). Commands sent
    /// after this, or still connecting, fail with `.closed`.
    public func close() async {
        let slots = pool.withLock { pool in
            pool.closed = true
            let slots = pool.slots
            pool.slots = Array(repeating: .idle, count: pool.slots.count)
            return slots
        }
        for slot in slots {
            switch slot {
            case .idle: break
            case .ready(let connection): await connection.close()
            case .connecting(_, let opening): _ = await opening.value   // it closes what it opens, seeing `closed`
            }
        }
    }

    // MARK: The pool

    /// Connections open and not known to be lost (for tests and diagnostics).
    var activeConnectionCount: Int {
        pool.withLock { pool in
            pool.slots.reduce(0) { count, slot in
                if case .ready(let connection) = slot, connection.isActive { return count + 1 }
                return count
            }
        }
    }

    /// Sends encoded commands on the next connection; once more on another if that one was closed before writing.
    private func execute(_ bytes: ByteBuffer, count: Int) async throws(RedisError) -> [RESPValue] {
        var attempts = 0
        while true {
            let connection = try await nextConnection()
            do {
                return try await connection.request(bytes, count: count)
            } catch {
                switch error {
                case .notSent(let reason):
                    attempts += 1
                    if attempts >= 2 { throw reason }
                case .failed(let reason):
                    throw reason
                }
            }
        }
    }

    private enum Pick {
        case use(RedisConnection)
        case wait(Opening)
        case closed
    }

    /// The connection of the next slot in turn, opened first when the slot has none or lost it.
    private func nextConnection() async throws(RedisError) -> RedisConnection {
        let pick = pool.withLock { pool -> Pick in
            guard !pool.closed else { return .closed }
            let index = pool.next % pool.slots.count
            pool.next = (pool.next + 1) % pool.slots.count
            switch pool.slots[index] {
            case .ready(let connection) where connection.isActive:
                return .use(connection)
            case .connecting(_, let opening):
                return .wait(opening)
            case .ready(let lost):
                lost.closeNow()
                fallthrough
            case .idle:
                let id = pool.nextID
                pool.nextID += 1
                let opening = Opening { await self.open(slot: index, id: id) }
                pool.slots[index] = .connecting(id: id, opening)
                return .wait(opening)
            }
        }
        switch pick {
        case .use(let connection): return connection
        case .closed: throw .closed
        case .wait(let opening): return try await opening.value.get()
        }
    }

    /// Connects for slot `index` and puts the connection there, unless the client was closed meanwhile.
    private func open(slot index: Int, id: Int) async -> Result<RedisConnection, RedisError> {
        let result: Result<RedisConnection, RedisError>
        do {
            result = .success(try await RedisConnection.connect(configuration: configuration, on: eventLoopGroup.next()))
        } catch {
            result = .failure(error)
        }
        let orphan = pool.withLock { pool -> RedisConnection? in
            let current: Bool
            if case .connecting(let slotID, _) = pool.slots[index], slotID == id { current = true } else { current = false }
            switch result {
            case .success(let connection):
                guard current, !pool.closed else { return connection }
                pool.slots[index] = .ready(connection)
                return nil
            case .failure:
                // The next command for this slot tries again.
                if current { pool.slots[index] = .idle }
                return nil
            }
        }
        if let orphan {
            await orphan.close()
            return .failure(.closed)
        }
        return result
    }
}
