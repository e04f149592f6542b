import Foundation
import GGUF
import Kernels
import SafeTensors
import Synchronization

/// One adapter applied to a generation: which of the model's adapters (its index in load order, as llama-server
/// numbers them) and how strongly.
public struct AdapterUse: Sendable, Hashable {
    public var id: Int
    public var scale: Float
    public init(id: Int, scale: Float) { self.id = id; self.scale = scale }
}

/// A LoRA adapter: low-rank updates `W + s·m·B·A` to some of a base model's weight matrices, where `s` is the scale
/// a request (or the configuration) gives and `m` is `α/r` (`α/√r` for rank-stabilized adapters; 1 without `α`).
/// Read from llama.cpp's GGUF adapters (`convert_lora_to_gguf.py`) or from a PEFT folder (`adapter_config.json` +
/// `adapter_model.safetensors`); held in f32, the base model's weights untouched.
public final class LoRAAdapter: @unchecked Sendable {
    /// One updated matrix: `a` (rank × columns) and `b` (rows × rank), f32 matrices in memory this pair owns.
    final class Pair: @unchecked Sendable {
        let a: WeightMatrix
        let b: WeightMatrix
        let multiplier: Float
        private let storage: UnsafeMutableBufferPointer<Float>
        var rank: Int { a.rows }

        /// `fill(a, b)` writes A's rank × columns and B's rows × rank floats.
        init(rank: Int, rows: Int, columns: Int, multiplier: Float,
             fill: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) throws(InferenceError) -> Void) throws(InferenceError) {
            storage = .allocate(capacity: rank * (columns + rows))
            storage.initialize(repeating: 0)
            let base = storage.baseAddress!
            a = WeightMatrix(type: .f32, rows: rank, columns: columns, base: UnsafeRawPointer(base))
            b = WeightMatrix(type: .f32, rows: rows, columns: rank, base: UnsafeRawPointer(base + rank * columns))
            self.multiplier = multiplier
            // every property is set: if `fill` throws, the instance is released and deinit frees the storage
            try fill(base, base + rank * columns)
        }

