import Foundation
import Hummingbird
import HTTPTypes
import Storage

/// The guard on the request path: key → allowed model → requests-per-minute limit → the handler → a usage record.
///
/// Runs inside `ErrorMiddleware`, so its refusals (401, 403, 429) are rendered as OpenAI-shaped errors. To learn
/// the model before the handler runs it reads the JSON body of a POST (up to the surfaces' limit) and leaves it
/// buffered for the handler.
struct GuardMiddleware<Context: RequestContext>: RouterMiddleware {
    let access: AccessGuard
    /// Where refusals by the rate limit are counted (switchyard_rate_limited_total).
    var metrics: PrometheusMetrics? = nil

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if AccessGuard.openPaths.contains(request.uri.path) { return try await next(request, context) }
        var request = request
        let model = request.method == .post ? try await Self.peekModel(&request) : nil
        let (key, limit) = try await admit(request, model: model)
        // A local-only key makes every request it sends local-only (Backend.start reads this).
        return try await RequestPolicy.$localOnly.withValue(key?.limits.localOnly ?? false) {
            try await serve(request, context: context, next: next, key: key, limit: limit, model: model)
        }
    }

    /// The handler, then the usage record once the response body is written.
    private func serve(_ request: Request, context: Context, next: (Request, Context) async throws -> Response,
                       key: APIKey?, limit: RateLimiter.Decision?, model: String?) async throws -> Response {
        guard let usage = access.usage, let model else {
            var response = try await next(request, context)
            if let limit { response.headers.append(contentsOf: Self.fields(limit)) }
            return response
        }
        let meter = RequestMeter()
        let arrived = Date()
        let record: @Sendable (Int) -> Void = { status in
            usage.record(Self.record(meter: meter, key: key, model: model, status: status, arrived: arrived))
        }
        var response: Response
        do {
            response = try await RequestMeter.$current.withValue(meter) { try await next(request, context) }
        } catch {
            record(Self.status(of: error))
            throw error
        }
        if let limit { response.headers.append(contentsOf: Self.fields(limit)) }
        // The record is written once the body is (a stream ends when its generation does).
        let body = response.body
        let status = response.status.code
        response.body = ResponseBody(contentLength: body.contentLength) { writer in
            do {
                try await body.write(writer)
            } catch {
                record(499)   // the client went away mid-response
                throw error
            }
            record(status)
        }
        return response
    }

    /// With auth on: the verified key, allowed `model`, within its request limit (the decision, for the headers).
    private func admit(_ request: Request, model: String?) async throws -> (APIKey?, RateLimiter.Decision?) {
        guard access.requireAuth else { return (nil, nil) }
        let key = try await authenticate(request)
        if let model, !key.limits.allows(model: model) {
            throw APIError(.forbidden, "this API key may not use model '\(model)'", type: "invalid_request_error",
                           param: "model", code: "model_not_allowed")
        }
        guard let rpm = key.limits.requestsPerMinute else { return (key, nil) }
        let decision = access.limiter.acquire(key.id, perMinute: rpm)
        guard decision.allowed else {
            metrics?.rateLimited()
            throw APIError(.tooManyRequests,
                           "rate limit reached for requests: \(rpm) per minute for this API key; retry in \(decision.retryAfterSeconds) s",
                           type: "requests", code: "rate_limit_exceeded",
                           retryAfter: decision.retryAfterSeconds, headers: Self.fields(decision))
        }
        return (key, decision)
    }

    /// The key the request carries, verified; throws 401 naming what is wrong.
    private func authenticate(_ request: Request) async throws -> APIKey {
        guard let presented = Self.presentedKey(request) else {
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

    /// `Authorization: Bearer KEY` (scheme case-insensitive), else `X-API-Key: KEY`.
    static func presentedKey(_ request: Request) -> String? {
        if let auth = request.headers[.authorization] {
            let parts = auth.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" {
                let key = parts[1].trimmingCharacters(in: .whitespaces)
                if !key.isEmpty { return key }
            }
        }
        if let name = HTTPField.Name("x-api-key"), let key = request.headers[name]?.trimmingCharacters(in: .whitespaces), !key.isEmpty {
            return key
        }
        return nil
    }

    private struct ModelField: Decodable { var model: String? }

    /// The `model` of a JSON body, if there is one; the body stays readable by the handler.
    static func peekModel(_ request: inout Request) async throws -> String? {
        let body = try await request.collectBody(upTo: OpenAISurface.maxBody)
        guard body.readableBytes > 0 else { return nil }
        return (try? JSONDecoder().decode(ModelField.self, from: Data(buffer: body)))?.model
    }

    static func fields(_ decision: RateLimiter.Decision) -> HTTPFields {
        var fields = HTTPFields()
        for (name, value) in decision.headerValues {
            if let n = HTTPField.Name(name) { fields[n] = value }
        }
        return fields
    }

    static func status(of error: any Error) -> Int {
        if let e = error as? HTTPError { return e.status.code }
        return APIError.from(error).status.code
    }

    static func record(meter: RequestMeter, key: APIKey?, model: String, status: Int, arrived: Date) -> UsageRecord {
        let r = meter.reading
        let provider = r.deployment.flatMap { $0.split(separator: "/", maxSplits: 1).first.map(String.init) } ?? "local"
        let local = provider == "local"
        return UsageRecord(keyID: key?.id, model: model, deployment: r.deployment, provider: provider,
                           promptTokens: r.promptTokens, completionTokens: r.completionTokens,
                           latencyMs: (ContinuousClock.now - meter.started).milliseconds,
                           timeToFirstTokenMs: r.firstToken.map { ($0 - meter.started).milliseconds },
                           status: status, costUSD: local ? 0 : nil, servedLocally: local, timestamp: arrived)
    }
}
