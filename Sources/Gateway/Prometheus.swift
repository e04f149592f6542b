import Foundation
import Hummingbird
import Synchronization

/// The Prometheus text exposition format, version 0.0.4, written by hand (no swift-prometheus dependency: the
/// format is small and the gateway only needs counters, gauges and fixed-bucket histograms).
///
/// Each family gets `# HELP` and `# TYPE` lines, then its samples. Label values escape backslash, double quote and
/// newline; HELP text escapes backslash and newline. Histograms write cumulative `_bucket{le="…"}` samples ending
/// with `le="+Inf"` (equal to `_count`), then `_sum` and `_count`.
public struct PrometheusWriter {
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public private(set) var text = ""

    public init() {}

    /// `# HELP` and `# TYPE` for a family; `type` is counter, gauge, histogram or untyped.
    public mutating func family(_ name: String, type: String, help: String) {
        text += "# HELP \(name) \(Self.escapeHelp(help))\n# TYPE \(name) \(type)\n"
    }

    public mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: Double) {
        text += name + Self.labelSet(labels) + " " + Self.format(value) + "\n"
    }

    /// The samples of one histogram series: cumulative buckets, `+Inf`, `_sum`, `_count`.
    public mutating func histogram(_ name: String, _ labels: [(String, String)] = [], _ h: Histogram) {
        var cumulative = 0
        for (i, bound) in h.bounds.enumerated() {
            cumulative += h.buckets[i]
            sample(name + "_bucket", labels + [("le", Self.format(bound))], Double(cumulative))
        }
        sample(name + "_bucket", labels + [("le", "+Inf")], Double(h.count))
        sample(name + "_sum", labels, h.sum)
        sample(name + "_count", labels, Double(h.count))
    }

    static func labelSet(_ labels: [(String, String)]) -> String {
        guard !labels.isEmpty else { return "" }
        return "{" + labels.map { "\($0.0)=\"\(escapeLabel($0.1))\"" }.joined(separator: ",") + "}"
    }

    public static func escapeLabel(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    public static func escapeHelp(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }

    /// Whole numbers without a fraction; `+Inf`, `-Inf`, `NaN` as Prometheus spells them.
    public static func format(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }
}

/// Observations in fixed buckets; `buckets[i]` counts values ≤ `bounds[i]` and > `bounds[i-1]` (not cumulative:
/// the writer sums them); values above the last bound only count in `count` (the `+Inf` bucket).
public struct Histogram: Sendable, Equatable {
    public let bounds: [Double]
    public private(set) var buckets: [Int]
    public private(set) var sum = 0.0
    public private(set) var count = 0

    public init(bounds: [Double]) {
        self.bounds = bounds.sorted()
        buckets = Array(repeating: 0, count: bounds.count)
    }

    public mutating func observe(_ value: Double) {
        if let i = bounds.firstIndex(where: { value <= $0 }) { buckets[i] += 1 }
        sum += value
        count += 1
    }

    /// Seconds, for whole requests (a long generation can take minutes).
    public static let durationBounds: [Double] = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]
    /// Seconds until the first token.
    public static let firstTokenBounds: [Double] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
    /// Generation speeds, tokens per second.
    public static let speedBounds: [Double] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
}

/// The counters and histograms behind `GET /metrics` (gauges are read when scraped).
///
/// Label cardinality is bounded: `model` is a model that answered (names of models that do not exist collapse to
/// `(unknown model)`, as in /api/v1/metrics) or empty when the request failed before a model was resolved;
/// `route` is one of the registered paths (else `other`); `status` is an HTTP status code; `provider` a
/// configured provider.
public final class PrometheusMetrics: Sendable {
    struct RequestKey: Hashable { var model: String; var route: String; var status: Int }
    struct TokenKey: Hashable { var model: String; var direction: String }
    struct State {
        var requests: [RequestKey: Int] = [:]
        var durations: [String: Histogram] = [:]
        var firstToken: [String: Histogram] = [:]
        var speed: [String: Histogram] = [:]
        var tokens: [TokenKey: Int] = [:]
        var rateLimited = 0
        var batchPreemptions = 0
        var upstreamErrors: [String: Int] = [:]
        var cacheHits = 0
        var cacheMisses = 0
    }
    private let state = Mutex(State())

