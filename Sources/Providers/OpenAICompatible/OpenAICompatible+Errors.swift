import AsyncHTTPClient
import Core
import Foundation
import NIOCore
import NIOHTTP1

/// An upstream's errors as canonical ones: HTTP status and OpenAI's `{"error": {message, type, code}}` body (or the
/// shapes other servers use), `Retry-After`, and transport failures (refused, reset, timed out).
extension OpenAICompatibleProvider {
    typealias ErrorBody = UpstreamErrorBody

    /// Seconds to wait: see `UpstreamHTTP.retryAfter`.
    static func retryAfter(_ headers: HTTPHeaders, now: Date = Date()) -> Int? { UpstreamHTTP.retryAfter(headers, now: now) }
}
