import Foundation

/// A conversation kept on the server (OpenAI's Conversations API, the native API's `session`): who owns it, when it
/// was made and last changed, its metadata (a JSON object as text, opaque here). Its items are kept apart, in order.
public struct StoredConversation: Sendable, Equatable {
    /// `conv_…` (a native session's id is derived from its key and name, see the gateway).
    public var id: String
    /// The name of the API key that made it (keys see only their own); nil when no key was presented (auth off) or
    /// the admin key was.
    public var owner: String?
    public var createdAt: Date
    /// When an item was last added or removed, or the metadata changed; retention counts from it.
    public var updatedAt: Date
    /// A JSON object.
    public var metadata: String

    public init(id: String, owner: String?, createdAt: Date, updatedAt: Date, metadata: String) {
        self.id = id; self.owner = owner; self.createdAt = createdAt; self.updatedAt = updatedAt; self.metadata = metadata
    }
}

/// One item of a conversation: a message, a function call or its output, reasoning (JSON text, as the Responses API
/// shapes it), in the order it was added (`sequence` grows with every item added to any conversation).
public struct StoredConversationItem: Sendable, Equatable {
    /// The item's own id (`msg_…`, `fc_…`); unique in practice, not enforced.
    public var id: String
    /// The item as a JSON object.
    public var item: String
    public var createdAt: Date
    /// Its place: items of one conversation read in increasing `sequence`. 0 until stored.
    public var sequence: Int64

    public init(id: String, item: String, createdAt: Date, sequence: Int64 = 0) {
        self.id = id; self.item = item; self.createdAt = createdAt; self.sequence = sequence
    }
}

/// Conversations in the server's database (SQLite or PostgreSQL): they outlive a restart, and replicas over one
/// PostgreSQL database share them. Who may see which is decided above this (`owner`).
public struct ConversationStore: Sendable {
    let database: StorageDatabase

    public init(_ database: StorageDatabase) {
        self.database = database
    }

    /// Stores a new conversation with its first items; throws `StorageError.database` when the id is taken.
    public func create(_ conversation: StoredConversation, items: [StoredConversationItem]) async throws {
        try await database.backend.insertConversation(conversation, items: items)
    }

    /// The conversation with this id, if kept.
    public func find(_ id: String) async throws -> StoredConversation? {
        try await database.backend.conversation(id: id)
    }

    /// Replaces a conversation's metadata; the conversation as it now stands, nil when there is none.
    public func update(_ id: String, metadata: String, at: Date = Date()) async throws -> StoredConversation? {
        try await database.backend.updateConversation(id: id, metadata: metadata, at: at)
    }

    /// Deletes a conversation and its items; false when there was none.
    @discardableResult
    public func delete(_ id: String) async throws -> Bool {
        try await database.backend.deleteConversation(id: id)
    }

    /// Adds items at the end of a conversation, all or none; false when there is no such conversation.
    public func append(_ id: String, items: [StoredConversationItem], at: Date = Date()) async throws -> Bool {
        try await database.backend.appendConversationItems(id: id, items: items, at: at)
    }

    /// Every item of a conversation, oldest first.
    public func items(_ id: String) async throws -> [StoredConversationItem] {
        try await database.backend.conversationItems(id: id)
    }

    /// Deletes the item `itemID` of a conversation; false when it has none by that id.
    public func deleteItem(_ id: String, itemID: String, at: Date = Date()) async throws -> Bool {
        try await database.backend.deleteConversationItem(id: id, itemID: itemID, at: at)
    }

    /// Deletes the conversations last changed before `cutoff`, with their items; how many.
    public func deleteIdle(before cutoff: Date) async throws -> Int {
        try await database.backend.deleteConversations(updatedBefore: cutoff)
    }
}
