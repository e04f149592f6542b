import Foundation
import GGUF
import Kernels

/// Errors of model loading and generation.
public enum InferenceError: Error, Sendable, CustomStringConvertible, Equatable {
    case unsupportedArchitecture(String)
    case missingMetadata(key: String)
    case badMetadata(key: String, expected: String)
    case missingTensor(String)
    case unsupportedTensorType(tensor: String, type: String)
    case badTensorShape(tensor: String, expected: [Int], found: [Int])
    case contextOverflow(needed: Int, limit: Int)
    case emptyPrompt
    case invalidToken(Int32)
    case invalidSlot(Int, slots: Int)
    case batchTooLarge(Int, limit: Int)
    /// A Hugging Face model folder that cannot be used (the reason names the file and what is wrong).
    case badModelFolder(path: String, reason: String)
    /// The model makes embeddings and does not generate text.
    case embeddingModel(path: String, architecture: String)
    /// A LoRA adapter that cannot be read or does not fit the model (the reason says which tensor and why).
    case badAdapter(path: String, reason: String)
    /// A request named an adapter the model does not have.
    case unknownAdapter(Int, count: Int)
    case badAdapterScale(Float)

    public var description: String {
        switch self {
        case .unsupportedArchitecture(let a):
            "unsupported model architecture '\(a)' (supported: \(Architectures.names.joined(separator: ", ")))"
        case .missingMetadata(let k): "the model file lacks metadata key '\(k)'"
        case .badMetadata(let k, let e): "metadata key '\(k)' is invalid: expected \(e)"
        case .missingTensor(let t): "the model file lacks tensor '\(t)'"
        case .unsupportedTensorType(let t, let ty):
            "tensor '\(t)' has type \(ty), which this engine cannot compute with yet (supported: \(WeightType.supportedNames))"
        case .badTensorShape(let t, let e, let f): "tensor '\(t)' has shape \(f), expected \(e)"
        case .contextOverflow(let n, let l): "the sequence needs \(n) positions but the context holds \(l)"
        case .emptyPrompt: "the prompt is empty"
        case .invalidToken(let t): "token id \(t) is outside the vocabulary"
        case .invalidSlot(let s, let n): "sequence slot \(s) does not exist (the model has \(n))"
        case .batchTooLarge(let n, let l): "a batch of \(n) tokens is larger than the model's batch size \(l)"
        case .badModelFolder(let p, let r): "the model folder '\(p)' cannot be used: \(r)"
        case .embeddingModel(let p, let a):
            "'\((p as NSString).lastPathComponent)' is an embedding model (\(a)): it does not generate text; serve it and ask /v1/embeddings or /api/embed"
        case .badAdapter(let p, let r): "the adapter '\(p)' cannot be used: \(r)"
        case .unknownAdapter(let id, let n):
            n == 0 ? "adapter \(id) does not exist: this model has no LoRA adapters" : "adapter \(id) does not exist: this model has \(n) (ids 0–\(n - 1))"
        case .badAdapterScale(let s): "adapter scale \(s) is not a finite number"
        }
    }
}

/// Which rows of a batch need logits.
public enum LogitsSelection: Sendable, Equatable {
    case last
    case all
}

/// Shape facts every architecture reports.
public struct ModelShape: Sendable, Equatable {
    public var architecture: String
    public var vocabularySize: Int
    public var embeddingLength: Int
    public var layerCount: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var headDim: Int
    public var feedForwardLength: Int
    public var trainedContextLength: Int
    public var contextLength: Int
}

/// One token of a batch: which sequence (KV slot) it belongs to and its position there.
public struct BatchEntry: Sendable, Equatable {
    public var token: Int32
    public var slot: Int
    public var position: Int
    public var wantsLogits: Bool
    /// The LoRA adapters this token's sequence runs with (none: the base model).
    public var adapters: [AdapterUse]
    public init(token: Int32, slot: Int, position: Int, wantsLogits: Bool, adapters: [AdapterUse] = []) {
        self.token = token; self.slot = slot; self.position = position; self.wantsLogits = wantsLogits; self.adapters = adapters
    }
}

