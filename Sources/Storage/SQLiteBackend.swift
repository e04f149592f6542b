import Foundation
import GRDB

/// Keys and usage in one SQLite file: WAL mode (readers never wait for the writer), versioned migrations applied
/// when it opens. Several processes (the server and the CLI) may open the same file; a writer waits up to
/// `busyTimeout` for another.
final class SQLiteBackend: StorageBackend {
    /// The database file.
    let path: String
    let pool: DatabasePool

    var kind: StorageDatabase.Kind { .sqlite }
    var location: String { path }

    /// Opens (creating if needed) the database at `url` and applies every migration it lacks.
    /// A new file and a new data directory are readable by their owner only: the file holds key hashes.
    init(url: URL, busyTimeout: TimeInterval = 5) throws {
        path = url.path
        let fileManager = FileManager.default
        let directory = url.deletingLastPathComponent()
        var isDirectory: ObjCBool = false
        if !fileManager.fileExists(atPath: directory.path, isDirectory: &isDirectory) {
            do {
                try fileManager.createDirectory(at: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
            } catch {
                throw StorageError.cannotOpen(path: path, reason: "cannot create \(directory.path): \(error.localizedDescription)")
            }
        } else if !isDirectory.boolValue {
            throw StorageError.cannotOpen(path: path, reason: "\(directory.path) is not a directory")
        }
        let isNew = !fileManager.fileExists(atPath: path)

        var configuration = Configuration()
        configuration.label = "switchyard"
        configuration.busyMode = .timeout(busyTimeout)
        configuration.prepareDatabase { db in
            // With WAL, NORMAL loses no committed transaction on a process crash, only on power loss.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
        } catch {
            throw StorageError.cannotOpen(path: path, reason: "\(error)")
        }
        if isNew { try? fileManager.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path) }

        let migrator = Migrations.migrator
        do {
            let unknown = try pool.read { db in
                try migrator.appliedIdentifiers(db).subtracting(migrator.migrations)
            }
            if !unknown.isEmpty { throw StorageError.newerSchema(path: path, unknownMigrations: unknown.sorted()) }
            try migrator.migrate(pool)
        } catch let error as StorageError {
            throw error
        } catch {
            throw StorageError.cannotOpen(path: path, reason: "migration failed: \(error)")
        }
    }

    func appliedMigrations() async throws -> [String] {
        try await read { db in try Migrations.migrator.appliedMigrations(db) }
    }

