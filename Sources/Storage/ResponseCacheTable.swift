import Synchronization
import Foundation
import GRDB

/// The response cache's SQLite back end: one row per entry in the database file (`serve --cache sqlite`), so that
/// cached answers outlive a restart. Expired rows are never returned; they are deleted as new ones are written
/// (at most once a minute, in the writing transaction).
public final class SQLiteCacheStore: Sendable {
    let database: SQLiteBackend
    private let lastPurge = Mutex(Date.distantPast)

    /// A cache in `database`'s file; nil when the database is not SQLite.
    public init?(_ database: StorageDatabase) {
        guard let sqlite = database.sqlite else { return nil }
        self.database = sqlite
    }

    public func get(_ key: String) async throws -> Data? {
        let now = Date().timeIntervalSince1970
        return try await database.read { db in
            try Data.fetchOne(db, sql: "SELECT value FROM response_cache WHERE key = ? AND expires_at > ?", arguments: [key, now])
        }
    }

    public func put(_ key: String, _ value: Data, ttl: Duration) async throws {
        let now = Date()
        let expires = now.timeIntervalSince1970 + Double(ttl.components.seconds) + Double(ttl.components.attoseconds) / 1e18
        let purge = lastPurge.withLock { last in
            guard now.timeIntervalSince(last) > 60 else { return false }
            last = now
            return true
        }
        try await database.write { db in
            if purge { try db.execute(sql: "DELETE FROM response_cache WHERE expires_at <= ?", arguments: [now.timeIntervalSince1970]) }
            try db.execute(sql: "INSERT OR REPLACE INTO response_cache (key, value, expires_at) VALUES (?, ?, ?)",
                           arguments: [key, value, expires])
        }
    }

    /// Rows held, expired ones included.
    public func count() async throws -> Int {
        try await database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM response_cache") ?? 0 }
    }
}
