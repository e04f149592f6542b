import Foundation
import Storage

/// What stands between a client and the models: key checks, per-key request limits, usage accounting.
///
/// Built by `serve` from the database; `Server` adds `GuardMiddleware` when it has one. `requireAuth` turns key
/// checks on (they are on whenever `serve` binds a non-loopback address); `usage`, when set, gets one record per
/// model request, whether or not keys are checked.
public struct AccessGuard: Sendable {
    public var requireAuth: Bool
    public var keys: KeyCache?
    public var limiter: RateLimiter
    public var usage: UsageStore?

    public init(requireAuth: Bool, keys: KeyCache?, limiter: RateLimiter = RateLimiter(), usage: UsageStore? = nil) {
        self.requireAuth = requireAuth
        self.keys = keys
        self.limiter = limiter
        self.usage = usage
    }

    /// A guard over one database: its keys (cached for `keyTTL`) and its usage table.
    public init(database: StorageDatabase, requireAuth: Bool, keyTTL: Duration = .seconds(5)) {
        self.init(requireAuth: requireAuth, keys: KeyCache(store: KeyStore(database), ttl: keyTTL),
                  usage: UsageStore(database))
    }

    /// Paths that never need a key.
    static let openPaths: Set<String> = ["/api/v1/health", "/metrics"]

    /// Whether `host` names only this machine (127.0.0.0/8, ::1, localhost).
    public static func isLoopback(_ host: String) -> Bool {
        let h = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).lowercased()
        return h == "localhost" || h == "::1" || h.hasPrefix("127.")
    }
}
