import Core
import Foundation
import Hummingbird
import HTTPTypes
import Providers
import Routing
import Synchronization

/// What the surfaces serve from: the provider that answers (a router over the local engine and remote upstreams,
/// or the local engine alone), the model host, and the counters behind /api/v1/metrics.
public final class Backend: Sendable {
    public let host: ModelHost
    /// The local models as the surfaces see them: list, load, unload, states (never the engine's types).
    public var models: any LocalModels { host }

    /// The prompt tokens of `request` on its local model (Anthropic's `count_tokens`).
    func countPromptTokens(_ request: ChatRequest) async throws -> Int { try await models.countPromptTokens(request) }
    public let local: LocalProvider
    /// Where completions start: `provider` if one was given (the router), else the local engine.
    public let provider: any Provider
    /// The router behind `provider`, when the backend routes (profiles, circuits and deployment states come from it).
    public let router: Routing.Router?
    public let metrics = ServerMetrics()
    /// The counters and histograms behind GET /metrics.
    public let prometheus = PrometheusMetrics()
    public let startedAt = Date()
    public let options: Options
    /// Every streamed completion, resumable by id.
    let streams: StreamHub
    /// Where providers' API keys are read from (again on a profile switch).
    let environment: [String: String]
    /// Profile switches, one at a time.
    let switches = SerialRunner()

    /// What the backend does before a request reaches a provider.
    public struct Options: Sendable {
        /// The response cache; nil: none.
        public var cache: ResponseCache?
        /// The longest prompt accepted, in characters of message text (or of a raw prompt); nil: no cap beyond the
        /// model's context (`MAX_PROMPT_LENGTH`).
        public var maxPromptCharacters: Int?
        /// How long a stream's generation goes on after its last reader left (for one that reconnects); zero: a
        /// dropped connection cancels it at once (`StreamHub`).
        public var streamGrace: Duration

        public init(cache: ResponseCache? = nil, maxPromptCharacters: Int? = nil, streamGrace: Duration = .seconds(15)) {
            self.cache = cache
            self.maxPromptCharacters = maxPromptCharacters
            self.streamGrace = streamGrace
        }
    }

    public init(host: ModelHost, provider: (any Provider)? = nil, router: Routing.Router? = nil, options: Options = Options(),
                environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.host = host
        self.local = LocalProvider(host: host)
        self.router = router
        self.provider = provider ?? router ?? local
        self.options = options
        self.environment = environment
        streams = StreamHub(grace: options.streamGrace)
    }

    /// Starts a completion and waits for its first event, so that failures (unknown model, prompt too long, queue
    /// full) become proper status codes before any byte of a response is sent. A request made with a local-only
    /// key is made local-only, and an API key's `keep_alive` is ignored (see `GuardCaller`). A cacheable request (see
    /// `ResponseCache`) is answered from the cache when it can be, and its answer stored when it cannot; `kind` tells
    /// the surfaces' request shapes apart in cache keys. What happens is written to the request's `record`.
    func start(_ request: ChatRequest, kind: String = "chat", cache directive: CacheDirective = .auto,
               caller: GuardCaller = .anonymous, record: RequestRecord = RequestRecord()) async throws -> StartedCompletion {
        var request = request
        if caller.localOnly { request.hints.localOnly = true }
        if !caller.mayKeepAlive { request.keepAlive = nil }
        try checkPromptLength(request)
        var cacheSlot: (ResponseCache, String)?
        if let cache = options.cache, let key = ResponseCache.key(for: request, kind: kind, directive: directive) {
            if directive != .refresh, let hit = await cache.lookup(key) {
                prometheus.cache(hit: true)
                let started = StartedCompletion(replaying: hit, model: request.model, metrics: metrics, prometheus: prometheus, record: record)
                try await started.prime()
                record.update { $0.model = request.model; $0.cache = "hit" }
                return started
            }
            prometheus.cache(hit: false)
            record.update { $0.cache = "miss" }
            cacheSlot = (cache, key)
        }
        let defaultProvider = provider.name
        do {
            let started: StartedCompletion
            if request.stream || !provider.answersWhole {
                started = StartedCompletion(stream: provider.chat(request), model: request.model, metrics: metrics,
                                            prometheus: prometheus, defaultProvider: defaultProvider, cache: cacheSlot, record: record)
            } else {
                // Not streamed to the client: read whole, with no stream between the upstream and the surface.
                let began = Date()
                let answer = try await provider.complete(request, timeout: nil)
                started = StartedCompletion(answer: answer, began: began, model: request.model, metrics: metrics,
                                            prometheus: prometheus, defaultProvider: defaultProvider, cache: cacheSlot, record: record)
            }
            try await started.prime()
            record.update { $0.model = request.model }
            return started
        } catch {
            // Names of models that do not exist are not kept (a client could send any number of them).
            let known = if case CoreError.unknownModel = error { false } else { true }
            let label = known ? request.model : "(unknown model)"
            metrics.record(model: label, error: true)
            record.update { $0.model = label }
            if known, APIError.from(error).status.code >= 500 { prometheus.upstreamError(provider: defaultProvider) }
            throw error
        }
    }

