#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Builds GGUF v3 (or v2) files, for tests and tools.
///
/// The writer serializes what it is given without validating it (so tests can also build
/// malformed files): dimensions are written as given (negative values as their two's-complement
/// bit pattern), tensor data is written as given whatever its length, and each tensor's offset
/// is the running total of the previous tensors' data lengths, each padded to `alignment`.
/// When `alignment` is not 32 and no `general.alignment` was set, a `general.alignment`
/// uint32 entry is added after the other metadata. A `general.alignment` set explicitly is
/// written as given and should equal `alignment` (a mismatch builds a file readers misread).
public struct GGUFWriter: Sendable {
    public let version: UInt32
    public let alignment: Int

    private var keys: [String] = []
    private var values: [String: GGUFValue] = [:]
    private var tensors: [(name: String, dimensions: [Int], type: GGMLType, data: [UInt8])] = []

    public init(version: UInt32 = 3, alignment: Int = 32) {
        self.version = version
        self.alignment = alignment
    }

    /// Sets a metadata entry; a key set again keeps its first position.
    public mutating func set(_ key: String, _ value: GGUFValue) {
        if values.updateValue(value, forKey: key) == nil { keys.append(key) }
    }

    /// Appends a tensor; `data` is the already-encoded bytes.
    public mutating func addTensor(name: String, dimensions: [Int], type: GGMLType, data: [UInt8]) {
        tensors.append((name, dimensions, type, data))
    }

    public func bytes() -> [UInt8] {
        var out = ByteWriter()
        out.bytes = header(tensors.map { ($0.name, $0.dimensions, $0.type, $0.data.count) })
        let pad = max(1, alignment)
        for t in tensors {
            out.bytes.append(contentsOf: t.data)
            out.pad(to: pad)
        }
        return out.bytes
    }

    /// The header, metadata and tensor table for tensors of these sizes, padded to where their data starts.
    private func header(_ table: [(name: String, dimensions: [Int], type: GGMLType, byteCount: Int)]) -> [UInt8] {
        let pad = max(1, alignment)
        var out = ByteWriter()
        var entries = keys.compactMap { key in values[key].map { (key, $0) } }
        if alignment != GGUFParser.defaultAlignment, values["general.alignment"] == nil {
            entries.append(("general.alignment", .uint32(UInt32(truncatingIfNeeded: alignment))))
        }

        out.u32(GGUFParser.magic)
        out.u32(version)
        out.u64(UInt64(table.count))
        out.u64(UInt64(entries.count))
        for (key, value) in entries {
            out.string(key)
            out.u32(value.typeID)
            out.value(value)
        }
        var offset = 0
        for t in table {
            out.string(t.name)
            out.u32(UInt32(truncatingIfNeeded: t.dimensions.count))
            for d in t.dimensions { out.u64(UInt64(bitPattern: Int64(d))) }
            out.u32(t.type.rawValue)
            out.u64(UInt64(offset))
            offset += (t.byteCount + pad - 1) / pad * pad
        }
        out.pad(to: pad)
        return out.bytes
    }

    /// A tensor whose bytes are produced while the file is written.
    public struct PendingTensor: Sendable {
        public var name: String
        public var dimensions: [Int]
        public var type: GGMLType
        public var byteCount: Int
        public init(name: String, dimensions: [Int], type: GGMLType, byteCount: Int) {
            self.name = name; self.dimensions = dimensions; self.type = type; self.byteCount = byteCount
        }
    }

