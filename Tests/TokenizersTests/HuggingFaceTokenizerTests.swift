import Foundation
import GGUF
import TestSupport
import Testing
import Tokenizers

/// A Hugging Face `tokenizer.json` (all-MiniLM-L6-v2's: BertNormalizer, BertPreTokenizer, WordPiece,
/// TemplateProcessing) against the `tokenizers` library's own ids for llama.cpp's BERT cases and more
/// (`tools/make_embedding_reference.py` made `minilm/tokens.json`).
@Suite struct HuggingFaceTokenizerTests {
    static func load() throws -> any Tokenizer {
        try HuggingFaceTokenizer.load(contentsOf: Reference.file("minilm/tokenizer.json"))
    }

    @Test func everyReferenceCase() throws {
        let tokenizer = try Self.load()
        let cases = try #require(try Reference.json("minilm/tokens.json") as? [[String: Any]])
        #expect(cases.count >= 60)
        for c in cases {
            let text = try #require(c["text"] as? String)
            let ids = try #require(c["ids"] as? [Int]).map(Int32.init)
            #expect(tokenizer.encode(text, addSpecial: true, parseSpecial: false) == ids, "\(text.debugDescription)")
        }
    }

    @Test func framedByClsAndSep() throws {
        let tokenizer = try Self.load()
        #expect(tokenizer.bosTokenID == 101)
        #expect(tokenizer.eosTokenID == 102)
        #expect(tokenizer.vocabularySize == 30522)
        #expect(tokenizer.encode("", addSpecial: true, parseSpecial: false) == [101, 102])
        // control tokens are taken from the text only when asked
        #expect(tokenizer.encode("[SEP]", parseSpecial: true) == [102])
        #expect(tokenizer.encode("[SEP]", parseSpecial: false) != [102])
    }

    /// Hugging Face turns a word of more than `max_input_chars_per_word` (100) characters into one `[UNK]`.
    @Test func aVeryLongWordIsOneUnknown() throws {
        let tokenizer = try Self.load()
        #expect(tokenizer.encode(String(repeating: "a", count: 101), parseSpecial: false) == [100])
        #expect(tokenizer.encode(String(repeating: "a", count: 100), parseSpecial: false).count > 1)
    }

