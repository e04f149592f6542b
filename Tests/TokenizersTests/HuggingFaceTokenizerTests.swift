import Foundation
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
        let bpe = Data(#"{"model": {"type": "BPE", "vocab": {}, "merges": []}}"#.utf8)
        #expect(throws: TokenizerError.unsupportedModel("tokenizer.json model BPE")) { try HuggingFaceTokenizer.load(json: bpe) }
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