    private func checkPromptLength(_ request: ChatRequest) throws {
        guard let limit = options.maxPromptCharacters else { return }
        let length = request.rawPrompt?.count ?? request.messages.reduce(0) { $0 + $1.content.count }
        guard length > limit else { return }
        throw APIError(.badRequest, "the prompt has \(length) characters; this server accepts at most \(limit) (MAX_PROMPT_LENGTH)",
                       param: request.rawPrompt == nil ? "messages" : "prompt", code: "prompt_too_long")
    }
}

/// A completion whose first event has arrived. Reading it to the end records its metrics.
final class StartedCompletion: @unchecked Sendable {
    /// Where events come from: a stream, or (`queued`) a whole answer.
    private var iterator: AsyncThrowingStream<ChatEvent, Error>.AsyncIterator?
    /// Where the source says it is served, read once its first event is in (a router's stream, a whole answer, the cache).
    private let routeOfSource: @Sendable () -> RouteInfo?
    private let queued: [ChatEvent]
    private var queuedAt = 0
    private var pending: ChatEvent?
    private var done = false
    private let cancelStream: @Sendable () -> Void
    private let model: String
    private let metrics: ServerMetrics
    private let prometheus: PrometheusMetrics
    private let defaultProvider: String
    private let began: Date
    private var firstToken: Date?
    private var usage: Usage?
    /// Where the completion is served, when a router chose it.
    private(set) var route: RouteInfo?
    /// The record of the request that started this completion (route, first token, token counts).
    private let meter: RequestRecord
    /// Where the answer goes once complete (a cache miss), and what has been seen of it so far.
    private let cacheSlot: (cache: ResponseCache, key: String)?
    private var recorded: [CachedCompletion.Event] = []
    /// The answer replayed (a cache hit).
    private let replayed: CachedCompletion?
    /// The id and creation time the surface gave the answer.
    private var identity: (id: String, created: Int)?

    private init(iterator: AsyncThrowingStream<ChatEvent, Error>.AsyncIterator?, queued: [ChatEvent], cancel: @escaping @Sendable () -> Void,
                 route: @escaping @Sendable () -> RouteInfo?, began: Date, firstText: ContinuousClock.Instant?, model: String, metrics: ServerMetrics, prometheus: PrometheusMetrics,
                 defaultProvider: String, cache: (ResponseCache, String)?, replayed: CachedCompletion?, record: RequestRecord) {
        self.iterator = iterator
        self.meter = record
        self.queued = queued
        routeOfSource = route
        cancelStream = cancel
        self.began = began
        wholeFirstText = firstText
        self.model = model
        self.metrics = metrics
        self.prometheus = prometheus
        self.defaultProvider = defaultProvider
        self.cacheSlot = cache.map { (cache: $0.0, key: $0.1) }
        self.replayed = replayed
    }

    convenience init(stream: ChatStream, model: String, metrics: ServerMetrics, prometheus: PrometheusMetrics, defaultProvider: String,
                     cache: (ResponseCache, String)? = nil, record: RequestRecord) {
        self.init(iterator: stream.events.makeAsyncIterator(), queued: [], cancel: stream.cancel, route: { stream.route }, began: Date(), firstText: nil, model: model,
                  metrics: metrics, prometheus: prometheus, defaultProvider: defaultProvider, cache: cache, replayed: nil, record: record)
    }

    /// A whole answer, read since `began`; its first text counts as the first token.
    convenience init(answer: CompletedAnswer, began: Date, model: String, metrics: ServerMetrics, prometheus: PrometheusMetrics,
                     defaultProvider: String, cache: (ResponseCache, String)? = nil, record: RequestRecord) {
        let route = answer.route
        self.init(iterator: nil, queued: answer.events, cancel: {}, route: { route }, began: began, firstText: answer.firstTextAt, model: model,
                  metrics: metrics, prometheus: prometheus, defaultProvider: defaultProvider, cache: cache, replayed: nil, record: record)
    }

    /// When a whole answer's first text arrived (taken as the first token when it is read).
    private var wholeFirstText: ContinuousClock.Instant?

    private static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    /// The next event of the source.
    private func pull() async throws -> ChatEvent? {
        if let it = iterator {
            var it = it
            defer { iterator = it }
            return try await it.next()
        }
        guard queuedAt < queued.count else { return nil }
        queuedAt += 1
        return queued[queuedAt - 1]
    }

