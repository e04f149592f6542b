import Foundation

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
        // A fresh id collides with one in 62^12; try again rather than fail if it ever does.
        for _ in 0..<4 {
            let (id, text) = KeySecret.generate()
            let row = KeyRow(id: id, name: name, key: text, createdAt: now, expiresAt: expiresAt, limits: limits)
            switch try await backend.insertKey(row) {
            case .written(let stored): return CreatedKey(key: stored.key, plaintext: text)
            case .nameTaken: throw StorageError.duplicateName(name)
            case .idTaken, .alreadyRevoked: continue
            }
        }
        throw StorageError.database("could not draw an unused key id")
    }

    /// Every key, active, expired and revoked, oldest first. No secret, no hash.
    public func list() async throws -> [APIKey] {
        try await backend.allKeys().map(\.key)
    }

    /// The key `reference` names (a name, an id or an `sk-sy-<id>` prefix).
    public func find(_ reference: String) async throws -> APIKey {
        try await resolve(reference).key
    }

    /// Revokes a key at `now`; it is refused from then on. Returns it as it now stands.
    @discardableResult
    public func revoke(_ reference: String, now: Date = Date()) async throws -> APIKey {
        let row = try await resolve(reference)
        if let at = row.revokedAt { throw StorageError.alreadyRevoked(name: row.name, id: row.id, at: at) }
        switch try await backend.revokeKey(id: row.id, at: now, replacement: nil) {
        case .written(let revoked): return revoked.key
        case .alreadyRevoked(let current): throw Self.alreadyRevoked(current, else: now)
        case .idTaken, .nameTaken: throw StorageError.database("unexpected answer revoking key \(row.id)")
        }
    }

    /// Replaces a key's secret: a new key with the same name, limits and expiry (or `expiresAt` when given),
    /// and the old one revoked, in one transaction. Returns the new key's text, once.
    public func rotate(_ reference: String, expiresAt: Date? = nil, now: Date = Date()) async throws -> CreatedKey {
        if let expiresAt, expiresAt <= now {
            throw StorageError.invalid("the expiry date \(StorageDates.display(expiresAt)) has already passed")
        }
        let old = try await resolve(reference)
        if let at = old.revokedAt { throw StorageError.alreadyRevoked(name: old.name, id: old.id, at: at) }
        let newExpiry = expiresAt ?? old.expiresAt
        if let newExpiry, newExpiry <= now {
            throw StorageError.invalid("key '\(old.name)' expired on \(StorageDates.display(newExpiry)); give the new key a later expiry date")
        }
        for _ in 0..<4 {
            let (id, text) = KeySecret.generate()
            let row = KeyRow(id: id, name: old.name, key: text, createdAt: now, expiresAt: newExpiry, limits: old.limits)
            switch try await backend.revokeKey(id: old.id, at: now, replacement: row) {
            case .written(let stored): return CreatedKey(key: stored.key, plaintext: text)
            case .alreadyRevoked(let current): throw Self.alreadyRevoked(current, else: now)
            case .idTaken: continue
            case .nameTaken: throw StorageError.duplicateName(old.name)
            }
        }
        throw StorageError.database("could not draw an unused key id")
    }

    /// Checks a presented key: one primary-key lookup by its embedded id, then a constant-time hash comparison.
    /// A wrong secret reads as `.unknown`; revocation and expiry are told only to the holder of the right secret.
    public func verify(_ presented: String, now: Date = Date()) async throws -> KeyVerification {
        let presented = presented.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let id = KeySecret.lookupID(of: presented) else { return .refused(.malformed) }
        guard let row = try await backend.key(id: id) else { return .refused(.unknown) }
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

    private var backend: any StorageBackend { database.backend }

    /// Another writer revoked the key first.
    private static func alreadyRevoked(_ row: KeyRow, else now: Date) -> StorageError {
        .alreadyRevoked(name: row.name, id: row.id, at: row.revokedAt ?? now)
    }

    /// The row `reference` names: an `sk-sy-` prefix or id; else the active key of that name; else the latest key
    /// of that name.
    func resolve(_ reference: String) async throws -> KeyRow {
        let reference = reference.trimmingCharacters(in: .whitespaces)
        if reference.hasPrefix(KeySecret.scheme) {
            let id = reference.dropFirst(KeySecret.scheme.count).prefix(KeySecret.idLength)
            if let row = try await backend.key(id: String(id)) { return row }
            throw StorageError.unknownKey(reference)
        }
        let rows = try await backend.keys(nameOrID: reference)   // oldest first
        if let row = rows.first(where: { $0.name == reference && $0.revokedAt == nil }) { return row }
        if let row = rows.first(where: { $0.id == reference }) { return row }
        if let row = rows.last(where: { $0.name == reference }) { return row }
        throw StorageError.unknownKey(reference)
    }

    /// The ids `reference` stands for: every key with that name (oldest first), or the key with that id or prefix.
    func ids(_ reference: String) async throws -> [String] {
        let reference = reference.trimmingCharacters(in: .whitespaces)
        if reference.hasPrefix(KeySecret.scheme) {
            let id = String(reference.dropFirst(KeySecret.scheme.count).prefix(KeySecret.idLength))
            return try await backend.key(id: id).map { [$0.id] } ?? []
        }
        return try await backend.keys(nameOrID: reference).map(\.id)
    }
}