    public init() {}

    public func request(model: String, route: String, status: Int) {
        state.withLock { $0.requests[RequestKey(model: model, route: route, status: status), default: 0] += 1 }
    }

    /// A completion that ran to its end (or failed part-way): its duration, time to first token, tokens.
    public func completion(model: String, seconds: Double, firstToken: Double?, promptTokens: Int, completionTokens: Int) {
        state.withLock { s in
            s.durations[model, default: Histogram(bounds: Histogram.durationBounds)].observe(seconds)
            if let firstToken { s.firstToken[model, default: Histogram(bounds: Histogram.firstTokenBounds)].observe(firstToken) }
            // Completion tokens over the time from the first to the last (a one-token answer has no speed).
            if let firstToken, completionTokens > 1, seconds - firstToken > 0 {
                s.speed[model, default: Histogram(bounds: Histogram.speedBounds)].observe(Double(completionTokens - 1) / (seconds - firstToken))
            }
            s.tokens[TokenKey(model: model, direction: "prompt"), default: 0] += promptTokens
            s.tokens[TokenKey(model: model, direction: "completion"), default: 0] += completionTokens
        }
    }

    public func rateLimited() { state.withLock { $0.rateLimited += 1 } }
    /// Batch requests stopped (to run again later) because an interactive request arrived.
    func batchPreempted(_ n: Int) { state.withLock { $0.batchPreemptions += n } }

    /// A cacheable request answered from the response cache (hit) or not (miss).
    public func cache(hit: Bool) { state.withLock { if hit { $0.cacheHits += 1 } else { $0.cacheMisses += 1 } } }

    public func upstreamError(provider: String) { state.withLock { $0.upstreamErrors[provider, default: 0] += 1 } }

    /// What the gauges read at scrape time.
    public struct Gauges: Sendable {
        public struct Model: Sendable { public var name: String; public var loaded: Bool; public var queueDepth: Int; public var memoryBytes: Int }
        public var models: [Model] = []
        /// Deployment key → whether its circuit is open.
        public var circuits: [(String, Bool)] = []
        /// Streams whose generation runs, and how many of those no client is reading (in their grace period).
        public var streams = (running: 0, unattended: 0)
        public init() {}
    }

