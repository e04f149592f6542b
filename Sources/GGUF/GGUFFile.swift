#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One tensor's description from the tensor-info section.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// ggml order: `dimensions[0]` is the contiguous (row) length.
    public let dimensions: [Int]
    public let type: GGMLType
    /// Relative to the start of the tensor data section (`GGUFFile.dataOffset`).
    public let offset: Int
    public let byteCount: Int
    /// The product of `dimensions` (checked not to overflow at load).
    public var elementCount: Int
}

/// A parsed, validated GGUF file (version 2 or 3, little-endian).
///
/// `init(path:)` maps the file read-only and never copies tensor data; `data(for:)` returns
/// pointers into the mapping, valid as long as this object is alive. Immutable after init.
public final class GGUFFile: @unchecked Sendable {
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    /// Tensors in file order.
    public let tensors: [GGUFTensorInfo]
    /// `general.alignment`, or 32.
    public let alignment: Int
    /// Absolute file offset of the tensor data section.
    public let dataOffset: Int
    public let fileSize: Int

    private enum Storage {
        case mapped(UnsafeMutableRawPointer, Int)
        case heap(UnsafeMutableRawPointer)
    }

    private let bytes: UnsafeRawBufferPointer
    private let storage: Storage
    private let tensorIndex: [String: Int]

    private init(parsed: ParsedGGUF, bytes: UnsafeRawBufferPointer, storage: Storage) {
        version = parsed.version
        metadata = parsed.metadata
        metadataKeys = parsed.metadataKeys
        tensors = parsed.tensors
        alignment = parsed.alignment
        dataOffset = parsed.dataOffset
        fileSize = bytes.count
        self.bytes = bytes
        self.storage = storage
        var index: [String: Int] = [:]
        index.reserveCapacity(parsed.tensors.count)
        for (i, t) in parsed.tensors.enumerated() { index[t.name] = i }
        tensorIndex = index
    }

    /// Parses an in-memory copy of a file (the bytes are copied once).
    public convenience init(bytes source: [UInt8]) throws(GGUFError) {
        guard !source.isEmpty else { throw .truncated(what: "magic", offset: 0) }
        let memory = UnsafeMutableRawPointer.allocate(byteCount: source.count, alignment: 64)
        source.withUnsafeBytes { src in
            if let from = src.baseAddress { memory.copyMemory(from: from, byteCount: src.count) }
        }
        let buffer = UnsafeRawBufferPointer(start: memory, count: source.count)
        let parsed: ParsedGGUF
        do {
            parsed = try GGUFParser.parse(buffer)
        } catch {
            memory.deallocate()
            throw error
        }
        self.init(parsed: parsed, bytes: buffer, storage: .heap(memory))
    }

    /// Maps the file at `path` read-only and parses it.
    public convenience init(path: String) throws(GGUFError) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw .io(path: path, message: Self.errnoMessage()) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .io(path: path, message: Self.errnoMessage()) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw .io(path: path, message: "not a regular file") }
        guard let size = Int(exactly: info.st_size), size > 0 else { throw .truncated(what: "magic", offset: 0) }
        guard let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0),
              address != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw .io(path: path, message: "mmap failed: " + Self.errnoMessage())
        }
        let buffer = UnsafeRawBufferPointer(start: address, count: size)
        let parsed: ParsedGGUF
        do {
            parsed = try GGUFParser.parse(buffer)
        } catch {
            munmap(address, size)
            throw error
        }
        self.init(parsed: parsed, bytes: buffer, storage: .mapped(address, size))
    }

    deinit {
        switch storage {
        case .mapped(let address, let size): munmap(address, size)
        case .heap(let memory): memory.deallocate()
        }
    }

    private static func errnoMessage() -> String { String(cString: strerror(errno)) }

    // MARK: Tensors

    public func tensor(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The tensor's bytes inside the file (bounds were validated at init). Valid while `self` is alive.
    /// A tensor info that does not describe a range of this file yields an empty buffer.
    public func data(for tensor: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        let (start, o1) = dataOffset.addingReportingOverflow(tensor.offset)
        let (end, o2) = start.addingReportingOverflow(tensor.byteCount)
        guard !o1, !o2, tensor.offset >= 0, tensor.byteCount >= 0, end <= bytes.count else {
            return UnsafeRawBufferPointer(start: nil, count: 0)
        }
        return UnsafeRawBufferPointer(rebasing: bytes[start..<end])
    }

    // MARK: Typed metadata

    public func string(_ key: String) -> String? { metadata[key]?.stringValue }
    public func int(_ key: String) -> Int? { metadata[key]?.intValue }
    public func float(_ key: String) -> Double? { metadata[key]?.floatValue }
    public func bool(_ key: String) -> Bool? { metadata[key]?.boolValue }

    /// The array when every element is a string.
    public func stringArray(_ key: String) -> [String]? {
        guard let array = metadata[key]?.arrayValue else { return nil }
        var result: [String] = []
        result.reserveCapacity(array.count)
        for v in array {
            guard case .string(let s) = v else { return nil }
            result.append(s)
        }
        return result
    }

    /// The array when every element is an integer that fits in `Int`.
    public func intArray(_ key: String) -> [Int]? {
        guard let array = metadata[key]?.arrayValue else { return nil }
        var result: [Int] = []
        result.reserveCapacity(array.count)
        for v in array {
            guard let i = v.intValue else { return nil }
            result.append(i)
        }
        return result
    }

    /// The array when every element is a float or an integer (converted to `Float`).
    public func floatArray(_ key: String) -> [Float]? {
        guard let array = metadata[key]?.arrayValue else { return nil }
        var result: [Float] = []
        result.reserveCapacity(array.count)
        for v in array {
            switch v {
            case .float32(let f): result.append(f)
            default:
                guard let d = v.floatValue else { return nil }
                result.append(Float(d))
            }
        }
        return result
    }
}
