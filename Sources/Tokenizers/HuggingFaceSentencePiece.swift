import Foundation
import GGUF

/// A SentencePiece-style `tokenizer.json` — BPE over characters with `"byte_fallback": true`, spaces spelled "▁"
/// (Gemma, Llama 2, Mistral and their kin) — read into the arrays a GGUF file stores for `tokenizer.ggml.model =
/// "llama"`, so a folder's tokenizer runs the same code as a GGUF's (`SentencePieceTokenizer`).
///
/// Scores come from the folder's `tokenizer.model` when it has one (as llama.cpp's converter reads them); otherwise
/// from the merge list: a merged token scores minus its merge's rank, so "the highest score first" picks what "the
/// lowest rank first" picks — the same thing for the tokenizers Hugging Face converts from SentencePiece, whose merges
/// are every pair of pieces ordered by the merged piece's score.
///
/// The text pipelines recognised, each with the space prefix it implies:
/// - normalizer `Replace(" " → "▁")`, pre-tokenizer none or `Split(" ", MergedWithPrevious)` (Gemma): no prefix;
/// - normalizer `Sequence[Prepend("▁"), Replace(" " → "▁")]` (Llama 2, older files): a prefix before every text
///   fragment, after special tokens too;
/// - pre-tokenizer `Metaspace("▁")` with `prepend_scheme` `always` (every fragment), `first` (the start of the text
///   only) or `never`, not before a fragment that already starts with a space; `split: true` only where it cannot
///   matter (no token holds "▁" past its first character, so no merge crosses a word's start).
/// Anything else is refused by name rather than tokenized differently from the model's own tokenizer.
public struct HuggingFaceSentencePiece: Sendable, Equatable {
    public var tokens: [String]
    public var scores: [Float]
    /// llama.cpp's token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
    public var tokenTypes: [Int]
    public var bos: Int32?
    public var eos: Int32?
    public var unknown: Int32?
    public var padding: Int32?
    public var addBOS: Bool
    public var addSpacePrefix: Bool
    /// With `addSpacePrefix`: whether text that follows a special token gets the prefix too (or only the start).
    public var spacePrefixAfterSpecial: Bool
    /// With `addSpacePrefix`: whether a fragment that starts with a space goes without (Metaspace).
    public var spacePrefixUnlessSpace: Bool
    public var chatTemplate: String?
    /// Where the scores came from: `tokenizer.model` or the merge ranks.
    public var scoresFromModelFile: Bool

    /// Whether a parsed `tokenizer.json` is one this type reads (a BPE model with byte fallback).
    public static func applies(to root: [String: Any]) -> Bool {
        let model = root["model"] as? [String: Any]
        return model?["type"] as? String == "BPE" && model?["byte_fallback"] as? Bool == true
    }

    /// Reads the tokenizer of a model folder (`tokenizer.json`, `tokenizer_config.json`, `tokenizer.model` when
    /// present); `vocabularySize` (config.json's `vocab_size`) pads the list with unused entries.
    public init(folder: URL, vocabularySize: Int? = nil) throws(TokenizerError) {
        let tokenizerURL = folder.appendingPathComponent("tokenizer.json")
        guard let root = HuggingFaceBPE.json(tokenizerURL) else {
            throw .invalidVocabulary("\(tokenizerURL.path) is missing or not a JSON object")
        }
        let config = HuggingFaceBPE.json(folder.appendingPathComponent("tokenizer_config.json")) ?? [:]
        let modelURL = folder.appendingPathComponent("tokenizer.model")
        let modelFile = FileManager.default.fileExists(atPath: modelURL.path) ? try SentencePieceModelFile(contentsOf: modelURL) : nil
        try self.init(tokenizer: root, config: config, modelFile: modelFile, vocabularySize: vocabularySize)
        chatTemplate = HuggingFaceBPE.template(inFolder: folder)
        for name in ["generation_config.json", "config.json"] {
            guard let c = HuggingFaceBPE.json(folder.appendingPathComponent(name)) else { continue }
            if bos == nil { bos = HuggingFaceBPE.firstID(c["bos_token_id"], count: tokens.count) }
            if eos == nil { eos = HuggingFaceBPE.firstID(c["eos_token_id"], count: tokens.count) }
        }
    }

