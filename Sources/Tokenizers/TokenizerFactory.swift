import GGUF

/// Builds the right tokenizer for a model file from its `tokenizer.ggml.*` metadata.
public enum TokenizerFactory {
    /// Reads the vocabulary of `file`. Throws `TokenizerError` for tokenizer kinds or pre-tokenizers this
    /// implementation does not provide (naming them) and for missing or inconsistent vocabulary data.
    public static func load(from file: GGUFFile) throws -> any Tokenizer {
        try load(metadata: GGUFMetadata(file: file))
    }

    static func load(metadata: some TokenizerMetadata) throws(TokenizerError) -> any Tokenizer {
        guard let model = metadata.string(Keys.model) else { throw .missingKey(Keys.model) }
        switch model {
        case "gpt2":
            return try loadByteLevelBPE(metadata)
        case "llama":
            return try loadSentencePiece(metadata)
        case "gemma4":
            return try loadRawCharacterBPE(metadata)
        case "bert":
            return try loadWordPiece(metadata)
        default:
            throw .unsupportedModel(model)
        }
    }

    private static func loadByteLevelBPE(_ metadata: some TokenizerMetadata) throws(TokenizerError) -> BPETokenizer {
        // without a pre-tokenizer name llama.cpp warns and uses its default patterns
        let preName = metadata.string(Keys.pre) ?? "default"
        guard let preTokenizer = PreTokenizer(llamaName: preName) else { throw .unsupportedPreTokenizer(preName) }
        guard let tokens = metadata.stringArray(Keys.tokens) else { throw .missingKey(Keys.tokens) }
        guard let merges = metadata.stringArray(Keys.merges) else { throw .missingKey(Keys.merges) }
        let tokenTypes = metadata.intArray(Keys.tokenType)

        return try BPETokenizer(tokens: tokens, tokenTypes: tokenTypes, merges: merges, preTokenizer: preTokenizer,
                                specialTokens: specialTokenIDs(metadata), addBOS: metadata.bool(Keys.addBOS) ?? (preTokenizer == .llama3))
    }

    /// Gemma 4's BPE over raw text (llama.cpp always adds its BOS, whatever the file says).
    private static func loadRawCharacterBPE(_ metadata: some TokenizerMetadata) throws(TokenizerError) -> BPETokenizer {
        guard let tokens = metadata.stringArray(Keys.tokens) else { throw .missingKey(Keys.tokens) }
        guard let merges = metadata.stringArray(Keys.merges) else { throw .missingKey(Keys.merges) }
        return try BPETokenizer(tokens: tokens, tokenTypes: metadata.intArray(Keys.tokenType), merges: merges, preTokenizer: .gpt2,
                                specialTokens: specialTokenIDs(metadata), addBOS: true, rawCharacters: true)
    }

    /// llama.cpp's defaults for this kind: BOS 1, EOS 2, unknown 0, BOS added, a space prefix, no EOS added.
    private static func loadSentencePiece(_ metadata: some TokenizerMetadata) throws(TokenizerError) -> SentencePieceTokenizer {
        guard let tokens = metadata.stringArray(Keys.tokens) else { throw .missingKey(Keys.tokens) }
        var special = specialTokenIDs(metadata)
        if metadata.int(Keys.bos) == nil { special.bos = 1 }
        if metadata.int(Keys.eos) == nil { special.eos = 2 }
        if metadata.int(Keys.unknown) == nil { special.unknown = 0 }
        return try SentencePieceTokenizer(
            tokens: tokens, scores: metadata.floatArray(Keys.scores), tokenTypes: metadata.intArray(Keys.tokenType),
            specialTokens: special, addBOS: metadata.bool(Keys.addBOS) ?? true, addEOS: metadata.bool(Keys.addEOS) ?? false,
            addSpacePrefix: metadata.bool(Keys.addSpacePrefix) ?? true,
            spacePrefixAfterSpecial: !(metadata.bool(SentencePieceTokenizer.spacePrefixFirstOnlyKey) ?? false),
            spacePrefixUnlessSpace: metadata.bool(SentencePieceTokenizer.spacePrefixUnlessSpaceKey) ?? false)
    }

