import Core
import Providers
import Foundation
import Grammar
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import Synchronization

/// The request context of a WebSocket upgrade: the gateway's (so that the same guard admits it) and Hummingbird's
/// handler reference.
public struct SocketContext: GatewayRequestContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let clientIP: String?
    var caller: GuardCaller = .anonymous
    let record = RequestRecord()
    var parsedBody: JSONValue?
    var delegatedCaller: GuardCaller? { nil }
    var batchWork: Bool { false }
    public let webSocket = WebSocketHandlerReference<SocketContext>()
    /// Why the guard refused the upgrade: the socket is opened only to say so and close.
    var refusal: APIError?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        clientIP = source.channel.remoteAddress?.ipAddress
    }
}

/// Admits a WebSocket upgrade as the guard admits any request; a refusal is kept for the socket to report (a refused
/// upgrade could only be answered 400 with no body, which says nothing to a browser or a client library).
struct SocketAdmission: RouterMiddleware {
    let guarding: GuardMiddleware<SocketContext>

    func handle(_ request: Request, context: SocketContext, next: (Request, SocketContext) async throws -> Response) async throws -> Response {
        do {
            return try await guarding.handle(request, context: context, next: next)
        } catch {
            var refused = context
            refused.refusal = APIError.from(error)
            return try await next(request, refused)
        }
    }
}

/// `/api/v1/ws`: the native API over one WebSocket, for web pages and long-lived clients. JSON text messages; several
/// generations at once, each under an id the client chooses:
///
/// - in: `{"type": "chat" | "generate", "id": ID, "request": {…}}` (the body of `/api/v1/chat` or `/api/v1/generate`;
///   always streamed), `{"type": "cancel", "id": ID}`, `{"type": "resume", "id": ID, "stream_id": S, "after": N}` (the
///   rest of a stream, as `GET /api/v1/streams/S`), `{"type": "ping"}`;
/// - out: `{"type": "started", "id", "stream_id"}`, then `{"type": "chunk", "id", "seq", "data": {…}}` per piece and
///   `{"type": "done", "id", "seq", "data": {…}}` (the native stream's lines), or `{"type": "error", "id", "error": {…}}`
///   (a refused request carries its HTTP `status`; a cancelled one the code `stream_cancelled`); `{"type": "pong"}`.
///
/// The socket is admitted at the upgrade with the same keys as any request (refused: an `error` message with the HTTP
/// `status` it would have had, then the close code 1008); each generation is then an ordinary
/// request of that key (limits, budgets, usage), run in-process through the server's routes. A slow reader holds its
/// generations back (the stream's window) rather than growing memory; a socket with nothing in flight and nothing
/// received for `idleTimeout` is closed; Hummingbird pings every 30 s. A generation whose socket closes is a stream
/// like any other: it goes on for the grace period, resumable by its `stream_id`.
struct WebSocketSurface: Sendable {
    /// The server's own routes, through which each generation runs.
    let responder: @Sendable (Request, GatewayContext) async throws -> Response
    let idleTimeout: Duration
    static let maxInFlight = 16
    static let maxMessageBytes = 1 << 20

    func register(on router: Router<SocketContext>) {
        router.ws("/api/v1/ws") { _, _ in .upgrade([:]) } onUpgrade: { inbound, outbound, context in
            if let refusal = context.requestContext.refusal {
                try? await outbound.write(.text(Session.error(nil, refusal).text))
                try? await outbound.close(.policyViolation, reason: "\(refusal.status.code) \(refusal.code ?? refusal.type)")
                return
            }
            let session = Session(surface: self, outbound: outbound, upgrade: context.request, clientIP: context.requestContext.clientIP,
                                  logger: context.logger)
            await session.run(inbound)
        }
    }

    /// One socket: its generations in flight, by the client's ids.
    final class Session: Sendable {
        let surface: WebSocketSurface
        let outbound: WebSocketOutboundWriter
        let upgrade: Request
        let clientIP: String?
        let logger: Logger
        private struct Running {
            var task: Task<Void, Never>?
            var streamID: String?
            /// Cancelled before its stream began (queued, or reading the prompt): cancelled as soon as it begins.
            var cancelPending = false
        }
        private struct State {
            var running: [String: Running] = [:]
            var lastHeard = ContinuousClock.now
        }
        private let state = Mutex(State())

        init(surface: WebSocketSurface, outbound: WebSocketOutboundWriter, upgrade: Request, clientIP: String?, logger: Logger) {
            self.surface = surface; self.outbound = outbound; self.upgrade = upgrade; self.clientIP = clientIP; self.logger = logger
        }

