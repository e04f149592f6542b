import Foundation
import GGUF
import Kernels
import SafeTensors
import Tokenizers

/// A Hugging Face folder of a chat model — `config.json`, `*.safetensors` (sharded with their index), `tokenizer.json`,
/// `tokenizer_config.json` (its `chat_template`) — written as the GGUF file the engine runs, once: the same tensors
/// under llama.cpp's names (query and key rows reordered for llama's rotary layout, as llama.cpp's converter does;
/// Gemma's norm weights with the 1 its models add at run time folded in), the tokenizer as `HuggingFaceBPE` (byte-level)
/// or `HuggingFaceSentencePiece` (byte fallback) reads it, the shape from `config.json`. F32, F16 and BF16 matrices are kept as
/// they are, or quantized to Q8_0 or Q4_K (`quantize`); vectors become F32. The file is written tensor by tensor (never the
/// whole model in memory) and reused while it is newer than every file of the folder.
public enum HuggingFaceConversion {
    /// What `quantize` accepts: keep the folder's float types; 8-bit blocks (half the memory of F16, a quarter of
    /// F32); or Q4_K (4.5 bits per weight) for the matrices whose rows are whole 256-value super-blocks, with the
    /// embeddings and output head, and any matrix that is not, in Q8_0 (as llama.cpp keeps those at higher precision).
    public enum Quantization: String, Sendable, CaseIterable {
        case none, q8_0, q4_k
    }

    /// `config.json` architectures → the engine's.
    public static let chatArchitectures: [String: String] = ["LlamaForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2",
                                                              "Qwen3ForCausalLM": "qwen3", "Gemma3ForCausalLM": "gemma3"]

    public static func isChat(_ url: URL) -> Bool {
        HuggingFaceFolder.architecture(url).map { chatArchitectures[$0] != nil } ?? false
    }

    /// Bumped when the conversion changes, so files converted before are written again.
    static let version = 2

    /// The converted GGUF of `folder`, written first when missing or older than the folder: in `.converted/` beside
    /// the folder (the model directory's hidden corner), else in the temporary directory when that is not writable.
    public static func convertedFile(folder: URL, quantize: Quantization = .none) throws -> String {
        if let path = existingConversion(folder: folder, quantize: quantize) { return path }
        let name = convertedName(folder, quantize)
        var lastError: (any Error)?
        for directory in candidates(folder) {
            do {
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            } catch {
                lastError = error
                continue
            }
            let path = directory.appendingPathComponent(name).path
            do {
                try convert(folder: folder, to: path, quantize: quantize)
                return path
            } catch let error as GGUFError {
                lastError = error   // not writable here: try the next place
                continue
            }
        }
        throw InferenceError.badModelFolder(path: folder.path, reason: "cannot write its converted file: \(lastError.map { "\($0)" } ?? "no place to write")")
    }

    static func convertedName(_ folder: URL, _ quantize: Quantization) -> String {
        folder.standardizedFileURL.lastPathComponent + (quantize == .none ? "" : "-" + quantize.rawValue) + ".gguf"
    }

    static func candidates(_ folder: URL) -> [URL] {
        [folder.standardizedFileURL.deletingLastPathComponent().appendingPathComponent(".converted", isDirectory: true),
         FileManager.default.temporaryDirectory.appendingPathComponent("switchyard-converted", isDirectory: true)]
    }

    /// Removes every converted file of `folder` (when the folder itself is removed).
    public static func removeConversions(folder: URL) {
        for directory in candidates(folder) {
            for quantize in Quantization.allCases {
                try? FileManager.default.removeItem(at: directory.appendingPathComponent(convertedName(folder, quantize)))
            }
        }
    }

    /// The converted file of `folder` when one is there and still current (newer than every file of the folder,
    /// written by this version of the conversion); nil when loading it will convert first.
    public static func existingConversion(folder: URL, quantize: Quantization = .none) -> String? {
        let name = convertedName(folder, quantize)
        let newest = newestModification(folder)
        for directory in candidates(folder) {
            let path = directory.appendingPathComponent(name).path
            if let attributes = try? FileManager.default.attributesOfItem(atPath: path), let date = attributes[.modificationDate] as? Date,
               date >= newest, let file = try? GGUFFile(path: path), file.int("switchyard.conversion_version") == version {
                return path
            }
        }
        return nil
    }