        deinit { storage.deallocate() }
    }

    /// The file or folder it was read from.
    public let path: String
    /// The architecture it was made for, when it says (GGUF adapters do).
    public let architecture: String?
    /// The updated matrices by their GGUF names (`blk.0.attn_q.weight`, …).
    let pairs: [String: Pair]

    public var name: String { (path as NSString).lastPathComponent }
    public var tensorCount: Int { pairs.count }
    public var rank: Int { pairs.values.map(\.rank).max() ?? 0 }
    /// Bytes of f32 the adapter holds.
    public var memoryBytes: Int { pairs.values.reduce(0) { $0 + 4 * $1.rank * ($1.a.columns + $1.b.rows) } }

    init(path: String, architecture: String?, pairs: [String: Pair]) {
        self.path = path; self.architecture = architecture; self.pairs = pairs
    }

    /// Reads an adapter: a GGUF file, or a PEFT folder. `base` is the model it will be applied to (a PEFT folder's
    /// matrices are renamed and, for llama's query and key projections, their rows reordered as the base's were).
    public static func load(path: String, base: GGUFFile) throws(InferenceError) -> LoRAAdapter {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .badAdapter(path: path, reason: "no such file or folder")
        }
        return isDirectory.boolValue ? try peft(folder: URL(fileURLWithPath: path), base: base) : try gguf(path: path)
    }

    // MARK: GGUF

    /// llama.cpp's adapter file: `general.type` adapter, `adapter.type` lora, `adapter.lora.alpha`, and for each updated
    /// matrix `NAME.lora_a` (ggml dims [columns, rank]) and `NAME.lora_b` ([rank, rows]).
    static func gguf(path: String) throws(InferenceError) -> LoRAAdapter {
        let file: GGUFFile
        do { file = try GGUFFile(path: path) } catch { throw .badAdapter(path: path, reason: "\(error)") }
        if let type = file.string("general.type"), type != "adapter" {
            throw .badAdapter(path: path, reason: "general.type is '\(type)', not 'adapter' (is it a model rather than an adapter?)")
        }
        guard let kind = file.string("adapter.type") else { throw .badAdapter(path: path, reason: "it lacks metadata key 'adapter.type'") }
        guard kind == "lora" else { throw .badAdapter(path: path, reason: "adapter.type '\(kind)' is not supported (lora is)") }
        let alpha = Float(file.float("adapter.lora.alpha") ?? 0)
        var names: Set<String> = []
        for t in file.tensors {
            guard t.name.hasSuffix(".lora_a") || t.name.hasSuffix(".lora_b") else {
                throw .badAdapter(path: path, reason: "tensor '\(t.name)' is neither a .lora_a nor a .lora_b")
            }
            names.insert(String(t.name.dropLast(7)))
        }
        guard !names.isEmpty else { throw .badAdapter(path: path, reason: "it holds no tensors") }
        var pairs: [String: Pair] = [:]
        for name in names.sorted() {
            guard let a = file.tensor(named: name + ".lora_a"), let b = file.tensor(named: name + ".lora_b") else {
                throw .badAdapter(path: path, reason: "'\(name)' has only one of .lora_a and .lora_b")
            }
            guard a.dimensions.count == 2, b.dimensions.count == 2, a.dimensions[1] == b.dimensions[0], a.dimensions[1] > 0,
                  a.dimensions[0] > 0, b.dimensions[1] > 0 else {
                throw .badAdapter(path: path, reason: "'\(name)': lora_a \(a.dimensions) and lora_b \(b.dimensions) do not share a rank")
            }
            let rank = a.dimensions[1], columns = a.dimensions[0], rows = b.dimensions[1]
            func matrix(_ info: GGUFTensorInfo, rows: Int, columns: Int) throws(InferenceError) -> WeightMatrix {
                guard let type = WeightType(rawValue: info.type.rawValue), columns % type.blockSize == 0 else {
                    throw .badAdapter(path: path, reason: "tensor '\(info.name)' has type \(info.type.name), which adapters may not use here")
                }
                let data = file.data(for: info)
                guard let base = data.baseAddress, data.count >= rows * type.rowBytes(columns) else {
                    throw .badAdapter(path: path, reason: "tensor '\(info.name)' is truncated")
                }
                return WeightMatrix(type: type, rows: rows, columns: columns, base: base)
            }
            let am = try matrix(a, rows: rank, columns: columns), bm = try matrix(b, rows: rows, columns: rank)
            pairs[name] = try Pair(rank: rank, rows: rows, columns: columns, multiplier: alpha == 0 ? 1 : alpha / Float(rank)) { (pa, pb) throws(InferenceError) in
                for r in 0..<rank { am.dequantizeRow(r, into: pa + r * columns) }
                for r in 0..<rows { bm.dequantizeRow(r, into: pb + r * rank) }
                try checkFinite(pa, rank * (columns + rows), name: name, path: path)
            }
        }
        return LoRAAdapter(path: path, architecture: file.string("general.architecture"), pairs: pairs)
    }

    // MARK: PEFT

    /// Hugging Face module names → GGUF tensor names (within `blk.N.`).
    static let peftModules: [String: String] = [
        "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
        "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
    ]

    /// A PEFT LoRA folder. `r`, `lora_alpha` and `use_rslora` come from `adapter_config.json`; each matrix's rank
    /// from its tensors (so `rank_pattern` needs nothing more). DoRA, `alpha_pattern`, `fan_in_fan_out` and updates
    /// to the embeddings or the output head are refused by name.
    static func peft(folder: URL, base: GGUFFile) throws(InferenceError) -> LoRAAdapter {
        let path = folder.path
        let config: [String: Any]
        do {
            let data = try Data(contentsOf: folder.appendingPathComponent("adapter_config.json"))
            guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw InferenceError.badAdapter(path: path, reason: "adapter_config.json is not a JSON object")
            }
            config = object
        } catch let e as InferenceError { throw e } catch {
            throw .badAdapter(path: path, reason: "adapter_config.json cannot be read: \(error.localizedDescription)")
        }
        let type = config["peft_type"] as? String ?? "?"
        guard type == "LORA" else { throw .badAdapter(path: path, reason: "peft_type \(type) is not supported (LORA is)") }
        if config["use_dora"] as? Bool == true { throw .badAdapter(path: path, reason: "DoRA adapters (use_dora) are not supported") }
        if config["fan_in_fan_out"] as? Bool == true { throw .badAdapter(path: path, reason: "fan_in_fan_out adapters are not supported") }
        if let p = config["alpha_pattern"] as? [String: Any], !p.isEmpty {
            throw .badAdapter(path: path, reason: "alpha_pattern (a different α per module) is not supported")
        }
        guard let alphaNumber = config["lora_alpha"] as? NSNumber else { throw .badAdapter(path: path, reason: "adapter_config.json lacks lora_alpha") }
        let alpha = alphaNumber.floatValue
        let rsLoRA = config["use_rslora"] as? Bool ?? false
        guard FileManager.default.fileExists(atPath: folder.appendingPathComponent("adapter_model.safetensors").path) else {
            let bin = FileManager.default.fileExists(atPath: folder.appendingPathComponent("adapter_model.bin").path)
            throw .badAdapter(path: path, reason: bin ? "adapter_model.bin (PyTorch pickle) is not read; save the adapter as safetensors"
                                                     : "it has no adapter_model.safetensors")
        }
        let weights: SafeTensorsFile
        do { weights = try SafeTensorsFile(path: folder.appendingPathComponent("adapter_model.safetensors").path) } catch {
            throw .badAdapter(path: path, reason: error.description)
        }
        let arch = base.string("general.architecture") ?? ""
        // llama's GGUF query and key rows are reordered from Hugging Face's (rotary halves interleaved); B's rows follow.
        var permuteHeads: [String: Int] = [:]
        if arch == "llama", let heads = base.int("llama.attention.head_count") {
            permuteHeads["attn_q"] = heads
            permuteHeads["attn_k"] = base.int("llama.attention.head_count_kv") ?? heads
        }
        var grouped: [String: (a: SafeTensorInfo?, b: SafeTensorInfo?)] = [:]
        for (name, info) in weights.tensors {
            guard let (target, isA) = ggufName(peft: name) else {
                throw .badAdapter(path: path, reason: "tensor '\(name)' updates something other than a layer's attention or feed-forward projections, which is not supported")
            }
            if isA { grouped[target, default: (nil, nil)].a = info } else { grouped[target, default: (nil, nil)].b = info }
        }
        guard !grouped.isEmpty else { throw .badAdapter(path: path, reason: "adapter_model.safetensors holds no tensors") }
        var pairs: [String: Pair] = [:]
        for (name, t) in grouped {
            guard let a = t.a, let b = t.b else { throw .badAdapter(path: path, reason: "'\(name)' has only one of lora_A and lora_B") }
            guard a.shape.count == 2, b.shape.count == 2, a.shape[0] == b.shape[1], a.shape[0] > 0, a.shape[1] > 0, b.shape[0] > 0 else {
                throw .badAdapter(path: path, reason: "'\(name)': lora_A \(a.shape) and lora_B \(b.shape) do not share a rank")
            }
            let rank = a.shape[0], columns = a.shape[1], rows = b.shape[0]
            let m = alpha == 0 ? 1 : (rsLoRA ? alpha / Float(rank).squareRoot() : alpha / Float(rank))
            let module = name.split(separator: ".").dropFirst(2).first.map(String.init) ?? ""
            let heads = permuteHeads[module]
            if let heads, rows % heads != 0 || (rows / heads) % 2 != 0 {
                throw .badAdapter(path: path, reason: "'\(name)' has \(rows) rows, not a whole number of \(heads) heads")
            }
            pairs[name] = try Pair(rank: rank, rows: rows, columns: columns, multiplier: m) { (pa, pb) throws(InferenceError) in
                for r in 0..<rank { try readRow(weights, a, row: r, count: columns, into: pa + r * columns, path: path) }
                for r in 0..<rows {
                    let source = HuggingFaceConversion.Plan.sourceRow(r, heads: heads, rows: rows)
                    try readRow(weights, b, row: source, count: rank, into: pb + r * rank, path: path)
                }
                try checkFinite(pa, rank * (columns + rows), name: name, path: path)
            }
        }
        return LoRAAdapter(path: path, architecture: nil, pairs: pairs)
    }

    /// `base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight` → (`blk.3.attn_q.weight`, true).
    static func ggufName(peft name: String) -> (String, Bool)? {
        var rest = Substring(name)
        for prefix in ["base_model.model.", "model."] where rest.hasPrefix(prefix) { rest = rest.dropFirst(prefix.count) }
        guard rest.hasPrefix("layers.") else { return nil }
        let parts = rest.split(separator: ".")
        // layers . N . group . proj . lora_X . weight
        guard parts.count == 6, let layer = Int(parts[1]), parts[5] == "weight",
              let module = peftModules["\(parts[2]).\(parts[3])"] else { return nil }
        switch parts[4] {
        case "lora_A": return ("blk.\(layer).\(module).weight", true)
        case "lora_B": return ("blk.\(layer).\(module).weight", false)
        default: return nil
        }
    }

    private static func readRow(_ file: SafeTensorsFile, _ info: SafeTensorInfo, row: Int, count: Int,
                                into out: UnsafeMutablePointer<Float>, path: String) throws(InferenceError) {
        let p = file.data(info) + row * count * info.type.byteWidth
        switch info.type {
        case .f32: for c in 0..<count { out[c] = p.loadUnaligned(fromByteOffset: 4 * c, as: Float.self) }
        case .f16: for c in 0..<count { out[c] = Ops.f16ToF32(p.loadUnaligned(fromByteOffset: 2 * c, as: UInt16.self)) }
        case .bf16: for c in 0..<count { out[c] = Float(bitPattern: UInt32(p.loadUnaligned(fromByteOffset: 2 * c, as: UInt16.self)) << 16) }
        default: throw .badAdapter(path: path, reason: "tensor '\(info.name)' is \(info.type.rawValue); adapters must be F32, F16 or BF16")
        }
    }

    private static func checkFinite(_ p: UnsafePointer<Float>, _ n: Int, name: String, path: String) throws(InferenceError) {
        for i in 0..<n where !p[i].isFinite { throw .badAdapter(path: path, reason: "'\(name)' holds a value that is not finite") }
    }
}

