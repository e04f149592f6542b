import Foundation
@testable import Gateway
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Storage
import Synchronization
import TestSupport
import Testing

/// When the database behind keys and budgets cannot be reached: keys and spending already read stand in, new ones
/// fail with 503 `storage_unavailable`, and no request waits for the pool's own minute of reconnecting.
@Suite struct StorageOutageTests {
    /// A key store that can be taken down, counting its reads.
    final class Store: Sendable {
        let down = Atomic<Bool>(false)
        let failure = Mutex<StorageError>(.unavailable("no connection to the PostgreSQL server within 5 s"))
        let reads = Atomic<Int>(0)
        let delay: Duration
        init(delay: Duration = .zero) { self.delay = delay }

        func verify(_ presented: String) async throws -> KeyVerification {
            reads.add(1, ordering: .relaxed)
            if delay > .zero { try await Task.sleep(for: delay) }
            if down.load(ordering: .relaxed) { throw failure.withLock { $0 } }
            return presented == "known" ? .refused(.revoked(at: Date(timeIntervalSince1970: 0))) : .refused(.unknown)
        }
    }

    @Test func knownAnswersStandInWhileTheStoreIsUnavailable() async throws {
        let store = Store()
        let cache = KeyCache(ttl: .seconds(3600), capacity: 16, staleLimit: .seconds(3600)) { try await store.verify($0) }
        let first = try await cache.check("known")
        store.down.store(true, ordering: .relaxed)
        cache.expireAll()
        // Due for a re-read and the store down: the store is asked, and the last answer stands in.
        #expect(try await cache.check("known") == first)
        #expect(store.reads.load(ordering: .relaxed) == 2)
        // A key never read fails with the store's error.
        await #expect(throws: StorageError.unavailable("no connection to the PostgreSQL server within 5 s")) {
            try await cache.check("never-seen")
        }
        // While the store is known to be down, the last answer is given at once and the store asked in the
        // background; another kind of failure (a statement refused) is then not papered over.
        store.failure.withLock { $0 = .database("relation \"api_keys\" does not exist") }
        cache.expireAll()
        #expect(try await cache.check("known") == first)
        var seen: (any Error)?
        for _ in 0..<500 where seen == nil {
            do { _ = try await cache.check("known"); try await Task.sleep(for: .milliseconds(20)) } catch { seen = error }
        }
        #expect(seen as? StorageError == .database("relation \"api_keys\" does not exist"))
        // Back: read afresh.
        store.down.store(false, ordering: .relaxed)
        #expect(try await cache.check("known") == first)
    }

    @Test func anAnswerTooOldNoLongerStandsIn() async throws {
        let store = Store()
        let cache = KeyCache(ttl: .seconds(3600), capacity: 16, staleLimit: .nanoseconds(1)) { try await store.verify($0) }
        _ = try await cache.check("known")
        store.down.store(true, ordering: .relaxed)
        try await Task.sleep(for: .milliseconds(5))
        cache.expireAll()
        await #expect(throws: StorageError.unavailable("no connection to the PostgreSQL server within 5 s")) {
            try await cache.check("known")
        }
    }

    @Test func oneRequestRereadsAnExpiredAnswer() async throws {
        let store = Store(delay: .milliseconds(300))
        let cache = KeyCache(ttl: .seconds(3600), capacity: 16) { try await store.verify($0) }
        _ = try await cache.check("known")
        cache.expireAll()
        let answers = try await withThrowingTaskGroup(of: KeyVerification.self) { group in
            for _ in 0..<10 { group.addTask { try await cache.check("known") } }
            return try await group.reduce(into: [KeyVerification]()) { $0.append($1) }
        }
        #expect(answers.count == 10)
        #expect(Set(answers).count == 1)
        #expect(store.reads.load(ordering: .relaxed) == 2, "one read for the first check, one re-read for the ten")
    }

    @Test func spendingGoesOnFromTheLastTotalWhileRecordsCannotBeRead() async throws {
        let down = Atomic<Bool>(false)
        let tracker = SpendTracker(ttl: .milliseconds(30)) { _ in
            if down.load(ordering: .relaxed) { throw StorageError.unavailable("down") }
            return SpendTracker.Spend(tokens: 100, usd: 1)
        }
        #expect(try await tracker.spent("k") == SpendTracker.Spend(tokens: 100, usd: 1))
        down.store(true, ordering: .relaxed)
        tracker.charge("k", tokens: 20, usd: 0.5)
        try await Task.sleep(for: .milliseconds(60))
        #expect(try await tracker.spent("k") == SpendTracker.Spend(tokens: 120, usd: 1.5))
        await #expect(throws: StorageError.unavailable("down")) { try await tracker.spent("untracked") }
    }

    /// A real server over a real PostgreSQL that goes away: a key in use goes on working, a key not seen yet gets
    /// 503 `storage_unavailable` with Retry-After, quickly. Opt-in like `PostgresOutageTests` (see there).
    @Test(.enabled(if: ProcessInfo.processInfo.environment["SWITCHYARD_OUTAGE_TESTS"] == "1"))
    func aGuardedServerOutlivesADatabaseOutage() async throws {
        let pg = try await TestPostgres.shared.server()
        let url = try await pg.createDatabase()
        let name = try #require(URLComponents(string: url)?.path.dropFirst()).description
        let database = try await StorageDatabase.connect(databaseURL: url, connectionWait: .seconds(2))
        let keys = KeyStore(database)
        let inUse = try await keys.create(name: "in-use").plaintext
        let unseen = try await keys.create(name: "unseen").plaintext
        let access = AccessGuard(database: database, requireAuth: true, keyTTL: .milliseconds(200))
        let app = Server(backend: GatewayTests.backend, options: .init(), access: access).application()
        try await app.test(.router) { client in
            func models(_ key: String) async throws -> TestResponse {
                try await client.execute(uri: "/v1/models", method: .get, headers: [.authorization: "Bearer \(key)"])
            }
            #expect(try await models(inUse).status == .ok)
            try await pg.run("ALTER DATABASE \(name) ALLOW_CONNECTIONS false")
            try await pg.run("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '\(name)'")
            try await Task.sleep(for: .milliseconds(300))
            for _ in 0..<3 {
                #expect(try await models(inUse).status == .ok)
            }
            let start = ContinuousClock.now
            let refused = try await models(unseen)
            #expect(refused.status == .serviceUnavailable)
            #expect(refused.headers[.retryAfter] == "5")
            let error = try #require(try JSONSerialization.jsonObject(with: Data(buffer: refused.body)) as? [String: Any])["error"] as? [String: Any]
            #expect(error?["code"] as? String == "storage_unavailable")
            #expect(ContinuousClock.now - start < .seconds(20))
            try await pg.run("ALTER DATABASE \(name) ALLOW_CONNECTIONS true")
            let deadline = ContinuousClock.now + .seconds(120)
            var status = refused.status
            while status != .ok, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(500))
                status = try await models(unseen).status
            }
            #expect(status == .ok, "the unseen key works once the database is back")
        }
        try? await access.usage?.close()
        await database.close()
        try await pg.dropDatabase(url)
    }
}