/// A causal language model with KV caches for `slotCount` sequences.
public protocol LanguageModel: AnyObject {
    var shape: ModelShape { get }
    var slotCount: Int { get }
    /// Tokens of several sequences in one pass over the weights (continuous batching). Returns logits
    /// (`vocabularySize` floats each) for the entries that want them, in order. Positions before an entry's in its
    /// slot must already be cached.
    func forward(batch: [BatchEntry]) throws(InferenceError) -> UnsafeBufferPointer<Float>
    /// Runs `tokens` at positions `start..<start+count` and returns logits (`vocabularySize` floats per selected row).
    /// Positions before `start` must already be in the cache; anything after is discarded.
    func forward(_ tokens: [Int32], startingAt start: Int, logits: LogitsSelection, adapters: [AdapterUse]) throws(InferenceError) -> UnsafeBufferPointer<Float>
    /// Bytes of weights and caches this model holds.
    var memoryBytes: Int { get }
    /// The LoRA adapters attached, in id order, with their default scales.
    var adapters: [(adapter: LoRAAdapter, scale: Float)] { get }
    /// The adapters a generation runs with: those `requested` (nil: the default scales), checked.
    func resolveAdapters(_ requested: [AdapterUse]?) throws(InferenceError) -> [AdapterUse]
    /// New default scales (the listed adapters at theirs, the others 0), for generations that choose none.
    func setAdapterScales(_ uses: [AdapterUse]) throws(InferenceError)
}

extension LanguageModel {
    /// The base model alone.
    public func forward(_ tokens: [Int32], startingAt start: Int, logits: LogitsSelection) throws(InferenceError) -> UnsafeBufferPointer<Float> {
        try forward(tokens, startingAt: start, logits: logits, adapters: [])
    }
}

/// How keys and values are kept.
public enum KVCacheType: String, Sendable, CaseIterable {
    /// Half precision (default).
    case f16
    /// 8-bit blocks of 32 with a half-precision scale: about 53% of f16's memory.
    case q8_0 = "q8"
}

/// Options for loading a model.
public struct ModelOptions: Sendable {
    /// KV cache length; nil → min(trained context, 4096).
    public var contextLength: Int?
    /// Compute threads; nil → all cores.
    public var threads: Int?
    /// Largest number of prompt tokens computed in one pass.
    public var batchSize: Int
    /// Scheduling niceness of the compute threads (a server uses a positive value so HTTP stays responsive).
    public var niceness: Int32
    /// Sequences that can be cached at once (each gets `contextLength` positions of KV cache).
    public var slots: Int
    public var kvCache: KVCacheType
    /// Memory for all slots' keys and values; the context per slot shrinks to fit it (nil: no limit).
    public var kvMemoryBytes: Int?
    /// How a Hugging Face folder's float weights are stored once converted (`none` keeps them as they are).
    public var quantize: HuggingFaceConversion.Quantization = .none
    /// LoRA adapters attached at load, ids in this order.
    public var adapters: [AdapterSpec] = []

    public init(contextLength: Int? = nil, threads: Int? = nil, batchSize: Int = 512, niceness: Int32 = 0, slots: Int = 1,
                kvCache: KVCacheType = .f16, kvMemoryBytes: Int? = nil) {
        self.slots = slots
        self.kvCache = kvCache
        self.kvMemoryBytes = kvMemoryBytes
        self.contextLength = contextLength
        self.threads = threads
        self.batchSize = batchSize
        self.niceness = niceness
    }
}

/// A LoRA adapter to attach at load: a GGUF adapter file or a PEFT folder, and the scale generations use unless
/// they choose their own (0: loaded, off by default).
public struct AdapterSpec: Sendable, Equatable, Hashable {
    public var path: String
    public var scale: Float
    public init(path: String, scale: Float = 1) { self.path = path; self.scale = scale }
}

/// Architectures, registered by `general.architecture`.
public enum Architectures {
    typealias Factory = @Sendable (GGUFFile, ModelOptions) throws(InferenceError) -> any LanguageModel
    static let registry: [String: Factory] = [
        "llama": { file, options throws(InferenceError) in try LlamaModel(file: file, options: options) },
        "qwen2": { file, options throws(InferenceError) in try Qwen2.load(file, options: options) },
        "qwen3": { file, options throws(InferenceError) in try Qwen3.load(file, options: options) },
        "qwen3moe": { file, options throws(InferenceError) in try Qwen3MoE.load(file, options: options) },
        "phi3": { file, options throws(InferenceError) in try Phi3.load(file, options: options) },
        "gemma3": { file, options throws(InferenceError) in try Gemma3Model(file: file, options: options) },
        "gemma2": { file, options throws(InferenceError) in try Gemma2Model(file: file, options: options) },
    ]

