import Foundation
import GGUF
@testable import Inference
import TestSupport
import Testing
import Tokenizers

/// all-MiniLM-L6-v2 from its Hugging Face folder against `sentence-transformers`' own vectors for the same sentences
/// (`tools/make_embedding_reference.py` made `minilm/embeddings.json`): cosine ≥ 0.9999 for every sentence — the bar
/// the embedding work set; the two compute the same float32 graph in different orders, so they differ by rounding
/// only (~1e-7 relative per operation).
@Suite(.serialized) struct EmbeddingReferenceTests {
    struct Case { let text: String; let tokens: Int; let vector: [Float] }

    static func cases() throws -> (cases: [Case], maxLength: Int) {
        let root = try #require(try Reference.json("minilm/embeddings.json") as? [String: Any])
        let list = try #require(root["cases"] as? [[String: Any]])
        let cases = try list.map { c in
            Case(text: try #require(c["text"] as? String), tokens: try #require(c["tokens"] as? Int),
                 vector: try #require(c["vector"] as? [Double]).map(Float.init))
        }
        return (cases, try #require(root["max_seq_length"] as? Int))
    }

    static func cosine(_ a: [Float], _ b: [Float]) -> Double {
        var dot = 0.0, na = 0.0, nb = 0.0
        for (x, y) in zip(a, b) { dot += Double(x) * Double(y); na += Double(x) * Double(x); nb += Double(y) * Double(y) }
        return dot / (na.squareRoot() * nb.squareRoot())
    }

    /// sentence-transformers' truncation: the first `max` tokens, the last one replaced by `[SEP]`.
    static func ids(_ text: String, _ tokenizer: any Tokenizer, max: Int) -> [Int32] {
        var ids = tokenizer.encode(text, addSpecial: true, parseSpecial: false)
        if ids.count > max, let sep = tokenizer.eosTokenID { ids = Array(ids.prefix(max)); ids[max - 1] = sep }
        return ids
    }

    @Test func everySentenceMatchesSentenceTransformers() throws {
        let folder = URL(fileURLWithPath: try Reference.miniLM())
        let (model, tokenizer) = try HuggingFaceFolder.loadEmbedding(folder, options: ModelOptions(threads: 2))
        let (cases, maxLength) = try Self.cases()
        #expect(model.dimensions == 384)
        #expect(model.maxTokens == maxLength)
        #expect(model.pooling == .mean)
        #expect(model.normalizes)
        var alone: [[Float]] = []
        for c in cases {
            let ids = Self.ids(c.text, tokenizer, max: model.maxTokens)
            #expect(ids.count == min(c.tokens, maxLength))
            let v = try #require(try model.embed([ids]).first)
            #expect(Self.cosine(v, c.vector) >= 0.9999, "\(c.text.prefix(40).debugDescription)")
            alone.append(v)
        }
        // all together in one pass (sequences of different lengths packed side by side): the same vectors
        let together = try model.embed(cases.map { Self.ids($0.text, tokenizer, max: model.maxTokens) })
        #expect(together.count == cases.count)
        for (i, c) in cases.enumerated() {
            #expect(Self.cosine(together[i], c.vector) >= 0.9999, "batched: \(c.text.prefix(40).debugDescription)")
            #expect(Self.cosine(together[i], alone[i]) >= 0.999999)
        }
    }

    /// The same weights and vocabulary written as llama.cpp's converter writes a BERT GGUF (tensor names `token_embd`,
    /// `blk.N.attn_q` …, `▁`-prefixed initial pieces): the same vectors.
    @Test func theSameModelFromGGUF() throws {
        let folder = URL(fileURLWithPath: try Reference.miniLM())
        let (cases, _) = try Self.cases()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("minilm-\(UUID().uuidString).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try GGUFFromFolder.write(folder, to: path)
        let file = try GGUFFile(path: path)
        #expect(EmbeddingModels.isEmbedding(file))
        let tokenizer = try TokenizerFactory.load(from: file)
        let model = try EmbeddingModels.load(file, options: ModelOptions(threads: 2))
        for c in cases.prefix(8) {
            let ids = Self.ids(c.text, tokenizer, max: 256)
            #expect(ids.count == min(c.tokens, 256), "\(c.text.debugDescription)")
            let v = try #require(try model.embed([ids]).first)
            #expect(Self.cosine(v, c.vector) >= 0.9999, "\(c.text.prefix(40).debugDescription)")
        }
    }

    @Test func badInputsAreRefused() throws {
        let (model, _) = try HuggingFaceFolder.loadEmbedding(URL(fileURLWithPath: try Reference.miniLM()), options: ModelOptions(threads: 1))
        #expect(throws: InferenceError.emptyPrompt) { try model.embed([[]]) }
        #expect(throws: InferenceError.invalidToken(30522)) { try model.embed([[101, 30522, 102]]) }
        #expect(throws: InferenceError.contextOverflow(needed: 257, limit: 256)) { try model.embed([[Int32](repeating: 1000, count: 257)]) }
    }
}

/// Writes a Hugging Face BERT folder as a GGUF file the way llama.cpp's `convert_hf_to_gguf.py` lays one out.
enum GGUFFromFolder {
    static func write(_ folder: URL, to path: String) throws {
        let config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("config.json"))) as? [String: Any])
        func int(_ k: String) throws -> Int { try #require((config[k] as? NSNumber)?.intValue) }
        var w = GGUFWriter()
        w.set("general.architecture", .string("bert"))
        w.set("bert.block_count", .uint32(UInt32(try int("num_hidden_layers"))))
        w.set("bert.context_length", .uint32(UInt32(try int("max_position_embeddings"))))
        w.set("bert.embedding_length", .uint32(UInt32(try int("hidden_size"))))
        w.set("bert.feed_forward_length", .uint32(UInt32(try int("intermediate_size"))))
        w.set("bert.attention.head_count", .uint32(UInt32(try int("num_attention_heads"))))
        w.set("bert.attention.layer_norm_epsilon", .float32(1e-12))
        w.set("bert.pooling_type", .uint32(1))
        // the vocabulary: `##piece` → `piece`, `word` → `▁word`, `[X]` specials kept and typed control
        let tokenizer = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("tokenizer.json"))) as? [String: Any])
        let vocab = try #require((tokenizer["model"] as? [String: Any])?["vocab"] as? [String: Int])
        var texts = [String](repeating: "", count: vocab.count), types = [GGUFValue](repeating: .int32(1), count: vocab.count)
        for (t, id) in vocab {
            let special = t.hasPrefix("[") && t.hasSuffix("]")
            texts[id] = special ? t : t.hasPrefix("##") ? String(t.dropFirst(2)) : "\u{2581}" + t
            if special { types[id] = .int32(3) }
        }
        w.set("tokenizer.ggml.model", .string("bert"))
        w.set("tokenizer.ggml.pre", .string("jina-v2-en"))
        w.set("tokenizer.ggml.tokens", .array(texts.map(GGUFValue.string)))
        w.set("tokenizer.ggml.token_type", .array(types))
        w.set("tokenizer.ggml.bos_token_id", .uint32(101))
        w.set("tokenizer.ggml.eos_token_id", .uint32(102))
        w.set("tokenizer.ggml.unknown_token_id", .uint32(100))
        var names: [(String, String)] = [
            ("embeddings.word_embeddings.weight", "token_embd.weight"), ("embeddings.position_embeddings.weight", "position_embd.weight"),
            ("embeddings.token_type_embeddings.weight", "token_types.weight"), ("embeddings.LayerNorm.weight", "token_embd_norm.weight"),
            ("embeddings.LayerNorm.bias", "token_embd_norm.bias"),
        ]
        let parts: [(String, String)] = [
            ("attention.self.query", "attn_q"), ("attention.self.key", "attn_k"), ("attention.self.value", "attn_v"),
            ("attention.output.dense", "attn_output"), ("attention.output.LayerNorm", "attn_output_norm"),
            ("intermediate.dense", "ffn_up"), ("output.dense", "ffn_down"), ("output.LayerNorm", "layer_output_norm"),
        ]
        for i in 0..<(try int("num_hidden_layers")) {
            for (hf, gg) in parts {
                for suffix in [".weight", ".bias"] { names.append(("encoder.layer.\(i).\(hf)\(suffix)", "blk.\(i).\(gg)\(suffix)")) }
            }
        }
        let weights = try SafeTensorsReader(folder)
        for (hf, gg) in names {
            let (shape, bytes) = try weights.f32(hf)
            w.addTensor(name: gg, dimensions: shape.reversed(), type: .f32, data: bytes)
        }
        try w.write(to: path)
    }
}

