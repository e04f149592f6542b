import Foundation
import GGUF
@testable import Inference
import Kernels
import SafeTensors
import TestSupport
import Testing
import Tokenizers

/// SmolLM2-135M-Instruct as a Hugging Face folder against Hugging Face `transformers` on the same weights
/// (`tools/make_hf_reference.py` made `smollm2-135m-instruct-q4_1/hf/`): transformers read the GGUF, saved the folder
/// and computed log-probabilities in float32. The test writes that folder's weights again from the GGUF (540 MB are
/// not committed) and proves them equal to what transformers saved, tensor by tensor (`tensors.json`), then serves
/// the folder through the engine at the issue's bar: log-probabilities within 0.01, the same top token. The engine
/// keeps keys and values in half precision (its KV cache, as llama.cpp's default); that rounding alone moves
/// transformers' own log-probabilities by up to 0.0086 on these prompts, so the reference is transformers with its
/// keys and values rounded the same way (`top_f16_cache`); the distance to plain float32 is printed.
@Suite(.serialized) struct HuggingFaceChatFolderTests {
    static let hf = "smollm2-135m-instruct-q4_1/hf"

    /// transformers' name for a GGUF tensor of the llama family.
    static func huggingFaceName(_ gguf: String) -> String? {
        switch gguf {
        case "token_embd.weight": return "model.embed_tokens.weight"
        case "output_norm.weight": return "model.norm.weight"
        case "output.weight": return "lm_head.weight"
        default: break
        }
        let parts = gguf.split(separator: ".", maxSplits: 2)
        guard parts.count == 3, parts[0] == "blk" else { return nil }
        let names = ["attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
                     "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm", "ffn_gate": "mlp.gate_proj",
                     "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"]
        let rest = parts[2].split(separator: ".")
        guard let base = names[String(rest[0])] else { return nil }
        return "model.layers.\(parts[1]).\(base).\(rest.dropFirst().joined(separator: "."))"
    }

    /// A folder like the one transformers saved: the fixture's JSON files and `model.safetensors` (F32) written from
    /// the GGUF, query and key rows put back in Hugging Face's half-split order.
    static func makeFolder() throws -> URL {
        let file = try GGUFFile(path: try Reference.smolLM2())
        let heads = try #require(file.int("llama.attention.head_count"))
        let kvHeads = try #require(file.int("llama.attention.head_count_kv"))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("hf-\(UUID().uuidString)/SmolLM2-135M-Instruct")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for name in ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"] {
            try FileManager.default.copyItem(at: Reference.file("\(hf)/\(name)"), to: folder.appendingPathComponent(name))
        }
        var header: [String: Any] = ["__metadata__": ["format": "pt"]]
        var blobs: [[UInt8]] = []
        var offset = 0
        for t in file.tensors.sorted(by: { $0.name < $1.name }) {
            let name = try #require(huggingFaceName(t.name), "\(t.name)")
            let type = try #require(WeightType(rawValue: t.type.rawValue))
            let columns = t.dimensions[0], rows = t.dimensions.count > 1 ? t.dimensions[1] : 1
            let w = WeightMatrix(type: type, rows: rows, columns: columns, base: file.data(for: t).baseAddress!)
            let permuteHeads = t.name.hasSuffix("attn_q.weight") ? heads : t.name.hasSuffix("attn_k.weight") ? kvHeads : nil
            var out = [Float](repeating: 0, count: rows * columns)
            out.withUnsafeMutableBufferPointer { o in
                for hfRow in 0..<rows {
                    var source = hfRow
                    if let h = permuteHeads {
                        let hd = rows / h, half = hd / 2, within = hfRow % hd
                        source = hfRow / hd * hd + 2 * (within % half) + within / half
                    }
                    w.dequantizeRow(source, into: o.baseAddress! + hfRow * columns)
                }
            }
            let bytes = out.withUnsafeBytes { Array($0) }
            header[name] = ["dtype": "F32", "shape": t.dimensions.count > 1 ? [rows, columns] : [columns], "data_offsets": [offset, offset + bytes.count]]
            offset += bytes.count
            blobs.append(bytes)
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var data = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(json)
        for b in blobs { data.append(contentsOf: b) }
        try data.write(to: folder.appendingPathComponent("model.safetensors"))
        return folder
    }

