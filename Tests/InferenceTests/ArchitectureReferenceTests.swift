import Foundation
import GGUF
@testable import Inference
import TestSupport
import Testing

/// Architectures checked against llama.cpp on small random-weight files (`tools/make_arch_reference.py`: weights
/// written by llama.cpp's `gguf` package, Q8_0 by its `llama-quantize`, greedy completions with log-probabilities by
/// its `llama-server`), at the bar the SmolLM2 reference holds (`ReferenceChecks.greedyCompletions`).
@Suite struct ArchitectureReferenceTests {
    struct Reference: Decodable { let banned: [Int32]; let completions: [String: [ReferenceFile.Completion]] }

    /// Qwen 3: per-head query/key RMSNorm before a NeoX rotation, a head size (32) apart from width / heads (16), GQA,
    /// an untied output; in F16 and in Q8_0.
    @Test(arguments: ["qwen3-f16.gguf", "qwen3-q8_0.gguf"])
    func qwen3FollowsLlamaCpp(_ name: String) async throws {
        let folder = TestSupport.Reference.file("arch/qwen3")
        let loaded = try await onOwnThread { try LoadedModel(path: folder.appendingPathComponent(name).path, options: ModelOptions(contextLength: 256, threads: 2)) }
        #expect(loaded.model.shape.architecture == "qwen3")
        #expect(loaded.model.shape.headDim == 32 && loaded.model.shape.embeddingLength == 64)
        let data = try Data(contentsOf: folder.appendingPathComponent("llamacpp.json"))
        let reference = try JSONDecoder().decode(Reference.self, from: data)
        let completions = try #require(reference.completions[name])
        #expect(completions.count == 4)
        #expect(reference.banned.count == 128)
        try await ReferenceChecks.greedyCompletions(loaded, completions, label: name, banned: Set(reference.banned))
    }

    /// Phi-3: one fused query-key-value matrix and one fused gate-up matrix, used as views of their parts; NeoX
    /// rotation; in F16 and in Q8_0.
    @Test(arguments: ["phi3-f16.gguf", "phi3-q8_0.gguf"])
    func phi3FollowsLlamaCpp(_ name: String) async throws {
        let folder = TestSupport.Reference.file("arch/phi3")
        let loaded = try await onOwnThread { try LoadedModel(path: folder.appendingPathComponent(name).path, options: ModelOptions(contextLength: 256, threads: 2)) }
        #expect(loaded.model.shape.architecture == "phi3")
        let reference = try JSONDecoder().decode(Reference.self, from: try Data(contentsOf: folder.appendingPathComponent("llamacpp.json")))
        let completions = try #require(reference.completions[name])
        #expect(completions.count == 4)
        try await ReferenceChecks.greedyCompletions(loaded, completions, label: name, banned: Set(reference.banned))
    }
}
