import Foundation
@testable import Storage
import Testing

/// Every case runs against SQLite and PostgreSQL.
@Suite struct UsageStoreTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    @Test(arguments: Backend.allCases) func concurrentRecordsAreAllWrittenExactlyOnce(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            let database = db.database
            func count(_ sql: String = "SELECT COUNT(*) FROM usage") async throws -> Int { try await db.int(sql) }
            let usage = UsageStore(database, options: .init(flushInterval: .milliseconds(5), batchSize: 37))
            let tasks = 64, perTask = 150
            await withTaskGroup(of: Void.self) { group in
                for t in 0..<tasks {
                    group.addTask {
                        for i in 0..<perTask {
                            usage.record(UsageRecord(requestID: "r-\(t)-\(i)", keyID: "k\(t % 4)", model: "m\(i % 3)",
                                                     provider: "local", promptTokens: 1, completionTokens: 2, latencyMs: 3,
                                                     status: 200, servedLocally: true, timestamp: t0))
                            if i % 50 == 0 { await Task.yield() }
                        }
                    }
                }
            }
            try await usage.flush()
            #expect(try await count() == tasks * perTask)
            #expect(try await count("SELECT COUNT(DISTINCT request_id) FROM usage") == tasks * perTask)
            let ids = try await Set(db.strings("SELECT request_id FROM usage"))
            let expected = Set((0..<tasks).flatMap { t in (0..<perTask).map { "r-\(t)-\($0)" } })
            #expect(expected.subtracting(ids).sorted() == [], "missing")
            #expect(ids.subtracting(expected).sorted() == [], "unexpected")
            #expect(usage.statistics.written == tasks * perTask && usage.statistics.dropped == 0)
            try await usage.close()
        }
    }

    @Test(arguments: Backend.allCases) func flushWritesWhatIsQueuedWithoutWaitingForTheTimer(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            let database = db.database
            func count(_ sql: String = "SELECT COUNT(*) FROM usage") async throws -> Int { try await db.int(sql) }
            let usage = UsageStore(database, options: .init(flushInterval: .seconds(3600), batchSize: 1_000_000))
            for i in 0..<10 {
                usage.record(UsageRecord(requestID: "q\(i)", keyID: nil, model: "m", provider: "local", promptTokens: 1,
                                         completionTokens: 1, latencyMs: 1, status: 200, servedLocally: true))
            }
            #expect(try await count() == 0)   // nothing written yet: neither the batch size nor the interval was reached
            try await usage.flush()
            #expect(try await count() == 10)
            try await usage.close()
        }
    }

    @Test(arguments: Backend.allCases) func theTimerWritesASmallBatch(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            let database = db.database
            func count(_ sql: String = "SELECT COUNT(*) FROM usage") async throws -> Int { try await db.int(sql) }
            let usage = UsageStore(database, options: .init(flushInterval: .milliseconds(10), batchSize: 1_000_000))
            usage.record(UsageRecord(keyID: nil, model: "m", provider: "local", promptTokens: 1, completionTokens: 1,
                                     latencyMs: 1, status: 200, servedLocally: true))
            var written = 0
            for _ in 0..<500 where written == 0 {
                try await Task.sleep(for: .milliseconds(10))
                written = try await count()
            }
            #expect(written == 1)
            try await usage.close()
        }
    }

    @Test(arguments: Backend.allCases) func closeLosesNothingAndLaterRecordsAreCountedAsDropped(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            let database = db.database
            func count(_ sql: String = "SELECT COUNT(*) FROM usage") async throws -> Int { try await db.int(sql) }
            let usage = UsageStore(database, options: .init(flushInterval: .seconds(3600), batchSize: 1_000_000))
            for i in 0..<1000 {
                usage.record(UsageRecord(requestID: "c\(i)", keyID: nil, model: "m", provider: "local", promptTokens: 1,
                                         completionTokens: 1, latencyMs: 1, status: 200, servedLocally: true))
            }
            try await usage.close()
            #expect(try await count() == 1000)
            usage.record(UsageRecord(keyID: nil, model: "m", provider: "local", promptTokens: 1, completionTokens: 1,
                                     latencyMs: 1, status: 200, servedLocally: true))
            try await usage.flush()   // returns at once after close
            #expect(usage.statistics.dropped == 1 && usage.statistics.written == 1000)
        }
    }

    @Test(arguments: Backend.allCases) func aRepeatedRequestIDIsKeptOnce(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            let database = db.database
            func count(_ sql: String = "SELECT COUNT(*) FROM usage") async throws -> Int { try await db.int(sql) }
            let usage = UsageStore(database)
            let r = UsageRecord(requestID: "same", keyID: nil, model: "m", provider: "local", promptTokens: 5,
                                completionTokens: 5, latencyMs: 1, status: 200, servedLocally: true)
            usage.record(r)
            try await usage.flush()
            usage.record(r)
            try await usage.close()
            #expect(try await count() == 1)
            #expect(usage.statistics.written == 1)
        }
    }

    @Test(arguments: Backend.allCases) func aFailedBatchIsKeptAndRetried(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            let database = db.database
            func count(_ sql: String = "SELECT COUNT(*) FROM usage") async throws -> Int { try await db.int(sql) }
            let usage = UsageStore(database, options: .init(flushInterval: .seconds(3600)))
            // Make inserts fail for a while.
            try await db.refuseUsageInserts()
            for i in 0..<5 {
                usage.record(UsageRecord(requestID: "f\(i)", keyID: nil, model: "m", provider: "local", promptTokens: 1,
                                         completionTokens: 1, latencyMs: 1, status: 200, servedLocally: true))
            }
            await #expect(throws: StorageError.self) { try await usage.flush() }
            #expect(usage.statistics.failedBatches == 1 && usage.statistics.lastError?.contains("disk says no") == true)
            try await db.allowUsageInserts()
            try await usage.flush()
            #expect(try await count() == 5)
            try await usage.close()
        }
    }

    @Test(arguments: Backend.allCases) func recordsThatCannotBeWrittenAtCloseAreCountedAsDropped(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            let database = db.database
            let usage = UsageStore(database, options: .init(flushInterval: .seconds(3600)))
            try await db.refuseUsageInserts()
            for _ in 0..<3 {
                usage.record(UsageRecord(keyID: nil, model: "m", provider: "local", promptTokens: 1, completionTokens: 1,
                                         latencyMs: 1, status: 200, servedLocally: true))
            }
            await #expect(throws: StorageError.self) { try await usage.close() }
            // close() stops the writer even when its flush fails; give it a moment to make its last attempt.
            for _ in 0..<200 where usage.statistics.dropped < 3 { try await Task.sleep(for: .milliseconds(5)) }
            #expect(usage.statistics.dropped == 3 && usage.statistics.written == 0)
        }
    }

    @Test(arguments: Backend.allCases) func summarySumsMatchAndFiltersApply(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            let database = db.database
            let keys = KeyStore(database)
            let bot = try await keys.create(name: "bot", now: t0)
            let web = try await keys.create(name: "web", now: t0)
            let usage = UsageStore(database)
            func rec(_ key: CreatedKey?, _ model: String, _ p: Int, _ c: Int, _ latency: Double, ttft: Double? = nil,
                     status: Int = 200, cost: Double? = nil, local: Bool = true, at: Date) -> UsageRecord {
                UsageRecord(keyID: key?.key.id, model: model, deployment: "d", provider: local ? "local" : "openai",
                            promptTokens: p, completionTokens: c, latencyMs: latency, timeToFirstTokenMs: ttft,
                            status: status, costUSD: cost, servedLocally: local, timestamp: at)
            }
            let records = [
                rec(bot, "smollm2", 10, 20, 100, ttft: 10, cost: 0, at: t0),
                rec(bot, "smollm2", 30, 40, 300, ttft: 30, cost: 0, at: t0 + 3600),
                rec(bot, "gpt-4o", 100, 50, 900, ttft: 200, cost: 0.25, local: false, at: t0 + 7200),
                rec(web, "smollm2", 7, 0, 50, status: 429, at: t0 + 7200),
                rec(nil, "smollm2", 1, 1, 10, at: t0 + 7200),
            ]
            records.forEach(usage.record)
            try await usage.flush()

            let all = try await usage.summary()
            #expect(all.totals.requests == 5 && all.totals.failed == 1)
            #expect(all.totals.promptTokens == 148 && all.totals.completionTokens == 111 && all.totals.totalTokens == 259)
            #expect(all.totals.servedLocally == 4 && all.totals.costUSD == 0.25)
            #expect(all.totals.averageLatencyMs == 1360.0 / 5)
            #expect(all.totals.averageTimeToFirstTokenMs == 80)
            #expect(all.totals.first == t0 && all.totals.last == t0 + 7200)
            #expect(all.models.map(\.model) == ["smollm2", "gpt-4o"])
            #expect(all.models[0].totals.requests == 4 && all.models[1].totals.promptTokens == 100)

            let botOnly = try await usage.summary(key: "bot")
            #expect(botOnly.totals.requests == 3 && botOnly.totals.totalTokens == 250)
            let botLocal = try await usage.summary(key: bot.key.prefix, model: "smollm2")
            #expect(botLocal.totals.requests == 2 && botLocal.totals.averageLatencyMs == 200 && botLocal.totals.costUSD == 0)
            let recent = try await usage.summary(since: t0 + 3600)
            #expect(recent.totals.requests == 4 && recent.totals.promptTokens == 138)
            let webRecent = try await usage.summary(key: "web", since: t0 + 7200)
            #expect(webRecent.totals.requests == 1 && webRecent.totals.failed == 1 && webRecent.totals.costUSD == nil)
            let none = try await usage.summary(model: "nothing")
            #expect(none.totals == UsageTotals() && none.models.isEmpty && none.totals.averageLatencyMs == nil)
            await #expect(throws: StorageError.unknownKey("ghost")) { try await usage.summary(key: "ghost") }
            try await usage.close()
        }
    }

    @Test(arguments: Backend.allCases) func aKeyNameCoversItsRotations(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            let database = db.database
            let keys = KeyStore(database)
            let first = try await keys.create(name: "bot")
            let second = try await keys.rotate("bot")
            let usage = UsageStore(database)
            for key in [first, second, second] {
                usage.record(UsageRecord(keyID: key.key.id, model: "m", provider: "local", promptTokens: 1,
                                         completionTokens: 1, latencyMs: 1, status: 200, servedLocally: true))
            }
            try await usage.flush()
            #expect(try await usage.summary(key: "bot").totals.requests == 3)
            #expect(try await usage.summary(key: first.key.id).totals.requests == 1)
            try await usage.close()
        }
    }

    @Test(arguments: Backend.allCases) func summariesUseTheIndexes(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            var plans: [String] = []
            for condition in ["key_id = 'x' AND requested_at >= '2020-01-01'", "model = 'm'"] {
                plans.append(try await db.queryPlan("SELECT COUNT(*) FROM usage WHERE \(condition)"))
            }
            #expect(plans[0].contains("usage_by_key"))
            #expect(plans[1].contains("usage_by_model"))
        }
    }

    @Test(arguments: Backend.allCases) func spentSumsOneKeysTokensAndCost(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            let keys = KeyStore(db.database)
            let bot = try await keys.create(name: "bot", limits: KeyLimits(budget: .tokens(1000)), now: t0)
            let web = try await keys.create(name: "web", now: t0)
            let usage = UsageStore(db.database)
            func rec(_ key: CreatedKey, _ p: Int, _ c: Int, cost: Double?, status: Int = 200, at: Date) -> UsageRecord {
                UsageRecord(keyID: key.key.id, model: "m", provider: "openai", promptTokens: p, completionTokens: c,
                            latencyMs: 1, status: status, costUSD: cost, servedLocally: false, timestamp: at)
            }
            [rec(bot, 100, 50, cost: 0.5, at: t0),
             rec(bot, 10, 5, cost: nil, at: t0 + 60),
             rec(bot, 7, 3, cost: 0.25, status: 502, at: t0 + 120),   // failed after the model ran: still counts
             rec(bot, 0, 0, cost: nil, status: 429, at: t0 + 180),     // refused before: counts, adds nothing
             rec(web, 1000, 1000, cost: 9, at: t0)].forEach(usage.record)
            try await usage.flush()

            let all = try await usage.spent(keyID: bot.key.id)
            #expect(all == UsageSpend(requests: 4, tokens: 175, costUSD: 0.75))
            #expect(try await usage.spent(keyID: bot.key.id, since: t0 + 60) == UsageSpend(requests: 3, tokens: 25, costUSD: 0.25))
            #expect(try await usage.spent(keyID: web.key.id) == UsageSpend(requests: 1, tokens: 2000, costUSD: 9))
            #expect(try await usage.spent(keyID: "nobody") == UsageSpend())
            #expect(!all.exhausts(.tokens(1000)) && all.exhausts(.tokens(175)) && all.exhausts(.usd(0.75)) && !all.exhausts(.usd(1)))
            // A rotated key starts from zero under its new id.
            let rotated = try await keys.rotate("bot", now: t0 + 240)
            #expect(try await usage.spent(keyID: rotated.key.id) == UsageSpend())
            try await usage.close()
        }
    }

    /// Two stores on one database, as two replicas each with their own writer: 8 writers of 50 records give exactly
    /// 400 rows, and a batch retried through the other replica (its first commit's answer lost) is not written twice.
    @Test(arguments: Backend.allCases) func twoReplicasWriteEveryRecordOnce(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            try await db.withReplica { other in
                let options = UsageStore.Options(flushInterval: .milliseconds(5), batchSize: 16)
                let stores = [UsageStore(db.database, options: options), UsageStore(other, options: options)]
                let t0 = self.t0
                func record(_ writer: Int, _ i: Int) -> UsageRecord {
                    UsageRecord(requestID: "w\(writer)-\(i)", keyID: "k\(writer % 3)", model: "m\(i % 2)", provider: "local",
                                promptTokens: 1, completionTokens: 1, latencyMs: 1, status: 200, servedLocally: true,
                                timestamp: t0)
                }
                await withTaskGroup(of: Void.self) { group in
                    for writer in 0..<8 {
                        group.addTask {
                            for i in 0..<50 {
                                stores[writer % 2].record(record(writer, i))
                                if i % 10 == 0 { await Task.yield() }
                            }
                        }
                    }
                }
                for store in stores { try await store.flush() }
                #expect(try await db.int("SELECT COUNT(*) FROM usage") == 400)
                #expect(stores.map(\.statistics.written).reduce(0, +) == 400)

                // Writer 0's records again through the other replica, and writer 1's through both at once.
                for i in 0..<50 { stores[1].record(record(0, i)) }
                for i in 0..<50 {
                    stores[0].record(record(1, i))
                    stores[1].record(record(1, i))
                }
                for store in stores { try await store.flush() }
                #expect(try await db.int("SELECT COUNT(*) FROM usage") == 400)
                #expect(try await db.int("SELECT COUNT(DISTINCT request_id) FROM usage") == 400)
                #expect(stores.map(\.statistics.written).reduce(0, +) == 400)
                #expect(stores.allSatisfy { $0.statistics.failedBatches == 0 && $0.statistics.dropped == 0 })
                let summary = try await stores[0].summary()
                #expect(summary.totals.requests == 400 && summary.totals.totalTokens == 800)
                for store in stores { try await store.close() }
            }
        }
    }
}
