import Core
import Crypto
import Foundation
import Storage
import Synchronization

/// Where cached answers are kept: this process (`MemoryCacheStore`, the default), the SQLite database
/// (`SQLiteCacheStore`) or Redis (`RedisCacheStore`, shared by replicas). Values are opaque bytes with a time to live.
public protocol ResponseCacheStore: Sendable {
    func get(_ key: String) async throws -> Data?
    func put(_ key: String, _ value: Data, ttl: Duration) async throws
}

/// An answer as it is replayed from the cache: the events the provider yielded and the identity the surface gave the
/// answer (its id and creation time), so that a hit returns the same body as the miss that filled it.
public struct CachedCompletion: Codable, Sendable, Equatable {
    public enum Event: Codable, Sendable, Equatable {
        case text(String)
        case toolCall(ToolCallDelta)
        case reasoning(String)
        case reasoningSignature(String)
        case usage(Usage)
        case finished(FinishReason)
    }

    public var id: String
    public var created: Int
    public var events: [Event]
    /// The deployment that answered when the entry was made.
    public var servedBy: String?
}

/// What a request asks of the cache: `x-switchyard-cache: on` caches an answer that is not deterministic too,
/// `off` (or `Cache-Control: no-store`) neither reads nor writes, `Cache-Control: no-cache` skips the read but
/// stores the fresh answer.
public enum CacheDirective: Sendable, Equatable {
    case auto, force, refresh, bypass
}

/// The exact-match response cache: keyed by a SHA-256 of the model, the messages (or raw prompt), the tools and
/// every sampling setting; used only for deterministic requests (temperature 0, or a fixed seed) unless the request
/// opts in. Answers that end in an error or are cut short (cancelled) are not stored, and neither are answers larger
/// than `maxEntryBytes`. A store that fails reads as a miss: the cache never fails a request.
public final class ResponseCache: Sendable {
    public let store: any ResponseCacheStore
    public let ttl: Duration
    public let maxEntryBytes: Int
    private let counters = Mutex<(hits: Int, misses: Int, errors: Int)>((0, 0, 0))

    public init(store: any ResponseCacheStore, ttl: Duration = .seconds(3600), maxEntryBytes: Int = 1 << 20) {
        self.store = store
        self.ttl = ttl
        self.maxEntryBytes = maxEntryBytes
    }

    private struct KeyMaterial: Encodable {
        var kind: String
        var model: String
        var messages: [ChatMessage]
        var rawPrompt: String?
        var tools: [ToolDefinition]
        var sampling: SamplingSettings
        /// What steers routing (`auto`'s task, local-only) can change which model answers.
        var task: String?
        var localOnly: Bool
        /// What constrains the answer's shape.
        var responseFormat: ResponseFormat
        var grammar: String?
        var toolChoice: ToolChoice
        var parallelToolCalls: Bool
    }

    /// The cache key of `request`, or nil when it must not be cached: log-probabilities asked for (not kept), or
    /// sampling that is not deterministic without an opt-in, or a directive that bypasses the cache.
    public static func key(for request: ChatRequest, kind: String, directive: CacheDirective) -> String? {
        if directive == .bypass || request.logprobs { return nil }
        let deterministic = request.sampling.temperature == 0 || request.sampling.seed != nil
        guard deterministic || directive == .force else { return nil }
        let material = KeyMaterial(kind: kind, model: request.model, messages: request.rawPrompt == nil ? request.messages : [],
                                   rawPrompt: request.rawPrompt, tools: request.tools, sampling: request.sampling,
                                   task: request.hints.task, localOnly: request.hints.localOnly,
                                   responseFormat: request.responseFormat, grammar: request.grammar, toolChoice: request.toolChoice,
                                   parallelToolCalls: request.parallelToolCalls)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(material) else { return nil }
        return "sy:cache:v1:" + KeyDigest.hex(SHA256.hash(data: data))
    }

