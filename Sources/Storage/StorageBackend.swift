import Foundation

/// The few operations `KeyStore`, `UsageStore` and `ResponseStore` need from a database, each atomic on its own; every back end
/// (SQLite through GRDB, PostgreSQL through postgres-nio) writes them in its own SQL over the same tables.
///
/// The rules live above this line, in `KeyStore` and `UsageStore`: which key a reference names, what a name may be,
/// what a rotation keeps. Below it each operation leans on the schema for what must hold across processes: the
/// primary key on `api_keys.id`, the unique index on the active keys' names, the unique `usage.request_id`.
/// Errors come out as `StorageError`.
protocol StorageBackend: Sendable {
    /// SQLite or PostgreSQL.
    var kind: StorageDatabase.Kind { get }
    /// The SQLite file, or the PostgreSQL URL without its password.
    var location: String { get }

    /// The key with this id.
    func key(id: String) async throws -> KeyRow?
    /// The keys whose name or id is `reference`, oldest first.
    func keys(nameOrID reference: String) async throws -> [KeyRow]
    /// Every key, by creation date then name.
    func allKeys() async throws -> [KeyRow]
    /// Inserts a new key unless its id is taken or an active key has its name. Answers `.written` with the row as
    /// stored, `.idTaken` or `.nameTaken`.
    func insertKey(_ row: KeyRow) async throws -> KeyWrite
    /// In one transaction: revokes the key `id` at `at` (unless it already is) and inserts `replacement`, if any.
    /// Answers `.written` with the replacement as stored (without one, the revoked key), `.alreadyRevoked` with the
    /// key as it stands, or `.idTaken` when the replacement's id is in use (nothing changed).
    /// Throws `StorageError.unknownKey` when no key has this id.
    func revokeKey(id: String, at: Date, replacement: KeyRow?) async throws -> KeyWrite

    /// Inserts usage records in one transaction, skipping request ids already present (a retried batch, another
    /// replica's copy). Returns how many were new.
    func insertUsage(_ records: [UsageRecord]) async throws -> Int
    /// Totals per model over the records that match (nil: no condition), most requests first, then by name.
    func usageByModel(keyIDs: [String]?, model: String?, since: Date?) async throws -> [UsageSummary.ModelUsage]
    /// What the keys `keyIDs` have spent since `since` (nil: ever).
    func spent(keyIDs: [String], since: Date?) async throws -> UsageSpend

    /// Inserts or replaces a stored Responses API answer.
    func saveResponse(_ response: StoredResponse) async throws
    /// The stored answer with this id.
    func storedResponse(id: String) async throws -> StoredResponse?
    /// Deletes a stored answer; false when there was none.
    func deleteResponse(id: String) async throws -> Bool

    /// Inserts a conversation and its first items in one transaction; a taken id is `StorageError.database`.
    func insertConversation(_ conversation: StoredConversation, items: [StoredConversationItem]) async throws
    /// The conversation with this id.
    func conversation(id: String) async throws -> StoredConversation?
    /// Replaces a conversation's metadata and sets its `updated_at`; the row as it now stands, nil when none.
    func updateConversation(id: String, metadata: String, at: Date) async throws -> StoredConversation?
    /// Deletes a conversation and its items in one transaction; false when there was none.
    func deleteConversation(id: String) async throws -> Bool
    /// In one transaction: appends items (in the given order, after every item already there) and sets
    /// `updated_at`; false (nothing written) when the conversation does not exist.
    func appendConversationItems(id: String, items: [StoredConversationItem], at: Date) async throws -> Bool
    /// A conversation's items, oldest first.
    func conversationItems(id: String) async throws -> [StoredConversationItem]
    /// Deletes a conversation's items with this id and sets `updated_at`; false when it had none.
    func deleteConversationItem(id: String, itemID: String, at: Date) async throws -> Bool
    /// Deletes the conversations whose `updated_at` is before `cutoff`, and their items; how many.
    func deleteConversations(updatedBefore cutoff: Date) async throws -> Int

    /// Inserts a file with its content.
    func insertFile(_ file: StoredFile, content: Data) async throws
    func file(id: String) async throws -> StoredFile?
    func fileContent(id: String) async throws -> Data?
    /// Files (of one purpose, or all), newest first.
    func files(purpose: String?) async throws -> [StoredFile]
    func deleteFile(id: String) async throws -> Bool
    /// Inserts a batch and its requests in one transaction.
    func insertBatch(_ batch: StoredBatch, requests: [StoredBatchRequest]) async throws
    /// The batch with its request counts.
    func batch(id: String) async throws -> StoredBatch?
    /// Batches with counts: all newest first, or only those with work left oldest first.
    func batches(openOnly: Bool) async throws -> [StoredBatch]
    /// Applies a status change if the batch is in one of `transition.from`; whether it did.
    func transitionBatch(id: String, _ transition: BatchTransition) async throws -> Bool
    func pendingBatchRequests(batchID: String, limit: Int) async throws -> [StoredBatchRequest]
    /// Sets a pending request's outcome; false when it was not pending.
    func finishBatchRequest(batchID: String, line: Int, status: StoredBatchRequest.Status, result: String) async throws -> Bool
    func batchRequests(batchID: String) async throws -> [StoredBatchRequest]
    /// Closed batches (failed, completed, expired, cancelled) with a webhook not yet delivered, tried fewer than
    /// `maxAttempts` times, oldest first.
    func undeliveredWebhooks(maxAttempts: Int) async throws -> [StoredBatch]
    func recordWebhookAttempt(id: String, delivered: Date?) async throws
    /// Sets the batch's runner and lease if no other runner's lease runs past `now`; whether it did.
    func claimBatch(id: String, runner: String, until: Date, now: Date) async throws -> Bool

    /// The migrations applied to this database, oldest first.
    func appliedMigrations() async throws -> [String]
    /// Lets go of connections; nothing works after it.
    func close() async
}

/// The outcome of a key write that the caller decides on.
enum KeyWrite: Sendable {
    case written(KeyRow)
    case idTaken
    case nameTaken
    case alreadyRevoked(KeyRow)
}
