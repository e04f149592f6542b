import Foundation
import GGUF
import Inference
import ModelStore
import Providers
import TestSupport
import Testing

@Suite struct ChatFolderEmbeddingTests {
    /// A Hugging Face folder of a chat model answers embedding requests as its GGUF form does (last-token pooling
    /// over its conversion, which its chat worker shares).
    @Test func aChatFolderEmbedsFromItsConversion() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sy-host-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let folder = dir.appendingPathComponent("tiny-llama")
        try FileManager.default.copyItem(at: Reference.file("hf-tiny/llama3-bf16-sharded"), to: folder)
        let host = ModelHost(options: .init(directory: dir, threads: 1))
        let worker = try await host.embedder(for: "tiny-llama")
        #expect(!worker.frames)
        let converted = try #require(HuggingFaceConversion.existingConversion(folder: folder))
        let direct = try DecoderEmbedder(try GGUFFile(path: converted), options: ModelOptions(threads: 1))
        let ids = worker.tokenizer.encode("The quick brown fox", parseSpecial: false)
        #expect(!ids.isEmpty)
        #expect(try worker.model.embed([ids]) == (try direct.embed([ids])))
        await host.unloadAll()
    }
}