    @Test func otherKindsAreRefusedByName() throws {
        let wordLevel = Data(#"{"model": {"type": "WordLevel", "vocab": {}}}"#.utf8)
        #expect(throws: TokenizerError.unsupportedModel("tokenizer.json model WordLevel")) { try HuggingFaceTokenizer.load(json: wordLevel) }
        let unigram = Data(#"{"model": {"type": "Unigram", "vocab": []}}"#.utf8)
        #expect(throws: TokenizerError.invalidVocabulary("model.unk_id is missing or outside the vocabulary")) { try HuggingFaceTokenizer.load(json: unigram) }
        let bpe = Data(#"{"model": {"type": "BPE", "vocab": {}, "merges": []}}"#.utf8)
        #expect(throws: TokenizerError.unsupportedPreTokenizer("tokenizer.json without a pre_tokenizer (byte-level BPE needs one)")) {
            try HuggingFaceTokenizer.load(json: bpe)
        }
        #expect(throws: TokenizerError.invalidVocabulary("tokenizer.json is not a JSON object")) {
            try HuggingFaceTokenizer.load(json: Data("[1, 2]".utf8))
        }
        let badID = Data(#"{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "a": 7}}}"#.utf8)
        #expect(throws: TokenizerError.invalidVocabulary("model.vocab: \"a\" has id 7, outside 0..<2")) { try HuggingFaceTokenizer.load(json: badID) }
        let noUnknown = Data(#"{"model": {"type": "WordPiece", "vocab": {"a": 0}}}"#.utf8)
        #expect(throws: TokenizerError.invalidVocabulary("the unknown token \"[UNK]\" is not in the vocabulary")) {
            try HuggingFaceTokenizer.load(json: noUnknown)
        }
    }
}

/// SmolLM2's tokenizer.json (as transformers saved it, `tools/make_hf_reference.py`) read as byte-level BPE: the same
/// ids as llama.cpp's for every tokenize case of the model, and the same arrays the model's GGUF holds.
@Suite struct HuggingFaceBPETests {
    static let folder = Reference.file("smollm2-135m-instruct-q4_1/hf")

    @Test func smolLM2sTokenizerJSONTokenizesAsLlamaCpp() throws {
        let bpe = try HuggingFaceBPE(folder: Self.folder, vocabularySize: 49152)
        #expect(bpe.pre == "smollm")
        #expect(bpe.bos == 1 && bpe.eos == 2 && bpe.unknown == nil)
        #expect(!bpe.addBOS)
        #expect(bpe.chatTemplate?.hasPrefix("{% for message in messages %}") == true)
        let tokenizer = try bpe.tokenizer()
        let root = try #require(try Reference.json("smollm2-135m-instruct-q4_1/llamacpp.json") as? [String: Any])
        let cases = try #require(root["tokenize"] as? [[String: Any]])
        #expect(cases.count == 30)
        for c in cases {
            let text = try #require(c["text"] as? String)
            #expect(tokenizer.encode(text, parseSpecial: true) == (try #require(c["ids"] as? [Int])).map(Int32.init), "\(text)")
        }
        #expect(tokenizer.isEndOfGeneration(2))
    }

    @Test func theArraysAreTheGGUFsOwn() throws {
        let file = try GGUFFile(path: try Reference.smolLM2())
        let bpe = try HuggingFaceBPE(folder: Self.folder, vocabularySize: 49152)
        #expect(bpe.tokens == file.stringArray("tokenizer.ggml.tokens"))
        #expect(bpe.merges == file.stringArray("tokenizer.ggml.merges"))
        #expect(bpe.tokenTypes == file.intArray("tokenizer.ggml.token_type"))
        #expect(bpe.pre == file.string("tokenizer.ggml.pre"))
    }

    static func json(pre: Any?, model: [String: Any] = [:], normalizer: Any? = nil) -> [String: Any] {
        var m: [String: Any] = ["type": "BPE", "vocab": ["a": 0, "b": 1, "ab": 2], "merges": [["a", "b"]]]
        for (k, v) in model { m[k] = v }
        var root: [String: Any] = ["model": m, "added_tokens": [["id": 3, "content": "<s>", "special": true]]]
        if let pre { root["pre_tokenizer"] = pre }
        if let normalizer { root["normalizer"] = normalizer }
        return root
    }

    @Test func mergesAsPairsAndAddedTokens() throws {
        let bpe = try HuggingFaceBPE(tokenizer: Self.json(pre: ["type": "ByteLevel", "use_regex": true]), config: ["bos_token": "<s>"])
        #expect(bpe.merges == ["a b"])
        #expect(bpe.tokens == ["a", "b", "ab", "<s>"])
        #expect(bpe.tokenTypes == [1, 1, 1, 3])
        #expect(bpe.pre == "gpt-2" && bpe.bos == 3)
        let padded = try HuggingFaceBPE(tokenizer: Self.json(pre: ["type": "ByteLevel"]), config: [:], vocabularySize: 6)
        #expect(padded.tokens == ["a", "b", "ab", "<s>", "[PAD4]", "[PAD5]"] && padded.tokenTypes.suffix(2) == [5, 5])
        #expect(try padded.tokenizer().encode("<s>ab", parseSpecial: true) == [3, 2])
    }

    @Test func otherShapesAreRefusedByName() throws {
        #expect(throws: TokenizerError.unsupportedPreTokenizer("tokenizer.json pre_tokenizer Metaspace")) {
            try HuggingFaceBPE(tokenizer: Self.json(pre: ["type": "Metaspace", "replacement": "▁"]), config: [:])
        }
        #expect(throws: TokenizerError.unsupportedModel("tokenizer.json BPE with byte_fallback (SentencePiece-style BPE)")) {
            try HuggingFaceBPE(tokenizer: Self.json(pre: ["type": "ByteLevel"], model: ["byte_fallback": true]), config: [:])
        }
        #expect(throws: TokenizerError.unsupportedPreTokenizer("tokenizer.json normalizer Lowercase with a byte-level BPE model")) {
            try HuggingFaceBPE(tokenizer: Self.json(pre: ["type": "ByteLevel"], normalizer: ["type": "Lowercase"]), config: [:])
        }
        let split: [String: Any] = ["type": "Sequence", "pretokenizers": [
            ["type": "Split", "pattern": ["Regex": #"\p{L}+"#], "behavior": "Isolated", "invert": false],
            ["type": "ByteLevel", "use_regex": false]]]
        #expect(throws: TokenizerError.unsupportedPreTokenizer(#"tokenizer.json Split on the pattern "\\p{L}+" (Llama 3's, Qwen 2's and GPT-2's are supported)"#)) {
            try HuggingFaceBPE(tokenizer: Self.json(pre: split), config: [:])
        }
        var llama3 = split
        llama3["pretokenizers"] = [["type": "Split", "pattern": ["Regex": HuggingFaceBPE.llama3Pattern], "behavior": "Isolated", "invert": false],
                                   ["type": "ByteLevel", "use_regex": false]]
        #expect(try HuggingFaceBPE(tokenizer: Self.json(pre: llama3, model: ["ignore_merges": true]), config: [:]).pre == "llama-bpe")
    }
}
