import Foundation
import Logging
import PostgresNIO
import Synchronization

/// Keys and usage in a PostgreSQL database that several replicas share, through postgres-nio's `PostgresClient`
/// (a connection pool, run by a task this back end owns and cancels on `close`).
///
/// Opening migrates on one connection first, inside a transaction that holds an advisory lock, so that replicas
/// starting together migrate once and any failure (unreachable server, wrong password, missing database) is
/// reported at once with its cause. Usage batches are one multi-row `INSERT … ON CONFLICT (request_id) DO NOTHING`.
final class PostgresBackend: StorageBackend {
    let url: PostgresURL
    let client: PostgresClient
    private let logger: Logger
    private let runner: Task<Void, Never>

    var kind: StorageDatabase.Kind { .postgres }
    var location: String { url.description }

    /// Rows per INSERT statement (13 parameters each; a statement takes at most 65535).
    static let usageRowsPerStatement = 1000

    /// The longest a statement waits for a pooled connection. While the server is unreachable the pool keeps
    /// trying to connect (for about a minute before it gives up on its own); a request that needs the database
    /// fails with `StorageError.unavailable` after this wait instead.
    let connectionWait: Duration

    private init(url: PostgresURL, logger: Logger, connectionWait: Duration) {
        self.url = url
        self.logger = logger
        self.connectionWait = connectionWait
        let client = PostgresClient(configuration: url.clientConfiguration(), backgroundLogger: logger)
        self.client = client
        self.runner = Task { await client.run() }
    }

    deinit {
        runner.cancel()
    }

    /// Connects, migrates, and starts the pool.
    static func connect(_ url: PostgresURL, connectionWait: Duration = .seconds(5)) async throws -> PostgresBackend {
        let logger = Logger(label: "switchyard.storage.postgres", factory: { _ in SwiftLogNoOpLogHandler() })
        try await migrate(url, logger: logger)
        return PostgresBackend(url: url, logger: logger, connectionWait: connectionWait)
    }

