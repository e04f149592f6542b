import Foundation
import GGUF
@testable import Inference
import Kernels
import Testing
import Tokenizers

/// LoRA adapters on a tiny random llama, against what they mean: `W + s·(α/r)·B·A` merged into the weights.
@Suite struct LoRAAdapterTests {
    static let shape = TinyModel.Shape()
    static let modules = ["q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
                          "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"]

    /// A random adapter in Hugging Face's orientation: A (rank × in), B (out × in Hugging Face's row order).
    struct Adapter {
        var rank = 4
        var alpha: Float = 8
        /// By GGUF name (`blk.0.attn_q.weight`): A row-major rank × in, B row-major out × rank (Hugging Face rows).
        var pairs: [String: (a: [Float], b: [Float], rows: Int, columns: Int)] = [:]

        init(seed: UInt64, rank: Int = 4, alpha: Float = 8, skip: Set<String> = []) {
            self.rank = rank; self.alpha = alpha
            var state = seed
            func rand() -> Float {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return Float(Int64(bitPattern: state >> 11) % 2_000_001 - 1_000_000) / 1_000_000
            }
            let s = LoRAAdapterTests.shape, kvDim = s.dim / s.heads * s.kvHeads
            let dims = ["attn_q": (s.dim, s.dim), "attn_k": (kvDim, s.dim), "attn_v": (kvDim, s.dim), "attn_output": (s.dim, s.dim),
                        "ffn_gate": (s.ffn, s.dim), "ffn_up": (s.ffn, s.dim), "ffn_down": (s.dim, s.ffn)]
            for l in 0..<s.layers {
                for (module, (rows, columns)) in dims.sorted(by: { $0.key < $1.key }) where !skip.contains(module) {
                    let a = (0..<(rank * columns)).map { _ in rand() / Float(columns).squareRoot() }
                    let b = (0..<(rows * rank)).map { _ in rand() * 0.3 }
                    pairs["blk.\(l).\(module).weight"] = (a, b, rows, columns)
                }
            }
        }

        /// Hugging Face's row `r` of a llama query/key matrix is GGUF's row `ggufRow(r)`: within each head the rotary
        /// halves interleave (llama.cpp's `permute`: reshape(heads, 2, hd/2).swapaxes(1, 2)).
        static func ggufRow(ofHF r: Int, rows: Int, heads: Int) -> Int {
            let hd = rows / heads, half = hd / 2
            let h = r / hd, within = r % hd
            return h * hd + (within % half) * 2 + within / half
        }

        /// B with GGUF's row order.
        func ggufB(_ name: String) -> [Float] {
            guard let p = pairs[name] else { return [] }
            let s = LoRAAdapterTests.shape
            let heads = name.hasSuffix("attn_q.weight") ? s.heads : name.hasSuffix("attn_k.weight") ? s.kvHeads : nil
            guard let heads else { return p.b }
            var out = [Float](repeating: 0, count: p.b.count)
            for r in 0..<p.rows {
                let g = Self.ggufRow(ofHF: r, rows: p.rows, heads: heads)
                for j in 0..<rank { out[g * rank + j] = p.b[r * rank + j] }
            }
            return out
        }

        /// A PEFT folder (adapter_config.json, adapter_model.safetensors in F32).
        func writePEFT(to folder: URL, extraConfig: [String: Any] = [:], extraTensor: String? = nil) throws {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            var config: [String: Any] = ["peft_type": "LORA", "r": rank, "lora_alpha": alpha, "task_type": "CAUSAL_LM",
                                         "target_modules": Array(LoRAAdapterTests.modules.keys).sorted(), "use_rslora": false,
                                         "fan_in_fan_out": false, "bias": "none"]
            for (k, v) in extraConfig { config[k] = v }
            try JSONSerialization.data(withJSONObject: config).write(to: folder.appendingPathComponent("adapter_config.json"))
            var tensors: [(String, [Int], [Float])] = []
            for (name, p) in pairs.sorted(by: { $0.key < $1.key }) {
                let parts = name.split(separator: ".")
                let module = LoRAAdapterTests.modules.first { $0.value == parts[2] }!.key
                let group = module.hasSuffix("_proj") && ["q_proj", "k_proj", "v_proj", "o_proj"].contains(module) ? "self_attn" : "mlp"
                let base = "base_model.model.model.layers.\(parts[1]).\(group).\(module)"
                tensors.append((base + ".lora_A.weight", [rank, p.columns], p.a))
                tensors.append((base + ".lora_B.weight", [p.rows, rank], p.b))
            }
            if let extraTensor { tensors.append((extraTensor, [rank, 4], [Float](repeating: 0.1, count: rank * 4))) }
            try SafeTensorsWriting.write(tensors, to: folder.appendingPathComponent("adapter_model.safetensors"))
        }

