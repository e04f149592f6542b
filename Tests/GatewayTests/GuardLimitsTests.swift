import Core
import Foundation
@testable import Gateway
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Providers
import Redis
import Storage
import TestSupport
import Synchronization
import Testing

/// Tokens per minute, budgets, the admin key and API, the IP allow-list, the prompt-length cap and the response
/// cache, over a fresh SQLite file and the real SmolLM2 model.
@Suite(.serialized) struct GuardLimitsTests {
    static func database() throws -> StorageDatabase {
        try StorageDatabase(url: FileManager.default.temporaryDirectory.appendingPathComponent("limits-\(UUID().uuidString).sqlite"))
    }

    static let adminText = "Zq4mT8vW1xK7pR2nB5cY9dF3hJ6sL0aE"

    func app(_ access: AccessGuard?, backend: Backend = GatewayTests.backend) throws -> some ApplicationProtocol {
        _ = try Reference.smolLM2()
        return Server(backend: backend, options: .init(), access: access).application()
    }

    func chat(_ client: some TestClientProtocol, key: String?, body: String? = nil, headers extra: HTTPFields = [:]) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let key { headers[.authorization] = "Bearer \(key)" }
        headers.append(contentsOf: extra)
        let body = body ?? #"{"model":"smollm2","messages":[{"role":"user","content":"Name a color."}],"temperature":0,"max_tokens":3}"#
        return try await client.execute(uri: "/v1/chat/completions", method: .post, headers: headers, body: ByteBuffer(string: body))
    }

    func object(_ r: TestResponse) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(buffer: r.body)) as? [String: Any])
    }

    func errorCode(_ r: TestResponse) throws -> String? {
        (try object(r)["error"] as? [String: Any])?["code"] as? String
    }

    @Test func tokensPerMinuteRefusesOnceTheTokensAreSpent() async throws {
        let db = try Self.database()
        // One answer (about 30 prompt tokens + 3) spends more than the 20 a minute allowed.
        let key = try await KeyStore(db).create(name: "tpm", limits: KeyLimits(tokensPerMinute: 20)).plaintext
        try await app(AccessGuard(database: db, requireAuth: true)).test(.router) { client in
            let first = try await chat(client, key: key)
            #expect(first.status == .ok)
            #expect(first.headers[HTTPField.Name("x-ratelimit-limit-tokens")!] == "20")
            let second = try await chat(client, key: key)
            #expect(second.status == .tooManyRequests)
            #expect(try errorCode(second) == "rate_limit_exceeded")
            #expect(((try object(second)["error"] as? [String: Any])?["type"] as? String) == "tokens")
            let retry = try #require(second.headers[.retryAfter].flatMap { Int($0) })
            #expect((1...120).contains(retry))
            #expect(second.headers[HTTPField.Name("x-ratelimit-remaining-tokens")!] == "0")
        }
    }

    @Test func aBudgetStopsTheKey() async throws {
        let db = try Self.database()
        let keys = KeyStore(db)
        let small = try await keys.create(name: "small", limits: KeyLimits(budget: .tokens(10))).plaintext
        let big = try await keys.create(name: "big", limits: KeyLimits(budget: .tokens(1_000_000))).plaintext
        let access = AccessGuard(database: db, requireAuth: true)
        try await app(access).test(.router) { client in
            #expect(try await chat(client, key: small).status == .ok)   // nothing spent yet
            let stopped = try await chat(client, key: small)
            #expect(stopped.status == .tooManyRequests)
            #expect(try errorCode(stopped) == "insufficient_quota")
            #expect(((try object(stopped)["error"] as? [String: Any])?["message"] as? String)?.contains("budget") == true)
            for _ in 0..<2 { #expect(try await chat(client, key: big).status == .ok) }
        }
        // A new server over the same database (another replica, a restart) sees the spending in the usage records.
        try await access.usage?.flush()
        try await app(AccessGuard(database: db, requireAuth: true)).test(.router) { client in
            let r = try await chat(client, key: small)
            #expect(r.status == .tooManyRequests)
        }
    }

    @Test func weakAdminKeysAreRefused() throws {
        for weak in ["sk-1234", "changeme", String(repeating: "a", count: 40), "abcabcabcabcabcabcabcabcabc", "short-Key-1"] {
            #expect(throws: AdminKey.Weak.self) { try AdminKey(weak) }
        }
        let key = try AdminKey(Self.adminText)
        #expect(key.matches(Self.adminText))
        #expect(!key.matches(Self.adminText + "x"))
        #expect(!key.matches(""))
    }

    @Test func theAdminAPIManagesKeysBehindTheAdminKey() async throws {
        let db = try Self.database()
        var access = AccessGuard(database: db, requireAuth: true)
        access.adminKey = try AdminKey(Self.adminText)
        let admin: HTTPFields = [.authorization: "Bearer \(Self.adminText)", .contentType: "application/json"]
        try await app(access).test(.router) { client in
            let created = try await client.execute(uri: "/admin/keys", method: .post, headers: admin,
                                                   body: ByteBuffer(string: #"{"name":"web-app","rpm":100,"models":["smollm2"]}"#))
            #expect(created.status == .created)
            let key = try #require(try object(created)["key"] as? String)
            #expect(key.hasPrefix("sk-sy-"))
            #expect(try await chat(client, key: key).status == .ok)
            // A plain key cannot use the admin API, nor can anyone without a key.
            // (403 admin_required since the admin key guards load/unload too: a valid key is told what it lacks.)
            #expect(try await client.execute(uri: "/admin/keys", method: .get, headers: [.authorization: "Bearer \(key)"]).status == .forbidden)
            #expect(try await client.execute(uri: "/admin/keys", method: .get).status == .unauthorized)
            let list = try await client.execute(uri: "/admin/keys", method: .get, headers: admin)
            #expect(list.status == .ok)
            let names = (try object(list)["data"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
            #expect(names == ["web-app"])
            #expect(!String(buffer: list.body).contains(key))   // never the secret
            // The admin key also serves models, without limits.
            #expect(try await chat(client, key: Self.adminText).status == .ok)
            // Revoked through the API: refused at once by this server.
            let revoked = try await client.execute(uri: "/admin/keys/web-app/revoke", method: .post, headers: admin)
            #expect(revoked.status == .ok)
            #expect(try await chat(client, key: key).status == .unauthorized)
            let again = try await client.execute(uri: "/admin/keys/web-app", method: .delete, headers: admin)
            #expect(again.status == .conflict)
            let missing = try await client.execute(uri: "/admin/keys/nobody", method: .get, headers: admin)
            #expect(missing.status == .notFound)
        }
    }

    @Test func withAuthOnAndNoAdminKeyTheAdminAPIIsOff() async throws {
        let db = try Self.database()
        let key = try await KeyStore(db).create(name: "k").plaintext
        try await app(AccessGuard(database: db, requireAuth: true)).test(.router) { client in
            let r = try await client.execute(uri: "/admin/keys", method: .get, headers: [.authorization: "Bearer \(key)"])
            #expect(r.status == .forbidden)
            // A valid key is told the operation needs the admin key (issue: ordinary keys get admin_required), and
            // the message says how to set one; without a valid key the admin API reads as off.
            #expect(try errorCode(r) == "admin_required")
            let other = try await client.execute(uri: "/admin/keys", method: .get)
            #expect(other.status == .forbidden)
            #expect(try errorCode(other) == "admin_api_disabled")
        }
    }

    @Test func aKeySeesOnlyItsOwnUsage() async throws {
        let db = try Self.database()
        let keys = KeyStore(db)
        let a = try await keys.create(name: "a").plaintext
        let b = try await keys.create(name: "b").plaintext
        try await app(AccessGuard(database: db, requireAuth: true)).test(.router) { client in
            for _ in 0..<2 { #expect(try await chat(client, key: a).status == .ok) }
            #expect(try await chat(client, key: b).status == .ok)
            let asB = try await client.execute(uri: "/api/v1/usage?key=a", method: .get, headers: [.authorization: "Bearer \(b)"])
            #expect(asB.status == .ok)
            #expect((try object(asB)["totals"] as? [String: Any])?["requests"] as? Int == 1)
        }
    }

    @Test func ipAllowListsMatchAddressesAndRanges() throws {
        let list = try IPAllowList(commaSeparated: "10.0.0.0/8, 192.168.1.7, fd00::/8")
        #expect(list.allows("10.200.3.4"))
        #expect(list.allows("192.168.1.7"))
        #expect(!list.allows("192.168.1.8"))
        #expect(list.allows("fd12::1"))
        #expect(!list.allows("fe80::1"))
        #expect(list.allows("::ffff:10.1.2.3"))   // IPv4-mapped
        #expect(!list.allows(nil))
        #expect(!list.allows("not an address"))
        #expect(IPAllowList().allows(nil))
        #expect(throws: IPAllowList.Invalid.self) { try IPAllowList(["10.0.0.0/33"]) }
        #expect(throws: IPAllowList.Invalid.self) { try IPAllowList(["example.com"]) }
    }

    @Test func theAllowListRefusesOtherAddressesOverRealConnections() async throws {
        var outside = AccessGuard(requireAuth: false, keys: nil)
        outside.allowedIPs = try IPAllowList(["10.0.0.0/8"])
        try await app(outside).test(.live) { client in
            let r = try await client.execute(uri: "/v1/models", method: .get)
            #expect(r.status == .forbidden)
            #expect(try errorCode(r) == "ip_not_allowed")
        }
        var inside = AccessGuard(requireAuth: false, keys: nil)
        inside.allowedIPs = try IPAllowList(["127.0.0.0/8", "::1"])
        try await app(inside).test(.live) { client in
            let r = try await client.execute(uri: "/v1/models", method: .get)
            #expect(r.status == .ok)
        }
    }

    @Test func theCapOnRequestsInFlightHolds() {
        let inFlight = AccessGuard.InFlight()
        #expect(inFlight.enter(limit: 2))
        #expect(inFlight.enter(limit: 2))
        #expect(!inFlight.enter(limit: 2))
        inFlight.leave()
        #expect(inFlight.enter(limit: 2))
        #expect(inFlight.current == 2)
    }

    @Test func promptsLongerThanTheCapAre400() async throws {
        let dir = URL(fileURLWithPath: try Reference.smolLM2()).deletingLastPathComponent()
        let backend = Backend(host: ModelHost(options: .init(directory: dir, queueCapacity: 4)),
                              options: .init(maxPromptCharacters: 10))
        try await app(nil, backend: backend).test(.router) { client in
            let r = try await chat(client, key: nil)
            #expect(r.status == .badRequest)
            #expect(try errorCode(r) == "prompt_too_long")
            let short = #"{"model":"smollm2","messages":[{"role":"user","content":"Hi."}],"max_tokens":1}"#
            #expect(try await chat(client, key: nil, body: short).status == .ok)
        }
    }
}

/// The real local provider, counting the completions it is asked for.
final class CountingProvider: Provider, @unchecked Sendable {
    let inner: any Provider
    private let lock = NSLock()
    private var n = 0
    init(_ inner: any Provider) { self.inner = inner }
    var name: String { inner.name }
    var calls: Int { lock.lock(); defer { lock.unlock() }; return n }
    func models() async throws -> [ModelInfo] { try await inner.models() }
    func chat(_ request: ChatRequest) -> ChatStream {
        lock.lock(); n += 1; lock.unlock()
        return inner.chat(request)
    }
}

extension GuardLimitsTests {
    func cachedBackend(_ store: any ResponseCacheStore) throws -> (Backend, CountingProvider) {
        let dir = URL(fileURLWithPath: try Reference.smolLM2()).deletingLastPathComponent()
        let host = ModelHost(options: .init(directory: dir, queueCapacity: 4))
        let counting = CountingProvider(LocalProvider(host: host))
        return (Backend(host: host, provider: counting, options: .init(cache: ResponseCache(store: store))), counting)
    }

    static let cacheHeader = HTTPField.Name("x-switchyard-cache")!

    @Test(arguments: ["memory", "sqlite"])
    func aCacheHitReturnsTheIdenticalBodyWithoutTheModel(store kind: String) async throws {
        let store: any ResponseCacheStore = kind == "memory" ? MemoryCacheStore() : try #require(SQLiteCacheStore(try Self.database()))
        let (backend, counting) = try cachedBackend(store)
        try await app(nil, backend: backend).test(.router) { client in
            let miss = try await chat(client, key: nil)
            #expect(miss.status == .ok)
            #expect(miss.headers[Self.cacheHeader] == "miss")
            #expect(counting.calls == 1)
            let hit = try await chat(client, key: nil)
            #expect(hit.status == .ok)
            #expect(hit.headers[Self.cacheHeader] == "hit")
            #expect(String(buffer: hit.body) == String(buffer: miss.body))
            #expect(counting.calls == 1)   // the model was not asked again

            // The same request streamed replays the cached answer as chunks of the same completion.
            let streamed = #"{"model":"smollm2","messages":[{"role":"user","content":"Name a color."}],"temperature":0,"max_tokens":3,"stream":true}"#
            let replay = try await chat(client, key: nil, body: streamed)
            #expect(replay.headers[Self.cacheHeader] == "hit")
            #expect(counting.calls == 1)
            let text = String(buffer: replay.body)
            let answer = try object(miss)
            let content = ((answer["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String
            var joined = ""
            for line in text.split(separator: "\n") where line.hasPrefix("data: {") {
                let o = try #require(JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8)) as? [String: Any])
                #expect(o["id"] as? String == answer["id"] as? String)
                joined += ((o["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String ?? ""
            }
            #expect(joined == content)
            #expect(text.hasSuffix("data: [DONE]\n\n"))

            // Sampling that is not deterministic is not cached unless the request opts in; `off` bypasses.
            let sampled = #"{"model":"smollm2","messages":[{"role":"user","content":"Name a color."}],"temperature":0.7,"max_tokens":3}"#
            let s1 = try await chat(client, key: nil, body: sampled)
            #expect(s1.headers[Self.cacheHeader] == nil)
            _ = try await chat(client, key: nil, body: sampled)
            #expect(counting.calls == 3)
            let optIn: HTTPFields = [Self.cacheHeader: "on"]
            #expect(try await chat(client, key: nil, body: sampled, headers: optIn).headers[Self.cacheHeader] == "miss")
            #expect(try await chat(client, key: nil, body: sampled, headers: optIn).headers[Self.cacheHeader] == "hit")
            #expect(counting.calls == 4)
            let bypass = try await chat(client, key: nil, headers: [Self.cacheHeader: "off"])
            #expect(bypass.headers[Self.cacheHeader] == nil)
            #expect(counting.calls == 5)

            let metrics = String(buffer: try await client.execute(uri: "/metrics", method: .get).body)
            #expect(metrics.contains(#"switchyard_cache_requests_total{result="hit"} 3"#))
            #expect(metrics.contains(#"switchyard_cache_requests_total{result="miss"} 2"#))
        }
    }

    @Test func theMemoryStoreIsBoundedAndExpires() async throws {
        let store = MemoryCacheStore(maxBytes: 100)
        for i in 0..<10 { try await store.put("k\(i)", Data(count: 30), ttl: .seconds(60)) }
        #expect(store.size.bytes <= 100)
        #expect(try await store.get("k9") != nil)
        #expect(try await store.get("k0") == nil)   // least recently used went first
        try await store.put("short", Data([1]), ttl: .milliseconds(50))
        try await Task.sleep(for: .milliseconds(120))
        #expect(try await store.get("short") == nil)
    }

    @Test func cacheKeysCoverEverythingThatChangesTheAnswer() {
        let base = ChatRequest(model: "m", messages: [ChatMessage(role: .user, content: "hi")], sampling: SamplingSettings(temperature: 0))
        let key = ResponseCache.key(for: base, kind: "chat", directive: .auto)
        #expect(key != nil)
        var other = base
        other.sampling.maxTokens = 5
        #expect(ResponseCache.key(for: other, kind: "chat", directive: .auto) != key)
        other = base
        other.messages[0].content = "hi!"
        #expect(ResponseCache.key(for: other, kind: "chat", directive: .auto) != key)
        other = base
        other.stream = true   // streaming or not, the same answer
        #expect(ResponseCache.key(for: other, kind: "chat", directive: .auto) == key)
        #expect(ResponseCache.key(for: base, kind: "completion", directive: .auto) != key)
        other = base
        other.logprobs = true
        #expect(ResponseCache.key(for: other, kind: "chat", directive: .auto) == nil)
        other = base
        other.sampling = SamplingSettings(temperature: 0.8, seed: 7)
        #expect(ResponseCache.key(for: other, kind: "chat", directive: .auto) != nil)
    }
}

extension GuardLimitsTests {
    @Test func aKeysOwnAllowListRefusesOtherAddresses() async throws {
        let db = try Self.database()
        let keys = KeyStore(db)
        let elsewhere = try await keys.create(name: "office", limits: KeyLimits(allowedIPs: ["10.0.0.0/8"])).plaintext
        let here = try await keys.create(name: "box", limits: KeyLimits(allowedIPs: ["127.0.0.1", "::1"])).plaintext
        await #expect(throws: StorageError.self) { try await keys.create(name: "bad", limits: KeyLimits(allowedIPs: ["10.0.0.0/40"])) }
        #expect(try await keys.find("office").limits.allowedIPs == ["10.0.0.0/8"])
        try await app(AccessGuard(database: db, requireAuth: true)).test(.live) { client in
            let refused = try await client.execute(uri: "/v1/models", method: .get, headers: [.authorization: "Bearer \(elsewhere)"])
            #expect(refused.status == .forbidden)
            #expect(try errorCode(refused) == "ip_not_allowed")
            let allowed = try await client.execute(uri: "/v1/models", method: .get, headers: [.authorization: "Bearer \(here)"])
            #expect(allowed.status == .ok)
        }
    }
}

extension GuardLimitsTests {
    @Test func spendingNeverReadsLowerThanWhatThisProcessCharged() async throws {
        let recorded = Mutex(SpendTracker.Spend())
        let tracker = SpendTracker(ttl: .milliseconds(10)) { _ in recorded.withLock { $0 } }
        #expect(try await tracker.spent("k") == SpendTracker.Spend())
        tracker.charge("k", tokens: 30, usd: 0.5)
        #expect(try await tracker.spent("k").tokens == 30)
        try await Task.sleep(for: .milliseconds(30))
        // The records are not written yet: the charge still counts.
        #expect(try await tracker.spent("k").tokens == 30)
        // Once they are (and another replica's too), the database's figure wins.
        recorded.withLock { $0 = SpendTracker.Spend(tokens: 100, usd: 2) }
        try await Task.sleep(for: .milliseconds(30))
        #expect(try await tracker.spent("k") == SpendTracker.Spend(tokens: 100, usd: 2))
        #expect(SpendTracker.exhausted(.tokens(100), by: SpendTracker.Spend(tokens: 100)))
        #expect(!SpendTracker.exhausted(.usd(2.5), by: SpendTracker.Spend(usd: 2)))
    }
}

/// The shared state of replicas in a real Redis: one bucket for two limiters, and the cache.
@Suite(.serialized) struct SharedStateTests {
    @Test func twoLimitersOnOneRedisShareOneBucket() async throws {
        let server = try await RedisServerProcess.start()
        let a = RedisRateLimiter(client: try RedisClient(url: server.url))
        let b = RedisRateLimiter(client: try RedisClient(url: server.url))
        var allowed = 0
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for i in 0..<40 {
                group.addTask { try await (i % 2 == 0 ? a : b).take("rpm:k", perMinute: 10, cost: 1, need: 1).allowed }
            }
            for try await ok in group where ok { allowed += 1 }
        }
        // 10 a minute across both (not 20). A slow machine refills one more per 6 s meanwhile: those are taken
        // first, then the next request is refused.
        var refused = try await a.take("rpm:k", perMinute: 10, cost: 1, need: 1)
        var extra = 0
        while refused.allowed && extra < 20 {
            extra += 1
            refused = try await a.take("rpm:k", perMinute: 10, cost: 1, need: 1)
        }
        let refilled = Int((ContinuousClock.now - start).components.seconds / 6) + 1
        #expect(allowed >= 10 && allowed + extra <= 10 + refilled)
        #expect(!refused.allowed && (1...6).contains(refused.retryAfterSeconds))
        // Tokens: charged in any case, down to a debt; then refused until refilled.
        #expect(try await b.take("tpm:k", perMinute: 100, cost: 0, need: 1).allowed)
        _ = try await b.take("tpm:k", perMinute: 100, cost: 150, need: nil)
        let owing = try await a.take("tpm:k", perMinute: 100, cost: 0, need: 1)
        #expect(!owing.allowed && owing.remaining == 0)
        await server.stop()
        // Redis gone: each limiter falls back to counting in process instead of refusing everyone.
        #expect(try await a.take("rpm:other", perMinute: 5, cost: 1, need: 1).allowed)
    }

    @Test func aCachedAnswerIsSharedThroughRedis() async throws {
        let server = try await RedisServerProcess.start()
        let one = RedisCacheStore(client: try RedisClient(url: server.url))
        let two = RedisCacheStore(client: try RedisClient(url: server.url))
        let value = Data((0..<5000).map { UInt8(truncatingIfNeeded: $0) })
        try await one.put("sy:cache:test", value, ttl: .seconds(3600))   // long enough for any loaded machine
        #expect(try await two.get("sy:cache:test") == value)
        try await one.put("sy:cache:short", Data([1]), ttl: .milliseconds(50))
        try await Task.sleep(for: .milliseconds(150))
        #expect(try await two.get("sy:cache:short") == nil)
        await server.stop()
    }
}
