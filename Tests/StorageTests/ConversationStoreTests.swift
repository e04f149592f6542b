import Foundation
@testable import Storage
import Testing

/// Conversations against SQLite and PostgreSQL: items come back in the order they were added (across appends and
/// handles, as after a restart or on another replica), an append to a missing conversation writes nothing, deleting
/// a conversation takes its items, and retention deletes only what is idle.
@Suite struct ConversationStoreTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func item(_ id: String, _ text: String, at: Date? = nil) -> StoredConversationItem {
        StoredConversationItem(id: id, item: #"{"id":"\#(id)","type":"message","role":"user","content":"\#(text)"}"#, createdAt: at ?? t0)
    }

    func conversation(_ id: String, owner: String? = "team-a", updated: Date? = nil) -> StoredConversation {
        StoredConversation(id: id, owner: owner, createdAt: t0, updatedAt: updated ?? t0, metadata: #"{"topic":"héllo"}"#)
    }

    @Test(arguments: Backend.allCases) func itemsKeepTheirOrderAcrossAppendsAndHandles(_ backend: Backend) async throws {
        try await backend.withDatabase { db async throws in
            let store = ConversationStore(db.database)
            try await store.create(conversation("conv_1"), items: [item("msg_1", "a"), item("msg_2", "b")])
            try await store.create(conversation("conv_2", owner: nil), items: [item("msg_x", "x")])
            #expect(try await store.append("conv_1", items: [item("msg_3", "c"), item("msg_4", "d")], at: t0 + 60))
            #expect(try await store.append("conv_2", items: [item("msg_y", "y")], at: t0 + 61))
            #expect(try await store.append("conv_1", items: [item("msg_5", "e")], at: t0 + 62))
            let (first, second, row) = try await db.withReplica { other in
                let store = ConversationStore(other)
                return (try await store.items("conv_1"), try await store.items("conv_2"), try await store.find("conv_1"))
            }
            #expect(first.map(\.id) == ["msg_1", "msg_2", "msg_3", "msg_4", "msg_5"])
            #expect(first.map(\.item) == ["a", "b", "c", "d", "e"].enumerated().map { item("msg_\($0.offset + 1)", $0.element).item })
            #expect(second.map(\.id) == ["msg_x", "msg_y"])
            #expect(row?.updatedAt == t0 + 62)
            #expect(row?.metadata == #"{"topic":"héllo"}"#)
            #expect(row?.owner == "team-a")
        }
    }

    @Test(arguments: Backend.allCases) func anAppendToAMissingConversationWritesNothing(_ backend: Backend) async throws {
        try await backend.withDatabase { db async throws in
            let store = ConversationStore(db.database)
            #expect(try await !store.append("conv_missing", items: [item("msg_1", "a")]))
            #expect(try await db.int("SELECT COUNT(*) FROM conversation_items") == 0)
        }
    }

    @Test(arguments: Backend.allCases) func aTakenIDIsRefusedAndNothingIsAdded(_ backend: Backend) async throws {
        try await backend.withDatabase { db async throws in
            let store = ConversationStore(db.database)
            try await store.create(conversation("conv_1"), items: [item("msg_1", "a")])
            await #expect(throws: StorageError.self) {
                try await store.create(conversation("conv_1", owner: "team-b"), items: [item("msg_2", "b")])
            }
            #expect(try await store.items("conv_1").map(\.id) == ["msg_1"])
            #expect(try await store.find("conv_1")?.owner == "team-a")
        }
    }

    @Test(arguments: Backend.allCases) func deletingTakesTheItemsAndAnItemGoesAlone(_ backend: Backend) async throws {
        try await backend.withDatabase { db async throws in
            let store = ConversationStore(db.database)
            try await store.create(conversation("conv_1"), items: [item("msg_1", "a"), item("msg_2", "b"), item("msg_3", "c")])
            try await store.create(conversation("conv_2"), items: [item("msg_2", "other")])
            #expect(try await store.deleteItem("conv_1", itemID: "msg_2", at: t0 + 5))
            #expect(try await !store.deleteItem("conv_1", itemID: "msg_2"))
            #expect(try await store.items("conv_1").map(\.id) == ["msg_1", "msg_3"])
            #expect(try await store.items("conv_2").map(\.id) == ["msg_2"])
            #expect(try await store.find("conv_1")?.updatedAt == t0 + 5)
            let updated = try await store.update("conv_1", metadata: #"{"k":"v"}"#, at: t0 + 9)
            #expect(updated?.metadata == #"{"k":"v"}"#)
            #expect(updated?.updatedAt == t0 + 9)
            #expect(updated?.createdAt == t0)
            #expect(try await store.update("conv_missing", metadata: "{}") == nil)
            #expect(try await store.delete("conv_1"))
            #expect(try await !store.delete("conv_1"))
            #expect(try await store.find("conv_1") == nil)
            #expect(try await db.int("SELECT COUNT(*) FROM conversation_items") == 1)
        }
    }

    @Test(arguments: Backend.allCases) func retentionDeletesOnlyIdleConversations(_ backend: Backend) async throws {
        try await backend.withDatabase { db async throws in
            let store = ConversationStore(db.database)
            try await store.create(conversation("conv_old"), items: [item("msg_1", "a")])
            try await store.create(conversation("conv_touched"), items: [item("msg_2", "b")])
            try await store.create(conversation("conv_new", updated: t0 + 3600), items: [item("msg_3", "c")])
            // An append counts as use: the conversation made at t0 but added to later is kept.
            #expect(try await store.append("conv_touched", items: [item("msg_4", "d")], at: t0 + 3600))
            #expect(try await store.deleteIdle(before: t0 + 1800) == 1)
            #expect(try await store.find("conv_old") == nil)
            #expect(try await store.find("conv_touched") != nil)
            #expect(try await store.find("conv_new") != nil)
            #expect(try await db.int("SELECT COUNT(*) FROM conversation_items") == 3)
        }
    }
}