    /// Writes the GGUF for `folder` at `path`.
    public static func convert(folder: URL, to path: String, quantize: Quantization = .none) throws {
        let plan = try Plan(folder: folder, quantize: quantize)
        try plan.writer.write(to: path, pending: plan.pending) { (i: Int) throws(InferenceError) -> [UInt8] in try plan.bytes(i) }
    }

    static func newestModification(_ folder: URL) -> Date {
        var newest = Date.distantPast
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        for name in names where name.hasSuffix(".json") || name.hasSuffix(".safetensors") || name.hasSuffix(".jinja") {
            let path = folder.appendingPathComponent(name).path
            if let date = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date, date > newest { newest = date }
        }
        return newest
    }

    /// Everything the file will hold: metadata, the tensor table, where each tensor comes from.
    struct Plan {
        struct Source {
            let hfName: String
            let rows: Int            // 1 for a vector
            let columns: Int
            /// Query/key rows reordered from Hugging Face's half-split rotary layout to llama's interleaved one.
            let permuteHeads: Int?
            let target: GGMLType
            /// Gemma's norms: the file stores w, the model multiplies by 1 + w (GGUF files store 1 + w).
            var addOne = false
        }
        var writer = GGUFWriter()
        var pending: [GGUFWriter.PendingTensor] = []
        var sources: [Source] = []
        let weights: SafeTensorsFolder
        let path: String

