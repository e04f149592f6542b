import Foundation
import GRDB

/// A row of `api_keys`, hash and salt included; never leaves this module.
struct KeyRow: Codable, Sendable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "api_keys"
    static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase

    var id: String
    var name: String
    var keyHash: Data
    var salt: Data
    var keyPrefix: String
    var createdAt: Date
    var expiresAt: Date?
    var revokedAt: Date?
    var rpm: Int?
    var tpm: Int?
    var budgetTokens: Int?
    var budgetUsd: Double?
    /// Stored as a JSON array.
    var allowedModels: [String]
    var localOnly: Bool
    /// Stored as a JSON array (SQLite) or a text array (PostgreSQL).
    var allowedIps: [String]

    init(id: String, name: String, key: String, createdAt: Date, expiresAt: Date?, limits: KeyLimits) {
        let salt = KeySecret.salt()
        self.id = id
        self.name = name
        self.keyHash = KeySecret.hash(key, salt: salt)
        self.salt = salt
        self.keyPrefix = KeySecret.displayPrefix(id: id)
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = nil
        self.rpm = limits.requestsPerMinute
        self.tpm = limits.tokensPerMinute
        switch limits.budget {
        case .tokens(let n): budgetTokens = n; budgetUsd = nil
        case .usd(let x): budgetTokens = nil; budgetUsd = x
        case nil: budgetTokens = nil; budgetUsd = nil
        }
        self.allowedModels = limits.allowedModels
        self.localOnly = limits.localOnly
        self.allowedIps = limits.allowedIPs
    }

    /// A row as a database returns it.
    init(id: String, name: String, keyHash: Data, salt: Data, keyPrefix: String, createdAt: Date, expiresAt: Date?,
         revokedAt: Date?, rpm: Int?, tpm: Int?, budgetTokens: Int?, budgetUsd: Double?, allowedModels: [String],
         localOnly: Bool, allowedIps: [String]) {
        self.id = id
        self.name = name
        self.keyHash = keyHash
        self.salt = salt
        self.keyPrefix = keyPrefix
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
        self.rpm = rpm
        self.tpm = tpm
        self.budgetTokens = budgetTokens
        self.budgetUsd = budgetUsd
        self.allowedModels = allowedModels
        self.localOnly = localOnly
        self.allowedIps = allowedIps
    }

    var limits: KeyLimits {
        let budget: Budget? = budgetTokens.map(Budget.tokens) ?? budgetUsd.map(Budget.usd)
        return KeyLimits(requestsPerMinute: rpm, tokensPerMinute: tpm, budget: budget,
                         allowedModels: allowedModels, localOnly: localOnly, allowedIPs: allowedIps)
    }

    /// The public view, without hash and salt.
    var key: APIKey {
        APIKey(id: id, name: name, prefix: keyPrefix, createdAt: createdAt, expiresAt: expiresAt,
               revokedAt: revokedAt, limits: limits)
    }
}
