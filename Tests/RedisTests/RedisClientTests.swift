import Foundation
import NIOCore
@testable import Redis
import TestSupport
import Testing

/// Runs `body` against the Redis named by `SWITCHYARD_TEST_REDIS_URL`, or else a redis-server of its own, stopped after.
/// Keys are prefixed per test, so a shared server is fine.
func withRedis(_ body: (_ url: String) async throws -> Void) async throws {
    if let url = RedisServerProcess.environmentURL {
        try await body(url)
        return
    }
    try await withOwnRedis { server in try await body(server.url) }
}

/// Runs `body` with a redis-server of its own, always: for tests that kill connections, restart the server, block
/// it or need a password, which would disturb a shared one.
func withOwnRedis(password: String? = nil, _ body: (RedisServerProcess) async throws -> Void) async throws {
    let server = try await RedisServerProcess.start(password: password)
    do {
        try await body(server)
    } catch {
        await server.stop()
        throw error
    }
    await server.stop()
}

/// A client for `url`, closed after `body` whatever happens.
func withClient(_ url: String, poolSize: Int = 4, commandTimeout: Duration = .seconds(5),
                _ body: (RedisClient) async throws -> Void) async throws {
    let client = try RedisClient(url: url, poolSize: poolSize, commandTimeout: commandTimeout)
    do {
        try await body(client)
    } catch {
        await client.close()
        throw error
    }
    await client.close()
}

/// Waits until the client has seen every connection close (the EOFs reach the event loop a moment after the kill).
func waitUntilDisconnected(_ client: RedisClient) async throws {
    let deadline = ContinuousClock.now + .seconds(5)
    while client.activeConnectionCount > 0 {
        guard ContinuousClock.now < deadline else {
            Issue.record("the client still holds \(client.activeConnectionCount) open connections")
            return
        }
        try await Task.sleep(for: .milliseconds(10))
    }
}

/// A key no other test uses.
func uniqueKey(_ name: String = "k") -> String { "sy-test:\(UUID().uuidString):\(name)" }

@Suite struct RedisClientTests {
    @Test func pingEchoAndScriptLoad() async throws {
        try await withRedis { url in
            try await withClient(url) { client in
                try await client.ping()
                #expect(try await client.send(["ECHO", "hi there"]) == RESPValue(bulk: "hi there"))
                let script = RedisScript("return 'hello moon'")
                #expect(try await client.send(["SCRIPT", "LOAD", script.source]).stringValue == script.sha1)
            }
        }
    }

    @Test func binaryValuesRoundTrip() async throws {
        try await withRedis { url in
            try await withClient(url) { client in
                let key = uniqueKey()
                let everyByte = (0..<512).map { UInt8(truncatingIfNeeded: $0) } + [0, 0, 13, 10, 0]
                #expect(try await client.set(key, everyByte))
                #expect(try await client.get(key) == everyByte)
                #expect(try await client.getBuffer(key) == ByteBuffer(bytes: everyByte))

                var generator = SystemRandomNumberGenerator()
                let large = (0..<(1 << 20)).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
                try await client.set(key + ":large", large)
                #expect(try await client.get(key + ":large") == large)

                try await client.set(key + ":empty", [UInt8]())
                #expect(try await client.get(key + ":empty") == [])
                #expect(try await client.get(key + ":missing") == nil)
                #expect(try await client.del(key, key + ":large", key + ":empty", key + ":missing") == 3)
                #expect(try await client.get(key) == nil)
            }
        }
    }

    @Test func setOnlyIfAbsent() async throws {
        try await withRedis { url in
            try await withClient(url) { client in
                let key = uniqueKey()
                #expect(try await client.set(key, "first", onlyIfAbsent: true))
                #expect(try await client.set(key, "second", onlyIfAbsent: true) == false)
                #expect(try await client.get(key) == Array("first".utf8))
                #expect(try await client.set(key, "third"))
                #expect(try await client.get(key) == Array("third".utf8))
                try await client.del(key)
            }
        }
    }

