import GGUF
import Testing
import Tokenizers

/// A small SentencePiece-style vocabulary: `<unk>`, `<s>`, `</s>`, the 256 byte tokens `<0x00>`…`<0xFF>`
/// (ids 3…258), then `pieces` with their scores and types.
struct TinySentencePiece {
    var pieces: [(text: String, score: Float, type: Int)] = []
    var addSpacePrefix = false
    var addBOS = true
    var addEOS = false

    static let unknown: Int32 = 0
    static let bos: Int32 = 1
    static let eos: Int32 = 2

    static func byte(_ value: UInt8) -> Int32 { 3 + Int32(value) }

    /// Adds a piece ("▁" spells a space); returns its id.
    @discardableResult
    mutating func add(_ text: String, score: Float = 0, type: Int = 1) -> Int32 {
        pieces.append((text, score, type))
        return Int32(258 + pieces.count)
    }

    var tokens: [String] {
        ["<unk>", "<s>", "</s>"] + (0 ... 255).map { "<0x" + hex($0) + ">" } + pieces.map(\.text)
    }

    private func hex(_ byte: Int) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[byte >> 4], digits[byte & 15]])
    }

    /// The vocabulary as GGUF metadata, as a converted model stores it.
    var metadata: [String: GGUFValue] {
        let scores: [Float] = [0, 0, 0] + [Float](repeating: 0, count: 256) + pieces.map(\.score)
        let types: [Int32] = [2, 3, 3] + [Int32](repeating: 6, count: 256) + pieces.map { Int32($0.type) }
        return [
            "tokenizer.ggml.model": .string("llama"),
            "tokenizer.ggml.tokens": .array(tokens.map { .string($0) }),
            "tokenizer.ggml.scores": .array(scores.map { .float32($0) }),
            "tokenizer.ggml.token_type": .array(types.map { .int32($0) }),
            "tokenizer.ggml.bos_token_id": .uint32(1),
            "tokenizer.ggml.eos_token_id": .uint32(2),
            "tokenizer.ggml.unknown_token_id": .uint32(0),
            "tokenizer.ggml.add_bos_token": .bool(addBOS),
            "tokenizer.ggml.add_eos_token": .bool(addEOS),
            "tokenizer.ggml.add_space_prefix": .bool(addSpacePrefix),
        ]
    }

    /// Built the way a model file is read: a tiny GGUF file through `TokenizerFactory`.
    func build() throws -> any Tokenizer {
        try TokenizerFactory.load(from: TokenizerFactoryTests.file(metadata))
    }
}

@Suite struct SentencePieceTokenizerTests {
    @Test func factoryBuildsASentencePieceTokenizer() throws {
        var vocabulary = TinySentencePiece()
        vocabulary.addEOS = true
        let tokenizer = try vocabulary.build()
        let spm = try #require(tokenizer as? SentencePieceTokenizer)
        #expect(tokenizer.vocabularySize == 259)
        #expect(tokenizer.bosTokenID == 1)
        #expect(tokenizer.eosTokenID == 2)
        #expect(tokenizer.addBOS)
        #expect(tokenizer.addEOS)
        #expect(!spm.addSpacePrefix)
        #expect(tokenizer.isEndOfGeneration(2))
        #expect(!tokenizer.isEndOfGeneration(1))
        let x = TinySentencePiece.byte(0x78)
        #expect(tokenizer.encode("x", addSpecial: true, parseSpecial: false) == [1, x, 2])
        #expect(tokenizer.encode("x", addSpecial: false, parseSpecial: false) == [x])
    }

    @Test func llamaCppDefaultsWhenKeysAreAbsent() throws {
        var entries = TinySentencePiece().metadata
        for key in ["tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token", "tokenizer.ggml.add_space_prefix",
                    "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.scores",
                    "tokenizer.ggml.token_type"] {
            entries[key] = nil
        }
        let tokenizer = try TokenizerFactory.load(from: TokenizerFactoryTests.file(entries))
        let spm = try #require(tokenizer as? SentencePieceTokenizer)
        #expect(spm.addBOS && !spm.addEOS && spm.addSpacePrefix)
        #expect(spm.bosTokenID == 1 && spm.eosTokenID == 2)
        #expect(spm.encode("", parseSpecial: true) == [])
    }

