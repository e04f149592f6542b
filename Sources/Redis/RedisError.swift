/// Everything that can go wrong talking to Redis, with a message fit for a user.
///
/// No case ever carries the password of the configured URL: messages name the host, the port and the user only.
public enum RedisError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Redis answered with an error reply (`-ERR …`, `-WRONGTYPE …`, `-NOSCRIPT …`); the connection stays usable.
    case server(String)
    /// The connection could not be made, was refused (AUTH, SELECT), or was lost with commands in flight.
    case connection(String)
    /// The peer sent something that is not RESP2, or broke a bound of `RESPLimits`; the connection was closed.
    case protocolViolation(String)
    /// No answer within the connect or the command timeout; the connection was closed.
    case timeout
    /// The Redis URL cannot be used (the message says which part and why).
    case invalidURL(String)
    /// The client or the connection was closed by its owner.
    case closed

    public var description: String {
        switch self {
        case .server(let message):
            if message.hasPrefix("NOAUTH") {
                return "Redis error: \(message) — put the password in the URL: redis://:PASSWORD@host:port"
            }
            if message.hasPrefix("WRONGPASS") {
                return "Redis error: \(message) — check the user and password in the Redis URL"
            }
            return "Redis error: \(message)"
        case .connection(let message):
            return "Redis connection error: \(message)"
        case .protocolViolation(let message):
            return "Redis protocol violation: \(message) (the connection was closed)"
        case .timeout:
            return "Redis did not answer in time (the connection was closed and is reopened on the next command)"
        case .invalidURL(let message):
            return "invalid Redis URL: \(message); expected redis://[[user]:password@]host[:port][/db]"
        case .closed:
            return "the Redis client was closed"
        }
    }

    /// True for an error reply whose code is `code` (`NOSCRIPT`, `WRONGTYPE`, …).
    public func isServerError(code: String) -> Bool {
        guard case .server(let message) = self, message.hasPrefix(code) else { return false }
        return message.count == code.count || message.dropFirst(code.count).first == " "
    }
}
