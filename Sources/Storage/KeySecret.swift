import Crypto
import Foundation

/// The shape of a key and what is stored of it.
///
/// A key reads `sk-sy-<id>-<secret>`: `id` is 12 random base62 characters, not secret, the row's primary key (so a
/// lookup reads one row, never scans); `secret` is 43 random base62 characters (256 bits) from the system's
/// cryptographic generator. Only `HMAC-SHA256(salt, key)` with a random 16-byte salt per key is stored. A fast hash is
/// enough here because the secret has full entropy: there is no password to guess.
enum KeySecret {
    static let scheme = "sk-sy-"
    static let idLength = 12
    static let secretLength = 43
    static let saltLength = 16
    private static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    /// A new key: its lookup id and its full text.
    static func generate() -> (id: String, key: String) {
        var rng = SystemRandomNumberGenerator()
        let id = randomBase62(count: idLength, using: &rng)
        let secret = randomBase62(count: secretLength, using: &rng)
        return (id, scheme + id + "-" + secret)
    }

    /// What lists and logs may show of a key with this id.
    static func displayPrefix(id: String) -> String { scheme + id }

    /// `count` characters drawn uniformly from base62: bytes of 248 and above are rejected so `byte % 62` has no bias.
    static func randomBase62(count: Int, using rng: inout some RandomNumberGenerator) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        while out.count < count {
            var word = rng.next()
            for _ in 0..<8 where out.count < count {
                let byte = UInt8(truncatingIfNeeded: word)
                word >>= 8
                if byte < 248 { out.append(alphabet[Int(byte % 62)]) }
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Random salt bytes.
    static func salt() -> Data {
        var rng = SystemRandomNumberGenerator()
        return Data((0..<saltLength).map { _ in UInt8.random(in: .min ... .max, using: &rng) })
    }

    /// The lookup id of a presented key of the right shape, or nil.
    static func lookupID(of presented: String) -> String? {
        let bytes = Array(presented.utf8)
        let schemeBytes = Array(scheme.utf8)
        guard bytes.count == schemeBytes.count + idLength + 1 + secretLength,
              bytes.starts(with: schemeBytes),
              bytes[schemeBytes.count + idLength] == UInt8(ascii: "-")
        else { return nil }
        let id = bytes[schemeBytes.count ..< schemeBytes.count + idLength]
        let secret = bytes[(schemeBytes.count + idLength + 1)...]
        guard id.allSatisfy(isBase62), secret.allSatisfy(isBase62) else { return nil }
        return String(decoding: id, as: UTF8.self)
    }

    private static func isBase62(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
    }

    /// The stored hash of `key`.
    static func hash(_ key: String, salt: Data) -> Data {
        Data(HMAC<SHA256>.authenticationCode(for: Data(key.utf8), using: SymmetricKey(data: salt)))
    }

    /// Whether `presented` hashes to `stored`, comparing every byte whatever the first difference.
    static func matches(_ presented: String, hash stored: Data, salt: Data) -> Bool {
        constantTimeEquals(hash(presented, salt: salt), stored)
    }

    /// Equality that takes the same time wherever two equal-length values differ.
    static func constantTimeEquals(_ a: Data, _ b: Data) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }
}
