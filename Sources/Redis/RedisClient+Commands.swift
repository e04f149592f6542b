import Crypto
import NIOCore

/// A Lua script with its SHA-1, computed once: hold it in a `static let` and run it with `RedisClient.eval`.
public struct RedisScript: Sendable, Hashable {
    public let source: String
    /// Lowercase hex SHA-1 of `source`, what EVALSHA and SCRIPT LOAD use.
    public let sha1: String

    public init(_ source: String) {
        self.source = source
        sha1 = Insecure.SHA1.hash(data: Array(source.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}

/// What `PTTL` says about a key.
public enum RedisExpiry: Sendable, Hashable {
    /// The key does not exist.
    case noKey
    /// The key exists and never expires.
    case noExpiry
    /// The key expires after this long.
    case expiresIn(Duration)
}

extension RedisClient {
    /// `PING`: succeeds when Redis answers PONG.
    public func ping() async throws(RedisError) {
        let reply = try await send(["PING"])
        guard reply.stringValue == "PONG" else { throw .protocolViolation("PING answered \(reply)") }
    }

    /// `GET`: the value's bytes, or nil when the key does not exist.
    public func get(_ key: String) async throws(RedisError) -> [UInt8]? {
        try await getBuffer(key).map { Array($0.readableBytesView) }
    }

    /// `GET`: the value as a buffer (no copy), or nil when the key does not exist.
    public func getBuffer(_ key: String) async throws(RedisError) -> ByteBuffer? {
        let reply = try await send(["GET", key])
        switch reply {
        case .null: return nil
        case .bulkString(let buffer): return buffer
        default: throw .protocolViolation("GET answered \(reply)")
        }
    }

    /// `SET key value [PX ms] [NX]`: true when the value was stored; false only when `onlyIfAbsent` and the key
    /// exists. `expiresIn` is rounded up to whole milliseconds; zero or negative is refused by Redis (`.server`).
    @discardableResult
    public func set(_ key: String, _ value: ByteBuffer, expiresIn: Duration? = nil,
                    onlyIfAbsent: Bool = false) async throws(RedisError) -> Bool {
        var arguments = [ByteBuffer(string: "SET"), ByteBuffer(string: key), value]
        if let expiresIn {
            arguments.append(ByteBuffer(string: "PX"))
            arguments.append(ByteBuffer(string: String(Self.milliseconds(expiresIn))))
        }
        if onlyIfAbsent { arguments.append(ByteBuffer(string: "NX")) }
        let reply = try await send(arguments)
        switch reply {
        case .simpleString("OK"): return true
        case .null: return false
        default: throw .protocolViolation("SET answered \(reply)")
        }
    }

    /// `SET` of bytes; see `set(_:_:expiresIn:onlyIfAbsent:)`.
    @discardableResult
    public func set(_ key: String, _ value: [UInt8], expiresIn: Duration? = nil,
                    onlyIfAbsent: Bool = false) async throws(RedisError) -> Bool {
        try await set(key, ByteBuffer(bytes: value), expiresIn: expiresIn, onlyIfAbsent: onlyIfAbsent)
    }

    /// `SET` of text (UTF-8); see `set(_:_:expiresIn:onlyIfAbsent:)`.
    @discardableResult
    public func set(_ key: String, _ value: String, expiresIn: Duration? = nil,
                    onlyIfAbsent: Bool = false) async throws(RedisError) -> Bool {
        try await set(key, ByteBuffer(string: value), expiresIn: expiresIn, onlyIfAbsent: onlyIfAbsent)
    }

    /// `DEL`: how many of `keys` existed and were removed.
    @discardableResult
    public func del(_ keys: [String]) async throws(RedisError) -> Int {
        guard !keys.isEmpty else { return 0 }
        return Int(try await integer(["DEL"] + keys))
    }

    /// `DEL` of one or more keys.
    @discardableResult
    public func del(_ key: String, _ more: String...) async throws(RedisError) -> Int {
        try await del([key] + more)
    }

    /// `INCRBY`: the value after adding `amount` (a missing key counts as 0). A value that is not an integer, or
    /// an overflow, is `.server`.
    @discardableResult
    public func incrBy(_ key: String, _ amount: Int64 = 1) async throws(RedisError) -> Int64 {
        try await integer(["INCRBY", key, String(amount)])
    }

    /// `PEXPIRE`: true when the key exists and now expires after `duration` (rounded up to whole milliseconds).
    @discardableResult
    public func pexpire(_ key: String, _ duration: Duration) async throws(RedisError) -> Bool {
        try await integer(["PEXPIRE", key, String(Self.milliseconds(duration))]) == 1
    }

    /// `PTTL`: whether the key exists and when it expires.
    public func pttl(_ key: String) async throws(RedisError) -> RedisExpiry {
        switch try await integer(["PTTL", key]) {
        case -2: return .noKey
        case -1: return .noExpiry
        case let milliseconds where milliseconds >= 0: return .expiresIn(.milliseconds(milliseconds))
        case let other: throw .protocolViolation("PTTL answered \(other)")
        }
    }

    /// Runs `script` with `EVALSHA`, and with `EVAL` (which also caches it in Redis) when Redis answers NOSCRIPT: it
    /// has not seen the script yet, or was restarted, or `SCRIPT FLUSH` ran. Errors the script raises are `.server`.
    public func eval(_ script: RedisScript, keys: [String] = [], arguments: [String] = []) async throws(RedisError) -> RESPValue {
        let tail = [String(keys.count)] + keys + arguments
        do {
            return try await send(["EVALSHA", script.sha1] + tail)
        } catch let error where error.isServerError(code: "NOSCRIPT") {
            return try await send(["EVAL", script.source] + tail)
        }
    }

    /// `eval` of a script given as source (hashed on each call; prefer a stored `RedisScript`).
    public func eval(_ source: String, keys: [String] = [], arguments: [String] = []) async throws(RedisError) -> RESPValue {
        try await eval(RedisScript(source), keys: keys, arguments: arguments)
    }

    private func integer(_ arguments: [String]) async throws(RedisError) -> Int64 {
        let reply = try await send(arguments)
        guard case .integer(let value) = reply else { throw .protocolViolation("\(arguments[0]) answered \(reply)") }
        return value
    }

    /// Whole milliseconds, rounded up, clamped to what Redis accepts.
    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        if overflow { return seconds < 0 ? Int64.min / 2 : Int64.max / 2 }
        let part = attoseconds / 1_000_000_000_000_000
        let rest = attoseconds % 1_000_000_000_000_000
        return whole + part + (rest > 0 ? 1 : 0)
    }
}
