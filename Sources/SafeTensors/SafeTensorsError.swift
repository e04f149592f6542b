/// Why a safetensors file (or a sharded set of them) could not be read.
public enum SafeTensorsError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Opening, sizing or mapping a file failed.
    case io(path: String, message: String)
    /// The file is shorter than its 8-byte header length, or than the header it announces.
    case truncated(path: String, needed: Int, size: Int)
    /// The header is not a JSON object of tensor entries (the message says what is wrong, and where).
    case badHeader(path: String, reason: String)
    /// A tensor's dtype is not one the engine reads.
    case unsupportedType(path: String, tensor: String, dtype: String)
    /// A tensor's byte range does not lie in the data section, or does not match its shape and dtype.
    case badTensor(path: String, tensor: String, reason: String)
    /// `model.safetensors.index.json` is unreadable or names a shard that is not in the folder.
    case badIndex(path: String, reason: String)

    public var description: String {
        switch self {
        case .io(let path, let message): "safetensors: cannot use '\(path)': \(message)"
        case .truncated(let path, let needed, let size):
            "safetensors: '\(path)' is truncated: \(needed) bytes needed, the file has \(size)"
        case .badHeader(let path, let reason): "safetensors: '\(path)' has a bad header: \(reason)"
        case .unsupportedType(let path, let tensor, let dtype):
            "safetensors: '\(path)': tensor \(tensor) has dtype \(dtype); supported: F32, F16, BF16 (and I64 for ignored buffers)"
        case .badTensor(let path, let tensor, let reason): "safetensors: '\(path)': tensor \(tensor): \(reason)"
        case .badIndex(let path, let reason): "safetensors: '\(path)': \(reason)"
        }
    }
}
