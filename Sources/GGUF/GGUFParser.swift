/// A bounds-checked little-endian cursor over raw bytes. Every read checks the remaining
/// length first and throws `GGUFError.truncated` instead of reading past the end.
struct ByteReader {
    let base: UnsafeRawBufferPointer
    private(set) var offset: Int = 0

    init(_ base: UnsafeRawBufferPointer) { self.base = base }

    var remaining: Int { base.count - offset }

    @inline(__always)
    private mutating func load<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws(GGUFError) -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw .truncated(what: what(), offset: offset) }
        let raw = base.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += size
        return T(littleEndian: raw)
    }

    mutating func u8(_ what: @autoclosure () -> String) throws(GGUFError) -> UInt8 { try load(UInt8.self, what()) }
    mutating func u16(_ what: @autoclosure () -> String) throws(GGUFError) -> UInt16 { try load(UInt16.self, what()) }
    mutating func u32(_ what: @autoclosure () -> String) throws(GGUFError) -> UInt32 { try load(UInt32.self, what()) }
    mutating func u64(_ what: @autoclosure () -> String) throws(GGUFError) -> UInt64 { try load(UInt64.self, what()) }

    /// Reads a u64 length and that many UTF-8 bytes. The length is checked against the
    /// remaining bytes before anything is allocated.
    mutating func string(_ what: @autoclosure () -> String) throws(GGUFError) -> String {
        let lengthOffset = offset
        let length = try u64(what())
        guard length <= UInt64(remaining) else { throw .stringTooLong(length: length, offset: lengthOffset) }
        let count = Int(length)
        let start = offset
        offset += count
        if count == 0 { return "" }
        guard let address = base.baseAddress else { throw .truncated(what: what(), offset: start) }
        let bytes = UnsafeBufferPointer(start: (address + start).assumingMemoryBound(to: UInt8.self), count: count)
        guard let s = String(validating: bytes, as: UTF8.self) else { throw .invalidUTF8(offset: start) }
        return s
    }
}

/// The result of parsing the header, metadata and tensor infos of a GGUF file.
struct ParsedGGUF {
    var version: UInt32
    var metadata: [String: GGUFValue]
    var metadataKeys: [String]
    var tensors: [GGUFTensorInfo]
    var alignment: Int
    var dataOffset: Int
}

enum GGUFParser {
    static let magic: UInt32 = 0x4655_4747   // "GGUF" read as a little-endian u32
    static let defaultAlignment = 32
    static let maxAlignment = 1 << 30
    static let maxArrayDepth = 8
    static let maxDimensions = 4

