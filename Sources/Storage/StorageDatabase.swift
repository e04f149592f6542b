import Foundation

/// Where keys and usage live: a SQLite file (the default: one machine, nothing to run) or a PostgreSQL database
/// (several `switchyard serve` replicas share keys and usage).
///
/// The choice, most specific first: `--database-url URL` (PostgreSQL), `--database PATH` (SQLite),
/// `$SWITCHYARD_DATABASE_URL`, `$SWITCHYARD_DATABASE`, else `~/.switchyard/switchyard.sqlite` — see `target`.
/// Either way the schema is migrated when the database opens, and a database migrated by a newer switchyard is
/// refused. `KeyStore` and `UsageStore` work the same over both.
public final class StorageDatabase: Sendable, CustomStringConvertible {
    /// The back ends.
    public enum Kind: String, Sendable, Hashable {
        case sqlite = "SQLite"
        case postgres = "PostgreSQL"
    }

    /// Which database to open, as the command line and the environment choose it.
    public enum Target: Sendable, Hashable {
        case sqlite(URL)
        /// A `postgres://` or `postgresql://` URL (it may hold a password: do not print it).
        case postgres(String)
    }

    /// The environment variable that overrides the SQLite file's path.
    public static let environmentVariable = "SWITCHYARD_DATABASE"
    /// The environment variable that selects PostgreSQL.
    public static let urlEnvironmentVariable = "SWITCHYARD_DATABASE_URL"
    /// The file name in the data directory.
    public static let defaultFileName = "switchyard.sqlite"

    let backend: any StorageBackend

    /// SQLite or PostgreSQL.
    public var kind: Kind { backend.kind }
    /// The SQLite file, or the PostgreSQL URL without its password.
    public var location: String { backend.location }
    /// `SQLite /path/switchyard.sqlite` or `PostgreSQL postgres://user@host:5432/db` (never a password).
    public var description: String { "\(kind.rawValue) \(location)" }

    init(backend: any StorageBackend) {
        self.backend = backend
    }

    /// Opens (creating if needed) the SQLite database at `url` and applies every migration it lacks.
    /// A new file and a new data directory are readable by their owner only: the file holds key hashes.
    public convenience init(url: URL, busyTimeout: TimeInterval = 5) throws {
        self.init(backend: try SQLiteBackend(url: url, busyTimeout: busyTimeout))
    }

    /// Connects to the PostgreSQL database `databaseURL` names (`postgres://user:password@host:5432/dbname`,
    /// `?sslmode=disable` and the like as libpq takes them) and applies every migration it lacks, under an advisory
    /// lock so that replicas starting together migrate once. Throws `StorageError.invalid` for a URL that cannot be
    /// used and `StorageError.cannotOpen` when the server cannot be reached or refuses; neither message holds the
    /// password. Later, a statement that gets no pooled connection within `connectionWait` (the server went away)
    /// fails with `StorageError.unavailable`.
    public static func connect(databaseURL: String, connectionWait: Duration = .seconds(5)) async throws -> StorageDatabase {
        StorageDatabase(backend: try await PostgresBackend.connect(try PostgresURL(parsing: databaseURL), connectionWait: connectionWait))
    }

    /// Opens what `target` names; `connectionWait` as for `connect`.
    public static func open(_ target: Target, connectionWait: Duration = .seconds(5)) async throws -> StorageDatabase {
        switch target {
        case .sqlite(let url): return try StorageDatabase(url: url)
        case .postgres(let databaseURL): return try await connect(databaseURL: databaseURL, connectionWait: connectionWait)
        }
    }

    /// Lets go of the database: PostgreSQL connections close (a SQLite file closes when the last reference goes).
    /// Close the `UsageStore`s over it first.
    public func close() async {
        await backend.close()
    }

    /// The migrations applied to this database, oldest first.
    public func appliedMigrations() async throws -> [String] {
        try await backend.appliedMigrations()
    }

    // MARK: Choosing the database

    /// The database for a command line's `--database-url` and `--database` (either may be nil; not both) and the
    /// environment: a URL given as an option, else a path given as one, else `SWITCHYARD_DATABASE_URL`, else
    /// `SWITCHYARD_DATABASE`, else `switchyard.sqlite` in `~/.switchyard`. Empty values count as unset.
    public static func target(databaseURL: String? = nil, path: String? = nil,
                              environment: [String: String] = ProcessInfo.processInfo.environment,
                              home: URL? = nil) -> Target {
        if let databaseURL, !databaseURL.isEmpty { return .postgres(databaseURL) }
        if let path, !path.isEmpty { return .sqlite(URL(fileURLWithPath: (path as NSString).expandingTildeInPath)) }
        if let value = environment[urlEnvironmentVariable], !value.isEmpty { return .postgres(value) }
        return .sqlite(location(environment: environment, home: home))
    }

    /// The SQLite path for this process's environment.
    public static var defaultLocation: URL { location(environment: ProcessInfo.processInfo.environment) }

    /// The SQLite path for the given environment: `SWITCHYARD_DATABASE` if set and not empty,
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

    // MARK: Back-end specifics (tests)

    /// The SQLite back end, when that is what this is.
    var sqlite: SQLiteBackend? { backend as? SQLiteBackend }
    /// The PostgreSQL back end, when that is what this is.
    var postgres: PostgresBackend? { backend as? PostgresBackend }
}
