import GGUF
import Testing
import Tokenizers

@Suite struct TokenizerFactoryTests {
    /// A GGUF file holding only tokenizer metadata.
    static func file(_ entries: [String: GGUFValue]) throws -> GGUFFile {
        var writer = GGUFWriter()
        writer.set("general.architecture", .string("llama"))
        for key in entries.keys.sorted() {
            if let value = entries[key] { writer.set(key, value) }
        }
        return try GGUFFile(bytes: writer.bytes())
    }

    /// A tiny byte-level vocabulary: the 256 byte characters, "ab", "Ġab", and three control tokens.
    static func tinyGPT2(model: String = "gpt2", pre: String? = "smollm") -> [String: GGUFValue] {
        let vocabulary = (0 ... 255).map { gpt2Spelling(UInt8($0)) } + ["ab", "Ġab", "<|im_start|>", "<|im_end|>", "<|endoftext|>"]
        let types = [Int32](repeating: 1, count: 258) + [3, 3, 3]
        var entries: [String: GGUFValue] = [
            "tokenizer.ggml.model": .string(model),
            "tokenizer.ggml.tokens": .array(vocabulary.map { .string($0) }),
            "tokenizer.ggml.token_type": .array(types.map { .int32($0) }),
            "tokenizer.ggml.merges": .array([.string("a b"), .string("Ġ ab")]),
            "tokenizer.ggml.bos_token_id": .uint32(258),
            "tokenizer.ggml.eos_token_id": .uint32(259),
            "tokenizer.ggml.add_bos_token": .bool(true),
        ]
        if let pre { entries["tokenizer.ggml.pre"] = .string(pre) }
        return entries
    }

    @Test func loadsAByteLevelVocabulary() throws {
        let tokenizer = try TokenizerFactory.load(from: Self.file(Self.tinyGPT2()))
        #expect(tokenizer.vocabularySize == 261)
        #expect(tokenizer.bosTokenID == 258)
        #expect(tokenizer.eosTokenID == 259)
        #expect(tokenizer.addBOS)
        #expect(tokenizer.encode("<|im_start|>ab ab1<|im_end|>", parseSpecial: true) == [258, 256, 257, 0x31, 259])
        #expect(tokenizer.isEndOfGeneration(259))
        #expect(tokenizer.isEndOfGeneration(260)) // <|endoftext|>
        #expect(!tokenizer.isEndOfGeneration(258))
        #expect(tokenizer.decode([258, 256, 257, 0x31, 259]) == "<|im_start|>ab ab1<|im_end|>")
    }

    @Test func refusesOtherTokenizerModels() throws {
        for model in ["t5", "ugm", "rwkv", "plamo2"] {
            let file = try Self.file(Self.tinyGPT2(model: model))
            #expect(throws: TokenizerError.unsupportedModel(model)) {
                try TokenizerFactory.load(from: file)
            }
            do {
                _ = try TokenizerFactory.load(from: file)
            } catch {
                #expect(String(describing: error).contains("\"\(model)\""))
            }
        }
    }

    @Test func refusesUnknownPreTokenizers() throws {
        let file = try Self.file(Self.tinyGPT2(pre: "chatglm-bpe"))
        #expect(throws: TokenizerError.unsupportedPreTokenizer("chatglm-bpe")) {
            try TokenizerFactory.load(from: file)
        }
        // no pre-tokenizer named: llama.cpp's default patterns, as llama.cpp does (GPT-NeoX's and Aquila's files)
        let missing = try TokenizerFactory.load(from: try Self.file(Self.tinyGPT2(pre: nil)))
        #expect((missing as? BPETokenizer)?.preTokenizer == PreTokenizer(llamaName: "default"))
    }

    @Test func reportsMissingVocabularyData() throws {
        #expect(throws: TokenizerError.missingKey("tokenizer.ggml.model")) {
            try TokenizerFactory.load(from: Self.file([:]))
        }
        for key in ["tokenizer.ggml.tokens", "tokenizer.ggml.merges"] {
            var entries = Self.tinyGPT2()
            entries[key] = nil
            let file = try Self.file(entries)
            #expect(throws: TokenizerError.missingKey(key)) {
                try TokenizerFactory.load(from: file)
            }
        }
        var short = Self.tinyGPT2()
        short["tokenizer.ggml.token_type"] = .array([.int32(1)])
        let file = try Self.file(short)
        #expect(throws: TokenizerError.self) {
            try TokenizerFactory.load(from: file)
        }
    }
}
