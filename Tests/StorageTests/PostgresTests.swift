import Foundation
@testable import Storage
import TestSupport
import Testing

/// What only the PostgreSQL back end has: its URL, its migrations under a lock, its errors.
@Suite struct PostgresTests {
    @Test func migratesAnEmptyDatabase() async throws {
        try await Backend.postgres.withDatabase { db in
            #expect(try await db.database.appliedMigrations() == PostgresMigrations.identifiers)
            let tables = try await db.strings("""
                SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1
                """)
            #expect(tables == ["api_keys", "batch_requests", "batches", "conversation_items", "conversations", "files", "response_cache", "responses", "schema_migrations", "usage"])
            let indexes = try await db.strings("SELECT indexname::text FROM pg_indexes WHERE tablename IN ('usage', 'api_keys')")
            for name in ["usage_by_key", "usage_by_model", "usage_by_time", "api_keys_active_name", "api_keys_name"] {
                #expect(indexes.contains(name))
            }
            #expect(db.database.kind == .postgres)
            #expect(db.database.description.hasPrefix("PostgreSQL postgres://"))
            if let password = URLComponents(string: db.database.location)?.password {
                Issue.record("the location shows a password: \(password.count) characters")
            }
        }
    }

    @Test func replicasStartingTogetherMigrateOnce() async throws {
        let server = try await TestPostgres.shared.server()
        let url = try await server.createDatabase()
        let opened = try await withThrowingTaskGroup(of: StorageDatabase.self) { group in
            for _ in 0..<6 { group.addTask { try await StorageDatabase.connect(databaseURL: url, connectionWait: TestDatabase.connectionWait) } }
            return try await group.reduce(into: [StorageDatabase]()) { $0.append($1) }
        }
        #expect(opened.count == 6)
        for database in opened {
            #expect(try await database.appliedMigrations() == PostgresMigrations.identifiers)
        }
        let rows = try await server.run("SELECT COUNT(*) FROM schema_migrations", on: url)
        #expect(rows.trimmingCharacters(in: .whitespacesAndNewlines) == "\(PostgresMigrations.all.count)")
        for database in opened { await database.close() }
        try await server.dropDatabase(url)
    }