        func run(_ inbound: WebSocketInboundStream) async {
            let watchdog = Task { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(250))
                    guard let self else { return }
                    let idle = self.state.withLock { $0.running.isEmpty && ContinuousClock.now - $0.lastHeard >= self.surface.idleTimeout }
                    if idle {
                        try? await self.outbound.close(.normalClosure, reason: "idle")
                        return
                    }
                }
            }
            do {
                for try await message in inbound.messages(maxSize: WebSocketSurface.maxMessageBytes) {
                    state.withLock { $0.lastHeard = .now }
                    guard case .text(let text) = message else {
                        await send(Self.error(nil, APIError(.badRequest, "messages are JSON text, not binary")))
                        continue
                    }
                    await handle(text)
                }
            } catch {
                logger.debug("websocket closed: \(error)")
            }
            watchdog.cancel()
            // The socket is gone: its generations' streams go on for the grace period, resumable by id.
            let tasks = state.withLock { s in
                defer { s.running.removeAll() }
                return s.running.values.compactMap(\.task)
            }
            for t in tasks { t.cancel() }
        }

        private func handle(_ text: String) async {
            let message: OrderedJSON
            do { message = try OrderedJSON.parse(text, maxDepth: 64) } catch {
                await send(Self.error(nil, APIError(.badRequest, "a message must be a JSON object: \(error)")))
                return
            }
            let type = message["type"]?.stringValue
            if type == "ping" {
                await send(.object([("type", .string("pong"))]))
                return
            }
            guard case .string(let id)? = message["id"], (1...128).contains(id.utf8.count) else {
                await send(Self.error(nil, APIError(.badRequest, "id: a string of 1 to 128 characters is required", param: "id")))
                return
            }
            switch type {
            case "chat", "generate":
                guard case .object(var body)? = message["request"] else {
                    await send(Self.error(id, APIError(.badRequest, "request: the body of /api/v1/\(type ?? "") is required", param: "request")))
                    return
                }
                body.removeAll { $0.0 == "stream" }
                body.append(("stream", .bool(true)))
                await start(id, method: .post, path: "/api/v1/\(type ?? "")", body: OrderedJSON.object(body).text)
            case "resume":
                let idBytes = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_".utf8)
                guard case .string(let streamID)? = message["stream_id"], (1...64).contains(streamID.utf8.count),
                      streamID.utf8.allSatisfy(idBytes.contains) else {
                    await send(Self.error(id, APIError(.badRequest, "stream_id: the id of a stream (x-switchyard-stream-id) is required",
                                                       param: "stream_id")))
                    return
                }
                var after = 0
                if let a = message["after"] {
                    guard case .number(let n, _) = a, n >= 0, n == n.rounded(), n < 1e15 else {
                        await send(Self.error(id, APIError(.badRequest, "after must be a whole number of 0 or more", param: "after")))
                        return
                    }
                    after = Int(n)
                }
                await start(id, method: .get, path: "/api/v1/streams/\(streamID)?after=\(after)", body: nil, seq: after)
            case "cancel":
                enum Found { case none, pending, stream(String) }
                let found: Found = state.withLock { s in
                    guard let r = s.running[id] else { return .none }
                    if let streamID = r.streamID { return .stream(streamID) }
                    s.running[id]?.cancelPending = true
                    return .pending
                }
                switch found {
                case .none:
                    await send(Self.error(id, APIError(.notFound, "nothing runs under id '\(id)' on this socket", code: "stream_not_found")))
                case .pending: break
                case .stream(let streamID): await cancelStream(streamID)
                }
            default:
                await send(Self.error(id, APIError(.badRequest, "type must be chat, generate, resume, cancel or ping", param: "type")))
            }
        }

        /// Cancels a stream as from any connection: it ends with its cancellation, which its reader sends on.
        private func cancelStream(_ streamID: String) async {
            var head = HTTPRequest(method: .delete, scheme: "http", authority: "socket", path: "/api/v1/streams/" + streamID)
            head.headerFields = authHeaders()
            _ = try? await surface.responder(Request(head: head, body: RequestBody(buffer: ByteBuffer())),
                                             GatewayContext(inProcessFrom: clientIP, logger: logger))
        }

        /// The headers that identify the socket's caller, for each request it makes.
        private func authHeaders() -> HTTPFields {
            var fields: HTTPFields = [:]
            for name in [HTTPField.Name.authorization, GuardHeaders.apiKey!] {
                if let v = upgrade.headers[name] { fields[name] = v }
            }
            return fields
        }

        /// Runs one request through the server's routes, sending its NDJSON lines on as messages under `id`.
        private func start(_ id: String, method: HTTPRequest.Method, path: String, body: String?, seq: Int = 0) async {
            let refusal: APIError? = state.withLock { s in
                if s.running[id] != nil {
                    return APIError(.conflict, "id '\(id)' is already running on this socket", param: "id", code: "id_in_use")
                }
                guard s.running.count < WebSocketSurface.maxInFlight else {
                    return APIError(.tooManyRequests, "at most \(WebSocketSurface.maxInFlight) generations run at once on one socket",
                                    type: "requests", code: "too_many_streams")
                }
                s.running[id] = Running()
                return nil
            }
            if let refusal {
                await send(Self.error(id, refusal))   // awaited: a client that sends without reading is held here
                return
            }
            var head = HTTPRequest(method: method, scheme: "http", authority: "socket", path: path)
            head.headerFields = authHeaders()
            if body != nil { head.headerFields[.contentType] = "application/json" }
            let request = Request(head: head, body: RequestBody(buffer: ByteBuffer(string: body ?? "")))
            let task = Task { [self] in
                defer { _ = state.withLock { $0.running.removeValue(forKey: id) } }
                do {
                    let response = try await surface.responder(request, GatewayContext(inProcessFrom: clientIP, logger: logger))
                    guard response.status == .ok, let streamID = response.headers[StreamHub.idHeader],
                          response.headers[.contentType] == StreamFraming.ndjson.contentType else {
                        if response.status == .ok {
                            // A stream of server-sent events (OpenAI, Anthropic, Responses) is resumed over HTTP.
                            await send(Self.error(id, APIError(.badRequest, "this stream is server-sent events: resume it with GET /api/v1/streams/ID",
                                                               param: "stream_id", code: "stream_not_native")))
                            return
                        }
                        let body = try await BatchRunner.Collector.text(of: response)
                        await send(Self.refusal(id, status: response.status.code, body: body))
                        return
                    }
                    let cancelPending = state.withLock { s in
                        s.running[id]?.streamID = streamID
                        return s.running[id]?.cancelPending ?? false
                    }
                    await send(.object([("type", .string("started")), ("id", .string(id)), ("stream_id", .string(streamID))]))
                    if cancelPending { await cancelStream(streamID) }
                    try await response.body.write(LineWriter(id: id, seq: seq, session: self))
                } catch {
                    if Task.isCancelled { return }
                    let e = APIError.from(error)
                    await send(Self.refusal(id, status: e.status.code, body: String(buffer: e.body)))
                }
            }
            state.withLock { s in s.running[id]?.task = task }
        }

        /// Sends `message`; a socket already closed drops it.
        func send(_ message: OrderedJSON) async {
            try? await outbound.write(.text(message.text))
        }

        static func error(_ id: String?, _ e: APIError) -> OrderedJSON {
            refusal(id, status: e.status.code, body: String(buffer: e.body))
        }

        static func refusal(_ id: String?, status: Int, body: String) -> OrderedJSON {
            let error = (try? OrderedJSON.parse(body, maxDepth: 16))?["error"] ?? .object([("message", .string(body))])
            var members: [(String, OrderedJSON)] = [("type", .string("error"))]
            if let id { members.append(("id", .string(id))) }
            members += [("status", .int(status)), ("error", error)]
            return .object(members)
        }
    }

    /// Turns a native stream's NDJSON lines into messages: pieces into `chunk`, the answer into `done`, an error line
    /// into `error`.
    struct LineWriter: ResponseBodyWriter {
        let id: String
        var seq: Int
        let session: Session
        var pending = ByteBuffer()

        init(id: String, seq: Int, session: Session) { self.id = id; self.seq = seq; self.session = session }

        mutating func write(_ buffer: ByteBuffer) async throws {
            var buffer = buffer
            pending.writeBuffer(&buffer)
            while let newline = pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
                let length = newline - pending.readerIndex
                guard let line = pending.readString(length: length) else { break }
                pending.moveReaderIndex(forwardBy: 1)
                seq += 1
                try await forward(line)
            }
            pending.discardReadBytes()
        }

        private func forward(_ line: String) async throws {
            try Task.checkCancellation()
            let data = (try? OrderedJSON.parse(line, maxDepth: 512)) ?? .string(line)
            let message: OrderedJSON
            if let error = data["error"] {
                message = .object([("type", .string("error")), ("id", .string(id)), ("seq", .int(seq)), ("error", error)])
            } else {
                let done = data["done"] == .bool(true)
                message = .object([("type", .string(done ? "done" : "chunk")), ("id", .string(id)), ("seq", .int(seq)), ("data", data)])
            }
            // A socket that cannot take more holds this generation back here (the stream's window then holds its producer).
            try await session.outbound.write(.text(message.text))
        }

        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }
}