    /// A completion replayed from the cache: its events, served by `cache`.
    convenience init(replaying hit: CachedCompletion, model: String, metrics: ServerMetrics, prometheus: PrometheusMetrics, record: RequestRecord) {
        let events: [ChatEvent] = hit.events.map { e in
            switch e {
            case .text(let t): .text(t, nil)
            case .toolCall(let c): .toolCall(c)
            case .reasoning(let r): .reasoning(r)
            case .reasoningSignature(let s): .reasoningSignature(s)
            case .usage(let u): .usage(u)
            case .finished(let f): .finished(f)
            }
        }
        self.init(iterator: nil, queued: events, cancel: {}, route: { RouteInfo(deployment: "cache") }, began: Date(), firstText: nil,
                  model: model, metrics: metrics,
                  prometheus: prometheus, defaultProvider: "cache", cache: nil, replayed: hit, record: record)
    }

    /// The id and creation time of the answer: the cached ones on a hit, else `make()`'s (kept with the answer
    /// when it is stored).
    func identity(_ make: () -> (id: String, created: Int)) -> (id: String, created: Int) {
        if let replayed { return (replayed.id, replayed.created) }
        if let identity { return identity }
        let made = make()
        identity = made
        return made
    }

    /// The provider that served (the first part of the routed deployment's key), else the backend's own.
    var provider: String { route?.provider ?? defaultProvider }

    /// Waits for the first event, and takes the route the source tells beside it.
    func prime() async throws {
        pending = try await pull()
        if let r = routeOfSource() {
            route = r
            meter.route(r)
        }
        if pending == nil { done = true }
    }

    /// The next event, or nil at the end.
    func next() async throws -> ChatEvent? {
        if let p = pending { pending = nil; return observe(p) }
        if done { return nil }
        do {
            guard let e = try await pull() else {
                done = true
                finishMetrics(error: false)
                await saveToCache()
                return nil
            }
            return observe(e)
        } catch {
            done = true
            finishMetrics(error: true)
            throw error
        }
    }

    /// Asks the source to stop (the engine ends the sequence at its next token and still reports its usage; an upstream
    /// request is closed); the events already made are read on as usual. The one member safe to call from another
    /// task while this completion is being read.
    func stopGenerating() { cancelStream() }

    /// The client went away or the response could not be written: stop generating.
    func cancel() {
        cancelStream()
        if !done { done = true; finishMetrics(error: false) }
    }

    /// `x-switchyard-served-by` (`local`, `cache`, or the provider's name), `x-switchyard-cache` (hit or miss, for a
    /// cacheable request), and with a router `x-switchyard-route` (the deployment that answered),
    /// `x-switchyard-fallback-from` (those passed over) and `x-switchyard-route-reason` (how an alias, a role or
    /// `auto` chose the model).
    var routeHeaders: HTTPFields {
        var fields = RouteHeaders.fields(servedBy: provider, route: route)
        if replayed != nil || cacheSlot != nil, let name = HTTPField.Name("x-switchyard-cache") {
            fields[name] = replayed != nil ? "hit" : "miss"
        }
        return fields
    }

    /// The first text or tool call is the first token.
    private func markFirstToken() {
        guard firstToken == nil else { return }
        if let at = wholeFirstText {
            firstToken = Date(timeIntervalSinceNow: -Self.seconds(ContinuousClock.now - at))
            meter.firstToken(at: at)
        } else {
            firstToken = Date()
            meter.firstToken()
        }
    }

    private func observe(_ e: ChatEvent) -> ChatEvent {
        switch e {
        case .text(let t, _):
            markFirstToken()
            if cacheSlot != nil { recorded.append(.text(t)) }
        case .usage(let u):
            usage = u
            meter.usage(u)
            if cacheSlot != nil { recorded.append(.usage(u)) }
        case .toolCall(let c):
            markFirstToken()
            if cacheSlot != nil { recorded.append(.toolCall(c)) }
        case .reasoning(let r):
            markFirstToken()
            if cacheSlot != nil { recorded.append(.reasoning(r)) }
        case .reasoningSignature(let s):
            if cacheSlot != nil { recorded.append(.reasoningSignature(s)) }
        case .finished(let f):
            if cacheSlot != nil { recorded.append(.finished(f)) }
        }
        return e
    }

    /// A miss that ran to its end is stored, under the identity the surface gave it.
    private func saveToCache() async {
        guard let cacheSlot, let identity else { return }
        let entry = CachedCompletion(id: identity.id, created: identity.created, events: recorded, servedBy: route?.deployment)
        recorded = []
        await cacheSlot.cache.save(entry, key: cacheSlot.key)
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
