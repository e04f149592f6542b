/// A text ⇄ token-id mapping read from a model's vocabulary.
///
/// Implementations are immutable value types, so one instance can be shared freely between tasks.
public protocol Tokenizer: Sendable {
    /// Number of entries in the vocabulary (valid ids are `0 ..< vocabularySize`).
    var vocabularySize: Int { get }
    /// `tokenizer.ggml.bos_token_id`, when the model declares one.
    var bosTokenID: Int32? { get }
    /// `tokenizer.ggml.eos_token_id`, when the model declares one.
    var eosTokenID: Int32? { get }
    /// `tokenizer.ggml.add_bos_token`: whether a prompt should start with BOS. `encode` never adds it.
    var addBOS: Bool { get }
    /// `tokenizer.ggml.add_eos_token`: whether a prompt should end with EOS. `encode` never adds it.
    var addEOS: Bool { get }

    /// Token ids for `text`. With `parseSpecial`, control tokens written in the text (e.g. `<|im_start|>`)
    /// become their ids; user-defined tokens are always recognised. Never adds BOS.
    func encode(_ text: String, parseSpecial: Bool) -> [Int32]

    /// The raw bytes one token stands for (byte-level decoded). Control, unknown and user-defined tokens
    /// give their text; unused/byte/undefined tokens and out-of-range ids give no bytes.
    func tokenBytes(_ id: Int32) -> [UInt8]

    /// The concatenated bytes of `ids`, decoded as UTF-8 (invalid sequences become U+FFFD).
    func decode(_ ids: [Int32]) -> String

    /// Whether generation should stop at `id` (EOS, EOT and the chat-end tokens llama.cpp recognises).
    func isEndOfGeneration(_ id: Int32) -> Bool

    /// The id of the vocabulary entry spelled exactly `text` (as stored in the vocabulary), if any.
    func tokenID(for text: String) -> Int32?

    /// Whether `id` is a control token (`<|im_start|>`, `<bos>`…): never text of an answer.
    func isControl(_ id: Int32) -> Bool
}

extension Tokenizer {
    public var addEOS: Bool { false }

    /// `encode`, with BOS and EOS added where the vocabulary asks for them (llama.cpp's `add_special`).
    public func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int32] {
        var ids = encode(text, parseSpecial: parseSpecial)
        guard addSpecial else { return ids }
        if addBOS, let bos = bosTokenID { ids.insert(bos, at: 0) }
        if addEOS, let eos = eosTokenID { ids.append(eos) }
        return ids
    }

    public func decode(_ ids: [Int32]) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        for id in ids { bytes.append(contentsOf: tokenBytes(id)) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Why a vocabulary could not be turned into a tokenizer.
public enum TokenizerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A required metadata key is absent.
    case missingKey(String)
    /// The vocabulary data is present but inconsistent (the message says how).
    case invalidVocabulary(String)
    /// `tokenizer.ggml.model` names a tokenizer kind this implementation does not provide.
    case unsupportedModel(String)
    /// `tokenizer.ggml.pre` names a pre-tokenizer this implementation does not provide.
    case unsupportedPreTokenizer(String)

    public var description: String {
        switch self {
        case .missingKey(let key):
            return "tokenizer: the model file has no `\(key)`"
        case .invalidVocabulary(let why):
            return "tokenizer: invalid vocabulary: \(why)"
        case .unsupportedModel(let name):
            return "tokenizer: unsupported tokenizer model \"\(name)\" (supported: \"gpt2\" byte-level BPE, \"llama\" SentencePiece, \"bert\" WordPiece, \"gemma4\" raw-text BPE)"
        case .unsupportedPreTokenizer(let name):
            let known = PreTokenizer.supportedNames.sorted().joined(separator: ", ")
            return "tokenizer: unsupported pre-tokenizer \"\(name)\" (supported: \(known))"
        }
    }
}
