import Foundation
import GRDB

extension UsageStore {
    /// Totals over the records that match, and the same per model.
    ///
    /// - Parameters:
    ///   - key: a key's name (every key that has carried it, rotated ones included), id, or `sk-sy-<id>` prefix;
    ///     nil: every request, with or without a key. Throws `StorageError.unknownKey` if it names no key.
    ///   - model: only requests for this model.
    ///   - since: only requests that arrived at or after this date.
    /// Reads what is in the database: call `flush()` first to include records still queued.
    public func summary(key: String? = nil, model: String? = nil, since: Date? = nil) async throws -> UsageSummary {
        try await database.read { db in
            var conditions: [String] = []
            var arguments = StatementArguments()
            if let key {
                let ids = try Self.keyIDs(key, db)
                guard !ids.isEmpty else { throw StorageError.unknownKey(key) }
                conditions.append("key_id IN (\(ids.map { _ in "?" }.joined(separator: ", ")))")
                arguments += StatementArguments(ids)
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
            var summary = UsageSummary(totals: UsageTotals(), models: [])
            for row in rows {
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
                summary.models.append(.init(model: row["model"] ?? "", totals: t))
                summary.totals.add(t)
            }
            return summary
        }
    }

    /// The ids `reference` stands for: every key with that name, or the key with that id or prefix.
    static func keyIDs(_ reference: String, _ db: Database) throws -> [String] {
        let reference = reference.trimmingCharacters(in: .whitespaces)
        if reference.hasPrefix(KeySecret.scheme) {
            let id = String(reference.dropFirst(KeySecret.scheme.count).prefix(KeySecret.idLength))
            return try String.fetchAll(db, sql: "SELECT id FROM api_keys WHERE id = ?", arguments: [id])
        }
        return try String.fetchAll(db, sql: "SELECT id FROM api_keys WHERE name = ? OR id = ? ORDER BY created_at",
                                   arguments: [reference, reference])
    }
}