/// The raw F32 tensors of a folder, for the conversion above.
struct SafeTensorsReader {
    let header: [String: Any]
    let data: Data
    let start: Int
    init(_ folder: URL) throws {
        data = try Data(contentsOf: folder.appendingPathComponent("model.safetensors"))
        let n = Int(data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        header = try #require(try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) as? [String: Any])
        start = 8 + n
    }
    func f32(_ name: String) throws -> (shape: [Int], bytes: [UInt8]) {
        let e = try #require(header[name] as? [String: Any])
        #expect(e["dtype"] as? String == "F32")
        let offsets = try #require(e["data_offsets"] as? [Int])
        return (try #require(e["shape"] as? [Int]), [UInt8](data.subdata(in: (start + offsets[0])..<(start + offsets[1]))))
    }
}

/// A generating model used as an embedder, as llama-server's `--embedding --pooling last` does (SmolLM2 Q4_1; the
/// vectors in `smollm2-135m-instruct-q4_1/embeddings-last.json`). llama.cpp's own vectors are 0.99958–0.99985 in
/// cosine from an exact float64 pass over the same weights (`python3 tools/exact_forward.py embeddings`): an angle of
/// up to 0.029 rad. Two implementations each that far from exact, in any direction, are within 0.058 rad of each
/// other — a cosine of 0.998 — which is what the test asks.
@Suite struct DecoderEmbeddingTests {
    @Test func lastTokenPoolingMatchesLlamaCpp() throws {
        let file = try GGUFFile(path: try Reference.smolLM2())
        let tokenizer = try TokenizerFactory.load(from: file)
        let embedder = try DecoderEmbedder(file, options: ModelOptions(contextLength: 512, threads: 2))
        #expect(embedder.dimensions == 576)
        #expect(embedder.pooling == .last)
        let root = try #require(try Reference.json("smollm2-135m-instruct-q4_1/embeddings-last.json") as? [String: Any])
        let cases = try #require(root["cases"] as? [[String: Any]])
        #expect(cases.count == 6)
        for c in cases {
            let text = try #require(c["text"] as? String)
            let ids = tokenizer.encode(text, addSpecial: true, parseSpecial: true)
            #expect(ids == (try #require(c["ids"] as? [Int])).map(Int32.init), "\(text)")
            let v = try #require(try embedder.embed([ids]).first)
            let reference = try #require(c["vector"] as? [Double]).map(Float.init)
            #expect(EmbeddingReferenceTests.cosine(v, reference) >= 0.998, "\(text)")
            #expect(abs(v.reduce(0) { $0 + $1 * $1 } - 1) < 1e-4)
        }
    }
}
