import Testing
import Tokenizers

@Suite struct BPETokenizerTests {
    private func b(_ character: Character) -> Int32 { TinyVocabulary.byte(character) }

    @Test func mergesApplyByRank() throws {
        var vocabulary = TinyVocabulary()
        let ab = vocabulary.add("ab")
        let bc = vocabulary.add("bc")
        let abc = vocabulary.add("abc")
        vocabulary.merge("a", "b")
        vocabulary.merge("b", "c")
        vocabulary.merge("ab", "c")
        let tokenizer = try vocabulary.build()
        #expect(tokenizer.encode("abc", parseSpecial: false) == [abc])
        #expect(tokenizer.encode("bcab", parseSpecial: false) == [bc, ab])
        #expect(tokenizer.encode("xabc", parseSpecial: false) == [b("x"), abc])

        // With "b c" ranked first, "abc" can no longer become one token.
        var other = TinyVocabulary()
        let ab2 = other.add("ab")
        let bc2 = other.add("bc")
        _ = other.add("abc")
        other.merge("b", "c")
        other.merge("a", "b")
        other.merge("ab", "c")
        let second = try other.build()
        #expect(second.encode("abc", parseSpecial: false) == [b("a"), bc2])
        #expect(second.encode("ab", parseSpecial: false) == [ab2])
    }

    @Test func equalRanksMergeLeftmostFirst() throws {
        var vocabulary = TinyVocabulary()
        let aa = vocabulary.add("aa")
        vocabulary.merge("a", "a")
        let tokenizer = try vocabulary.build()
        #expect(tokenizer.encode("aaa", parseSpecial: false) == [aa, b("a")])
        #expect(tokenizer.encode("aaaaa", parseSpecial: false) == [aa, aa, b("a")])
    }

    @Test func spacesAndControlBytesUseByteCharacters() throws {
        var vocabulary = TinyVocabulary()
        let spaceA = vocabulary.add(" a")
        vocabulary.merge(" ", "a")
        let tokenizer = try vocabulary.build()
        #expect(tokenizer.encode("a a\n", parseSpecial: false) == [b("a"), spaceA, 10])
        #expect(tokenizer.tokenBytes(spaceA) == [0x20, 0x61])
        #expect(tokenizer.tokenBytes(10) == [0x0A])
        #expect(tokenizer.tokenBytes(0xF0) == [0xF0])
        #expect(tokenizer.tokenID(for: gpt2Spelling(" a")) == spaceA)
        #expect(tokenizer.decode([b("a"), spaceA, 10]) == "a a\n")
        #expect(tokenizer.vocabularySize == 257)
    }

    @Test func controlTokensOnlyWhenParsingSpecial() throws {
        var vocabulary = TinyVocabulary()
        let start = vocabulary.add("<|im_start|>", type: 3)
        let end = vocabulary.add("<|im_end|>", type: 3)
        let user = vocabulary.add("<tool>", type: 4)
        let tokenizer = try vocabulary.build()
        #expect(tokenizer.encode("<|im_start|>x<|im_end|>", parseSpecial: true) == [start, b("x"), end])
        let literal = tokenizer.encode("<|im_start|>", parseSpecial: false)
        #expect(!literal.contains(start))
        #expect(tokenizer.decode(literal) == "<|im_start|>")
        // User-defined tokens are always recognised.
        #expect(tokenizer.encode("a<tool>b", parseSpecial: false) == [b("a"), user, b("b")])
        // Special tokens decode to their text.
        #expect(tokenizer.decode([start, b("h"), b("i"), end]) == "<|im_start|>hi<|im_end|>")
        // Text either side of a special token is pre-tokenized on its own.
        #expect(tokenizer.encode(" <|im_end|> ", parseSpecial: true) == [b(" "), end, b(" ")])
    }

    @Test func longerSpecialTokensWin() throws {
        var vocabulary = TinyVocabulary()
        let ab = vocabulary.add("<ab>", type: 4)
        let abab = vocabulary.add("<ab><ab>", type: 4)
        let tokenizer = try vocabulary.build()
        #expect(tokenizer.encode("<ab><ab><ab>", parseSpecial: true) == [abab, ab])
        #expect(tokenizer.encode("x<ab>y", parseSpecial: true) == [b("x"), ab, b("y")])
    }

    @Test func endOfGenerationTokens() throws {
        var vocabulary = TinyVocabulary()
        let endoftext = vocabulary.add("<|endoftext|>", type: 3)
        let imEnd = vocabulary.add("<|im_end|>", type: 3)
        let imStart = vocabulary.add("<|im_start|>", type: 3)
        let eos = vocabulary.add("</eos>", type: 3)
        let turn = vocabulary.add("<end_of_turn>", type: 1) // llama.cpp treats it as control regardless
        vocabulary.special = .init(bos: imStart, eos: eos)
        let tokenizer = try vocabulary.build()
        #expect(tokenizer.isEndOfGeneration(endoftext))
        #expect(tokenizer.isEndOfGeneration(imEnd))
        #expect(tokenizer.isEndOfGeneration(eos))
        #expect(tokenizer.isEndOfGeneration(turn))
        #expect(!tokenizer.isEndOfGeneration(imStart))
        #expect(!tokenizer.isEndOfGeneration(b("a")))
        #expect(tokenizer.bosTokenID == imStart)
        #expect(tokenizer.eosTokenID == eos)
        #expect(tokenizer.isControl(turn))
        #expect(tokenizer.encode("<end_of_turn>", parseSpecial: true) == [turn])
        #expect(tokenizer.tokenBytes(turn) == Array("<end_of_turn>".utf8))
    }

    @Test func outOfRangeIDsDecodeToNothing() throws {
        let tokenizer = try TinyVocabulary().build()
        #expect(tokenizer.tokenBytes(-1).isEmpty)
        #expect(tokenizer.tokenBytes(10_000).isEmpty)
        #expect(tokenizer.decode([b("o"), 99_999, b("k")]) == "ok")
        #expect(tokenizer.tokenID(for: "not in the vocabulary") == nil)
    }

    @Test func invalidSpecialIDsAreIgnored() throws {
        var vocabulary = TinyVocabulary()
        vocabulary.special = .init(bos: 5000, eos: -3)
        let tokenizer = try vocabulary.build()
        #expect(tokenizer.bosTokenID == nil)
        #expect(tokenizer.eosTokenID == nil)
    }

    @Test func inconsistentVocabulariesAreRejected() {
        #expect(throws: TokenizerError.invalidVocabulary("the token list is empty")) {
            try BPETokenizer(tokens: [], tokenTypes: nil, merges: [], preTokenizer: .gpt2)
        }
        #expect(throws: TokenizerError.self) {
            try BPETokenizer(tokens: ["a", "b"], tokenTypes: [1], merges: [], preTokenizer: .gpt2)
        }
    }

    @Test func bytesMissingFromTheVocabularyAreDropped() throws {
        // Only "a" and "b" exist: other characters have no token (llama.cpp drops them too).
        let tokenizer = try BPETokenizer(tokens: ["a", "b"], tokenTypes: nil, merges: [], preTokenizer: .gpt2)
        #expect(tokenizer.encode("abc", parseSpecial: false) == [0, 1])
    }

    @Test func errorsDescribeThemselves() {
        #expect(TokenizerError.unsupportedModel("bert").description.contains("\"bert\""))
        #expect(TokenizerError.unsupportedPreTokenizer("llama-bpe").description.contains("llama-bpe"))
        #expect(TokenizerError.missingKey("tokenizer.ggml.tokens").description.contains("tokenizer.ggml.tokens"))
    }
}
