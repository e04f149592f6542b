import Foundation
import Synchronization

/// Requests per minute per key: a token bucket per key, in process.
///
/// A key limited to N requests per minute holds up to N tokens and regains N per minute, continuously; a request
/// takes one. So N requests may come at once, and the (N+1)-th within the minute is refused with the time until a
/// token is back. The state is one bucket per key seen: at most `capacity` buckets; past that, buckets that have
/// refilled (which mean the same as no bucket) go first, then the least recently used.
public final class RateLimiter: Sendable {
    /// The answer for one request.
    public struct Decision: Sendable, Equatable {
        public var allowed: Bool
        public var limit: Int
        /// Whole requests left after this one.
        public var remaining: Int
        /// Until the bucket is full again.
        public var reset: Duration
        /// Until one request would be allowed (zero when allowed).
        public var retryAfter: Duration
    }

    /// The buckets, as pure state over an injected time (seconds on any monotonic scale).
    public struct StateMachine: Sendable {
        struct Bucket: Sendable { var tokens: Double; var updated: Double }
        var buckets: [String: Bucket] = [:]
        let capacity: Int

        public init(capacity: Int) { self.capacity = max(1, capacity) }

        public var count: Int { buckets.count }

        public mutating func acquire(_ key: String, perMinute limit: Int, now: Double) -> Decision {
            let limit = max(1, limit)
            let rate = Double(limit) / 60   // tokens per second
            var bucket = buckets[key] ?? Bucket(tokens: Double(limit), updated: now)
            bucket.tokens = min(Double(limit), bucket.tokens + max(0, now - bucket.updated) * rate)
            bucket.updated = now
            let allowed = bucket.tokens >= 1
            if allowed { bucket.tokens -= 1 }
            if buckets[key] == nil, buckets.count >= capacity { evict(now: now) }
            buckets[key] = bucket
            let reset = (Double(limit) - bucket.tokens) / rate
            let retry = allowed ? 0 : (1 - bucket.tokens) / rate
            return Decision(allowed: allowed, limit: limit, remaining: max(0, Int(bucket.tokens.rounded(.down))),
                            reset: .milliseconds(Int64((reset * 1000).rounded(.up))),
                            retryAfter: .milliseconds(Int64((retry * 1000).rounded(.up))))
        }

        /// Buckets that would be full by now are dropped; if none, the least recently used one.
        mutating func evict(now: Double) {
            let before = buckets.count
            // A bucket untouched for a minute has refilled whatever its limit.
            buckets = buckets.filter { now - $0.value.updated < 60 }
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
        let elapsed = ContinuousClock.now - origin
        let now = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return state.withLock { $0.acquire(key, perMinute: limit, now: now) }
    }
}

extension RateLimiter.Decision {
    /// Whole seconds for `Retry-After` (at least 1 when refused).
    public var retryAfterSeconds: Int {
        let c = retryAfter.components
        return max(allowed ? 0 : 1, Int(c.seconds) + (c.attoseconds > 0 ? 1 : 0))
    }

    /// OpenAI's `x-ratelimit-{limit,remaining,reset}-requests`; reset as OpenAI writes it (`1s`, `6m0s`, `20ms`).
    public var headerValues: [(String, String)] {
        [("x-ratelimit-limit-requests", String(limit)),
         ("x-ratelimit-remaining-requests", String(remaining)),
         ("x-ratelimit-reset-requests", Self.openAIDuration(reset))]
    }

    static func openAIDuration(_ d: Duration) -> String {
        let ms = Int(d.components.seconds) * 1000 + Int(d.components.attoseconds / 1_000_000_000_000_000)
        if ms < 1000 { return "\(ms)ms" }
        let minutes = ms / 60_000
        var seconds = String(format: "%.3f", Double(ms % 60_000) / 1000)
        while seconds.hasSuffix("0") { seconds.removeLast() }
        if seconds.hasSuffix(".") { seconds.removeLast() }
        return minutes > 0 ? "\(minutes)m\(seconds)s" : "\(seconds)s"
    }
}
