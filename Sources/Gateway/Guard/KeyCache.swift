import Crypto
import Foundation
import Storage
import Synchronization

/// Remembers recent `KeyStore.verify` answers so that a busy key costs one database read per `ttl`, not one per
/// request.
///
/// Bounds: at most `capacity` presented keys are remembered (past that, expired entries go first, then the one
/// closest to expiry), and an answer is reused for at most `ttl` — so a key revoked in the database is refused
/// by every server within `ttl` (default 5 s). Expiry dates are checked on every hit, so a key that expires while
/// cached is refused at once. Entries are keyed by a SHA-256 of the presented text, never the text itself.
public final class KeyCache: Sendable {
    public typealias Verify = @Sendable (String) async throws -> KeyVerification

    public let ttl: Duration
    public let capacity: Int
    private let verify: Verify
    private let entries = Mutex<[String: Entry]>([:])

    private struct Entry: Sendable {
        var answer: KeyVerification
        var until: ContinuousClock.Instant
    }

    public init(ttl: Duration = .seconds(5), capacity: Int = 1024, verify: @escaping Verify) {
        self.ttl = ttl
        self.capacity = max(1, capacity)
        self.verify = verify
    }

    /// A cache over `store`.
    public convenience init(store: KeyStore, ttl: Duration = .seconds(5), capacity: Int = 1024) {
        self.init(ttl: ttl, capacity: capacity, verify: { try await store.verify($0) })
    }

    /// The (possibly cached) answer for `presented`.
    public func check(_ presented: String, now: Date = Date()) async throws -> KeyVerification {
        let id = KeyDigest.hex(presented)
        let instant = ContinuousClock.now
        if let hit = entries.withLock({ $0[id] }), hit.until > instant {
            return Self.recheck(hit.answer, now: now)
        }
        let answer = try await verify(presented)
        entries.withLock { table in
            if table[id] == nil, table.count >= capacity { Self.evict(&table, now: instant) }
            table[id] = Entry(answer: answer, until: instant + ttl)
        }
        return answer
    }

    /// Forgets every answer (tests, or after an admin change).
    public func removeAll() { entries.withLock { $0.removeAll() } }

    /// How many answers are held.
    public var count: Int { entries.withLock { $0.count } }

    /// A cached acceptance of a key whose expiry has since passed becomes a refusal.
    private static func recheck(_ answer: KeyVerification, now: Date) -> KeyVerification {
        if case .accepted(let key) = answer, case .expired(let at) = key.state(at: now) { return .refused(.expired(at: at)) }
        return answer
    }

    /// Drops expired entries; if none were, the one closest to expiry.
    private static func evict(_ table: inout [String: Entry], now: ContinuousClock.Instant) {
        let before = table.count
        table = table.filter { $0.value.until > now }
        if table.count == before, let oldest = table.min(by: { $0.value.until < $1.value.until }) {
            table.removeValue(forKey: oldest.key)
        }
    }
}


/// SHA-256 in hex, for cache keys that do not hold a secret.
enum KeyDigest {
    static func hex(_ text: String) -> String { hex(SHA256.hash(data: Data(text.utf8))) }

    /// Lower-case hex of a digest (on the request path: no Foundation formatting).
    static func hex(_ digest: SHA256.Digest) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(SHA256.byteCount * 2)
        for byte in digest {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
