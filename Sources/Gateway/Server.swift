import Core
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import Providers
import Registry
import Storage

/// The request context of every route: Hummingbird's basics, the client's address (for IP allow-lists), who is
/// calling (once the guard has admitted the request) and what the request's layers record about it.
public struct GatewayContext: GatewayRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The peer's IP address as text (`127.0.0.1`, `::1`); nil when unknown (a Unix socket, tests without one).
    public let clientIP: String?
    /// Set by the guard for the layers below it; anonymous without a guard or with auth off.
    var caller: GuardCaller = .anonymous
    let record = RequestRecord()
    /// The request body as JSON, when the guard already parsed it (to read its model), so the surface need not again.
    var parsedBody: JSONValue?
    /// Set only for a request the server makes itself on a caller's behalf (a batch's request, `BatchRunner`): the
    /// guard takes this caller instead of reading a key from the request, and applies its limits and usage as for
    /// any request. Nothing a client sends can set it.
    private(set) var delegatedCaller: GuardCaller?
    private(set) var batchWork = false

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        clientIP = source.channel.remoteAddress?.ipAddress
    }

    /// The context of a request made in-process for `caller`: a batch's (`batch`), or an integration's answering a
    /// person (a Telegram chat), which is interactive traffic like any client's.
    init(delegating caller: GuardCaller, logger: Logger, batch: Bool = true) {
        coreContext = .init(source: InProcessSource(logger: logger))
        clientIP = nil
        delegatedCaller = caller
        batchWork = batch
    }

    /// The context of a request made in-process for a client the server already holds a connection with (a
    /// WebSocket's generation): an ordinary request, identified by the headers it carries, from `clientIP`.
    init(inProcessFrom clientIP: String?, logger: Logger) {
        coreContext = .init(source: InProcessSource(logger: logger))
        self.clientIP = clientIP
    }

    private struct InProcessSource: RequestContextSource { let logger: Logger }
}

/// The HTTP server: every surface on one router, errors rendered as JSON, one log line per request.
public struct Server {
    public struct Options: Sendable {
        public var host: String
        public var port: Int
        public var jsonLogs: Bool
        /// On SIGTERM/SIGINT: stop accepting, let requests in flight finish for this long, then cancel them.
        public var shutdownGrace: Duration
        /// A WebSocket (`/api/v1/ws`) with nothing in flight and nothing received for this long is closed.
        public var webSocketIdleTimeout: Duration
        public init(host: String = "127.0.0.1", port: Int = 8080, jsonLogs: Bool = false, shutdownGrace: Duration = .seconds(10),
                    webSocketIdleTimeout: Duration = .seconds(300)) {
            self.host = host; self.port = port; self.jsonLogs = jsonLogs; self.shutdownGrace = shutdownGrace
            self.webSocketIdleTimeout = webSocketIdleTimeout
        }
    }

    public let backend: Backend
    public let options: Options
    /// Keys, limits and usage accounting; nil: none of them (every request is served, nothing recorded).
    public let access: AccessGuard?
    /// The profiles `POST /admin/profile` may switch to; nil: none.
    public let profiles: ProfileSource?
    /// Where the Responses API keeps responses; nil: nowhere.
    public let responses: ResponseStore?
    /// Where conversations (the Conversations API, `conversation` on Responses, native sessions) are kept; nil: nowhere.
    public let conversations: ConversationStore?
    /// Where files and batches (the Files and Batch APIs) are kept; nil: nowhere.
    public let batches: BatchStore?
    /// Interactive requests in flight, which batch work yields to.
    let traffic: BatchTraffic
    /// Tells the batch runner (once there is one) that a batch was made or cancelled.
    let batchWaker = BatchWaker()
    /// Signs the announcements of batches' ends to their `webhook_url`; nil: batches may not ask for one.
    public var batchWebhook: BatchWebhook?
    /// The Telegram bots, by name (`telegram:` in the registry).
    var telegram: [String: TelegramBot] = [:]

    /// Serves the registry's Telegram bots; `secrets` gives each bot's token and secret token by their variables' names.
    public mutating func addTelegramBots(_ declarations: [TelegramBotDeclaration], secrets: [String: String]) throws {
        for d in declarations.sorted(by: { $0.name < $1.name }) {
            guard let token = secrets[d.tokenEnv], !token.isEmpty else {
                throw APIError(.internalServerError, "telegram bot '\(d.name)': \(d.tokenEnv) is set neither in the environment nor in the secrets file")
            }
            guard let secret = secrets[d.secretTokenEnv], TelegramBot.validSecret(secret) else {
                throw APIError(.internalServerError, "telegram bot '\(d.name)': \(d.secretTokenEnv) must be set (environment or secrets file) to 1–256 letters, digits, _ or - (e.g. openssl rand -hex 32)")
            }
            telegram[d.name] = TelegramBot(declaration: d, token: token, secretToken: secret, conversations: conversations)
        }
    }

