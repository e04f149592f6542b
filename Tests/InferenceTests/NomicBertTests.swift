import Foundation
import GGUF
@testable import Inference
import TestSupport
import Testing
import Tokenizers

/// nomic-bert (nomic-embed-text's architecture) against llama.cpp: the tiny random-weight GGUF of
/// `tools/make_nomic_reference.py` and `llama-server --embedding --pooling mean`'s vectors for it. The bar is the
/// embedding work's (cosine ≥ 0.9999); llama.cpp multiplies F16 weights by activations rounded to F16, the engine keeps
/// activations in F32, and that rounding alone (2^-11 relative per value) is what separates the two.
@Suite struct NomicBertTests {
    struct Case { let text: String; let ids: [Int32]; let vector: [Float] }

    static func cases() throws -> [Case] {
        let root = try #require(try Reference.json("nomic-bert/reference.json") as? [String: Any])
        return try #require(root["cases"] as? [[String: Any]]).map { c in
            Case(text: try #require(c["text"] as? String), ids: try #require(c["ids"] as? [Int]).map(Int32.init),
                 vector: try #require(c["vector"] as? [Double]).map(Float.init))
        }
    }

    @Test func vectorsMatchLlamaCpp() async throws {
        let file = try GGUFFile(path: Reference.file("nomic-bert/nomic-bert-tiny.gguf").path)
        #expect(EmbeddingModels.isEmbedding(file))
        let model = try EmbeddingModels.load(file, options: ModelOptions(threads: 2))
        #expect(model.dimensions == 64)
        #expect(model.pooling == .mean)
        let tokenizer = try TokenizerFactory.load(from: file)
        let cases = try Self.cases()
        #expect(cases.count == 5)
        var worst = 1.0
        for c in cases {
            #expect(tokenizer.encode(c.text, addSpecial: true, parseSpecial: false) == c.ids, "\(c.text.prefix(30))")
            let v = try #require(try model.embed([c.ids]).first)
            let cosine = EmbeddingReferenceTests.cosine(v, c.vector)
            worst = min(worst, cosine)
            #expect(cosine >= 0.9999, "\(c.text.prefix(30)): \(cosine)")
        }
        // all at once, sequences of different lengths side by side: each its own positions
        let together = try model.embed(cases.map(\.ids))
        for (v, c) in zip(together, cases) {
            #expect(EmbeddingReferenceTests.cosine(v, c.vector) >= 0.9999, "batched: \(c.text.prefix(30))")
        }
        print("nomic-bert: lowest cosine against llama.cpp: \(worst)")
    }

    @Test func aMissingGateIsNamed() throws {
        // the same file without its SwiGLU gate: a load error naming the tensor, not a different model
        let source = try GGUFFile(path: Reference.file("nomic-bert/nomic-bert-tiny.gguf").path)
        var writer = GGUFWriter()
        for key in source.metadataKeys { if let value = source.metadata[key] { writer.set(key, value) } }
        for info in source.tensors where info.name != "blk.1.ffn_gate.weight" {
            writer.addTensor(name: info.name, dimensions: info.dimensions, type: info.type, data: Array(source.data(for: info)))
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("nomic-\(UUID().uuidString).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try writer.write(to: path)
        #expect(throws: InferenceError.missingTensor("blk.1.ffn_gate.weight")) {
            _ = try EmbeddingModels.load(try GGUFFile(path: path))
        }
    }
}
