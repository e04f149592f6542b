import Foundation
@testable import Inference
import TestSupport
import Testing
import Tokenizers

/// An XLM-RoBERTa sentence-transformers folder (the architecture of multilingual E5 and paraphrase-multilingual
/// MiniLM; positions counted from the padding id + 1; a Unigram tokenizer) against sentence-transformers' own vectors
/// (`tools/make_unigram_reference.py`): cosine ≥ 0.9999, the embedding work's bar (both float32; they differ by
/// rounding order only).
@Suite struct XLMRobertaFolderTests {
    @Test func vectorsMatchSentenceTransformers() throws {
        let folder = Reference.file("xlmr-tiny")
        #expect(HuggingFaceFolder.isEmbedding(folder))
        let (model, tokenizer) = try HuggingFaceFolder.loadEmbedding(folder, options: ModelOptions(threads: 2))
        #expect(model.dimensions == 64 && model.pooling == .mean && model.normalizes)
        #expect(model.maxTokens == 128)
        let reference = try #require(try Reference.json("xlmr-tiny/reference.json") as? [String: Any])
        var compared = 0
        for c in try #require(reference["cases"] as? [[String: Any]]) {
            guard let vector = c["vector"] as? [Double] else { continue }   // the empty text has none
            let text = try #require(c["text"] as? String)
            let ids = tokenizer.encode(text, addSpecial: true, parseSpecial: true)
            #expect(ids == (try #require(c["ids"] as? [Int])).map(Int32.init))
            let v = try #require(try model.embed([ids]).first)
            #expect(EmbeddingReferenceTests.cosine(v, vector.map(Float.init)) >= 0.9999, "\(text.prefix(30).debugDescription)")
            compared += 1
        }
        #expect(compared == 7)
    }
}
