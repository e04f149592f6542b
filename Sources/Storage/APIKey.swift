import Foundation

/// A key's spending limit: tokens or US dollars, not both.
public enum Budget: Sendable, Hashable {
    case tokens(Int)
    case usd(Double)
}

/// What a key may do. Nothing is enforced here: the server's guard reads these.
public struct KeyLimits: Sendable, Hashable {
    /// Requests per minute; nil: no limit.
    public var requestsPerMinute: Int?
    /// Prompt plus completion tokens per minute; nil: no limit.
    public var tokensPerMinute: Int?
    /// The budget the key stops at; nil: none.
    public var budget: Budget?
    /// The model names the key may use; empty: every model.
    public var allowedModels: [String]
    /// Only local models (never a remote provider).
    public var localOnly: Bool
    /// Client addresses or CIDR ranges the key may be used from (`IPAllowList`); empty: any.
    public var allowedIPs: [String]

    public init(requestsPerMinute: Int? = nil, tokensPerMinute: Int? = nil, budget: Budget? = nil,
                allowedModels: [String] = [], localOnly: Bool = false, allowedIPs: [String] = []) {
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
        self.budget = budget
        self.allowedModels = allowedModels
        self.localOnly = localOnly
        self.allowedIPs = allowedIPs
    }

    /// Whether the key may use `model`.
    public func allows(model: String) -> Bool { allowedModels.isEmpty || allowedModels.contains(model) }

    /// Throws `StorageError.invalid` for a limit that is not positive or a model name that is empty.
    func validate() throws {
        if let rpm = requestsPerMinute, rpm <= 0 { throw StorageError.invalid("requests per minute must be positive, not \(rpm)") }
        if let tpm = tokensPerMinute, tpm <= 0 { throw StorageError.invalid("tokens per minute must be positive, not \(tpm)") }
        switch budget {
        case .tokens(let n) where n <= 0: throw StorageError.invalid("a token budget must be positive, not \(n)")
        case .usd(let x) where !(x > 0) || !x.isFinite: throw StorageError.invalid("a dollar budget must be a positive amount, not \(x)")
        default: break
        }
        if allowedModels.contains(where: { $0.trimmingCharacters(in: .whitespaces).isEmpty }) {
            throw StorageError.invalid("allowed model names must not be empty")
        }
        do { _ = try IPAllowList(allowedIPs) } catch { throw StorageError.invalid("\(error)") }
    }
}

/// A key as lists show it: never its secret, never its hash.
public struct APIKey: Sendable, Hashable, Identifiable {
    /// The lookup id embedded in the key (not secret).
    public let id: String
    public let name: String
    /// `sk-sy-<id>`: enough to recognise a key, useless to present.
    public let prefix: String
    public let createdAt: Date
    public let expiresAt: Date?
    public let revokedAt: Date?
    public let limits: KeyLimits

    /// Where the key stands at `now`.
    public enum State: Sendable, Hashable {
        case active
        case expired(Date)
        case revoked(Date)
    }

    public func state(at now: Date = Date()) -> State {
        if let revokedAt { return .revoked(revokedAt) }
        if let expiresAt, expiresAt <= now { return .expired(expiresAt) }
        return .active
    }
}

/// A key just made: the only time its text exists outside the caller's hands.
public struct CreatedKey: Sendable, CustomStringConvertible {
    public let key: APIKey
    /// `sk-sy-<id>-<secret>`; not stored anywhere, not recoverable.
    public let plaintext: String

    /// Leaves the secret out, so that printing the value by mistake does not leak it.
    public var description: String { "CreatedKey(\(key.name), \(key.prefix)…)" }
}

/// Why a presented key is refused.
public enum KeyRefusal: Error, Sendable, Hashable, CustomStringConvertible {
    /// Not of the form `sk-sy-<id>-<secret>`.
    case malformed
    /// No key has this id, or the secret is wrong (the two are not told apart).
    case unknown
    /// The key was revoked (also after rotation).
    case revoked(at: Date)
    /// The key's expiry date has passed.
    case expired(at: Date)

    public var description: String {
        switch self {
        case .malformed: return "not a switchyard API key (expected sk-sy-…)"
        case .unknown: return "invalid API key"
        case .revoked: return "this API key was revoked"
        case .expired(let at): return "this API key expired on \(StorageDates.display(at))"
        }
    }
}

/// The answer to `KeyStore.verify`.
public enum KeyVerification: Sendable, Hashable {
    case accepted(APIKey)
    case refused(KeyRefusal)
}