        init(folder: URL, quantize: Quantization) throws {
            path = folder.path
            let config = try HuggingFaceFolder.json(folder.appendingPathComponent("config.json"))
            let hfArchitecture = HuggingFaceFolder.architecture(folder) ?? "?"
            guard let arch = chatArchitectures[hfArchitecture] else {
                throw InferenceError.badModelFolder(path: path, reason: "config.json names architecture \(hfArchitecture); chat folders support \(chatArchitectures.keys.sorted().joined(separator: ", "))")
            }
            let p = path
            func int(_ key: String) throws(InferenceError) -> Int {
                guard let v = (config[key] as? NSNumber)?.intValue, v > 0 else { throw .badModelFolder(path: p, reason: "config.json lacks a positive \(key)") }
                return v
            }
            let dim = try int("hidden_size"), layers = try int("num_hidden_layers"), heads = try int("num_attention_heads")
            let kvHeads = (config["num_key_value_heads"] as? NSNumber)?.intValue ?? heads
            let ffn = try int("intermediate_size"), vocab = try int("vocab_size")
            guard dim % heads == 0, kvHeads > 0, heads % kvHeads == 0 else {
                throw InferenceError.badModelFolder(path: path, reason: "hidden_size \(dim), \(heads) heads and \(kvHeads) key-value heads do not divide evenly")
            }
            let gemma = arch == "gemma3", qwen3 = arch == "qwen3"
            var headDim = dim / heads
            if let hd = (config["head_dim"] as? NSNumber)?.intValue, hd != headDim {
                guard gemma || qwen3, hd > 0, hd % 2 == 0 else {
                    throw InferenceError.badModelFolder(path: path, reason: "head_dim \(hd) differs from hidden_size / num_attention_heads (\(headDim)); not supported for \(hfArchitecture)")
                }
                headDim = hd
            }
            let qDim = heads * headDim
            let activation = config["hidden_activation"] as? String ?? config["hidden_act"] as? String
            if gemma {
                guard activation == nil || ["gelu_pytorch_tanh", "gelu_tanh"].contains(activation!) else {
                    throw InferenceError.badModelFolder(path: path, reason: "hidden_activation \(activation!) is not supported (gelu_pytorch_tanh is)")
                }
            } else if let act = activation, act != "silu" {
                throw InferenceError.badModelFolder(path: path, reason: "hidden_act \(act) is not supported (silu is)")
            }
            if arch == "llama" || qwen3, config["attention_bias"] as? Bool == true || config["mlp_bias"] as? Bool == true {
                throw InferenceError.badModelFolder(path: path, reason: "attention or MLP biases in a \(hfArchitecture) model are not supported")
            }
            do { weights = try SafeTensorsFolder(folder: folder) } catch {
                throw InferenceError.badModelFolder(path: path, reason: error.description)
            }
            let tokenCount: Int
            let tokenizerMetadata: [(key: String, value: GGUFValue)]
            do {
                let root = (try? HuggingFaceFolder.json(folder.appendingPathComponent("tokenizer.json"))) ?? [:]
                if HuggingFaceSentencePiece.applies(to: root) {
                    let t = try HuggingFaceSentencePiece(folder: folder, vocabularySize: vocab)
                    (tokenCount, tokenizerMetadata) = (t.tokens.count, t.ggufMetadata)
                } else {
                    let t = try HuggingFaceBPE(folder: folder, vocabularySize: vocab)
                    (tokenCount, tokenizerMetadata) = (t.tokens.count, t.ggufMetadata)
                }
            } catch {
                throw InferenceError.badModelFolder(path: path, reason: "its tokenizer: \(error)")
            }
            guard tokenCount == vocab else {
                throw InferenceError.badModelFolder(path: path, reason: "tokenizer.json has \(tokenCount) tokens, config.json's vocab_size is \(vocab)")
            }

            writer.set("general.architecture", .string(arch))
            writer.set("general.name", .string(folder.standardizedFileURL.lastPathComponent))
            writer.set("switchyard.conversion_version", .uint32(UInt32(version)))
            writer.set("switchyard.converted_from", .string(hfArchitecture))
            writer.set("\(arch).context_length", .uint32(UInt32(clamping: (config["max_position_embeddings"] as? NSNumber)?.intValue ?? 2048)))
            writer.set("\(arch).embedding_length", .uint32(UInt32(dim)))
            writer.set("\(arch).block_count", .uint32(UInt32(layers)))
            writer.set("\(arch).feed_forward_length", .uint32(UInt32(ffn)))
            writer.set("\(arch).attention.head_count", .uint32(UInt32(heads)))
            writer.set("\(arch).attention.head_count_kv", .uint32(UInt32(kvHeads)))
            writer.set("\(arch).attention.layer_norm_rms_epsilon", .float32(Float((config["rms_norm_eps"] as? NSNumber)?.doubleValue ?? 1e-6)))
            // transformers 4 writes rope_theta and rope_scaling; 5 writes both inside rope_parameters
            let rope = config["rope_parameters"] as? [String: Any]
            let theta = (config["rope_theta"] as? NSNumber ?? rope?["rope_theta"] as? NSNumber)?.doubleValue ?? 10000
            writer.set("\(arch).rope.freq_base", .float32(Float(theta)))
            writer.set("\(arch).rope.dimension_count", .uint32(UInt32(headDim)))
            for (key, value) in tokenizerMetadata { writer.set(key, value) }
            if gemma { try Self.gemma3Metadata(config, into: &writer, arch: arch, layers: layers, headDim: headDim, path: path) }
            if qwen3 {
                writer.set("\(arch).attention.key_length", .uint32(UInt32(headDim)))
                writer.set("\(arch).attention.value_length", .uint32(UInt32(headDim)))
            }

            var ropeFactors: [Float]?
            if !gemma, let scaling = config["rope_scaling"] as? [String: Any] ?? rope {
                let kind = scaling["rope_type"] as? String ?? scaling["type"] as? String ?? "default"
                if kind == "default" {
                    // plain rotary embedding
                } else if kind != "llama3" {
                    throw InferenceError.badModelFolder(path: path, reason: "rope_scaling \(kind) is not supported (llama3 is)")
                } else {
                    ropeFactors = Self.llama3RopeFactors(scaling, headDim: headDim, theta: theta)
                }
            }

            // the tensors, in llama.cpp's order and names
            let tied = weights.info("lm_head.weight") == nil
            func matrix(_ hf: String, _ gguf: String, rows: Int, columns: Int, permute: Int? = nil) throws {
                try add(hf, gguf, rows: rows, columns: columns, permute: permute, quantize: quantize)
            }
            func vector(_ hf: String, _ gguf: String, count: Int, permute: Int? = nil) throws {
                try add(hf, gguf, rows: 1, columns: count, permute: permute, quantize: .none)
            }
            func norm(_ hf: String, _ gguf: String, count: Int) throws {
                try vector(hf, gguf, count: count)
                if gemma { sources[sources.count - 1].addOne = true }
            }
            try matrix("model.embed_tokens.weight", "token_embd.weight", rows: vocab, columns: dim)
            if let ropeFactors {
                let bytes = ropeFactors.withUnsafeBytes { Array($0) }
                sources.append(Source(hfName: "", rows: 1, columns: ropeFactors.count, permuteHeads: nil, target: .f32))
                pending.append(.init(name: "rope_freqs.weight", dimensions: [ropeFactors.count], type: .f32, byteCount: bytes.count))
                constant[sources.count - 1] = bytes
            }
            let permute = arch == "llama"
            for i in 0..<layers where gemma {
                let h = "model.layers.\(i).", g = "blk.\(i)."
                try norm(h + "input_layernorm.weight", g + "attn_norm.weight", count: dim)
                try matrix(h + "self_attn.q_proj.weight", g + "attn_q.weight", rows: qDim, columns: dim)
                try matrix(h + "self_attn.k_proj.weight", g + "attn_k.weight", rows: kvHeads * headDim, columns: dim)
                try matrix(h + "self_attn.v_proj.weight", g + "attn_v.weight", rows: kvHeads * headDim, columns: dim)
                try norm(h + "self_attn.q_norm.weight", g + "attn_q_norm.weight", count: headDim)
                try norm(h + "self_attn.k_norm.weight", g + "attn_k_norm.weight", count: headDim)
                try matrix(h + "self_attn.o_proj.weight", g + "attn_output.weight", rows: dim, columns: qDim)
                try norm(h + "post_attention_layernorm.weight", g + "post_attention_norm.weight", count: dim)
                try norm(h + "pre_feedforward_layernorm.weight", g + "ffn_norm.weight", count: dim)
                try matrix(h + "mlp.gate_proj.weight", g + "ffn_gate.weight", rows: ffn, columns: dim)
                try matrix(h + "mlp.up_proj.weight", g + "ffn_up.weight", rows: ffn, columns: dim)
                try matrix(h + "mlp.down_proj.weight", g + "ffn_down.weight", rows: dim, columns: ffn)
                try norm(h + "post_feedforward_layernorm.weight", g + "post_ffw_norm.weight", count: dim)
            }
            for i in 0..<layers where !gemma {
                let h = "model.layers.\(i).", g = "blk.\(i)."
                try vector(h + "input_layernorm.weight", g + "attn_norm.weight", count: dim)
                try matrix(h + "self_attn.q_proj.weight", g + "attn_q.weight", rows: qDim, columns: dim, permute: permute ? heads : nil)
                try matrix(h + "self_attn.k_proj.weight", g + "attn_k.weight", rows: kvHeads * headDim, columns: dim, permute: permute ? kvHeads : nil)
                try matrix(h + "self_attn.v_proj.weight", g + "attn_v.weight", rows: kvHeads * headDim, columns: dim)
                if arch == "qwen2" {
                    try vector(h + "self_attn.q_proj.bias", g + "attn_q.bias", count: dim)
                    try vector(h + "self_attn.k_proj.bias", g + "attn_k.bias", count: kvHeads * headDim)
                    try vector(h + "self_attn.v_proj.bias", g + "attn_v.bias", count: kvHeads * headDim)
                }
                if qwen3 {
                    try vector(h + "self_attn.q_norm.weight", g + "attn_q_norm.weight", count: headDim)
                    try vector(h + "self_attn.k_norm.weight", g + "attn_k_norm.weight", count: headDim)
                }
                try matrix(h + "self_attn.o_proj.weight", g + "attn_output.weight", rows: dim, columns: qDim)
                try vector(h + "post_attention_layernorm.weight", g + "ffn_norm.weight", count: dim)
                try matrix(h + "mlp.gate_proj.weight", g + "ffn_gate.weight", rows: ffn, columns: dim)
                try matrix(h + "mlp.up_proj.weight", g + "ffn_up.weight", rows: ffn, columns: dim)
                try matrix(h + "mlp.down_proj.weight", g + "ffn_down.weight", rows: dim, columns: ffn)
            }
            try norm("model.norm.weight", "output_norm.weight", count: dim)
            if !tied, config["tie_word_embeddings"] as? Bool != true {
                guard !gemma else { throw InferenceError.badModelFolder(path: path, reason: "an untied lm_head in a Gemma 3 model is not supported") }
                try matrix("lm_head.weight", "output.weight", rows: vocab, columns: dim)
            }
            // a tensor of the folder that has no place here means a model this conversion would get wrong
            let used = Set(sources.map(\.hfName))
            for name in weights.tensorNames where !used.contains(name) && !name.hasSuffix("rotary_emb.inv_freq") && name != "lm_head.weight" {
                throw InferenceError.badModelFolder(path: path, reason: "tensor \(name) is not part of \(hfArchitecture) as the engine runs it")
            }
        }

