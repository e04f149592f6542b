import Foundation
import TestSupport
import Testing
@testable import Tokenizers

/// Unigram `tokenizer.json` files against Hugging Face's own `tokenizers` package: the XLM-RoBERTa-style tokenizer of
/// `tools/make_unigram_reference.py` (SentencePiece Unigram with its `nmt_nfkc` rules as a `Precompiled` normalizer,
/// WhitespaceSplit + Metaspace) on texts that exercise the rules (full-width forms, ligatures, combining accents,
/// scripts the vocabulary lacks, runs of spaces, special tokens), and the same vocabulary under T5's and older
/// XLM-R files' pipelines.
@Suite struct UnigramTokenizerTests {
    static let folder = Reference.file("xlmr-tiny")

    static func root() throws -> [String: Any] {
        let data = try Data(contentsOf: folder.appendingPathComponent("tokenizer.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test func idsMatchHuggingFaceTokenizers() throws {
        let tokenizer = try HuggingFaceTokenizer.load(contentsOf: Self.folder.appendingPathComponent("tokenizer.json"))
        #expect(tokenizer is UnigramTokenizer)
        let reference = try #require(try Reference.json("xlmr-tiny/reference.json") as? [String: Any])
        let cases = try #require(reference["cases"] as? [[String: Any]])
        #expect(cases.count == 8)
        for c in cases {
            let text = try #require(c["text"] as? String)
            let ids = try #require(c["ids"] as? [Int]).map(Int32.init)
            #expect(tokenizer.encode(text, addSpecial: true, parseSpecial: true) == ids, "\(text.debugDescription)")
        }
    }

    @Test(arguments: ["t5", "xlmr-older", "first-no-split"])
    func otherPipelinesMatchToo(_ name: String) throws {
        let variants = try #require(try Reference.json("xlmr-tiny/tokenizer-variants.json") as? [String: Any])
        let texts = try #require(variants["texts"] as? [String])
        let entry = try #require((variants["variants"] as? [String: [String: Any]])?[name])
        var root = try Self.root()
        let base = root["normalizer"]
        switch entry["normalizer"] as? String {
        case "base": root["normalizer"] = base
        case "base+collapse":
            root["normalizer"] = ["type": "Sequence", "normalizers": [base as Any,
                                  ["type": "Replace", "pattern": ["Regex": " {2,}"], "content": " "]]]
        default: root["normalizer"] = nil
        }
        root["pre_tokenizer"] = entry["pre_tokenizer"]
        let data = try JSONSerialization.data(withJSONObject: root)
        let tokenizer = try HuggingFaceTokenizer.load(json: data)
        let expected = try #require(entry["ids"] as? [[Int]])
        for (text, ids) in zip(texts, expected) {
            #expect(tokenizer.encode(text, addSpecial: true, parseSpecial: true) == ids.map(Int32.init), "\(name): \(text.debugDescription)")
        }
    }

    @Test func theCharsmapNormalizesAsSentencePieceDoes() throws {
        let root = try Self.root()
        let normalizer = try #require(root["normalizer"] as? [String: Any])
        let map = try PrecompiledCharsmap(base64: try #require(normalizer["precompiled_charsmap"] as? String))
        #expect(map.normalize("ＡＢＣ １２３") == "ABC 123")
        #expect(map.normalize("ﬁ") == "fi")
        #expect(map.normalize("e\u{301}") == "é")
        #expect(map.normalize("plain text") == "plain text")
    }

    @Test func aDamagedCharsmapIsATypedError() throws {
        #expect(throws: TokenizerError.invalidVocabulary("precompiled_charsmap is not base64")) {
            _ = try PrecompiledCharsmap(base64: "not base64 at all!")
        }
        #expect(throws: TokenizerError.invalidVocabulary("precompiled_charsmap is shorter than its header")) {
            _ = try PrecompiledCharsmap(data: [1, 0])
        }
        #expect(throws: TokenizerError.invalidVocabulary("precompiled_charsmap's trie of 4096 bytes does not fit its 8")) {
            _ = try PrecompiledCharsmap(data: [0, 16, 0, 0, 1, 2, 3, 4])
        }
        // a trie whose offsets point anywhere finds nothing and changes nothing (no trap)
        let noise = try PrecompiledCharsmap(data: [16, 0, 0, 0] + (0..<16).map { _ in UInt8.random(in: 0...255) } + [0x41, 0])
        #expect(noise.normalize("abc").isEmpty == false)
    }

    @Test func otherPipelinesAreRefusedByName() throws {
        var root = try Self.root()
        root["pre_tokenizer"] = ["type": "ByteLevel"]
        #expect {
            _ = try HuggingFaceTokenizer.load(json: try JSONSerialization.data(withJSONObject: root))
        } throws: { error in
            guard case TokenizerError.unsupportedPreTokenizer(let why) = error else { return false }
            return why.contains("ByteLevel") && why.contains("Unigram")
        }
        root = try Self.root()
        root["normalizer"] = ["type": "StripAccents"]
        #expect {
            _ = try HuggingFaceTokenizer.load(json: try JSONSerialization.data(withJSONObject: root))
        } throws: { error in
            guard case TokenizerError.unsupportedPreTokenizer(let why) = error else { return false }
            return why.contains("StripAccents")
        }
    }
}
