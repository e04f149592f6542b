import Core
import Hummingbird
import Providers
import Synchronization

/// What the layers of one request learn about it, read once its response is written — by the request log, the
/// Prometheus counter and the usage record. One per request, made with its context; a class because the layers that
/// fill it (the guard, the backend, the completion) run below the middlewares that read it, and a context is passed
/// down as a copy.
final class RequestRecord: Sendable {
    struct Fields: Sendable {
        /// The model the backend resolved (the `model` label of `switchyard_requests_total`).
        var model: String?
        /// The key's name, or `(admin)`.
        var key: String?
        /// The deployment that answered (`provider/model`).
        var deployment: String?
        /// The cache's verdict: `hit` or `miss` (nil: not cacheable).
        var cache: String?
        var promptTokens = 0
        var completionTokens = 0
        var firstToken: ContinuousClock.Instant?
    }

    let started = ContinuousClock.now
    private let state = Mutex(Fields())

    var fields: Fields { state.withLock { $0 } }

    func update(_ change: (inout Fields) -> Void) { state.withLock { change(&$0) } }

    func route(_ route: RouteInfo) { update { $0.deployment = route.deployment } }
    /// The first token arrived `at` (now by default).
    func firstToken(at: ContinuousClock.Instant = .now) { update { if $0.firstToken == nil { $0.firstToken = at } } }
    func usage(_ usage: Usage) { update { $0.promptTokens = usage.promptTokens; $0.completionTokens = usage.completionTokens } }
}

/// The request context the gateway's middlewares and routes use: the client's address, who is calling (set by the
/// guard for the layers below it) and the request's record.
protocol GatewayRequestContext: RequestContext {
    var clientIP: String? { get }
    var caller: GuardCaller { get set }
    var record: RequestRecord { get }
    var parsedBody: JSONValue? { get set }
    /// The caller of a request the server makes itself on someone's behalf; nil for every request from a client.
    var delegatedCaller: GuardCaller? { get }
    /// A batch's request (made by the server on the caller's behalf, in spare capacity): not interactive traffic, and
    /// when stopped for an interactive request it runs again later, so it is neither counted nor charged then.
    var batchWork: Bool { get }
}

extension Duration {
    /// Milliseconds as a Double.
    var milliseconds: Double {
        Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15
    }
}