        /// Bytes of tensors made here rather than read (the rope factors).
        var constant: [Int: [UInt8]] = [:]

        mutating func add(_ hf: String, _ gguf: String, rows: Int, columns: Int, permute: Int?, quantize: Quantization) throws {
            guard let info = weights.info(hf) else { throw InferenceError.missingTensor(hf) }
            let expected = rows == 1 ? [columns] : [rows, columns]
            guard info.shape == expected else { throw InferenceError.badTensorShape(tensor: hf, expected: expected, found: info.shape) }
            let target: GGMLType
            let float = [.f32, .f16, .bf16].contains(info.type)
            let edge = gguf == "token_embd.weight" || gguf == "output.weight"
            switch (rows == 1, info.type, quantize) {
            case (true, .f32, _), (true, .f16, _), (true, .bf16, _): target = .f32
            case (false, _, .q4_k) where float && !edge && columns % 256 == 0: target = .q4_K
            case (false, _, .q8_0) where columns % 32 == 0 && float: target = .q8_0
            case (false, _, .q4_k) where columns % 32 == 0 && float: target = .q8_0
            case (false, .f32, _): target = .f32
            case (false, .f16, _): target = .f16
            case (false, .bf16, _): target = .bf16
            default: throw InferenceError.unsupportedTensorType(tensor: hf, type: info.type.rawValue)
            }
            let rowBytes = switch target {
            case .q8_0: columns / 32 * 34
            case .q4_K: columns / 256 * KQuantize.q4KBlockBytes
            case .f32: columns * 4
            default: columns * 2
            }
            sources.append(Source(hfName: hf, rows: rows, columns: columns, permuteHeads: permute, target: target))
            pending.append(.init(name: gguf, dimensions: rows == 1 ? [columns] : [columns, rows], type: target, byteCount: rowBytes * rows))
        }

