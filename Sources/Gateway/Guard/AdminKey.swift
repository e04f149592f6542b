import Crypto
import Foundation

/// The operator's key: it may use the admin API (`/admin/*`: keys, usage of every key) and every model without
/// limits. Set with `SWITCHYARD_ADMIN_KEY` (or `serve --admin-key-env NAME`).
///
/// A weak admin key is refused, wherever the server listens: shorter than 24 characters, one of the keys printed
/// in documentation and examples (`sk-1234`, `changeme`…), or too predictable (too few distinct characters, or under
/// 96 bits by the entropy of its own characters — a random 24-character key of letters and digits has about 110).
/// Only a SHA-256 of it is held; a presented key is compared in constant time.
public struct AdminKey: Sendable {
    private let digest: [UInt8]

    /// Keys seen in documentation, tutorials and default configurations.
    static let wellKnown: Set<String> = [
        "sk-1234", "sk-12345", "sk-123456", "sk-1234567890", "changeme", "change-me", "admin", "password", "secret",
        "master", "masterkey", "master-key", "sk-master", "sk-admin", "test", "letmein", "sk-switchyard", "switchyard",
        "your-admin-key", "your_admin_key", "admin-key", "sk-xxxxxxxxxxxxxxxxxxxxxxxx",
    ]

    /// Why a key is too weak.
    public struct Weak: Error, CustomStringConvertible {
        public let reason: String
        public var description: String {
            "the admin key is too weak: \(reason). Make a random one, e.g. `openssl rand -base64 32`, and set it in SWITCHYARD_ADMIN_KEY"
        }
    }

    /// Checks `text` and keeps its digest; throws `Weak` saying why it is refused.
    public init(_ text: String) throws {
        let key = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if Self.wellKnown.contains(key.lowercased()) { throw Weak(reason: "it is a well-known example key") }
        if key.count < 24 { throw Weak(reason: "it has \(key.count) characters; at least 24 are needed") }
        var counts: [Character: Int] = [:]
        for c in key { counts[c, default: 0] += 1 }
        if counts.count < 10 { throw Weak(reason: "it uses only \(counts.count) different characters") }
        let n = Double(key.count)
        let bits = counts.values.reduce(0.0) { acc, c in let p = Double(c) / n; return acc - p * log2(p) } * n
        if bits < 96 { throw Weak(reason: "it holds about \(Int(bits)) bits of randomness; at least 96 are needed") }
        digest = Array(SHA256.hash(data: Data(key.utf8)))
    }

    /// Whether `presented` is this key (compared as digests, in constant time).
    public func matches(_ presented: String) -> Bool {
        let other = Array(SHA256.hash(data: Data(presented.trimmingCharacters(in: .whitespacesAndNewlines).utf8)))
        var diff: UInt8 = 0
        for (a, b) in zip(digest, other) { diff |= a ^ b }
        return diff == 0
    }
}
