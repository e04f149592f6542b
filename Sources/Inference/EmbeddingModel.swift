import Foundation
import GGUF
import Kernels
import SafeTensors

/// How one vector is made from a sequence's last hidden states.
public enum EmbeddingPooling: String, Sendable, Equatable {
    /// The mean over every token of the sequence, `[CLS]` and `[SEP]` included (sentence-transformers' `mean_tokens`).
    case mean
    /// The first token's state (`[CLS]`).
    case cls
    /// The last token's state (decoder models used as embedders).
    case last
}

/// A model that turns token sequences into vectors. Calls come from one engine thread at a time.
public protocol EmbeddingModel: AnyObject {
    /// Length of each vector.
    var dimensions: Int { get }
    /// The most tokens one sequence may have (`[CLS]` and `[SEP]` included).
    var maxTokens: Int { get }
    var pooling: EmbeddingPooling { get }
    /// Whether vectors are scaled to unit length.
    var normalizes: Bool { get }
    var memoryBytes: Int { get }
    /// One vector per sequence, in order. The sequences are computed together in one pass per layer.
    func embed(_ sequences: [[Int32]]) throws(InferenceError) -> [[Float]]
}

/// Where an architecture's weights come from: a GGUF file or a Hugging Face folder's safetensors.
protocol WeightSource: AnyObject {
    func has(_ name: String) -> Bool
    /// A 2-D weight of `rows` × `columns` (PyTorch's [out, in], ggml's [columns, rows]).
    func weight(_ name: String, columns: Int, rows: Int) throws(InferenceError) -> WeightMatrix
    /// A 1-D vector of `count` floats.
    func vector(_ name: String, count: Int) throws(InferenceError) -> UnsafePointer<Float>
    var byteCount: Int { get }
}

extension GGUFFile: WeightSource {
    func has(_ name: String) -> Bool { tensor(named: name) != nil }
    var byteCount: Int { fileSize }
}

/// A Hugging Face folder's weights. F32, F16 and BF16 matrices are used in place; vectors that are not F32 (or are
/// misaligned) are converted once into memory this object owns.
final class SafeTensorsWeights: WeightSource, @unchecked Sendable {
    let folder: SafeTensorsFolder
    private var owned: [UnsafeMutablePointer<Float>] = []

    init(_ folder: SafeTensorsFolder) { self.folder = folder }
    deinit { for p in owned { p.deallocate() } }

    var byteCount: Int { folder.byteCount }
    func has(_ name: String) -> Bool { folder.info(name) != nil }

    func weight(_ name: String, columns: Int, rows: Int) throws(InferenceError) -> WeightMatrix {
        guard let (info, pointer) = folder.data(name) else { throw .missingTensor(name) }
        guard info.shape == [rows, columns] else { throw .badTensorShape(tensor: name, expected: [rows, columns], found: info.shape) }
        let type: WeightType
        switch info.type {
        case .f32: type = .f32
        case .f16: type = .f16
        case .bf16: type = .bf16
        default: throw .unsupportedTensorType(tensor: name, type: info.type.rawValue)
        }
        if Int(bitPattern: pointer) % info.type.byteWidth == 0 {
            return WeightMatrix(type: type, rows: rows, columns: columns, base: pointer)
        }
        let copy = UnsafeMutableRawPointer.allocate(byteCount: info.byteCount, alignment: 64)
        copy.copyMemory(from: pointer, byteCount: info.byteCount)
        owned.append(copy.assumingMemoryBound(to: Float.self))
        return WeightMatrix(type: type, rows: rows, columns: columns, base: copy)
    }

    func vector(_ name: String, count: Int) throws(InferenceError) -> UnsafePointer<Float> {
        guard let (info, pointer) = folder.data(name) else { throw .missingTensor(name) }
        guard info.elementCount == count else { throw .badTensorShape(tensor: name, expected: [count], found: info.shape) }
        if info.type == .f32, Int(bitPattern: pointer) % 4 == 0 { return pointer.assumingMemoryBound(to: Float.self) }
        let out = UnsafeMutablePointer<Float>.allocate(capacity: count)
        owned.append(out)
        switch info.type {
        case .f32: for i in 0..<count { out[i] = pointer.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) }
        case .f16: for i in 0..<count { out[i] = Ops.f16ToF32(pointer.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .bf16: for i in 0..<count { out[i] = Float(bitPattern: UInt32(pointer.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16) }
        default: throw .unsupportedTensorType(tensor: name, type: info.type.rawValue)
        }
        return UnsafePointer(out)
    }
}

/// Embedding models from either kind of file.
public enum EmbeddingModels {
    /// Architectures served as embedders from GGUF (`general.architecture`).
    public static let ggufArchitectures = ["bert", "nomic-bert"]

    /// Whether a GGUF file holds an embedding model (rather than a generator).
    public static func isEmbedding(_ file: GGUFFile) -> Bool {
        file.string("general.architecture").map(ggufArchitectures.contains) ?? false
    }

    public static func load(_ file: GGUFFile, options: ModelOptions = ModelOptions()) throws(InferenceError) -> any EmbeddingModel {
        _ = CPUKernels.environmentOverride
        let arch = file.string("general.architecture") ?? ""
        switch arch {
        case "bert": return try BertModel(gguf: file, options: options)
        case "nomic-bert": return try BertModel(nomicBERT: file, options: options)
        default: throw .unsupportedArchitecture(arch)
        }
    }
}