    /// Stops the pool: waits for it to close its connections, at most 5 s (a pool still trying to reach a server
    /// that went away may not stop at once; shutdown does not wait on it).
    func close() async {
        runner.cancel()
        let runner = self.runner
        let once = LeaseFlag()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Task {
                await runner.value
                if once.claim() { continuation.resume() }
            }
            Task {
                try? await Task.sleep(for: .seconds(5))
                if once.claim() { continuation.resume() }
            }
        }
    }

    // MARK: Migrations

    /// Applies the migrations the database lacks, on one connection, holding `PostgresMigrations.lockKey` until
    /// the transaction ends. Refuses a database with migrations this build does not know.
    private static func migrate(_ url: PostgresURL, logger: Logger) async throws {
        let location = url.description
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(configuration: try url.connectionConfiguration(), id: 0,
                                                              logger: logger)
        } catch {
            throw StorageError.cannotOpen(path: location, reason: describe(error))
        }
        do {
            try await transaction(on: connection, logger: logger) { connection in
                try await run("SELECT pg_advisory_xact_lock(\(PostgresMigrations.lockKey))", on: connection, logger)
                try await run(PostgresQuery(unsafeSQL: PostgresMigrations.createMigrationsTable), on: connection, logger)
                let applied = Set(try await run("SELECT identifier FROM schema_migrations", on: connection, logger)
                    .map { try $0.decode(String.self) })
                let unknown = applied.subtracting(PostgresMigrations.identifiers)
                if !unknown.isEmpty { throw StorageError.newerSchema(path: location, unknownMigrations: unknown.sorted()) }
                for migration in PostgresMigrations.all where !applied.contains(migration.identifier) {
                    for statement in migration.statements {
                        try await run(PostgresQuery(unsafeSQL: statement), on: connection, logger)
                    }
                    try await run("INSERT INTO schema_migrations (identifier) VALUES (\(migration.identifier))",
                                  on: connection, logger)
                }
            }
        } catch {
            try? await connection.close()
            switch error {
            case let error as StorageError: throw error
            default: throw StorageError.cannotOpen(path: location, reason: "migration failed: \(describe(error))")
            }
        }
        try? await connection.close()
    }

    func appliedMigrations() async throws -> [String] {
        let applied = Set(try await query("SELECT identifier FROM schema_migrations").map { try $0.decode(String.self) })
        return PostgresMigrations.identifiers.filter(applied.contains)
    }

    // MARK: Keys

    static let keyColumns = "id, name, key_hash, salt, key_prefix, created_at, expires_at, revoked_at, rpm, tpm, budget_tokens, budget_usd, allowed_models, local_only, allowed_ips"

    func key(id: String) async throws -> KeyRow? {
        try await query("SELECT \(unescaped: Self.keyColumns) FROM api_keys WHERE id = \(id)").first.map(Self.keyRow)
    }

    func keys(nameOrID reference: String) async throws -> [KeyRow] {
        try await query("""
            SELECT \(unescaped: Self.keyColumns) FROM api_keys WHERE name = \(reference) OR id = \(reference)
            ORDER BY created_at, id
            """).map(Self.keyRow)
    }

    func allKeys() async throws -> [KeyRow] {
        try await query("SELECT \(unescaped: Self.keyColumns) FROM api_keys ORDER BY created_at, name COLLATE \"C\"")
            .map(Self.keyRow)
    }

    func insertKey(_ row: KeyRow) async throws -> KeyWrite {
        do {
            let insert = try Self.insert(row)
            let rows = try await leased { [logger] in try await $0.query(insert, logger: logger).collect() }
            guard let stored = rows.first else { throw StorageError.database("the new key was not returned") }
            return .written(try Self.keyRow(stored))
        } catch {
            switch Self.uniqueViolation(error) {
            case "api_keys_pkey": return .idTaken
            case "api_keys_active_name": return .nameTaken
            default: throw Self.mapped(error)
            }
        }
    }

    func revokeKey(id: String, at: Date, replacement: KeyRow?) async throws -> KeyWrite {
        let logger = self.logger
        return try await transaction { connection in
            let rows = try await Self.run("SELECT \(unescaped: Self.keyColumns) FROM api_keys WHERE id = \(id) FOR UPDATE",
                                          on: connection, logger)
            guard let first = rows.first else { throw StorageError.unknownKey(id) }
            let current = try Self.keyRow(first)
            if current.revokedAt != nil { return .alreadyRevoked(current) }
            if let replacement {
                let taken = try await Self.run("SELECT 1 FROM api_keys WHERE id = \(replacement.id)", on: connection, logger)
                if !taken.isEmpty { return .idTaken }
            }
            let revoked = try await Self.run("""
                UPDATE api_keys SET revoked_at = \(at) WHERE id = \(id) RETURNING \(unescaped: Self.keyColumns)
                """, on: connection, logger)
            if let replacement {
                guard let stored = try await Self.run(try Self.insert(replacement), on: connection, logger).first else {
                    throw StorageError.database("the new key was not returned")
                }
                return .written(try Self.keyRow(stored))
            }
            guard let row = revoked.first else { throw StorageError.unknownKey(id) }
            return .written(try Self.keyRow(row))
        }
    }

    private static func insert(_ row: KeyRow) throws -> PostgresQuery {
        var binds = PostgresBindings(capacity: 15)
        binds.append(row.id)
        binds.append(row.name)
        try binds.append(row.keyHash)
        try binds.append(row.salt)
        binds.append(row.keyPrefix)
        binds.append(row.createdAt)
        binds.append(row.expiresAt)
        binds.append(row.revokedAt)
        binds.append(row.rpm)
        binds.append(row.tpm)
        binds.append(row.budgetTokens)
        binds.append(row.budgetUsd)
        binds.append(row.allowedModels)
        binds.append(row.localOnly)
        binds.append(row.allowedIps)
        return PostgresQuery(unsafeSQL: """
            INSERT INTO api_keys (\(keyColumns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
            RETURNING \(keyColumns)
            """, binds: binds)
    }

    private static func keyRow(_ row: PostgresRow) throws -> KeyRow {
        let (id, name, hash, salt, prefix, created, expires, revoked, rpm, tpm, budgetTokens, budgetUsd, models, localOnly, ips) =
            try row.decode((String, String, Data, Data, String, Date, Date?, Date?, Int?, Int?, Int?, Double?, [String], Bool, [String]).self)
        return KeyRow(id: id, name: name, keyHash: hash, salt: salt, keyPrefix: prefix, createdAt: created,
                      expiresAt: expires, revokedAt: revoked, rpm: rpm, tpm: tpm, budgetTokens: budgetTokens,
                      budgetUsd: budgetUsd, allowedModels: models, localOnly: localOnly, allowedIps: ips)
    }

    // MARK: Usage

    func insertUsage(_ records: [UsageRecord]) async throws -> Int {
        guard !records.isEmpty else { return 0 }
        // The same order in every replica, so that two inserting overlapping batches wait for each other instead of
        // deadlocking.
        let sorted = records.sorted { $0.requestID < $1.requestID }
        let chunks = stride(from: 0, to: sorted.count, by: Self.usageRowsPerStatement).map {
            Array(sorted[$0 ..< min($0 + Self.usageRowsPerStatement, sorted.count)])
        }
        let logger = self.logger
        if chunks.count == 1 { return try Self.count(try await query(Self.insert(chunks[0]))) }
        return try await transaction { connection in
            var inserted = 0
            for chunk in chunks { inserted += try Self.count(try await Self.run(Self.insert(chunk), on: connection, logger)) }
            return inserted
        }
    }

    /// One multi-row INSERT that skips request ids already present and answers how many rows it added.
    private static func insert(_ records: [UsageRecord]) -> PostgresQuery {
        var binds = PostgresBindings(capacity: records.count * 13)
        var rows: [String] = []
        rows.reserveCapacity(records.count)
        for (i, r) in records.enumerated() {
            let base = i * 13
            rows.append("(" + (1...13).map { "$\(base + $0)" }.joined(separator: ", ") + ")")
            binds.append(r.requestID)
            binds.append(r.keyID)
            binds.append(r.model)
            binds.append(r.deployment)
            binds.append(r.provider)
            binds.append(r.promptTokens)
            binds.append(r.completionTokens)
            binds.append(r.latencyMs)
            binds.append(r.timeToFirstTokenMs)
            binds.append(r.status)
            binds.append(r.costUSD)
            binds.append(r.servedLocally)
            binds.append(r.timestamp)
        }
        return PostgresQuery(unsafeSQL: """
            WITH inserted AS (
                INSERT INTO usage (request_id, key_id, model, deployment, provider, prompt_tokens, completion_tokens,
                                   latency_ms, ttft_ms, status, cost_usd, served_locally, requested_at)
                VALUES \(rows.joined(separator: ", "))
                ON CONFLICT (request_id) DO NOTHING
                RETURNING 1
            )
            SELECT COUNT(*) FROM inserted
            """, binds: binds)
    }

    private static func count(_ rows: [PostgresRow]) throws -> Int {
        try rows.first?.decode(Int.self) ?? 0
    }

    func usageByModel(keyIDs: [String]?, model: String?, since: Date?) async throws -> [UsageSummary.ModelUsage] {
        var binds = PostgresBindings()
        var conditions: [String] = []
        if let keyIDs {
            binds.append(keyIDs)
            conditions.append("key_id = ANY($\(binds.count))")
        }
        if let model {
            binds.append(model)
            conditions.append("model = $\(binds.count)")
        }
        if let since {
            binds.append(since)
            conditions.append("requested_at >= $\(binds.count)")
        }
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let rows = try await query(PostgresQuery(unsafeSQL: """
            SELECT model, COUNT(*) AS requests, COUNT(*) FILTER (WHERE status >= 400),
                   COALESCE(SUM(prompt_tokens), 0)::bigint, COALESCE(SUM(completion_tokens), 0)::bigint,
                   COUNT(*) FILTER (WHERE served_locally), SUM(cost_usd),
                   COALESCE(SUM(latency_ms), 0), COALESCE(SUM(ttft_ms), 0), COUNT(ttft_ms),
                   MIN(requested_at), MAX(requested_at)
            FROM usage \(filter)
            GROUP BY model
            ORDER BY requests DESC, model COLLATE "C"
            """, binds: binds))
        return try rows.map { row in
            let (model, requests, failed, prompt, completion, local, cost, latency, ttft, ttftCount, first, last) =
                try row.decode((String, Int, Int, Int, Int, Int, Double?, Double, Double, Int, Date?, Date?).self)
            var t = UsageTotals()
            t.requests = requests
            t.failed = failed
            t.promptTokens = prompt
            t.completionTokens = completion
            t.servedLocally = local
            t.costUSD = cost
            t.latencyMsSum = latency
            t.timeToFirstTokenMsSum = ttft
            t.timeToFirstTokenCount = ttftCount
            t.first = first
            t.last = last
            return UsageSummary.ModelUsage(model: model, totals: t)
        }
    }

    func spent(keyIDs: [String], since: Date?) async throws -> UsageSpend {
        guard !keyIDs.isEmpty else { return UsageSpend() }
        var binds = PostgresBindings()
        binds.append(keyIDs)
        var filter = "key_id = ANY($1)"
        if let since {
            binds.append(since)
            filter += " AND requested_at >= $2"
        }
        let rows = try await query(PostgresQuery(unsafeSQL: """
            SELECT COUNT(*), COALESCE(SUM(prompt_tokens + completion_tokens), 0)::bigint, COALESCE(SUM(cost_usd), 0)
            FROM usage WHERE \(filter)
            """, binds: binds))
        guard let row = rows.first else { return UsageSpend() }
        let (requests, tokens, cost) = try row.decode((Int, Int, Double).self)
        return UsageSpend(requests: requests, tokens: tokens, costUSD: cost)
    }

    // MARK: Running statements, errors mapped to StorageError

    /// Runs one statement on a pooled connection and reads every row.
    // MARK: Stored responses

    func saveResponse(_ r: StoredResponse) async throws {
        _ = try await query("""
            INSERT INTO responses (id, owner, created_at, model, previous_response_id, response, input_items)
            VALUES (\(r.id), \(r.owner), \(r.createdAt), \(r.model), \(r.previousResponseID), \(r.response), \(r.inputItems))
            ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner, created_at = EXCLUDED.created_at, model = EXCLUDED.model,
                previous_response_id = EXCLUDED.previous_response_id, response = EXCLUDED.response,
                input_items = EXCLUDED.input_items
            """)
    }

    func storedResponse(id: String) async throws -> StoredResponse? {
        try await query("""
            SELECT id, owner, created_at, model, previous_response_id, response, input_items FROM responses WHERE id = \(id)
            """).first.map { row in
            let (id, owner, created, model, previous, response, items) =
                try row.decode((String, String?, Date, String, String?, String, String).self)
            return StoredResponse(id: id, owner: owner, createdAt: created, model: model, previousResponseID: previous,
                                  response: response, inputItems: items)
        }
    }

    func deleteResponse(id: String) async throws -> Bool {
        !(try await query("DELETE FROM responses WHERE id = \(id) RETURNING id")).isEmpty
    }

    // MARK: Conversations

    func insertConversation(_ c: StoredConversation, items: [StoredConversationItem]) async throws {
        let logger = self.logger
        try await transaction { connection in
            _ = try await Self.run("""
                INSERT INTO conversations (id, owner, created_at, updated_at, metadata)
                VALUES (\(c.id), \(c.owner), \(c.createdAt), \(c.updatedAt), \(c.metadata))
                """, on: connection, logger)
            try await Self.insert(items, into: c.id, on: connection, logger)
        }
    }

    private static func insert(_ items: [StoredConversationItem], into id: String, on connection: PostgresConnection,
                               _ logger: Logger) async throws {
        for item in items {
            _ = try await run("""
                INSERT INTO conversation_items (conversation_id, item_id, item, created_at)
                VALUES (\(id), \(item.id), \(item.item), \(item.createdAt))
                """, on: connection, logger)
        }
    }

    private static func conversation(_ row: PostgresRow) throws -> StoredConversation {
        let (id, owner, created, updated, metadata) = try row.decode((String, String?, Date, Date, String).self)
        return StoredConversation(id: id, owner: owner, createdAt: created, updatedAt: updated, metadata: metadata)
    }

    func conversation(id: String) async throws -> StoredConversation? {
        try await query("""
            SELECT id, owner, created_at, updated_at, metadata FROM conversations WHERE id = \(id)
            """).first.map(Self.conversation)
    }

    func updateConversation(id: String, metadata: String, at: Date) async throws -> StoredConversation? {
        try await query("""
            UPDATE conversations SET metadata = \(metadata), updated_at = \(at) WHERE id = \(id)
            RETURNING id, owner, created_at, updated_at, metadata
            """).first.map(Self.conversation)
    }

    func deleteConversation(id: String) async throws -> Bool {
        // The items go with it (ON DELETE CASCADE).
        !(try await query("DELETE FROM conversations WHERE id = \(id) RETURNING id")).isEmpty
    }

    func appendConversationItems(id: String, items: [StoredConversationItem], at: Date) async throws -> Bool {
        let logger = self.logger
        return try await transaction { connection in
            // The row lock orders appends to one conversation across replicas: each one's items stay together.
            let found = try await Self.run("""
                UPDATE conversations SET updated_at = \(at) WHERE id = \(id) RETURNING id
                """, on: connection, logger)
            guard !found.isEmpty else { return false }
            try await Self.insert(items, into: id, on: connection, logger)
            return true
        }
    }

    func conversationItems(id: String) async throws -> [StoredConversationItem] {
        try await query("""
            SELECT sequence, item_id, item, created_at FROM conversation_items WHERE conversation_id = \(id) ORDER BY sequence
            """).map { row in
            let (sequence, itemID, item, created) = try row.decode((Int64, String, String, Date).self)
            return StoredConversationItem(id: itemID, item: item, createdAt: created, sequence: sequence)
        }
    }

    func deleteConversationItem(id: String, itemID: String, at: Date) async throws -> Bool {
        let logger = self.logger
        return try await transaction { connection in
            let deleted = try await Self.run("""
                DELETE FROM conversation_items WHERE conversation_id = \(id) AND item_id = \(itemID) RETURNING sequence
                """, on: connection, logger)
            guard !deleted.isEmpty else { return false }
            _ = try await Self.run("UPDATE conversations SET updated_at = \(at) WHERE id = \(id)", on: connection, logger)
            return true
        }
    }

    func deleteConversations(updatedBefore cutoff: Date) async throws -> Int {
        try await query("DELETE FROM conversations WHERE updated_at < \(cutoff) RETURNING id").count
    }

    // MARK: Files and batches

    func insertFile(_ f: StoredFile, content: Data) async throws {
        var binds = PostgresBindings(capacity: 7)
        binds.append(f.id)
        binds.append(f.owner)
        binds.append(f.purpose)
        binds.append(f.filename)
        binds.append(f.bytes)
        binds.append(f.createdAt)
        try binds.append(content)
        _ = try await query(PostgresQuery(unsafeSQL: """
            INSERT INTO files (id, owner, purpose, filename, bytes, created_at, content) VALUES ($1, $2, $3, $4, $5, $6, $7)
            """, binds: binds))
    }

    private static func file(_ row: PostgresRow) throws -> StoredFile {
        let (id, owner, purpose, filename, bytes, created) = try row.decode((String, String?, String, String, Int, Date).self)
        return StoredFile(id: id, owner: owner, purpose: purpose, filename: filename, bytes: bytes, createdAt: created)
    }

    func file(id: String) async throws -> StoredFile? {
        try await query("SELECT id, owner, purpose, filename, bytes, created_at FROM files WHERE id = \(id)").first.map(Self.file)
    }

    func fileContent(id: String) async throws -> Data? {
        try await query("SELECT content FROM files WHERE id = \(id)").first.map { try $0.decode(Data.self) }
    }

    func files(purpose: String?) async throws -> [StoredFile] {
        try await query("""
            SELECT id, owner, purpose, filename, bytes, created_at FROM files
            WHERE \(purpose)::text IS NULL OR purpose = \(purpose) ORDER BY created_at DESC, id DESC
            """).map(Self.file)
    }

    func deleteFile(id: String) async throws -> Bool {
        !(try await query("DELETE FROM files WHERE id = \(id) RETURNING id")).isEmpty
    }

    func insertBatch(_ b: StoredBatch, requests: [StoredBatchRequest]) async throws {
        let logger = self.logger
        try await transaction { connection in
            _ = try await Self.run("""
                INSERT INTO batches (id, owner, endpoint, input_file_id, completion_window, metadata, status, created_at, expires_at,
                                     failed_at, errors, webhook_url)
                VALUES (\(b.id), \(b.owner), \(b.endpoint), \(b.inputFileID), \(b.completionWindow), \(b.metadata), \(b.status.rawValue),
                        \(b.createdAt), \(b.expiresAt), \(b.failedAt), \(b.errors), \(b.webhookURL))
                """, on: connection, logger)
            // Many rows per statement: a batch of thousands of requests is a few round trips.
            for start in stride(from: 0, to: requests.count, by: 500) {
                let chunk = requests[start ..< min(start + 500, requests.count)]
                var binds = PostgresBindings(capacity: chunk.count * 4)
                var rows: [String] = []
                for (i, r) in chunk.enumerated() {
                    binds.append(b.id)
                    binds.append(r.line)
                    binds.append(r.customID)
                    binds.append(r.body)
                    rows.append("($\(4 * i + 1), $\(4 * i + 2), $\(4 * i + 3), $\(4 * i + 4))")
                }
                _ = try await Self.run(PostgresQuery(unsafeSQL: "INSERT INTO batch_requests (batch_id, line, custom_id, body) VALUES "
                                                     + rows.joined(separator: ", "), binds: binds), on: connection, logger)
            }
        }
    }

    private static let batchQuery = """
        SELECT b.id, b.owner, b.endpoint, b.input_file_id, b.completion_window, b.metadata, b.status, b.created_at, b.expires_at,
               b.in_progress_at, b.finalizing_at, b.completed_at, b.failed_at, b.expired_at, b.cancelling_at, b.cancelled_at,
               b.output_file_id, b.error_file_id, b.errors, b.webhook_url, b.webhook_attempts, b.webhook_delivered_at,
               (SELECT COUNT(*) FROM batch_requests r WHERE r.batch_id = b.id) AS total,
               (SELECT COUNT(*) FROM batch_requests r WHERE r.batch_id = b.id AND r.status = 'done') AS done,
               (SELECT COUNT(*) FROM batch_requests r WHERE r.batch_id = b.id AND r.status = 'failed') AS failed_count
        FROM batches b
        """

    private static func batch(_ row: PostgresRow) throws -> StoredBatch {
        let r = row.makeRandomAccess()
        var b = StoredBatch(id: try r["id"].decode(String.self), owner: try r["owner"].decode(String?.self),
                            endpoint: try r["endpoint"].decode(String.self), inputFileID: try r["input_file_id"].decode(String.self),
                            completionWindow: try r["completion_window"].decode(String.self), metadata: try r["metadata"].decode(String.self),
                            status: StoredBatch.Status(rawValue: try r["status"].decode(String.self)) ?? .failed,
                            createdAt: try r["created_at"].decode(Date.self), expiresAt: try r["expires_at"].decode(Date.self),
                            webhookURL: try r["webhook_url"].decode(String?.self))
        b.inProgressAt = try r["in_progress_at"].decode(Date?.self)
        b.finalizingAt = try r["finalizing_at"].decode(Date?.self)
        b.completedAt = try r["completed_at"].decode(Date?.self)
        b.failedAt = try r["failed_at"].decode(Date?.self)
        b.expiredAt = try r["expired_at"].decode(Date?.self)
        b.cancellingAt = try r["cancelling_at"].decode(Date?.self)
        b.cancelledAt = try r["cancelled_at"].decode(Date?.self)
        b.outputFileID = try r["output_file_id"].decode(String?.self)
        b.errorFileID = try r["error_file_id"].decode(String?.self)
        b.errors = try r["errors"].decode(String?.self)
        b.total = try r["total"].decode(Int.self)
        b.completed = try r["done"].decode(Int.self)
        b.failed = try r["failed_count"].decode(Int.self)
        b.webhookAttempts = try r["webhook_attempts"].decode(Int.self)
        b.webhookDeliveredAt = try r["webhook_delivered_at"].decode(Date?.self)
        return b
    }

    func batch(id: String) async throws -> StoredBatch? {
        try await query(PostgresQuery(unsafeSQL: Self.batchQuery + " WHERE b.id = $1", binds: Self.binds([id]))).first.map(Self.batch)
    }

    func batches(openOnly: Bool) async throws -> [StoredBatch] {
        let sql = openOnly
            ? Self.batchQuery + " WHERE b.status IN ('validating', 'in_progress', 'finalizing', 'cancelling') ORDER BY b.created_at, b.id"
            : Self.batchQuery + " ORDER BY b.created_at DESC, b.id DESC"
        return try await query(PostgresQuery(unsafeSQL: sql)).map(Self.batch)
    }

    private static func binds(_ values: [String]) -> PostgresBindings {
        var binds = PostgresBindings(capacity: values.count)
        for v in values { binds.append(v) }
        return binds
    }

    func transitionBatch(id: String, _ t: BatchTransition) async throws -> Bool {
        var binds = PostgresBindings(capacity: 6)
        binds.append(t.to.rawValue)
        var sets = "status = $1"
        if let column = BatchColumns.timestamp(t.to) { binds.append(t.at); sets += ", \(column) = $\(binds.count)" }
        if let v = t.outputFileID { binds.append(v); sets += ", output_file_id = $\(binds.count)" }
        if let v = t.errorFileID { binds.append(v); sets += ", error_file_id = $\(binds.count)" }
        if let v = t.errors { binds.append(v); sets += ", errors = $\(binds.count)" }
        binds.append(id)
        let from = t.from.map { "'\($0.rawValue)'" }.joined(separator: ", ")
        return !(try await query(PostgresQuery(unsafeSQL: """
            UPDATE batches SET \(sets) WHERE id = $\(binds.count) AND status IN (\(from)) RETURNING id
            """, binds: binds))).isEmpty
    }

    private static func request(_ row: PostgresRow) throws -> StoredBatchRequest {
        let (line, customID, body, status, result) = try row.decode((Int, String, String, String, String?).self)
        return StoredBatchRequest(line: line, customID: customID, body: body, status: StoredBatchRequest.Status(rawValue: status) ?? .failed,
                                  result: result)
    }

    func pendingBatchRequests(batchID: String, limit: Int) async throws -> [StoredBatchRequest] {
        try await query("""
            SELECT line, custom_id, body, status, result FROM batch_requests
            WHERE batch_id = \(batchID) AND status = 'pending' ORDER BY line LIMIT \(limit)
            """).map(Self.request)
    }

    func finishBatchRequest(batchID: String, line: Int, status: StoredBatchRequest.Status, result: String) async throws -> Bool {
        !(try await query("""
            UPDATE batch_requests SET status = \(status.rawValue), result = \(result)
            WHERE batch_id = \(batchID) AND line = \(line) AND status = 'pending' RETURNING line
            """)).isEmpty
    }

    func undeliveredWebhooks(maxAttempts: Int) async throws -> [StoredBatch] {
        var binds = PostgresBindings(capacity: 1)
        binds.append(maxAttempts)
        return try await query(PostgresQuery(unsafeSQL: Self.batchQuery + """
             WHERE b.status IN ('failed', 'completed', 'expired', 'cancelled') AND b.webhook_url IS NOT NULL
               AND b.webhook_delivered_at IS NULL AND b.webhook_attempts < $1 ORDER BY b.created_at, b.id
            """, binds: binds)).map(Self.batch)
    }

    func claimBatch(id: String, runner: String, until: Date, now: Date) async throws -> Bool {
        !(try await query("""
            UPDATE batches SET runner = \(runner), lease_until = \(until)
            WHERE id = \(id) AND (runner IS NULL OR runner = \(runner) OR lease_until IS NULL OR lease_until < \(now))
            RETURNING id
            """)).isEmpty
    }

    func recordWebhookAttempt(id: String, delivered: Date?) async throws {
        _ = try await query("""
            UPDATE batches SET webhook_attempts = webhook_attempts + 1, webhook_delivered_at = \(delivered) WHERE id = \(id)
            """)
    }

    func batchRequests(batchID: String) async throws -> [StoredBatchRequest] {
        try await query("""
            SELECT line, custom_id, body, status, result FROM batch_requests WHERE batch_id = \(batchID) ORDER BY line
            """).map(Self.request)
    }

    func query(_ query: PostgresQuery) async throws -> [PostgresRow] {
        do {
            return try await leased { [logger] in try await $0.query(query, logger: logger).collect() }
        } catch {
            throw Self.mapped(error)
        }
    }

    /// Runs `body` on a pooled connection, waiting at most `connectionWait` for one (then
    /// `StorageError.unavailable`); once it has one, `body` runs as long as it takes. A connection handed over after
    /// the wait ended runs nothing (the caller was told the statement failed). The wait for the pool is not awaited
    /// past `connectionWait`: a pool that cannot reach its server may hold a cancelled request for long.
    func leased<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let wait = connectionWait
        let client = self.client
        let state = LeaseState()
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let work = Task {
                let result: Result<T, any Error>
                do {
                    result = .success(try await client.withConnection { connection in
                        guard state.begin() else { throw CancellationError() }   // the caller gave up waiting
                        return try await body(connection)
                    })
                } catch {
                    result = .failure(error)
                }
                if state.finish() { continuation.resume(with: result) }
            }
            Task {
                try? await Task.sleep(for: wait)
                if state.timeOut() {
                    work.cancel()
                    continuation.resume(throwing: StorageError.unavailable(
                        "no connection to the PostgreSQL server within \(wait) (is it running and reachable?)"))
                }
            }
        }
    }

    /// Runs `body` in a transaction on one pooled connection: committed when it returns, rolled back when it throws.
    func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let logger = self.logger
        do {
            return try await leased { connection in
                try await Self.transaction(on: connection, logger: logger, body)
            }
        } catch {
            throw Self.mapped(error)
        }
    }

    private static func transaction<T: Sendable>(on connection: PostgresConnection, logger: Logger,
                                                 _ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await run("BEGIN", on: connection, logger)
        do {
            let value = try await body(connection)
            try await run("COMMIT", on: connection, logger)
            return value
        } catch {
            _ = try? await run("ROLLBACK", on: connection, logger)
            throw error
        }
    }

    @discardableResult
    static func run(_ query: PostgresQuery, on connection: PostgresConnection, _ logger: Logger) async throws -> [PostgresRow] {
        try await connection.query(query, logger: logger).collect()
    }

    /// The constraint a unique violation names, or nil for any other error.
    private static func uniqueViolation(_ error: any Error) -> String? {
        guard let error = error as? PSQLError, error.code == .server, error.serverInfo?[.sqlState] == "23505" else {
            return nil
        }
        return error.serverInfo?[.constraintName] ?? ""
    }

    static func mapped(_ error: any Error) -> any Error {
        switch error {
        case is StorageError, is CancellationError: return error
        case let error as PostgresTransactionError:
            if let inner = error.closureError ?? error.beginError ?? error.commitError ?? error.rollbackError {
                return mapped(inner)
            }
            return StorageError.database("a transaction failed")
        default:
            return isUnreachable(error) ? StorageError.unavailable(describe(error)) : StorageError.database(describe(error))
        }
    }

    /// Whether `error` says the server cannot be reached (rather than that it refused a statement).
    static func isUnreachable(_ error: any Error) -> Bool {
        if let error = error as? PSQLError {
            switch error.code {
            case .connectionError, .serverClosedConnection, .uncleanShutdown, .clientClosedConnection, .poolClosed: return true
            case .server:
                // Connection exceptions (08…) and operator intervention (57P…: the server shutting down, or the
                // connection terminated by an administrator).
                let state = error.serverInfo?[.sqlState] ?? ""
                return state.hasPrefix("08") || state.hasPrefix("57P")
            default: return false
            }
        }
        return String(reflecting: error).contains("connectionCreationCircuitBreakerTripped")
    }

    /// What went wrong, in words: the server's message and SQLSTATE, or what kept the connection from working.
    /// postgres-nio's own descriptions say nothing (on purpose); this says what the server said, which never holds
    /// the password.
    static func describe(_ error: any Error) -> String {
        switch error {
        case let error as StorageError:
            return error.description
        case let error as PSQLError:
            let cause = error.underlying.map { ": \(describe($0))" } ?? ""
            switch error.code {
            case .server:
                let info = error.serverInfo
                var text = info?[.message] ?? "the server refused the statement"
                if let detail = info?[.detail] { text += " (\(detail))" }
                if let state = info?[.sqlState] { text += " [SQLSTATE \(state)]" }
                return text
            case .sslUnsupported:
                return "the server does not accept TLS connections; add ?sslmode=disable to the database URL to connect without TLS"
            case .failedToAddSSLHandler:
                return "TLS could not be set up\(cause)"
            case .authMechanismRequiresPassword:
                return "the server asks for a password: give one in the database URL (postgres://user:password@host:5432/dbname)"
            case .unsupportedAuthMechanism:
                return "the server asks for an authentication method switchyard does not support"
            case .connectionError:
                return "cannot connect to the server\(cause)"
            case .serverClosedConnection, .uncleanShutdown:
                return "the server closed the connection\(cause)"
            case .clientClosedConnection, .poolClosed:
                return "the database connection is closed"
            case .queryCancelled:
                return "the statement was cancelled"
            default:
                return "\(error.code)\(cause)"
            }
        case is PostgresDecodingError:
            return "a column read back is not of the type this switchyard expects (is the schema someone else's?)"
        default:
            let text = String(reflecting: error)
            if text.contains("connectionCreationCircuitBreakerTripped") {
                return "cannot reach the PostgreSQL server: new connections have kept failing"
            }
            return "\(error)"
        }
    }
}

