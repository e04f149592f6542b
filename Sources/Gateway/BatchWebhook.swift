import AsyncHTTPClient
import Crypto
import Foundation
import Grammar
import NIOCore
import NIOHTTP1
import Storage

/// Announces a batch's end to its `webhook_url`, signed as the Standard Webhooks spec says (standardwebhooks.com):
/// headers `webhook-id` (the same on every retry, for the receiver to drop repeats), `webhook-timestamp` (Unix
/// seconds) and `webhook-signature` (`v1,` and the base64 HMAC-SHA256 of `id.timestamp.body` under the secret). The
/// body is OpenAI's event shape: `{"id", "object": "event", "created_at", "type": "batch.completed" (or `.failed`,
/// `.expired`, `.cancelled`), "data": {"id": batch id}}`. A delivery counts when the receiver answers 2xx; the runner
/// tries again with growing waits, up to `maxAttempts` times, also after a restart.
public struct BatchWebhook: Sendable {
    let secret: Data
    /// Whether receivers on this machine or the private network may be posted to (off: a key cannot make the server
    /// reach addresses only it can reach).
    public var allowPrivateHosts = false
    static let maxAttempts = 6

    public enum SecretError: Error, CustomStringConvertible {
        case malformed
        public var description: String {
            "a webhook secret is whsec_ followed by 24 to 64 random bytes in base64 (e.g. whsec_$(openssl rand -base64 32))"
        }
    }

    /// A secret as the spec writes it: `whsec_` and base64.
    public init(secret: String) throws(SecretError) {
        guard secret.hasPrefix("whsec_"), let bytes = Data(base64Encoded: String(secret.dropFirst(6))), (24...64).contains(bytes.count) else {
            throw .malformed
        }
        self.secret = bytes
    }

    /// The event announcing `batch`'s end, with an id fixed by the batch and its status.
    static func event(for batch: StoredBatch) -> (id: String, body: String) {
        let id = "evt_" + batch.id.dropFirst("batch_".count) + "_" + batch.status.rawValue
        let closed = batch.completedAt ?? batch.failedAt ?? batch.expiredAt ?? batch.cancelledAt ?? batch.createdAt
        let body = OrderedJSON.object([
            ("id", .string(id)), ("object", .string("event")), ("created_at", .int(Int(closed.timeIntervalSince1970))),
            ("type", .string("batch.\(batch.status.rawValue)")), ("data", .object([("id", .string(batch.id))])),
        ])
        return (id, body.text)
    }

    /// The three headers that sign `body`.
    func headers(id: String, timestamp: Int, body: String) -> [(String, String)] {
        let mac = HMAC<SHA256>.authenticationCode(for: Data("\(id).\(timestamp).\(body)".utf8), using: SymmetricKey(data: secret))
        return [("webhook-id", id), ("webhook-timestamp", String(timestamp)), ("webhook-signature", "v1," + Data(mac).base64EncodedString())]
    }

    /// Posts the event; whether the receiver took it (2xx within 10 s). A receiver whose host resolves to a loopback,
    /// private or link-local address is not posted to unless `allowPrivateHosts`.
    func deliver(_ batch: StoredBatch, to url: String, now: Date = Date()) async -> Bool {
        guard allowPrivateHosts || !Self.resolvesPrivately(url) else {
            RequestLogMiddleware<GatewayContext>.writeToStderr(
                "batch \(batch.id): not posting its webhook to \(url), a private address (serve --allow-private-webhooks allows it)\n")
            return false
        }
        let (id, body) = Self.event(for: batch)
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.headers.add(name: "user-agent", value: "switchyard")
        for (name, value) in headers(id: id, timestamp: Int(now.timeIntervalSince1970), body: body) { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(string: body))
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            _ = try? await response.body.collect(upTo: 64 * 1024)
            return (200..<300).contains(Int(response.status.code))
        } catch {
            return false
        }
    }

    static let privateRanges = (try? IPAllowList(commaSeparated: "0.0.0.0/8,10.0.0.0/8,100.64.0.0/10,127.0.0.0/8,169.254.0.0/16,172.16.0.0/12,192.168.0.0/16,::1/128,::/128,fc00::/7,fe80::/10,::ffff:0:0/96")) ?? IPAllowList()

    /// Whether the URL's host is, or resolves to, an address of this machine or a private network (or cannot be
    /// resolved, which is refused alike).
    static func resolvesPrivately(_ url: String) -> Bool {
        guard let host = URL(string: url)?.host?.trimmingCharacters(in: CharacterSet(charactersIn: "[]")), !host.isEmpty else { return true }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list else { return true }
        defer { freeaddrinfo(list) }
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let n = node {
            var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if let address = n.pointee.ai_addr,
               getnameinfo(address, n.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 {
                let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if privateRanges.allows(text) { return true }
            }
            node = n.pointee.ai_next
        }
        return false
    }

    /// Whether `text` may be a batch's `webhook_url`: http or https, with a host, at most 2,048 characters.
    static func acceptable(_ text: String) -> Bool {
        guard text.count <= 2048, let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
              let host = url.host, !host.isEmpty else { return false }
        return true
    }
}
