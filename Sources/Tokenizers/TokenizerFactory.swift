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
        default:
            throw .unsupportedModel(model)
        }
    }

    private static func loadByteLevelBPE(_ metadata: some TokenizerMetadata) throws(TokenizerError) -> BPETokenizer {
        guard let preName = metadata.string(Keys.pre) else { throw .missingKey(Keys.pre) }
        guard let preTokenizer = PreTokenizer(llamaName: preName) else { throw .unsupportedPreTokenizer(preName) }
        guard let tokens = metadata.stringArray(Keys.tokens) else { throw .missingKey(Keys.tokens) }
        guard let merges = metadata.stringArray(Keys.merges) else { throw .missingKey(Keys.merges) }
        let tokenTypes = metadata.intArray(Keys.tokenType)

        func id(_ key: String) -> Int32? {
            guard let value = metadata.int(key), value >= 0, value <= Int(Int32.max) else { return nil }
            return Int32(value)
        }
        let special = BPETokenizer.SpecialTokenIDs(
            bos: id("tokenizer.ggml.bos_token_id"),
            eos: id("tokenizer.ggml.eos_token_id"),
            eot: id("tokenizer.ggml.eot_token_id"),
            eom: id("tokenizer.ggml.eom_token_id"),
            fimPad: id("tokenizer.ggml.fim_pad_token_id"),
            fimRep: id("tokenizer.ggml.fim_rep_token_id"),
            fimSep: id("tokenizer.ggml.fim_sep_token_id"))
        return try BPETokenizer(tokens: tokens, tokenTypes: tokenTypes, merges: merges, preTokenizer: preTokenizer,
                                specialTokens: special, addBOS: metadata.bool(Keys.addBOS) ?? false)
    }

    enum Keys {
        static let model = "tokenizer.ggml.model"
        static let pre = "tokenizer.ggml.pre"
        static let tokens = "tokenizer.ggml.tokens"
        static let tokenType = "tokenizer.ggml.token_type"
        static let merges = "tokenizer.ggml.merges"
        static let addBOS = "tokenizer.ggml.add_bos_token"
    }
}

/// The metadata accessors the factory needs (a seam between the factory and the GGUF reader).
protocol TokenizerMetadata {
    func string(_ key: String) -> String?
    func int(_ key: String) -> Int?
    func bool(_ key: String) -> Bool?
    func stringArray(_ key: String) -> [String]?
    func intArray(_ key: String) -> [Int]?
}

struct GGUFMetadata: TokenizerMetadata {
    let file: GGUFFile
    func string(_ key: String) -> String? { file.string(key) }
    func int(_ key: String) -> Int? { file.int(key) }
    func bool(_ key: String) -> Bool? { file.bool(key) }
    func stringArray(_ key: String) -> [String]? { file.stringArray(key) }
    func intArray(_ key: String) -> [Int]? { file.intArray(key) }
}