    /// The cached answer for `key`, if any (a store error or an unreadable entry is a miss).
    public func lookup(_ key: String) async -> CachedCompletion? {
        let hit: CachedCompletion?
        do {
            hit = try await store.get(key).flatMap { try? JSONDecoder().decode(CachedCompletion.self, from: $0) }
        } catch {
            counters.withLock { $0.errors += 1 }
            hit = nil
        }
        counters.withLock { if hit == nil { $0.misses += 1 } else { $0.hits += 1 } }
        return hit
    }

    /// Stores `completion` under `key` (when it is complete and small enough).
    public func save(_ completion: CachedCompletion, key: String) async {
        guard completion.events.contains(where: { if case .finished(let r) = $0 { r != .cancelled } else { false } }),
              let data = try? JSONEncoder().encode(completion), data.count <= maxEntryBytes else { return }
        do { try await store.put(key, data, ttl: ttl) } catch { counters.withLock { $0.errors += 1 } }
    }

    /// Lookups that found an answer, lookups that did not, store errors.
    public var statistics: (hits: Int, misses: Int, errors: Int) { counters.withLock { $0 } }
}

/// The in-process store: at most `maxBytes` of values, least recently used evicted first, each kept for its TTL.
public final class MemoryCacheStore: ResponseCacheStore {
    private struct Entry { var value: Data; var expires: ContinuousClock.Instant; var used: UInt64 }
    private struct State { var entries: [String: Entry] = [:]; var bytes = 0; var tick: UInt64 = 0 }
    private let state = Mutex(State())
    public let maxBytes: Int

    public init(maxBytes: Int = 64 << 20) { self.maxBytes = max(1, maxBytes) }

    public func get(_ key: String) async throws -> Data? {
        let now = ContinuousClock.now
        return state.withLock { s in
            guard var e = s.entries[key] else { return nil }
            guard e.expires > now else {
                s.bytes -= e.value.count
                s.entries.removeValue(forKey: key)
                return nil
            }
            s.tick += 1
            e.used = s.tick
            s.entries[key] = e
            return e.value
        }
    }

    public func put(_ key: String, _ value: Data, ttl: Duration) async throws {
        guard value.count <= maxBytes else { return }
        let now = ContinuousClock.now
        state.withLock { s in
            if let old = s.entries.removeValue(forKey: key) { s.bytes -= old.value.count }
            if s.bytes + value.count > maxBytes {
                // Expired entries first, then the least recently used.
                for (k, e) in s.entries where e.expires <= now {
                    s.bytes -= e.value.count
                    s.entries.removeValue(forKey: k)
                }
                if s.bytes + value.count > maxBytes {
                    for (k, e) in s.entries.sorted(by: { $0.value.used < $1.value.used }) {
                        s.bytes -= e.value.count
                        s.entries.removeValue(forKey: k)
                        if s.bytes + value.count <= maxBytes { break }
                    }
                }
            }
            s.tick += 1
            s.entries[key] = Entry(value: value, expires: now + ttl, used: s.tick)
            s.bytes += value.count
        }
    }

    /// Entries held and their bytes.
    public var size: (entries: Int, bytes: Int) { state.withLock { ($0.entries.count, $0.bytes) } }
}

import HTTPTypes

extension CacheDirective {
    /// The directive of a request's headers: `x-switchyard-cache: on|off`, then `Cache-Control: no-store|no-cache`.
    init(_ headers: HTTPFields) {
        if let name = HTTPField.Name("x-switchyard-cache"), let v = headers[name]?.lowercased().trimmingCharacters(in: .whitespaces) {
            if ["off", "no", "false", "0", "bypass"].contains(v) { self = .bypass; return }
            if ["on", "yes", "true", "1", "force"].contains(v) { self = .force; return }
            if v == "refresh" { self = .refresh; return }
        }
        let control = headers[.cacheControl]?.lowercased() ?? ""
        if control.contains("no-store") { self = .bypass } else if control.contains("no-cache") { self = .refresh } else { self = .auto }
    }
}
extension SQLiteCacheStore: ResponseCacheStore {}