    /// Writes the metadata set here and `pending` tensors (those added with `addTensor` are not written), asking
    /// `data(i)` for the bytes of tensor `i` in order, so a file as large as a model is written without holding it in
    /// memory. Data of another length than declared is an error. The file appears at `path` only when complete
    /// (written beside it and renamed).
    public func write<E: Error>(to path: String, pending: [PendingTensor], data: (Int) throws(E) -> [UInt8]) throws -> Void {
        let temporary = path + ".\(getpid()).partial"   // one per process: two loads converting at once do not mix
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw GGUFError.io(path: temporary, message: String(cString: strerror(errno))) }
        var closed = false
        defer { if !closed { close(fd); unlink(temporary) } }
        func put(_ bytes: [UInt8]) throws(GGUFError) {
            if let failure = writeAll(fd, bytes) { throw .io(path: temporary, message: failure) }
        }
        try put(header(pending.map { ($0.name, $0.dimensions, $0.type, $0.byteCount) }))
        let pad = max(1, alignment)
        for (i, t) in pending.enumerated() {
            let bytes = try data(i)
            guard bytes.count == t.byteCount else {
                throw GGUFError.io(path: temporary, message: "tensor \(t.name) has \(bytes.count) bytes, \(t.byteCount) were declared")
            }
            try put(bytes)
            let remainder = bytes.count % pad
            if remainder != 0 { try put([UInt8](repeating: 0, count: pad - remainder)) }
        }
        closed = true
        guard fsync(fd) == 0, close(fd) == 0 else {
            unlink(temporary)
            throw GGUFError.io(path: temporary, message: String(cString: strerror(errno)))
        }
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw GGUFError.io(path: path, message: String(cString: strerror(errno)))
        }
    }

    /// Writes `bytes()` to `path`, replacing any existing file.
    public func write(to path: String) throws(GGUFError) {
        let data = bytes()
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw .io(path: path, message: String(cString: strerror(errno))) }
        let failure = writeAll(fd, data)
        let closed = close(fd)
        if let failure { throw .io(path: path, message: failure) }
        if closed != 0 { throw .io(path: path, message: String(cString: strerror(errno))) }
    }
}

/// Writes all of `bytes` to `fd` (retrying interrupted and short writes); the error's text, or nil.
private func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> String? {
    var written = 0
    var failure: String?
    bytes.withUnsafeBytes { buffer in
        guard let base = buffer.baseAddress else { return }
        while written < buffer.count {
            let n = systemWrite(fd, base + written, buffer.count - written)
            if n < 0 {
                if errno == EINTR { continue }
                failure = String(cString: strerror(errno))
                return
            }
            written += n
        }
    }
    return failure
}

@inline(__always)
private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, buffer, count)
    #else
    return Darwin.write(fd, buffer, count)
    #endif
}

/// Little-endian serialization into a byte array.
private struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }

    mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { utf8 in
            u64(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    mutating func pad(to alignment: Int) {
        let remainder = bytes.count % alignment
        if remainder != 0 { bytes.append(contentsOf: repeatElement(0, count: alignment - remainder)) }
    }

    /// Writes the payload of `value` (its type id is written by the caller).
    mutating func value(_ value: GGUFValue) {
        switch value {
        case .uint8(let v): u8(v)
        case .int8(let v): u8(UInt8(bitPattern: v))
        case .uint16(let v): u16(v)
        case .int16(let v): u16(UInt16(bitPattern: v))
        case .uint32(let v): u32(v)
        case .int32(let v): u32(UInt32(bitPattern: v))
        case .float32(let v): u32(v.bitPattern)
        case .bool(let v): u8(v ? 1 : 0)
        case .string(let v): string(v)
        case .uint64(let v): u64(v)
        case .int64(let v): u64(UInt64(bitPattern: v))
        case .float64(let v): u64(v.bitPattern)
        case .array(let elements):
            // GGUF arrays are homogeneous: the first element decides the element type
            // (uint8 for an empty array); other elements are converted to it.
            let type = elements.first?.typeID ?? 0
            u32(type)
            u64(UInt64(elements.count))
            for e in elements { self.value(e.typeID == type ? e : e.converted(to: type)) }
        }
    }
}

extension GGUFValue {
    /// A value of GGUF type `type` standing for `self`: numbers convert (clamped), anything
    /// else becomes that type's zero value. Used only for mixed-type arrays, which GGUF cannot store.
    fileprivate func converted(to type: UInt32) -> GGUFValue {
        let d = floatValue ?? (boolValue == true ? 1 : 0)
        let i = Int64(clamping: intValue ?? Int(exactly: d.rounded(.towardZero)) ?? 0)
        switch type {
        case 0: return .uint8(UInt8(clamping: i))
        case 1: return .int8(Int8(clamping: i))
        case 2: return .uint16(UInt16(clamping: i))
        case 3: return .int16(Int16(clamping: i))
        case 4: return .uint32(UInt32(clamping: i))
        case 5: return .int32(Int32(clamping: i))
        case 6: return .float32(Float(d))
        case 7: return .bool(d != 0)
        case 8: return .string(stringValue ?? "")
        case 9: return .array(arrayValue ?? [])
        case 10: return .uint64(UInt64(clamping: i))
        case 11: return .int64(i)
        default: return .float64(d)
        }
    }
}
