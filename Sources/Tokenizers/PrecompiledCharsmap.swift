import Foundation

/// SentencePiece's compiled normalization rules (`precompiled_charsmap`, the `Precompiled` normalizer of a
/// `tokenizer.json`; NFKC plus SentencePiece's own rules for XLM-RoBERTa, T5, ALBERT …): a double-array trie over
/// UTF-8 bytes whose values point into a block of NUL-terminated replacement strings.
///
/// Layout: a little-endian `UInt32` giving the trie's size in bytes, the trie (32-bit units: bits 0–7 the label,
/// bit 8 "has a value", bits 10–30 the offset to the children, shifted left by 8 more when bit 9 is set; a value
/// unit holds the value in bits 0–30), then the replacement strings.
///
/// Applied as Hugging Face `tokenizers` applies it, to be identical to it: grapheme by grapheme, a grapheme of fewer
/// than 6 bytes is replaced whole by the rule of the shortest prefix the trie knows; otherwise (or without a rule)
/// each of its characters is replaced by its own rule or kept.
public struct PrecompiledCharsmap: Sendable, Equatable {
    let units: [UInt32]
    let replacements: [UInt8]

    /// From the base64 text of `tokenizer.json`.
    public init(base64 text: String) throws(TokenizerError) {
        guard let data = Data(base64Encoded: text) else { throw .invalidVocabulary("precompiled_charsmap is not base64") }
        try self.init(data: [UInt8](data))
    }

    public init(data bytes: [UInt8]) throws(TokenizerError) {
        guard bytes.count >= 4 else { throw .invalidVocabulary("precompiled_charsmap is shorter than its header") }
        let size = Int(UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24)
        guard size % 4 == 0, size >= 4, size <= bytes.count - 4 else {
            throw .invalidVocabulary("precompiled_charsmap's trie of \(size) bytes does not fit its \(bytes.count)")
        }
        units = stride(from: 4, to: 4 + size, by: 4).map { i in
            UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24
        }
        replacements = Array(bytes[(4 + size)...])
    }

    @inline(__always) static func offset(_ unit: UInt32) -> Int {
        Int((unit >> 10) << ((unit & (1 << 9)) >> 6))
    }

    /// The value of the shortest key that is a prefix of `key` (nil when none is); a damaged trie finds nothing.
    func shortestPrefixValue(_ key: ArraySlice<UInt8>) -> Int? {
        guard let root = units.first else { return nil }
        var node = Self.offset(root)
        for c in key {
            guard c != 0 else { return nil }
            node ^= Int(c)
            guard node >= 0, node < units.count else { return nil }
            let unit = units[node]
            guard unit & ((1 << 31) | 0xFF) == UInt32(c) else { return nil }
            node ^= Self.offset(unit)
            if (unit >> 8) & 1 == 1 {
                guard node >= 0, node < units.count else { return nil }
                return Int(units[node] & ((1 << 31) - 1))
            }
        }
        return nil
    }

    /// The replacement for `chunk`, if a rule covers a prefix of it.
    func transform(_ chunk: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        guard let start = shortestPrefixValue(chunk), start < replacements.count else { return nil }
        var end = start
        while end < replacements.count, replacements[end] != 0 { end += 1 }
        return replacements[start..<end]
    }

    public func normalize(_ text: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for grapheme in text {
            let bytes = Array(grapheme.utf8)
            if bytes.count < 6, let replaced = transform(bytes[...]) {
                out.append(contentsOf: replaced)
                continue
            }
            var i = 0
            for scalar in grapheme.unicodeScalars {
                let n = UTF8.width(scalar)
                let part = bytes[i..<(i + n)]
                out.append(contentsOf: transform(part) ?? part)
                i += n
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
