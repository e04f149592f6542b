import Foundation
import GRDB
@testable import Storage
import Testing

@Suite struct UsageStoreTests {
    let database: StorageDatabase
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    init() throws {
        database = try openTemporaryDatabase()
    }

    func count(_ sql: String = "SELECT COUNT(*) FROM usage") async throws -> Int {
        try await database.read { db in try Int.fetchOne(db, sql: sql) ?? -1 }
    }

    @Test func concurrentRecordsAreAllWrittenExactlyOnce() async throws {
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
        let ids = try await database.read { db in try Set(String.fetchAll(db, sql: "SELECT request_id FROM usage")) }
        let expected = Set((0..<tasks).flatMap { t in (0..<perTask).map { "r-\(t)-\($0)" } })
        #expect(expected.subtracting(ids).sorted() == [], "missing")
        #expect(ids.subtracting(expected).sorted() == [], "unexpected")
        #expect(usage.statistics.written == tasks * perTask && usage.statistics.dropped == 0)
        try await usage.close()
    }

    @Test func flushWritesWhatIsQueuedWithoutWaitingForTheTimer() async throws {
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

    @Test func theTimerWritesASmallBatch() async throws {
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

    @Test func closeLosesNothingAndLaterRecordsAreCountedAsDropped() async throws {
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

    @Test func aRepeatedRequestIDIsKeptOnce() async throws {
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

    @Test func aFailedBatchIsKeptAndRetried() async throws {
        let usage = UsageStore(database, options: .init(flushInterval: .seconds(3600)))
        // Make inserts fail for a while.
        try await database.write { db in
            try db.execute(sql: "CREATE TRIGGER refuse BEFORE INSERT ON usage BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
        }
        for i in 0..<5 {
            usage.record(UsageRecord(requestID: "f\(i)", keyID: nil, model: "m", provider: "local", promptTokens: 1,
                                     completionTokens: 1, latencyMs: 1, status: 200, servedLocally: true))
        }
        await #expect(throws: StorageError.self) { try await usage.flush() }
        #expect(usage.statistics.failedBatches == 1 && usage.statistics.lastError?.contains("disk says no") == true)
        try await database.write { db in try db.execute(sql: "DROP TRIGGER refuse") }
        try await usage.flush()
        #expect(try await count() == 5)
        try await usage.close()
    }

    @Test func recordsThatCannotBeWrittenAtCloseAreCountedAsDropped() async throws {
        let usage = UsageStore(database, options: .init(flushInterval: .seconds(3600)))
        try await database.write { db in
            try db.execute(sql: "CREATE TRIGGER refuse BEFORE INSERT ON usage BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
        }
        for _ in 0..<3 {
            usage.record(UsageRecord(keyID: nil, model: "m", provider: "local", promptTokens: 1, completionTokens: 1,
                                     latencyMs: 1, status: 200, servedLocally: true))
        }
        await #expect(throws: StorageError.self) { try await usage.close() }
        // close() stops the writer even when its flush fails; give it a moment to make its last attempt.
        for _ in 0..<200 where usage.statistics.dropped < 3 { try await Task.sleep(for: .milliseconds(5)) }
        #expect(usage.statistics.dropped == 3 && usage.statistics.written == 0)
    }

    @Test func summarySumsMatchAndFiltersApply() async throws {
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

    @Test func aKeyNameCoversItsRotations() async throws {
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

    @Test func summariesUseTheIndexes() async throws {
        let plans = try await database.read { db in
            try ["key_id = 'x' AND requested_at >= 0", "model = 'm'"].map { condition in
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM usage WHERE \(condition)")
                    .map { row -> String in row["detail"] ?? "" }.joined(separator: " ")
            }
        }
        #expect(plans[0].contains("usage_by_key"))
        #expect(plans[1].contains("usage_by_model"))
    }
}