        /// llama.cpp's GGUF adapter form of the same numbers (F32).
        func ggufBytes(architecture: String = "llama") -> [UInt8] {
            var w = GGUFWriter()
            w.set("general.architecture", .string(architecture))
            w.set("general.type", .string("adapter"))
            w.set("adapter.type", .string("lora"))
            w.set("adapter.lora.alpha", .float32(alpha))
            for (name, p) in pairs.sorted(by: { $0.key < $1.key }) {
                w.addTensor(name: name + ".lora_a", dimensions: [p.columns, rank], type: .f32, data: p.a.withUnsafeBytes { Array($0) })
                w.addTensor(name: name + ".lora_b", dimensions: [rank, p.rows], type: .f32, data: ggufB(name).withUnsafeBytes { Array($0) })
            }
            return w.bytes()
        }
    }

    /// The tiny model with every layer matrix in F32 (dequantized from its Q8_0), plus `scale·(α/r)·B·A` where an
    /// adapter is given — the merged model a LoRA adapter stands for, computed directly.
    static func f32Model(merging adapter: Adapter? = nil, scale: Float = 1) throws -> GGUFFile {
        let q8 = try GGUFFile(bytes: TinyModel.bytes(shape, weightType: .q8_0))
        var w = GGUFWriter()
        for key in q8.metadataKeys { if let v = q8.metadata[key] { w.set(key, v) } }
        for t in q8.tensors {
            let data = q8.data(for: t)
            guard t.name.hasPrefix("blk."), t.dimensions.count == 2, let type = WeightType(rawValue: t.type.rawValue) else {
                w.addTensor(name: t.name, dimensions: t.dimensions, type: t.type, data: Array(data))
                continue
            }
            let columns = t.dimensions[0], rows = t.dimensions[1]
            let m = WeightMatrix(type: type, rows: rows, columns: columns, base: data.baseAddress!)
            var f = [Float](repeating: 0, count: rows * columns)
            f.withUnsafeMutableBufferPointer { p in for r in 0..<rows { m.dequantizeRow(r, into: p.baseAddress! + r * columns) } }
            if let adapter, let pair = adapter.pairs[t.name] {
                let b = adapter.ggufB(t.name), k = adapter.rank, s = scale * adapter.alpha / Float(k)
                for r in 0..<rows {
                    for c in 0..<columns {
                        var d: Double = 0
                        for j in 0..<k { d += Double(b[r * k + j]) * Double(pair.a[j * columns + c]) }
                        f[r * columns + c] += Float(Double(s) * d)
                    }
                }
            }
            w.addTensor(name: t.name, dimensions: t.dimensions, type: .f32, data: f.withUnsafeBytes { Array($0) })
        }
        return try GGUFFile(bytes: w.bytes())
    }

