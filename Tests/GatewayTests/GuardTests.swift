import Foundation
@testable import Gateway
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Providers
import Storage
import TestSupport
import Testing

/// The guard in-process: keys (401 / 403), the requests-per-minute limit (429), usage records; over a fresh
/// SQLite file and the real SmolLM2 model (shared with GatewayTests).
@Suite(.serialized) struct GuardTests {
    /// A fresh database with keys in every state.
    struct Fixture {
        let database: StorageDatabase
        let access: AccessGuard
        let good: String, revoked: String, expired: String, onlyOther: String, limited: String
        let goodID: String

        init() async throws {
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("guard-\(UUID().uuidString).sqlite")
            database = try StorageDatabase(url: url)
            let keys = KeyStore(database)
            let g = try await keys.create(name: "good")
            good = g.plaintext
            goodID = g.key.id
            revoked = try await keys.create(name: "gone").plaintext
            try await keys.revoke("gone")
            let now = Date()
            expired = try await keys.create(name: "old", expiresAt: now.addingTimeInterval(-60),
                                            now: now.addingTimeInterval(-3600)).plaintext
            onlyOther = try await keys.create(name: "other", limits: KeyLimits(allowedModels: ["gemma3-270m"])).plaintext
            limited = try await keys.create(name: "limited", limits: KeyLimits(requestsPerMinute: 3)).plaintext
            access = AccessGuard(database: database, requireAuth: true)
        }
    }

    func app(_ access: AccessGuard) throws -> some ApplicationProtocol {
        _ = try Reference.smolLM2()
        return Server(backend: GatewayTests.backend, options: .init(), access: access).application()
    }

    func error(_ r: TestResponse) throws -> [String: Any] {
        let o = try #require(JSONSerialization.jsonObject(with: Data(buffer: r.body)) as? [String: Any])
        return try #require(o["error"] as? [String: Any])
    }