    @Test func mergesByHighestScore() throws {
        var vocabulary = TinySentencePiece()
        let a = vocabulary.add("a", score: -1)
        let b = vocabulary.add("b", score: -1)
        let c = vocabulary.add("c", score: -1)
        let ab = vocabulary.add("ab", score: -5)
        let bc = vocabulary.add("bc", score: -2)
        let tokenizer = try vocabulary.build()
        // "bc" scores higher than "ab", so it is merged first and "a" is left alone.
        #expect(tokenizer.encode("abc", parseSpecial: false) == [a, bc])
        #expect(tokenizer.encode("ab", parseSpecial: false) == [ab])
        #expect(tokenizer.encode("cab", parseSpecial: false) == [c, ab])
        #expect(tokenizer.encode("bcab", parseSpecial: false) == [bc, ab])
        #expect(tokenizer.encode("ba", parseSpecial: false) == [b, a])

        // With the scores swapped, "ab" goes first.
        var swapped = TinySentencePiece()
        _ = swapped.add("a", score: -1)
        _ = swapped.add("b", score: -1)
        let c2 = swapped.add("c", score: -1)
        let ab2 = swapped.add("ab", score: -2)
        _ = swapped.add("bc", score: -5)
        #expect(try swapped.build().encode("abc", parseSpecial: false) == [ab2, c2])
    }

    @Test func mergedSymbolsKeepMerging() throws {
        var vocabulary = TinySentencePiece()
        _ = vocabulary.add("a", score: -1)
        _ = vocabulary.add("b", score: -1)
        _ = vocabulary.add("c", score: -1)
        _ = vocabulary.add("bc", score: -2)
        let abc = vocabulary.add("abc", score: -10)
        let tokenizer = try vocabulary.build()
        // "abc" is reached through "a" + "bc", even with the lowest score: a merge only needs the
        // concatenation to be a piece.
        #expect(tokenizer.encode("abc", parseSpecial: false) == [abc])
        #expect(tokenizer.encode("abcabc", parseSpecial: false) == [abc, abc])
    }

    @Test func equalScoresMergeLeftmostFirst() throws {
        var vocabulary = TinySentencePiece()
        let a = vocabulary.add("a", score: -1)
        let aa = vocabulary.add("aa", score: -3)
        let tokenizer = try vocabulary.build()
        #expect(tokenizer.encode("aaa", parseSpecial: false) == [aa, a])
        #expect(tokenizer.encode("aaaaa", parseSpecial: false) == [aa, aa, a])

        // Two different pieces with the same score: the leftmost pair wins.
        var tied = TinySentencePiece()
        _ = tied.add("x", score: -1)
        let y = tied.add("y", score: -1)
        let z = tied.add("z", score: -1)
        let xy = tied.add("xy", score: -4)
        let yz = tied.add("yz", score: -4)
        let tokenizer2 = try tied.build()
        #expect(tokenizer2.encode("xyz", parseSpecial: false) == [xy, z])
        #expect(tokenizer2.encode("yzy", parseSpecial: false) == [yz, y])
        // 0 and -0 are the same score, so the leftmost pair wins here too.
        var zeros = TinySentencePiece()
        _ = zeros.add("p", score: -1)
        let q = zeros.add("q", score: -1)
        let pq = zeros.add("pq", score: -0.0)
        _ = zeros.add("qq", score: 0)
        #expect(try zeros.build().encode("pqq", parseSpecial: false) == [pq, q])
    }

    @Test func spacesBecomeMetaspaceAndDecodeBack() throws {
        var vocabulary = TinySentencePiece()
        let space = vocabulary.add("▁", score: -1)
        _ = vocabulary.add("h", score: -1)
        _ = vocabulary.add("i", score: -1)
        let hi = vocabulary.add("hi", score: -2)
        let spaceHi = vocabulary.add("▁hi", score: -3)
        let tokenizer = try vocabulary.build()
        #expect(tokenizer.encode("hi hi", parseSpecial: false) == [hi, spaceHi])
        #expect(tokenizer.encode("  hi", parseSpecial: false) == [space, spaceHi])
        #expect(tokenizer.tokenBytes(spaceHi) == Array(" hi".utf8))
        #expect(tokenizer.decode([hi, spaceHi, space]) == "hi hi ")
        // Tabs and newlines are not spaces: no piece, so byte tokens.
        #expect(tokenizer.encode("\t", parseSpecial: false) == [TinySentencePiece.byte(0x09)])
    }

    @Test func spacePrefixAtTheStartAndAfterSpecialTokens() throws {
        var vocabulary = TinySentencePiece()
        vocabulary.addSpacePrefix = true
        _ = vocabulary.add("▁", score: -1)
        _ = vocabulary.add("h", score: -1)
        _ = vocabulary.add("i", score: -1)
        let hi = vocabulary.add("hi", score: -2)
        let spaceHi = vocabulary.add("▁hi", score: -3)
        let control = vocabulary.add("<ctl>", type: 3)
        let user = vocabulary.add("<usr>", type: 4)
        let tokenizer = try vocabulary.build()
        #expect(tokenizer.encode("hi", parseSpecial: false) == [spaceHi])
        #expect(tokenizer.encode("hi<ctl>hi", parseSpecial: true) == [spaceHi, control, spaceHi])
        // The prefix follows user-defined tokens too (llama.cpp: any token fragment), but not plain text.
        #expect(tokenizer.encode("hi<usr>hi", parseSpecial: false) == [spaceHi, user, spaceHi])
        let literal = tokenizer.encode("hi<ctl>hi", parseSpecial: false)
        #expect(!literal.contains(control))
        #expect(literal.first == spaceHi && literal.last == hi)
    }

