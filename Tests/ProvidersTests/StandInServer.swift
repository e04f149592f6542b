import Core
import Foundation
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import NIOCore
import Synchronization

/// A stand-in upstream on a real loopback port: answers each request with what `reply` says — a status, headers,
/// and a body written in the given pieces (so events and lines arrive split) — and keeps what it was sent.
final class StandInServer: Sendable {
    struct Request: Sendable {
        var method: String
        var path: String
        /// Lower-cased names.
        var headers: [String: String]
        var body: Data
        var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] }
    }
    struct Reply: Sendable {
        var status = 200
        var headers: [String: String] = [:]
        var pieces: [String]
        init(status: Int = 200, headers: [String: String] = [:], pieces: [String]) { self.status = status; self.headers = headers; self.pieces = pieces }
        init(status: Int = 200, headers: [String: String] = ["content-type": "application/json"], json: String) {
            self.init(status: status, headers: headers, pieces: [json])
        }
    }

    private let routes: [(HTTPRequest.Method, String)]
    private let state: Mutex<(reply: @Sendable (Request) -> Reply, seen: [Request])>
    var requests: [Request] { state.withLock { $0.seen } }

    init(_ routes: [(HTTPRequest.Method, String)], reply: @escaping @Sendable (Request) -> Reply) {
        self.routes = routes
        state = Mutex((reply, []))
    }

    func reply(_ reply: @escaping @Sendable (Request) -> Reply) { state.withLock { $0.reply = reply } }

    /// Runs `body` with the base URL `http://127.0.0.1:PORT` while the server listens.
    func run(_ body: @escaping @Sendable (String) async throws -> Void) async throws {
        let router = Hummingbird.Router()
        for (method, path) in routes {
            router.on(RouterPath(path), method: method) { request, _ -> Response in
                var request = request
                let bytes = try await request.collectBody(upTo: 4 << 20)
                var headers: [String: String] = [:]
                for f in request.headers { headers[f.name.canonicalName] = f.value }
                let seen = Request(method: request.method.rawValue, path: request.uri.path, headers: headers, body: Data(buffer: bytes))
                let answer = self.state.withLock { s in s.seen.append(seen); return s.reply }
                let reply = answer(seen)
                var fields = HTTPFields()
                for (k, v) in reply.headers { if let name = HTTPField.Name(k) { fields[name] = v } }
                return Response(status: .init(code: reply.status), headers: fields, body: ResponseBody { writer in
                    for piece in reply.pieces {
                        try await writer.write(ByteBuffer(string: piece))
                        try await Task.sleep(for: .milliseconds(2))
                    }
                    try await writer.finish(nil)
                })
            }
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            guard let port = client.port else { throw CancellationError() }
            try await body("http://127.0.0.1:\(port)")
        }
    }

    /// Server-sent events as Anthropic writes them (`event:` and `data:` lines), cut into pieces of `size` bytes.
    static func events(_ events: [(String, String)], size: Int = 7) -> [String] {
        let text = events.map { "event: \($0.0)\ndata: \($0.1)\n\n" }.joined()
        return pieces(text, size: size)
    }

    static func pieces(_ text: String, size: Int) -> [String] {
        let bytes = Array(text.utf8)
        return stride(from: 0, to: bytes.count, by: size).map { String(decoding: bytes[$0..<min($0 + size, bytes.count)], as: UTF8.self) }
    }
}

/// The tool calls of `events`, their pieces joined.
func joinedToolCalls(_ events: [ChatEvent]) -> [ToolCall] {
    var calls = ToolCallAccumulator()
    for case .toolCall(let piece) in events { calls.add(piece) }
    return calls.calls
}
