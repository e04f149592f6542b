import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A PostgreSQL server for tests, and a fresh database on it per test.
///
/// `SWITCHYARD_TEST_POSTGRES_URL` (a `postgres://` URL whose user may create databases) names a running server.
/// Without it the first caller starts a throwaway one — `initdb` into a temporary directory, `postgres` on a free
/// loopback port with trust authentication and durability off (it is thrown away) — which stops, and its directory
/// goes, once this test process has exited. As root (postgres refuses to run as root) the server runs as the
/// `postgres` system user. Without PostgreSQL installed, `server()` throws "PostgreSQL not found: run `make deps`".
/// Databases are made and dropped with `psql`, so this needs no Swift client.
public actor TestPostgres {
    public static let shared = TestPostgres()

    /// The environment variable naming an existing server.
    public static let environmentVariable = "SWITCHYARD_TEST_POSTGRES_URL"

    public enum Failure: Error, CustomStringConvertible {
        case notInstalled(String)
        case startFailed(String)
        case commandFailed(String)

        public var description: String {
            switch self {
            case .notInstalled(let why): return "PostgreSQL not found: run `make deps` (\(why))"
            case .startFailed(let why): return "the test PostgreSQL server did not start: \(why)"
            case .commandFailed(let why): return why
            }
        }
    }

    /// A running server.
    public struct Server: Sendable {
        /// A URL on which databases can be created (the `postgres` database of the throwaway server).
        public let adminURL: String
        let psql: String

        /// A URL for database `name` on this server, with `password` in place of the admin URL's, if given.
        public func url(database name: String, password: String? = nil) -> String {
            var components = URLComponents(string: adminURL) ?? URLComponents()
            components.path = "/" + name
            if let password { components.password = password }
            components.query = nil
            return components.string ?? adminURL
        }

        /// Host and port, as the admin URL has them.
        public var hostAndPort: (host: String, port: Int) {
            let components = URLComponents(string: adminURL)
            return (components?.host ?? "127.0.0.1", components?.port ?? 5432)
        }

        /// Creates an empty database with a fresh name; returns its URL.
        public func createDatabase() async throws -> String {
            let name = "sy_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20)
            try await run("CREATE DATABASE \(name)")
            return url(database: String(name))
        }

        /// Drops the database `url` names, closing whatever is still connected to it.
        public func dropDatabase(_ url: String) async throws {
            guard let name = URLComponents(string: url)?.path.dropFirst(), !name.isEmpty else { return }
            try await run("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
        }

        /// Runs `sql` with psql on `url` (default: the admin URL); returns its unaligned output.
        @discardableResult
        public func run(_ sql: String, on url: String? = nil) async throws -> String {
            let (status, output) = try await TestPostgres.execute(psql, ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                                                                         "-d", url ?? adminURL, "-c", sql],
                                                                  environment: ["PGCONNECT_TIMEOUT": "10"])
            guard status == 0 else {
                throw Failure.commandFailed("psql failed (\(status)) running \(sql): \(output.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
            return output
        }
    }

    private var starting: Task<Server, any Error>?

    /// The server, started on first use.
    public func server() async throws -> Server {
        if let starting { return try await starting.value }
        let task = Task { try await Self.start() }
        starting = task
        return try await task.value
    }

    // MARK: Starting one

    private static func start() async throws -> Server {
        let environment = ProcessInfo.processInfo.environment
        if let url = environment[environmentVariable], !url.isEmpty {
            guard let psql = findPSQL(in: nil) else {
                throw Failure.notInstalled("\(environmentVariable) is set, but psql is not installed")
            }
            let server = Server(adminURL: url, psql: psql)
            try await server.run("SELECT 1")
            return server
        }
        guard let bin = binDirectory(), let psql = findPSQL(in: bin) else {
            throw Failure.notInstalled("no initdb and postgres in /usr/lib/postgresql/*/bin or on PATH; or set \(environmentVariable)")
        }

        // postgres will not run as root: then it runs as the `postgres` user, in a directory that user owns.
        var prefix: [String] = []
        let directory: URL
        var owner: (uid_t, gid_t)?
        if getuid() == 0 {
            guard let entry = getpwnam("postgres") else {
                throw Failure.notInstalled("running as root needs the postgres system user, which the postgresql package creates")
            }
            owner = (entry.pointee.pw_uid, entry.pointee.pw_gid)
            directory = URL(fileURLWithPath: "/tmp/switchyard-pg-\(UUID().uuidString)", isDirectory: true)
            if FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") {
                prefix = ["/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
            } else {
                prefix = ["/usr/sbin/runuser", "-u", "postgres", "--"]
            }
        } else {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchyard-pg-\(UUID().uuidString)", isDirectory: true)
        }
        let data = directory.appendingPathComponent("data").path
        let socket = directory.appendingPathComponent("sock").path
        let log = directory.appendingPathComponent("postgres.log").path
        for path in [directory.path, socket] {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            if let (uid, gid) = owner, chown(path, uid, gid) != 0 {
                throw Failure.startFailed("cannot hand \(path) to the postgres user (errno \(errno))")
            }
        }

        let initdb = prefix + ["\(bin)/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                               "--locale=C", "--no-sync", "--no-instructions"]
        let (status, output) = try await execute(initdb[0], Array(initdb.dropFirst()))
        guard status == 0 else { throw Failure.startFailed("initdb failed (\(status)): \(output)") }

        var lastFailure = ""
        for _ in 0..<3 {
            let port = try freePort()
            let command = prefix + ["\(bin)/postgres", "-D", data, "-p", "\(port)", "-k", socket,
                                    "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                                    "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                                    "-c", "max_connections=300", "-c", "shared_buffers=32MB"]
            let process = Process()
            process.executableURL = URL(fileURLWithPath: command[0])
            process.arguments = Array(command.dropFirst())
            // A directory the postgres user can read (the checkout may be in root's home).
            process.currentDirectoryURL = FileManager.default.temporaryDirectory
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            let logHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            process.standardOutput = logHandle
            process.standardError = logHandle
            process.standardInput = FileHandle.nullDevice
            try process.run()
            try? logHandle.close()
            watch(pid: process.processIdentifier, directory: directory.path)

            let server = Server(adminURL: "postgres://postgres@127.0.0.1:\(port)/postgres", psql: psql)
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline && process.isRunning {
                if (try? await server.run("SELECT 1")) != nil { return server }
                try await Task.sleep(for: .milliseconds(100))
            }
            lastFailure = (try? String(contentsOfFile: log, encoding: .utf8)) ?? "no log"
            if process.isRunning { process.interrupt() }
            guard lastFailure.contains("could not bind") || lastFailure.contains("already in use") else { break }
        }
        throw Failure.startFailed(String(lastFailure.suffix(2000)))
    }

    /// Stops the server (SIGINT: fast shutdown) and removes its directory once this process has gone, however it
    /// goes: a shell outside the process waits for it.
    private static func watch(pid: Int32, directory: String) {
        let script = """
            while kill -0 \(getpid()) 2>/dev/null; do sleep 1; done
            kill -INT \(pid) 2>/dev/null
            i=0; while kill -0 \(pid) 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
            rm -rf '\(directory)'
            """
        let watcher = Process()
        watcher.executableURL = URL(fileURLWithPath: "/bin/sh")
        watcher.arguments = ["-c", script]
        watcher.standardInput = FileHandle.nullDevice
        watcher.standardOutput = FileHandle.nullDevice
        watcher.standardError = FileHandle.nullDevice
        try? watcher.run()
    }

    /// The directory holding initdb and postgres: the newest /usr/lib/postgresql/N/bin, else one on PATH.
    static func binDirectory() -> String? {
        let fm = FileManager.default
        let versions = ((try? fm.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? [])
            .compactMap { Int($0) }.sorted(by: >).map { "/usr/lib/postgresql/\($0)/bin" }
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        return (versions + path).first { dir in
            fm.isExecutableFile(atPath: "\(dir)/initdb") && fm.isExecutableFile(atPath: "\(dir)/postgres")
        }
    }

    static func findPSQL(in bin: String?) -> String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? [])
            .compactMap { Int($0) }.sorted(by: >).map { "/usr/lib/postgresql/\($0)/bin" }
        return ([bin].compactMap { $0 } + path + versions).map { "\($0)/psql" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago.
    public static func freePort() throws -> Int {
        #if os(Linux)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw Failure.startFailed("socket() failed (errno \(errno))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw Failure.startFailed("cannot find a free port (errno \(errno))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Runs a program to completion without blocking a thread; returns its status and its output and errors.
    static func execute(_ executable: String, _ arguments: [String],
                        environment: [String: String] = [:]) async throws -> (Int32, String) {
        let outputURL = FileManager.default.temporaryDirectory.appendingPathComponent("sy-run-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: outputURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: outputURL) }
        let handle = try FileHandle(forWritingTo: outputURL)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = FileManager.default.temporaryDirectory
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            process.terminationHandler = { _ in continuation.resume() }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: Failure.commandFailed("cannot run \(executable): \(error)"))
            }
        }
        try? handle.close()
        let output = (try? String(contentsOf: outputURL, encoding: .utf8)) ?? ""
        return (process.terminationStatus, output)
    }
}