    /// Position `i`'s logits and their log-partition (log Σ exp), so `row[t] - logZ` is token t's log-probability.
    static func row(_ logits: UnsafeBufferPointer<Float>, _ i: Int, vocab: Int) -> (row: [Float], logZ: Double) {
        let row = Array(logits[(i * vocab)..<((i + 1) * vocab)])
        let m = row.max()!
        return (row, Double(m) + log(row.reduce(0.0) { $0 + exp(Double($1 - m)) }))
    }

    static func checksum(_ p: UnsafeRawPointer, count: Int) -> (sum: Double, magnitude: Double) {
        var sum = 0.0, magnitude = 0.0
        for i in 0..<count {
            let x = Double(p.loadUnaligned(fromByteOffset: 4 * i, as: Float.self))
            let w = Double((i * 7919) % 1000 - 500) / 500
            sum += x * w
            magnitude += abs(x * w)
        }
        return (sum, magnitude)
    }

    @Test func theFolderHoldsTheTensorsTransformersSaved() async throws {
        let folder = try await onOwnThread { try Self.makeFolder() }
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        let reference = try #require(try Reference.json("\(Self.hf)/tensors.json") as? [String: [String: Any]])
        let weights = try SafeTensorsFolder(folder: folder)
        #expect(Set(weights.tensorNames) == Set(reference.keys))
        for (name, r) in reference {
            let (info, pointer) = try #require(weights.data(name))
            #expect(info.shape == (r["shape"] as? [Int]), "\(name)")
            let (sum, magnitude) = Self.checksum(pointer, count: info.elementCount)
            let expected = try #require((r["checksum"] as? NSNumber)?.doubleValue)
            // each element may differ by float32 rounding of the dequantization (d·q + m with or without a fused
            // multiply-add): 2^-23 relative, summed without cancellation over the weighted magnitudes
            #expect(abs(sum - expected) <= 1.2e-7 * magnitude + 1e-9, "\(name): \(sum) vs \(expected)")
        }
    }

    @Test func logProbabilitiesMatchTransformers() async throws {
        let folder = try await onOwnThread { try Self.makeFolder() }
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        let loaded = try LoadedModel(path: folder.path, options: ModelOptions(contextLength: 256, threads: 2))
        #expect(loaded.file.string("general.architecture") == "llama")
        #expect(loaded.file.tensor(named: "blk.0.attn_q.weight")?.type == .f32)
        #expect(loaded.chat.source?.contains("<|im_start|>") == true)
        let cases = try #require(try Reference.json("\(Self.hf)/logits.json") as? [[String: Any]])
        #expect(cases.count == 5)
        var worst = 0.0, worstPlain = 0.0
        for c in cases {
            let prompt = try #require(c["prompt"] as? String)
            let ids = try #require(c["ids"] as? [Int]).map(Int32.init)
            #expect(loaded.tokenizer.encode(prompt, parseSpecial: true) == ids, "\(prompt)")
            let top = try #require(c["top_f16_cache"] as? [[[Double]]])
            let plain = try #require(c["top"] as? [[[Double]]])
            let logits = try loaded.model.forward(ids, startingAt: 0, logits: .all)
            let vocab = loaded.model.shape.vocabularySize
            for (i, expected) in top.enumerated() {
                let (row, logZ) = Self.row(logits, i, vocab: vocab)
                let best = row.indices.max { row[$0] < row[$1] }!
                #expect(best == Int(expected[0][0]), "\(prompt) position \(i)")
                for pair in expected {
                    let ours = Double(row[Int(pair[0])]) - logZ
                    worst = max(worst, abs(ours - pair[1]))
                    #expect(abs(ours - pair[1]) < 0.01, "\(prompt) position \(i) token \(Int(pair[0]))")
                }
                for pair in plain[i] { worstPlain = max(worstPlain, abs(Double(row[Int(pair[0])]) - logZ - pair[1])) }
            }
        }
        print("largest log-probability difference against transformers: \(worst) (with its keys and values in half precision), \(worstPlain) (all float32)")
    }

