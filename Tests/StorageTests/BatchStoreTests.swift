import Foundation
@testable import Storage
import Testing

/// Files and batches against SQLite and PostgreSQL: content read back byte for byte, request outcomes recorded once
/// each (a rerun after a restart cannot answer a request twice), counts that follow them, and status changes that
/// happen only from the states they name (a cancel and the runner never overwrite each other).
@Suite struct BatchStoreTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func batch(_ id: String, status: StoredBatch.Status = .inProgress, at offset: TimeInterval = 0) -> StoredBatch {
        StoredBatch(id: id, owner: "team-a", endpoint: "/v1/chat/completions", inputFileID: "file-in", completionWindow: "24h",
                    metadata: #"{"job":"nightly"}"#, status: status, createdAt: t0 + offset, expiresAt: t0 + offset + 86400,
                    webhookURL: "http://127.0.0.1:9/hook")
    }

    func requests(_ n: Int) -> [StoredBatchRequest] {
        (1...n).map { StoredBatchRequest(line: $0, customID: "req-\($0)", body: #"{"model":"m","messages":[]}"#) }
    }

    @Test(arguments: Backend.allCases) func filesComeBackByteForByte(_ backend: Backend) async throws {
        try await backend.withDatabase { db async throws in
            let store = BatchStore(db.database)
            let content = Data((0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
            try await store.saveFile(StoredFile(id: "file-1", owner: nil, purpose: "batch", filename: "in.jsonl", bytes: content.count,
                                                createdAt: t0), content: content)
            try await store.saveFile(StoredFile(id: "file-2", owner: "team-a", purpose: "batch_output", filename: "out.jsonl", bytes: 2,
                                                createdAt: t0 + 1), content: Data("{}".utf8))
            let (read, all, outputs) = try await db.withReplica { other in
                let s = BatchStore(other)
                return (try await s.content(ofFile: "file-1"), try await s.files(), try await s.files(purpose: "batch_output"))
            }
            #expect(read == content)
            #expect(all.map(\.id) == ["file-2", "file-1"])
            #expect(outputs.map(\.id) == ["file-2"])
            #expect(all.last?.bytes == 70_000 && all.last?.filename == "in.jsonl" && all.last?.owner == nil)
            #expect(try await store.deleteFile("file-1"))
            #expect(try await !store.deleteFile("file-1"))
            #expect(try await store.content(ofFile: "file-1") == nil)
        }
    }

    @Test(arguments: Backend.allCases) func outcomesAreRecordedOnceAndCounted(_ backend: Backend) async throws {
        try await backend.withDatabase { db async throws in
            let store = BatchStore(db.database)
            try await store.create(batch("batch_1"), requests: requests(1200))
            #expect(try await store.pending("batch_1", limit: 3).map(\.line) == [1, 2, 3])
            #expect(try await store.finish("batch_1", line: 2, status: .done, result: "answer-2"))
            #expect(try await store.finish("batch_1", line: 1, status: .failed, result: "error-1"))
            // A second outcome for the same request (a rerun after a crash) changes nothing.
            #expect(try await !store.finish("batch_1", line: 2, status: .failed, result: "again"))
            #expect(try await store.pending("batch_1", limit: 2).map(\.line) == [3, 4])
            let read = try await db.withReplica { try await BatchStore($0).batch("batch_1") }
            #expect(read?.total == 1200)
            #expect(read?.completed == 1)
            #expect(read?.failed == 1)
            #expect(read?.metadata == #"{"job":"nightly"}"#)
            #expect(read?.webhookURL == "http://127.0.0.1:9/hook")
            let all = try await store.requests("batch_1")
            #expect(all.count == 1200)
            #expect(all.prefix(3).map(\.result) == ["error-1", "answer-2", nil])
            #expect(all.last?.customID == "req-1200")
        }
    }

    @Test(arguments: Backend.allCases) func statusChangesOnlyFromTheStatesNamed(_ backend: Backend) async throws {
        try await backend.withDatabase { db async throws in
            let store = BatchStore(db.database)
            try await store.create(batch("batch_1"), requests: requests(2))
            try await store.create(batch("batch_2", status: .validating, at: 5), requests: requests(1))
            #expect(try await store.openBatches().map(\.id) == ["batch_1", "batch_2"])
            // A cancel lands first; the runner's "finalizing" from in_progress then does not overwrite it.
            #expect(try await store.transition("batch_1", BatchTransition(from: [.validating, .inProgress], to: .cancelling, at: t0 + 10)))
            #expect(try await !store.transition("batch_1", BatchTransition(from: [.inProgress], to: .finalizing, at: t0 + 11)))
            #expect(try await store.transition("batch_1", BatchTransition(from: [.cancelling], to: .cancelled, at: t0 + 12,
                                                                          outputFileID: "file-out", errorFileID: "file-err")))
            let b = try #require(try await store.batch("batch_1"))
            #expect(b.status == .cancelled)
            #expect(b.cancellingAt == t0 + 10)
            #expect(b.cancelledAt == t0 + 12)
            #expect(b.finalizingAt == nil)
            #expect(b.outputFileID == "file-out" && b.errorFileID == "file-err")
            #expect(try await store.openBatches().map(\.id) == ["batch_2"])
            #expect(try await store.batches().map(\.id) == ["batch_2", "batch_1"])
        }
    }

    @Test(arguments: Backend.allCases) func webhooksAreOwedUntilDeliveredOrTriedOut(_ backend: Backend) async throws {
        try await backend.withDatabase { db async throws in
            let store = BatchStore(db.database)
            try await store.create(batch("batch_open"), requests: requests(1))
            try await store.create(batch("batch_done", at: 1), requests: requests(1))
            var silent = batch("batch_silent", at: 2)
            silent.webhookURL = nil
            try await store.create(silent, requests: requests(1))
            for id in ["batch_done", "batch_silent"] {
                try await store.transition(id, BatchTransition(from: [.inProgress], to: .completed, at: t0 + 5))
            }
            #expect(try await store.undeliveredWebhooks(maxAttempts: 3).map(\.id) == ["batch_done"], "open batches and those without a URL owe none")
            try await store.recordWebhookAttempt("batch_done", delivered: nil)
            try await store.recordWebhookAttempt("batch_done", delivered: nil)
            #expect(try await store.undeliveredWebhooks(maxAttempts: 3).map(\.webhookAttempts) == [2])
            #expect(try await store.undeliveredWebhooks(maxAttempts: 2).isEmpty, "tried out")
            try await store.recordWebhookAttempt("batch_done", delivered: t0 + 9)
            #expect(try await store.undeliveredWebhooks(maxAttempts: 10).isEmpty)
            #expect(try await store.batch("batch_done")?.webhookDeliveredAt == t0 + 9)
        }
    }

    @Test(arguments: Backend.allCases) func aBatchIsRunByOneReplicaUntilItsLeaseLapses(_ backend: Backend) async throws {
        try await backend.withDatabase { db async throws in
            let store = BatchStore(db.database)
            try await store.create(batch("batch_1"), requests: requests(1))
            #expect(try await store.claim("batch_1", runner: "a", until: t0 + 120, now: t0))
            let other = try await db.withReplica { try await BatchStore($0).claim("batch_1", runner: "b", until: t0 + 130, now: t0 + 10) }
            #expect(!other, "a's lease runs")
            #expect(try await store.claim("batch_1", runner: "a", until: t0 + 240, now: t0 + 100), "a renews")
            #expect(try await !store.claim("batch_1", runner: "b", until: t0 + 300, now: t0 + 200))
            #expect(try await store.claim("batch_1", runner: "b", until: t0 + 400, now: t0 + 241), "a stopped renewing: b takes over")
            #expect(try await !store.claim("batch_1", runner: "a", until: t0 + 500, now: t0 + 300))
        }
    }
}
