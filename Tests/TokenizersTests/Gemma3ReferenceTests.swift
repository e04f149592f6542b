import Foundation
import GGUF
import TestSupport
import Testing
import Tokenizers

/// Gemma 3 270M's SentencePiece-style tokenizer, loaded once from the real model file through `GGUFFile`.
enum Gemma3 {
    static let loaded = Result<(tokenizer: any Tokenizer, loadTime: Duration), any Error> {
        let file = try GGUFFile(path: try Reference.gemma3())
        let clock = ContinuousClock()
        var tokenizer: (any Tokenizer)?
        let elapsed = try clock.measure { tokenizer = try TokenizerFactory.load(from: file) }
        guard let tokenizer else { throw TokenizerError.invalidVocabulary("no tokenizer") }
        return (tokenizer, elapsed)
    }

    static func tokenizer() throws -> any Tokenizer { try loaded.get().tokenizer }

    static let referencePath = "gemma-3-270m-q4_k_m/llamacpp.json"
    /// For test arguments; `referenceFileIsComplete` fails loudly if this comes back empty.
    static let cases = (try? LlamaCppReference.load(referencePath))
        ?? LlamaCppReference(tokenize: [], completions: [], chat: [])
}

@Suite struct Gemma3ReferenceTests {
    @Test func referenceFileIsComplete() throws {
        let reference = try LlamaCppReference.load(Gemma3.referencePath)
        #expect(reference.tokenize.count == 30)
        #expect(reference.completions.count == 10)
        #expect(!reference.chat.isEmpty)
    }

    @Test func vocabularyMetadata() throws {
        let tokenizer = try Gemma3.tokenizer()
        let spm = try #require(tokenizer as? SentencePieceTokenizer)
        #expect(tokenizer.vocabularySize == 262_144)
        #expect(tokenizer.bosTokenID == 2)
        #expect(tokenizer.eosTokenID == 1)
        #expect(tokenizer.addBOS)
        #expect(!tokenizer.addEOS)
        #expect(!spm.addSpacePrefix) // Gemma 3 sets tokenizer.ggml.add_space_prefix = false
        #expect(tokenizer.tokenID(for: "<bos>") == 2)
        #expect(tokenizer.tokenID(for: "<start_of_turn>") == 105)
        #expect(tokenizer.tokenID(for: "<end_of_turn>") == 106)
        #expect(tokenizer.tokenID(for: "▁") == 236_743)
        #expect(tokenizer.tokenID(for: "<0x00>") == 238)
        #expect(tokenizer.tokenBytes(236_743) == [0x20])       // "▁" decodes to a space
        #expect(tokenizer.tokenBytes(1902) == Array(" world".utf8))
        #expect(tokenizer.tokenBytes(107) == [0x0A])           // user-defined "\n"
        #expect(tokenizer.tokenBytes(238 + 0xF0) == [0xF0])    // byte token
        #expect(tokenizer.tokenBytes(105) == Array("<start_of_turn>".utf8))
        #expect(spm.isControl(105) && spm.isControl(2) && !spm.isControl(107))
        #expect(spm.score(236_743) == -236_280)
        #expect(tokenizer.encode("Hello world", addSpecial: true, parseSpecial: true) == [2, 9259, 1902])
        let (_, loadTime) = try Gemma3.loaded.get()
        print("Gemma 3 vocabulary (262,144 tokens) loaded in \(loadTime)")
    }

    @Test func endOfGeneration() throws {
        let tokenizer = try Gemma3.tokenizer()
        #expect(tokenizer.isEndOfGeneration(1))   // <eos>
        #expect(tokenizer.isEndOfGeneration(106)) // <end_of_turn>
        #expect(!tokenizer.isEndOfGeneration(2))  // <bos>
        #expect(!tokenizer.isEndOfGeneration(105))
        #expect(!tokenizer.isEndOfGeneration(107))
    }

    /// Every `tokenize` and `prompt_ids` case of llama.cpp's reference, with the number that match.
    @Test func allReferenceIDsMatchLlamaCpp() throws {
        let tokenizer = try Gemma3.tokenizer()
        let reference = try LlamaCppReference.load(Gemma3.referencePath)
        var matched = 0
        for item in reference.tokenize {
            let ids = tokenizer.encode(item.text, parseSpecial: true)
            if ids == item.ids { matched += 1 } else { Issue.record("\(item.text.debugDescription): \(ids) != \(item.ids)") }
        }
        var promptMatched = 0
        for item in reference.completions {
            let ids = tokenizer.encode(item.prompt, parseSpecial: true)
            if ids == item.promptIDs { promptMatched += 1 } else {
                Issue.record("\(item.prompt.debugDescription): \(ids) != \(item.promptIDs)")
            }
        }
        print("Gemma 3 vs llama.cpp: tokenize \(matched)/\(reference.tokenize.count), "
              + "prompt_ids \(promptMatched)/\(reference.completions.count)")
        #expect(matched == reference.tokenize.count)
        #expect(promptMatched == reference.completions.count)
    }

    @Test(arguments: Gemma3.cases.tokenize)
    func tokenizeMatchesLlamaCpp(_ reference: LlamaCppReference.TokenizeCase) throws {
        let tokenizer = try Gemma3.tokenizer()
        let ids = tokenizer.encode(reference.text, parseSpecial: true)
        #expect(ids == reference.ids)
        #expect(tokenizer.decode(reference.ids) == reference.text)
    }

