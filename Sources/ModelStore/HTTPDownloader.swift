import Foundation
import Synchronization
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Rules for the URLs `switchyard pull` takes.
enum DownloadURL {
    /// Checks that `url` may be downloaded (https, or http to a loopback address) and returns the file name to store
    /// it under: its last path component, sanitized, ending in `.gguf`.
    static func validate(_ url: URL) throws -> String {
        let text = url.absoluteString
        guard let scheme = url.scheme?.lowercased() else {
            throw ModelStoreError.invalidURL(url: text, reason: "no scheme; use https://…/NAME.gguf")
        }
        guard let host = url.host, !host.isEmpty else {
            throw ModelStoreError.invalidURL(url: text, reason: "no host")
        }
        switch scheme {
        case "https":
            break
        case "http":
            guard isLoopback(host) else { throw ModelStoreError.insecureURL(url: text) }
        default:
            throw ModelStoreError.invalidURL(url: text, reason: "unsupported scheme '\(scheme)'; use https://")
        }
        return try fileName(from: url)
    }

    /// Whether `host` is `localhost`, an address in 127.0.0.0/8, or `::1`.
    static func isLoopback(_ host: String) -> Bool {
        var name = host.lowercased()
        if name.hasPrefix("["), name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
        if name == "localhost" || name.hasSuffix(".localhost") { return true }
        if name == "::1" || name == "0:0:0:0:0:0:0:1" { return true }
        let octets = name.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4, octets.allSatisfy({ !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isASCII) && UInt8($0) != nil })
        else { return false }
        return octets.first == "127"
    }

    /// The sanitized last path component of `url`: only letters, digits and `._-+`, no leading dot, no `..`,
    /// and ending in `.gguf`.
    static func fileName(from url: URL) throws -> String {
        let component = url.lastPathComponent
        let decoded = component.removingPercentEncoding ?? component
        var name = String(decoded.unicodeScalars.map { scalar -> Character in
            let allowed = (scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar)))
                || scalar == "." || scalar == "-" || scalar == "_" || scalar == "+"
            return allowed ? Character(scalar) : "_"
        })
        while name.contains("..") { name = name.replacingOccurrences(of: "..", with: ".") }
        while name.hasPrefix(".") { name.removeFirst() }
        guard name.lowercased().hasSuffix(".gguf"), name.count > ".gguf".count else {
            throw ModelStoreError.invalidURL(url: url.absoluteString, reason: "the URL's last path component must be a file name ending in .gguf")
        }
        guard name.utf8.count <= 200 else {
            throw ModelStoreError.invalidURL(url: url.absoluteString, reason: "the file name is too long")
        }
        return name
    }
}

/// Streams one HTTP(S) GET into a file, hashing as it goes; nothing is held in memory beyond one chunk.
enum HTTPDownloader {
    struct Outcome: Sendable {
        var bytes: Int64
        var sha256: String
    }

    /// Downloads `url` into a new file at `destination`. On any failure the caller removes `destination`.
    /// `progress` gets (bytes so far, total if the server said).
    /// With `resume`, what `destination` already holds is kept and only the rest is asked for (an HTTP Range);
    /// a server that sends the whole file instead starts it over.
    static func download(_ url: URL, to destination: URL, headers: [String: String] = [:], resume: Bool = false,
                         progress: @escaping @Sendable (Int64, Int64?) -> Void) async throws -> Outcome {
        let writer = resume ? try HashingFileWriter(resuming: destination) : try HashingFileWriter(url: destination)
        let offset = writer.bytesWritten
        let delegate = DownloadDelegate(url: url, writer: writer, offset: offset, progress: progress)
        let session = Self.session(delegate)
        defer { session.finishTasksAndInvalidate() }
        let request = Self.get(url, headers: headers, range: offset > 0 ? "bytes=\(offset)-" : nil)
        let task = session.dataTask(with: request)
        let taskBox = TaskBox(task)

        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Outcome, any Error>) in
                delegate.start(continuation: continuation)
                taskBox.resume()
            }
        } onCancel: {
            delegate.fail(.cancelled)
            taskBox.cancel()
        }
    }
}

extension HTTPDownloader {
    /// A session of its own for one download: no cache, callbacks on one serial queue.
    static func session(_ delegate: any URLSessionDataDelegate) -> URLSession {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.urlCache = nil
        configuration.timeoutIntervalForRequest = 60
        let queue = OperationQueue()
        queue.maxConcurrentOperationCount = 1
        return URLSession(configuration: configuration, delegate: delegate, delegateQueue: queue)
    }

    /// A GET of the bytes as stored (no content encoding), with `headers` and an optional `Range`.
    static func get(_ url: URL, headers: [String: String], range: String?) -> URLRequest {
        var request = URLRequest(url: url)
        request.httpMethod = "GET"
        request.setValue("identity", forHTTPHeaderField: "Accept-Encoding")
        for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
        if let range { request.setValue(range, forHTTPHeaderField: "Range") }
        return request
    }
}

/// `URLSessionTask` is thread-safe; this only carries it into the cancellation handler.
private final class TaskBox: @unchecked Sendable {
    let task: URLSessionTask
    init(_ task: URLSessionTask) { self.task = task }
    func resume() { task.resume() }
    func cancel() { task.cancel() }
}

