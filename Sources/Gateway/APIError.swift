import Core
import Foundation
import Hummingbird
import NIOCore
import Routing
import Storage

/// An error as the HTTP surfaces report it: status, OpenAI-style type and code, the parameter at fault.
public struct APIError: Error, Sendable {
    public var status: HTTPResponse.Status
    public var message: String
    public var type: String
    public var param: String?
    public var code: String?
    public var retryAfter: Int?
    /// Further response headers (the `x-ratelimit-*` of a 429).
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, _ message: String, type: String = "invalid_request_error",
                param: String? = nil, code: String? = nil, retryAfter: Int? = nil, headers: HTTPFields = [:]) {
        self.status = status; self.message = message; self.type = type; self.param = param; self.code = code
        self.retryAfter = retryAfter; self.headers = headers
    }

    /// Maps any error from decoding, providers or the engine to its HTTP form.
    public static func from(_ error: Error) -> APIError {
        switch error {
        case let e as APIError: return e
        case let e as CoreError:
            switch e {
            case .badRequest(let m): return APIError(.badRequest, m)
            case .unknownModel:
                return APIError(.notFound, e.description, param: "model", code: "model_not_found")
            case .contextTooLong:
                return APIError(.contentTooLarge, e.description, param: "messages", code: "context_length_exceeded")
            case .overloaded(let r):
                return APIError(.tooManyRequests, "the model's queue is full; retry later", type: "rate_limit_error",
                                code: "overloaded", retryAfter: r ?? 1)
            case .upstream(let m): return APIError(.badGateway, m, type: "api_error")
            case .modelLoadFailed: return APIError(.internalServerError, e.description, type: "api_error", code: "model_load_failed")
            // The upstream refused the server's own credentials: a gateway problem, not the client's key.
            case .auth: return APIError(.badGateway, e.description, type: "api_error", code: "upstream_auth_failed")
            case .rateLimited(_, let r):
                return APIError(.tooManyRequests, e.description, type: "rate_limit_error", code: "rate_limit_exceeded", retryAfter: r ?? 1)
            case .unavailable(_, let r):
                return APIError(.serviceUnavailable, e.description, type: "api_error", code: "overloaded", retryAfter: r ?? 1)
            case .contextLengthExceeded:
                return APIError(.contentTooLarge, e.description, param: "messages", code: "context_length_exceeded")
            case .upstreamDown: return APIError(.badGateway, e.description, type: "api_error", code: "upstream_unreachable")
            case .timeout: return APIError(.gatewayTimeout, e.description, type: "api_error", code: "timeout")
            case .engine: return APIError(.internalServerError, e.description, type: "api_error", code: "engine_error")
            }
        case let e as RoutingError:
            switch e {
            case .roleUnmet:
                return APIError(.unprocessableContent, e.description, param: "model", code: "role_unmet")
            case .noLocalDeployment:
                return APIError(.forbidden, e.description, param: "model", code: "no_local_deployment")
            case .misconfigured:
                return APIError(.internalServerError, e.description, type: "api_error", code: "routing_misconfigured")
            }
        case is NIOTooManyBytesError:
            return BodyLimit.tooLarge(limit: nil)
        case let e as DecodingError:
            return APIError(.badRequest, "invalid request body: \(describe(e))", param: path(e))
        case StorageError.unavailable:
            // Keys, budgets or usage could not be read: the client may retry once the database is back.
            return APIError(.serviceUnavailable, "\(error)", type: "api_error", code: "storage_unavailable", retryAfter: 5)
        case is CancellationError:
            return APIError(.serviceUnavailable, "the request was cancelled (the server is shutting down or the model was unloaded)",
                            type: "api_error", retryAfter: 1)
        default:
            return APIError(.internalServerError, "\(error)", type: "api_error")
        }
    }

    /// `{"error": {"message", "type", "param", "code"}}`
    public var body: ByteBuffer {
        let object: [String: Any] = ["error": [
            "message": message, "type": type,
            "param": param.map { $0 as Any } ?? NSNull(), "code": code.map { $0 as Any } ?? NSNull(),
        ]]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return ByteBuffer(bytes: data)
    }

    /// The error in the shape of the API `path` belongs to: Anthropic's under `/v1/messages`, Ollama's
    /// `{"error": "…"}` under `/api/` (but not the native `/api/v1/`), OpenAI's elsewhere.
    public func response(forPath path: String) -> Response {
        let object: [String: Any]
        if path.hasPrefix("/v1/messages") {
            object = ["type": "error", "error": ["type": Self.anthropicType(status), "message": message]]
        } else if path.hasPrefix("/api/"), !path.hasPrefix("/api/v1/") {
            object = ["error": message]
        } else {
            return response
        }
        var headers: HTTPFields = [.contentType: "application/json"]
        if let r = retryAfter { headers[.retryAfter] = String(r) }
        headers.append(contentsOf: self.headers)
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Anthropic's error type for a status.
    static func anthropicType(_ status: HTTPResponse.Status) -> String {
        switch status.code {
        case 401: "authentication_error"
        case 403: "permission_error"
        case 404: "not_found_error"
        case 413: "request_too_large"
        case 429: "rate_limit_error"
        case 503, 529: "overloaded_error"
        case 400..<500: "invalid_request_error"
        default: "api_error"
        }
    }

    public var response: Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let r = retryAfter { headers[.retryAfter] = String(r) }
        headers.append(contentsOf: self.headers)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: body))
    }

    private static func path(_ e: DecodingError) -> String? {
        let ctx: DecodingError.Context? = switch e {
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c): c
        case .keyNotFound(let k, let c): DecodingError.Context(codingPath: c.codingPath + [k], debugDescription: c.debugDescription)
        @unknown default: nil
        }
        guard let ctx, !ctx.codingPath.isEmpty else { return nil }
        return ctx.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
    }

    private static func describe(_ e: DecodingError) -> String {
        switch e {
        case .typeMismatch(let t, let c): "'\(path(e) ?? "body")' should be \(t): \(c.debugDescription)"
        case .valueNotFound(let t, _): "'\(path(e) ?? "body")' is missing (expected \(t))"
        case .keyNotFound(let k, _): "required field '\(k.stringValue)' is missing"
        case .dataCorrupted(let c): c.debugDescription
        @unknown default: "\(e)"
        }
    }
}

/// Makes every thrown error into the surface's JSON error response.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let e as HTTPError where e.status == .notFound {
            // A path that exists with other methods: 405 naming them.
            let path = request.uri.path
            let allowed = OpenAPIDocument.methods(for: path)
            guard allowed.isEmpty else {
                let list = allowed.joined(separator: ", ")
                var error = APIError(.methodNotAllowed, "\(request.method.rawValue) is not allowed on \(path); it takes \(list)", code: "method_not_allowed")
                error.headers[.allow] = list
                return error.response(forPath: path)
            }
            return APIError(e.status, e.body ?? e.status.reasonPhrase, code: "not_found").response(forPath: path)
        } catch let e as HTTPError {
            return APIError(e.status, e.body ?? e.status.reasonPhrase).response(forPath: request.uri.path)
        } catch {
            return APIError.from(error).response(forPath: request.uri.path)
        }
    }
}
