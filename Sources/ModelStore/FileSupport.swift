import Crypto
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Lowercase hexadecimal of a digest.
func hexString<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(64)
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// Normalizes an expected hash: trimmed, lowercased, exactly 64 hex digits.
func normalizeSHA256(_ value: String) throws -> String {
    let trimmed = value.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
    guard trimmed.utf8.count == 64, trimmed.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
        throw ModelStoreError.invalidSHA256(value)
    }
    return trimmed
}

/// A flag set by a task's cancellation handler and read by blocking work running on another thread.
final class CancellationFlag: Sendable {
    private let flag = Mutex(false)
    var isCancelled: Bool { flag.withLock { $0 } }
    func cancel() { flag.withLock { $0 = true } }
}

/// Runs blocking file work on a global dispatch queue, so it does not hold a cooperative thread, and hands it a flag
/// that is set when the calling task is cancelled.
func runBlocking<T: Sendable>(_ work: @escaping @Sendable (CancellationFlag) throws -> T) async throws -> T {
    let flag = CancellationFlag()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try work(flag) })
            }
        }
    } onCancel: {
        flag.cancel()
    }
}

/// Writes bytes to a new file while hashing them, so the hash of the finished file costs no second read.
final class HashingFileWriter {
    let url: URL
    private let handle: FileHandle
    private var hasher = SHA256()
    private(set) var bytesWritten: Int64 = 0
    private var closed = false

    /// Creates (or truncates) the file at `url`.
    init(url: URL) throws {
        self.url = url
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
            throw ModelStoreError.fileSystem(path: url.path, reason: "cannot create the file")
        }
        do {
            handle = try FileHandle(forWritingTo: url)
        } catch {
            throw ModelStoreError.fileSystem(path: url.path, reason: "cannot open the file for writing: \(error.localizedDescription)")
        }
    }

    /// Opens the file at `url` to go on writing after what it holds (hashed first), or creates it.
    init(resuming url: URL) throws {
        self.url = url
        guard FileManager.default.fileExists(atPath: url.path) else {
            guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
                throw ModelStoreError.fileSystem(path: url.path, reason: "cannot create the file")
            }
            handle = try FileHandle(forWritingTo: url)
            return
        }
        do {
            let reader = try FileHandle(forReadingFrom: url)
            defer { try? reader.close() }
            while let chunk = try reader.read(upToCount: 1 << 20), !chunk.isEmpty {
                hasher.update(data: chunk)
                bytesWritten += Int64(chunk.count)
            }
            handle = try FileHandle(forWritingTo: url)
            try handle.seekToEnd()
        } catch {
            throw ModelStoreError.fileSystem(path: url.path, reason: "cannot resume the partial file: \(error.localizedDescription)")
        }
    }

    /// Empties the file to start over (the server sent the whole file instead of the rest).
    func restart() throws {
        do {
            try handle.truncate(atOffset: 0)
            try handle.seek(toOffset: 0)
        } catch {
            throw ModelStoreError.fileSystem(path: url.path, reason: "cannot truncate the file: \(error.localizedDescription)")
        }
        hasher = SHA256()
        bytesWritten = 0
    }

    func write(_ data: Data) throws {
        do {
            try handle.write(contentsOf: data)
        } catch {
            throw ModelStoreError.fileSystem(path: url.path, reason: "write failed after \(bytesWritten) bytes: \(error.localizedDescription)")
        }
        hasher.update(data: data)
        bytesWritten += Int64(data.count)
    }

    /// Flushes the file to disk, closes it and returns the hex SHA-256 of everything written.
    func finish() throws -> String {
        do {
            try handle.synchronize()
            try handle.close()
            closed = true
        } catch {
            throw ModelStoreError.fileSystem(path: url.path, reason: "cannot flush the file: \(error.localizedDescription)")
        }
        return hexString(hasher.finalize())
    }

    /// Closes the file (if still open) without reporting errors; for failure paths.
    func abandon() {
        if !closed {
            try? handle.close()
            closed = true
        }
    }

    deinit { abandon() }
}

enum FileOps {
    /// The hex SHA-256 of the file at `url`, read in chunks; `progress` gets the bytes hashed so far.
    static func sha256(of url: URL, cancellation: CancellationFlag? = nil,
                       progress: (Int64) -> Void = { _ in }) throws -> String {
        let handle: FileHandle
        do {
            handle = try FileHandle(forReadingFrom: url)
        } catch {
            throw ModelStoreError.fileSystem(path: url.path, reason: "cannot open the file: \(error.localizedDescription)")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        var done: Int64 = 0
        while true {
            if cancellation?.isCancelled == true { throw ModelStoreError.cancelled }
            let chunk: Data?
            do {
                chunk = try handle.read(upToCount: 1 << 20)
            } catch {
                throw ModelStoreError.fileSystem(path: url.path, reason: "read failed after \(done) bytes: \(error.localizedDescription)")
            }
            guard let chunk, !chunk.isEmpty else { break }
            hasher.update(data: chunk)
            done += Int64(chunk.count)
            progress(done)
        }
        return hexString(hasher.finalize())
    }

    /// Atomically replaces `destination` with `source` (`rename(2)`: both must be on one file system).
    static func atomicRename(_ source: URL, to destination: URL) throws {
        let (status, code) = source.withUnsafeFileSystemRepresentation { from in
            destination.withUnsafeFileSystemRepresentation { to -> (Int32, Int32) in
                guard let from, let to else { return (-2, 0) }
                let status = rename(from, to)
                return (status, status == 0 ? 0 : errno)
            }
        }
        guard status == 0 else {
            let reason = status == -2 ? "path cannot be represented" : String(cString: strerror(code))
            throw ModelStoreError.fileSystem(path: destination.path, reason: "cannot rename \(source.lastPathComponent) into place: \(reason)")
        }
    }

    /// Removes `url` if it exists, ignoring errors.
    static func removeIfPresent(_ url: URL) {
        if FileManager.default.fileExists(atPath: url.path) {
            try? FileManager.default.removeItem(at: url)
        }
    }
}