    public init(tokenizer root: [String: Any], config: [String: Any], modelFile: SentencePieceModelFile? = nil,
                vocabularySize: Int? = nil) throws(TokenizerError) {
        guard let model = root["model"] as? [String: Any] else { throw .missingKey("model") }
        guard Self.applies(to: root) else {
            throw .unsupportedModel("tokenizer.json model \(model["type"] as? String ?? "?") without byte_fallback (not SentencePiece-style)")
        }
        let (byID, addedTypes) = try HuggingFaceBPE.tokensByID(root: root, model: model)
        let count = max((byID.keys.max() ?? -1) + 1, vocabularySize ?? 0)
        let unknownText = model["unk_token"] as? String

        // scores: the model file's, else minus the rank of the first merge that makes the token
        var rankScores: [String: Float] = [:]
        if modelFile == nil {
            guard let rawMerges = model["merges"] as? [Any] else { throw .missingKey("model.merges") }
            for (rank, m) in rawMerges.enumerated() {
                let merged: String
                if let s = m as? String {
                    let parts = s.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                    guard parts.count == 2 else { throw .invalidVocabulary("model.merges: \(s.debugDescription) is not \"a b\"") }
                    merged = String(parts[0] + parts[1])
                } else if let pair = m as? [String], pair.count == 2 {
                    merged = pair[0] + pair[1]
                } else {
                    throw .invalidVocabulary("model.merges: an entry that is neither \"a b\" nor [a, b]")
                }
                if rankScores[merged] == nil { rankScores[merged] = -Float(rank + 1) }
            }
        }
        tokens = []
        scores = []
        tokenTypes = []
        tokens.reserveCapacity(count)
        for id in 0..<count {
            guard let text = byID[id] else {
                tokens.append("[PAD\(id)]")
                scores.append(0)
                tokenTypes.append(5)
                continue
            }
            tokens.append(text)
            if let modelFile, id < modelFile.pieces.count, modelFile.pieces[id].text == text {
                scores.append(modelFile.pieces[id].score)
                tokenTypes.append(modelFile.pieces[id].type)
                continue
            }
            if let added = addedTypes[id] {
                scores.append(modelFile == nil ? 0 : -1000)   // llama.cpp's score for added tokens
                tokenTypes.append(added)
            } else {
                // a merged token's rank; single characters and bytes (never merged into) score 0, and a longer
                // token no merge makes scores below every merged one
                let single = text.unicodeScalars.count == 1
                scores.append(rankScores[text] ?? (single || Self.isByteToken(text) ? 0 : -Float(1 << 30)))
                tokenTypes.append(text == unknownText ? 2 : Self.isByteToken(text) ? 6 : 1)
            }
        }
        scoresFromModelFile = modelFile != nil

        let specials = HuggingFaceBPE.specialTokens(byID: byID, root: root, config: config)
        (bos, eos, addBOS) = (specials.bos, specials.eos, specials.addBOS)
        func named(_ key: String) -> Int32? {
            let value = config[key]
            return (value as? String ?? (value as? [String: Any])?["content"] as? String).flatMap { specials.textToID[$0] }
        }
        padding = named("pad_token")
        unknown = unknownText.flatMap { specials.textToID[$0] } ?? named("unk_token")
        let pre = root["pre_tokenizer"] as? [String: Any]
        (addSpacePrefix, spacePrefixAfterSpecial) = try Self.spaces(normalizer: root["normalizer"] as? [String: Any], preTokenizer: pre)
        spacePrefixUnlessSpace = pre?["type"] as? String == "Metaspace"
        if spacePrefixUnlessSpace, pre?["split"] as? Bool ?? true,
           let inner = tokens.first(where: { $0.unicodeScalars.dropFirst().contains("\u{2581}") && !$0.hasPrefix("[PAD") }) {
            throw .unsupportedPreTokenizer("tokenizer.json Metaspace with split: true over a vocabulary with \(inner.debugDescription) (a token with \"▁\" inside; split: false is supported)")
        }
        chatTemplate = HuggingFaceBPE.template(inConfig: config)
    }

    static func isByteToken(_ text: String) -> Bool {
        let u = Array(text.utf8)
        return u.count == 6 && u[0] == 0x3C && u[1] == 0x30 && u[2] == 0x78 && u[5] == 0x3E
            && u[3...4].allSatisfy { (0x30...0x39).contains($0) || (0x41...0x46).contains($0) }
    }

