/// Why a GGUF file could not be read or written. Offsets are absolute byte offsets in the file.
public enum GGUFError: Error, Sendable, CustomStringConvertible, Equatable {
    /// Opening, sizing, mapping or writing a file failed.
    case io(path: String, message: String)
    /// The first four bytes are not "GGUF".
    case badMagic(found: UInt32)
    /// Version 1 (or a version newer than 3, or a big-endian file) is not supported.
    case unsupportedVersion(UInt32)
    /// The file ends inside `what`, which starts at `offset`.
    case truncated(what: String, offset: Int)
    /// A tensor, key/value or array-element count (read at `offset`) cannot fit in the rest of the file.
    case countTooLarge(what: String, count: UInt64, offset: Int)
    /// A string length (read at `offset`) is larger than the rest of the file.
    case stringTooLong(length: UInt64, offset: Int)
    /// The string whose bytes start at `offset` is not valid UTF-8.
    case invalidUTF8(offset: Int)
    /// A value-type id (read at `offset`) of the value of `key` is not a GGUF type.
    case unknownValueType(UInt32, key: String, offset: Int)
    /// Arrays nested deeper than the reader allows, in the value of `key`.
    case nestingTooDeep(key: String, offset: Int)
    /// The same key appears twice.
    case duplicateKey(String)
    /// A key the reader interprets (e.g. `general.alignment`) has a value of the wrong type.
    case wrongValueType(key: String, expected: String, found: String)
    /// `general.alignment` is not a power of two in 1...2^30.
    case badAlignment(Int)
    /// A tensor declares a number of dimensions outside 1...4 (read at `offset`).
    case badDimensionCount(tensor: String, count: UInt32, offset: Int)
    /// A tensor's dimensions are zero, too large, overflow, or do not fit the type's blocks.
    case badDimensions(tensor: String, dimensions: [UInt64], reason: String)
    /// A tensor's type id is not a supported ggml type.
    case unknownTensorType(UInt32, tensor: String)
    /// The same tensor name appears twice.
    case duplicateTensor(String)
    /// A tensor's data offset (relative to the data section) is not a multiple of the alignment.
    case misalignedTensor(tensor: String, offset: UInt64, alignment: Int)
    /// A tensor's data [offset, offset + byteCount) does not lie inside the file; `offset` is absolute.
    case tensorOutOfBounds(tensor: String, offset: UInt64, byteCount: Int, fileSize: Int)

    public var description: String {
        switch self {
        case .io(let path, let message):
            return "GGUF: cannot use '\(path)': \(message)"
        case .badMagic(let found):
            let bytes = (0..<4).map { i -> String in
                let b = UInt8(truncatingIfNeeded: found >> (8 * UInt32(i)))
                return b >= 0x20 && b < 0x7F ? String(UnicodeScalar(b)) : "\\x" + hex(UInt64(b), width: 2)
            }.joined()
            return "GGUF: not a GGUF file (the first four bytes are \"\(bytes)\", expected \"GGUF\")"
        case .unsupportedVersion(let v):
            if v == 1 {
                return "GGUF: version 1 files are not supported (convert the model again with a current llama.cpp)"
            }
            if v & 0xFFFF == 0, (1...3).contains(v.byteSwapped) {
                return "GGUF: this is a big-endian GGUF file (version \(v.byteSwapped)); only little-endian files are supported"
            }
            return "GGUF: unsupported version \(v) (supported: 2 and 3)"
        case .truncated(let what, let offset):
            return "GGUF: the file ends inside the \(what) at offset \(offset)"
        case .countTooLarge(let what, let count, let offset):
            return "GGUF: \(what) \(count) at offset \(offset) is larger than the rest of the file could hold"
        case .stringTooLong(let length, let offset):
            return "GGUF: string length \(length) at offset \(offset) runs past the end of the file"
        case .invalidUTF8(let offset):
            return "GGUF: the string at offset \(offset) is not valid UTF-8"
        case .unknownValueType(let type, let key, let offset):
            return "GGUF: unknown value type \(type) at offset \(offset) in the value of '\(key)'"
        case .nestingTooDeep(let key, let offset):
            return "GGUF: arrays nested too deeply at offset \(offset) in the value of '\(key)'"
        case .duplicateKey(let key):
            return "GGUF: metadata key '\(key)' appears more than once"
        case .wrongValueType(let key, let expected, let found):
            return "GGUF: metadata key '\(key)' has a \(found) value; expected \(expected)"
        case .badAlignment(let a):
            return "GGUF: general.alignment \(a) is not a power of two between 1 and 2^30"
        case .badDimensionCount(let tensor, let count, let offset):
            return "GGUF: tensor '\(tensor)' has \(count) dimensions (offset \(offset)); expected 1 to 4"
        case .badDimensions(let tensor, let dims, let reason):
            return "GGUF: tensor '\(tensor)' has bad dimensions \(dims): \(reason)"
        case .unknownTensorType(let type, let tensor):
            return "GGUF: tensor '\(tensor)' has unknown or unsupported ggml type \(type)"
        case .duplicateTensor(let name):
            return "GGUF: tensor '\(name)' appears more than once"
        case .misalignedTensor(let tensor, let offset, let alignment):
            return "GGUF: tensor '\(tensor)' data offset \(offset) is not a multiple of the alignment \(alignment)"
        case .tensorOutOfBounds(let tensor, let offset, let byteCount, let fileSize):
            return "GGUF: tensor '\(tensor)' data [offset \(offset), \(byteCount) bytes] lies past the end of the file (size \(fileSize))"
        }
    }
}

private func hex(_ v: UInt64, width: Int) -> String {
    let s = String(v, radix: 16, uppercase: true)
    return String(repeating: "0", count: max(0, width - s.count)) + s
}
