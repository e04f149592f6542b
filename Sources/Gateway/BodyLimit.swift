import Hummingbird
import NIOCore

/// The largest request body the server reads, and its refusal.
///
/// A request that declares a longer body (`Content-Length`) is answered 413 before any of it is read; a chunked
/// body is cut off by `collectBody(limit:)` as soon as it passes the route's limit, and answered 413 naming that limit.
enum BodyLimit {
    /// Every surface's limit for a request body (a chat of long documents fits; a file upload does not).
    static let maxBytes = 4 << 20

    /// The limit of `request`: `maxBytes`, or a file upload's (`FilesSurface.maxBytes` and room for the form's fields).
    static func limit(_ request: Request) -> Int {
        request.method == .post && request.uri.path == FilesSurface.path ? FilesSurface.maxBytes + 64 * 1024 : maxBytes
    }

    static func tooLarge(limit: Int?) -> APIError {
        let what = limit.map { "the limit of \(Self.describe($0))" } ?? "the server's limit"
        // The rest of the body is never read: the connection closes after the answer, so no byte of it is taken for a
        // next request and the client is not left sending into a connection that waits for it.
        return APIError(.contentTooLarge, "the request body is larger than \(what)", type: "invalid_request_error",
                        code: "request_too_large", headers: [.connection: "close"])
    }

    static func describe(_ bytes: Int) -> String {
        bytes >= 1 << 20 && bytes % (1 << 20) == 0 ? "\(bytes >> 20) MiB" : bytes >= 1 << 10 && bytes % (1 << 10) == 0 ? "\(bytes >> 10) KiB" : "\(bytes) bytes"
    }
}

/// Refuses a request whose declared `Content-Length` is over `BodyLimit.maxBytes` before its body is read.
struct BodyLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let declared = request.headers[.contentLength] {
            // Not a number (or too long to be one) is as bad as too large: it cannot be a body we would read.
            guard let length = Int(declared), length >= 0 else {
                throw APIError(.badRequest, "Content-Length '\(declared.prefix(32))' is not a length", code: "invalid_content_length")
            }
            let limit = BodyLimit.limit(request)
            if length > limit { throw BodyLimit.tooLarge(limit: limit) }
        }
        return try await next(request, context)
    }
}

extension Request {
    /// The body, at most `limit` bytes (kept for the handlers after this one); past it, 413 naming the limit.
    mutating func collectBody(limit: Int) async throws -> ByteBuffer {
        do {
            return try await collectBody(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw BodyLimit.tooLarge(limit: limit)
        }
    }
}
