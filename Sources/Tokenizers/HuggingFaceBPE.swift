import Foundation
import GGUF

/// A byte-level BPE `tokenizer.json` (GPT-2, SmolLM, Llama 3, Qwen 2 and their kin) with the folder's
/// `tokenizer_config.json`, `generation_config.json` and `config.json`, read into the arrays a GGUF file stores — the
/// same facts llama.cpp's `convert_hf_to_gguf.py` writes — so a folder's tokenizer and a GGUF's are one code path.
///
/// The pre-tokenizer is recognised by its shape: `ByteLevel` with its regex (GPT-2), `Digits` then `ByteLevel`
/// (SmolLM, StarCoder), or a `Split` on Llama 3's, Qwen 2's or GPT-2's pattern then `ByteLevel` without a regex.
/// Anything else is refused by name rather than tokenized differently from the model's own tokenizer.
/// A `NFC` normalizer is accepted and, as in llama.cpp, not applied (text arriving in NFC, as nearly all does,
/// tokenizes the same).
public struct HuggingFaceBPE: Sendable, Equatable {
    /// Every token's text, byte-level spelled; added tokens as their plain text; `[PADn]` for unused ids.
    public var tokens: [String]
    /// llama.cpp's token types: 1 normal, 3 control (added and special), 4 user-defined (added), 5 unused.
    public var tokenTypes: [Int]
    /// `"left right"` in rank order.
    public var merges: [String]
    /// llama.cpp's `tokenizer.ggml.pre` name for the pre-tokenizer (`gpt-2`, `smollm`, `llama-bpe`, `qwen2`).
    public var pre: String
    public var bos: Int32?
    public var eos: Int32?
    public var unknown: Int32?
    public var addBOS: Bool
    /// `tokenizer_config.json`'s `chat_template` (or the folder's `chat_template.jinja`).
    public var chatTemplate: String?

    /// Reads the tokenizer of a model folder; `vocabularySize` (config.json's `vocab_size`) pads the token list
    /// with unused entries when the model's embedding has more rows than the tokenizer has tokens.
    public init(folder: URL, vocabularySize: Int? = nil) throws(TokenizerError) {
        let tokenizerURL = folder.appendingPathComponent("tokenizer.json")
        guard let root = Self.json(tokenizerURL) else {
            throw .invalidVocabulary("\(tokenizerURL.path) is missing or not a JSON object")
        }
        let config = Self.json(folder.appendingPathComponent("tokenizer_config.json")) ?? [:]
        try self.init(tokenizer: root, config: config, vocabularySize: vocabularySize)
        chatTemplate = Self.template(inFolder: folder)
        // ids named only in generation_config.json or config.json
        for name in ["generation_config.json", "config.json"] {
            guard let c = Self.json(folder.appendingPathComponent(name)) else { continue }
            if bos == nil { bos = Self.firstID(c["bos_token_id"], count: tokens.count) }
            if eos == nil { eos = Self.firstID(c["eos_token_id"], count: tokens.count) }
        }
    }

    /// From the parsed `tokenizer.json` and `tokenizer_config.json`.
    public init(tokenizer root: [String: Any], config: [String: Any], vocabularySize: Int? = nil) throws(TokenizerError) {
        guard let model = root["model"] as? [String: Any] else { throw .missingKey("model") }
        guard model["type"] as? String == "BPE" else { throw .unsupportedModel("tokenizer.json model \(model["type"] as? String ?? "?")") }
        if model["byte_fallback"] as? Bool == true {
            throw .unsupportedModel("tokenizer.json BPE with byte_fallback (SentencePiece-style BPE)")
        }
        let (byID, types) = try Self.tokensByID(root: root, model: model)
        let count = max((byID.keys.max() ?? -1) + 1, vocabularySize ?? 0)
        tokens = []
        tokenTypes = []
        tokens.reserveCapacity(count)
        tokenTypes.reserveCapacity(count)
        for id in 0..<count {
            if let text = byID[id] {
                tokens.append(text)
                tokenTypes.append(types[id] ?? 1)
            } else {
                tokens.append("[PAD\(id)]")
                tokenTypes.append(5)
            }
        }
        guard let rawMerges = model["merges"] as? [Any] else { throw .missingKey("model.merges") }
        merges = []
        merges.reserveCapacity(rawMerges.count)
        for m in rawMerges {
            if let s = m as? String {
                merges.append(s)
            } else if let pair = m as? [String], pair.count == 2 {
                merges.append(pair[0] + " " + pair[1])
            } else {
                throw .invalidVocabulary("model.merges: an entry that is neither \"a b\" nor [a, b]")
            }
        }
        pre = try Self.preTokenizer(root["pre_tokenizer"] as? [String: Any], ignoreMerges: model["ignore_merges"] as? Bool ?? false)
        if let normalizer = root["normalizer"] as? [String: Any], normalizer["type"] as? String != "NFC" {
            throw .unsupportedPreTokenizer("tokenizer.json normalizer \(normalizer["type"] as? String ?? "?") with a byte-level BPE model")
        }
        let specials = Self.specialTokens(byID: byID, root: root, config: config)
        (bos, eos, addBOS) = (specials.bos, specials.eos, specials.addBOS)
        unknown = (model["unk_token"] as? String).flatMap { specials.textToID[$0] }
        chatTemplate = Self.template(inConfig: config)
    }