    @Test func errorsNeverShowThePassword() async throws {
        let server = try await TestPostgres.shared.server()
        // The test server's own password if it has one (a given SWITCHYARD_TEST_POSTGRES_URL), else any: trust.
        let password = URLComponents(string: server.adminURL)?.password ?? "hunter2-Secret"
        // A port nobody listens on.
        let closed = try TestPostgres.freePort()
        await #expect {
            try await StorageDatabase.connect(databaseURL: "postgres://someone:\(password)@127.0.0.1:\(closed)/db?sslmode=disable")
        } throws: { error in
            let text = "\(error)" + String(reflecting: error)
            guard case StorageError.cannotOpen(let location, _) = error else { return false }
            return !text.contains(password) && location == "postgres://someone@127.0.0.1:\(closed)/db"
                && text.contains("cannot connect")
        }
        // A database that does not exist, on a server that answers.
        let missing = server.url(database: "sy_no_such_database", password: password)
        await #expect {
            try await StorageDatabase.connect(databaseURL: missing)
        } throws: { error in
            let text = "\(error)" + String(reflecting: error)
            return !text.contains(password) && text.contains("sy_no_such_database") && text.contains("does not exist")
        }
        // Malformed URLs, whose "port" is the password.
        for bad in ["postgres://user:\(password)", "mysql://user:\(password)@host/db", "postgres://user:\(password)@host/db?sslmode=sometimes",
                    "postgres://user:\(password)@host/db?timeout=1", "postgres://user:\(password)@a,b/db"] {
            await #expect {
                try await StorageDatabase.connect(databaseURL: bad)
            } throws: { error in
                guard case StorageError.invalid(let message) = error else { return false }
                return !message.contains(password)
            }
        }
    }

    @Test func requiredTLSOnAServerWithoutItSaysSo() async throws {
        let server = try await TestPostgres.shared.server()
        let url = try await server.createDatabase()
        await #expect {
            try await StorageDatabase.connect(databaseURL: url + "?sslmode=require")
        } throws: { error in
            "\(error)".contains("does not accept TLS") && "\(error)".contains("sslmode=disable")
        }
        // The default (prefer) falls back to plain text, as libpq does.
        let database = try await StorageDatabase.connect(databaseURL: url, connectionWait: TestDatabase.connectionWait)
        await database.close()
        try await server.dropDatabase(url)
    }

    @Test func urlsAreReadAsLibpqReadsThem() throws {
        let full = try PostgresURL(parsing: "postgresql://sy%40ops:p%40ss%2Fw:rd@db.example.com:6543/switch%20yard?sslmode=verify-full&application_name=gw&connect_timeout=5")
        #expect(full.user == "sy@ops" && full.password == "p@ss/w:rd" && full.host == "db.example.com" && full.port == 6543)
        #expect(full.database == "switch yard" && full.sslMode == .verifyFull && full.applicationName == "gw" && full.connectTimeout == 5)
        #expect(full.description == "postgres://sy%40ops@db.example.com:6543/switch%20yard")

        let plain = try PostgresURL(parsing: "postgres://app@localhost/", defaultUser: "me")
        #expect(plain.port == 5432 && plain.database == "app" && plain.password == nil && plain.sslMode == .prefer)
        let bare = try PostgresURL(parsing: "postgres://127.0.0.1", defaultUser: "me")
        #expect(bare.user == "me" && bare.database == "me")
        let v6 = try PostgresURL(parsing: "postgres://u:x@[::1]:5433/d?sslmode=disable")
        #expect(v6.host == "::1" && v6.port == 5433 && v6.sslMode == .disable && v6.description == "postgres://u@[::1]:5433/d")
        #expect(v6.tlsConfiguration() == nil)
        #expect(try PostgresURL(parsing: "postgres://u@h/d?sslmode=require").requiresTLS)
        #expect(try !PostgresURL(parsing: "postgres://u@h/d").requiresTLS)

        for bad in ["", "postgres:/h/d", "http://h/d", "postgres://u@/d", "postgres://u@h:0/d", "postgres://u@h:99999/d",
                    "postgres://u@[::1/d", "postgres://u@h/d?sslmode=maybe", "postgres://u@h/d?host=/tmp", "postgres://u@h/d%zz"] {
            #expect(throws: StorageError.self, "\(bad)") { try PostgresURL(parsing: bad) }
        }
    }

    @Test func theCommandLineAndTheEnvironmentChooseTheBackEnd() {
        let home = URL(fileURLWithPath: "/home/someone", isDirectory: true)
        let pg = "postgres://u:p@h/d"
        let sqliteDefault = StorageDatabase.Target.sqlite(URL(fileURLWithPath: "/home/someone/.switchyard/switchyard.sqlite"))
        #expect(StorageDatabase.target(environment: [:], home: home) == sqliteDefault)
        #expect(StorageDatabase.target(databaseURL: pg, environment: [:], home: home) == .postgres(pg))
        #expect(StorageDatabase.target(environment: ["SWITCHYARD_DATABASE_URL": pg], home: home) == .postgres(pg))
        #expect(StorageDatabase.target(environment: ["SWITCHYARD_DATABASE_URL": ""], home: home) == sqliteDefault)
        // An option beats the environment; a URL beats a path.
        #expect(StorageDatabase.target(path: "/tmp/x.sqlite", environment: ["SWITCHYARD_DATABASE_URL": pg], home: home)
                == .sqlite(URL(fileURLWithPath: "/tmp/x.sqlite")))
        #expect(StorageDatabase.target(databaseURL: pg, environment: ["SWITCHYARD_DATABASE": "/tmp/y.sqlite"], home: home) == .postgres(pg))
        #expect(StorageDatabase.target(environment: ["SWITCHYARD_DATABASE_URL": pg, "SWITCHYARD_DATABASE": "/tmp/y.sqlite"], home: home)
                == .postgres(pg))
        #expect(StorageDatabase.target(environment: ["SWITCHYARD_DATABASE": "/tmp/y.sqlite"], home: home)
                == .sqlite(URL(fileURLWithPath: "/tmp/y.sqlite")))
    }
}

/// A PostgreSQL server that goes away while switchyard runs: statements fail with `unavailable` within the
/// connection wait (not after the pool's own minute of retries), and work again once it is back.
/// Opt-in (`SWITCHYARD_OUTAGE_TESTS=1`): run together with the other PostgreSQL suites it has hung now and then
/// (not yet understood), so CI does not run it; it passes alone.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["SWITCHYARD_OUTAGE_TESTS"] == "1"))
struct PostgresOutageTests {
    @Test func aLostServerIsUnavailableWithinTheWaitAndComesBack() async throws {
        let server = try await TestPostgres.shared.server()
        let url = try await server.createDatabase()
        let name = try #require(URLComponents(string: url)?.path.dropFirst()).description
        let db = try await StorageDatabase.connect(databaseURL: url, connectionWait: .seconds(2))
        #expect(try await db.appliedMigrations() == PostgresMigrations.identifiers)
        // The outage: nobody may connect to the database, and the connections it had are cut.
        try await server.run("ALTER DATABASE \(name) ALLOW_CONNECTIONS false")
        try await server.run("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '\(name)'")
        for _ in 0..<3 {
            let start = ContinuousClock.now
            await #expect {
                _ = try await db.appliedMigrations()
            } throws: { error in
                guard case StorageError.unavailable = error else { return false }
                return true
            }
            // 2 s of waiting for a connection, and slack for a loaded machine; the pool alone waits about a minute.
            #expect(ContinuousClock.now - start < .seconds(20))
        }
        try await server.run("ALTER DATABASE \(name) ALLOW_CONNECTIONS true")
        let deadline = ContinuousClock.now + .seconds(120)
        var back = false
        while !back, ContinuousClock.now < deadline {
            back = (try? await db.appliedMigrations()) == PostgresMigrations.identifiers
            if !back { try await Task.sleep(for: .milliseconds(500)) }
        }
        #expect(back, "the database answers again once connections are allowed")
        await db.close()
        try await server.dropDatabase(url)
    }
}