    func chat(_ client: some TestClientProtocol, key: String?, model: String = "smollm2", header: String = "bearer") async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let key {
            if header == "bearer" { headers[.authorization] = "Bearer \(key)" } else { headers[HTTPField.Name("X-API-Key")!] = key }
        }
        let body = #"{"model":"\#(model)","messages":[{"role":"user","content":"Name a color."}],"temperature":0,"max_tokens":3}"#
        return try await client.execute(uri: "/v1/chat/completions", method: .post, headers: headers, body: ByteBuffer(string: body))
    }

    @Test func refusesMissingUnknownRevokedAndExpiredKeys() async throws {
        let f = try await Fixture()
        try await app(f.access).test(.router) { client in
            let none = try await chat(client, key: nil)
            #expect(none.status == .unauthorized)
            #expect(try error(none)["code"] as? String == "invalid_api_key")
            #expect((try error(none)["message"] as? String)?.contains("missing") == true)

            let unknown = try await chat(client, key: "sk-sy-AAAAAAAAAAAA-nope")
            #expect(unknown.status == .unauthorized)
            #expect(try error(unknown)["message"] as? String == "invalid API key")
            // The right id with a wrong secret reads the same as an unknown key.
            let wrong = try await chat(client, key: String(f.good.dropLast(4)) + "zzzz")
            #expect(wrong.status == .unauthorized)
            #expect(try error(wrong)["message"] as? String == "invalid API key")

            let revoked = try await chat(client, key: f.revoked)
            #expect(revoked.status == .unauthorized)
            #expect((try error(revoked)["message"] as? String)?.contains("revoked") == true)

            let expired = try await chat(client, key: f.expired, header: "x-api-key")
            #expect(expired.status == .unauthorized)
            #expect((try error(expired)["message"] as? String)?.contains("expired") == true)

            let health = try await client.execute(uri: "/api/v1/health", method: .get)
            #expect(health.status == .ok)
        }
    }

    @Test func allowedKeyWorksAndOtherModelsAre403() async throws {
        let f = try await Fixture()
        try await app(f.access).test(.router) { client in
            let ok = try await chat(client, key: f.good)
            #expect(ok.status == .ok)
            let viaHeader = try await chat(client, key: f.good, header: "x-api-key")
            #expect(viaHeader.status == .ok)

            let forbidden = try await chat(client, key: f.onlyOther)
            #expect(forbidden.status == .forbidden)
            #expect(try error(forbidden)["code"] as? String == "model_not_allowed")
        }
    }

    @Test func theRequestPastTheLimitGets429() async throws {
        let f = try await Fixture()
        try await app(f.access).test(.router) { client in
            let auth: HTTPFields = [.authorization: "Bearer \(f.limited)"]
            for i in 0..<3 {
                let r = try await client.execute(uri: "/v1/models", method: .get, headers: auth)
                #expect(r.status == .ok)
                #expect(r.headers[HTTPField.Name("x-ratelimit-limit-requests")!] == "3")
                #expect(r.headers[HTTPField.Name("x-ratelimit-remaining-requests")!] == String(2 - i))
            }
            let refused = try await client.execute(uri: "/v1/models", method: .get, headers: auth)
            #expect(refused.status == .tooManyRequests)
            let retry = try #require(refused.headers[.retryAfter].flatMap { Int($0) })
            #expect((1...20).contains(retry))   // one request regained every 20 s at 3 per minute
            #expect(refused.headers[HTTPField.Name("x-ratelimit-remaining-requests")!] == "0")
            #expect(refused.headers[HTTPField.Name("x-ratelimit-reset-requests")!] != nil)
            #expect(try error(refused)["code"] as? String == "rate_limit_exceeded")
            // The refusal is counted in /metrics, which needs no key.
            let metrics = try await client.execute(uri: "/metrics", method: .get)
            #expect(metrics.status == .ok)
            #expect(String(buffer: metrics.body).split(separator: "\n").contains { $0.hasPrefix("switchyard_rate_limited_total ") && $0 != "switchyard_rate_limited_total 0" })
            // Another key is not affected.
            let other = try await client.execute(uri: "/v1/models", method: .get, headers: [.authorization: "Bearer \(f.good)"])
            #expect(other.status == .ok)
        }
    }

    @Test func usageIsRecordedPerRequest() async throws {
        let f = try await Fixture()
        let usage = try #require(f.access.usage)
        try await app(f.access).test(.router) { client in
            for _ in 0..<2 { #expect(try await chat(client, key: f.good).status == .ok) }
            #expect(try await chat(client, key: f.onlyOther).status == .forbidden)   // refused before a model: no record
            try await usage.flush()
            let summary = try await usage.summary(key: "good", model: "smollm2")
            #expect(summary.totals.requests == 2)
            #expect(summary.totals.completionTokens > 0 && summary.totals.promptTokens > 0)
            #expect(summary.totals.servedLocally == 2)
            #expect(summary.totals.timeToFirstTokenCount == 2)

            let r = try await client.execute(uri: "/api/v1/usage?key=good&model=smollm2", method: .get,
                                             headers: [.authorization: "Bearer \(f.good)"])
            #expect(r.status == .ok)
            let o = try #require(JSONSerialization.jsonObject(with: Data(buffer: r.body)) as? [String: Any])
            #expect((o["totals"] as? [String: Any])?["requests"] as? Int == 2)
            let anonymous = try await client.execute(uri: "/api/v1/usage", method: .get)
            #expect(anonymous.status == .unauthorized)
        }
        try await usage.close()
    }

    @Test func rateLimiterStateMachine() {
        var m = RateLimiter.StateMachine(capacity: 2)
        for i in 0..<60 { #expect(m.acquire("a", perMinute: 60, now: 0).remaining == 59 - i) }
        let refused = m.acquire("a", perMinute: 60, now: 0.5)
        #expect(!refused.allowed && refused.retryAfterSeconds == 1)
        #expect(m.acquire("a", perMinute: 60, now: 1.0).allowed)   // one regained per second
        _ = m.acquire("b", perMinute: 1, now: 2)
        _ = m.acquire("c", perMinute: 1, now: 3)
        #expect(m.count == 2)   // bounded: the least recently used bucket went
    }

    @Test func keyCacheIsBoundedAndExpires() async throws {
        let calls = Counter()
        let cache = KeyCache(ttl: .milliseconds(200), capacity: 4) { _ in calls.add(); return .refused(.unknown) }
        _ = try await cache.check("k1")
        _ = try await cache.check("k1")
        #expect(calls.value == 1)
        try await Task.sleep(for: .milliseconds(300))
        _ = try await cache.check("k1")
        #expect(calls.value == 2)
        for i in 0..<10 { _ = try await cache.check("other\(i)") }
        #expect(cache.count <= 4)
    }

    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var n = 0
        func add() { lock.lock(); n += 1; lock.unlock() }
        var value: Int { lock.lock(); defer { lock.unlock() }; return n }
    }
}

