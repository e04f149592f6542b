import AsyncHTTPClient
import Core
import Foundation
import NIOCore
import NIOHTTP1

/// An upstream's error body, in the shapes the upstreams use: OpenAI's and Anthropic's `{"error": {"message", "type",
/// "code"}}`, Ollama's `{"error": "text"}`, `{"message": …}` or `{"detail": …}`.
struct UpstreamErrorBody: Decodable, Error {
    var message: String
    var type: String?
    var code: String?

    private enum Keys: String, CodingKey { case message, type, code, error, detail }

    init(message: String, type: String? = nil, code: String? = nil) { self.message = message; self.type = type; self.code = code }

    init(from decoder: Decoder) throws {
        if let text = try? decoder.singleValueContainer().decode(String.self) { self.init(message: text); return }
        let c = try decoder.container(keyedBy: Keys.self)
        if let inner = try? c.decode(UpstreamErrorBody.self, forKey: .error) { self = inner; return }
        let message = (try? c.decode(String.self, forKey: .message)) ?? (try? c.decode(String.self, forKey: .detail))
        guard let message else { throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "no error message")) }
        let code = (try? c.decode(String.self, forKey: .code)) ?? (try? c.decode(Int.self, forKey: .code)).map(String.init)
        self.init(message: message, type: try? c.decode(String.self, forKey: .type), code: code)
    }

    /// Parses an error body; anything unreadable becomes its first 500 characters.
    static func parse(_ bytes: ByteBuffer, status: Int) -> UpstreamErrorBody {
        let data = Data(bytes.readableBytesView)
        if let e = try? JSONDecoder().decode(UpstreamErrorBody.self, from: data) { return e }
        let text = String(decoding: data.prefix(500), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return UpstreamErrorBody(message: text.isEmpty ? "HTTP \(status)" : text)
    }

    /// The canonical error for this body, with the answer's status when there was one (an error event inside a
    /// stream has none).
    func coreError(status: Int?, retryAfter: Int?) -> CoreError {
        let lower = (message + " " + (code ?? "") + " " + (type ?? "")).lowercased()
        let contextTooLong = code == "context_length_exceeded" || lower.contains("context length") || lower.contains("context_length")
            || lower.contains("maximum context") || lower.contains("too many tokens") || lower.contains("prompt is too long")
        switch status {
        case 401, 402, 403: return .auth(message)
        case 408: return .timeout(message)
        case 413: return .contextLengthExceeded(message)
        case 429: return .rateLimited(message, retryAfterSeconds: retryAfter)
        case 503, 529: return .unavailable(message, retryAfterSeconds: retryAfter)
        case 404: return .upstream("HTTP 404: \(message)")
        case .some(let s) where (400..<500).contains(s): return contextTooLong ? .contextLengthExceeded(message) : .badRequest(message)
        case .some(let s): return .upstream("HTTP \(s): \(message)")
        case nil:
            // Anthropic's error types, as an `error` event inside a stream carries them.
            switch type {
            case "overloaded_error": return .unavailable(message, retryAfterSeconds: nil)
            case "rate_limit_error": return .rateLimited(message, retryAfterSeconds: nil)
            case "authentication_error", "permission_error": return .auth(message)
            case "invalid_request_error": return contextTooLong ? .contextLengthExceeded(message) : .badRequest(message)
            case "timeout_error": return .timeout(message)
            default: break
            }
            if contextTooLong { return .contextLengthExceeded(message) }
            if lower.contains("rate limit") || lower.contains("rate_limit") { return .rateLimited(message, retryAfterSeconds: nil) }
            if lower.contains("overloaded") { return .unavailable(message, retryAfterSeconds: nil) }
            return .upstream(message)
        }
    }
}

/// What every HTTP adapter shares: reading bodies up to a size, `Retry-After`, and transport failures as canonical errors.
/// Splits a streamed body into messages (server-sent events' data, JSON lines) as bytes arrive.
protocol StreamFramer {
    mutating func feed(_ bytes: some Sequence<UInt8>) throws -> [String]
    mutating func finish() -> String?
}

extension ServerSentEventParser: StreamFramer {}
extension LineSplitter: StreamFramer {}

extension AsyncThrowingStream<ChatEvent, Error>.Continuation {
    /// Yields `events` in order; false once the consumer has gone away.
    func yieldAll(_ events: [ChatEvent]) -> Bool {
        for e in events { if case .terminated = yield(e) { return false } }
        return true
    }
}

enum UpstreamHTTP {
    /// A chat stream fed by `run` on a task of its own: a transport error becomes the canonical error for `url`, and
    /// the consumer cancelling (or going away) cancels the task.
    static func chatStream(url: String, _ run: @escaping @Sendable (AsyncThrowingStream<ChatEvent, Error>.Continuation) async throws -> Void) -> ChatStream {
        let (stream, continuation) = AsyncThrowingStream<ChatEvent, Error>.makeStream()
        let task = Task {
            do { try await run(continuation) } catch { continuation.finish(throwing: mapTransport(error, url: url)) }
        }
        continuation.onTermination = { _ in task.cancel() }
        return ChatStream(events: stream, cancel: { task.cancel() })
    }

    /// Tools in the `{"type": "function", "function": {name, description, parameters}}` shape OpenAI and Ollama take.
    static func functionTools(_ tools: [ToolDefinition]) -> [[String: Any]] {
        tools.map { t in
            var function: [String: Any] = ["name": t.name]
            if let d = t.description { function["description"] = d }
            if let p = t.parametersJSON, let schema = try? JSONSerialization.jsonObject(with: Data(p.utf8)) { function["parameters"] = schema }
            return ["type": "function", "function": function]
        }
    }

