import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Addresses allowed to call the server: single addresses or CIDR ranges, IPv4 and IPv6 (`10.0.0.0/8`,
/// `192.168.1.7`, `fd00::/8`). An IPv4 client seen as an IPv4-mapped IPv6 address (`::ffff:10.1.2.3`) matches the
/// IPv4 ranges. An empty list allows everyone.
public struct IPAllowList: Sendable, Equatable, CustomStringConvertible {
    struct Range: Sendable, Equatable {
        var bytes: [UInt8]   // 4 or 16
        var prefix: Int

        func contains(_ address: [UInt8]) -> Bool {
            guard address.count == bytes.count else { return false }
            var bits = prefix
            for i in 0..<bytes.count where bits > 0 {
                let take = min(8, bits)
                let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - take))
                if address[i] & mask != bytes[i] & mask { return false }
                bits -= take
            }
            return true
        }
    }

    let ranges: [Range]
    public let entries: [String]

    public var isEmpty: Bool { ranges.isEmpty }
    public var description: String { entries.joined(separator: ", ") }

    /// The list that allows every address.
    public init() {
        ranges = []
        entries = []
    }

    /// Parses entries; throws `IPAllowList.Invalid` naming the first that is not an address or range.
    public init(_ entries: [String]) throws {
        var ranges: [Range] = []
        var kept: [String] = []
        for raw in entries {
            let entry = raw.trimmingCharacters(in: .whitespaces)
            if entry.isEmpty { continue }
            let parts = entry.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard let bytes = Self.parse(parts[0]) else { throw Invalid(entry: entry) }
            let width = bytes.count * 8
            var prefix = width
            if parts.count == 2 {
                guard let p = Int(parts[1]), (0...width).contains(p) else { throw Invalid(entry: entry) }
                prefix = p
            }
            ranges.append(Range(bytes: bytes, prefix: prefix))
            kept.append(entry)
        }
        self.ranges = ranges
        self.entries = kept
    }

    /// Comma-separated entries (a flag or environment variable).
    public init(commaSeparated text: String) throws {
        try self.init(text.split(separator: ",").map(String.init))
    }

    public struct Invalid: Error, CustomStringConvertible {
        public let entry: String
        public var description: String { "'\(entry)' is not an IP address or CIDR range (such as 10.0.0.0/8 or fd00::/8)" }
    }

    /// Whether `address` (textual, as the socket reports it) is allowed. An address that cannot be parsed is not.
    public func allows(_ address: String?) -> Bool {
        if ranges.isEmpty { return true }
        guard let address, let bytes = Self.parse(address) else { return false }
        if bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
            let v4 = Array(bytes[12..<16])
            if ranges.contains(where: { $0.contains(v4) }) { return true }
        }
        return ranges.contains { $0.contains(bytes) }
    }

    /// The 4 or 16 bytes of an IPv4 or IPv6 address (an IPv6 zone such as `%eth0` is ignored).
    static func parse(_ text: String) -> [UInt8]? {
        let text = String(text.trimmingCharacters(in: CharacterSet(charactersIn: "[] ")).split(separator: "%").first ?? "")
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }
}