    @Test func expiryExpires() async throws {
        try await withRedis { url in
            try await withClient(url) { client in
                let key = uniqueKey()
                let start = ContinuousClock.now
                try await client.set(key, "soon gone", expiresIn: .milliseconds(400))
                switch try await client.pttl(key) {
                case .expiresIn(let left): #expect(left > .zero && left <= .milliseconds(400))
                // On a loaded machine the key may be gone already; only if its time has passed.
                case .noKey: #expect(ContinuousClock.now - start >= .milliseconds(390))
                case .noExpiry: Issue.record("no expiry on \(key)")
                }
                #expect(try await client.get(key) != nil || ContinuousClock.now - start >= .milliseconds(390))
                while try await client.get(key) != nil {
                    #expect(ContinuousClock.now - start < .seconds(5), "the key did not expire")
                    try await Task.sleep(for: .milliseconds(20))
                }
                #expect(ContinuousClock.now - start >= .milliseconds(390))
                #expect(try await client.pttl(key) == .noKey)

                try await client.set(key, "kept")
                #expect(try await client.pttl(key) == .noExpiry)
                let asked = ContinuousClock.now
                #expect(try await client.pexpire(key, .seconds(60)))
                guard case .expiresIn(let later) = try await client.pttl(key) else {
                    Issue.record("PEXPIRE set no expiry")
                    return
                }
                // 60 s less the time between the two commands (a loaded machine may stall for many seconds).
                #expect(later <= .seconds(60))
                #expect(later >= .seconds(59) - (ContinuousClock.now - asked))
                #expect(try await client.pexpire(key + ":missing", .seconds(1)) == false)
                try await client.del(key)
            }
        }
    }

    @Test func concurrentIncrementsAreExact() async throws {
        try await withRedis { url in
            try await withClient(url) { client in
                let key = uniqueKey("counter")
                let results = try await withThrowingTaskGroup(of: Int64.self) { group in
                    for _ in 0..<200 {
                        group.addTask { try await client.incrBy(key) }
                    }
                    var all: [Int64] = []
                    for try await value in group { all.append(value) }
                    return all
                }
                #expect(results.sorted() == Array(1...200))
                #expect(try await client.send(["GET", key]).int64Value == 200)
                #expect(try await client.incrBy(key, -50) == 150)
                try await client.del(key)
            }
        }
    }

