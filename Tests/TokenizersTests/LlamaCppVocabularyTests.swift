import Foundation
import GGUF
import TestSupport
import Testing
import Tokenizers

/// llama.cpp's own tokenizer cases (`models/ggml-vocab-*.gguf` with `.inp`/`.out` from the pinned sdist, copied
/// into `Tests/Fixtures/reference/vocab`): every input must give exactly the ids llama.cpp's test expects
/// (`tests/test-tokenizer-0.cpp`: no BOS, special tokens not parsed).
@Suite struct LlamaCppVocabularyTests {
    struct Case: CustomTestStringConvertible {
        let text: String
        let ids: [Int32]
        var testDescription: String { text.debugDescription }
    }

    /// The inputs (separated by `\n__ggml_vocab_test__\n`) and the expected ids (one line each).
    static func cases(_ name: String, in directory: URL = Reference.file("vocab")) throws -> [Case] {
        let base = directory.appendingPathComponent("ggml-vocab-\(name).gguf").path
        let input = try Data(contentsOf: URL(fileURLWithPath: base + ".inp"))
        let output = try String(contentsOf: URL(fileURLWithPath: base + ".out"), encoding: .utf8)
        let separator = Data("\n__ggml_vocab_test__\n".utf8)
        var texts: [String] = []
        var start = input.startIndex
        while start < input.endIndex {
            guard let found = input.range(of: separator, in: start ..< input.endIndex) else {
                texts.append(String(decoding: input[start...], as: UTF8.self))
                break
            }
            texts.append(String(decoding: input[start ..< found.lowerBound], as: UTF8.self))
            start = found.upperBound
        }
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false).dropLast(output.hasSuffix("\n") ? 1 : 0)
        #expect(texts.count == lines.count)
        return zip(texts, lines).map { text, line in
            Case(text: text, ids: line.split(separator: " ").compactMap { Int32($0) })
        }
    }

    /// Every case of one vocabulary; returns the tokenizer.
    @discardableResult
    func check(_ name: String, pre: String?) throws -> any Tokenizer {
        let file = try GGUFFile(path: Reference.file("vocab/ggml-vocab-\(name).gguf").path)
        #expect(file.string("tokenizer.ggml.pre") == pre)
        let tokenizer = try TokenizerFactory.load(from: file)
        let cases = try Self.cases(name)
        #expect(cases.count > 40)
        for c in cases {
            #expect(tokenizer.encode(c.text, parseSpecial: false) == c.ids, "\(name): \(c.text.debugDescription)")
        }
        return tokenizer
    }

    /// Llama 3 (pre-tokenizer `llama-bpe`): its pattern, and whole words that are tokens taken as they are; BOS added.
    @Test func llama3() throws {
        #expect(try check("llama-bpe", pre: "llama-bpe").addBOS)
    }

    /// Qwen 2 / 2.5 / 3 (`qwen2`): Llama 3's pattern with one digit per word; no BOS.
    @Test func qwen2() throws {
        #expect(try !check("qwen2", pre: "qwen2").addBOS)
    }

    /// BERT's WordPiece (BGE's vocabulary, the `bert` tokenizer model): lowercased, accents stripped, punctuation and
    /// CJK split off, longest pieces first, `[UNK]` for a word with an unmatchable part; `[CLS]` … `[SEP]` around a
    /// sequence when special tokens are added.
    @Test func bertBGE() throws {
        let tokenizer = try check("bert-bge", pre: "bert-bge")
        #expect(tokenizer.encode("Hello world", addSpecial: true, parseSpecial: false) == [101, 7592, 2088, 102])
    }

    /// Phi-3 (SentencePiece with byte fallback, the `llama` tokenizer model).
    @Test func phi3() throws {
        try check("phi-3", pre: "default")
    }

    /// Where `tools/fetch-llama-vocab.sh` (run by `make test`) puts every `ggml-vocab-*` file of the pinned sdist.
    static let sdistDirectory = Reference.repositoryRoot.appendingPathComponent("Tests/Fixtures/.llama-vocab")

    /// Every vocabulary llama.cpp ships test cases for, each case identical: the byte-level BPE families (GPT-2's,
    /// StarCoder's, Llama 3's, Qwen 2's and 3.5's, DeepSeek's, Falcon's and Command R's patterns, run by
    /// `SplitRegex` where no hand-written matcher exists), SentencePiece (Llama 2, Phi-3), WordPiece (BGE) and
    /// Gemma 4's raw-text BPE.
    @Test(arguments: ["bert-bge", "command-r", "deepseek-coder", "deepseek-llm", "falcon", "gemma-4", "gpt-2", "llama-bpe",
                      "llama-spm", "mpt", "phi-3", "qwen2", "qwen35", "refact", "starcoder"])
    func everyVocabularyOfTheSdist(_ name: String) throws {
        let directory = Self.sdistDirectory
        let path = directory.appendingPathComponent("ggml-vocab-\(name).gguf").path
        try #require(FileManager.default.fileExists(atPath: path), "\(path) is missing: run tools/fetch-llama-vocab.sh (make test does)")
        let tokenizer = try TokenizerFactory.load(from: try GGUFFile(path: path))
        let cases = try Self.cases(name, in: directory)
        #expect(cases.count > 40)
        var different = 0
        for c in cases where tokenizer.encode(c.text, parseSpecial: false) != c.ids {
            different += 1
            Issue.record("\(name): \(c.text.debugDescription) gives \(tokenizer.encode(c.text, parseSpecial: false)), llama.cpp \(c.ids)")
        }
        #expect(different == 0)
    }

    /// The sdist's vocabularies without cases: GPT-NeoX's and Aquila's name no pre-tokenizer (llama.cpp's default
    /// patterns, as llama.cpp does), Baichuan's is SentencePiece; nomic-bert-moe's T5 Unigram kind is refused by name.
    @Test func theOthersLoadOrAreRefusedByName() throws {
        let directory = Self.sdistDirectory
        for name in ["aquila", "baichuan", "gpt-neox"] {
            let tokenizer = try TokenizerFactory.load(from: try GGUFFile(path: directory.appendingPathComponent("ggml-vocab-\(name).gguf").path))
            #expect(!tokenizer.encode("Hello world, 1234567!", parseSpecial: false).isEmpty)
        }
        let neox = try TokenizerFactory.load(from: try GGUFFile(path: directory.appendingPathComponent("ggml-vocab-gpt-neox.gguf").path))
        #expect(neox.decode(neox.encode("Hello world, 1234567!", parseSpecial: false)) == "Hello world, 1234567!")
        #expect(throws: TokenizerError.unsupportedModel("t5")) {
            _ = try TokenizerFactory.load(from: try GGUFFile(path: directory.appendingPathComponent("ggml-vocab-nomic-bert-moe.gguf").path))
        }
    }
}
