import Core
import Foundation
import Hummingbird
import HTTPTypes
import Providers
import Synchronization

/// What the surfaces serve from: the provider that answers (a router over the local engine and remote upstreams,
/// or the local engine alone), the model host, and the counters behind /api/v1/metrics.
public final class Backend: Sendable {
    public let host: ModelHost
    public let local: LocalProvider
    /// Where completions start: `provider` if one was given (the router), else the local engine.
    public let provider: any Provider
    public let metrics = ServerMetrics()
    /// The counters and histograms behind GET /metrics.
    public let prometheus = PrometheusMetrics()
    public let startedAt = Date()
    /// Where providers' API keys are read from (again on a profile switch).
    let environment: [String: String]
    /// Profile switches, one at a time.
    let switches = SerialRunner()

    public init(host: ModelHost, provider: (any Provider)? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.host = host
        self.local = LocalProvider(host: host)
        self.provider = provider ?? local
        self.environment = environment
    }

    /// Starts a completion and waits for its first event, so that failures (unknown model, prompt too long, queue
    /// full) become proper status codes before any byte of a response is sent. A request made with a local-only
    /// key (`RequestPolicy.localOnly`) is made local-only.
    func start(_ request: ChatRequest) async throws -> StartedCompletion {
        var request = request
        if RequestPolicy.localOnly { request.hints.localOnly = true }
        let stream = provider.chat(request)
        let started = StartedCompletion(stream: stream, model: request.model, metrics: metrics, prometheus: prometheus,
                                        defaultProvider: provider is LocalProvider ? "local" : provider.name)
        do {
            try await started.prime()
        } catch {
            // Names of models that do not exist are not kept (a client could send any number of them).
            let known = if case CoreError.unknownModel = error { false } else { true }
            let label = known ? request.model : "(unknown model)"
            metrics.record(model: label, error: true)
            MetricsSlot.current?.model = label
            if known, APIError.from(error).status.code >= 500 { prometheus.upstreamError(provider: started.provider) }
            throw error
        }
        MetricsSlot.current?.model = request.model
        return started
    }
}

/// A completion whose first event has arrived. Reading it to the end records its metrics.
final class StartedCompletion: @unchecked Sendable {
    private var iterator: AsyncThrowingStream<ChatEvent, Error>.AsyncIterator
    private var pending: ChatEvent?
    private var done = false
    private let cancelStream: @Sendable () -> Void
    private let model: String
    private let metrics: ServerMetrics
    private let prometheus: PrometheusMetrics
    private let defaultProvider: String
    private let began = Date()
    private var firstToken: Date?
    private var usage: Usage?
    /// Where the completion is served, when a router chose it.
    private(set) var route: RouteInfo?
    /// The usage meter of the request that started this completion, if the guard made one.
    private let meter = RequestMeter.current

    init(stream: ChatStream, model: String, metrics: ServerMetrics, prometheus: PrometheusMetrics, defaultProvider: String) {
        iterator = stream.events.makeAsyncIterator()
        cancelStream = stream.cancel
        self.model = model
        self.metrics = metrics
        self.prometheus = prometheus
        self.defaultProvider = defaultProvider
    }

    /// The provider that served (the first part of the routed deployment's key), else the backend's own.
    var provider: String { route?.provider ?? defaultProvider }

    /// Waits for the first event; a router's `.route` event is kept as `route` and the event after it is awaited too.
    func prime() async throws {
        pending = try await iterator.next()
        if case .route(let r) = pending {
            route = r
            meter?.route(r)
            pending = try await iterator.next()
        }
        if pending == nil { done = true }
    }

    /// The next event, or nil at the end.
    func next() async throws -> ChatEvent? {
        if let p = pending { pending = nil; return observe(p) }
        if done { return nil }
        do {
            var event = try await iterator.next()
            while case .route = event { event = try await iterator.next() }
            guard let e = event else { done = true; finishMetrics(error: false); return nil }
            return observe(e)
        } catch {
            done = true
            finishMetrics(error: true)
            throw error
        }
    }

    /// The client went away or the response could not be written: stop generating.
    func cancel() {
        cancelStream()
        if !done { done = true; finishMetrics(error: false) }
    }

    /// `x-switchyard-served-by` (`local`, or the provider's name), and with a router `x-switchyard-route` (the
    /// deployment that answered), `x-switchyard-fallback-from` (those passed over) and `x-switchyard-route-reason`
    /// (how an alias, a role or `auto` chose the model).
    var routeHeaders: HTTPFields {
        var fields = HTTPFields()
        fields[RouteHeaders.servedBy] = provider
        guard let route else { return fields }
        fields[RouteHeaders.route] = route.deployment
        if !route.fallbackFrom.isEmpty { fields[RouteHeaders.fallbackFrom] = route.fallbackFrom.joined(separator: ", ") }
        if let reason = route.reason { fields[RouteHeaders.reason] = RouteHeaders.headerSafe(reason) }
        return fields
    }

    private func observe(_ e: ChatEvent) -> ChatEvent {
        switch e {
        case .text:
            if firstToken == nil { firstToken = Date(); meter?.firstToken() }
        case .usage(let u):
            usage = u
            meter?.usage(u)
        default: break
        }
        return e
    }

    private func finishMetrics(error: Bool) {
        let now = Date()
        let genSeconds = firstToken.map { now.timeIntervalSince($0) } ?? 0
        metrics.record(model: model, error: error, promptTokens: usage?.promptTokens ?? 0,
                       completionTokens: usage?.completionTokens ?? 0, latency: now.timeIntervalSince(began),
                       generationSeconds: genSeconds)
        prometheus.completion(model: model, seconds: now.timeIntervalSince(began), firstToken: firstToken.map { $0.timeIntervalSince(began) },
                              promptTokens: usage?.promptTokens ?? 0, completionTokens: usage?.completionTokens ?? 0)
        if error { prometheus.upstreamError(provider: provider) }
    }
}

/// Per-model counters for /api/v1/metrics.
public final class ServerMetrics: Sendable {
    public struct Model: Sendable, Codable {
        public var requests = 0
        public var errors = 0
        public var promptTokens = 0
        public var completionTokens = 0
        public var totalLatency = 0.0
        public var generationSeconds = 0.0
    }
    private let models = Mutex<[String: Model]>([:])

    func record(model: String, error: Bool, promptTokens: Int = 0, completionTokens: Int = 0, latency: Double = 0, generationSeconds: Double = 0) {
        models.withLock { m in
            var s = m[model] ?? Model()
            s.requests += 1
            if error { s.errors += 1 }
            s.promptTokens += promptTokens
            s.completionTokens += completionTokens
            s.totalLatency += latency
            s.generationSeconds += generationSeconds
            m[model] = s
        }
    }

    public func snapshot() -> [String: Model] { models.withLock { $0 } }
}
