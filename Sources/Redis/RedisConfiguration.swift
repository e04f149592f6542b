/// Where Redis is and how to talk to it: parsed from `redis://[[user]:password@]host[:port][/db]`, or built directly.
///
/// The password is kept for AUTH and never shown: `description` and the mirror (`dump`) leave it out, and no error
/// quotes the URL.
public struct RedisConfiguration: Sendable {
    /// A host name or an IP address (an IPv6 one without brackets).
    public var host: String
    /// 6379 unless the URL says otherwise.
    public var port: Int
    /// The ACL user for `AUTH user password`; nil authenticates as the default user (`AUTH password`).
    public var username: String?
    /// Sent with AUTH on every new connection; nil sends no AUTH.
    public var password: String?
    /// Chosen with SELECT on every new connection when not 0.
    public var database: Int
    /// Connections the client opens, lazily, and spreads commands over (1…256; 4 by default).
    public var poolSize: Int {
        didSet { poolSize = min(256, max(1, poolSize)) }
    }
    /// Longest wait for TCP to connect (5 s by default; kept within 1 ms…1 day); AUTH and SELECT then count as
    /// commands.
    public var connectTimeout: Duration
    /// Longest wait for a reply, counted from when the command was written (5 s by default; kept within 1 ms…1 day).
    /// When it passes, the connection is closed and every command waiting on it fails with `RedisError.timeout`.
    /// It is also what bounds a command whose task was cancelled: commands are not abandoned mid-flight.
    public var commandTimeout: Duration
    /// Bounds on replies; a reply past them closes its connection with `RedisError.protocolViolation`.
    public var limits: RESPLimits

    public init(host: String = "localhost", port: Int = 6379, username: String? = nil, password: String? = nil,
                database: Int = 0, poolSize: Int = 4, connectTimeout: Duration = .seconds(5),
                commandTimeout: Duration = .seconds(5), limits: RESPLimits = RESPLimits()) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.poolSize = min(256, max(1, poolSize))
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.limits = limits
    }

    /// Parses `redis://[[user]:password@]host[:port][/db]`. User and password may be percent-encoded (a password
    /// with `@`, `:` or `/` must be); the host may be a bracketed IPv6 address. `rediss://` (TLS) is refused.
    public init(url: String) throws(RedisError) {
        self.init()
        let text = url.trimmingSpaces
        let rest: Substring
        if text.hasPrefix("redis://") {
            rest = text.dropFirst("redis://".count)
        } else if text.hasPrefix("rediss://") {
            throw .invalidURL("TLS not supported (rediss://): use redis:// on a trusted network, or a TLS tunnel")
        } else if let colon = text.firstIndex(of: ":"), text[colon...].hasPrefix("://") {
            // Only the scheme is shown: what follows may hold a password.
            throw .invalidURL("unsupported scheme '\(text[..<colon])'")
        } else {
            throw .invalidURL("it does not start with redis://")
        }

        // The user info ends at the last '@', so that an unencoded '@' in a password still parses.
        var location = rest
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            location = rest[rest.index(after: at)...]
            guard let colon = userInfo.firstIndex(of: ":") else {
                throw .invalidURL("the user info has no ':' (write redis://user:password@host, or redis://:password@host)")
            }
            let user = try Self.percentDecoded(userInfo[..<colon], part: "user")
            let password = try Self.percentDecoded(userInfo[userInfo.index(after: colon)...], part: "password")
            username = user.isEmpty ? nil : user
            self.password = password.isEmpty ? nil : password
            if username != nil, self.password == nil {
                throw .invalidURL("user '\(user)' has no password")
            }
        }

        guard !location.contains("?"), !location.contains("#") else {
            throw .invalidURL("query parameters and fragments are not supported")
        }
        // host[:port][/db]
        var authority = location
        if let slash = location.firstIndex(of: "/") {
            authority = location[..<slash]
            let path = location[location.index(after: slash)...]
            if !path.isEmpty {
                guard path.allSatisfy(\.isASCIIDigit), let number = Int(path), number <= 1_000_000 else {
                    throw .invalidURL("the database '\(path)' is not a number (redis://host:port/0)")
                }
                database = number
            }
        }
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw .invalidURL("an IPv6 address lacks its ']'") }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw .invalidURL("unexpected text after the IPv6 address") }
                portText = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            portText = authority[authority.index(after: colon)...]
        } else {
            host = String(authority)
        }
        guard !host.isEmpty else { throw .invalidURL("the host is missing") }
        guard !host.contains(where: { $0 == " " || $0 == "/" || $0 == "@" }) else {
            throw .invalidURL("the host '\(host)' is malformed")
        }
        if let portText {
            guard portText.allSatisfy(\.isASCIIDigit), let number = Int(portText), (1...65535).contains(number) else {
                throw .invalidURL("the port '\(portText)' is not a number from 1 to 65535")
            }
            port = number
        }
    }

    private static func percentDecoded(_ text: Substring, part: String) throws(RedisError) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                // The text itself is not shown: it may be the password.
                throw .invalidURL("the \(part) has a malformed percent escape")
            }
            bytes.append(high << 4 | low)
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw .invalidURL("the \(part) is not valid UTF-8 once percent-decoded")
        }
        return decoded
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// `host:port`, IPv6 bracketed: how messages name the server.
    public var endpoint: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

extension RedisConfiguration: CustomStringConvertible, CustomReflectable {
    /// The URL with the password masked: `redis://user:***@host:port/db`.
    public var description: String {
        var userInfo = ""
        if password != nil { userInfo = "\(username ?? ""):***@" }
        return "redis://\(userInfo)\(endpoint)/\(database)"
    }

    /// Everything but the password, for `dump` and debuggers.
    public var customMirror: Mirror {
        Mirror(self, children: [
            "host": host, "port": port, "username": username as Any, "password": password == nil ? "nil" : "***",
            "database": database, "poolSize": poolSize, "connectTimeout": connectTimeout,
            "commandTimeout": commandTimeout, "limits": limits,
        ], displayStyle: .struct)
    }
}

extension StringProtocol {
    fileprivate var trimmingSpaces: Substring {
        let trimmed = drop(while: \.isWhitespace)
        var end = trimmed.endIndex
        while end > trimmed.startIndex, trimmed[trimmed.index(before: end)].isWhitespace {
            end = trimmed.index(before: end)
        }
        return Substring(trimmed[..<end])
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