        /// The bytes of tensor `i` as the file stores them.
        func bytes(_ i: Int) throws(InferenceError) -> [UInt8] {
            if let bytes = constant[i] { return bytes }
            let s = sources[i]
            guard let (info, pointer) = weights.data(s.hfName) else { throw .missingTensor(s.hfName) }
            let width = info.type.byteWidth
            var out = [UInt8](repeating: 0, count: pending[i].byteCount)
            let outRow = pending[i].byteCount / s.rows
            var floats = [Float](repeating: 0, count: s.columns)
            out.withUnsafeMutableBytes { dst in
                floats.withUnsafeMutableBufferPointer { f in
                    for r in 0..<s.rows {
                        let source = pointer + Self.sourceRow(r, heads: s.permuteHeads, rows: s.rows) * s.columns * width
                        let target = dst.baseAddress! + r * outRow
                        if !s.addOne, (s.target == .f16 && info.type == .f16) || (s.target == .bf16 && info.type == .bf16) || (s.target == .f32 && info.type == .f32) {
                            target.copyMemory(from: source, byteCount: outRow)
                            continue
                        }
                        for c in 0..<s.columns {
                            switch info.type {
                            case .f16: f[c] = Ops.f16ToF32(source.loadUnaligned(fromByteOffset: 2 * c, as: UInt16.self))
                            case .bf16: f[c] = Float(bitPattern: UInt32(source.loadUnaligned(fromByteOffset: 2 * c, as: UInt16.self)) << 16)
                            default: f[c] = source.loadUnaligned(fromByteOffset: 4 * c, as: Float.self)
                            }
                        }
                        if s.addOne { for c in 0..<s.columns { f[c] += 1 } }
                        switch s.target {
                        case .q8_0: Ops.toQ8(f.baseAddress!, target, count: s.columns)
                        case .q4_K: KQuantize.toQ4K(f.baseAddress!, target, count: s.columns)
                        default: target.copyMemory(from: f.baseAddress!, byteCount: s.columns * 4)   // f32
                        }
                    }
                }
            }
            return out
        }

        /// Row `r` of llama's layout comes from this row of Hugging Face's: within each head, the first half of the
        /// rotated dimensions and the second half interleave (x0, x_{d/2}, x1, x_{d/2+1}, …).
        static func sourceRow(_ r: Int, heads: Int?, rows: Int) -> Int {
            guard let heads else { return r }
            let headDim = rows / heads, half = headDim / 2
            let h = r / headDim, within = r % headDim
            return h * headDim + (within % 2) * half + within / 2
        }

