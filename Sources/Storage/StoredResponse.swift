import Foundation

/// One answer of the OpenAI Responses API kept for later (`store: true`): the response object as it was returned,
/// and the input it was generated from, so that `previous_response_id` can continue from it, `GET
/// /v1/responses/{id}` can return it and `GET …/input_items` can list what it saw. Both are JSON text, opaque here.
public struct StoredResponse: Sendable, Equatable {
    /// `resp_…`.
    public var id: String
    /// The name of the API key that made it (keys see only their own); nil when no key was presented (auth off) or
    /// the admin key was.
    public var owner: String?
    public var createdAt: Date
    public var model: String
    public var previousResponseID: String?
    /// The response object (JSON).
    public var response: String
    /// Every input item the model saw (JSON array): the items of the responses it continues, their outputs, then
    /// this request's own input.
    public var inputItems: String

    public init(id: String, owner: String?, createdAt: Date, model: String, previousResponseID: String?,
                response: String, inputItems: String) {
        self.id = id; self.owner = owner; self.createdAt = createdAt; self.model = model
        self.previousResponseID = previousResponseID; self.response = response; self.inputItems = inputItems
    }
}

/// Stored responses in the server's database (SQLite or PostgreSQL): they outlive a restart, and replicas over one
/// PostgreSQL database share them. Who may see which is decided above this (`owner`).
public struct ResponseStore: Sendable {
    let database: StorageDatabase

    public init(_ database: StorageDatabase) {
        self.database = database
    }

    /// Keeps `response`; a second one with the same id replaces the first.
    public func save(_ response: StoredResponse) async throws {
        try await database.backend.saveResponse(response)
    }

    /// The response with this id, if kept.
    public func find(_ id: String) async throws -> StoredResponse? {
        try await database.backend.storedResponse(id: id)
    }

    /// Deletes the response with this id; false when there was none.
    @discardableResult
    public func delete(_ id: String) async throws -> Bool {
        try await database.backend.deleteResponse(id: id)
    }
}
