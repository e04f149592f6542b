import Foundation
import GRDB
@testable import Storage
import Testing

@Suite struct MigrationTests {
    @Test func migratesAnEmptyFileInWALMode() throws {
        let url = temporaryDatabaseURL()
        let database = try StorageDatabase(url: url)
        #expect(FileManager.default.fileExists(atPath: url.path))
        #expect(try database.appliedMigrations() == Migrations.migrator.migrations)
        #expect(try database.journalMode() == "wal")
        let tables = try database.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        }
        #expect(tables.contains("api_keys") && tables.contains("usage"))
        let indexes = try database.read { db in try db.indexes(on: "usage").map(\.name) }
        #expect(indexes.contains("usage_by_key") && indexes.contains("usage_by_model"))
    }

    @Test func migratesAnExistingEmptyFile() throws {
        let url = temporaryDatabaseURL()
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: url.path, contents: Data()))
        let database = try StorageDatabase(url: url)
        #expect(try database.appliedMigrations() == Migrations.migrator.migrations)
    }

    @Test func reopeningKeepsDataAndAppliesNothingTwice() async throws {
        let url = temporaryDatabaseURL()
        let created = try await KeyStore(StorageDatabase(url: url)).create(name: "bot")
        for _ in 0..<3 {
            let database = try StorageDatabase(url: url)
            #expect(try database.appliedMigrations() == Migrations.migrator.migrations)
            let keys = try await KeyStore(database).list()
            #expect(keys.map(\.id) == [created.key.id])
            let verdict = try await KeyStore(database).verify(created.plaintext)
            #expect(verdict == .accepted(created.key))
        }
    }

    @Test func refusesAFileFromANewerVersion() throws {
        let url = temporaryDatabaseURL()
        let database = try StorageDatabase(url: url)
        try database.pool.write { db in
            try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99: from the future')")
        }
        #expect(throws: StorageError.newerSchema(path: url.path, unknownMigrations: ["v99: from the future"])) {
            try StorageDatabase(url: url)
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