    @Test func pipeliningKeepsOrder() async throws {
        try await withRedis { url in
            try await withClient(url, poolSize: 1) { client in
                let key = uniqueKey()
                var commands: [[String]] = []
                for i in 0..<100 {
                    commands.append(["SET", key, "\(i)"])
                    commands.append(["GET", key])
                    commands.append(["INCR", key + ":n"])
                }
                commands.append(["LPUSH", key, "x"])   // WRONGTYPE: an error value in its place, not a throw
                let replies = try await client.pipeline(commands)
                #expect(replies.count == commands.count)
                for i in 0..<100 {
                    #expect(replies[3 * i] == .simpleString("OK"))
                    #expect(replies[3 * i + 1] == RESPValue(bulk: "\(i)"))
                    #expect(replies[3 * i + 2] == .integer(Int64(i + 1)))
                }
                guard case .error(let message) = replies.last else {
                    Issue.record("LPUSH on a string answered \(String(describing: replies.last))")
                    return
                }
                #expect(message.hasPrefix("WRONGTYPE"))

                // Many tasks on one connection at once: each gets its own reply.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for i in 0..<300 {
                        group.addTask {
                            let payload = String(repeating: "\(i),", count: i % 17 + 1)
                            let reply = try await client.send(["ECHO", payload])
                            #expect(reply == RESPValue(bulk: payload))
                        }
                    }
                    try await group.waitForAll()
                }
                try await client.del(key, key + ":n")
            }
        }
    }

    @Test func evalFallsBackToEvalOnNoScript() async throws {
        try await withRedis { url in
            try await withClient(url, poolSize: 2) { client in
                let key = uniqueKey("window")
                // A fixed-window counter, as a rate limiter would run it.
                let window = RedisScript("""
                    local count = redis.call('INCR', KEYS[1])
                    if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
                    return {count, redis.call('PTTL', KEYS[1])}
                    """)
                // Never loaded: EVALSHA answers NOSCRIPT, EVAL runs it and caches it.
                let first = try await client.eval(window, keys: [key], arguments: ["60000"])
                #expect(first.arrayValue?.first == .integer(1))
                #expect((first.arrayValue?.last?.int64Value ?? 0) > 59_000)
                #expect(try await client.send(["SCRIPT", "EXISTS", window.sha1]) == .array([.integer(1)]))
                #expect(try await client.eval(window, keys: [key], arguments: ["60000"]).arrayValue?.first == .integer(2))

                _ = try await client.send(["SCRIPT", "FLUSH"])
                #expect(try await client.send(["SCRIPT", "EXISTS", window.sha1]) == .array([.integer(0)]))
                #expect(try await client.eval(window, keys: [key], arguments: ["60000"]).arrayValue?.first == .integer(3))
                #expect(try await client.send(["SCRIPT", "EXISTS", window.sha1]) == .array([.integer(1)]))

                // Source strings work too; a script's own error is a server error.
                #expect(try await client.eval("return ARGV[1] .. ARGV[2]", arguments: ["a", "b"]) == RESPValue(bulk: "ab"))
                await #expect {
                    try await client.eval("return redis.error_reply('LIMITED too many')")
                } throws: { error in
                    (error as? RedisError)?.isServerError(code: "LIMITED") == true
                }
                try await client.del(key)
            }
        }
    }

    @Test func anErrorReplyThrowsAndTheConnectionStaysUsable() async throws {
        try await withRedis { url in
            try await withClient(url, poolSize: 1) { client in
                let id = try await client.send(["CLIENT", "ID"])
                await #expect {
                    try await client.send(["NOSUCHCOMMAND", "x"])
                } throws: { error in
                    guard case .server(let message) = error as? RedisError else { return false }
                    return message.hasPrefix("ERR unknown command")
                }
                let key = uniqueKey()
                try await client.set(key, "not a number")
                await #expect(throws: RedisError.self) { try await client.incrBy(key) }
                try await client.ping()
                #expect(try await client.send(["CLIENT", "ID"]) == id)
                try await client.del(key)
            }
        }
    }

    @Test func selectsTheDatabaseOfTheURL() async throws {
        try await withRedis { url in
            var configuration = try RedisConfiguration(url: url)
            configuration.database = 2
            let inTwo = RedisClient(configuration: configuration)
            configuration.database = 0
            let inZero = RedisClient(configuration: configuration)
            let key = uniqueKey()
            try await inTwo.set(key, "here")
            #expect(try await inTwo.get(key) == Array("here".utf8))
            #expect(try await inZero.get(key) == nil)
            try await inTwo.del(key)
            await inTwo.close()
            await inZero.close()
        }
    }

    @Test func reconnectsAfterTheServerKillsConnections() async throws {
        try await withOwnRedis { server in
            try await withClient(server.url, poolSize: 2) { client in
                let key = uniqueKey()
                #expect(try await client.incrBy(key) == 1)
                #expect(try await client.incrBy(key) == 2)   // both connections are open now
                let before = Set([try await client.send(["CLIENT", "ID"]), try await client.send(["CLIENT", "ID"])])

                try await withClient(server.url, poolSize: 1) { killer in
                    let killed = try await killer.send(["CLIENT", "KILL", "TYPE", "normal"])
                    #expect((killed.int64Value ?? 0) >= 2)
                }
                try await waitUntilDisconnected(client)

                #expect(try await client.incrBy(key) == 3)
                #expect(try await client.incrBy(key) == 4)
                let after = Set([try await client.send(["CLIENT", "ID"]), try await client.send(["CLIENT", "ID"])])
                #expect(after.isDisjoint(with: before))
            }
        }
    }

    @Test func reconnectsAfterTheServerRestarts() async throws {
        try await withOwnRedis { server in
            try await withClient(server.url, poolSize: 2) { client in
                let key = uniqueKey()
                try await client.set(key, "before")
                try await client.ping()
                #expect(client.activeConnectionCount == 2)
                try await server.restart()
                try await waitUntilDisconnected(client)

                // Nothing is persisted: the restarted server is empty, and the client works on new connections.
                #expect(try await client.get(key) == nil)
                try await client.set(key, "after")
                #expect(try await client.get(key) == Array("after".utf8))
                for _ in 0..<4 { try await client.ping() }
            }
        }
    }

    @Test func authenticatesWithAPassword() async throws {
        let password = "s3cret pass@/:x"
        try await withOwnRedis(password: password) { server in
            #expect(server.url.contains("%40"))
            try await withClient(server.url) { client in
                try await client.ping()
                let key = uniqueKey()
                try await client.set(key, "secret value")
                #expect(try await client.get(key) == Array("secret value".utf8))
            }
            // The default user by name (AUTH user password).
            var configuration = try RedisConfiguration(url: "redis://127.0.0.1:\(server.port)")
            configuration.username = "default"
            configuration.password = password
            let named = RedisClient(configuration: configuration)
            try await named.ping()
            await named.close()

            // A wrong password: a clear connection error that does not show it.
            let wrongPassword = "not-the-password-71"
            try await withClient("redis://:\(wrongPassword)@127.0.0.1:\(server.port)") { client in
                await #expect {
                    try await client.ping()
                } throws: { error in
                    let text = "\(error)"
                    guard case .connection = error as? RedisError else { return false }
                    return text.contains("authentication") && text.contains("WRONGPASS") && !text.contains(wrongPassword)
                }
            }
            // No password at all: Redis refuses the command, with a hint.
            try await withClient("redis://127.0.0.1:\(server.port)") { client in
                await #expect {
                    try await client.ping()
                } throws: { error in
                    (error as? RedisError)?.isServerError(code: "NOAUTH") == true && "\(error)".contains("redis://:PASSWORD@")
                }
            }
        }
    }

    @Test func aStuckCommandTimesOutAndTheClientRecovers() async throws {
        try await withOwnRedis { server in
            try await withClient(server.url, poolSize: 1, commandTimeout: .milliseconds(200)) { client in
                try await client.ping()
                try await withClient(server.url, poolSize: 1) { other in
                    // Redis holds every write command for 60 s: far longer than any test machine, however loaded,
                    // takes to see the 200 ms timeout fire. The write is answered only after the pause, so a
                    // `.timeout` (rather than the answer) is itself the proof that the client gave up first.
                    _ = try await other.send(["CLIENT", "PAUSE", "60000", "WRITE"])
                    let key = uniqueKey()
                    let start = ContinuousClock.now
                    await #expect(throws: RedisError.timeout) { _ = try await client.send(["SET", key, "v"]) }
                    #expect(ContinuousClock.now - start >= .milliseconds(190))
                    try await waitUntilDisconnected(client)   // the timeout closed the connection
                    // CLIENT UNPAUSE is not a write, so the pause does not hold it.
                    _ = try await other.send(["CLIENT", "UNPAUSE"])
                }
                // A new connection on the next command.
                try await client.ping()
                #expect(try await client.send(["SET", uniqueKey(), "w"]) == .simpleString("OK"))
            }
        }
    }

    @Test func anUnreachableServerIsAConnectionError() async throws {
        // A port that was just served and is now closed.
        let server = try await RedisServerProcess.start()
        let port = server.port
        await server.stop()
        try await withClient("redis://127.0.0.1:\(port)") { client in
            await #expect {
                try await client.ping()
            } throws: { error in
                guard case .connection(let message) = error as? RedisError else { return false }
                return message.contains("127.0.0.1:\(port)") && message.contains("refused")
            }
        }
    }

    @Test func aClosedClientRefusesCommands() async throws {
        try await withRedis { url in
            let client = try RedisClient(url: url)
            try await client.ping()
            await client.close()
            await #expect(throws: RedisError.closed) { try await client.ping() }
        }
    }
}
