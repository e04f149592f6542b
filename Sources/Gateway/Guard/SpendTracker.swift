import Foundation
import Storage
import Synchronization

/// What each key has spent, for budgets: read from the usage records (every replica writes to the same database),
/// cached for `ttl`, plus what this process has charged since that read.
///
/// A key is stopped once its spend reaches its budget. Bounds of the check: requests already admitted finish (one
/// answer may cross the line), and another replica's spending is seen within `ttl` plus its writer's flush interval.
/// One request re-reads an expired total while the others use it. While the usage records cannot be read
/// (`StorageError.unavailable`), a key already tracked goes on with its last total plus this process's charges
/// (what other replicas spend meanwhile is seen once the database is back); an untracked one fails with that error.
public final class SpendTracker: Sendable {
    public struct Spend: Sendable, Equatable {
        public var tokens: Int
        public var usd: Double
        public init(tokens: Int = 0, usd: Double = 0) { self.tokens = tokens; self.usd = usd }
    }

    public typealias Fetch = @Sendable (String) async throws -> Spend

    private struct Entry: Sendable {
        var recorded: Spend
        var local: Spend
        var until: ContinuousClock.Instant
        /// What was recorded plus what this process charged since.
        var total: Spend { Spend(tokens: recorded.tokens + local.tokens, usd: recorded.usd + local.usd) }
    }

    public let ttl: Duration
    public let capacity: Int
    private let fetch: Fetch
    private let entries = Mutex<[String: Entry]>([:])

    public init(ttl: Duration = .seconds(1), capacity: Int = 10_000, fetch: @escaping Fetch) {
        self.ttl = ttl
        self.capacity = max(1, capacity)
        self.fetch = fetch
    }

    /// A tracker over the usage records of `usage`.
    public convenience init(usage: UsageStore, ttl: Duration = .seconds(1)) {
        self.init(ttl: ttl) { id in
            let totals = try await usage.summary(key: id).totals
            return Spend(tokens: totals.totalTokens, usd: totals.costUSD ?? 0)
        }
    }

    /// What `keyID` has spent: the recorded total (re-read when older than `ttl`) plus this process's charges since.
    public func spent(_ keyID: String) async throws -> Spend {
        let now = ContinuousClock.now
        let (known, rereading) = entries.withLock { table -> (Entry?, Bool) in
            guard let e = table[keyID] else { return (nil, false) }
            if e.until > now { return (e, false) }
            table[keyID]?.until = now + ttl   // this request re-reads it; the others use it meanwhile
            return (e, true)
        }
        if let e = known, !rereading { return e.total }
        let fetched: Spend
        do {
            fetched = try await fetch(keyID)
        } catch {
            let carried = entries.withLock { table -> Spend? in
                guard let e = table[keyID] else { return nil }
                guard case StorageError.unavailable = error else { table[keyID]?.until = now; return nil }
                return e.total
            }
            guard let carried else { throw error }
            return carried
        }
        return entries.withLock { table in
            if table[keyID] == nil, table.count >= capacity {
                table = table.filter { $0.value.until > now }
                if table.count >= capacity, let k = table.keys.first { table.removeValue(forKey: k) }
            }
            // Spending only grows: this process's charges may not be written yet (usage records are written in the
            // background), so what was known stays the floor.
            var known = fetched
            if let old = table[keyID] {
                known.tokens = max(fetched.tokens, old.total.tokens)
                known.usd = max(fetched.usd, old.total.usd)
            }
            table[keyID] = Entry(recorded: known, local: Spend(), until: now + ttl)
            return known
        }
    }

    /// Adds an answer's tokens and cost to what `keyID` is known to have spent.
    public func charge(_ keyID: String, tokens: Int, usd: Double) {
        entries.withLock { table in
            guard var e = table[keyID] else { return }   // not tracked: the next read sees the record
            e.local.tokens += tokens
            e.local.usd += usd
            table[keyID] = e
        }
    }

    /// Whether `spend` has reached `budget`.
    public static func exhausted(_ budget: Budget, by spend: Spend) -> Bool {
        switch budget {
        case .tokens(let n): return spend.tokens >= n
        case .usd(let x): return spend.usd >= x
        }
    }
}