    public static var names: [String] { registry.keys.sorted() }

    /// Builds the model that `general.architecture` names.
    public static func load(_ file: GGUFFile, options: ModelOptions = ModelOptions()) throws(InferenceError) -> any LanguageModel {
        _ = CPUKernels.environmentOverride
        guard let arch = file.string("general.architecture") else { throw .missingMetadata(key: "general.architecture") }
        guard let factory = registry[arch] else { throw .unsupportedArchitecture(arch) }
        return try factory(file, options)
    }
}

extension GGUFFile {
    func requireInt(_ key: String) throws(InferenceError) -> Int {
        guard let v = int(key) else { throw .missingMetadata(key: key) }
        guard v > 0 else { throw .badMetadata(key: key, expected: "a positive integer") }
        return v
    }

    /// The vocabulary size: the row count of `token_embd.weight`.
    func vocabularySize() throws(InferenceError) -> Int {
        guard let info = tensor(named: "token_embd.weight"), info.dimensions.count == 2 else { throw .missingTensor("token_embd.weight") }
        return info.dimensions[1]
    }

    /// `token_embd.weight` and the output projection: `output.weight`, or the embedding itself when they are tied.
    func embeddingAndOutput(dim: Int, vocab: Int) throws(InferenceError) -> (embedding: WeightMatrix, output: WeightMatrix) {
        let embedding = try weight("token_embd.weight", columns: dim, rows: vocab)
        guard tensor(named: "output.weight") != nil else { return (embedding, embedding) }
        return (embedding, try weight("output.weight", columns: dim, rows: vocab))
    }

    /// A 2-D weight (ggml dims [columns, rows]) checked against the expected shape.
    func weight(_ name: String, columns: Int, rows: Int) throws(InferenceError) -> WeightMatrix {
        try weight(name, dimensions: [columns, rows])
    }

    /// A 3-D weight of `count` experts' matrices (ggml dims [columns, rows, count], as `ffn_up_exps`), each expert's
    /// matrix a view of its rows.
    func expertWeights(_ name: String, columns: Int, rows: Int, count: Int) throws(InferenceError) -> [WeightMatrix] {
        let all = try weight(name, dimensions: [columns, rows, count])
        return (0..<count).map { all.rows($0 * rows, rows) }
    }

    /// A weight whose ggml dims are `expected` ([columns, rows, …]), as one matrix of rows × columns.
    private func weight(_ name: String, dimensions expected: [Int]) throws(InferenceError) -> WeightMatrix {
        guard let info = tensor(named: name) else { throw .missingTensor(name) }
        guard let type = WeightType(rawValue: info.type.rawValue) else {
            throw .unsupportedTensorType(tensor: name, type: info.type.name)
        }
        let dims = info.dimensions.count == 1 ? [info.dimensions[0], 1] : info.dimensions
        let columns = expected[0], rows = expected.dropFirst().reduce(1, *)
        guard dims == expected, columns % type.blockSize == 0, columns % 32 == 0 || type.blockSize == 1 else {
            throw .badTensorShape(tensor: name, expected: expected, found: info.dimensions)
        }
        let data = data(for: info)
        guard let base = data.baseAddress, data.count >= rows * type.rowBytes(columns) else { throw .missingTensor(name) }
        return WeightMatrix(type: type, rows: rows, columns: columns, base: base)
    }

    /// A 1-D f32 vector of `count` elements.
    func vector(_ name: String, count: Int) throws(InferenceError) -> UnsafePointer<Float> {
        guard let info = tensor(named: name) else { throw .missingTensor(name) }
        guard info.type == .f32 else { throw .unsupportedTensorType(tensor: name, type: info.type.name + " (norm weights must be F32)") }
        guard info.elementCount == count else { throw .badTensorShape(tensor: name, expected: [count], found: info.dimensions) }
        let data = data(for: info)
        guard let base = data.baseAddress, data.count >= count * 4 else { throw .missingTensor(name) }
        return base.assumingMemoryBound(to: Float.self)
    }
}