    public init(backend: Backend, options: Options, access: AccessGuard? = nil, profiles: ProfileSource? = nil,
                responses: ResponseStore? = nil, conversations: ConversationStore? = nil, batches: BatchStore? = nil) {
        self.backend = backend
        self.options = options
        self.access = access
        self.profiles = profiles
        self.responses = responses
        self.conversations = conversations
        self.batches = batches
        traffic = BatchTraffic(onPreempt: { [prometheus = backend.prometheus] in prometheus.batchPreempted($0) })
    }

    /// The runner of this server's batches (nil without a database): its requests go through routes of their own,
    /// built as the server's, sharing every state. Run it beside the application (`run()`), one per server.
    public func batchRunner(concurrency: Int = 1) -> BatchRunner? {
        guard let batches else { return nil }
        let runner = BatchRunner(store: batches, responder: router().buildResponder(), traffic: traffic, keys: access?.keyStore,
                                 requireAuth: access?.requireAuth ?? false, concurrency: concurrency, webhook: batchWebhook,
                                 runnerID: options.port == 0 ? OpenAISurface.newID("runner_")
                                     : "\(ProcessInfo.processInfo.hostName):\(options.port)")
        batchWaker.set { [weak runner] in runner?.wake() }
        return runner
    }

    public func router() -> Router<GatewayContext> {
        let router = Router(context: GatewayContext.self)
        router.add(middleware: RequestLogMiddleware(json: options.jsonLogs))
        router.add(middleware: PrometheusMiddleware(metrics: backend.prometheus))
        router.add(middleware: ErrorMiddleware())
        router.add(middleware: BodyLimitMiddleware())
        if let access {
            router.add(middleware: GuardMiddleware(access: access, metrics: backend.prometheus))
            if let usage = access.usage { UsageRoute(usage: usage).register(on: router) }
            if let store = access.keyStore { AdminRoutes(store: store, cache: access.keys).register(on: router) }
        }
        router.add(middleware: InteractiveTrafficMiddleware(traffic: traffic))
        OpenAISurface(backend: backend).register(on: router)
        NativeSurface(backend: backend, conversations: conversations).register(on: router)
        OllamaSurface(backend: backend).register(on: router)
        AnthropicSurface(backend: backend).register(on: router)
        ResponsesSurface(backend: backend, store: responses, conversations: conversations).register(on: router)
        ConversationsSurface(store: conversations).register(on: router)
        FilesSurface(store: batches).register(on: router)
        BatchesSurface(store: batches, wake: { [batchWaker] in batchWaker.wake() }, webhooks: batchWebhook != nil).register(on: router)
        TelegramRoutes(bots: telegram).register(on: router)
        StreamRoutes(hub: backend.streams).register(on: router)
        OpenAPIDocument.register(on: router)
        AdminProfileRoutes(backend: backend, profiles: profiles).register(on: router)
        // Prometheus scrapes, open without a key like /api/v1/health (AccessGuard.openPaths).
        router.get("/metrics") { [backend] _, _ in try await Server.prometheusMetrics(backend) }
        // Reached only when a request to the WebSocket's path was not upgraded (it is not a WebSocket handshake).
        router.get("/api/v1/ws") { _, _ -> Response in
            throw APIError(HTTPResponse.Status(code: 426, reasonPhrase: "Upgrade Required"),
                           "/api/v1/ws is a WebSocket: connect with a WebSocket client", code: "websocket_required")
        }
        router.get("/") { _, _ in
            "Switchyard — OpenAI-compatible API at /v1, native API at /api/v1 (health: /api/v1/health)\n"
        }
        return router
    }

    /// The routes a WebSocket upgrade passes: the same log and guard as any request, then `/api/v1/ws`, whose
    /// generations run through `responder` (the server's own routes).
    func webSocketRouter(responder: some HTTPResponder<GatewayContext>) -> Router<SocketContext> {
        let router = Router(context: SocketContext.self)
        router.add(middleware: RequestLogMiddleware(json: options.jsonLogs))
        router.add(middleware: ErrorMiddleware())
        if let access { router.add(middleware: SocketAdmission(guarding: GuardMiddleware(access: access, metrics: backend.prometheus))) }
        WebSocketSurface(responder: { try await responder.respond(to: $0, context: $1) }, idleTimeout: options.webSocketIdleTimeout)
            .register(on: router)
        return router
    }