    @Test(arguments: Gemma3.cases.completions)
    func promptIDsMatchLlamaCpp(_ reference: LlamaCppReference.CompletionCase) throws {
        let tokenizer = try Gemma3.tokenizer()
        let ids = tokenizer.encode(reference.prompt, parseSpecial: true)
        #expect(ids == reference.promptIDs)
        #expect(tokenizer.decode(reference.promptIDs) == reference.prompt)
        // llama.cpp evaluated these with BOS, as the file asks.
        #expect(tokenizer.encode(reference.prompt, addSpecial: true, parseSpecial: true) == [2] + reference.promptIDs)
    }

    @Test(arguments: Gemma3.cases.chat)
    func renderedChatPromptsRoundTrip(_ reference: LlamaCppReference.ChatCase) throws {
        let tokenizer = try Gemma3.tokenizer()
        for parseSpecial in [true, false] {
            let ids = tokenizer.encode(reference.renderedPrompt, parseSpecial: parseSpecial)
            #expect(tokenizer.decode(ids) == reference.renderedPrompt)
        }
    }

    @Test func gemmaTurnMarkersAreSpecialTokens() throws {
        let tokenizer = try Gemma3.tokenizer()
        let text = "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"
        let ids = tokenizer.encode(text, parseSpecial: true)
        #expect(ids.first == 105)
        #expect(ids.filter { $0 == 105 }.count == 2)
        #expect(ids.filter { $0 == 106 }.count == 1)
        #expect(ids.last == 107)
        #expect(tokenizer.decode(ids) == text)
        // Without special parsing the markers are ordinary text.
        let literal = tokenizer.encode(text, parseSpecial: false)
        #expect(!literal.contains(105) && !literal.contains(106))
        #expect(tokenizer.decode(literal) == text)
    }

    @Test func byteFallbackForCharactersOutsideTheVocabulary() throws {
        let tokenizer = try Gemma3.tokenizer()
        func byteTokens(_ text: String) throws -> [Int32] {
            try text.utf8.map { byte in
                try #require(tokenizer.tokenID(for: "<0x" + String(byte, radix: 16, uppercase: true).leftPadded(2) + ">"))
            }
        }
        // A flamingo (U+1F9A9), a bell control character and a supplementary-plane CJK ideograph are not pieces.
        for text in ["🦩", "\u{07}", "𠀋"] {
            #expect(tokenizer.tokenID(for: text) == nil)
            let ids = tokenizer.encode(text, parseSpecial: false)
            #expect(ids == (try byteTokens(text)), "\(text.debugDescription)")
            #expect(tokenizer.decode(ids) == text)
        }
        // Inside a text: the pieces around it are unchanged.
        let ids = tokenizer.encode("a 🦩 b", parseSpecial: false)
        #expect(tokenizer.decode(ids) == "a 🦩 b")
        #expect(ids.contains(try byteTokens("🦩")[0]))
        // Streaming never emits half a character, even across byte tokens.
        let text = "flamingo 🦩🦩 bell \u{07} 𠀋 日本語 café"
        let (_, held) = StreamingDetokenizerTests.stream(tokenizer.encode(text, parseSpecial: false),
                                                         through: tokenizer, expecting: text)
        #expect(held >= 9) // three bytes held back for each of the three 4-byte characters
    }

    @Test func perplexityTextRoundTripsQuickly() throws {
        let tokenizer = try Gemma3.tokenizer()
        let text = try String(contentsOf: Reference.file("perplexity-text.txt"), encoding: .utf8)
        let clock = ContinuousClock()
        var ids: [Int32] = []
        let elapsed = clock.measure { ids = tokenizer.encode(text, parseSpecial: true) }
        #expect(tokenizer.decode(ids) == text)
        // A few KB: milliseconds.
        let sample = String(text.prefix(4096))
        var sampleIDs: [Int32] = []
        let sampleElapsed = clock.measure { sampleIDs = tokenizer.encode(sample, parseSpecial: true) }
        print("Gemma 3: encoded \(text.utf8.count) bytes into \(ids.count) tokens in \(elapsed); "
              + "\(sample.utf8.count) bytes into \(sampleIDs.count) tokens in \(sampleElapsed)")
        // Only against pathological (e.g. quadratic) behaviour: bounds far above debug builds on a loaded machine.
        #expect(elapsed < .seconds(20), "encoding took \(elapsed)")
        #expect(sampleElapsed < .seconds(3), "encoding 4 KB took \(sampleElapsed)")
    }

    /// (Not for texts holding "▁" itself, which SentencePiece decodes to a space, as llama.cpp does.)
    @Test func decodeIsLosslessForAssortedTexts() throws {
        let tokenizer = try Gemma3.tokenizer()
        let texts = [
            "", " ", "  ", "\n", "  \t\r\n  ", "a\u{0}b", "\u{7F}\u{85}\u{A0}\u{AD}", "x²½Ⅻ٣", "cafe\u{301}", "🇫🇷👨‍👩‍👧",
            "<start_of_turn><end_of_turn><bos><eos>", "<start_of", "\u{FFFD}", "\u{10FFFF}",
            "     indented\n\t\ttabs\n\n\n", "[multimodal]",
        ]
        for text in texts {
            #expect(tokenizer.decode(tokenizer.encode(text, parseSpecial: true)) == text, "\(text.debugDescription)")
            #expect(tokenizer.decode(tokenizer.encode(text, parseSpecial: false)) == text, "\(text.debugDescription)")
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
