import Foundation
import Inference
import TestSupport
import Testing

/// SmolLM2-135M-Instruct Q4_1 with a random rank-2 LoRA adapter on every projection of every layer, against
/// llama-server with `--lora` on the same files (`Tests/Fixtures/reference/smollm2-135m-instruct-q4_1/lora/`, made by
/// `tools/make_lora_reference.py`): the adapter in llama.cpp's GGUF form (its own `convert_lora_to_gguf.py`) and in
/// the PEFT form it was converted from.
@Suite(.serialized) struct LoRAReferenceTests {
    struct LoRAFile: Decodable {
        struct Case: Decodable { let scale: Double; let completions: [ReferenceFile.Completion] }
        let cases: [Case]
    }
    static let folder = "smollm2-135m-instruct-q4_1/lora"

    nonisolated(unsafe) static var cached: LoadedModel?
    /// Adapter 0: the GGUF form; adapter 1: the PEFT folder. Both off unless a request names them.
    static func model() throws -> LoadedModel {
        if let m = cached { return m }
        var options = ModelOptions(contextLength: 1024)
        options.adapters = [AdapterSpec(path: Reference.file(folder + "/adapter.gguf").path, scale: 0),
                            AdapterSpec(path: Reference.file(folder + "/peft").path, scale: 0)]
        let m = try LoadedModel(path: try Reference.smolLM2(), options: options)
        cached = m
        return m
    }

    static func reference() throws -> LoRAFile {
        let url = Reference.file(folder + "/llamacpp-lora.json")
        guard let data = try? Data(contentsOf: url) else { throw Reference.MissingModel(path: url.path) }
        return try JSONDecoder().decode(LoRAFile.self, from: data)
    }

    /// Greedy continuations with the adapter at scales 1, 0.5 and 0 (llama-server's per-request `lora` field), held
    /// to what the engine holds without adapters (`ReferenceChecks.greedyCompletions`: ids part only at llama.cpp
    /// top-two gaps below 0.4, ≥ 65% of steps within 0.05, mean within 0.05, every step within 0.4).
    @Test(arguments: [1.0, 0.5, 0.0]) func greedyCompletionsMatchLlamaServerWithTheAdapter(scale: Double) async throws {
        let loaded = try Self.model()
        let reference = try #require(try Self.reference().cases.first { $0.scale == scale })
        try await ReferenceChecks.greedyCompletions(loaded, reference.completions, adapters: scale == 0 ? [] : [AdapterUse(id: 0, scale: Float(scale))],
                                              label: "SmolLM2 + LoRA at scale \(scale)")
    }

    /// The adapter changes what the model says: at scale 1 most of llama.cpp's greedy continuations part from the
    /// base model's (so the comparison above is not the base model's passing again).
    @Test func theAdapterChangesTheContinuations() throws {
        let cases = try Self.reference().cases
        let base = try #require(cases.first { $0.scale == 0 }), full = try #require(cases.first { $0.scale == 1 })
        let parted = zip(base.completions, full.completions).filter { $0.greedy_ids != $1.greedy_ids }.count
        #expect(parted >= full.completions.count / 2)
        // And ours with the adapter is not ours without it.
        let loaded = try Self.model()
        let prompt = loaded.tokenize(full.completions[0].prompt)
        let with = Array(try loaded.model.forward(prompt, startingAt: 0, logits: .last, adapters: [AdapterUse(id: 0, scale: 1)]))
        let without = Array(try loaded.model.forward(prompt, startingAt: 0, logits: .last))
        #expect(zip(with, without).map { abs($0 - $1) }.max()! > 0.1)
    }

    /// The PEFT folder read directly (its query and key rows reordered as llama.cpp's converter reorders them) is the
    /// same adapter as the converter's GGUF: F16 values both, so every logit at every position is identical.
    @Test func peftFolderEqualsLlamaCppsConversion() throws {
        let loaded = try Self.model()
        let prompt = loaded.tokenize("The capital of France is Paris, and the capital of Italy is")
        let gguf = Array(try loaded.model.forward(prompt, startingAt: 0, logits: .all, adapters: [AdapterUse(id: 0, scale: 1)]))
        let peft = Array(try loaded.model.forward(prompt, startingAt: 0, logits: .all, adapters: [AdapterUse(id: 1, scale: 1)]))
        #expect(gguf.count == prompt.count * loaded.model.shape.vocabularySize)
        #expect(gguf == peft)
        let described = loaded.model.adapters.map { "\($0.adapter.name): rank \($0.adapter.rank), \($0.adapter.tensorCount) matrices" }
        #expect(described == ["adapter.gguf: rank 2, 210 matrices", "peft: rank 2, 210 matrices"])
    }
}
