import Foundation

extension UsageStore {
    /// Totals over the records that match, and the same per model.
    ///
    /// - Parameters:
    ///   - key: a key's name (every key that has carried it, rotated ones included), id, or `sk-sy-<id>` prefix;
    ///     nil: every request, with or without a key. Throws `StorageError.unknownKey` if it names no key.
    ///   - model: only requests for this model.
    ///   - since: only requests that arrived at or after this date.
    /// Reads what is in the database: call `flush()` first to include records still queued.
    public func summary(key: String? = nil, model: String? = nil, since: Date? = nil) async throws -> UsageSummary {
        var keyIDs: [String]?
        if let key {
            let ids = try await KeyStore(database).ids(key)
            guard !ids.isEmpty else { throw StorageError.unknownKey(key) }
            keyIDs = ids
        }
        let models = try await database.backend.usageByModel(keyIDs: keyIDs, model: model, since: since)
        var summary = UsageSummary(totals: UsageTotals(), models: models)
        for row in models { summary.totals.add(row.totals) }
        return summary
    }

    /// What the key with id `keyID` has spent: its prompt plus completion tokens and its estimated cost, over every
    /// record of it since `since` (nil: ever) — the number a budget is checked against.
    ///
    /// Every record counts, whatever its status: a request that failed after the model ran still used its tokens,
    /// and one refused before (401, 403, 429) carries none. A record without a cost estimate adds nothing to
    /// `costUSD`. Only this id counts: a rotated key starts from zero under its new id (`summary(key: name)` covers
    /// a name's whole history). Reads what is in the database: records this store still
    /// holds in its queue are not included — call `flush()` first for them.
    public func spent(keyID: String, since: Date? = nil) async throws -> UsageSpend {
        try await database.backend.spent(keyIDs: [keyID], since: since)
    }
}

/// What a key has spent (see `UsageStore.spent`).
public struct UsageSpend: Sendable, Hashable {
    /// Records counted.
    public var requests: Int
    /// Prompt plus completion tokens.
    public var tokens: Int
    /// Sum of the cost estimates, in US dollars; records without one count as 0.
    public var costUSD: Double

    public init(requests: Int = 0, tokens: Int = 0, costUSD: Double = 0) {
        self.requests = requests
        self.tokens = tokens
        self.costUSD = costUSD
    }

    /// Whether `budget` is used up: spent tokens or dollars at or past it.
    public func exhausts(_ budget: Budget) -> Bool {
        switch budget {
        case .tokens(let limit): return tokens >= limit
        case .usd(let limit): return costUSD >= limit
        }
    }
}