    static func temporaryFolder() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("sy-lora-\(UUID().uuidString)", isDirectory: true)
    }

    static let prompt: [Int32] = [3, 17, 42, 5, 77, 1, 9, 63]

    static func logits(_ model: any LanguageModel, adapters: [AdapterUse] = []) throws -> [Float] {
        Array(try model.forward(prompt, startingAt: 0, logits: .all, adapters: adapters))
    }

    /// The adapter's products equal the merged weights' to f32 rounding: every product here sums at most 96 terms
    /// of magnitude ≤ 1 in f32 (relative error ≤ 96 · 2⁻²⁴ ≈ 6e-6 per product), through two layers, so logits of
    /// magnitude ≲ 10 agree to 1e-3; the adapter itself moves them by far more than that.
    @Test func adapterEqualsItsMergedWeights() throws {
        let adapter = Adapter(seed: 7)
        let folder = Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try adapter.writePEFT(to: folder)
        let baseFile = try Self.f32Model()
        let model = try #require(try Architectures.load(baseFile, options: ModelOptions(threads: 2)) as? DecoderModel)
        try model.attach(try LoRAAdapter.load(path: folder.path, base: baseFile), scale: 0.7)
        let merged = try Architectures.load(try Self.f32Model(merging: adapter, scale: 0.7), options: ModelOptions(threads: 2))

        let base = try Self.logits(model)
        let ours = try Self.logits(model, adapters: [AdapterUse(id: 0, scale: 0.7)])
        let exact = try Self.logits(merged)
        let error = zip(ours, exact).map { abs($0 - $1) }.max() ?? .infinity
        let moved = zip(base, exact).map { abs($0 - $1) }.max() ?? 0
        print("LoRA vs merged weights: max |Δlogit| \(error); the adapter moves logits by up to \(moved)")
        #expect(error <= 1e-3)
        #expect(moved >= 0.05)
        // The base model is untouched by attaching.
        let plain = try Architectures.load(try Self.f32Model(), options: ModelOptions(threads: 2))
        #expect(try Self.logits(plain) == base)
    }

    /// llama.cpp's GGUF form (B rows already in GGUF's order) and the PEFT folder (rows reordered at load) are the
    /// same adapter: identical logits.
    @Test func ggufAndPEFTFormsAreTheSameAdapter() throws {
        let adapter = Adapter(seed: 11, rank: 3, alpha: 6)
        let folder = Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try adapter.writePEFT(to: folder.appendingPathComponent("peft"))
        let ggufPath = folder.appendingPathComponent("adapter.gguf").path
        try Data(adapter.ggufBytes()).write(to: URL(fileURLWithPath: ggufPath))
        let baseFile = try GGUFFile(bytes: TinyModel.bytes(Self.shape, weightType: .q8_0))
        let model = try #require(try Architectures.load(baseFile, options: ModelOptions(threads: 2)) as? DecoderModel)
        try model.attach(try LoRAAdapter.load(path: folder.appendingPathComponent("peft").path, base: baseFile), scale: 1)
        try model.attach(try LoRAAdapter.load(path: ggufPath, base: baseFile), scale: 1)
        #expect(model.adapters.count == 2)
        #expect(model.adapters[0].adapter.tensorCount == 14 && model.adapters[0].adapter.rank == 3)
        let peft = try Self.logits(model, adapters: [AdapterUse(id: 0, scale: 1)])
        let gguf = try Self.logits(model, adapters: [AdapterUse(id: 1, scale: 1)])
        #expect(peft == gguf)
        #expect(peft != (try Self.logits(model)))
        // Two at half scale each: the sum of two half updates of the same adapter is the whole update.
        let halves = try Self.logits(model, adapters: [AdapterUse(id: 0, scale: 0.5), AdapterUse(id: 1, scale: 0.5)])
        #expect(zip(halves, peft).map { abs($0 - $1) }.max()! <= 1e-3)
    }

    /// Sequences with different adapters (and none) batched together generate exactly what each generates alone, and
    /// a prompt cached under one adapter is not reused under another.
    @Test func batchedAdaptersEqualEachAloneAndCachesStayApart() throws {
        let folder = Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Adapter(seed: 3).writePEFT(to: folder.appendingPathComponent("a"))
        try Adapter(seed: 5, rank: 2, alpha: 2, skip: ["ffn_up"]).writePEFT(to: folder.appendingPathComponent("b"))
        let file = try GGUFFile(bytes: TinyModel.bytes(Self.shape, weightType: .q8_0))
        func load(slots: Int) throws -> DecoderModel {
            let m = try #require(try Architectures.load(file, options: ModelOptions(threads: 2, slots: slots)) as? DecoderModel)
            try m.attach(try LoRAAdapter.load(path: folder.appendingPathComponent("a").path, base: file), scale: 4)
            try m.attach(try LoRAAdapter.load(path: folder.appendingPathComponent("b").path, base: file), scale: 0)
            return m
        }
        let tokenizer = CountingTokenizer(vocabularySize: Self.shape.vocab)
        let none = [AdapterUse(id: 0, scale: 0)]
        let mixes: [[AdapterUse]?] = [none, nil, [AdapterUse(id: 1, scale: 2)], [AdapterUse(id: 0, scale: 0.5), AdapterUse(id: 1, scale: 1)]]
        let prompts: [[Int32]] = [[3, 17, 42, 5, 77, 1], [3, 17, 42, 5, 77, 1], [9, 63, 20, 11, 2, 8, 30, 4], [12, 13, 14]]
        let alone = try load(slots: 1)
        var expected: [[Int32]] = []
        for (p, mix) in zip(prompts, mixes) {
            var parameters = GenerationParameters(sampling: .greedy, maxTokens: 10, ignoreEOS: true)
            parameters.adapters = mix
            let loaded = try LoadedModelForTests(model: alone, tokenizer: tokenizer)
            expected.append(try loaded.generate(p, parameters))
        }
        // The same prompt under no adapter and under adapter 0 (the default) must differ, or the test shows nothing.
        print("alone:", expected)
        #expect(expected[0] != expected[1])

        var engine = BatchEngine(model: try load(slots: 2), tokenizer: tokenizer, tokenBudget: 5)
        var tokens: [Int: [Int32]] = [:]
        var cached: [Int: Int] = [:]
        func drain(_ events: [BatchEngine.Event]) {
            for e in events {
                if case .finished(let id, .success(let r)) = e { tokens[id] = r.tokens; cached[id] = r.cachedPromptTokens }
            }
        }
        for (i, (p, mix)) in zip(prompts, mixes).enumerated() {
            var parameters = GenerationParameters(sampling: .greedy, maxTokens: 10, ignoreEOS: true)
            parameters.adapters = mix
            drain(engine.submit(id: i, prompt: p, parameters: parameters))
        }
        while !engine.isIdle { drain(engine.step()) }
        for i in prompts.indices { #expect(tokens[i] == expected[i], "sequence \(i)") }

        // One slot: a prompt's keys and values are reused only by a later prompt under the same adapters.
        var single = BatchEngine(model: try load(slots: 1), tokenizer: tokenizer)
        var reused: [Int] = []
        for (prompt, mix) in [(prompts[0], none), (prompts[0] + [20], nil), (prompts[0] + [20, 21], []), (prompts[0] + [20], none)] {
            var parameters = GenerationParameters(sampling: .greedy, maxTokens: 2, ignoreEOS: true)
            parameters.adapters = mix
            var events = single.submit(id: reused.count, prompt: prompt, parameters: parameters)
            while !single.isIdle { events += single.step() }
            for e in events { if case .finished(_, .success(let r)) = e { reused.append(r.cachedPromptTokens) } }
        }
        #expect(reused == [0, 0, prompts[0].count + 1, 0])
    }

    @Test func requestsForAdaptersTheModelLacksAreRefused() throws {
        let folder = Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Adapter(seed: 3).writePEFT(to: folder)
        let file = try GGUFFile(bytes: TinyModel.bytes(Self.shape, weightType: .q8_0))
        let model = try #require(try Architectures.load(file, options: ModelOptions(threads: 2)) as? DecoderModel)
        #expect(throws: InferenceError.unknownAdapter(0, count: 0)) { try model.resolveAdapters([AdapterUse(id: 0, scale: 1)]) }
        try model.attach(try LoRAAdapter.load(path: folder.path, base: file), scale: 1)
        #expect(throws: InferenceError.unknownAdapter(1, count: 1)) { try model.resolveAdapters([AdapterUse(id: 1, scale: 1)]) }
        #expect(throws: InferenceError.unknownAdapter(-1, count: 1)) {
            try model.forward([1, 2], startingAt: 0, logits: .last, adapters: [AdapterUse(id: -1, scale: 1)])
        }
        #expect(try model.resolveAdapters(nil) == [AdapterUse(id: 0, scale: 1)])
        // New default scales at run time (llama-server's POST /lora-adapters): the listed, the others 0.
        try model.setAdapterScales([AdapterUse(id: 0, scale: 0.5)])
        #expect(try model.resolveAdapters(nil) == [AdapterUse(id: 0, scale: 0.5)] && model.adapters[0].scale == 0.5)
        #expect(throws: InferenceError.unknownAdapter(2, count: 1)) { try model.setAdapterScales([AdapterUse(id: 2, scale: 1)]) }
        try model.setAdapterScales([AdapterUse(id: 0, scale: 1)])
        #expect(try model.resolveAdapters([]) == [AdapterUse(id: 0, scale: 1)])
        #expect(try model.resolveAdapters([AdapterUse(id: 0, scale: 0)]) == [])
        var engine = BatchEngine(model: model, tokenizer: CountingTokenizer(vocabularySize: Self.shape.vocab))
        var parameters = GenerationParameters(sampling: .greedy, maxTokens: 2)
        parameters.adapters = [AdapterUse(id: 3, scale: 1)]
        let events = engine.submit(id: 1, prompt: [1, 2], parameters: parameters)
        guard case .finished(1, .failure(let e))? = events.first else { Issue.record("not refused: \(events)"); return }
        #expect(e == .unknownAdapter(3, count: 1))
    }

    @Test func adaptersThatDoNotFitAreRefusedByName() throws {
        let folder = Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = try GGUFFile(bytes: TinyModel.bytes(Self.shape, weightType: .q8_0))
        func reason(_ path: String) -> String? {
            do { _ = try LoRAAdapter.load(path: path, base: file); return nil } catch {
                if case .badAdapter(_, let r) = error { return r }
                return "\(error)"
            }
        }
        func attachReason(_ adapter: LoRAAdapter) -> String? {
            let model = try? Architectures.load(file, options: ModelOptions(threads: 1)) as? DecoderModel
            do { try model?.attach(adapter, scale: 1); return nil } catch {
                if case .badAdapter(_, let r) = error { return r }
                return "\(error)"
            }
        }
        #expect(reason(folder.appendingPathComponent("missing").path) == "no such file or folder")

        // A model given as an adapter.
        let modelPath = folder.appendingPathComponent("model.gguf")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var w = GGUFWriter()
        w.set("general.architecture", .string("llama")); w.set("general.type", .string("model"))
        try Data(w.bytes()).write(to: modelPath)
        #expect(reason(modelPath.path)?.contains("general.type is 'model'") == true)

        // DoRA, and a module the engine cannot update.
        try Adapter(seed: 1).writePEFT(to: folder.appendingPathComponent("dora"), extraConfig: ["use_dora": true])
        #expect(reason(folder.appendingPathComponent("dora").path) == "DoRA adapters (use_dora) are not supported")
        try Adapter(seed: 1).writePEFT(to: folder.appendingPathComponent("head"), extraTensor: "base_model.model.lm_head.lora_A.weight")
        #expect(reason(folder.appendingPathComponent("head").path)?.contains("lm_head") == true)

        // Made for another shape: A's columns do not match the model's.
        var wide = Adapter(seed: 2, skip: ["attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"])
        for (name, p) in wide.pairs { wide.pairs[name] = (p.a + [Float](repeating: 0, count: wide.rank * 32), p.b, p.rows, p.columns + 32) }
        try wide.writePEFT(to: folder.appendingPathComponent("wide"))
        let loaded = try LoRAAdapter.load(path: folder.appendingPathComponent("wide").path, base: file)
        #expect(attachReason(loaded)?.contains("attn_q.weight' is 64 × 96 in the adapter and 64 × 64 in the model") == true)

        // A value that is not a number; a config without lora_alpha; a pickle instead of safetensors.
        var poisoned = Adapter(seed: 6)
        if var p = poisoned.pairs["blk.1.ffn_up.weight"] { p.b[5] = .nan; poisoned.pairs["blk.1.ffn_up.weight"] = p }
        try poisoned.writePEFT(to: folder.appendingPathComponent("nan"))
        #expect(reason(folder.appendingPathComponent("nan").path) == "'blk.1.ffn_up.weight' holds a value that is not finite")
        try Adapter(seed: 1).writePEFT(to: folder.appendingPathComponent("noalpha"), extraConfig: ["lora_alpha": NSNull()])
        #expect(reason(folder.appendingPathComponent("noalpha").path) == "adapter_config.json lacks lora_alpha")
        let pickle = folder.appendingPathComponent("pickle")
        try Adapter(seed: 1).writePEFT(to: pickle)
        try FileManager.default.moveItem(at: pickle.appendingPathComponent("adapter_model.safetensors"), to: pickle.appendingPathComponent("adapter_model.bin"))
        #expect(reason(pickle.path) == "adapter_model.bin (PyTorch pickle) is not read; save the adapter as safetensors")

        // Another architecture's GGUF adapter.
        let qwen = folder.appendingPathComponent("qwen.gguf")
        try Data(Adapter(seed: 4).ggufBytes(architecture: "qwen2")).write(to: qwen)
        #expect(attachReason(try LoRAAdapter.load(path: qwen.path, base: file)) == "it was made for qwen2, and this model is llama")
    }
}

