import Foundation
import Redis
import Synchronization

/// The rate-limit buckets in Redis, so that replicas share them: the same bucket as `RateLimiter` (one Redis hash per
/// bucket, updated by one Lua script with Redis's own clock, so the check and the take are atomic across replicas).
/// While Redis cannot be reached each replica counts on its own (`fallback`), and says so once in the log, so that
/// an outage of the counter store does not refuse every request.
public final class RedisRateLimiter: RateLimitStore {
    let client: RedisClient
    let prefix: String
    let fallback = RateLimiter()
    private let failing = Mutex(false)
    private let log: @Sendable (String) -> Void

    static let script = RedisScript("""
        local limit = tonumber(ARGV[1])
        local cost = tonumber(ARGV[2])
        local need = tonumber(ARGV[3])
        local t = redis.call('TIME')
        local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
        local rate = limit / 60
        local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
        local tokens = tonumber(state[1]) or limit
        local updated = tonumber(state[2]) or now
        tokens = math.min(limit, tokens + math.max(0, now - updated) * rate)
        local allowed = 1
        if need >= 0 then
          if tokens >= need then tokens = tokens - cost else allowed = 0 end
        else
          tokens = math.max(-limit, tokens - cost)
        end
        redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
        redis.call('PEXPIRE', KEYS[1], math.ceil((limit - tokens) / rate * 1000) + 1000)
        return {allowed, tostring(tokens)}
        """)

    public init(client: RedisClient, prefix: String = "sy:rl:", log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.client = client
        self.prefix = prefix
        self.log = log
    }

    public func take(_ bucket: String, perMinute limit: Int, cost: Int, need: Int?) async throws -> RateLimiter.Decision {
        let limit = max(1, limit)
        do {
            let reply = try await client.eval(Self.script, keys: [prefix + bucket],
                                              arguments: [String(limit), String(cost), String(need ?? -1)])
            guard case .array(let parts) = reply, parts.count == 2, case .integer(let allowed) = parts[0],
                  let tokens = parts[1].stringValue.flatMap(Double.init) else {
                throw RedisError.protocolViolation("unexpected answer from the rate-limit script: \(reply)")
            }
            if failing.withLock({ let was = $0; $0 = false; return was }) { log("rate limits are shared through Redis again") }
            return RateLimiter.StateMachine.decision(allowed: allowed == 1, limit: limit, tokens: tokens, need: need ?? 1)
        } catch {
            if !failing.withLock({ let was = $0; $0 = true; return was }) {
                log("Redis is unreachable for rate limits (\(error)); each replica counts on its own until it is back")
            }
            return try await fallback.take(bucket, perMinute: limit, cost: cost, need: need)
        }
    }
}

/// The response cache in Redis, shared by replicas: one string per entry with Redis's own expiry.
public final class RedisCacheStore: ResponseCacheStore {
    let client: RedisClient

    public init(client: RedisClient) { self.client = client }

    public func get(_ key: String) async throws -> Data? {
        try await client.get(key).map { Data($0) }
    }

    public func put(_ key: String, _ value: Data, ttl: Duration) async throws {
        _ = try await client.set(key, [UInt8](value), expiresIn: ttl)
    }
}
