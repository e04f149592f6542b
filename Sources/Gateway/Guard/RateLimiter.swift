import Foundation
import Synchronization

/// Where the per-key buckets live: this process (`RateLimiter`) or a store shared by several replicas
/// (`RedisRateLimiter`). Both implement the same bucket, so a limit means the same wherever it is counted.
public protocol RateLimitStore: Sendable {
    /// Takes `cost` from `bucket` (refilled at `limit` per minute, holding at most `limit`) if it holds at least
    /// `need`; otherwise takes nothing and says how long until it will. A `need` of nil takes `cost` in any case,
    /// down to a debt of at most `limit` (tokens used beyond what was left are owed before the next request).
    func take(_ bucket: String, perMinute limit: Int, cost: Int, need: Int?) async throws -> RateLimiter.Decision
}

/// Requests and tokens per minute per key: token buckets, in process.
///
/// A key limited to N per minute holds up to N and regains N per minute, continuously. A request takes one from
/// its requests bucket, so N requests may come at once, and the (N+1)-th within the minute is refused with the time
/// until one is back. Tokens are charged after the answer (prompt + completion), which may leave the bucket in debt;
/// a request is let in while its tokens bucket holds at least one. The state is one bucket per key seen: at most
/// `capacity` buckets; past that, buckets that have refilled (which mean the same as no bucket) go first, then the
/// least recently used.
public final class RateLimiter: RateLimitStore {
    /// The answer for one request.
    public struct Decision: Sendable, Equatable {
        public var allowed: Bool
        public var limit: Int
        /// Whole units left after this one.
        public var remaining: Int
        /// Until the bucket is full again.
        public var reset: Duration
        /// Until one request would be allowed (zero when allowed).
        public var retryAfter: Duration

        public init(allowed: Bool, limit: Int, remaining: Int, reset: Duration, retryAfter: Duration) {
            self.allowed = allowed; self.limit = limit; self.remaining = remaining; self.reset = reset
            self.retryAfter = retryAfter
        }
    }

    /// The buckets, as pure state over an injected time (seconds on any monotonic scale).
    public struct StateMachine: Sendable {
        struct Bucket: Sendable { var tokens: Double; var updated: Double }
        var buckets: [String: Bucket] = [:]
        let capacity: Int

        public init(capacity: Int) { self.capacity = max(1, capacity) }

        public var count: Int { buckets.count }

        /// One request against a requests-per-minute bucket.
        public mutating func acquire(_ key: String, perMinute limit: Int, now: Double) -> Decision {
            take(key, perMinute: limit, cost: 1, need: 1, now: now)
        }

        public mutating func take(_ key: String, perMinute limit: Int, cost: Int, need: Int?, now: Double) -> Decision {
            let limit = max(1, limit)
            let full = Double(limit)
            let rate = full / 60   // per second
            var bucket = buckets[key] ?? Bucket(tokens: full, updated: now)
            bucket.tokens = min(full, bucket.tokens + max(0, now - bucket.updated) * rate)
            bucket.updated = now
            let allowed: Bool
            if let need {
                allowed = bucket.tokens >= Double(need)
                if allowed { bucket.tokens -= Double(cost) }
            } else {
                allowed = true
                bucket.tokens = max(-full, bucket.tokens - Double(cost))
            }
            if buckets[key] == nil, buckets.count >= capacity { evict(now: now) }
            buckets[key] = bucket
            return Self.decision(allowed: allowed, limit: limit, tokens: bucket.tokens, need: need ?? 1)
        }

        /// The decision for a bucket left holding `tokens` (the same arithmetic as the Redis script's result).
        static func decision(allowed: Bool, limit: Int, tokens: Double, need: Int) -> Decision {
            let rate = Double(limit) / 60
            let reset = (Double(limit) - tokens) / rate
            let retry = allowed ? 0 : max(0, Double(need) - tokens) / rate
            return Decision(allowed: allowed, limit: limit, remaining: max(0, Int(tokens.rounded(.down))),
                            reset: .milliseconds(Int64((reset * 1000).rounded(.up))),
                            retryAfter: .milliseconds(Int64((retry * 1000).rounded(.up))))
        }

        /// Buckets that would be full by now are dropped; if none, the least recently used one.
        mutating func evict(now: Double) {
            let before = buckets.count
            // A bucket untouched for two minutes has refilled from any debt, whatever its limit.
            buckets = buckets.filter { now - $0.value.updated < 120 }
            if buckets.count == before, let lru = buckets.min(by: { $0.value.updated < $1.value.updated }) {
                buckets.removeValue(forKey: lru.key)
            }
        }
    }

    private let state: Mutex<StateMachine>
    private let origin = ContinuousClock.now

    public init(capacity: Int = 10_000) {
        state = Mutex(StateMachine(capacity: capacity))
    }

    public func acquire(_ key: String, perMinute limit: Int) -> Decision {
        take(key, perMinute: limit, cost: 1, need: 1, now: now)
    }

    public func take(_ bucket: String, perMinute limit: Int, cost: Int, need: Int?) async throws -> Decision {
        take(bucket, perMinute: limit, cost: cost, need: need, now: now)
    }

    private func take(_ bucket: String, perMinute limit: Int, cost: Int, need: Int?, now: Double) -> Decision {
        state.withLock { $0.take(bucket, perMinute: limit, cost: cost, need: need, now: now) }
    }

    private var now: Double {
        let elapsed = ContinuousClock.now - origin
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }
}

extension RateLimiter.Decision {
    /// Whole seconds for `Retry-After` (at least 1 when refused).
    public var retryAfterSeconds: Int {
        let c = retryAfter.components
        return max(allowed ? 0 : 1, Int(c.seconds) + (c.attoseconds > 0 ? 1 : 0))
    }

    /// OpenAI's `x-ratelimit-{limit,remaining,reset}-requests`; reset as OpenAI writes it (`1s`, `6m0s`, `20ms`).
    public var headerValues: [(String, String)] { headerValues(for: "requests") }

    /// The same for another unit: `tokens`.
    public func headerValues(for unit: String) -> [(String, String)] {
        [("x-ratelimit-limit-\(unit)", String(limit)),
         ("x-ratelimit-remaining-\(unit)", String(remaining)),
         ("x-ratelimit-reset-\(unit)", Self.openAIDuration(reset))]
    }

    static func openAIDuration(_ d: Duration) -> String {
        let ms = Int(d.components.seconds) * 1000 + Int(d.components.attoseconds / 1_000_000_000_000_000)
        if ms < 1000 { return "\(ms)ms" }
        let minutes = ms / 60_000
        let rest = ms % 60_000
        var seconds = String(rest / 1000)
        if rest % 1000 > 0 {
            var fraction = String(rest % 1000)
            fraction = String(repeating: "0", count: 3 - fraction.count) + fraction
            while fraction.hasSuffix("0") { fraction.removeLast() }
            seconds += "." + fraction
        }
        return minutes > 0 ? "\(minutes)m\(seconds)s" : "\(seconds)s"
    }
}
