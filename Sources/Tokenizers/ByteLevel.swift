/// GPT-2's reversible byte ⇄ printable-character mapping used to spell byte-level BPE vocabularies.
///
/// Bytes that are printable Latin-1 (`!`…`~`, `¡`…`¬`, `®`…`ÿ`) stand for themselves; the remaining 68 bytes
/// (controls, space, DEL, NBSP, soft hyphen …) are given the code points U+0100, U+0101, … in byte order.
enum ByteLevel {
    /// Code point that spells each byte.
    static let scalarForByte: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for byte in 0 ..< 256 {
            if isSelfMapped(UInt8(byte)) {
                table[byte] = UInt32(byte)
            } else {
                table[byte] = next
                next += 1
            }
        }
        return table
    }()

    /// Inverse of `scalarForByte` for code points below 0x144; other code points spell no byte.
    static let byteForScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for byte in 0 ..< 256 {
            table[Int(scalarForByte[byte])] = Int16(byte)
        }
        return table
    }()

    static func isSelfMapped(_ byte: UInt8) -> Bool {
        (0x21 ... 0x7E).contains(byte) || (0xA1 ... 0xAC).contains(byte) || (0xAE ... 0xFF).contains(byte)
    }

    /// The byte a code point spells, if it is one of the 256 byte characters.
    @inline(__always)
    static func byte(for scalar: UInt32) -> UInt8? {
        guard scalar < 0x144 else { return nil }
        let value = byteForScalar[Int(scalar)]
        return value < 0 ? nil : UInt8(value)
    }

    /// The one-character vocabulary spelling of a byte.
    static func string(for byte: UInt8) -> String {
        guard let scalar = Unicode.Scalar(scalarForByte[Int(byte)]) else { return "" }
        return String(Character(scalar))
    }

    /// Raw bytes spelled by a byte-level vocabulary string. Characters outside the byte alphabet are
    /// kept as their own UTF-8 (llama.cpp prints a marker there instead; such tokens do not occur in
    /// well-formed byte-level vocabularies).
    static func decode(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            if let byte = byte(for: scalar.value) {
                out.append(byte)
            } else {
                out.append(contentsOf: String(scalar).utf8)
            }
        }
        return out
    }
}