/// Token i reads "<i>"; nothing ends generation.
struct CountingTokenizer: Tokenizer {
    var vocabularySize: Int
    var bosTokenID: Int32? { nil }
    var eosTokenID: Int32? { nil }
    var addBOS: Bool { false }
    var addEOS: Bool { false }
    func isControl(_ id: Int32) -> Bool { false }
    func encode(_ text: String, parseSpecial: Bool) -> [Int32] { [] }
    func tokenBytes(_ id: Int32) -> [UInt8] { Array("<\(id)>".utf8) }
    func tokenID(for text: String) -> Int32? { nil }
    func isEndOfGeneration(_ id: Int32) -> Bool { false }
}

/// One sequence at a time, with its adapters, as `Generator` runs it.
struct LoadedModelForTests {
    let model: any LanguageModel
    let tokenizer: any Tokenizer
    init(model: any LanguageModel, tokenizer: any Tokenizer) throws { self.model = model; self.tokenizer = tokenizer }
    func generate(_ prompt: [Int32], _ parameters: GenerationParameters) throws -> [Int32] {
        let adapters = try model.resolveAdapters(parameters.adapters)
        var runner = try SequenceRunner(prompt: prompt, parameters: parameters, tokenizer: tokenizer, shape: model.shape)
        var logits = try model.forward(prompt, startingAt: 0, logits: .last, adapters: adapters)
        while runner.finishReason == nil {
            _ = runner.advance(logits)
            guard runner.finishReason == nil, let next = runner.pendingToken else { break }
            logits = try model.forward([next], startingAt: runner.cachedCount, logits: .last, adapters: adapters)
            runner.fed()
        }
        return runner.generated
    }
}

/// Writes a safetensors file of F32 tensors (8-byte length, JSON header, data).
enum SafeTensorsWriting {
    static func write(_ tensors: [(String, [Int], [Float])], to url: URL) throws {
        var header: [String: Any] = [:]
        var data: [UInt8] = []
        for (name, shape, values) in tensors {
            header[name] = ["dtype": "F32", "shape": shape, "data_offsets": [data.count, data.count + 4 * values.count]]
            data += values.withUnsafeBytes { Array($0) }
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var out = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        out.append(contentsOf: data)
        try out.write(to: url)
    }
}
