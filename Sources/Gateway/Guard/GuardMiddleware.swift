import Core
import Foundation
import Hummingbird
import HTTPTypes
import Providers
import Storage

/// The guard on the request path: address → key (or the admin key) → allowed model → requests and tokens per
/// minute → budget → the cap on requests in flight → the handler → a usage record and the token charge.
///
/// Runs inside `ErrorMiddleware`, so its refusals (401, 403, 429) are rendered as OpenAI-shaped errors. To learn
/// the model before the handler runs it reads the JSON body of a POST (up to the surfaces' limit) and leaves it
/// buffered for the handler.
struct GuardMiddleware<Context: GatewayRequestContext>: RouterMiddleware {
    let access: AccessGuard
    /// Where refusals by the rate limit are counted (switchyard_rate_limited_total).
    var metrics: PrometheusMetrics? = nil

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if !access.allowedIPs.isEmpty, context.delegatedCaller == nil {
            let ip = context.clientIP
            guard access.allowedIPs.allows(ip) else {
                throw APIError(.forbidden, "requests from \(ip ?? "this address") are not allowed", type: "invalid_request_error",
                               code: "ip_not_allowed")
            }
        }
        if AccessGuard.openPaths.contains(request.uri.path) || request.uri.path.hasPrefix(TelegramRoutes.pathPrefix) {
            // Telegram's webhooks prove themselves with the bot's secret token instead of a key.
            return try await next(request, context)
        }
        if AccessGuard.isAdminPath(request.uri.path) {
            var admitted = context
            admitted.caller = try await checkAdmin(request, record: context.record)
            return try await next(request, admitted)
        }
        var request = request
        // The model matters to a key's model list, usage records and the cap on requests in flight; without any of
        // them the body is left for the handler alone to read.
        let needsModel = access.requireAuth || access.usage != nil || access.maxConcurrentRequests != nil
        // A file upload is no model request (and may be larger than any JSON body).
        let json = request.method == .post && needsModel && request.uri.path != FilesSurface.path ? try await Self.peekBody(&request) : nil
        // Ollama's clients name models with a tag (`smollm2:latest`): the key's model list sees the served name.
        let model = if case .string(let m)? = json?["model"] { OllamaSurface.servedName(m) } else { String?.none }
        let caller: GuardCaller
        if let delegated = context.delegatedCaller { caller = delegated } else { caller = try await identify(request, model: model) }
        switch caller {
        case .admin: context.record.update { $0.key = "(admin)" }
        case .key(let k): context.record.update { $0.key = k.name }
        case .anonymous: break
        }
        // A delegated request (a batch's) was made from an allowed address when its batch was created.
        let limits = try await admit(caller, model: model, clientIP: context.clientIP, checkAddress: context.delegatedCaller == nil)
        // The layers below know the caller: the usage route shows a key its own usage, and `Backend.start` makes a
        // local-only key's requests local-only and ignores an API key's keep_alive.
        var admitted = context
        admitted.caller = caller
        admitted.parsedBody = json
        guard let model else {
            var response = try await next(request, admitted)
            response.headers.append(contentsOf: limits)
            return response
        }
        let holdsPlace = access.maxConcurrentRequests != nil
        if let cap = access.maxConcurrentRequests, !access.inFlight.enter(limit: cap) {
            metrics?.rateLimited()
            throw APIError(.tooManyRequests, "the server is at its limit of \(cap) requests in flight; retry shortly",
                           type: "requests", code: "server_busy", retryAfter: 1)
        }
        let meter = context.record
        let arrived = Date()
        let batch = context.batchWork
        let finish: @Sendable (Int) async -> Void = { [access] status in
            if holdsPlace { access.inFlight.leave() }
            // A batch's request stopped for an interactive one runs again later: only the run that answers is counted
            // and charged.
            if batch && Task.isCancelled { return }
            let record = Self.record(meter, key: caller.key, model: model, status: status, arrived: arrived)
            access.usage?.record(record)
            guard let key = caller.key else { return }
            let tokens = record.promptTokens + record.completionTokens
            access.spending?.charge(key.id, tokens: tokens, usd: record.costUSD ?? 0)
            if let tpm = key.limits.tokensPerMinute, tokens > 0 {
                _ = try? await access.limiter.take("tpm:" + key.id, perMinute: tpm, cost: tokens, need: nil)
            }
        }
        var response: Response
        do {
            response = try await next(request, admitted)
        } catch {
            await finish(Self.status(of: error))
            throw error
        }
        response.headers.append(contentsOf: limits)
        // The record is written once the body is (a stream ends when its generation does).
        let body = response.body
        let status = response.status.code
        response.body = ResponseBody(contentLength: body.contentLength) { writer in
            do {
                try await body.write(writer)
            } catch {
                await finish(499)   // the client went away mid-response
                throw error
            }
            await finish(status)
        }
        return response
    }

    /// Takes `cost` from a key's bucket of `unit` (requests or tokens) if it holds one; adds the `x-ratelimit-*`
    /// headers to `fields`; throws 429 with Retry-After when the bucket is empty.
    private func check(_ bucket: String, unit: String, perMinute limit: Int, cost: Int, into fields: inout HTTPFields) async throws {
        let decision = try await access.limiter.take(bucket, perMinute: limit, cost: cost, need: 1)
        fields.append(contentsOf: Self.fields(decision.headerValues(for: unit)))
        guard decision.allowed else {
            metrics?.rateLimited()
            throw APIError(.tooManyRequests,
                           "rate limit reached for \(unit): \(limit) per minute for this API key; retry in \(decision.retryAfterSeconds) s",
                           type: unit, code: "rate_limit_exceeded", retryAfter: decision.retryAfterSeconds, headers: fields)
        }
    }

    /// Operations that change the server for everyone (`AccessGuard.isAdminPath`) need the admin key when one is set
    /// or auth is on: a valid API key is refused 403 `admin_required`; no key or a wrong one 401 (403
    /// `admin_api_disabled` when auth is on and the server has no admin key). With auth off and no admin key they are
    /// open (a loopback server whose callers are trusted). Returns who is calling: the admin, or anonymous on an open
    /// server.
    private func checkAdmin(_ request: Request, record: RequestRecord) async throws -> GuardCaller {
        let presented = Self.presentedKey(request)
        guard let admin = access.adminKey else {
            if !access.requireAuth { return .anonymous }
            if try await isOrdinaryKey(presented, record: record) {
                throw Self.adminRequired("this operation needs the admin key, and the server has none: start it with SWITCHYARD_ADMIN_KEY set")
            }
            throw APIError(.forbidden, "the admin API is off: start the server with SWITCHYARD_ADMIN_KEY set",
                           type: "invalid_request_error", code: "admin_api_disabled")
        }
        guard let presented else {
            throw Self.unauthorized("missing admin key: send it as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'")
        }
        if admin.matches(presented) {
            record.update { $0.key = "(admin)" }
            return .admin
        }
        if try await isOrdinaryKey(presented, record: record) {
            throw Self.adminRequired("this operation needs the admin key; an API key may use models, not change the server")
        }
        throw Self.unauthorized("invalid admin key")
    }

    /// Whether `presented` is a valid (active) API key of the key store.
    private func isOrdinaryKey(_ presented: String?, record: RequestRecord) async throws -> Bool {
        guard let presented, let keys = access.keys, case .accepted(let key) = try await keys.check(presented) else { return false }
        record.update { $0.key = key.name }
        return true
    }

    static func adminRequired(_ message: String) -> APIError {
        APIError(.forbidden, message, type: "invalid_request_error", code: "admin_required")
    }

    /// The caller: with auth on, the admin key or a verified API key (401 otherwise); with auth off, the admin when
    /// it shows the admin key, a key when it shows a valid one (so that its limits apply), else anonymous.
    private func identify(_ request: Request, model: String?) async throws -> GuardCaller {
        let presented = Self.presentedKey(request)
        if let presented, let admin = access.adminKey, admin.matches(presented) { return .admin }
        if access.requireAuth { return .key(try await authenticate(presented)) }
        return .anonymous
    }

    /// A key's addresses, model list, requests and tokens per minute and budget; the rate-limit headers to answer with.
    private func admit(_ caller: GuardCaller, model: String?, clientIP: String?, checkAddress: Bool = true) async throws -> HTTPFields {
        guard let key = caller.key else { return [:] }
        if checkAddress, !key.limits.allowedIPs.isEmpty, !((try? IPAllowList(key.limits.allowedIPs))?.allows(clientIP) ?? false) {
            throw APIError(.forbidden, "this API key may not be used from \(clientIP ?? "this address")", type: "invalid_request_error",
                           code: "ip_not_allowed")
        }
        if let model, !key.limits.allows(model: model) {
            throw APIError(.forbidden, "this API key may not use model '\(model)'", type: "invalid_request_error",
                           param: "model", code: "model_not_allowed")
        }
        var fields = HTTPFields()
        if let rpm = key.limits.requestsPerMinute {
            try await check("rpm:" + key.id, unit: "requests", perMinute: rpm, cost: 1, into: &fields)
        }
        if let tpm = key.limits.tokensPerMinute {
            // Let in while the bucket holds a token; the answer's tokens are charged when it ends.
            try await check("tpm:" + key.id, unit: "tokens", perMinute: tpm, cost: 0, into: &fields)
        }
        if let budget = key.limits.budget, let spending = access.spending {
            let spent = try await spending.spent(key.id)
            if SpendTracker.exhausted(budget, by: spent) {
                let what = switch budget {
                case .tokens(let n): "\(spent.tokens) of its \(n) tokens"
                case .usd(let x): String(format: "$%.4f of its $%.2f", spent.usd, x)
                }
                throw APIError(.tooManyRequests, "this API key has used its budget (\(what)); ask an administrator to raise it",
                               type: "insufficient_quota", code: "insufficient_quota")
            }
        }
        return fields
    }

    /// The key the request carries, verified; throws 401 naming what is wrong.
    private func authenticate(_ presented: String?) async throws -> APIKey {
        guard let presented else {
            throw Self.unauthorized("missing API key: send it as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'")
        }
        guard let keys = access.keys else { throw Self.unauthorized("invalid API key") }
        switch try await keys.check(presented) {
        case .accepted(let key): return key
        case .refused(.revoked): throw Self.unauthorized("this API key was revoked")
        case .refused(.expired(let at)): throw Self.unauthorized("this API key expired on \(StorageDates.display(at))")
        case .refused(.malformed), .refused(.unknown): throw Self.unauthorized("invalid API key")
        }
    }

    static func unauthorized(_ message: String) -> APIError {
        APIError(.unauthorized, message, type: "invalid_request_error", code: "invalid_api_key")
    }

    /// `Authorization: Bearer KEY` (scheme case-insensitive), else `X-API-Key: KEY`; spaces and tabs around the key
    /// are not part of it. (Read on every request: bytes compared directly, no Foundation string functions.)
    static func presentedKey(_ request: Request) -> String? {
        if let auth = request.headers[.authorization] {
            let bytes = Array(auth.utf8)
            let scheme = Array("bearer".utf8)
            if bytes.count > scheme.count, bytes[scheme.count] == UInt8(ascii: " "),
               zip(bytes, scheme).allSatisfy({ $0 | 0x20 == $1 }), let key = trimmed(bytes[(scheme.count + 1)...]) {
                return key
            }
        }
        if let name = GuardHeaders.apiKey, let value = request.headers[name], let key = trimmed(Array(value.utf8)[...]) { return key }
        return nil
    }

    /// `bytes` without leading and trailing spaces and tabs, as text; nil when nothing is left.
    private static func trimmed(_ bytes: ArraySlice<UInt8>) -> String? {
        func blank(_ b: UInt8) -> Bool { b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") }
        guard let first = bytes.firstIndex(where: { !blank($0) }), let last = bytes.lastIndex(where: { !blank($0) }) else { return nil }
        return String(decoding: bytes[first...last], as: UTF8.self)
    }

    /// The `model` of a JSON body, if there is one; the body stays readable by the handler.
    /// The body as JSON (nil if empty or not JSON), collected within the body limit and left readable for the handler.
    static func peekBody(_ request: inout Request) async throws -> JSONValue? {
        let body = try await request.collectBody(limit: BodyLimit.maxBytes)
        guard body.readableBytes > 0 else { return nil }
        return try? JSONReader.parse(body.readableBytesView)
    }

    static func fields(_ values: [(String, String)]) -> HTTPFields {
        var fields = HTTPFields()
        for (name, value) in values {
            if let n = HTTPField.Name(name) { fields[n] = value }
        }
        return fields
    }

    static func status(of error: any Error) -> Int {
        if let e = error as? HTTPError { return e.status.code }
        return APIError.from(error).status.code
    }

    static func record(_ meter: RequestRecord, key: APIKey?, model: String, status: Int, arrived: Date) -> UsageRecord {
        let r = meter.fields
        // `provider/model`, or `cache` for an answer replayed from the cache; none: the local engine alone served it.
        let provider = r.deployment.map { RouteInfo(deployment: $0).provider } ?? ProviderID.local.rawValue
        let local = provider == ProviderID.local.rawValue || provider == "cache"
        return UsageRecord(keyID: key?.id, model: model, deployment: r.deployment, provider: provider,
                           promptTokens: r.promptTokens, completionTokens: r.completionTokens,
                           latencyMs: (ContinuousClock.now - meter.started).milliseconds,
                           timeToFirstTokenMs: r.firstToken.map { ($0 - meter.started).milliseconds },
                           status: status, costUSD: local ? 0 : nil, servedLocally: local, timestamp: arrived)
    }
}

enum GuardHeaders {
    static let apiKey = HTTPField.Name("x-api-key")
}

/// Who is calling, once admitted.
enum GuardCaller: Sendable {
    case anonymous
    case admin
    case key(APIKey)

    var key: APIKey? { if case .key(let k) = self { k } else { nil } }
    /// Nothing this caller sends may leave the machine (a local-only key).
    var localOnly: Bool { key?.limits.localOnly ?? false }
    /// It may set how long a model stays loaded (`keep_alive`), which changes the server for everyone: not an API
    /// key while auth is on (its `keep_alive` is ignored), as loading and unloading are not.
    var mayKeepAlive: Bool { key == nil }
}