    @Test func quantizedToQ8_0EachWeightIsWithinHalfAStep() async throws {
        let folder = try await onOwnThread { try Self.makeFolder() }
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        let path = folder.deletingLastPathComponent().appendingPathComponent("q8.gguf").path
        try HuggingFaceConversion.convert(folder: folder, to: path, quantize: .q8_0)
        let file = try GGUFFile(path: path)
        let weights = try SafeTensorsFolder(folder: folder)
        let q = try #require(file.tensor(named: "blk.3.ffn_down.weight"))
        #expect(q.type == .q8_0)
        #expect(file.tensor(named: "blk.3.ffn_norm.weight")?.type == .f32)
        let (info, source) = try #require(weights.data("model.layers.3.mlp.down_proj.weight"))
        let rows = info.shape[0], columns = info.shape[1]
        let w = WeightMatrix(type: .q8_0, rows: rows, columns: columns, base: file.data(for: q).baseAddress!)
        var row = [Float](repeating: 0, count: columns)
        for r in stride(from: 0, to: rows, by: 37) {
            row.withUnsafeMutableBufferPointer { w.dequantizeRow(r, into: $0.baseAddress!) }
            for block in 0..<(columns / 32) {
                let original = (0..<32).map { source.loadUnaligned(fromByteOffset: 4 * (r * columns + block * 32 + $0), as: Float.self) }
                // Q8_0 (as ggml defines it): q = round(x / d) with d = amax / 127, d stored in half precision. Rounding
                // errs by half a step; the stored scale is off by up to 2^-11 relative, times |q| ≤ 127 steps
                let step = original.map(abs).max()! / 127
                for j in 0..<32 {
                    #expect(abs(row[block * 32 + j] - original[j]) <= step * (0.5 + 127.0 / 2048) + 1e-12)
                }
            }
        }
    }

    /// `--quantize q4_k`: matrices whose rows are whole 256-value super-blocks (SmolLM2's ffn_down, 1536 columns) in
    /// Q4_K, quantized row by row as `KQuantize` does (checked against llama-quantize in `Q4KQuantizeTests`), the
    /// others (576 columns) and the embeddings in Q8_0; the file loads and answers.
    @Test func quantizedToQ4_KWhereRowsAreWholeSuperBlocks() async throws {
        let folder = try await onOwnThread { try Self.makeFolder() }
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        let path = folder.deletingLastPathComponent().appendingPathComponent("q4k.gguf").path
        // the conversion quantizes every matrix: on a thread of its own, not the cooperative pool's
        try await onOwnThread { try HuggingFaceConversion.convert(folder: folder, to: path, quantize: .q4_k) }
        let file = try GGUFFile(path: path)
        #expect(file.tensor(named: "blk.3.ffn_down.weight")?.type == .q4_K)
        #expect(file.tensor(named: "blk.3.ffn_gate.weight")?.type == .q8_0)
        #expect(file.tensor(named: "blk.3.attn_q.weight")?.type == .q8_0)
        #expect(file.tensor(named: "token_embd.weight")?.type == .q8_0)
        let weights = try SafeTensorsFolder(folder: folder)
        let (info, source) = try #require(weights.data("model.layers.3.mlp.down_proj.weight"))
        let rows = info.shape[0], columns = info.shape[1], rowBytes = columns / 256 * KQuantize.q4KBlockBytes
        let storedInfo = try #require(file.tensor(named: "blk.3.ffn_down.weight"))
        let stored = file.data(for: storedInfo)
        var expected = [UInt8](repeating: 0, count: rowBytes)
        for r in stride(from: 0, to: rows, by: 23) {
            expected.withUnsafeMutableBytes { KQuantize.toQ4K(source.assumingMemoryBound(to: Float.self) + r * columns, $0.baseAddress!, count: columns) }
            #expect(stored[(r * rowBytes)..<((r + 1) * rowBytes)].elementsEqual(expected), "row \(r)")
        }
        let loaded = try LoadedModel(path: path, options: ModelOptions(contextLength: 64, threads: 2))
        let ids = loaded.tokenize("The capital of France is")
        let logits = try loaded.model.forward(ids, startingAt: 0, logits: .last)
        let finite = logits.allSatisfy { $0.isFinite }
        #expect(finite)
    }