    /// Parses and validates everything but the tensor bytes themselves; every tensor's
    /// data range is checked to lie inside `bytes`.
    static func parse(_ bytes: UnsafeRawBufferPointer) throws(GGUFError) -> ParsedGGUF {
        var r = ByteReader(bytes)

        let foundMagic = try r.u32("magic")
        guard foundMagic == magic else { throw .badMagic(found: foundMagic) }
        let version = try r.u32("version")
        guard version == 2 || version == 3 else { throw .unsupportedVersion(version) }

        let tensorCountOffset = r.offset
        let tensorCount = try r.u64("tensor count")
        let kvCountOffset = r.offset
        let kvCount = try r.u64("metadata key/value count")

        // Each key/value needs at least an 8-byte key length, a 4-byte type and a 1-byte value;
        // each tensor info at least 8 (name length) + 4 (n_dims) + 8 (one dim) + 4 (type) + 8 (offset).
        let minKV: UInt64 = 13, minTensor: UInt64 = 32
        let (kvBytes, kvOverflow) = kvCount.multipliedReportingOverflow(by: minKV)
        let (tBytes, tOverflow) = tensorCount.multipliedReportingOverflow(by: minTensor)
        guard !kvOverflow, kvBytes <= UInt64(r.remaining) else {
            throw .countTooLarge(what: "metadata key/value count", count: kvCount, offset: kvCountOffset)
        }
        guard !tOverflow, tBytes <= UInt64(r.remaining) else {
            throw .countTooLarge(what: "tensor count", count: tensorCount, offset: tensorCountOffset)
        }
        let (both, bothOverflow) = kvBytes.addingReportingOverflow(tBytes)
        guard !bothOverflow, both <= UInt64(r.remaining) else {
            throw .countTooLarge(what: "tensor count", count: tensorCount, offset: tensorCountOffset)
        }

        // Metadata.
        var metadata: [String: GGUFValue] = [:]
        var keys: [String] = []
        metadata.reserveCapacity(Int(kvCount))
        keys.reserveCapacity(Int(kvCount))
        for index in 0..<Int(kvCount) {
            let key = try r.string("key of metadata entry \(index)")
            let typeOffset = r.offset
            let type = try r.u32("value type of '\(key)'")
            let value = try readValue(&r, type: type, typeOffset: typeOffset, key: key, depth: 0)
            guard metadata.updateValue(value, forKey: key) == nil else { throw .duplicateKey(key) }
            keys.append(key)
        }

        // Alignment.
        var alignment = defaultAlignment
        if let value = metadata["general.alignment"] {
            guard let a = value.intValue else {
                throw .wrongValueType(key: "general.alignment", expected: "an integer (uint32)",
                                      found: GGUFValue.typeName(value.typeID))
            }
            guard a > 0, a <= maxAlignment, a & (a - 1) == 0 else { throw .badAlignment(a) }
            alignment = a
        }

        // Tensor infos.
        struct RawTensor {
            var name: String
            var dims: [Int]
            var type: GGMLType
            var offset: UInt64
            var byteCount: Int
            var elementCount: Int
        }
        var raw: [RawTensor] = []
        raw.reserveCapacity(Int(tensorCount))
        var seen = Set<String>()
        seen.reserveCapacity(Int(tensorCount))
        for index in 0..<Int(tensorCount) {
            let name = try r.string("name of tensor \(index)")
            guard seen.insert(name).inserted else { throw .duplicateTensor(name) }
            let nDimsOffset = r.offset
            let nDims = try r.u32("dimension count of tensor '\(name)'")
            guard nDims >= 1, nDims <= UInt32(maxDimensions) else {
                throw .badDimensionCount(tensor: name, count: nDims, offset: nDimsOffset)
            }
            var rawDims: [UInt64] = []
            rawDims.reserveCapacity(Int(nDims))
            for d in 0..<Int(nDims) {
                rawDims.append(try r.u64("dimension \(d) of tensor '\(name)'"))
            }
            let typeID = try r.u32("type of tensor '\(name)'")
            let relOffset = try r.u64("data offset of tensor '\(name)'")
            guard let type = GGMLType(rawValue: typeID) else { throw .unknownTensorType(typeID, tensor: name) }

            var dims: [Int] = []
            dims.reserveCapacity(rawDims.count)
            var elements = 1
            for (d, v) in rawDims.enumerated() {
                guard v >= 1 else {
                    throw .badDimensions(tensor: name, dimensions: rawDims, reason: "dimension \(d) is zero")
                }
                guard let n = Int(exactly: v) else {
                    throw .badDimensions(tensor: name, dimensions: rawDims, reason: "dimension \(d) is too large")
                }
                let (product, overflow) = elements.multipliedReportingOverflow(by: n)
                guard !overflow else {
                    throw .badDimensions(tensor: name, dimensions: rawDims, reason: "the element count overflows")
                }
                elements = product
                dims.append(n)
            }
            guard dims[0] % type.blockSize == 0 else {
                throw .badDimensions(tensor: name, dimensions: rawDims,
                                     reason: "dimension 0 (\(dims[0])) is not a multiple of the \(type.name) block size \(type.blockSize)")
            }
            guard let byteCount = type.byteCount(elements: elements) else {
                throw .badDimensions(tensor: name, dimensions: rawDims, reason: "the byte size overflows")
            }
            guard relOffset % UInt64(alignment) == 0 else {
                throw .misalignedTensor(tensor: name, offset: relOffset, alignment: alignment)
            }
            // The offset is range-checked below, once the data section's start is known.
            raw.append(RawTensor(name: name, dims: dims, type: type,
                                 offset: relOffset, byteCount: byteCount, elementCount: elements))
        }

        // The data section starts at the end of the tensor infos, rounded up to the alignment.
        // (alignment <= 2^30 and offset <= file size, so this cannot overflow.)
        let dataOffset = (r.offset + alignment - 1) / alignment * alignment
        let fileSize = bytes.count

        var tensors: [GGUFTensorInfo] = []
        tensors.reserveCapacity(raw.count)
        for t in raw {
            let absolute = UInt64(dataOffset).addingReportingOverflow(t.offset)
            let end = absolute.partialValue.addingReportingOverflow(UInt64(t.byteCount))
            guard !absolute.overflow, !end.overflow, end.partialValue <= UInt64(fileSize),
                  let offset = Int(exactly: t.offset) else {
                throw .tensorOutOfBounds(tensor: t.name, offset: absolute.overflow ? .max : absolute.partialValue,
                                         byteCount: t.byteCount, fileSize: fileSize)
            }
            tensors.append(GGUFTensorInfo(name: t.name, dimensions: t.dims, type: t.type, offset: offset,
                                          byteCount: t.byteCount, elementCount: t.elementCount))
        }

        return ParsedGGUF(version: version, metadata: metadata, metadataKeys: keys, tensors: tensors,
                          alignment: alignment, dataOffset: dataOffset)
    }

