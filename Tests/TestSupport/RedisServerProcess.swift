import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A `redis-server` of the tests' own: on a free loopback port, persisting nothing, in a fresh temporary directory.
///
/// `start` returns once the server answers PING (or NOAUTH, with a password); `stop` kills it and removes the
/// directory (deinit does too, without waiting). `restart` kills it and starts a new one on the same port, for tests of
/// reconnection. It knows nothing of Redis clients: it hands out a URL.
///
/// The server is stopped with SIGKILL: it has nothing to save, and SIGTERM may be blocked in the child (it inherits
/// the signal mask of the thread that spawned it). Waiting is done with `Task.sleep`, never by blocking a thread.
public final class RedisServerProcess: Sendable {
    public let port: Int
    public let password: String?
    /// Holds the server's log (`redis.log`); removed by `stop`.
    public let directory: URL
    private let executable: String
    private let process: Mutex<Process?>

    /// `redis://127.0.0.1:PORT`, or `redis://:PASSWORD@127.0.0.1:PORT` (the password percent-encoded).
    public var url: String {
        guard let password else { return "redis://127.0.0.1:\(port)" }
        let encoded = password.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? password
        return "redis://:\(encoded)@127.0.0.1:\(port)"
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    /// The URL of a Redis that tests may share instead of starting their own: `SWITCHYARD_TEST_REDIS_URL`, if set.
    public static var environmentURL: String? {
        guard let url = ProcessInfo.processInfo.environment["SWITCHYARD_TEST_REDIS_URL"], !url.isEmpty else { return nil }
        return url
    }

    /// Starts a server, with `requirepass` when `password` is given; tries a few free ports if one is taken meanwhile.
    /// Throws "redis-server not found: run `make deps`" when it is not installed.
    public static func start(password: String? = nil) async throws -> RedisServerProcess {
        let executable = try findExecutable()
        var lastError: Error = Failure("redis-server did not start")
        for _ in 0..<5 {
            let port = try freeLoopbackPort()
            let directory = FileManager.default.temporaryDirectory
                .appendingPathComponent("sy-redis-\(UUID().uuidString)", isDirectory: true)
            let server = RedisServerProcess(executable: executable, port: port, password: password, directory: directory)
            do {
                try await server.launch()
                return server
            } catch {
                await server.stop()
                lastError = error
            }
        }
        throw lastError
    }

    private init(executable: String, port: Int, password: String?, directory: URL) {
        self.executable = executable
        self.port = port
        self.password = password
        self.directory = directory
        process = Mutex(nil)
    }

    deinit {
        if let running = process.withLock({ $0 }), running.isRunning { kill(running.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: directory)
    }

    /// Kills the server and starts a new one on the same port (its data is gone: nothing is persisted).
    public func restart() async throws {
        await terminate()
        // The port is free once the old process is gone; retry briefly in case the kernel lags.
        var lastError: Error = Failure("redis-server did not restart")
        for _ in 0..<20 {
            do {
                try await launch()
                return
            } catch {
                await terminate()
                lastError = error
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        throw lastError
    }

    /// Kills the server, waits for it to exit, and removes its directory; safe to call more than once.
    public func stop() async {
        await terminate()
        try? FileManager.default.removeItem(at: directory)
    }

    private func terminate() async {
        guard let running = process.withLock({ process -> Process? in
            defer { process = nil }
            return process
        }) else { return }
        guard running.isRunning else { return }
        kill(running.processIdentifier, SIGKILL)
        let deadline = ContinuousClock.now + .seconds(5)
        while running.isRunning, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    private func launch() async throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let log = directory.appendingPathComponent("redis.log")
        var arguments = ["--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                         "--dir", directory.path, "--logfile", log.path, "--daemonize", "no"]
        if let password { arguments += ["--requirepass", password] }
        let launched = Process()
        launched.executableURL = URL(fileURLWithPath: executable)
        launched.arguments = arguments
        launched.standardInput = FileHandle.nullDevice
        launched.standardOutput = FileHandle.nullDevice
        launched.standardError = FileHandle.nullDevice
        do {
            try launched.run()
        } catch {
            throw Failure("cannot run \(executable): \(error)")
        }
        process.withLock { $0 = launched }

        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            guard launched.isRunning else {
                throw Failure("redis-server exited (status \(launched.terminationStatus)) on port \(port): \(tail(of: log))")
            }
            if let reply = Self.probe(port: port), reply.hasPrefix("+PONG") || reply.hasPrefix("-NOAUTH") { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw Failure("redis-server on port \(port) did not answer PING within 10 s: \(tail(of: log))")
    }

    private func tail(of log: URL) -> String {
        guard let text = try? String(contentsOf: log, encoding: .utf8) else { return "(no log)" }
        return text.split(separator: "\n").suffix(5).joined(separator: " | ")
    }

    private static func findExecutable() throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/opt/homebrew/bin"]
        for directory in directories {
            let candidate = directory + "/redis-server"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw Failure("redis-server not found: run `make deps` (or apt-get install redis-server), or set SWITCHYARD_TEST_REDIS_URL")
    }

    // MARK: Sockets

    private static func loopbackAddress(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        #if canImport(Darwin)
        address.sin_len = UInt8(MemoryLayout<sockaddr_in>.size)
        #endif
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
        return address
    }

    private static func tcpSocket() -> Int32 {
        #if canImport(Glibc)
        socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        socket(AF_INET, SOCK_STREAM, 0)
        #endif
    }

    /// A port the kernel just gave to a socket bound to 127.0.0.1:0, then closed.
    private static func freeLoopbackPort() throws -> Int {
        let fd = tcpSocket()
        guard fd >= 0 else { throw Failure("socket() failed: errno \(errno)") }
        defer { close(fd) }
        var address = loopbackAddress(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw Failure("bind(127.0.0.1:0) failed: errno \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw Failure("getsockname failed: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Sends `PING` to 127.0.0.1:`port` and returns the first line of the answer; nil when nothing answers in 1 s.
    static func probe(port: Int) -> String? {
        let fd = tcpSocket()
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = loopbackAddress(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        let ping = Array("PING\r\n".utf8)
        guard send(fd, ping, ping.count, 0) == ping.count else { return nil }
        var reply = [UInt8](repeating: 0, count: 256)
        let count = recv(fd, &reply, reply.count, 0)
        guard count > 0 else { return nil }
        return String(decoding: reply[..<count], as: UTF8.self).split(separator: "\r\n").first.map(String.init)
    }
}