    /// The space prefix the normalizer and pre-tokenizer imply: (prefix at all, also after special tokens).
    static func spaces(normalizer: [String: Any]?, preTokenizer: [String: Any]?) throws(TokenizerError) -> (Bool, Bool) {
        func isSpaceReplace(_ step: [String: Any]) -> Bool {
            step["type"] as? String == "Replace" && (step["pattern"] as? [String: Any])?["String"] as? String == " "
                && step["content"] as? String == "▁"
        }
        var prefix = false
        var replaced = false
        if let normalizer {
            let steps = normalizer["type"] as? String == "Sequence" ? (normalizer["normalizers"] as? [[String: Any]] ?? []) : [normalizer]
            for (i, step) in steps.enumerated() {
                if isSpaceReplace(step) {
                    replaced = true
                } else if step["type"] as? String == "Prepend", step["prepend"] as? String == "▁", i == 0 {
                    prefix = true
                } else {
                    throw .unsupportedPreTokenizer("tokenizer.json normalizer \(step["type"] as? String ?? "?") with a SentencePiece-style BPE model (Replace \" \" → \"▁\" and Prepend \"▁\" are supported)")
                }
            }
        }
        guard let preTokenizer else {
            guard replaced else { throw .unsupportedPreTokenizer("tokenizer.json with neither a Metaspace pre-tokenizer nor a normalizer that spells spaces \"▁\"") }
            return (prefix, true)
        }
        switch preTokenizer["type"] as? String {
        case "Split" where replaced:
            // splitting on " " after every space became "▁" splits nothing (Gemma's files)
            let pattern = (preTokenizer["pattern"] as? [String: Any])?["String"] as? String
            guard pattern == " " else { throw .unsupportedPreTokenizer("tokenizer.json Split on \(pattern?.debugDescription ?? "a regex") with a SentencePiece-style BPE model") }
            return (prefix, true)
        case "Metaspace" where !replaced && !prefix:
            guard preTokenizer["replacement"] as? String ?? "▁" == "▁" else {
                throw .unsupportedPreTokenizer("tokenizer.json Metaspace with replacement \((preTokenizer["replacement"] as? String ?? "?").debugDescription)")
            }
            switch preTokenizer["prepend_scheme"] as? String ?? (preTokenizer["add_prefix_space"] as? Bool ?? true ? "always" : "never") {
            case "always": return (true, true)
            case "first": return (true, false)
            case "never": return (false, true)
            case let other: throw .unsupportedPreTokenizer("tokenizer.json Metaspace prepend_scheme \(other)")
            }
        default:
            throw .unsupportedPreTokenizer("tokenizer.json pre_tokenizer \(preTokenizer["type"] as? String ?? "?") with a SentencePiece-style BPE model")
        }
    }

    /// The tokenizer these arrays make.
    public func tokenizer() throws(TokenizerError) -> SentencePieceTokenizer {
        try SentencePieceTokenizer(tokens: tokens, scores: scores, tokenTypes: tokenTypes,
                                   specialTokens: SpecialTokenIDs(bos: bos, eos: eos, unknown: unknown),
                                   addBOS: addBOS, addEOS: false, addSpacePrefix: addSpacePrefix,
                                   spacePrefixAfterSpecial: spacePrefixAfterSpecial, spacePrefixUnlessSpace: spacePrefixUnlessSpace)
    }

    /// The `tokenizer.ggml.*` entries (and `tokenizer.chat_template`) of a GGUF file.
    public var ggufMetadata: [(key: String, value: GGUFValue)] {
        var out: [(String, GGUFValue)] = [
            ("tokenizer.ggml.model", .string("llama")),
            ("tokenizer.ggml.tokens", .array(tokens.map { .string($0) })),
            ("tokenizer.ggml.scores", .array(scores.map { .float32($0) })),
            ("tokenizer.ggml.token_type", .array(tokenTypes.map { .int32(Int32($0)) })),
        ]
        if let bos { out.append(("tokenizer.ggml.bos_token_id", .uint32(UInt32(bos)))) }
        if let eos { out.append(("tokenizer.ggml.eos_token_id", .uint32(UInt32(eos)))) }
        if let unknown { out.append(("tokenizer.ggml.unknown_token_id", .uint32(UInt32(unknown)))) }
        if let padding { out.append(("tokenizer.ggml.padding_token_id", .uint32(UInt32(padding)))) }
        out.append(("tokenizer.ggml.add_bos_token", .bool(addBOS)))
        out.append(("tokenizer.ggml.add_eos_token", .bool(false)))
        out.append(("tokenizer.ggml.add_space_prefix", .bool(addSpacePrefix)))
        if addSpacePrefix && !spacePrefixAfterSpecial {
            out.append((SentencePieceTokenizer.spacePrefixFirstOnlyKey, .bool(true)))
        }
        if addSpacePrefix && spacePrefixUnlessSpace {
            out.append((SentencePieceTokenizer.spacePrefixUnlessSpaceKey, .bool(true)))
        }
        if let chatTemplate { out.append(("tokenizer.chat_template", .string(chatTemplate))) }
        return out
    }
}
