import Foundation

/// Everything that can go wrong in `Storage`, with a message that says what to do.
public enum StorageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The database (a SQLite file, a PostgreSQL URL without its password) could not be opened, created or migrated.
    case cannotOpen(path: String, reason: String)
    /// The database was migrated by a newer switchyard than this one.
    case newerSchema(path: String, unknownMigrations: [String])
    /// An argument is out of range or malformed (a key name, a limit, a date).
    case invalid(String)
    /// An active key already has this name.
    case duplicateName(String)
    /// No key has this name or id.
    case unknownKey(String)
    /// The key was revoked and cannot be revoked or rotated again.
    case alreadyRevoked(name: String, id: String, at: Date)
    /// The database refused a statement (disk full, locked for too long, corrupt file, …).
    case database(String)
    /// The database server cannot be reached now (refused or lost connections, no connection within the wait):
    /// worth retrying later.
    case unavailable(String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason):
            return "cannot open the database \(path): \(reason)"
        case .newerSchema(let path, let unknown):
            return "the database \(path) was written by a newer switchyard (migrations \(unknown.joined(separator: ", "))); upgrade switchyard or use another database"
        case .invalid(let message):
            return message
        case .duplicateName(let name):
            return "an active key is already named '\(name)'; pick another name, or `switchyard keys rotate \(name)` for a new secret"
        case .unknownKey(let reference):
            return "no key is named '\(reference)' or has that id; `switchyard keys list` shows them"
        case .alreadyRevoked(let name, let id, let at):
            return "key '\(name)' (\(id)) was revoked on \(StorageDates.display(at)); create a new one with `switchyard keys create --name \(name)`"
        case .database(let message):
            return "database error: \(message)"
        case .unavailable(let message):
            return "the database is unavailable: \(message)"
        }
    }
}