    /// Reads one value of type `type` (whose id was read at `typeOffset`).
    private static func readValue(_ r: inout ByteReader, type: UInt32, typeOffset: Int, key: String,
                                  depth: Int) throws(GGUFError) -> GGUFValue {
        switch type {
        case 0: return .uint8(try r.u8("value of '\(key)'"))
        case 1: return .int8(Int8(bitPattern: try r.u8("value of '\(key)'")))
        case 2: return .uint16(try r.u16("value of '\(key)'"))
        case 3: return .int16(Int16(bitPattern: try r.u16("value of '\(key)'")))
        case 4: return .uint32(try r.u32("value of '\(key)'"))
        case 5: return .int32(Int32(bitPattern: try r.u32("value of '\(key)'")))
        case 6: return .float32(Float(bitPattern: try r.u32("value of '\(key)'")))
        case 7: return .bool(try r.u8("value of '\(key)'") != 0)
        case 8: return .string(try r.string("value of '\(key)'"))
        case 9: return .array(try readArray(&r, key: key, depth: depth + 1))
        case 10: return .uint64(try r.u64("value of '\(key)'"))
        case 11: return .int64(Int64(bitPattern: try r.u64("value of '\(key)'")))
        case 12: return .float64(Double(bitPattern: try r.u64("value of '\(key)'")))
        default: throw .unknownValueType(type, key: key, offset: typeOffset)
        }
    }

    private static func readArray(_ r: inout ByteReader, key: String, depth: Int) throws(GGUFError) -> [GGUFValue] {
        let typeOffset = r.offset
        guard depth <= maxArrayDepth else { throw .nestingTooDeep(key: key, offset: typeOffset) }
        let elementType = try r.u32("array element type of '\(key)'")
        guard let minSize = GGUFValue.minimumEncodedSize(elementType) else {
            throw .unknownValueType(elementType, key: key, offset: typeOffset)
        }
        let countOffset = r.offset
        let count = try r.u64("array length of '\(key)'")
        let (needed, overflow) = count.multipliedReportingOverflow(by: UInt64(minSize))
        guard !overflow, needed <= UInt64(r.remaining) else {
            throw .countTooLarge(what: "array length of '\(key)'", count: count, offset: countOffset)
        }
        let n = Int(count)
        var values: [GGUFValue] = []
        values.reserveCapacity(n)
        switch elementType {
        case 8:
            for _ in 0..<n { values.append(.string(try r.string("array element of '\(key)'"))) }
        case 5:
            for _ in 0..<n { values.append(.int32(Int32(bitPattern: try r.u32("array element of '\(key)'")))) }
        case 6:
            for _ in 0..<n { values.append(.float32(Float(bitPattern: try r.u32("array element of '\(key)'")))) }
        default:
            for _ in 0..<n {
                values.append(try readValue(&r, type: elementType, typeOffset: typeOffset, key: key, depth: depth))
            }
        }
        return values
    }
}
