import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Gets the wheel (`.whl`) of one pip package into a directory. ``PipWheelFetcher`` runs pip;
/// tests hand the puller one that returns a wheel they built themselves.
public protocol WheelFetcher: Sendable {
    /// Fetches the wheel of `package==version` into `directory` (which exists and is empty) and returns its path.
    func fetchWheel(package: String, version: String, into directory: URL) async throws -> URL
}

/// Fetches wheels with
/// `PYTHON -m pip download --no-deps --disable-pip-version-check --only-binary=:all: -d DIR PACKAGE==VERSION`,
/// where PYTHON is `$SWITCHYARD_PYTHON` or `python3` (looked up on `PATH`).
public struct PipWheelFetcher: WheelFetcher {
    /// The environment variable that names the Python interpreter.
    public static let pythonEnvironmentVariable = "SWITCHYARD_PYTHON"

    /// The interpreter: a path, or a name looked up on `PATH`.
    public let python: String

    /// - Parameter python: the interpreter; nil means `$SWITCHYARD_PYTHON`, else `python3`.
    public init(python: String? = nil) {
        if let python {
            self.python = python
        } else if let value = ProcessInfo.processInfo.environment[Self.pythonEnvironmentVariable], !value.isEmpty {
            self.python = value
        } else {
            self.python = "python3"
        }
    }

    /// The arguments after the interpreter.
    public func arguments(package: String, version: String, directory: URL) -> [String] {
        ["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--only-binary=:all:",
         "-d", directory.path, "\(package)==\(version)"]
    }

    public func fetchWheel(package: String, version: String, into directory: URL) async throws -> URL {
        let requirement = "\(package)==\(version)"
        let arguments = arguments(package: package, version: version, directory: directory)
        let command = ([python] + arguments).joined(separator: " ")
        // Output goes to a log file in the download directory rather than a pipe, so a chatty pip can never block on
        // a full pipe; it is removed before returning.
        let logURL = directory.appendingPathComponent(".pip-\(UUID().uuidString).log", isDirectory: false)
        defer { try? FileManager.default.removeItem(at: logURL) }

        let result = try await ChildProcess.run(executable: python, arguments: arguments, outputFile: logURL)
        let output = (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
        switch result {
        case .launchFailed(let message):
            throw ModelStoreError.pipFailed(command: command, status: -1, output: message)
        case .exited(let status):
            guard status == 0 else {
                throw ModelStoreError.pipFailed(command: command, status: status, output: Self.tail(of: output))
            }
        }

        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        let wheels = names.filter { $0.lowercased().hasSuffix(".whl") }.sorted()
        let normalized = package.lowercased().replacingOccurrences(of: "-", with: "_").replacingOccurrences(of: ".", with: "_")
        guard let wheel = wheels.first(where: { $0.lowercased().hasPrefix(normalized + "-") }) ?? wheels.first else {
            throw ModelStoreError.wheelNotFound(requirement: requirement, directory: directory.path)
        }
        return directory.appendingPathComponent(wheel, isDirectory: false)
    }

    /// The last lines of pip's output: enough to see why it failed, not a whole resolver trace.
    static func tail(of output: String, maxLines: Int = 40) -> String {
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count > maxLines else { return output }
        return "…\n" + lines.suffix(maxLines).joined(separator: "\n")
    }
}

/// Runs a child process with `/usr/bin/env` (so a bare name is looked up on `PATH`), off the cooperative threads,
/// and kills it if the task is cancelled.
enum ChildProcess {
    enum Result: Sendable {
        case exited(Int32)
        case launchFailed(String)
    }

    static func run(executable: String, arguments: [String], outputFile: URL) async throws -> Result {
        guard FileManager.default.createFile(atPath: outputFile.path, contents: nil) else {
            throw ModelStoreError.fileSystem(path: outputFile.path, reason: "cannot create the log file")
        }
        let output: FileHandle
        do {
            output = try FileHandle(forWritingTo: outputFile)
        } catch {
            throw ModelStoreError.fileSystem(path: outputFile.path, reason: error.localizedDescription)
        }
        defer { try? output.close() }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [executable] + arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = output

        let box = ProcessBox(process)
        let result: Result = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Result, any Error>) in
                DispatchQueue.global().async {
                    do {
                        guard try box.start() else {
                            continuation.resume(throwing: ModelStoreError.cancelled)
                            return
                        }
                    } catch {
                        continuation.resume(returning: .launchFailed("cannot start \(executable): \(error.localizedDescription)"))
                        return
                    }
                    continuation.resume(returning: .exited(box.wait()))
                }
            }
        } onCancel: {
            box.terminate()
        }
        if Task.isCancelled { throw ModelStoreError.cancelled }
        return result
    }
}

/// Lets the cancellation handler reach the process, and keeps a process from starting once the task is cancelled.
private final class ProcessBox: Sendable {
    private let state: Mutex<(process: Process, cancelled: Bool)>

    init(_ process: Process) { state = Mutex((process, false)) }

    /// Starts the process unless cancelled; false if it was cancelled first.
    func start() throws -> Bool {
        try state.withLock { state in
            if state.cancelled { return false }
            try state.process.run()
            return true
        }
    }

    func wait() -> Int32 {
        let process = state.withLock { $0.process }
        process.waitUntilExit()
        return process.terminationStatus
    }

    func terminate() {
        state.withLock { state in
            state.cancelled = true
            // SIGKILL, not terminate(): a child can inherit a signal mask that blocks SIGTERM (threads of test
            // runners and signal-handling CLIs often block it), and pip leaves nothing we need behind.
            if state.process.isRunning { _ = kill(state.process.processIdentifier, SIGKILL) }
        }
    }
}
