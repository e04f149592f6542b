import Foundation
import GGUF
import TestSupport
import Testing
@testable import Tokenizers

/// SentencePiece-style `tokenizer.json` files against Hugging Face's own `tokenizers` package: the Gemma 3 folder of
/// `tools/make_hf_tiny_reference.py` (a SentencePiece BPE model with byte fallback, converted by transformers) and
/// the same vocabulary under the other pipelines such files use (`tokenizer-variants.json`, ids made by `tokenizers`).
@Suite struct HuggingFaceSentencePieceTests {
    static let folder = Reference.file("hf-tiny/gemma3-bf16")

    static func root() throws -> [String: Any] {
        try #require(HuggingFaceBPE.json(folder.appendingPathComponent("tokenizer.json")))
    }

    static func variants() throws -> (texts: [String], variants: [String: [String: Any]]) {
        let data = try Data(contentsOf: folder.appendingPathComponent("tokenizer-variants.json"))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return (try #require(json["texts"] as? [String]), try #require(json["variants"] as? [String: [String: Any]]))
    }

    @Test func theModelFileHoldsEveryPieceWithItsScoreAndType() throws {
        let file = try SentencePieceModelFile(contentsOf: Self.folder.appendingPathComponent("tokenizer.model"))
        #expect(file.pieces.count == 600)
        #expect(file.pieces[0] == .init(text: "<pad>", score: 0, type: 3))
        #expect(file.pieces[2].text == "<bos>" && file.pieces[2].type == 3)
        #expect(file.pieces[3].text == "<unk>" && file.pieces[3].type == 2)
        #expect(file.pieces[4].text == "<start_of_turn>" && file.pieces[4].type == 4)
        let bytes = file.pieces.filter { $0.type == 6 }
        #expect(bytes.count == 256 && bytes.first?.text == "<0x00>" && bytes.last?.text == "<0xFF>")
        // merged pieces: scores fall with the merge order, each its own
        let normal = file.pieces.filter { $0.type == 1 }.map(\.score)
        #expect(normal.count > 200 && Set(normal).count == normal.count)
    }

    @Test func aDamagedModelFileIsATypedError() throws {
        let data = try Data(contentsOf: Self.folder.appendingPathComponent("tokenizer.model"))
        for cut in [1, 7, data.count / 2] {
            #expect {
                _ = try SentencePieceModelFile(data: data.prefix(cut))
            } throws: { error in
                guard case TokenizerError.invalidVocabulary(let why) = error else { return false }
                return why.contains("tokenizer.model")
            }
        }
        #expect(throws: TokenizerError.invalidVocabulary("tokenizer.model holds no pieces")) {
            _ = try SentencePieceModelFile(data: Data([0x10, 0x01]))   // field 2, a varint: no pieces
        }
        #expect(throws: TokenizerError.invalidVocabulary("tokenizer.model: wire type 7 is not one Protocol Buffers writes")) {
            _ = try SentencePieceModelFile(data: Data([0x0F]))
        }
    }

    /// Every pipeline, with scores from `tokenizer.model` and from the merge ranks: the ids `tokenizers` gives.
    @Test(arguments: ["gemma", "prepend", "metaspace-always", "metaspace-first", "metaspace-never"], [true, false])
    func idsMatchHuggingFaceTokenizers(_ variant: String, _ withModelFile: Bool) throws {
        let (texts, variants) = try Self.variants()
        let entry = try #require(variants[variant])
        var root = try Self.root()
        root["normalizer"] = entry["normalizer"] is NSNull ? nil : entry["normalizer"]
        root["pre_tokenizer"] = entry["pre_tokenizer"] is NSNull ? nil : entry["pre_tokenizer"]
        let modelFile = withModelFile ? try SentencePieceModelFile(contentsOf: Self.folder.appendingPathComponent("tokenizer.model")) : nil
        let converted = try HuggingFaceSentencePiece(tokenizer: root, config: [:], modelFile: modelFile)
        #expect(converted.scoresFromModelFile == withModelFile)
        let tokenizer = try converted.tokenizer()
        let expected = try #require(entry["ids"] as? [[Int]])
        for (text, ids) in zip(texts, expected) {
            #expect(tokenizer.encode(text, parseSpecial: true) == ids.map(Int32.init), "\(variant): \(text.debugDescription)")
        }
        // and through the GGUF metadata the conversion writes
        let metadata = Dictionary(converted.ggufMetadata.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        let fromMetadata = try TokenizerFactory.load(metadata: DictionaryMetadata(values: metadata))
        for (text, ids) in zip(texts, expected) {
            #expect(fromMetadata.encode(text, parseSpecial: true) == ids.map(Int32.init), "\(variant) via GGUF: \(text.debugDescription)")
        }
    }

    @Test func metaspaceSplittingWhereItChangesMergesIsRefused() throws {
        let (_, variants) = try Self.variants()
        var root = try Self.root()
        root["normalizer"] = nil
        root["pre_tokenizer"] = try #require(variants["metaspace-first-split"])["pre_tokenizer"]
        #expect {
            _ = try HuggingFaceSentencePiece(tokenizer: root, config: [:])
        } throws: { error in
            guard case TokenizerError.unsupportedPreTokenizer(let why) = error else { return false }
            return why.contains("split: true") && why.contains("▁▁")
        }
    }

    @Test func otherPipelinesAreRefusedByName() throws {
        var root = try Self.root()
        root["normalizer"] = ["type": "NFKC"]
        #expect(throws: TokenizerError.self) { _ = try HuggingFaceSentencePiece(tokenizer: root, config: [:]) }
        do {
            _ = try HuggingFaceSentencePiece(tokenizer: root, config: [:])
        } catch {
            #expect("\(error)".contains("NFKC"))
        }
        root["normalizer"] = nil
        root["pre_tokenizer"] = nil
        #expect {
            _ = try HuggingFaceSentencePiece(tokenizer: root, config: [:])
        } throws: { error in
            guard case TokenizerError.unsupportedPreTokenizer(let why) = error else { return false }
            return why.contains("Metaspace")
        }
    }

    /// The generic loader picks this reader for a byte-fallback BPE file.
    @Test func theGenericLoaderReadsIt() throws {
        let tokenizer = try HuggingFaceTokenizer.load(contentsOf: Self.folder.appendingPathComponent("tokenizer.json"))
        #expect(tokenizer is SentencePieceTokenizer)
        let (texts, variants) = try Self.variants()
        let ids = try #require(variants["gemma"]?["ids"] as? [[Int]])
        #expect(tokenizer.encode(texts[0], parseSpecial: true) == ids[0].map(Int32.init))
    }
}

/// GGUF metadata held in a dictionary, as a converted file would store it.
struct DictionaryMetadata: TokenizerMetadata {
    let values: [String: GGUFValue]
    private func array(_ key: String) -> [GGUFValue]? {
        if case .array(let items) = values[key] { return items }
        return nil
    }
    func string(_ key: String) -> String? { values[key]?.stringValue }
    func int(_ key: String) -> Int? { values[key]?.intValue }
    func bool(_ key: String) -> Bool? { values[key]?.boolValue }
    func stringArray(_ key: String) -> [String]? { array(key)?.compactMap(\.stringValue) }
    func intArray(_ key: String) -> [Int]? { array(key)?.compactMap(\.intValue) }
    func floatArray(_ key: String) -> [Float]? { array(key)?.compactMap { $0.floatValue.map(Float.init) } }
}
