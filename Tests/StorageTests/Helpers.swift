import Foundation
import GRDB
import PostgresNIO
@testable import Storage
import TestSupport
import Testing

/// A database in a fresh temporary directory (which need not exist yet: opening creates it).
func temporaryDatabaseURL() -> URL {
    FileManager.default.temporaryDirectory
        .appendingPathComponent("sy-storage-\(UUID().uuidString)", isDirectory: true)
        .appendingPathComponent("switchyard.sqlite")
}

let day: TimeInterval = 86_400

/// The back ends every shared test runs against.
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres

    var testDescription: String { rawValue }

    /// Runs `body` with a fresh, migrated database of this kind, then closes and removes it.
    /// PostgreSQL: a new database on the test server (see `TestPostgres`).
    func withDatabase<T>(_ body: (TestDatabase) async throws -> T) async throws -> T {
        let target: StorageDatabase.Target
        var server: TestPostgres.Server?
        switch self {
        case .sqlite:
            target = .sqlite(temporaryDatabaseURL())
        case .postgres:
            let s = try await TestPostgres.shared.server()
            server = s
            target = .postgres(try await s.createDatabase())
        }
        let test = TestDatabase(backend: self, database: try await StorageDatabase.open(target, connectionWait: TestDatabase.connectionWait),
                                target: target)
        do {
            let value = try await body(test)
            await test.remove(server)
            return value
        } catch {
            await test.remove(server)
            throw error
        }
    }
}

/// One database of a test, and raw access to it in its own SQL dialect.
struct TestDatabase: Sendable {
    let backend: Backend
    let database: StorageDatabase
    let target: StorageDatabase.Target

    /// How long a statement waits for a pooled connection here: the server is up, but a loaded machine (the whole
    /// suite on two cores) can take longer than the 5 s a server gives before calling the database unavailable.
    static let connectionWait: Duration = .seconds(60)

    /// Another handle on the same database: another process, another replica.
    func reopen() async throws -> StorageDatabase {
        try await StorageDatabase.open(target, connectionWait: Self.connectionWait)
    }

    /// Runs `body` with another handle on the same database (another process, another replica), then closes it.
    func withReplica<T>(_ body: (StorageDatabase) async throws -> T) async throws -> T {
        let other = try await reopen()
        do {
            let value = try await body(other)
            await other.close()
            return value
        } catch {
            await other.close()
            throw error
        }
    }

    /// Runs one statement.
    func execute(_ sql: String) async throws {
        switch backend {
        case .sqlite:
            try await sqlite.write { db in try db.execute(sql: sql) }
        case .postgres:
            _ = try await postgres.query(PostgresQuery(unsafeSQL: sql))
        }
    }

    /// The first column of the first row, as an integer.
    func int(_ sql: String) async throws -> Int {
        switch backend {
        case .sqlite:
            return try await sqlite.read { db in try Int.fetchOne(db, sql: sql) ?? -1 }
        case .postgres:
            return try await postgres.query(PostgresQuery(unsafeSQL: sql)).first?.decode(Int.self) ?? -1
        }
    }

    /// The first column of every row, as text.
    func strings(_ sql: String) async throws -> [String] {
        switch backend {
        case .sqlite:
            return try await sqlite.read { db in try String.fetchAll(db, sql: sql) }
        case .postgres:
            return try await postgres.query(PostgresQuery(unsafeSQL: sql)).map { try $0.decode(String.self) }
        }
    }

    /// The statements, on one connection in one transaction; the last one's rows, first column, as text.
    func stringsInTransaction(_ statements: [String]) async throws -> [String] {
        switch backend {
        case .sqlite:
            return try await sqlite.write { db in
                for statement in statements.dropLast() { try db.execute(sql: statement) }
                return try Row.fetchAll(db, sql: statements.last ?? "SELECT 1").map { $0[0] as String? ?? "" }
            }
        case .postgres:
            return try await postgres.transaction { connection in
                var last: [PostgresRow] = []
                for statement in statements {
                    last = try await PostgresBackend.run(PostgresQuery(unsafeSQL: statement), on: connection,
                                                         Logger(label: "test"))
                }
                return try last.map { try $0.decode(String.self) }
            }
        }
    }

    /// How the database would run `query`: SQLite's plan, or PostgreSQL's with sequential scans discouraged (an
    /// empty table is otherwise always scanned).
    func queryPlan(_ query: String) async throws -> String {
        switch backend {
        case .sqlite:
            return try await sqlite.read { db in
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN \(query)").map { row -> String in row["detail"] ?? "" }
            }.joined(separator: " ")
        case .postgres:
            return try await stringsInTransaction(["SET LOCAL enable_seqscan = off", "EXPLAIN \(query)"])
                .joined(separator: " ")
        }
    }

    /// Makes every usage insert fail with "disk says no" until `allowUsageInserts`.
    func refuseUsageInserts() async throws {
        switch backend {
        case .sqlite:
            try await execute("CREATE TRIGGER refuse BEFORE INSERT ON usage BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
        case .postgres:
            try await execute("""
                CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN RAISE EXCEPTION 'disk says no'; END $$
                """)
            try await execute("CREATE TRIGGER refuse BEFORE INSERT ON usage FOR EACH ROW EXECUTE FUNCTION refuse()")
        }
    }

    func allowUsageInserts() async throws {
        switch backend {
        case .sqlite: try await execute("DROP TRIGGER refuse")
        case .postgres: try await execute("DROP TRIGGER refuse ON usage")
        }
    }

    /// Every stored key hash and salt, in hex.
    func storedHashesAndSalts() async throws -> [(hash: Data, salt: Data)] {
        let sql = backend == .sqlite ? "SELECT lower(hex(key_hash)) || ':' || lower(hex(salt)) FROM api_keys"
                                     : "SELECT encode(key_hash, 'hex') || ':' || encode(salt, 'hex') FROM api_keys"
        return try await strings(sql).map { line in
            let parts = line.split(separator: ":").map { hexData(String($0)) }
            return (parts[0], parts.count > 1 ? parts[1] : Data())
        }
    }

    /// The whole `api_keys` table as text.
    func dumpKeys() async throws -> String {
        switch backend {
        case .sqlite:
            return try await sqlite.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM api_keys").map { row in
                    row.databaseValues.map(\.description).joined(separator: "|")
                }
            }.joined(separator: "\n")
        case .postgres:
            return try await strings("SELECT api_keys::text FROM api_keys").joined(separator: "\n")
        }
    }

    private var sqlite: SQLiteBackend {
        get throws { try #require(database.sqlite) }
    }

    private var postgres: PostgresBackend {
        get throws { try #require(database.postgres) }
    }

    func remove(_ server: TestPostgres.Server?) async {
        await database.close()
        switch target {
        case .sqlite(let url):
            try? FileManager.default.removeItem(at: url.deletingLastPathComponent())
        case .postgres(let url):
            try? await server?.dropDatabase(url)
        }
    }
}

func hexData(_ hex: String) -> Data {
    var data = Data()
    var index = hex.startIndex
    while index < hex.endIndex, let next = hex.index(index, offsetBy: 2, limitedBy: hex.endIndex) {
        if let byte = UInt8(hex[index..<next], radix: 16) { data.append(byte) }
        index = next
    }
    return data
}
