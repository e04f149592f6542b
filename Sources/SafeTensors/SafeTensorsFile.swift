import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The element types a safetensors tensor may have that the engine reads (others are refused by name at open).
public enum SafeTensorsType: String, Sendable, Equatable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16"
    /// Integer buffers some checkpoints carry (BERT's `position_ids`); listed, never used as weights.
    case i64 = "I64", i32 = "I32", u8 = "U8", bool = "BOOL"

    public var byteWidth: Int {
        switch self {
        case .f32, .i32: 4
        case .f16, .bf16: 2
        case .i64: 8
        case .u8, .bool: 1
        }
    }
}

public struct SafeTensorInfo: Sendable, Equatable {
    public let name: String
    public let type: SafeTensorsType
    /// Dimensions outermost first, as PyTorch writes them: a linear layer's weight is [out, in] (rows, columns).
    public let shape: [Int]
    /// Absolute offset of the first byte in the file.
    public let offset: Int
    public let byteCount: Int
    public var elementCount: Int { shape.reduce(1, *) }
}

/// One `.safetensors` file: an 8-byte little-endian header length, a JSON header of
/// `{name: {dtype, shape, data_offsets}}` (plus `__metadata__`), then the data. Mapped read-only; tensor data is
/// never copied. Every entry is validated at open: dtype known, offsets inside the data section and matching
/// shape × dtype. Immutable after init.
public final class SafeTensorsFile: @unchecked Sendable {
    public let path: String
    public let tensors: [String: SafeTensorInfo]
    public let metadata: [String: String]
    public let fileSize: Int
    private let base: UnsafeMutableRawPointer
    /// Headers larger than this are refused (the format's own reference reader caps them at 100 MB).
    static let maxHeaderBytes = 100_000_000

    public init(path: String) throws(SafeTensorsError) {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw .io(path: path, message: String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .io(path: path, message: String(cString: strerror(errno))) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw .io(path: path, message: "not a regular file") }
        let size = Int(info.st_size)
        guard size >= 8 else { throw .truncated(path: path, needed: 8, size: size) }
        guard let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), address != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw .io(path: path, message: "mmap failed: " + String(cString: strerror(errno)))
        }
        do {
            (tensors, metadata) = try Self.parse(UnsafeRawBufferPointer(start: address, count: size), path: path)
        } catch {
            munmap(address, size)
            throw error
        }
        base = address
        fileSize = size
    }

    deinit { munmap(base, fileSize) }

    /// The tensor's bytes (validated at open); valid while `self` is alive.
    public func data(_ tensor: SafeTensorInfo) -> UnsafeRawPointer { UnsafeRawPointer(base + tensor.offset) }

    static func parse(_ bytes: UnsafeRawBufferPointer, path: String) throws(SafeTensorsError) -> ([String: SafeTensorInfo], [String: String]) {
        var length: UInt64 = 0
        for i in 0..<8 { length |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard length <= UInt64(maxHeaderBytes) else {
            throw .badHeader(path: path, reason: "the header claims \(length) bytes (at most \(maxHeaderBytes) are read)")
        }
        let headerEnd = 8 + Int(length)
        guard headerEnd <= bytes.count else { throw .truncated(path: path, needed: headerEnd, size: bytes.count) }
        let header = Data(bytes[8..<headerEnd])
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: header) } catch {
            throw .badHeader(path: path, reason: "not JSON (\(error.localizedDescription))")
        }
        guard let object = json as? [String: Any] else { throw .badHeader(path: path, reason: "not a JSON object") }
        let dataSize = bytes.count - headerEnd
        var tensors: [String: SafeTensorInfo] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in object {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else { throw .badHeader(path: path, reason: "__metadata__ is not an object") }
                for (k, v) in m { if let s = v as? String { metadata[k] = s } }
                continue
            }
            guard let entry = value as? [String: Any], let dtypeName = entry["dtype"] as? String,
                  let shapeValues = entry["shape"] as? [Any], let offsets = entry["data_offsets"] as? [Any], offsets.count == 2 else {
                throw .badHeader(path: path, reason: "entry \(name) lacks dtype, shape or a pair of data_offsets")
            }
            guard let type = SafeTensorsType(rawValue: dtypeName) else { throw .unsupportedType(path: path, tensor: name, dtype: dtypeName) }
            var shape: [Int] = []
            var count = 1
            for v in shapeValues {
                guard let n = (v as? NSNumber)?.intValue, n >= 0, n <= 1 << 40 else {
                    throw .badTensor(path: path, tensor: name, reason: "shape \(shapeValues) has a bad dimension")
                }
                let (product, overflow) = count.multipliedReportingOverflow(by: n)
                guard !overflow, product <= 1 << 40 else { throw .badTensor(path: path, tensor: name, reason: "shape \(shapeValues) is too large") }
                count = product
                shape.append(n)
            }
            guard let begin = (offsets[0] as? NSNumber)?.intValue, let end = (offsets[1] as? NSNumber)?.intValue,
                  begin >= 0, begin <= end, end <= dataSize else {
                throw .badTensor(path: path, tensor: name, reason: "data_offsets \(offsets) are outside the \(dataSize)-byte data section")
            }
            guard end - begin == count * type.byteWidth else {
                throw .badTensor(path: path, tensor: name, reason: "\(end - begin) bytes for shape \(shape) of \(dtypeName) (\(count * type.byteWidth) expected)")
            }
            tensors[name] = SafeTensorInfo(name: name, type: type, shape: shape, offset: headerEnd + begin, byteCount: end - begin)
        }
        return (tensors, metadata)
    }
}

/// The weights of a Hugging Face model folder: `model.safetensors`, or the shards `model.safetensors.index.json`
/// names, looked up by tensor name.
public final class SafeTensorsFolder: @unchecked Sendable {
    public let files: [SafeTensorsFile]
    private let index: [String: (file: Int, info: SafeTensorInfo)]

    public init(folder: URL) throws(SafeTensorsError) {
        let indexURL = folder.appendingPathComponent("model.safetensors.index.json")
        var names: [String]
        if FileManager.default.fileExists(atPath: indexURL.path) {
            guard let data = try? Data(contentsOf: indexURL),
                  let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
                  let map = object["weight_map"] as? [String: Any] else {
                throw .badIndex(path: indexURL.path, reason: "not a JSON object with a weight_map")
            }
            names = Array(Set(map.values.compactMap { $0 as? String })).sorted()
            for n in names where n.contains("/") || n.hasPrefix(".") {
                throw .badIndex(path: indexURL.path, reason: "shard name '\(n)' is not a file name in the folder")
            }
        } else {
            names = ["model.safetensors"]
        }
        var files: [SafeTensorsFile] = []
        var index: [String: (Int, SafeTensorInfo)] = [:]
        for name in names {
            let file = try SafeTensorsFile(path: folder.appendingPathComponent(name).path)
            for (t, info) in file.tensors { index[t] = (files.count, info) }
            files.append(file)
        }
        self.files = files
        self.index = index
    }

    public var tensorNames: [String] { index.keys.sorted() }
    public func info(_ name: String) -> SafeTensorInfo? { index[name]?.info }
    public func data(_ name: String) -> (info: SafeTensorInfo, pointer: UnsafeRawPointer)? {
        guard let (f, info) = index[name] else { return nil }
        return (info, files[f].data(info))
    }
    public var byteCount: Int { files.reduce(0) { $0 + $1.fileSize } }
}
