import GGUF
@testable import Inference
import Testing

@Suite struct ForwardTests {
    /// A prompt computed as one batch gives the same logits as the same tokens fed one at a time
    /// (KV cache, positions, causal masking and the batched mat-mat path all agree).
    @Test(arguments: [GGMLType.q8_0, .q4_1])
    func batchEqualsSequential(weights: GGMLType) throws {
        let file = try GGUFFile(bytes: TinyModel.bytes(weightType: weights))
        let tokens: [Int32] = [3, 17, 42, 5, 77, 1, 9, 63, 20, 11]
        let batched = try Architectures.load(file, options: ModelOptions(threads: 2))
        let all = Array(try batched.forward(tokens, startingAt: 0, logits: .all))
        let single = try Architectures.load(file, options: ModelOptions(threads: 1, batchSize: 3))
        let vocab = batched.shape.vocabularySize
        for (i, t) in tokens.enumerated() {
            let row = Array(try single.forward([t], startingAt: i, logits: .last))
            for v in 0..<vocab {
                #expect(abs(row[v] - all[i * vocab + v]) < 1e-3 * max(1, abs(row[v])), "token \(i) logit \(v)")
            }
        }
        // chunked prompt (batch size 3 < prompt length) gives the same last logits
        let chunked = Array(try single.forward(tokens, startingAt: 0, logits: .last))
        for v in 0..<vocab { #expect(abs(chunked[v] - all[(tokens.count - 1) * vocab + v]) < 1e-3 * max(1, abs(chunked[v]))) }
    }

    /// Sequences batched together (each in its own KV slot, a prompt chunk of one beside decode steps of others)
    /// give bit-identical logits to each sequence run alone.
    @Test(arguments: [(GGMLType.q8_0, KVCacheType.f16), (.q4_1, .f16), (.q4_1, .q8_0)])
    func batchedSequencesEqualSeparateRuns(weights: GGMLType, kv: KVCacheType) throws {
        // an 8-bit cache needs heads of a multiple of 32 values
        let shape = kv == .q8_0 ? TinyModel.Shape(heads: 2, kvHeads: 1) : TinyModel.Shape()
        let file = try GGUFFile(bytes: TinyModel.bytes(shape, weightType: weights))
        let a: [Int32] = [3, 17, 42, 5, 77, 1], b: [Int32] = [9, 63, 20, 11, 2, 8, 30, 4]
        let alone = try Architectures.load(file, options: ModelOptions(threads: 2, kvCache: kv))
        var expectedA: [[Float]] = [], expectedB: [[Float]] = []
        for (i, t) in a.enumerated() { expectedA.append(Array(try alone.forward([t], startingAt: i, logits: .last))) }
        for (i, t) in b.enumerated() { expectedB.append(Array(try alone.forward([t], startingAt: i, logits: .last))) }

        let batched = try Architectures.load(file, options: ModelOptions(threads: 2, slots: 3, kvCache: kv))
        let vocab = batched.shape.vocabularySize
        // step 1: a's first 4 tokens as a prompt chunk (slot 2) beside b's first token (slot 0)
        var entries = (0..<4).map { BatchEntry(token: a[$0], slot: 2, position: $0, wantsLogits: true) }
        entries.append(BatchEntry(token: b[0], slot: 0, position: 0, wantsLogits: true))
        var out = Array(try batched.forward(batch: entries))
        for i in 0..<4 { #expect(Array(out[(i * vocab)..<((i + 1) * vocab)]) == expectedA[i], "a[\(i)]") }
        #expect(Array(out[(4 * vocab)..<(5 * vocab)]) == expectedB[0], "b[0]")
        // then one token of each per step, in varying order
        var ia = 4, ib = 1
        while ia < a.count || ib < b.count {
            var step: [BatchEntry] = []
            var owners: [(Bool, Int)] = []
            if ib < b.count { step.append(BatchEntry(token: b[ib], slot: 0, position: ib, wantsLogits: true)); owners.append((false, ib)); ib += 1 }
            if ia < a.count { step.append(BatchEntry(token: a[ia], slot: 2, position: ia, wantsLogits: true)); owners.append((true, ia)); ia += 1 }
            out = Array(try batched.forward(batch: step))
            for (k, (isA, i)) in owners.enumerated() {
                #expect(Array(out[(k * vocab)..<((k + 1) * vocab)]) == (isA ? expectedA[i] : expectedB[i]), "\(isA ? "a" : "b")[\(i)]")
            }
        }
        #expect(throws: InferenceError.invalidSlot(3, slots: 3)) { try batched.forward(batch: [BatchEntry(token: 1, slot: 3, position: 0, wantsLogits: true)]) }
    }

    /// `rope_freqs.weight` (Llama 3.1 / 3.2) is read: factors of 1 change nothing, other factors change every
    /// position after the first (position 0 turns by no angle), and a factor list of the wrong length is refused.
    @Test func ropeFrequencyFactorsAreApplied() throws {
        let tokens: [Int32] = [3, 17, 42, 5]
        func logits(_ factors: [Float]?) throws -> [Float] {
            let model = try Architectures.load(try GGUFFile(bytes: TinyModel.bytes(ropeFactors: factors)), options: ModelOptions(threads: 1))
            return Array(try model.forward(tokens, startingAt: 0, logits: .all))
        }
        let plain = try logits(nil)
        let pairs = TinyModel.Shape().dim / TinyModel.Shape().heads / 2
        #expect(try logits([Float](repeating: 1, count: pairs)) == plain)
        let scaled = try logits((0..<pairs).map { $0 < pairs / 2 ? 1 : 8 })
        let vocab = TinyModel.Shape().vocab
        #expect(Array(scaled[0..<vocab]) == Array(plain[0..<vocab]))
        #expect(Array(scaled[vocab...]) != Array(plain[vocab...]))
        #expect(throws: InferenceError.badTensorShape(tensor: "rope_freqs.weight", expected: [pairs], found: [pairs + 1])) {
            _ = try logits([Float](repeating: 1, count: pairs + 1))
        }
    }

    /// A KV memory budget sizes the context per slot: 2 slots × 2 layers × 2 (keys, values) × kvDim 32 × 2 bytes
    /// = 512 bytes per position, so 16 KiB holds 32 positions per slot.
    /// Qwen2 = llama + NeoX rotary + QKV biases: with each head's query/key rows stored in NeoX order and zero
    /// biases it computes the llama model's logits; non-zero biases change them; batching still equals sequential.
    @Test func qwen2IsLlamaWithNeoxRopeAndBiases() throws {
        let tokens: [Int32] = [3, 17, 42, 5, 77, 1, 9]
        let llama = try Architectures.load(try GGUFFile(bytes: TinyModel.bytes()), options: ModelOptions(threads: 1))
        let want = Array(try llama.forward(tokens, startingAt: 0, logits: .all))
        let qwen = try Architectures.load(try GGUFFile(bytes: TinyModel.bytes(architecture: "qwen2", qkvBias: 0, neoxOrder: true)),
                                          options: ModelOptions(threads: 1))
        #expect(qwen.shape.architecture == "qwen2")
        let got = Array(try qwen.forward(tokens, startingAt: 0, logits: .all))
        let worst = zip(want, got).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst < 1e-4, "largest logit difference \(worst)")

        let biased = try Architectures.load(try GGUFFile(bytes: TinyModel.bytes(architecture: "qwen2", qkvBias: 0.5, neoxOrder: true)),
                                            options: ModelOptions(threads: 2))
        let all = Array(try biased.forward(tokens, startingAt: 0, logits: .all))
        #expect(zip(all, got).map { abs($0 - $1) }.max() ?? 0 > 1e-3)
        let single = try Architectures.load(try GGUFFile(bytes: TinyModel.bytes(architecture: "qwen2", qkvBias: 0.5, neoxOrder: true)),
                                            options: ModelOptions(threads: 1, batchSize: 1))
        let vocab = biased.shape.vocabularySize
        for (i, t) in tokens.enumerated() {
            let row = Array(try single.forward([t], startingAt: i, logits: .last))
            #expect(zip(row, all[(i * vocab)..<((i + 1) * vocab)]).allSatisfy { abs($0 - $1) < 1e-3 * max(1, abs($0)) })
        }
        // a qwen2 file without its biases is refused, naming the tensor
        #expect(throws: InferenceError.missingTensor("blk.0.attn_q.bias")) {
            try Architectures.load(try GGUFFile(bytes: TinyModel.bytes(architecture: "qwen2")), options: ModelOptions(threads: 1))
        }
    }

    @Test func kvMemoryBudgetSizesTheContext() throws {
        let file = try GGUFFile(bytes: TinyModel.bytes())
        let m = try Architectures.load(file, options: ModelOptions(slots: 2, kvMemoryBytes: 16 << 10))
        #expect(m.shape.contextLength == 32)
        #expect(throws: InferenceError.self) { try Architectures.load(file, options: ModelOptions(slots: 2, kvMemoryBytes: 1000)) }
    }

    @Test func unsupportedArchitectureIsNamed() throws {
        let file = try GGUFFile(bytes: TinyModel.bytes(architecture: "mamba"))
        #expect(throws: InferenceError.unsupportedArchitecture("mamba")) { try Architectures.load(file) }
        let message = InferenceError.unsupportedArchitecture("mamba").description
        #expect(message.contains("mamba") && message.contains("llama"))
    }

    @Test func contextOverflowAndBadTokensAreErrors() throws {
        let file = try GGUFFile(bytes: TinyModel.bytes())
        let model = try Architectures.load(file, options: ModelOptions(contextLength: 8))
        #expect(throws: InferenceError.contextOverflow(needed: 9, limit: 8)) {
            try model.forward(Array(repeating: 1, count: 9), startingAt: 0, logits: .last)
        }
        #expect(throws: InferenceError.invalidToken(80)) { try model.forward([80], startingAt: 0, logits: .last) }
        #expect(throws: InferenceError.invalidToken(-1)) { try model.forward([-1], startingAt: 0, logits: .last) }
        #expect(throws: InferenceError.emptyPrompt) { try model.forward([], startingAt: 0, logits: .last) }
    }

    @Test func unsupportedWeightTypeIsNamedAtLoad() throws {
        // Layer 0's Q projection stored as Q5_1 (24-byte blocks), a format this engine does not compute with yet.
        let good = try GGUFFile(bytes: TinyModel.bytes())
        var w = GGUFWriter()
        for key in good.metadataKeys { if let v = good.metadata[key] { w.set(key, v) } }
        for t in good.tensors {
            if t.name == "blk.0.attn_q.weight" {
                w.addTensor(name: t.name, dimensions: t.dimensions, type: .q5_1, data: [UInt8](repeating: 0, count: t.elementCount / 32 * 24))
            } else {
                w.addTensor(name: t.name, dimensions: t.dimensions, type: t.type, data: Array(good.data(for: t)))
            }
        }
        let file = try GGUFFile(bytes: w.bytes())
        #expect(throws: InferenceError.unsupportedTensorType(tensor: "blk.0.attn_q.weight", type: "Q5_1")) { try Architectures.load(file) }
    }

    @Test func missingTensorIsNamed() throws {
        // Drop layer 1's feed-forward down projection.
        let good = try GGUFFile(bytes: TinyModel.bytes())
        var w = GGUFWriter()
        for key in good.metadataKeys { if let v = good.metadata[key] { w.set(key, v) } }
        for t in good.tensors where t.name != "blk.1.ffn_down.weight" {
            w.addTensor(name: t.name, dimensions: t.dimensions, type: t.type, data: Array(good.data(for: t)))
        }
        let file = try GGUFFile(bytes: w.bytes())
        #expect(throws: InferenceError.missingTensor("blk.1.ffn_down.weight")) { try Architectures.load(file) }
    }
}
