import Foundation
import GGUF
import TestSupport
import Testing
import Tokenizers

/// SmolLM2-135M-Instruct's tokenizer, loaded once from the real model file through `GGUFFile`.
enum SmolLM2 {
    static let loaded = Result<any Tokenizer, any Error> {
        let file = try GGUFFile(path: try Reference.smolLM2())
        return try TokenizerFactory.load(from: file)
    }

    static func tokenizer() throws -> any Tokenizer { try loaded.get() }
}

/// `smollm2-135m-instruct-q4_1/llamacpp.json`: what llama.cpp answered.
struct LlamaCppReference: Decodable, Sendable {
    struct TokenizeCase: Decodable, Sendable, CustomTestStringConvertible {
        let text: String
        let ids: [Int32]
        var testDescription: String { text.debugDescription }
    }

    struct CompletionCase: Decodable, Sendable, CustomTestStringConvertible {
        let prompt: String
        let promptIDs: [Int32]
        var testDescription: String { prompt.debugDescription }
        enum CodingKeys: String, CodingKey {
            case prompt
            case promptIDs = "prompt_ids"
        }
    }

    struct ChatCase: Decodable, Sendable, CustomTestStringConvertible {
        let renderedPrompt: String
        var testDescription: String { renderedPrompt.debugDescription }
        enum CodingKeys: String, CodingKey {
            case renderedPrompt = "rendered_prompt"
        }
    }

    let tokenize: [TokenizeCase]
    let completions: [CompletionCase]
    let chat: [ChatCase]

    static let path = "smollm2-135m-instruct-q4_1/llamacpp.json"

    static func load(_ relative: String = path) throws -> LlamaCppReference {
        let data = try Data(contentsOf: Reference.file(relative))
        return try JSONDecoder().decode(LlamaCppReference.self, from: data)
    }

    /// For test arguments; `referenceFileIsComplete` fails loudly if this comes back empty.
    static let cases = (try? load()) ?? LlamaCppReference(tokenize: [], completions: [], chat: [])
}

@Suite struct SmolLM2ReferenceTests {
    @Test func referenceFileIsComplete() throws {
        let reference = try LlamaCppReference.load()
        #expect(reference.tokenize.count == 30)
        #expect(reference.completions.count == 10)
        #expect(reference.chat.count == 4)
    }

    @Test func vocabularyMetadata() throws {
        let tokenizer = try SmolLM2.tokenizer()
        #expect(tokenizer.vocabularySize == 49152)
        #expect(tokenizer.bosTokenID == 1)
        #expect(tokenizer.eosTokenID == 2)
        #expect(tokenizer.addBOS == false)
        #expect(tokenizer.tokenID(for: "<|im_start|>") == 1)
        #expect(tokenizer.tokenID(for: "<|im_end|>") == 2)
        #expect(tokenizer.tokenID(for: "<|endoftext|>") == 0)
        #expect(tokenizer.tokenID(for: "Ġthe") == 260)
        #expect(tokenizer.tokenBytes(260) == Array(" the".utf8))
        #expect(tokenizer.tokenBytes(198) == [0x0A])
        #expect(tokenizer.tokenBytes(1) == Array("<|im_start|>".utf8))
    }

    @Test func endOfGeneration() throws {
        let tokenizer = try SmolLM2.tokenizer()
        #expect(tokenizer.isEndOfGeneration(2))  // <|im_end|>, also EOS
        #expect(tokenizer.isEndOfGeneration(0))  // <|endoftext|>
        #expect(tokenizer.isEndOfGeneration(4))  // <reponame>: llama.cpp's FIM repo token, also end-of-generation there
        #expect(!tokenizer.isEndOfGeneration(1)) // <|im_start|>
        #expect(!tokenizer.isEndOfGeneration(198))
        #expect(!tokenizer.isEndOfGeneration(260))
    }

    @Test(arguments: LlamaCppReference.cases.tokenize)
    func tokenizeMatchesLlamaCpp(_ reference: LlamaCppReference.TokenizeCase) throws {
        let tokenizer = try SmolLM2.tokenizer()
        let ids = tokenizer.encode(reference.text, parseSpecial: true)
        #expect(ids == reference.ids)
        #expect(tokenizer.decode(ids) == reference.text)
    }

    @Test(arguments: LlamaCppReference.cases.completions)
    func promptIDsMatchLlamaCpp(_ reference: LlamaCppReference.CompletionCase) throws {
        let tokenizer = try SmolLM2.tokenizer()
        let ids = tokenizer.encode(reference.prompt, parseSpecial: true)
        #expect(ids == reference.promptIDs)
        #expect(tokenizer.decode(ids) == reference.prompt)
    }

