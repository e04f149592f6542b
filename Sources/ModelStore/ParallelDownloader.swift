import Foundation
import Synchronization
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A large file of known size over several connections: cut into byte ranges fetched at once (HTTP `Range`), each
/// written where it belongs. What every range has written is recorded beside the file (`.NAME.partial.parts`, JSON),
/// so a pull cut short resumes each range where it stopped. The whole file is hashed once complete. A server that
/// answers a range with anything but `206 Partial Content` for exactly that range is reported as
/// `ParallelDownloader.RangesRefused`, and the caller downloads in one stream instead.
enum ParallelDownloader {
    struct RangesRefused: Error {}

    /// The ranges and how far each got.
    struct Record: Codable, Equatable {
        struct Part: Codable, Equatable {
            var start: Int64
            var end: Int64     // exclusive
            var done: Int64
        }
        var size: Int64
        var parts: [Part]

        init(size: Int64, parts: Int) {
            self.size = size
            let n = Int64(max(1, parts)), step = (size + n - 1) / n
            self.parts = stride(from: Int64(0), to: size, by: Int(max(1, step))).map { Part(start: $0, end: min(size, $0 + step), done: 0) }
        }

        var written: Int64 { parts.reduce(0) { $0 + $1.done } }
    }

    /// The record as ranges advance, and how much of it was last saved.
    final class Shared: Sendable {
        struct State { var record: Record; var saved: Int64 }
        let state: Mutex<State>
        init(_ record: Record) { state = Mutex(State(record: record, saved: record.written)) }
    }

    static func recordURL(for partial: URL) -> URL { partial.deletingLastPathComponent().appendingPathComponent(partial.lastPathComponent + ".parts") }

    /// The record of an interrupted download of `size` bytes into `partial`, when both are there and agree.
    static func existingRecord(for partial: URL, size: Int64) -> Record? {
        guard let data = try? Data(contentsOf: recordURL(for: partial)), data.count < 1 << 20,
              let record = try? JSONDecoder().decode(Record.self, from: data), record.size == size,
              ModelDirectory.fileSize(partial) == size,
              record.parts.allSatisfy({ $0.start <= $0.end && $0.done >= 0 && $0.done <= $0.end - $0.start }) else { return nil }
        return record
    }

    static func save(_ record: Record, for partial: URL) {
        guard let data = try? JSONEncoder().encode(record) else { return }
        try? data.write(to: recordURL(for: partial), options: .atomic)
    }

    /// Downloads `url` (`size` bytes) into `destination` over `connections` ranges, resuming a recorded attempt.
    /// `progress` gets (bytes so far, size), then the hashing pass reports through `verifying`.
    static func download(_ url: URL, to destination: URL, size: Int64, connections: Int, headers: [String: String],
                         progress: @escaping @Sendable (Int64, Int64?) -> Void,
                         verifying: @escaping @Sendable (Int64) -> Void) async throws -> HTTPDownloader.Outcome {
        var record = existingRecord(for: destination, size: size) ?? Record(size: size, parts: connections)
        if record.written == 0 {
            // a fresh file of the final size, written in place
            guard FileManager.default.createFile(atPath: destination.path, contents: nil) else {
                throw ModelStoreError.fileSystem(path: destination.path, reason: "cannot create the file")
            }
            guard truncate(destination.path, off_t(size)) == 0 else {
                throw ModelStoreError.fileSystem(path: destination.path, reason: "cannot size the file: \(String(cString: strerror(errno)))")
            }
        }
        let fd = open(destination.path, O_WRONLY)
        guard fd >= 0 else { throw ModelStoreError.fileSystem(path: destination.path, reason: "cannot open the file: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let shared = Shared(record)
        progress(record.written, size)
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (i, part) in record.parts.enumerated() where part.done < part.end - part.start {
                    group.addTask {
                        try await fetchRange(url, headers: headers, from: part.start + part.done, to: part.end, fd: fd, path: destination.path) { n in
                            let (snapshot, written, due) = shared.state.withLock { s -> (Record, Int64, Bool) in
                                s.record.parts[i].done += n
                                let written = s.record.written
                                // the record on disk trails by at most 8 MiB of what is written
                                let due = written - s.saved >= 8 << 20
                                if due { s.saved = written }
                                return (s.record, written, due)
                            }
                            progress(written, size)
                            if due { save(snapshot, for: destination) }
                        }
                    }
                }
                try await group.waitForAll()
            }
        } catch {
            save(shared.state.withLock { $0.record }, for: destination)
            throw error
        }
        record = shared.state.withLock { $0.record }
        guard record.written == size else {
            save(record, for: destination)
            throw ModelStoreError.downloadFailed(url: url.absoluteString, reason: "the ranges ended with \(record.written) of \(size) bytes")
        }
        try? FileManager.default.removeItem(at: recordURL(for: destination))
        let sha256 = try await runBlocking { cancellation in
            try FileOps.sha256(of: destination, cancellation: cancellation, progress: verifying)
        }
        return HTTPDownloader.Outcome(bytes: size, sha256: sha256)
    }