    @Test func aFolderOfAnotherArchitectureSaysWhichAreServed() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("hf-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data(#"{"architectures": ["MambaForCausalLM"]}"#.utf8).write(to: folder.appendingPathComponent("config.json"))
        try Data([8, 0, 0, 0, 0, 0, 0, 0] + Array("{}      ".utf8)).write(to: folder.appendingPathComponent("model.safetensors"))
        #expect {
            _ = try LoadedModel(path: folder.path)
        } throws: { error in
            guard case InferenceError.badModelFolder(_, let reason) = error else { return false }
            return reason.contains("MambaForCausalLM") && reason.contains("LlamaForCausalLM")
        }
    }

    /// The tiny folders of `tools/make_hf_tiny_reference.py` (committed whole): Llama with Llama 3.1's rotary scaling in
    /// BF16 shards, Qwen 2 in F16 with an untied output, Qwen 3 in F32 (per-head query/key norms, head size 32
    /// while hidden_size / heads is 16), Gemma 3 in BF16 (norms stored without their +1, head size
    /// apart from hidden_size / heads, sliding-window layers shorter than the prompts, a SentencePiece tokenizer with
    /// byte fallback, scores from `tokenizer.model`); against transformers' float32 log-probabilities at the
    /// issue's bar (within 0.01, the same top token). The tool keeps their attention soft enough that the engine's
    /// half-precision KV cache alone moves transformers' log-probabilities by 0.002-0.004 (it prints the figure).
    @Test(arguments: [("llama3-bf16-sharded", GGMLType.bf16, "llama"), ("qwen2-f16", GGMLType.f16, "qwen2"),
                      ("qwen3-f32", GGMLType.f32, "qwen3"), ("gemma3-bf16", GGMLType.bf16, "gemma3")])
    func tinyFoldersMatchTransformers(_ name: String, _ type: GGMLType, _ architecture: String) throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("hf-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        let folder = scratch.appendingPathComponent(name)
        try FileManager.default.copyItem(at: Reference.file("hf-tiny/\(name)"), to: folder)
        let loaded = try LoadedModel(path: folder.path, options: ModelOptions(contextLength: 256, threads: 2))
        #expect(loaded.file.string("general.architecture") == architecture)
        #expect(loaded.file.tensor(named: "blk.1.ffn_up.weight")?.type == type)
        #expect((loaded.file.tensor(named: "rope_freqs.weight") != nil) == (architecture == "llama"))
        #expect((loaded.file.tensor(named: "output.weight") != nil) == (architecture == "qwen2"))
        let config = try #require(try Reference.json("hf-tiny/\(name)/config.json") as? [String: Any])
        #expect(loaded.model.shape.vocabularySize == config["vocab_size"] as? Int)
        let cases = try #require(try Reference.json("hf-tiny/\(name)/reference.json") as? [[String: Any]])
        #expect(cases.count == (architecture == "gemma3" ? 5 : 3))
        if architecture == "gemma3" {
            #expect(loaded.file.string("tokenizer.ggml.model") == "llama")
            #expect(loaded.file.int("gemma3.attention.key_length") == 32)
            #expect(loaded.file.int("gemma3.attention.sliding_window") == 8)
        }
        var worst = 0.0
        for c in cases {
            let prompt = try #require(c["prompt"] as? String)
            let ids = try #require(c["ids"] as? [Int]).map(Int32.init)
            #expect(loaded.tokenize(prompt) == ids, "\(prompt)")
            let top = try #require(c["top"] as? [[[Double]]])
            let logits = try loaded.model.forward(ids, startingAt: 0, logits: .all)
            let vocab = loaded.model.shape.vocabularySize
            for (i, expected) in top.enumerated() {
                let (row, logZ) = Self.row(logits, i, vocab: vocab)
                for pair in expected {
                    let ours = Double(row[Int(pair[0])]) - logZ
                    worst = max(worst, abs(ours - pair[1]))
                    #expect(abs(ours - pair[1]) < 0.01, "\(name) \(prompt) position \(i) token \(Int(pair[0]))")
                }
                // the same top token, where transformers' first two are further apart than the two tolerances together
                if expected[0][1] - expected[1][1] > 0.02 {
                    let best = row.indices.max { row[$0] < row[$1] }!
                    #expect(best == Int(expected[0][0]), "\(name) \(prompt) position \(i)")
                }
            }
        }
        print("\(name): largest log-probability difference against transformers: \(worst)")
        // the converted file is reused while current, written again once the folder changes, removed with it
        let converted = scratch.appendingPathComponent(".converted/\(name).gguf").path
        #expect(HuggingFaceConversion.existingConversion(folder: folder) == converted)
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(60)],
                                              ofItemAtPath: folder.appendingPathComponent("config.json").path)
        #expect(HuggingFaceConversion.existingConversion(folder: folder) == nil)
        HuggingFaceConversion.removeConversions(folder: folder)
        #expect(!FileManager.default.fileExists(atPath: converted))
    }
}
