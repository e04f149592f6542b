/// A metadata value of a GGUF file.
///
/// Arrays are homogeneous in the file format (one element type per array), but nested
/// arrays may each have their own element type and length.
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8)
    case int8(Int8)
    case uint16(UInt16)
    case int16(Int16)
    case uint32(UInt32)
    case int32(Int32)
    case float32(Float)
    case bool(Bool)
    case string(String)
    case array([GGUFValue])
    case uint64(UInt64)
    case int64(Int64)
    case float64(Double)

    /// The value of any integer case, when it fits in `Int`.
    public var intValue: Int? {
        switch self {
        case .uint8(let v): Int(v)
        case .int8(let v): Int(v)
        case .uint16(let v): Int(v)
        case .int16(let v): Int(v)
        case .uint32(let v): Int(v)
        case .int32(let v): Int(v)
        case .uint64(let v): Int(exactly: v)
        case .int64(let v): Int(exactly: v)
        default: nil
        }
    }

    /// The value of a floating-point or integer case.
    public var floatValue: Double? {
        switch self {
        case .float32(let v): Double(v)
        case .float64(let v): v
        case .uint64(let v): Double(v)
        case .int64(let v): Double(v)
        default: intValue.map(Double.init)
        }
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var arrayValue: [GGUFValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// The GGUF value-type id of this case (`gguf_type`).
    var typeID: UInt32 {
        switch self {
        case .uint8: 0
        case .int8: 1
        case .uint16: 2
        case .int16: 3
        case .uint32: 4
        case .int32: 5
        case .float32: 6
        case .bool: 7
        case .string: 8
        case .array: 9
        case .uint64: 10
        case .int64: 11
        case .float64: 12
        }
    }

    /// A short name of a GGUF value-type id, for messages.
    static func typeName(_ id: UInt32) -> String {
        switch id {
        case 0: "uint8"
        case 1: "int8"
        case 2: "uint16"
        case 3: "int16"
        case 4: "uint32"
        case 5: "int32"
        case 6: "float32"
        case 7: "bool"
        case 8: "string"
        case 9: "array"
        case 10: "uint64"
        case 11: "int64"
        case 12: "float64"
        default: "type \(id)"
        }
    }

    /// The fewest bytes one value of type `id` occupies in a file (nil for unknown ids).
    static func minimumEncodedSize(_ id: UInt32) -> Int? {
        switch id {
        case 0, 1, 7: 1
        case 2, 3: 2
        case 4, 5, 6: 4
        case 8: 8           // u64 length, possibly empty
        case 9: 12          // u32 element type + u64 count
        case 10, 11, 12: 8
        default: nil
        }
    }
}