    /// `model.vocab` (text → id) and `added_tokens` by id, with llama.cpp's type of each added token (3 control for a
    /// special one, 4 user-defined otherwise).
    static func tokensByID(root: [String: Any], model: [String: Any]) throws(TokenizerError) -> (byID: [Int: String], added: [Int: Int]) {
        guard let vocab = model["vocab"] as? [String: Any] else { throw .missingKey("model.vocab") }
        var byID: [Int: String] = [:]
        byID.reserveCapacity(vocab.count)
        for (text, value) in vocab {
            guard let id = (value as? NSNumber)?.intValue, id >= 0, id < 1 << 24 else {
                throw .invalidVocabulary("model.vocab: \(text.debugDescription) has id \(value)")
            }
            byID[id] = text
        }
        var added: [Int: Int] = [:]
        for case let entry as [String: Any] in root["added_tokens"] as? [Any] ?? [] {
            guard let id = (entry["id"] as? NSNumber)?.intValue, id >= 0, id < 1 << 24, let content = entry["content"] as? String else {
                throw .invalidVocabulary("added_tokens: an entry without a valid id and content")
            }
            byID[id] = content
            added[id] = entry["special"] as? Bool ?? false ? 3 : 4
        }
        return (byID, added)
    }

    /// BOS and EOS as `tokenizer_config.json` names them, and whether a BOS goes first: the one the post-processor
    /// puts first (Llama 3's, Gemma's TemplateProcessing), unless the config says otherwise.
    static func specialTokens(byID: [Int: String], root: [String: Any], config: [String: Any])
        -> (textToID: [String: Int32], bos: Int32?, eos: Int32?, addBOS: Bool) {
        var textToID: [String: Int32] = [:]
        for (id, text) in byID { textToID[text] = Int32(id) }
        func special(_ key: String) -> Int32? {
            let value = config[key]
            let text = value as? String ?? (value as? [String: Any])?["content"] as? String
            return text.flatMap { textToID[$0] }
        }
        var bos = special("bos_token")
        let addBOS: Bool
        let template = templateProcessing(root["post_processor"] as? [String: Any])
        let first = ((template?["single"] as? [Any])?.first as? [String: Any])?["SpecialToken"] as? [String: Any]
        if let name = first?["id"] as? String, let id = textToID[name] {
            if bos == nil { bos = id }
            addBOS = config["add_bos_token"] as? Bool ?? (id == bos)
        } else {
            addBOS = config["add_bos_token"] as? Bool ?? false
        }
        return (textToID, bos, special("eos_token"), addBOS)
    }

    /// A folder's chat template: `chat_template.jinja` (where transformers saves it), else `tokenizer_config.json`'s
    /// `chat_template` (its `default` entry when it is a list).
    public static func template(inFolder folder: URL) -> String? {
        if let data = FileManager.default.contents(atPath: folder.appendingPathComponent("chat_template.jinja").path) {
            return String(decoding: data, as: UTF8.self)
        }
        return json(folder.appendingPathComponent("tokenizer_config.json")).flatMap(template(inConfig:))
    }

    static func template(inConfig config: [String: Any]) -> String? {
        if let text = config["chat_template"] as? String { return text }
        let list = config["chat_template"] as? [[String: Any]]
        return (list?.first { $0["name"] as? String == "default" } ?? list?.first)?["template"] as? String
    }

