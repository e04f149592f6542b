import Foundation
import GRDB
@testable import Storage
import Testing

@Suite struct MigrationTests {
    @Test func migratesAnEmptyFileInWALMode() async throws {
        let url = temporaryDatabaseURL()
        let database = try StorageDatabase(url: url)
        let sqlite = try #require(database.sqlite)
        #expect(FileManager.default.fileExists(atPath: url.path))
        #expect(try await database.appliedMigrations() == Migrations.migrator.migrations)
        #expect(try sqlite.journalMode() == "wal")
        let tables = try await sqlite.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        }
        #expect(tables.contains("api_keys") && tables.contains("usage"))
        let indexes = try await sqlite.read { db in try db.indexes(on: "usage").map(\.name) }
        #expect(indexes.contains("usage_by_key") && indexes.contains("usage_by_model"))
        #expect(database.kind == .sqlite && database.location == url.path && "\(database)" == "SQLite \(url.path)")
    }

    @Test func migratesAnExistingEmptyFile() async throws {
        let url = temporaryDatabaseURL()
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: url.path, contents: Data()))
        let database = try StorageDatabase(url: url)
        #expect(try await database.appliedMigrations() == Migrations.migrator.migrations)
    }

    @Test func bothBackEndsKnowTheSameMigrations() {
        #expect(PostgresMigrations.identifiers == Migrations.migrator.migrations)
    }

    @Test(arguments: Backend.allCases) func reopeningKeepsDataAndAppliesNothingTwice(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            let created = try await KeyStore(db.database).create(name: "bot")
            for _ in 0..<3 {
                try await db.withReplica { database in
                    #expect(try await database.appliedMigrations() == Migrations.migrator.migrations)
                    let keys = try await KeyStore(database).list()
                    #expect(keys.map(\.id) == [created.key.id])
                    let verdict = try await KeyStore(database).verify(created.plaintext)
                    #expect(verdict == .accepted(created.key))
                }
            }
        }
    }

    @Test(arguments: Backend.allCases) func refusesADatabaseFromANewerVersion(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            let table = backend == .sqlite ? "grdb_migrations" : "schema_migrations"
            try await db.execute("INSERT INTO \(table) (identifier) VALUES ('v99: from the future')")
            await #expect(throws: StorageError.newerSchema(path: db.database.location, unknownMigrations: ["v99: from the future"])) {
                try await db.withReplica { _ in }
            }
        }
    }

    @Test func refusesAFileThatIsNotADatabase() throws {
        let url = temporaryDatabaseURL()
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(repeating: 0x41, count: 4096).write(to: url)
        #expect {
            try StorageDatabase(url: url)
        } throws: { error in
            guard case StorageError.cannotOpen(let path, _) = error else { return false }
            return path == url.path
        }
    }

    @Test func defaultLocationIsInTheDataDirectoryUnlessOverridden() {
        let home = URL(fileURLWithPath: "/home/someone", isDirectory: true)
        #expect(StorageDatabase.location(environment: [:], home: home).path == "/home/someone/.switchyard/switchyard.sqlite")
        #expect(StorageDatabase.location(environment: ["SWITCHYARD_DATABASE": "/tmp/x.sqlite"], home: home).path == "/tmp/x.sqlite")
        #expect(StorageDatabase.location(environment: ["SWITCHYARD_DATABASE": ""], home: home).path == "/home/someone/.switchyard/switchyard.sqlite")
    }
}