extension GuardTests {
    @Test func resetIsWrittenLikeOpenAI() {
        #expect(RateLimiter.Decision.openAIDuration(.milliseconds(20)) == "20ms")
        #expect(RateLimiter.Decision.openAIDuration(.milliseconds(1500)) == "1.5s")
        #expect(RateLimiter.Decision.openAIDuration(.seconds(60)) == "1m0s")
        #expect(RateLimiter.Decision.openAIDuration(.milliseconds(59_999)) == "59.999s")
        #expect(RateLimiter.Decision.openAIDuration(.milliseconds(1_050)) == "1.05s")
        #expect(RateLimiter.Decision.openAIDuration(.milliseconds(61_005)) == "1m1.005s")
    }
}

extension GuardTests {
    @Test func loopbackAddresses() {
        for h in ["127.0.0.1", "localhost", "::1", "[::1]", "127.1.2.3"] { #expect(AccessGuard.isLoopback(h)) }
        for h in ["0.0.0.0", "::", "192.168.1.4", "example.com"] { #expect(!AccessGuard.isLoopback(h)) }
    }
}

@Suite struct PresentedKeyTests {
    func request(_ fields: HTTPFields) -> Request {
        Request(head: HTTPRequest(method: .get, scheme: nil, authority: nil, path: "/v1/models", headerFields: fields),
                body: RequestBody(buffer: ByteBuffer()))
    }

    @Test func bearerOrXAPIKeyWithoutSurroundingBlanks() {
        let apiKey = HTTPField.Name("x-api-key")!
        #expect(GuardMiddleware<GatewayContext>.presentedKey(request([.authorization: "Bearer sk-sy-a-b"])) == "sk-sy-a-b")
        #expect(GuardMiddleware<GatewayContext>.presentedKey(request([.authorization: "bEaReR   sk-sy-a-b \t"])) == "sk-sy-a-b")
        #expect(GuardMiddleware<GatewayContext>.presentedKey(request([apiKey: " sk-sy-c "])) == "sk-sy-c")
        #expect(GuardMiddleware<GatewayContext>.presentedKey(request([.authorization: "Basic dXNlcg==", apiKey: "k2"])) == "k2")
        #expect(GuardMiddleware<GatewayContext>.presentedKey(request([.authorization: "Bearer   "])) == nil)
        #expect(GuardMiddleware<GatewayContext>.presentedKey(request([.authorization: "Bearersk-sy-a-b"])) == nil)
        #expect(GuardMiddleware<GatewayContext>.presentedKey(request([.authorization: "Bearer"])) == nil)
        #expect(GuardMiddleware<GatewayContext>.presentedKey(request([:])) == nil)
        #expect(GuardMiddleware<GatewayContext>.presentedKey(request([.authorization: "Bearer ключ-é"])) == "ключ-é")
    }
}
