import Foundation
import GRDB

/// The SQLite database that holds keys and usage: one file, WAL mode (readers never wait for the writer),
/// versioned migrations applied when it opens.
///
/// Its location is `--database PATH`, else `$SWITCHYARD_DATABASE`, else `~/.switchyard/switchyard.sqlite`.
/// Several processes (the server and the CLI) may open the same file; a writer waits up to `busyTimeout` for another.
public final class StorageDatabase: Sendable {
    /// The environment variable that overrides the database path.
    public static let environmentVariable = "SWITCHYARD_DATABASE"
    /// The file name in the data directory.
    public static let defaultFileName = "switchyard.sqlite"

    /// The database file.
    public let path: String
    let pool: DatabasePool

    /// The database path for this process's environment.
    public static var defaultLocation: URL { location(environment: ProcessInfo.processInfo.environment) }

    /// The database path for the given environment: `SWITCHYARD_DATABASE` if set and not empty,
    /// else `switchyard.sqlite` in the data directory `~/.switchyard`.
    public static func location(environment: [String: String], home: URL? = nil) -> URL {
        if let value = environment[environmentVariable], !value.isEmpty {
            return URL(fileURLWithPath: (value as NSString).expandingTildeInPath).standardizedFileURL
        }
        let homeDirectory: URL
        if let home {
            homeDirectory = home
        } else if let value = environment["HOME"], !value.isEmpty {
            homeDirectory = URL(fileURLWithPath: value, isDirectory: true)
        } else {
            homeDirectory = FileManager.default.homeDirectoryForCurrentUser
        }
        return homeDirectory
            .appendingPathComponent(".switchyard", isDirectory: true)
            .appendingPathComponent(defaultFileName, isDirectory: false)
    }

    /// Opens (creating if needed) the database at `url` and applies every migration it lacks.
    /// A new file and a new data directory are readable by their owner only: the file holds key hashes.
    public init(url: URL, busyTimeout: TimeInterval = 5) throws {
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

    /// The migrations applied to this file, oldest first.
    public func appliedMigrations() throws -> [String] {
        try read { db in try Migrations.migrator.appliedMigrations(db) }
    }

    /// The journal mode SQLite reports (`wal`).
    public func journalMode() throws -> String {
        try read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "" }
    }

    // MARK: Access with errors mapped to StorageError

    func read<T>(_ body: (Database) throws -> T) throws -> T {
        try mapErrors { try pool.read(body) }
    }

    func read<T: Sendable>(_ body: @Sendable (Database) throws -> T) async throws -> T {
        do { return try await pool.read(body) } catch { throw Self.mapped(error) }
    }

    func write<T: Sendable>(_ body: @Sendable (Database) throws -> T) async throws -> T {
        do { return try await pool.write(body) } catch { throw Self.mapped(error) }
    }

    private func mapErrors<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch { throw Self.mapped(error) }
    }

    static func mapped(_ error: any Error) -> any Error {
        switch error {
        case is StorageError, is CancellationError: return error
        case let error as DatabaseError: return StorageError.database(error.description)
        default: return error
        }
    }
}
