import Foundation

/// Reads a Hugging Face `tokenizer.json` (the `tokenizers` library's serialization): the model, its normalizer,
/// pre-tokenizer, post-processor and added tokens: WordPiece with a BertNormalizer and a BertPreTokenizer (the BERT
/// family of embedders), byte-level BPE (`HuggingFaceBPE`) and SentencePiece-style BPE with byte fallback
/// (`HuggingFaceSentencePiece`) and Unigram (`UnigramTokenizer`); other kinds are refused by name.
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
        case "Unigram": return try unigram(root, model)
        default: throw .unsupportedModel("tokenizer.json model \(type)")
        }
    }

    /// A Unigram model with its normalizers (Precompiled, Replace, NFKC, NFC, Lowercase), a Metaspace pre-tokenizer
    /// (after WhitespaceSplit or alone) and the special tokens its post-processor puts around a sequence.
    static func unigram(_ root: [String: Any], _ model: [String: Any]) throws(TokenizerError) -> UnigramTokenizer {
        guard model["byte_fallback"] as? Bool != true else { throw .unsupportedModel("tokenizer.json Unigram with byte_fallback") }
        guard let vocab = model["vocab"] as? [Any] else { throw .missingKey("model.vocab") }
        var pieces: [(text: String, score: Double)] = []
        pieces.reserveCapacity(vocab.count)
        for entry in vocab {
            guard let pair = entry as? [Any], pair.count == 2, let text = pair[0] as? String, let score = (pair[1] as? NSNumber)?.doubleValue,
                  score.isFinite else {
                throw .invalidVocabulary("model.vocab: entry \(pieces.count) is not [piece, score]")
            }
            pieces.append((text, score))
        }
        guard let unk = (model["unk_id"] as? NSNumber)?.intValue, unk >= 0, unk < pieces.count else {
            throw .invalidVocabulary("model.unk_id is missing or outside the vocabulary")
        }
        var types = [Int](repeating: 1, count: pieces.count)
        types[unk] = 2
        var textToID: [String: Int32] = [:]
        for case let added as [String: Any] in root["added_tokens"] as? [Any] ?? [] {
            guard let id = (added["id"] as? NSNumber)?.intValue, id >= 0, id < 1 << 24, let content = added["content"] as? String else {
                throw .invalidVocabulary("added_tokens: an entry without a valid id and content")
            }
            while pieces.count <= id {
                pieces.append(("[PAD\(pieces.count)]", 0))
                types.append(5)
            }
            pieces[id].text = content
            types[id] = added["special"] as? Bool ?? false ? 3 : 4
            textToID[content] = Int32(id)
        }
        for (id, piece) in pieces.enumerated() where textToID[piece.text] == nil { textToID[piece.text] = Int32(id) }

        var normalizers: [UnigramTokenizer.Normalizer] = []
        if let normalizer = root["normalizer"] as? [String: Any] {
            let steps = normalizer["type"] as? String == "Sequence" ? (normalizer["normalizers"] as? [[String: Any]] ?? []) : [normalizer]
            for step in steps {
                switch step["type"] as? String {
                case "Precompiled":
                    if let map = step["precompiled_charsmap"] as? String, !map.isEmpty { normalizers.append(.precompiled(try PrecompiledCharsmap(base64: map))) }
                case "Replace":
                    let pattern = step["pattern"] as? [String: Any]
                    let content = step["content"] as? String ?? ""
                    if let literal = pattern?["String"] as? String {
                        normalizers.append(.replace(literal, content))
                    } else if pattern?["Regex"] as? String == " {2,}" {
                        normalizers.append(.collapseSpaces(content))
                    } else {
                        throw .unsupportedPreTokenizer("tokenizer.json Replace of the regex \((pattern?["Regex"] as? String ?? "?").debugDescription) with a Unigram model")
                    }
                case "NFKC": normalizers.append(.nfkc)
                case "NFC": normalizers.append(.nfc)
                case "Lowercase": normalizers.append(.lowercase)
                case let other: throw .unsupportedPreTokenizer("tokenizer.json normalizer \(other ?? "?") with a Unigram model")
                }
            }
        }
        guard let pre = root["pre_tokenizer"] as? [String: Any] else {
            throw .unsupportedPreTokenizer("tokenizer.json Unigram without a pre-tokenizer (Metaspace is supported)")
        }
        let steps = pre["type"] as? String == "Sequence" ? (pre["pretokenizers"] as? [[String: Any]] ?? []) : [pre]
        let kinds = steps.map { $0["type"] as? String ?? "?" }
        guard kinds == ["Metaspace"] || kinds == ["WhitespaceSplit", "Metaspace"], let metaspace = steps.last,
              metaspace["replacement"] as? String ?? "\u{2581}" == "\u{2581}" else {
            throw .unsupportedPreTokenizer("tokenizer.json pre_tokenizer \(kinds.joined(separator: " + ")) with a Unigram model (Metaspace, after WhitespaceSplit or alone, is supported)")
        }
        let schemeName = metaspace["prepend_scheme"] as? String ?? (metaspace["add_prefix_space"] as? Bool ?? true ? "always" : "never")
        guard let scheme = UnigramTokenizer.PrependScheme(rawValue: schemeName) else {
            throw .unsupportedPreTokenizer("tokenizer.json Metaspace prepend_scheme \(schemeName)")
        }

        // the special tokens around one sequence
        var bos: Int32?, eos: Int32?
        if let post = root["post_processor"] as? [String: Any] {
            if let template = HuggingFaceBPE.templateProcessing(post) {
                let single = template["single"] as? [Any] ?? []
                func special(_ item: Any?) -> Int32? {
                    ((item as? [String: Any])?["SpecialToken"] as? [String: Any])?["id"].flatMap { $0 as? String }.flatMap { textToID[$0] }
                }
                bos = special(single.first)
                eos = single.count > 1 ? special(single.last) : nil
            } else if post["type"] as? String == "RobertaProcessing" || post["type"] as? String == "BertProcessing" {
                bos = ((post["cls"] as? [Any])?.last as? NSNumber).map { Int32($0.intValue) }
                eos = ((post["sep"] as? [Any])?.last as? NSNumber).map { Int32($0.intValue) }
            }
        }
        return try UnigramTokenizer(pieces: pieces, tokenTypes: types, unknown: Int32(unk), normalizers: normalizers,
                                    whitespaceSplit: kinds.first == "WhitespaceSplit", prependScheme: scheme,
                                    splitOnMetaspace: metaspace["split"] as? Bool ?? true,
                                    bos: bos, eos: eos, addBOS: bos != nil, addEOS: eos != nil)
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