    /// The tokenizer these arrays make.
    public func tokenizer() throws(TokenizerError) -> BPETokenizer {
        guard let preTokenizer = PreTokenizer(llamaName: pre) else { throw .unsupportedPreTokenizer(pre) }
        return try BPETokenizer(tokens: tokens, tokenTypes: tokenTypes, merges: merges, preTokenizer: preTokenizer,
                                specialTokens: SpecialTokenIDs(bos: bos, eos: eos, unknown: unknown), addBOS: addBOS)
    }

    /// The `tokenizer.ggml.*` entries (and `tokenizer.chat_template`) of a GGUF file.
    public var ggufMetadata: [(key: String, value: GGUFValue)] {
        var out: [(String, GGUFValue)] = [
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.pre", .string(pre)),
            ("tokenizer.ggml.tokens", .array(tokens.map { .string($0) })),
            ("tokenizer.ggml.token_type", .array(tokenTypes.map { .int32(Int32($0)) })),
            ("tokenizer.ggml.merges", .array(merges.map { .string($0) })),
        ]
        if let bos { out.append(("tokenizer.ggml.bos_token_id", .uint32(UInt32(bos)))) }
        if let eos { out.append(("tokenizer.ggml.eos_token_id", .uint32(UInt32(eos)))) }
        if let unknown { out.append(("tokenizer.ggml.unknown_token_id", .uint32(UInt32(unknown)))) }
        out.append(("tokenizer.ggml.add_bos_token", .bool(addBOS)))
        if let chatTemplate { out.append(("tokenizer.chat_template", .string(chatTemplate))) }
        return out
    }

    // MARK: recognising the pre-tokenizer

    public static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    public static let llama3Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    public static let qwen2Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    static func preTokenizer(_ pre: [String: Any]?, ignoreMerges: Bool) throws(TokenizerError) -> String {
        guard let pre else { throw .unsupportedPreTokenizer("tokenizer.json without a pre_tokenizer (byte-level BPE needs one)") }
        let steps = pre["type"] as? String == "Sequence" ? (pre["pretokenizers"] as? [[String: Any]] ?? []) : [pre]
        let kinds = steps.map { $0["type"] as? String ?? "?" }
        func byteLevel(_ step: [String: Any], regex: Bool) -> Bool {
            step["type"] as? String == "ByteLevel" && (step["use_regex"] as? Bool ?? true) == regex && !(step["add_prefix_space"] as? Bool ?? false)
        }
        switch steps.count {
        case 1 where byteLevel(steps[0], regex: true):
            return "gpt-2"
        case 2 where steps[0]["type"] as? String == "Digits" && steps[0]["individual_digits"] as? Bool == true && byteLevel(steps[1], regex: true):
            return "smollm"
        case 2 where steps[0]["type"] as? String == "Split" && byteLevel(steps[1], regex: false):
            let pattern = (steps[0]["pattern"] as? [String: Any])?["Regex"] as? String
            let isolated = steps[0]["behavior"] as? String == "Isolated" && !(steps[0]["invert"] as? Bool ?? false)
            if isolated, pattern == llama3Pattern { return "llama-bpe" }
            if isolated, pattern == qwen2Pattern, !ignoreMerges { return "qwen2" }
            if isolated, pattern == gpt2Pattern, !ignoreMerges { return "gpt-2" }
            throw .unsupportedPreTokenizer("tokenizer.json Split on the pattern \(pattern?.debugDescription ?? "?") (Llama 3's, Qwen 2's and GPT-2's are supported)")
        default:
            throw .unsupportedPreTokenizer("tokenizer.json pre_tokenizer \(kinds.joined(separator: " + "))")
        }
    }

    static func templateProcessing(_ post: [String: Any]?) -> [String: Any]? {
        guard let post else { return nil }
        if post["type"] as? String == "TemplateProcessing" { return post }
        if post["type"] as? String == "Sequence" {
            for case let p as [String: Any] in post["processors"] as? [Any] ?? [] where p["type"] as? String == "TemplateProcessing" { return p }
        }
        return nil
    }

    static func firstID(_ value: Any?, count: Int) -> Int32? {
        let n = (value as? NSNumber)?.intValue ?? ((value as? [Any])?.first as? NSNumber)?.intValue
        guard let n, n >= 0, n < count else { return nil }
        return Int32(n)
    }

    static func json(_ url: URL) -> [String: Any]? {
        guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }

}
