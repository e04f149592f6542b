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
///
/// One request re-reads an expired answer while the others keep using it. When the key store is unavailable
/// (`StorageError.unavailable`: the database server is down or unreachable), the last answer read keeps standing
/// in for up to `staleLimit` after it was read — answered at once, while the store is asked again in the
/// background — so the keys in use keep working through a database outage; keys not seen before fail with that
/// error (503). A revocation made elsewhere is then seen once the store is back.
public final class KeyCache: Sendable {
    public typealias Verify = @Sendable (String) async throws -> KeyVerification

    public let ttl: Duration
    public let capacity: Int
    public let staleLimit: Duration
    private let verify: Verify
    private let entries = Mutex(Table())

    private struct Table: Sendable {
        var entries: [String: Entry] = [:]
        /// The last read failed with `StorageError.unavailable`.
        var storeDown = false
    }

    private struct Entry: Sendable {
        var answer: KeyVerification
        /// Reused without a read until then.
        var until: ContinuousClock.Instant
        /// When the store gave this answer.
        var readAt: ContinuousClock.Instant
    }

    public init(ttl: Duration = .seconds(5), capacity: Int = 1024, staleLimit: Duration = .seconds(3600), verify: @escaping Verify) {
        self.ttl = ttl
        self.capacity = max(1, capacity)
        self.staleLimit = staleLimit
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
        // A fresh answer is used as it is; an expired one is re-read by this request, and used by the others
        // meanwhile (its `until` moves on by `ttl`).
        let (cached, rereading, storeDown) = entries.withLock { table -> (Entry?, Bool, Bool) in
            guard let e = table.entries[id] else { return (nil, false, table.storeDown) }
            if e.until > instant { return (e, false, table.storeDown) }
            table.entries[id]?.until = instant + ttl
            return (e, true, table.storeDown)
        }
        if let cached, !rereading { return Self.recheck(cached.answer, now: now) }
        // The store is known to be unavailable: the last answer stands in at once, and is re-read in the background.
        if let cached, storeDown, instant - cached.readAt <= staleLimit {
            Task { _ = try? await self.read(presented, id: id) }
            return Self.recheck(cached.answer, now: now)
        }
        return Self.recheck(try await read(presented, id: id), now: now)
    }

    /// Asks the store and remembers its answer. When the store is unavailable, the last answer (if read within
    /// `staleLimit`) stands in; an answer too old to stand in is forgotten; after any other failure the next
    /// request asks again.
    private func read(_ presented: String, id: String) async throws -> KeyVerification {
        let instant = ContinuousClock.now
        do {
            let answer = try await verify(presented)
            entries.withLock { table in
                table.storeDown = false
                if table.entries[id] == nil, table.entries.count >= capacity { Self.evict(&table.entries, now: instant) }
                table.entries[id] = Entry(answer: answer, until: instant + ttl, readAt: instant)
            }
            return answer
        } catch {
            let stale = entries.withLock { table -> KeyVerification? in
                guard case StorageError.unavailable = error else {
                    // The store answered, with an error: no longer down, and the next request asks again.
                    table.storeDown = false
                    table.entries[id]?.until = instant
                    return nil
                }
                table.storeDown = true
                guard let e = table.entries[id] else { return nil }
                if ContinuousClock.now - e.readAt <= staleLimit { return e.answer }
                table.entries[id] = nil
                return nil
            }
            guard let stale else { throw error }
            return stale
        }
    }

    /// Marks every answer as due for a re-read (tests).
    func expireAll() {
        let now = ContinuousClock.now
        entries.withLock { table in for id in table.entries.keys { table.entries[id]?.until = now } }
    }

    /// Forgets every answer (tests, or after an admin change).
    public func removeAll() { entries.withLock { $0.entries.removeAll() } }

    /// How many answers are held.
    public var count: Int { entries.withLock { $0.entries.count } }

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