/// The session delegate: checks the status, writes and hashes each chunk, and finishes the continuation once.
/// Its callbacks arrive on a serial queue; the mutable state is behind a lock as well because cancellation comes from
/// elsewhere.
private final class DownloadDelegate: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    private struct State {
        var continuation: CheckedContinuation<HTTPDownloader.Outcome, any Error>?
        var failure: ModelStoreError?
        var expected: Int64?
        var finished = false
    }

    private let url: URL
    private let writer: HashingFileWriter
    /// Bytes already in the file when a resumed download began.
    private let offset: Int64
    private let progress: @Sendable (Int64, Int64?) -> Void
    private let state = Mutex(State())

    init(url: URL, writer: HashingFileWriter, offset: Int64, progress: @escaping @Sendable (Int64, Int64?) -> Void) {
        self.url = url
        self.writer = writer
        self.offset = offset
        self.progress = progress
    }

    func start(continuation: CheckedContinuation<HTTPDownloader.Outcome, any Error>) {
        let alreadyFailed: ModelStoreError? = state.withLock { state in
            if let failure = state.failure {
                state.finished = true
                return failure
            }
            state.continuation = continuation
            return nil
        }
        if let alreadyFailed {
            writer.abandon()
            continuation.resume(throwing: alreadyFailed)
        }
    }

    /// Records the first failure; the task is cancelled by the caller and completion reports it.
    func fail(_ error: ModelStoreError) {
        state.withLock { state in
            if state.failure == nil { state.failure = error }
        }
    }

    private var hasFailed: Bool { state.withLock { $0.failure != nil } }

    private func finish(_ result: Result<HTTPDownloader.Outcome, any Error>) {
        let continuation: CheckedContinuation<HTTPDownloader.Outcome, any Error>? = state.withLock { state in
            guard !state.finished else { return nil }
            state.finished = true
            let continuation = state.continuation
            state.continuation = nil
            return continuation
        }
        continuation?.resume(with: result)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        if let http = response as? HTTPURLResponse, !(200..<300).contains(http.statusCode) {
            fail(.httpStatus(url: url.absoluteString, status: http.statusCode))
            completionHandler(.cancel)
            return
        }
        var base: Int64 = 0
        if offset > 0 {
            let http = response as? HTTPURLResponse
            let range = http?.value(forHTTPHeaderField: "Content-Range") ?? ""
            if http?.statusCode == 206, range.hasPrefix("bytes \(offset)-") {
                base = offset   // the rest follows what the file holds
            } else {
                do { try writer.restart() } catch let e as ModelStoreError {
                    fail(e); completionHandler(.cancel); return
                } catch {
                    fail(.fileSystem(path: writer.url.path, reason: "\(error)")); completionHandler(.cancel); return
                }
            }
        }
        let expected = response.expectedContentLength > 0 ? base + response.expectedContentLength : nil
        state.withLock { $0.expected = expected }
        progress(0, expected)
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        guard !hasFailed else { return }
        do {
            try writer.write(data)
        } catch let error as ModelStoreError {
            fail(error)
            dataTask.cancel()
            return
        } catch {
            fail(.fileSystem(path: writer.url.path, reason: error.localizedDescription))
            dataTask.cancel()
            return
        }
        let expected = state.withLock { $0.expected }
        progress(writer.bytesWritten, expected)
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
        // Follow redirects only to places the original URL would have been allowed to be.
        if let target = request.url {
            do {
                _ = try DownloadURL.validateScheme(target)
                // A token goes to the host it was meant for, not to where that host redirects (a CDN's signed URL).
                var next = request
                if target.host != url.host { next.setValue(nil, forHTTPHeaderField: "Authorization") }
                completionHandler(next)
                return
            } catch let error as ModelStoreError {
                fail(error)
            } catch {
                fail(.downloadFailed(url: url.absoluteString, reason: "bad redirect"))
            }
        }
        completionHandler(nil)
        task.cancel()
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        let (failure, expected) = state.withLock { ($0.failure, $0.expected) }
        if let failure {
            writer.abandon()
            finish(.failure(failure))
            return
        }
        if let error {
            writer.abandon()
            finish(.failure(ModelStoreError.downloadFailed(url: url.absoluteString, reason: error.localizedDescription)))
            return
        }
        if let http = task.response as? HTTPURLResponse, !(200..<300).contains(http.statusCode) {
            writer.abandon()
            finish(.failure(ModelStoreError.httpStatus(url: url.absoluteString, status: http.statusCode)))
            return
        }
        let received = writer.bytesWritten
        if let expected, received != expected {
            writer.abandon()
            finish(.failure(ModelStoreError.downloadFailed(
                url: url.absoluteString, reason: "the connection ended after \(received) of \(expected) bytes")))
            return
        }
        do {
            let sha256 = try writer.finish()
            finish(.success(HTTPDownloader.Outcome(bytes: received, sha256: sha256)))
        } catch {
            writer.abandon()
            finish(.failure(error))
        }
    }
}

extension DownloadURL {
    /// The scheme and host rules alone (for redirects, whose last component need not end in `.gguf`).
    static func validateScheme(_ url: URL) throws -> URL {
        let text = url.absoluteString
        switch url.scheme?.lowercased() {
        case "https":
            return url
        case "http":
            guard let host = url.host, isLoopback(host) else { throw ModelStoreError.insecureURL(url: text) }
            return url
        default:
            throw ModelStoreError.invalidURL(url: text, reason: "redirected to an unsupported scheme")
        }
    }
}