    /// GETs bytes `from..<to` and writes them at their offsets; `wrote(n)` after each piece.
    static func fetchRange(_ url: URL, headers: [String: String], from: Int64, to: Int64, fd: Int32, path: String,
                           wrote: @escaping @Sendable (Int64) -> Void) async throws {
        let delegate = RangeDelegate(url: url, from: from, to: to, fd: fd, path: path, wrote: wrote)
        let session = HTTPDownloader.session(delegate)
        defer { session.finishTasksAndInvalidate() }
        let task = session.dataTask(with: HTTPDownloader.get(url, headers: headers, range: "bytes=\(from)-\(to - 1)"))
        nonisolated(unsafe) let unsafeTask = task
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                delegate.start(continuation)
                unsafeTask.resume()
            }
        } onCancel: {
            delegate.fail(ModelStoreError.cancelled)
            unsafeTask.cancel()
        }
    }
}

/// One range's session delegate: checks that the answer is exactly the range asked for, writes each piece at its
/// offset (`pwrite`), and finishes once.
private final class RangeDelegate: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    private struct State {
        var continuation: CheckedContinuation<Void, any Error>?
        var failure: (any Error)?
        var offset: Int64
        var finished = false
    }
    private let url: URL
    private let from: Int64, to: Int64
    private let fd: Int32
    private let path: String
    private let wrote: @Sendable (Int64) -> Void
    private let state: Mutex<State>

    init(url: URL, from: Int64, to: Int64, fd: Int32, path: String, wrote: @escaping @Sendable (Int64) -> Void) {
        self.url = url; self.from = from; self.to = to; self.fd = fd; self.path = path; self.wrote = wrote
        state = Mutex(State(offset: from))
    }

    func start(_ continuation: CheckedContinuation<Void, any Error>) {
        let failed: (any Error)? = state.withLock { s in
            if let f = s.failure { s.finished = true; return f }
            s.continuation = continuation
            return nil
        }
        if let failed { continuation.resume(throwing: failed) }
    }

    func fail(_ error: any Error) {
        state.withLock { s in if s.failure == nil { s.failure = error } }
    }

    private func finish(_ result: Result<Void, any Error>) {
        let c: CheckedContinuation<Void, any Error>? = state.withLock { s in
            guard !s.finished else { return nil }
            s.finished = true
            defer { s.continuation = nil }
            return s.continuation
        }
        c?.resume(with: result)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        let http = response as? HTTPURLResponse
        guard let http, (200..<300).contains(http.statusCode) else {
            fail(ModelStoreError.httpStatus(url: url.absoluteString, status: http?.statusCode ?? 0))
            completionHandler(.cancel)
            return
        }
        let range = http.value(forHTTPHeaderField: "Content-Range") ?? ""
        guard http.statusCode == 206, range.hasPrefix("bytes \(from)-\(to - 1)/") else {
            fail(ParallelDownloader.RangesRefused())
            completionHandler(.cancel)
            return
        }
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        let offset: Int64? = state.withLock { s in s.failure == nil ? s.offset : nil }
        guard let offset else { return }
        guard offset + Int64(data.count) <= to else {
            fail(ModelStoreError.downloadFailed(url: url.absoluteString, reason: "the server sent more than the range \(from)-\(to - 1)"))
            dataTask.cancel()
            return
        }
        let written = data.withUnsafeBytes { buffer -> Int in
            var done = 0
            while done < buffer.count {
                let n = pwrite(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
                if n <= 0 { return -1 }
                done += n
            }
            return done
        }
        guard written == data.count else {
            fail(ModelStoreError.fileSystem(path: path, reason: "cannot write: \(String(cString: strerror(errno)))"))
            dataTask.cancel()
            return
        }
        state.withLock { $0.offset += Int64(data.count) }
        wrote(Int64(data.count))
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
        guard let target = request.url, (try? DownloadURL.validateScheme(target)) != nil else {
            fail(ModelStoreError.downloadFailed(url: url.absoluteString, reason: "bad redirect"))
            completionHandler(nil)
            task.cancel()
            return
        }
        // A token goes to the host it was meant for, not to where that host redirects (a CDN's signed URL).
        var next = request
        if target.host != url.host { next.setValue(nil, forHTTPHeaderField: "Authorization") }
        completionHandler(next)
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        let (failure, offset) = state.withLock { ($0.failure, $0.offset) }
        if let failure { return finish(.failure(failure)) }
        if let error {
            return finish(.failure(ModelStoreError.downloadFailed(url: url.absoluteString, reason: error.localizedDescription)))
        }
        guard offset == to else {
            return finish(.failure(ModelStoreError.downloadFailed(
                url: url.absoluteString, reason: "the connection ended after \(offset - from) of \(to - from) bytes of a range")))
        }
        finish(.success(()))
    }
}