    /// The whole exposition, families in a fixed order, series sorted.
    public func render(_ gauges: Gauges = Gauges()) -> String {
        let s = state.withLock { $0 }
        var w = PrometheusWriter()
        w.family("switchyard_requests_total", type: "counter", help: "HTTP requests answered, by model, route and status.")
        for (k, v) in s.requests.sorted(by: { ($0.key.model, $0.key.route, $0.key.status) < ($1.key.model, $1.key.route, $1.key.status) }) {
            w.sample("switchyard_requests_total", [("model", k.model), ("route", k.route), ("status", String(k.status))], Double(v))
        }
        w.family("switchyard_request_duration_seconds", type: "histogram", help: "Time from the start of a completion to its end, by model.")
        for (m, h) in s.durations.sorted(by: { $0.key < $1.key }) { w.histogram("switchyard_request_duration_seconds", [("model", m)], h) }
        w.family("switchyard_time_to_first_token_seconds", type: "histogram", help: "Time from the start of a completion to its first text, by model.")
        for (m, h) in s.firstToken.sorted(by: { $0.key < $1.key }) { w.histogram("switchyard_time_to_first_token_seconds", [("model", m)], h) }
        w.family("switchyard_generation_tokens_per_second", type: "histogram", help: "Completion tokens per second after the first, per completion, by model.")
        for (m, h) in s.speed.sorted(by: { $0.key < $1.key }) { w.histogram("switchyard_generation_tokens_per_second", [("model", m)], h) }
        w.family("switchyard_tokens_total", type: "counter", help: "Tokens processed, by model and direction (prompt or completion).")
        for (k, v) in s.tokens.sorted(by: { ($0.key.model, $0.key.direction) < ($1.key.model, $1.key.direction) }) {
            w.sample("switchyard_tokens_total", [("model", k.model), ("direction", k.direction)], Double(v))
        }
        w.family("switchyard_rate_limited_total", type: "counter", help: "Requests refused by a per-key rate limit (429).")
        w.sample("switchyard_rate_limited_total", [], Double(s.rateLimited))
        w.family("switchyard_batch_preemptions_total", type: "counter",
                 help: "Batch requests stopped, to run again later, because an interactive request arrived.")
        w.sample("switchyard_batch_preemptions_total", [], Double(s.batchPreemptions))
        w.family("switchyard_cache_requests_total", type: "counter", help: "Cacheable requests, by result (hit or miss).")
        w.sample("switchyard_cache_requests_total", [("result", "hit")], Double(s.cacheHits))
        w.sample("switchyard_cache_requests_total", [("result", "miss")], Double(s.cacheMisses))
        w.family("switchyard_upstream_errors_total", type: "counter", help: "Completions that failed in their provider, by provider.")
        for (p, v) in s.upstreamErrors.sorted(by: { $0.key < $1.key }) { w.sample("switchyard_upstream_errors_total", [("provider", p)], Double(v)) }
        let models = gauges.models.sorted { $0.name < $1.name }
        w.family("switchyard_model_loaded", type: "gauge", help: "1 if the local model is loaded, else 0.")
        for m in models { w.sample("switchyard_model_loaded", [("model", m.name)], m.loaded ? 1 : 0) }
        w.family("switchyard_queue_depth", type: "gauge", help: "Requests queued or running on a loaded local model.")
        for m in models where m.loaded { w.sample("switchyard_queue_depth", [("model", m.name)], Double(m.queueDepth)) }
        w.family("switchyard_model_memory_bytes", type: "gauge", help: "Memory held by a loaded local model (weights and KV cache).")
        for m in models where m.loaded { w.sample("switchyard_model_memory_bytes", [("model", m.name)], Double(m.memoryBytes)) }
        w.family("switchyard_circuit_open", type: "gauge", help: "1 if the deployment's circuit breaker is open, else 0.")
        for (d, open) in gauges.circuits.sorted(by: { $0.0 < $1.0 }) { w.sample("switchyard_circuit_open", [("deployment", d)], open ? 1 : 0) }
        w.family("switchyard_streams", type: "gauge",
                 help: "Streamed completions generating now: all of them (running), and those no client reads, in their grace period (unattended).")
        w.sample("switchyard_streams", [("state", "running")], Double(gauges.streams.running))
        w.sample("switchyard_streams", [("state", "unattended")], Double(gauges.streams.unattended))
        return w.text
    }
}

/// Counts every request (except scrapes of /metrics) in `switchyard_requests_total` once its status is known.
struct PrometheusMiddleware<Context: GatewayRequestContext>: RouterMiddleware {
    let metrics: PrometheusMetrics

    static var knownRoutes: Set<String> {
        ["/", "/v1/models", "/v1/chat/completions", "/v1/completions", "/api/v1/generate", "/api/v1/chat",
         "/api/v1/models", "/api/v1/models/load", "/api/v1/models/unload", "/api/v1/health", "/api/v1/metrics", "/api/v1/usage",
         "/admin/keys", "/admin/usage", "/admin/profile"]
    }

    static func route(_ path: String) -> String {
        if knownRoutes.contains(path) { return path }
        if path.hasPrefix("/v1/models/") { return "/v1/models/{id}" }
        if path.hasPrefix("/admin/keys/") { return "/admin/keys/{key}" }
        return "other"
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.uri.path == "/metrics" { return try await next(request, context) }
        let route = Self.route(request.uri.path)
        do {
            let response = try await next(request, context)
            metrics.request(model: context.record.fields.model ?? "", route: route, status: response.status.code)
            return response
        } catch {
            metrics.request(model: context.record.fields.model ?? "", route: route, status: GuardMiddleware<Context>.status(of: error))
            throw error
        }
    }
}