        /// Gemma 3's own keys: head size, sliding window, the two rotary bases (transformers 4 writes `rope_theta` and
        /// `rope_local_base_freq`, 5 a `rope_parameters` entry per layer type), after checking that the layer pattern
        /// and attention scale are the ones the engine runs (five sliding layers, then a global one; 1/√head_dim).
        static func gemma3Metadata(_ config: [String: Any], into writer: inout GGUFWriter, arch: String, layers: Int, headDim: Int,
                                   path: String) throws {
            func fail(_ reason: String) -> InferenceError { .badModelFolder(path: path, reason: reason) }
            if let types = config["layer_types"] as? [String] {
                let expected = (0..<layers).map { $0 % Gemma3Model.swaPattern == Gemma3Model.swaPattern - 1 ? "full_attention" : "sliding_attention" }
                guard types == expected else { throw fail("layer_types differ from Gemma 3's pattern (every \(Gemma3Model.swaPattern)th layer global), which the engine runs") }
            } else if let pattern = (config["sliding_window_pattern"] as? NSNumber ?? config["_sliding_window_pattern"] as? NSNumber)?.intValue,
                      pattern != Gemma3Model.swaPattern {
                throw fail("sliding_window_pattern \(pattern) is not supported (\(Gemma3Model.swaPattern) is)")
            }
            if let scalar = (config["query_pre_attn_scalar"] as? NSNumber)?.intValue, scalar != headDim {
                throw fail("query_pre_attn_scalar \(scalar) differs from head_dim \(headDim); not supported yet")
            }
            for key in ["final_logit_softcapping", "attn_logit_softcapping"] where config[key] is NSNumber {
                throw fail("\(key) is not supported in Gemma 3")
            }
            guard let window = (config["sliding_window"] as? NSNumber)?.intValue, window > 0 else { throw fail("config.json lacks a positive sliding_window") }
            let parameters = config["rope_parameters"] as? [String: Any]
            let full = parameters?["full_attention"] as? [String: Any], sliding = parameters?["sliding_attention"] as? [String: Any]
            // the global layers' scaling (linear, factor 8, in Gemma 3 4B and up); the sliding layers' must be plain
            func kind(_ scaling: [String: Any]?) -> String { scaling.map { $0["rope_type"] as? String ?? $0["type"] as? String ?? "default" } ?? "default" }
            guard kind(sliding) == "default" else { throw fail("rope scaling \(kind(sliding)) on sliding-window layers is not supported") }
            let global = full ?? config["rope_scaling"] as? [String: Any]
            switch kind(global) {
            case "default": break
            case "linear":
                guard let factor = (global?["factor"] as? NSNumber)?.doubleValue, factor > 0 else { throw fail("linear rope scaling without a positive factor") }
                writer.set("\(arch).rope.scaling.type", .string("linear"))
                writer.set("\(arch).rope.scaling.factor", .float32(Float(factor)))
            case let other: throw fail("rope scaling \(other) is not supported for Gemma 3 (linear is)")
            }
            let globalTheta = (full?["rope_theta"] as? NSNumber ?? config["rope_theta"] as? NSNumber)?.doubleValue ?? 1_000_000
            let localTheta = (sliding?["rope_theta"] as? NSNumber ?? config["rope_local_base_freq"] as? NSNumber)?.doubleValue ?? 10_000
            writer.set("\(arch).rope.freq_base", .float32(Float(globalTheta)))
            writer.set("\(arch).rope.freq_base_swa", .float32(Float(localTheta)))
            writer.set("\(arch).attention.sliding_window", .uint32(UInt32(window)))
            writer.set("\(arch).attention.key_length", .uint32(UInt32(headDim)))
            writer.set("\(arch).attention.value_length", .uint32(UInt32(headDim)))
        }

        /// Llama 3.1's rotary scaling as a factor per rotated pair dividing its angle (`rope_freqs.weight`).
        static func llama3RopeFactors(_ s: [String: Any], headDim: Int, theta: Double) -> [Float] {
            let factor = (s["factor"] as? NSNumber)?.doubleValue ?? 8
            let low = (s["low_freq_factor"] as? NSNumber)?.doubleValue ?? 1
            let high = (s["high_freq_factor"] as? NSNumber)?.doubleValue ?? 4
            let original = (s["original_max_position_embeddings"] as? NSNumber)?.doubleValue ?? 8192
            let lowWavelength = original / low, highWavelength = original / high
            return stride(from: 0, to: headDim, by: 2).map { i in
                let frequency = 1 / pow(theta, Double(i) / Double(headDim))
                let wavelength = 2 * Double.pi / frequency
                if wavelength < highWavelength { return 1 }
                if wavelength > lowWavelength { return Float(factor) }
                let smooth = (original / wavelength - low) / (high - low)
                return Float(1 / ((1 - smooth) / factor + smooth))
            }
        }
    }
}
