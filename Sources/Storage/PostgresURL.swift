import Foundation
import PostgresNIO

/// A PostgreSQL connection URL, as libpq reads it (the subset that names one server):
/// `postgres://user:password@host:5432/dbname?sslmode=disable` or `postgresql://…`.
///
/// User, password and database name may be percent-encoded (a password with `@` or `/` must be: `%40`, `%2F`).
/// The port defaults to 5432, the user to the login name, the database to the user. Parameters:
/// `sslmode` (`disable`, `allow`, `prefer` — the default —, `require`, `verify-ca`, `verify-full`, meaning what they
/// mean to libpq: `prefer` and `require` encrypt without checking the certificate, `verify-ca` checks it against
/// the trusted roots, `verify-full` the host name too), `sslrootcert` (a PEM file of trusted roots; default: the
/// system's), `connect_timeout` (seconds) and `application_name`. Several hosts and Unix sockets are not supported.
/// Errors never repeat the password.
struct PostgresURL: Sendable, Hashable, CustomStringConvertible {
    enum SSLMode: String, Sendable, CaseIterable {
        case disable, allow, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    var user: String
    var password: String?
    var host: String
    var port: Int
    var database: String
    var sslMode: SSLMode = .prefer
    var sslRootCertificate: String?
    var connectTimeout: Int?
    var applicationName: String?

    static let supportedParameters = ["sslmode", "sslrootcert", "connect_timeout", "application_name"]

    /// `postgres://user@host:port/dbname`: the URL without its password, for logs and messages.
    var description: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return "postgres://\(Self.encode(user))@\(h):\(port)/\(Self.encode(database))"
    }

    init(parsing text: String, defaultUser: String = NSUserName()) throws {
        let text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let schemeEnd = text.range(of: "://"),
              ["postgres", "postgresql"].contains(text[..<schemeEnd.lowerBound].lowercased())
        else {
            throw StorageError.invalid("the database URL must start with postgres:// or postgresql:// (postgres://user:password@host:5432/dbname)")
        }
        var rest = Substring(text[schemeEnd.upperBound...])
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        var query: Substring = ""
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        var hostPort = rest
        var user: String?
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            hostPort = rest[rest.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                user = try Self.decode(userInfo[..<colon], "user name")
                password = try Self.decode(userInfo[userInfo.index(after: colon)...], "password")
            } else {
                user = try Self.decode(userInfo, "user name")
            }
        }
        guard !hostPort.contains(",") else {
            throw StorageError.invalid("the database URL names several hosts; give one: postgres://user:password@host:5432/dbname")
        }
        var portText: Substring?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else {
                throw StorageError.invalid("the database URL has an unclosed [ in its host")
            }
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let after = hostPort[hostPort.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw StorageError.invalid("the database URL has something other than :port after its host") }
                portText = after.dropFirst()
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = try Self.decode(hostPort[..<colon], "host")
            portText = hostPort[hostPort.index(after: colon)...]
        } else {
            host = try Self.decode(hostPort, "host")
        }
        guard !host.isEmpty else {
            throw StorageError.invalid("the database URL names no host (Unix sockets are not supported): postgres://user:password@host:5432/dbname")
        }
        if let portText {
            guard let p = Int(portText), (1...65535).contains(p) else {
                // Not echoed: in `postgres://user:secret` (no host) the "port" is the password.
                throw StorageError.invalid("the database URL's port is not a number from 1 to 65535 (postgres://user:password@host:5432/dbname)")
            }
            port = p
        } else {
            port = 5432
        }
        self.user = (user?.isEmpty == false ? user : nil) ?? defaultUser
        let name = try Self.decode(path, "database name")
        guard !name.contains("/") else { throw StorageError.invalid("the database URL's database name must not contain '/'") }
        database = name.isEmpty ? self.user : name

        for item in query.split(separator: "&") where !item.isEmpty {
            let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = try Self.decode(pair[0], "parameter")
            let value = pair.count > 1 ? try Self.decode(pair[1], "parameter \(key)") : ""
            switch key {
            case "sslmode":
                guard let mode = SSLMode(rawValue: value) else {
                    throw StorageError.invalid("sslmode '\(value)' in the database URL is not one of \(SSLMode.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                sslMode = mode
            case "sslrootcert":
                sslRootCertificate = value
            case "connect_timeout":
                guard let seconds = Int(value), seconds >= 0 else {
                    throw StorageError.invalid("connect_timeout '\(value)' in the database URL is not a whole number of seconds")
                }
                connectTimeout = seconds
            case "application_name":
                applicationName = value
            default:
                throw StorageError.invalid("the database URL parameter '\(key)' is not supported (supported: \(Self.supportedParameters.joined(separator: ", ")))")
            }
        }
    }

    /// Percent-decoding that says which part was malformed (never echoing it: it may be the password).
    private static func decode(_ part: Substring, _ what: String) throws -> String {
        guard let decoded = String(part).removingPercentEncoding else {
            throw StorageError.invalid("the database URL's \(what) has a malformed %-escape")
        }
        return decoded
    }

    private static func encode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    // MARK: postgres-nio settings

    /// TLS as `sslMode` asks.
    func tlsConfiguration() -> TLSConfiguration? {
        guard sslMode != .disable else { return nil }
        var tls = TLSConfiguration.makeClientConfiguration()
        switch sslMode {
        case .disable, .allow, .prefer, .require:
            // libpq checks the certificate for `require` only when a root certificate is given.
            tls.certificateVerification = sslMode == .require && sslRootCertificate != nil ? .noHostnameVerification : .none
        case .verifyCA:
            tls.certificateVerification = .noHostnameVerification
        case .verifyFull:
            tls.certificateVerification = .fullVerification
        }
        if let sslRootCertificate { tls.trustRoots = .file(sslRootCertificate) }
        return tls
    }

    /// Whether the connection must be encrypted (else TLS is tried and plain text accepted).
    var requiresTLS: Bool { [.require, .verifyCA, .verifyFull].contains(sslMode) }

    var startupParameters: [(String, String)] {
        applicationName.map { [("application_name", $0)] } ?? [("application_name", "switchyard")]
    }

    /// The pool's configuration.
    func clientConfiguration() -> PostgresClient.Configuration {
        let tls: PostgresClient.Configuration.TLS
        if let config = tlsConfiguration() {
            tls = requiresTLS ? .require(config) : .prefer(config)
        } else {
            tls = .disable
        }
        var configuration = PostgresClient.Configuration(host: host, port: port, username: user, password: password,
                                                         database: database, tls: tls)
        if let connectTimeout, connectTimeout > 0 { configuration.options.connectTimeout = .seconds(connectTimeout) }
        configuration.options.additionalStartupParameters = startupParameters
        return configuration
    }

    /// One connection's configuration (migrations run on one before the pool starts).
    func connectionConfiguration() throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        if let config = tlsConfiguration() {
            let context: NIOSSLContext
            do { context = try NIOSSLContext(configuration: config) } catch {
                throw StorageError.cannotOpen(path: description, reason: "TLS setup failed: \(error)")
            }
            tls = requiresTLS ? .require(context) : .prefer(context)
        } else {
            tls = .disable
        }
        var configuration = PostgresConnection.Configuration(host: host, port: port, username: user, password: password,
                                                             database: database, tls: tls)
        if let connectTimeout, connectTimeout > 0 { configuration.options.connectTimeout = .seconds(Int64(connectTimeout)) }
        configuration.options.additionalStartupParameters = startupParameters
        return configuration
    }
}
