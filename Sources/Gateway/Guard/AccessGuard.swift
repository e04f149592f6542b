import Foundation
import Storage
import Synchronization

/// What stands between a client and the models: the address allow-list, key checks, per-key request and token
/// limits, budgets, the cap on requests in flight, usage accounting, and the admin key for `/admin/*`.
///
/// Built by `serve` from the database; `Server` adds `GuardMiddleware` when it has one. `requireAuth` turns key
/// checks on (they are on whenever `serve` binds a non-loopback address); `usage`, when set, gets one record per
/// model request, whether or not keys are checked.
public struct AccessGuard: Sendable {
    public var requireAuth: Bool
    public var keys: KeyCache?
    /// The key store behind the admin API (`/admin/keys`); nil: no admin key routes.
    public var keyStore: KeyStore?
    /// Where the per-key buckets are counted: this process, or Redis when replicas share limits.
    public var limiter: any RateLimitStore
    public var usage: UsageStore?
    /// What each key has spent (for budgets); nil: budgets are not enforced.
    public var spending: SpendTracker?
    /// The key that may use `/admin/*` (and every model, without limits); nil: the admin API is open only when
    /// auth is off, else refused.
    public var adminKey: AdminKey?
    /// Addresses that may call the server at all; empty: every address.
    public var allowedIPs: IPAllowList
    /// Requests with a model (completions) this server runs at once; past it, 429 with Retry-After. nil: no cap.
    public var maxConcurrentRequests: Int?
    let inFlight = InFlight()

    public init(requireAuth: Bool, keys: KeyCache?, limiter: any RateLimitStore = RateLimiter(), usage: UsageStore? = nil,
                spending: SpendTracker? = nil, adminKey: AdminKey? = nil, allowedIPs: IPAllowList = IPAllowList(),
                maxConcurrentRequests: Int? = nil) {
        self.requireAuth = requireAuth
        self.keys = keys
        self.limiter = limiter
        self.usage = usage
        self.spending = spending
        self.adminKey = adminKey
        self.allowedIPs = allowedIPs
        self.maxConcurrentRequests = maxConcurrentRequests
    }

    /// A guard over one database: its keys (cached for `keyTTL`), its usage table, budgets read from that table.
    public init(database: StorageDatabase, requireAuth: Bool, keyTTL: Duration = .seconds(5)) {
        let usage = UsageStore(database)
        let store = KeyStore(database)
        self.init(requireAuth: requireAuth, keys: KeyCache(store: store, ttl: keyTTL),
                  usage: usage, spending: SpendTracker(usage: usage))
        keyStore = store
    }

    /// Paths that never need a key.
    static let openPaths: Set<String> = ["/api/v1/health", "/metrics", "/api/version", "/openapi.json", "/docs"]

    /// Operations outside `/admin/` that change the server for everyone: loading and unloading models, the Ollama
    /// API's pulls, deletions and copies of model files, and adapters' default scales (llama-server's `/lora-adapters`).
    static let adminOnlyPaths: Set<String> = ["/api/v1/models/load", "/api/v1/models/unload", "/api/pull", "/api/delete", "/api/copy",
                                              "/lora-adapters"]

    /// Whether `path` needs the admin key (whenever one is set or auth is on): `/admin/*` and `adminOnlyPaths`.
    static func isAdminPath(_ path: String) -> Bool {
        path.hasPrefix("/admin/") || path == "/admin" || adminOnlyPaths.contains(path)
    }

    /// Whether `host` names only this machine (127.0.0.0/8, ::1, localhost).
    public static func isLoopback(_ host: String) -> Bool {
        let h = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).lowercased()
        return h == "localhost" || h == "::1" || h.hasPrefix("127.")
    }

    /// Counts requests in flight against the cap.
    final class InFlight: Sendable {
        private let count = Mutex(0)

        /// Takes a place if fewer than `limit` are taken.
        func enter(limit: Int) -> Bool {
            count.withLock { n in
                guard n < limit else { return false }
                n += 1
                return true
            }
        }

        func leave() { count.withLock { $0 = max(0, $0 - 1) } }

        var current: Int { count.withLock { $0 } }
    }
}
