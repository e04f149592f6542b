import Foundation
@testable import Storage
import Testing

/// Stored Responses API answers, against SQLite and PostgreSQL: what is saved is read back unchanged (by another
/// handle on the same database, as after a restart or on another replica), replaced by id, and deleted once.
@Suite struct ResponseStoreTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func sample(_ id: String, owner: String? = "team-a", previous: String? = nil) -> StoredResponse {
        StoredResponse(id: id, owner: owner, createdAt: t0, model: "smollm2", previousResponseID: previous,
                       response: #"{"id":"\#(id)","output":[{"type":"message","content":[{"type":"output_text","text":"héllo \"q\""}]}]}"#,
                       inputItems: #"[{"type":"message","role":"user","content":"hi"}]"#)
    }

    @Test(arguments: Backend.allCases) func savedIsReadBackByAnotherHandle(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            let first = sample("resp_1"), second = sample("resp_2", owner: nil, previous: "resp_1")
            try await ResponseStore(db.database).save(first)
            try await ResponseStore(db.database).save(second)
            let read = try await db.withReplica { other in
                let store = ResponseStore(other)
                return [try await store.find("resp_1"), try await store.find("resp_2"), try await store.find("resp_3")]
            }
            #expect(read == [first, second, nil])
        }
    }

    @Test(arguments: Backend.allCases) func savingTheSameIDReplaces(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            let store = ResponseStore(db.database)
            try await store.save(sample("resp_1"))
            var changed = sample("resp_1", owner: "team-b")
            changed.response = "{}"
            try await store.save(changed)
            #expect(try await store.find("resp_1") == changed)
            #expect(try await db.int("SELECT COUNT(*) FROM responses") == 1)
        }
    }

    @Test(arguments: Backend.allCases) func deleteRemovesOnce(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            let store = ResponseStore(db.database)
            try await store.save(sample("resp_1"))
            try await store.save(sample("resp_2"))
            #expect(try await store.delete("resp_1"))
            #expect(try await !store.delete("resp_1"))
            #expect(try await store.find("resp_1") == nil)
            #expect(try await store.find("resp_2") != nil)
        }
    }
}