    @Test func controlAndUserDefinedTokens() throws {
        var vocabulary = TinySentencePiece()
        let start = vocabulary.add("<start_of_turn>", type: 3)
        let end = vocabulary.add("<end_of_turn>", type: 3)
        let newline = vocabulary.add("\n", type: 4)
        let twoNewlines = vocabulary.add("\n\n", type: 4)
        let twoSpaces = vocabulary.add("  ", type: 4)
        let x = vocabulary.add("x", score: -1)
        let tokenizer = try vocabulary.build()
        #expect(tokenizer.encode("<start_of_turn>x<end_of_turn>\n", parseSpecial: true) == [start, x, end, newline])
        // Longest match first; user-defined tokens even without special parsing.
        #expect(tokenizer.encode("x\n\n\nx", parseSpecial: false) == [x, twoNewlines, newline, x])
        #expect(tokenizer.encode("x  x", parseSpecial: false) == [x, twoSpaces, x])
        // User-defined tokens decode verbatim; control tokens to their text.
        #expect(tokenizer.decode([start, x, end, twoSpaces, newline]) == "<start_of_turn>x<end_of_turn>  \n")
        #expect(tokenizer.isEndOfGeneration(end))
        let literal = tokenizer.encode("<end_of_turn>", parseSpecial: false)
        #expect(!literal.contains(end))
        #expect(tokenizer.decode(literal) == "<end_of_turn>")
    }

    @Test func byteFallbackForUnknownCharacters() throws {
        var vocabulary = TinySentencePiece()
        let a = vocabulary.add("a", score: -1)
        let tokenizer = try vocabulary.build()
        let b = TinySentencePiece.byte
        #expect(tokenizer.encode("aé", parseSpecial: false) == [a, b(0xC3), b(0xA9)])
        #expect(tokenizer.encode("🦩a", parseSpecial: false) == [b(0xF0), b(0x9F), b(0xA6), b(0xA9), a])
        #expect(tokenizer.tokenBytes(b(0xC3)) == [0xC3])
        #expect(tokenizer.decode([a, b(0xC3), b(0xA9)]) == "aé")
        // Streaming holds the first bytes back until the character is complete.
        let text = "a🦩éa"
        let (pieces, held) = StreamingDetokenizerTests.stream(tokenizer.encode(text, parseSpecial: false),
                                                              through: tokenizer, expecting: text)
        #expect(pieces == ["a", "", "", "", "🦩", "", "é", "a", ""])
        #expect(held == 4)
    }

    @Test func byteFallbackToOneByteTextsWithoutByteTokens() throws {
        // A vocabulary without <0xAB> tokens falls back to the one-byte text, then to <unk>.
        let entries: [String: GGUFValue] = [
            "tokenizer.ggml.model": .string("llama"),
            "tokenizer.ggml.tokens": .array(["<unk>", "<s>", "</s>", "a", "b", "ab"].map { .string($0) }),
            "tokenizer.ggml.scores": .array([0, 0, 0, -1, -1, -2].map { .float32($0) }),
            "tokenizer.ggml.token_type": .array([2, 3, 3, 1, 1, 1].map { .int32($0) }),
            "tokenizer.ggml.add_space_prefix": .bool(false),
        ]
        let tokenizer = try TokenizerFactory.load(from: TokenizerFactoryTests.file(entries))
        #expect(tokenizer.encode("abc", parseSpecial: false) == [5, 0])
        #expect(tokenizer.encode("ba", parseSpecial: false) == [4, 3])
        #expect(tokenizer.encode("a b", parseSpecial: false) == [3, 0, 0, 0, 4]) // "▁" is three unknown bytes
    }

    @Test func inconsistentVocabulariesAreRefused() throws {
        var entries = TinySentencePiece().metadata
        entries["tokenizer.ggml.scores"] = .array([.float32(0)])
        let file = try TokenizerFactoryTests.file(entries)
        #expect(throws: TokenizerError.self) { try TokenizerFactory.load(from: file) }
        var missing = TinySentencePiece().metadata
        missing["tokenizer.ggml.tokens"] = nil
        let missingFile = try TokenizerFactoryTests.file(missing)
        #expect(throws: TokenizerError.missingKey("tokenizer.ggml.tokens")) {
            try TokenizerFactory.load(from: missingFile)
        }
    }
}