    /// BERT's vocabulary as llama.cpp writes it: initial pieces `▁`-prefixed, `[CLS]` … `[SEP]` around a sequence,
    /// lowercasing and accent stripping unless `tokenizer.ggml.normalizer.*` say otherwise.
    private static func loadWordPiece(_ metadata: some TokenizerMetadata) throws(TokenizerError) -> WordPieceTokenizer {
        guard let tokens = metadata.stringArray(Keys.tokens) else { throw .missingKey(Keys.tokens) }
        let types = metadata.intArray(Keys.tokenType) ?? []
        let control = Set(types.enumerated().filter { $0.element == 3 || $0.element == 2 }.map { Int32($0.offset) })
        func id(_ key: String, _ fallback: Int32?) -> Int32? { metadata.int(key).map { Int32(clamping: $0) } ?? fallback }
        let lowercase = metadata.bool("tokenizer.ggml.normalizer.lowercase") ?? true
        return try WordPieceTokenizer(
            texts: tokens, continuationPrefix: nil, controlIDs: control, unknown: id(Keys.unknown, 100) ?? 100,
            cls: id("tokenizer.ggml.cls_token_id", nil) ?? id(Keys.bos, nil), sep: id("tokenizer.ggml.seperator_token_id", nil) ?? id(Keys.eos, nil),
            options: .init(lowercase: lowercase, stripAccents: metadata.bool("tokenizer.ggml.normalizer.strip_accents") ?? lowercase))
    }

    /// The special ids the metadata declares.
    private static func specialTokenIDs(_ metadata: some TokenizerMetadata) -> SpecialTokenIDs {
        func id(_ key: String) -> Int32? {
            guard let value = metadata.int(key), value >= 0, value <= Int(Int32.max) else { return nil }
            return Int32(value)
        }
        return SpecialTokenIDs(
            bos: id(Keys.bos),
            eos: id(Keys.eos),
            unknown: id(Keys.unknown),
            eot: id("tokenizer.ggml.eot_token_id"),
            eom: id("tokenizer.ggml.eom_token_id"),
            fimPad: id("tokenizer.ggml.fim_pad_token_id"),
            fimRep: id("tokenizer.ggml.fim_rep_token_id"),
            fimSep: id("tokenizer.ggml.fim_sep_token_id"))
    }

    enum Keys {
        static let model = "tokenizer.ggml.model"
        static let pre = "tokenizer.ggml.pre"
        static let tokens = "tokenizer.ggml.tokens"
        static let tokenType = "tokenizer.ggml.token_type"
        static let merges = "tokenizer.ggml.merges"
        static let scores = "tokenizer.ggml.scores"
        static let addBOS = "tokenizer.ggml.add_bos_token"
        static let addEOS = "tokenizer.ggml.add_eos_token"
        static let addSpacePrefix = "tokenizer.ggml.add_space_prefix"
        static let bos = "tokenizer.ggml.bos_token_id"
        static let eos = "tokenizer.ggml.eos_token_id"
        static let unknown = "tokenizer.ggml.unknown_token_id"
    }
}

/// The metadata accessors the factory needs (a seam between the factory and the GGUF reader).
protocol TokenizerMetadata {
    func string(_ key: String) -> String?
    func int(_ key: String) -> Int?
    func bool(_ key: String) -> Bool?
    func stringArray(_ key: String) -> [String]?
    func intArray(_ key: String) -> [Int]?
    func floatArray(_ key: String) -> [Float]?
}

struct GGUFMetadata: TokenizerMetadata {
    let file: GGUFFile
    func string(_ key: String) -> String? { file.string(key) }
    func int(_ key: String) -> Int? { file.int(key) }
    func bool(_ key: String) -> Bool? { file.bool(key) }
    func stringArray(_ key: String) -> [String]? { file.stringArray(key) }
    func intArray(_ key: String) -> [Int]? { file.intArray(key) }
    func floatArray(_ key: String) -> [Float]? { file.floatArray(key) }
}