    /// The journal mode SQLite reports (`wal`).
    func journalMode() throws -> String {
        try read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "" }
    }

    /// GRDB closes the pool when the last reference goes.
    func close() async {}

    // MARK: Keys

    func key(id: String) async throws -> KeyRow? {
        try await read { db in try KeyRow.fetchOne(db, key: id) }
    }

    func keys(nameOrID reference: String) async throws -> [KeyRow] {
        try await read { db in
            try KeyRow.filter(Column("name") == reference || Column("id") == reference)
                .order(Column("created_at"), Column("id")).fetchAll(db)
        }
    }

    func allKeys() async throws -> [KeyRow] {
        try await read { db in try KeyRow.order(Column("created_at"), Column("name")).fetchAll(db) }
    }

    func insertKey(_ row: KeyRow) async throws -> KeyWrite {
        try await write { db in
            if try KeyRow.filter(Column("name") == row.name && Column("revoked_at") == nil).fetchOne(db) != nil {
                return .nameTaken
            }
            if try KeyRow.fetchOne(db, key: row.id) != nil { return .idTaken }
            try row.insert(db)
            return .written(try Self.reread(row.id, db))
        }
    }

    func revokeKey(id: String, at: Date, replacement: KeyRow?) async throws -> KeyWrite {
        try await write { db in
            guard var row = try KeyRow.fetchOne(db, key: id) else { throw StorageError.unknownKey(id) }
            if row.revokedAt != nil { return .alreadyRevoked(row) }
            if let replacement, try KeyRow.fetchOne(db, key: replacement.id) != nil { return .idTaken }
            row.revokedAt = at
            try row.update(db)
            if let replacement { try replacement.insert(db) }
            return .written(try Self.reread(replacement?.id ?? id, db))
        }
    }

    /// A row as the database keeps it (dates to the millisecond), so that what a call returns equals what later
    /// reads return.
    private static func reread(_ id: String, _ db: Database) throws -> KeyRow {
        guard let row = try KeyRow.fetchOne(db, key: id) else { throw StorageError.unknownKey(id) }
        return row
    }

    // MARK: Usage

    func insertUsage(_ records: [UsageRecord]) async throws -> Int {
        try await write { db in try Self.insert(records, db) }
    }

    /// Inserts records, skipping request ids already present; returns how many were new.
    static func insert(_ records: [UsageRecord], _ db: Database) throws -> Int {
        let statement = try db.cachedStatement(sql: """
            INSERT OR IGNORE INTO usage (request_id, key_id, model, deployment, provider, prompt_tokens,
                completion_tokens, latency_ms, ttft_ms, status, cost_usd, served_locally, requested_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        var inserted = 0
        for r in records {
            try statement.execute(arguments: [
                r.requestID, r.keyID, r.model, r.deployment, r.provider, r.promptTokens, r.completionTokens,
                r.latencyMs, r.timeToFirstTokenMs, r.status, r.costUSD, r.servedLocally, r.timestamp,
            ])
            inserted += db.changesCount
        }
        return inserted
    }

    func usageByModel(keyIDs: [String]?, model: String?, since: Date?) async throws -> [UsageSummary.ModelUsage] {
        try await read { db in
            var conditions: [String] = []
            var arguments = StatementArguments()
            if let keyIDs {
                conditions.append("key_id IN (\(keyIDs.map { _ in "?" }.joined(separator: ", ")))")
                arguments += StatementArguments(keyIDs)
            }
            if let model {
                conditions.append("model = ?")
                arguments += [model]
            }
            if let since {
                conditions.append("requested_at >= ?")
                arguments += [since]
            }
            let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            let rows = try Row.fetchAll(db, sql: """
                SELECT model, COUNT(*) AS requests, SUM(status >= 400) AS failed,
                       SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens,
                       SUM(served_locally) AS served_locally, SUM(cost_usd) AS cost_usd,
                       SUM(latency_ms) AS latency_ms, SUM(ttft_ms) AS ttft_ms, COUNT(ttft_ms) AS ttft_count,
                       MIN(requested_at) AS first, MAX(requested_at) AS last
                FROM usage \(filter)
                GROUP BY model
                ORDER BY requests DESC, model
                """, arguments: arguments)
            return rows.map { row in
                var t = UsageTotals()
                t.requests = row["requests"]
                t.failed = row["failed"] ?? 0
                t.promptTokens = row["prompt_tokens"] ?? 0
                t.completionTokens = row["completion_tokens"] ?? 0
                t.servedLocally = row["served_locally"] ?? 0
                t.costUSD = row["cost_usd"]
                t.latencyMsSum = row["latency_ms"] ?? 0
                t.timeToFirstTokenMsSum = row["ttft_ms"] ?? 0
                t.timeToFirstTokenCount = row["ttft_count"] ?? 0
                t.first = row["first"]
                t.last = row["last"]
                return UsageSummary.ModelUsage(model: row["model"] ?? "", totals: t)
            }
        }
    }

    func spent(keyIDs: [String], since: Date?) async throws -> UsageSpend {
        guard !keyIDs.isEmpty else { return UsageSpend() }
        return try await read { db in
            var arguments = StatementArguments(keyIDs)
            var filter = "key_id IN (\(keyIDs.map { _ in "?" }.joined(separator: ", ")))"
            if let since {
                filter += " AND requested_at >= ?"
                arguments += [since]
            }
            guard let row = try Row.fetchOne(db, sql: """
                SELECT COUNT(*) AS requests, SUM(prompt_tokens + completion_tokens) AS tokens, SUM(cost_usd) AS cost_usd
                FROM usage WHERE \(filter)
                """, arguments: arguments) else { return UsageSpend() }
            return UsageSpend(requests: row["requests"] ?? 0, tokens: row["tokens"] ?? 0, costUSD: row["cost_usd"] ?? 0)
        }
    }

    // MARK: Stored responses

    func saveResponse(_ r: StoredResponse) async throws {
        try await write { db in
            try db.execute(sql: """
                INSERT OR REPLACE INTO responses (id, owner, created_at, model, previous_response_id, response, input_items)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [r.id, r.owner, r.createdAt, r.model, r.previousResponseID, r.response, r.inputItems])
        }
    }

    func storedResponse(id: String) async throws -> StoredResponse? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM responses WHERE id = ?", arguments: [id]).map { row in
                StoredResponse(id: row["id"], owner: row["owner"], createdAt: row["created_at"], model: row["model"],
                               previousResponseID: row["previous_response_id"], response: row["response"],
                               inputItems: row["input_items"])
            }
        }
    }

    func deleteResponse(id: String) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "DELETE FROM responses WHERE id = ?", arguments: [id])
            return db.changesCount > 0
        }
    }

    // MARK: Conversations

    func insertConversation(_ c: StoredConversation, items: [StoredConversationItem]) async throws {
        try await write { db in
            try db.execute(sql: """
                INSERT INTO conversations (id, owner, created_at, updated_at, metadata) VALUES (?, ?, ?, ?, ?)
                """, arguments: [c.id, c.owner, c.createdAt, c.updatedAt, c.metadata])
            try Self.insert(items, into: c.id, db)
        }
    }

    private static func insert(_ items: [StoredConversationItem], into id: String, _ db: Database) throws {
        for item in items {
            try db.execute(sql: """
                INSERT INTO conversation_items (conversation_id, item_id, item, created_at) VALUES (?, ?, ?, ?)
                """, arguments: [id, item.id, item.item, item.createdAt])
        }
    }

    private static func conversation(_ row: Row) -> StoredConversation {
        StoredConversation(id: row["id"], owner: row["owner"], createdAt: row["created_at"], updatedAt: row["updated_at"],
                           metadata: row["metadata"])
    }

    func conversation(id: String) async throws -> StoredConversation? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM conversations WHERE id = ?", arguments: [id]).map(Self.conversation)
        }
    }

    func updateConversation(id: String, metadata: String, at: Date) async throws -> StoredConversation? {
        try await write { db in
            try db.execute(sql: "UPDATE conversations SET metadata = ?, updated_at = ? WHERE id = ?", arguments: [metadata, at, id])
            return try Row.fetchOne(db, sql: "SELECT * FROM conversations WHERE id = ?", arguments: [id]).map(Self.conversation)
        }
    }

    func deleteConversation(id: String) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "DELETE FROM conversation_items WHERE conversation_id = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM conversations WHERE id = ?", arguments: [id])
            return db.changesCount > 0
        }
    }

    func appendConversationItems(id: String, items: [StoredConversationItem], at: Date) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "UPDATE conversations SET updated_at = ? WHERE id = ?", arguments: [at, id])
            guard db.changesCount > 0 else { return false }
            try Self.insert(items, into: id, db)
            return true
        }
    }

    func conversationItems(id: String) async throws -> [StoredConversationItem] {
        try await read { db in
            try Row.fetchAll(db, sql: """
                SELECT sequence, item_id, item, created_at FROM conversation_items WHERE conversation_id = ? ORDER BY sequence
                """, arguments: [id]).map { row in
                StoredConversationItem(id: row["item_id"], item: row["item"], createdAt: row["created_at"], sequence: row["sequence"])
            }
        }
    }

    func deleteConversationItem(id: String, itemID: String, at: Date) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "DELETE FROM conversation_items WHERE conversation_id = ? AND item_id = ?", arguments: [id, itemID])
            guard db.changesCount > 0 else { return false }
            try db.execute(sql: "UPDATE conversations SET updated_at = ? WHERE id = ?", arguments: [at, id])
            return true
        }
    }

    func deleteConversations(updatedBefore cutoff: Date) async throws -> Int {
        try await write { db in
            try db.execute(sql: """
                DELETE FROM conversation_items WHERE conversation_id IN (SELECT id FROM conversations WHERE updated_at < ?)
                """, arguments: [cutoff])
            try db.execute(sql: "DELETE FROM conversations WHERE updated_at < ?", arguments: [cutoff])
            return db.changesCount
        }
    }

    // MARK: Files and batches

    func insertFile(_ f: StoredFile, content: Data) async throws {
        try await write { db in
            try db.execute(sql: """
                INSERT INTO files (id, owner, purpose, filename, bytes, created_at, content) VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [f.id, f.owner, f.purpose, f.filename, f.bytes, f.createdAt, content])
        }
    }

    private static func file(_ row: Row) -> StoredFile {
        StoredFile(id: row["id"], owner: row["owner"], purpose: row["purpose"], filename: row["filename"], bytes: row["bytes"],
                   createdAt: row["created_at"])
    }

    private static let fileColumns = "id, owner, purpose, filename, bytes, created_at"

    func file(id: String) async throws -> StoredFile? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT \(Self.fileColumns) FROM files WHERE id = ?", arguments: [id]).map(Self.file)
        }
    }

    func fileContent(id: String) async throws -> Data? {
        try await read { db in try Data.fetchOne(db, sql: "SELECT content FROM files WHERE id = ?", arguments: [id]) }
    }

    func files(purpose: String?) async throws -> [StoredFile] {
        try await read { db in
            try Row.fetchAll(db, sql: """
                SELECT \(Self.fileColumns) FROM files WHERE ? IS NULL OR purpose = ? ORDER BY created_at DESC, id DESC
                """, arguments: [purpose, purpose]).map(Self.file)
        }
    }

    func deleteFile(id: String) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "DELETE FROM files WHERE id = ?", arguments: [id])
            return db.changesCount > 0
        }
    }

    func insertBatch(_ b: StoredBatch, requests: [StoredBatchRequest]) async throws {
        try await write { db in
            try db.execute(sql: """
                INSERT INTO batches (id, owner, endpoint, input_file_id, completion_window, metadata, status, created_at, expires_at,
                                     failed_at, errors, webhook_url)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [b.id, b.owner, b.endpoint, b.inputFileID, b.completionWindow, b.metadata, b.status.rawValue,
                                 b.createdAt, b.expiresAt, b.failedAt, b.errors, b.webhookURL])
            let insert = try db.makeStatement(sql: "INSERT INTO batch_requests (batch_id, line, custom_id, body) VALUES (?, ?, ?, ?)")
            for r in requests { try insert.execute(arguments: [b.id, r.line, r.customID, r.body]) }
        }
    }

    private static let batchQuery = """
        SELECT b.*, (SELECT COUNT(*) FROM batch_requests r WHERE r.batch_id = b.id) AS total,
               (SELECT COUNT(*) FROM batch_requests r WHERE r.batch_id = b.id AND r.status = 'done') AS done,
               (SELECT COUNT(*) FROM batch_requests r WHERE r.batch_id = b.id AND r.status = 'failed') AS failed_count
        FROM batches b
        """

    private static func batch(_ row: Row) -> StoredBatch {
        var b = StoredBatch(id: row["id"], owner: row["owner"], endpoint: row["endpoint"], inputFileID: row["input_file_id"],
                            completionWindow: row["completion_window"], metadata: row["metadata"],
                            status: StoredBatch.Status(rawValue: row["status"]) ?? .failed, createdAt: row["created_at"],
                            expiresAt: row["expires_at"], webhookURL: row["webhook_url"])
        b.inProgressAt = row["in_progress_at"]; b.finalizingAt = row["finalizing_at"]; b.completedAt = row["completed_at"]
        b.failedAt = row["failed_at"]; b.expiredAt = row["expired_at"]; b.cancellingAt = row["cancelling_at"]
        b.cancelledAt = row["cancelled_at"]; b.outputFileID = row["output_file_id"]; b.errorFileID = row["error_file_id"]
        b.errors = row["errors"]; b.total = row["total"]; b.completed = row["done"]; b.failed = row["failed_count"]
        b.webhookAttempts = row["webhook_attempts"]; b.webhookDeliveredAt = row["webhook_delivered_at"]
        return b
    }

    func batch(id: String) async throws -> StoredBatch? {
        try await read { db in try Row.fetchOne(db, sql: Self.batchQuery + " WHERE b.id = ?", arguments: [id]).map(Self.batch) }
    }

    func batches(openOnly: Bool) async throws -> [StoredBatch] {
        try await read { db in
            let sql = openOnly
                ? Self.batchQuery + " WHERE b.status IN ('validating', 'in_progress', 'finalizing', 'cancelling') ORDER BY b.created_at, b.id"
                : Self.batchQuery + " ORDER BY b.created_at DESC, b.id DESC"
            return try Row.fetchAll(db, sql: sql).map(Self.batch)
        }
    }

    func transitionBatch(id: String, _ t: BatchTransition) async throws -> Bool {
        try await write { db in
            let from = t.from.map { "'\($0.rawValue)'" }.joined(separator: ", ")
            var sets = "status = ?"
            var arguments: StatementArguments = [t.to.rawValue]
            if let column = BatchColumns.timestamp(t.to) { sets += ", \(column) = ?"; _ = arguments.append(contentsOf: [t.at]) }
            if let v = t.outputFileID { sets += ", output_file_id = ?"; _ = arguments.append(contentsOf: [v]) }
            if let v = t.errorFileID { sets += ", error_file_id = ?"; _ = arguments.append(contentsOf: [v]) }
            if let v = t.errors { sets += ", errors = ?"; _ = arguments.append(contentsOf: [v]) }
            _ = arguments.append(contentsOf: [id])
            try db.execute(sql: "UPDATE batches SET \(sets) WHERE id = ? AND status IN (\(from))", arguments: arguments)
            return db.changesCount > 0
        }
    }

    private static func request(_ row: Row) -> StoredBatchRequest {
        StoredBatchRequest(line: row["line"], customID: row["custom_id"], body: row["body"],
                           status: StoredBatchRequest.Status(rawValue: row["status"]) ?? .failed, result: row["result"])
    }

    func pendingBatchRequests(batchID: String, limit: Int) async throws -> [StoredBatchRequest] {
        try await read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM batch_requests WHERE batch_id = ? AND status = 'pending' ORDER BY line LIMIT ?
                """, arguments: [batchID, limit]).map(Self.request)
        }
    }

    func finishBatchRequest(batchID: String, line: Int, status: StoredBatchRequest.Status, result: String) async throws -> Bool {
        try await write { db in
            try db.execute(sql: """
                UPDATE batch_requests SET status = ?, result = ? WHERE batch_id = ? AND line = ? AND status = 'pending'
                """, arguments: [status.rawValue, result, batchID, line])
            return db.changesCount > 0
        }
    }

    func undeliveredWebhooks(maxAttempts: Int) async throws -> [StoredBatch] {
        try await read { db in
            try Row.fetchAll(db, sql: Self.batchQuery + """
                 WHERE b.status IN ('failed', 'completed', 'expired', 'cancelled') AND b.webhook_url IS NOT NULL
                   AND b.webhook_delivered_at IS NULL AND b.webhook_attempts < ? ORDER BY b.created_at, b.id
                """, arguments: [maxAttempts]).map(Self.batch)
        }
    }

    func claimBatch(id: String, runner: String, until: Date, now: Date) async throws -> Bool {
        try await write { db in
            try db.execute(sql: """
                UPDATE batches SET runner = ?, lease_until = ?
                WHERE id = ? AND (runner IS NULL OR runner = ? OR lease_until IS NULL OR lease_until < ?)
                """, arguments: [runner, until, id, runner, now])
            return db.changesCount > 0
        }
    }

    func recordWebhookAttempt(id: String, delivered: Date?) async throws {
        try await write { db in
            try db.execute(sql: """
                UPDATE batches SET webhook_attempts = webhook_attempts + 1, webhook_delivered_at = ? WHERE id = ?
                """, arguments: [delivered, id])
        }
    }

    func batchRequests(batchID: String) async throws -> [StoredBatchRequest] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM batch_requests WHERE batch_id = ? ORDER BY line", arguments: [batchID]).map(Self.request)
        }
    }

    // MARK: Access with errors mapped to StorageError

    func read<T>(_ body: (Database) throws -> T) throws -> T {
        do { return try pool.read(body) } catch { throw Self.mapped(error) }
    }

    func read<T: Sendable>(_ body: @Sendable (Database) throws -> T) async throws -> T {
        do { return try await pool.read(body) } catch { throw Self.mapped(error) }
    }

    func write<T: Sendable>(_ body: @Sendable (Database) throws -> T) async throws -> T {
        do { return try await pool.write(body) } catch { throw Self.mapped(error) }
    }

    static func mapped(_ error: any Error) -> any Error {
        switch error {
        case is StorageError, is CancellationError: return error
        case let error as DatabaseError: return StorageError.database(error.description)
        default: return error
        }
    }
}