/// The adapters attached to one model and the scratch their products need.
final class AdapterSet: @unchecked Sendable {
    struct Attached {
        let adapter: LoRAAdapter
        /// The adapter's pairs by the base weight's data address (what `project` is handed).
        let byWeight: [UnsafeRawPointer: LoRAAdapter.Pair]
    }
    private(set) var attached: [Attached] = []
    /// The scales of generations that choose none, by id: set at load, changed at any time (`setDefaults`).
    private let defaults = Mutex<[Float]>([])
    var defaultScales: [Float] { defaults.withLock { $0 } }
    private var scratch: UnsafeMutableBufferPointer<Float>?
    private(set) var input: UnsafeMutablePointer<Float>?
    private(set) var middle: UnsafeMutablePointer<Float>?
    private(set) var output: UnsafeMutablePointer<Float>?
    private var sizes = (input: 0, middle: 0, output: 0)

    var isEmpty: Bool { attached.isEmpty }
    var memoryBytes: Int { attached.reduce(0) { $0 + $1.adapter.memoryBytes } + 4 * (scratch?.count ?? 0) }

    /// Adds `adapter` after checking every matrix it updates against `file`; scratch for `batch` rows of
    /// `maxColumns` inputs and `maxRows` outputs.
    func attach(_ adapter: LoRAAdapter, scale: Float, file: GGUFFile, batch: Int) throws(InferenceError) {
        let arch = file.string("general.architecture")
        if let a = adapter.architecture, let arch, a != arch {
            throw .badAdapter(path: adapter.path, reason: "it was made for \(a), and this model is \(arch)")
        }
        guard scale.isFinite else { throw .badAdapter(path: adapter.path, reason: "scale \(scale) is not a finite number") }
        var byWeight: [UnsafeRawPointer: LoRAAdapter.Pair] = [:]
        var maxColumns = 0, maxRows = 0, maxRank = 0
        for (name, pair) in adapter.pairs {
            guard name.hasPrefix("blk."), let info = file.tensor(named: name) else {
                let what = file.tensor(named: name) == nil ? "which this model does not have" : "which adapters may not change here (only layers' projections)"
                throw .badAdapter(path: adapter.path, reason: "it updates '\(name)', \(what)")
            }
            let dims = info.dimensions
            guard dims.count == 2, dims[0] == pair.a.columns, dims[1] == pair.b.rows else {
                throw .badAdapter(path: adapter.path, reason: "'\(name)' is \(pair.b.rows) × \(pair.a.columns) in the adapter and \(dims.count == 2 ? "\(dims[1]) × \(dims[0])" : "\(dims)") in the model")
            }
            guard let base = file.data(for: info).baseAddress else { throw .missingTensor(name) }
            byWeight[base] = pair
            maxColumns = max(maxColumns, pair.a.columns); maxRows = max(maxRows, pair.b.rows); maxRank = max(maxRank, pair.rank)
        }
        attached.append(Attached(adapter: adapter, byWeight: byWeight))
        defaults.withLock { $0.append(scale) }
        let need = (input: batch * maxColumns, middle: batch * maxRank, output: batch * maxRows)
        if need.input > sizes.input || need.middle > sizes.middle || need.output > sizes.output {
            sizes = (max(sizes.input, need.input), max(sizes.middle, need.middle), max(sizes.output, need.output))
            scratch?.deallocate()
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: sizes.input + sizes.middle + sizes.output)
            buffer.initialize(repeating: 0)
            scratch = buffer
            input = buffer.baseAddress!
            middle = buffer.baseAddress! + sizes.input
            output = buffer.baseAddress! + sizes.input + sizes.middle
        }
    }

    /// The adapters a generation runs with: `requested` (unlisted adapters off; a scale of 0 leaves one out), or the
    /// configured default scales when nil or empty (as llama-server reads an empty `lora` list).
    func resolve(_ requested: [AdapterUse]?) throws(InferenceError) -> [AdapterUse] {
        guard let requested, !requested.isEmpty else {
            return defaultScales.enumerated().compactMap { $1 == 0 ? nil : AdapterUse(id: $0, scale: $1) }
        }
        return try scales(requested).enumerated().compactMap { $1 == 0 ? nil : AdapterUse(id: $0, scale: $1) }
    }

    /// Every adapter's scale under `requested`: the listed ones at theirs, the others 0.
    private func scales(_ requested: [AdapterUse]) throws(InferenceError) -> [Float] {
        var scales = [Float](repeating: 0, count: attached.count)
        for use in requested {
            guard use.id >= 0, use.id < attached.count else { throw .unknownAdapter(use.id, count: attached.count) }
            guard use.scale.isFinite else { throw .badAdapterScale(use.scale) }
            scales[use.id] = use.scale
        }
        return scales
    }

    /// New default scales, as llama-server's `POST /lora-adapters` sets them: the listed adapters at their scales, the
    /// others 0. Generations already running keep the adapters they started with.
    func setDefaults(_ requested: [AdapterUse]) throws(InferenceError) {
        let new = try scales(requested)
        defaults.withLock { $0 = new }
    }

    deinit { scratch?.deallocate() }
}
