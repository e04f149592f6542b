import Foundation

/// Reads a Hugging Face `tokenizer.json` (the `tokenizers` library's serialization): the model, its normalizer,
/// pre-tokenizer, post-processor and added tokens: WordPiece with a BertNormalizer and a BertPreTokenizer (the BERT
/// family of embedders), byte-level BPE (`HuggingFaceBPE`) and SentencePiece-style BPE with byte fallback
/// (`HuggingFaceSentencePiece`); other kinds are refused by name.
public enum HuggingFaceTokenizer {
    public static func load(contentsOf url: URL) throws(TokenizerError) -> any Tokenizer {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw .invalidVocabulary("cannot read \(url.path): \(error.localizedDescription)") }
        return try load(json: data)
    }

    public static func load(json data: Data) throws(TokenizerError) -> any Tokenizer {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw .invalidVocabulary("tokenizer.json is not a JSON object")
        }
        guard let model = root["model"] as? [String: Any] else { throw .missingKey("model") }
        let type = model["type"] as? String ?? (model["continuing_subword_prefix"] != nil ? "WordPiece" : "?")
        switch type {
        case "WordPiece": return try wordPiece(root, model)
        case "BPE" where HuggingFaceSentencePiece.applies(to: root):
            return try HuggingFaceSentencePiece(tokenizer: root, config: [:]).tokenizer()
        case "BPE": return try HuggingFaceBPE(tokenizer: root, config: [:]).tokenizer()
        default: throw .unsupportedModel("tokenizer.json model \(type)")
        }
    }

    private static func wordPiece(_ root: [String: Any], _ model: [String: Any]) throws(TokenizerError) -> WordPieceTokenizer {
        guard let vocab = model["vocab"] as? [String: Any] else { throw .missingKey("model.vocab") }
        var texts = [String](repeating: "", count: vocab.count)
        for (text, value) in vocab {
            guard let id = (value as? NSNumber)?.intValue, id >= 0, id < vocab.count else {
                throw .invalidVocabulary("model.vocab: \(text.debugDescription) has id \(value), outside 0..<\(vocab.count)")
            }
            texts[id] = text
        }
        let prefix = model["continuing_subword_prefix"] as? String ?? "##"
        var control = Set<Int32>()
        for case let added as [String: Any] in root["added_tokens"] as? [Any] ?? [] {
            guard let id = (added["id"] as? NSNumber)?.intValue, id >= 0, id < texts.count, added["special"] as? Bool ?? false else { continue }
            control.insert(Int32(id))
        }
        func id(_ text: String?) -> Int32? { text.flatMap { vocab[$0] as? NSNumber }.map { Int32($0.intValue) } }
        guard let unknown = id(model["unk_token"] as? String ?? "[UNK]") else {
            throw .invalidVocabulary("the unknown token \((model["unk_token"] as? String ?? "[UNK]").debugDescription) is not in the vocabulary")
        }
        // The frame around one sequence: TemplateProcessing's `single` or BertProcessing's cls/sep.
        var cls: Int32?, sep: Int32?
        if let post = root["post_processor"] as? [String: Any] {
            switch post["type"] as? String {
            case "TemplateProcessing":
                let single = post["single"] as? [Any] ?? []
                let names = single.compactMap { (($0 as? [String: Any])?["SpecialToken"] as? [String: Any])?["id"] as? String }
                let isFirst = ((single.first as? [String: Any])?["SpecialToken"]) != nil
                let specials = post["special_tokens"] as? [String: Any] ?? [:]
                func idOf(_ name: String) -> Int32? {
                    ((specials[name] as? [String: Any])?["ids"] as? [Any])?.first.flatMap { ($0 as? NSNumber).map { Int32($0.intValue) } } ?? id(name)
                }
                if isFirst, let first = names.first { cls = idOf(first) }
                if names.count >= (isFirst ? 2 : 1), let last = names.last { sep = idOf(last) }
            case "BertProcessing", "RobertaProcessing":
                cls = ((post["cls"] as? [Any])?.last as? NSNumber).map { Int32($0.intValue) }
                sep = ((post["sep"] as? [Any])?.last as? NSNumber).map { Int32($0.intValue) }
            default: break
            }
        }
        var options = WordPieceTokenizer.Options(onlyNonspacingMarks: true,
                                                 maxWordCharacters: (model["max_input_chars_per_word"] as? NSNumber)?.intValue ?? 100)
        if let normalizer = root["normalizer"] as? [String: Any] {
            guard normalizer["type"] as? String == "BertNormalizer" else {
                throw .unsupportedPreTokenizer("normalizer \(normalizer["type"] as? String ?? "?") with a WordPiece model")
            }
            options.lowercase = normalizer["lowercase"] as? Bool ?? true
            options.stripAccents = normalizer["strip_accents"] as? Bool ?? options.lowercase
        } else {
            options.lowercase = false
            options.stripAccents = false
        }
        if let pre = root["pre_tokenizer"] as? [String: Any], let kind = pre["type"] as? String, kind != "BertPreTokenizer" {
            throw .unsupportedPreTokenizer("\(kind) with a WordPiece model (BertPreTokenizer is supported)")
        }
        return try WordPieceTokenizer(texts: texts, continuationPrefix: prefix, controlIDs: control, unknown: unknown, cls: cls, sep: sep,
                                      options: options)
    }
}