    /// Builds the application; `onRunning` is called with the bound port once the server listens.
    public func application(onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        var logger = Logger(label: "switchyard")
        logger.logLevel = .warning
        let inProcess = router().buildResponder()
        let sockets = webSocketRouter(responder: inProcess)
        for bot in telegram.values { bot.attach { try await inProcess.respond(to: $0, context: $1) } }
        return Application(
            router: router(),
            server: .http1WebSocketUpgrade(webSocketRouter: sockets, configuration: .init(
                ws: .init(maxFrameSize: WebSocketSurface.maxMessageBytes, autoPing: .enabled(timePeriod: .seconds(30))))),
            configuration: .init(address: .hostname(options.host, port: options.port), serverName: "switchyard"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
    }
}

/// On SIGTERM/SIGINT the server stops accepting and waits for requests in flight (ServiceLifecycle); this gives
/// them `grace` and then cancels their generations, so shutdown never waits on a long stream.
public final class ShutdownGrace: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []

    public init(host: any LocalModels, grace: Duration) {
        for sig in [SIGTERM, SIGINT] {
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                Task {
                    try? await Task.sleep(for: grace)
                    await host.cancelAll()
                }
            }
            source.resume()
            sources.append(source)
        }
    }

    deinit { for s in sources { s.cancel() } }
}
/// One line per request on stderr: method, path, status, duration (and JSON with `--log-format json`).
/// The id a request is logged and answered under (`x-request-id`).
enum RequestID {
    static let header = HTTPField.Name("x-request-id")!
    private static let idBytes = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.".utf8)

    /// The caller's `x-request-id` when it is a plausible id (1–64 of letters, digits, `-`, `_`, `.`), else a new one.
    static func of(_ request: Request) -> String {
        if let given = request.headers[header], (1...64).contains(given.utf8.count), given.utf8.allSatisfy(idBytes.contains) {
            return given
        }
        var random = SystemRandomNumberGenerator()
        return "req_" + String(random.next() as UInt64, radix: 16) + String(random.next() as UInt32, radix: 16)
    }
}

struct RequestLogMiddleware<Context: GatewayRequestContext>: RouterMiddleware {
    let json: Bool

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let id = RequestID.of(request)
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            log(request, id: id, status: APIError.from(error).status.code, start: start, context.record.fields)
            throw error
        }
        response.headers[RequestID.header] = id
        log(request, id: id, status: response.status.code, start: start, context.record.fields,
            reason: response.headers[RouteHeaders.reason])
        return response
    }

    /// Method, path, status, time to the response's head, request id; and, where known, the model, the key's name,
    /// the deployment that answered (and why the router chose it) and the cache's verdict.
    private func log(_ request: Request, id: String, status: Int, start: ContinuousClock.Instant, _ f: RequestRecord.Fields,
                     reason: String? = nil) {
        let elapsed = ContinuousClock.now - start
        let ms = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        let extra = [("model", f.model), ("key", f.key), ("route", f.deployment), ("cache", f.cache), ("route_reason", reason)].compactMap { k, v in v.map { (k, $0) } }
        var line: String
        if json {
            var fields: [String: Any] = [
                "time": ISO8601DateFormatter().string(from: Date()), "method": request.method.rawValue,
                "path": request.uri.path, "status": status, "duration_ms": (ms * 10).rounded() / 10, "request_id": id,
            ]
            for (k, v) in extra { fields[k] = v }
            let data = (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            line = String(decoding: data, as: UTF8.self)
        } else {
            let tenths = Int((ms * 10).rounded())
            line = request.method.rawValue
            line.reserveCapacity(160)
            for part in [" ", request.uri.path, " ", String(status), " ", String(tenths / 10), ".", String(tenths % 10), " ms ", id] {
                line += part
            }
            for (k, v) in extra { line += " "; line += k; line += "="; line += v }
        }
        line += "\n"
        Self.writeToStderr(line)
    }

    /// One `write(2)` per line (no Foundation buffering or locking; a line of a few hundred bytes is written whole).
    static func writeToStderr(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            guard let base = bytes.baseAddress else { return }
            var offset = 0
            while offset < bytes.count {
                let n = write(2, base + offset, bytes.count - offset)
                if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { return }
            }
        }
    }
}
