/// Turns a stream of token ids into text pieces without ever splitting a UTF-8 character: bytes of a
/// character that is still incomplete are held back until the tokens that complete it arrive.
///
/// The concatenation of everything `append` and `flush` return equals `tokenizer.decode(allIDs)`.
public struct StreamingDetokenizer: Sendable {
    private let tokenizer: any Tokenizer
    private var pending: [UInt8] = []

    public init(tokenizer: any Tokenizer) {
        self.tokenizer = tokenizer
    }

    /// The text completed by `id` ("" while a multibyte character is incomplete).
    public mutating func append(_ id: Int32) -> String {
        pending.append(contentsOf: tokenizer.tokenBytes(id))
        let complete = Self.completePrefixLength(pending)
        guard complete > 0 else { return "" }
        let text = String(decoding: pending[..<complete], as: UTF8.self)
        pending.removeFirst(complete)
        return text
    }

    /// Whatever is still held back; bytes that never formed a valid character become U+FFFD.
    public mutating func flush() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Length of the longest prefix of `bytes` that does not end inside a character which later bytes could
    /// still complete. Invalid bytes are not held back (they decode to U+FFFD either way).
    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        let count = bytes.count
        // The last byte that is not a continuation byte, within a character's length of the end.
        var lead = count - 1
        while lead >= 0 && lead > count - 4 && bytes[lead] & 0xC0 == 0x80 {
            lead -= 1
        }
        guard lead >= 0 else { return count }
        let first = bytes[lead]
        let needed: Int
        switch first {
        case 0xC2 ... 0xDF: needed = 2
        case 0xE0 ... 0xEF: needed = 3
        case 0xF0 ... 0xF4: needed = 4
        default: return count // ASCII (complete) or a byte that can never start a character
        }
        let available = count - lead
        guard available < needed else { return count }
        // Hold back only a genuine prefix of a well-formed sequence.
        if available >= 2 {
            let second = bytes[lead + 1]
            let secondRange: ClosedRange<UInt8>
            switch first {
            case 0xE0: secondRange = 0xA0 ... 0xBF
            case 0xED: secondRange = 0x80 ... 0x9F
            case 0xF0: secondRange = 0x90 ... 0xBF
            case 0xF4: secondRange = 0x80 ... 0x8F
            default: secondRange = 0x80 ... 0xBF
            }
            guard secondRange.contains(second) else { return count }
        }
        return lead
    }
}