/// Which of two racers finished first (`PostgresBackend.close`).
private final class LeaseFlag: Sendable {
    private let value = Atomic<Bool>(false)
    /// True for the first caller only.
    func claim() -> Bool { value.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged }
}

/// Who ends a `PostgresBackend.leased` wait: the statement (once it has a connection, or when the pool fails it)
/// or the timer (if no connection came in time). Exactly one of them resumes the caller.
private final class LeaseState: Sendable {
    private static let waiting = 0, running = 1, timedOut = 2, failedEarly = 3
    private let value = Atomic<Int>(LeaseState.waiting)

    /// The connection arrived: true if the statement may run.
    func begin() -> Bool {
        value.compareExchange(expected: Self.waiting, desired: Self.running, ordering: .acquiringAndReleasing).exchanged
    }

    /// The timer fired: true if it ends the wait.
    func timeOut() -> Bool {
        value.compareExchange(expected: Self.waiting, desired: Self.timedOut, ordering: .acquiringAndReleasing).exchanged
    }

    /// The statement (or the wait for its connection) ended: true if it ends the wait.
    func finish() -> Bool {
        if value.load(ordering: .acquiring) == Self.running { return true }
        return value.compareExchange(expected: Self.waiting, desired: Self.failedEarly, ordering: .acquiringAndReleasing).exchanged
    }
}