    /// Feeds a streamed body through `framer` and each message to `handle` until the answer `isDone` (the rest of
    /// the body is not read) or `handle` says the consumer has gone away (returns false); the framer's remainder last.
    static func pump<F: StreamFramer>(_ body: HTTPClientResponse.Body, _ framer: inout F, isDone: () -> Bool,
                                      handle: (String) throws -> Bool) async throws -> Bool {
        for try await buffer in body {
            for message in try framer.feed(buffer.readableBytesView) where !isDone() {
                guard try handle(message) else { return false }
            }
            if isDone() { break }
        }
        if let last = framer.finish(), !isDone() { return try handle(last) }
        return true
    }

    /// Seconds to wait, from `retry-after-ms`, or `Retry-After` as seconds or an HTTP date.
    static func retryAfter(_ headers: HTTPHeaders, now: Date = Date()) -> Int? {
        if let ms = headers.first(name: "retry-after-ms").flatMap({ Double($0.trimmingCharacters(in: .whitespaces)) }), ms >= 0, ms < 1e9 {
            return Int((ms / 1000).rounded(.up))
        }
        guard let value = headers.first(name: "retry-after")?.trimmingCharacters(in: .whitespaces) else { return nil }
        if let s = Double(value), s >= 0, s < 1e7 { return Int(s.rounded(.up)) }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = f.date(from: value) else { return nil }
        return max(0, Int(date.timeIntervalSince(now).rounded(.up)))
    }

    /// Transport failures as canonical errors; canonical errors and cancellation pass unchanged.
    static func mapTransport(_ error: Error, url: String) -> Error {
        if error is CoreError || error is CancellationError { return error }
        if let e = error as? HTTPClientError {
            if e == .cancelled { return CancellationError() }
            if [.connectTimeout, .readTimeout, .writeTimeout, .deadlineExceeded, .tlsHandshakeTimeout].contains(e) {
                return CoreError.timeout("\(url): \(e)")
            }
        }
        if let e = error as? PlainHTTPClient.Failure {
            switch e {
            case .timedOut: return CoreError.timeout("\(url): \(e)")
            case .bodyTooLarge: return CoreError.upstream("\(url) \(e)")
            case .closed, .malformed: return CoreError.upstreamDown("\(url): \(e)")
            }
        }
        if let e = error as? ChannelError, case .connectTimeout = e { return CoreError.timeout("\(url): connecting took too long") }
        if let e = error as? ServerSentEventParser.Failure, case .eventTooLong(let limit) = e {
            return CoreError.upstream("\(url) sent an event longer than \(limit) bytes")
        }
        if let e = error as? LineSplitter.Failure, case .lineTooLong(let limit) = e {
            return CoreError.upstream("\(url) sent a line longer than \(limit) bytes")
        }
        return CoreError.upstreamDown("\(url): \(error)")
    }

    /// Reads a body up to `limit` bytes: past it, an error, or (`truncate`) the first `limit` bytes.
    static func read(_ body: HTTPClientResponse.Body, limit: Int, url: String, truncate: Bool = false) async throws -> ByteBuffer {
        var out = ByteBuffer()
        for try await var piece in body {
            let room = limit - out.readableBytes
            if piece.readableBytes > room {
                guard truncate else { throw CoreError.upstream("\(url) answered more than \(limit) bytes") }
                if room > 0, let slice = piece.readSlice(length: room) { out.writeImmutableBuffer(slice) }
                continue
            }
            out.writeBuffer(&piece)
        }
        return out
    }

    /// Sends a request; an answer outside 2xx becomes the canonical error its (size-capped) body and status say.
    static func send(_ request: HTTPClientRequest, client: HTTPClient, timeout: TimeAmount, url: String) async throws -> HTTPClientResponse {
        let response = try await client.execute(request, timeout: timeout)
        let status = Int(response.status.code)
        guard (200..<300).contains(status) else {
            let body = try await read(response.body, limit: 64 << 10, url: url, truncate: true)
            throw UpstreamErrorBody.parse(body, status: status).coreError(status: status, retryAfter: retryAfter(response.headers))
        }
        return response
    }

    /// An answer read whole by the plain client; outside 2xx, the canonical error its body and status say.
    static func check(_ response: PlainHTTPClient.Response) throws -> ByteBuffer {
        guard (200..<300).contains(response.status) else {
            var body = response.body
            let capped = body.readSlice(length: min(body.readableBytes, 64 << 10)) ?? ByteBuffer()
            throw UpstreamErrorBody.parse(capped, status: response.status)
                .coreError(status: response.status, retryAfter: retryAfter(response.headers))
        }
        return response.body
    }

    /// A whole JSON answer of `type`, read up to `limit` bytes.
    static func decode<T: Decodable>(_ type: T.Type, from response: HTTPClientResponse, limit: Int, url: String, what: String) async throws -> T {
        let body = try await read(response.body, limit: limit, url: url)
        do { return try JSONDecoder().decode(T.self, from: Data(body.readableBytesView)) } catch {
            throw CoreError.upstream("\(url) answered something other than \(what): \(String(decoding: Data(body.readableBytesView).prefix(200), as: UTF8.self))")
        }
    }
}
