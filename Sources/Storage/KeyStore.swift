import Foundation
import GRDB

/// API keys: create, list, revoke, rotate, verify.
///
/// A key is shown once, by `create` or `rotate`; the database keeps only a salted hash (see `KeySecret`).
/// Commands take a key by name (its active key, else its latest), by id, or by its `sk-sy-<id>` prefix.
public struct KeyStore: Sendable {
    public let database: StorageDatabase

    public init(_ database: StorageDatabase) {
        self.database = database
    }

    /// The longest key name.
    public static let maxNameLength = 64

    /// Makes a key named `name` with `limits`, expiring at `expiresAt` (nil: never). Returns its text, once.
    public func create(name: String, limits: KeyLimits = KeyLimits(), expiresAt: Date? = nil,
                       now: Date = Date()) async throws -> CreatedKey {
        try Self.validate(name: name)
        try limits.validate()
        if let expiresAt, expiresAt <= now {
            throw StorageError.invalid("the expiry date \(StorageDates.display(expiresAt)) has already passed")
        }
        return try await database.write { db in
            if try KeyRow.filter(Column("name") == name && Column("revoked_at") == nil).fetchOne(db) != nil {
                throw StorageError.duplicateName(name)
            }
            return try Self.insertNew(db, name: name, limits: limits, expiresAt: expiresAt, now: now)
        }
    }

    /// Every key, active, expired and revoked, oldest first. No secret, no hash.
    public func list() async throws -> [APIKey] {
        try await database.read { db in
            try KeyRow.order(Column("created_at"), Column("name")).fetchAll(db).map(\.key)
        }
    }

    /// The key `reference` names (a name, an id or an `sk-sy-<id>` prefix).
    public func find(_ reference: String) async throws -> APIKey {
        try await database.read { db in try Self.resolve(reference, db).key }
    }

    /// Revokes a key at `now`; it is refused from then on. Returns it as it now stands.
    @discardableResult
    public func revoke(_ reference: String, now: Date = Date()) async throws -> APIKey {
        try await database.write { db in
            var row = try Self.resolve(reference, db)
            if let at = row.revokedAt { throw StorageError.alreadyRevoked(name: row.name, id: row.id, at: at) }
            row.revokedAt = now
            try row.update(db)
            return try Self.reread(row.id, db).key
        }
    }

    /// Replaces a key's secret: a new key with the same name, limits and expiry (or `expiresAt` when given),
    /// and the old one revoked, in one transaction. Returns the new key's text, once.
    public func rotate(_ reference: String, expiresAt: Date? = nil, now: Date = Date()) async throws -> CreatedKey {
        if let expiresAt, expiresAt <= now {
            throw StorageError.invalid("the expiry date \(StorageDates.display(expiresAt)) has already passed")
        }
        return try await database.write { db in
            var old = try Self.resolve(reference, db)
            if let at = old.revokedAt { throw StorageError.alreadyRevoked(name: old.name, id: old.id, at: at) }
            let newExpiry = expiresAt ?? old.expiresAt
            if let newExpiry, newExpiry <= now {
                throw StorageError.invalid("key '\(old.name)' expired on \(StorageDates.display(newExpiry)); give the new key a later expiry date")
            }
            old.revokedAt = now
            try old.update(db)
            return try Self.insertNew(db, name: old.name, limits: old.limits, expiresAt: newExpiry, now: now)
        }
    }

    /// Checks a presented key: one primary-key lookup by its embedded id, then a constant-time hash comparison.
    /// A wrong secret reads as `.unknown`; revocation and expiry are told only to the holder of the right secret.
    public func verify(_ presented: String, now: Date = Date()) async throws -> KeyVerification {
        let presented = presented.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let id = KeySecret.lookupID(of: presented) else { return .refused(.malformed) }
        guard let row = try await database.read({ db in try KeyRow.fetchOne(db, key: id) }) else {
            return .refused(.unknown)
        }
        guard KeySecret.matches(presented, hash: row.keyHash, salt: row.salt) else { return .refused(.unknown) }
        if let at = row.revokedAt { return .refused(.revoked(at: at)) }
        if let at = row.expiresAt, at <= now { return .refused(.expired(at: at)) }
        return .accepted(row.key)
    }

    // MARK: Internals

    static func validate(name: String) throws {
        guard !name.isEmpty, name.count <= maxNameLength else {
            throw StorageError.invalid("a key name has 1 to \(maxNameLength) characters")
        }
        guard name.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0)) }) else {
            throw StorageError.invalid("key name '\(name)' may hold only letters, digits, '-', '_' and '.'")
        }
        guard !name.hasPrefix(KeySecret.scheme) else {
            throw StorageError.invalid("a key name must not start with \(KeySecret.scheme)")
        }
    }

    private static func insertNew(_ db: Database, name: String, limits: KeyLimits, expiresAt: Date?, now: Date) throws -> CreatedKey {
        // A fresh id collides with one in 62^12; try again rather than fail if it ever does.
        for _ in 0..<4 {
            let (id, text) = KeySecret.generate()
            guard try KeyRow.fetchOne(db, key: id) == nil else { continue }
            let row = KeyRow(id: id, name: name, key: text, createdAt: now, expiresAt: expiresAt, limits: limits)
            try row.insert(db)
            return CreatedKey(key: try reread(id, db).key, plaintext: text)
        }
        throw StorageError.database("could not draw an unused key id")
    }

    /// A row as the database keeps it (dates to the millisecond), so that what a call returns equals what later
    /// reads return.
    private static func reread(_ id: String, _ db: Database) throws -> KeyRow {
        guard let row = try KeyRow.fetchOne(db, key: id) else { throw StorageError.unknownKey(id) }
        return row
    }

    /// The row `reference` names: an `sk-sy-` prefix or id; else the active key of that name; else the latest key
    /// of that name.
    static func resolve(_ reference: String, _ db: Database) throws -> KeyRow {
        let reference = reference.trimmingCharacters(in: .whitespaces)
        if reference.hasPrefix(KeySecret.scheme) {
            let id = reference.dropFirst(KeySecret.scheme.count).prefix(KeySecret.idLength)
            if let row = try KeyRow.fetchOne(db, key: String(id)) { return row }
            throw StorageError.unknownKey(reference)
        }
        if let row = try KeyRow.filter(Column("name") == reference && Column("revoked_at") == nil).fetchOne(db) {
            return row
        }
        if let row = try KeyRow.fetchOne(db, key: reference) { return row }
        if let row = try KeyRow.filter(Column("name") == reference).order(Column("created_at").desc).fetchOne(db) {
            return row
        }
        throw StorageError.unknownKey(reference)
    }
}