    @Test(arguments: LlamaCppReference.cases.chat)
    func renderedChatPromptsRoundTrip(_ reference: LlamaCppReference.ChatCase) throws {
        let tokenizer = try SmolLM2.tokenizer()
        let ids = tokenizer.encode(reference.renderedPrompt, parseSpecial: true)
        #expect(tokenizer.decode(ids) == reference.renderedPrompt)
        #expect(ids.first == 1) // `<|im_start|>` is one token
        let turns = reference.renderedPrompt.components(separatedBy: "<|im_start|>").count - 1
        #expect(ids.filter { $0 == 1 }.count == turns)
        #expect(ids.filter { $0 == 2 }.count == reference.renderedPrompt.components(separatedBy: "<|im_end|>").count - 1)
        // Ends with "assistant\n" as plain tokens.
        let tail = tokenizer.encode("assistant\n", parseSpecial: true)
        #expect(Array(ids.suffix(tail.count)) == tail)
        // llama.cpp tokenizes the text between special tokens piece by piece: the ids are the markers'
        // ids interleaved with each piece's own encoding.
        var expected: [Int32] = []
        for (turnIndex, turn) in reference.renderedPrompt.components(separatedBy: "<|im_start|>").enumerated() {
            if turnIndex > 0 { expected.append(1) }
            for (pieceIndex, piece) in turn.components(separatedBy: "<|im_end|>").enumerated() {
                if pieceIndex > 0 { expected.append(2) }
                expected += tokenizer.encode(piece, parseSpecial: false)
            }
        }
        #expect(ids == expected)
        // Without special parsing the markers are spelled out as ordinary text.
        let literal = tokenizer.encode(reference.renderedPrompt, parseSpecial: false)
        #expect(!literal.contains(1) && !literal.contains(2))
        #expect(tokenizer.decode(literal) == reference.renderedPrompt)
    }

    @Test func knownChatPromptIDs() throws {
        // The ChatML frame llama.cpp produces for SmolLM2 (from its `tokenize` reference case).
        let tokenizer = try SmolLM2.tokenizer()
        #expect(tokenizer.encode("<|im_start|>user\nHi<|im_end|>", parseSpecial: true) == [1, 4093, 198, 26843, 2])
        #expect(tokenizer.encode("<|im_start|>assistant\n", parseSpecial: true).first == 1)
    }

    @Test func perplexityTextRoundTrips() throws {
        let tokenizer = try SmolLM2.tokenizer()
        let text = try String(contentsOf: Reference.file("perplexity-text.txt"), encoding: .utf8)
        let clock = ContinuousClock()
        var ids: [Int32] = []
        let elapsed = clock.measure { ids = tokenizer.encode(text, parseSpecial: true) }
        // llama.cpp cuts this text into 14 chunks of 512 tokens.
        #expect(ids.count / 512 == 14)
        #expect(tokenizer.decode(ids) == text)
        // Only against pathological (e.g. quadratic) behaviour: release takes a few milliseconds.
        #expect(elapsed < .seconds(20), "encoding took \(elapsed)")
    }

    @Test func streamingEmojiAndCJK() throws {
        let tokenizer = try SmolLM2.tokenizer()
        let text = "emoji 🤖🚀 mix, 日本語のテキスト, Привет мир, 👨‍👩‍👧 family 🇫🇷 café naïve — “quotes” ½ ✓ 한국어"
        let ids = tokenizer.encode(text, parseSpecial: false)
        let (_, held) = StreamingDetokenizerTests.stream(ids, through: tokenizer, expecting: text)
        #expect(held > 0) // some characters really were split across tokens
    }

    @Test func decodeIsLosslessForAssortedTexts() throws {
        let tokenizer = try SmolLM2.tokenizer()
        let texts = [
            "", " ", "\n", "  \t\r\n  ", "a\u{0}b", "\u{7F}\u{85}\u{A0}\u{AD}", "x²½Ⅻ٣", "cafe\u{301}", "🇫🇷👨‍👩‍👧",
            "<|im_start|><|im_end|><|endoftext|>", "<|im_", "<reponame>x<file_sep>", "\u{FFFD}", "\u{10FFFF}",
        ]
        for text in texts {
            #expect(tokenizer.decode(tokenizer.encode(text, parseSpecial: true)) == text)
            #expect(tokenizer.decode(tokenizer.encode(text, parseSpecial: false)) == text)
        }
    }
}
