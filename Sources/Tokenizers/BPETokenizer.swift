/// Byte-level BPE (`tokenizer.ggml.model = "gpt2"`), matching llama.cpp's `llm_tokenizer_bpe`:
/// special tokens are cut out of the text first, the rest is pre-tokenized into words, each word is spelled
/// with GPT-2's byte characters and merged by merge rank (lowest rank first, leftmost first on ties).
///
/// An immutable value: all tables are built once in `init` and shared by copies.
public struct BPETokenizer: Tokenizer {
    /// The special-token ids a vocabulary may declare (kept here for existing callers).
    public typealias SpecialTokenIDs = Tokenizers.SpecialTokenIDs

    public var vocabularySize: Int { vocabulary.count }
    public var bosTokenID: Int32? { vocabulary.specialIDs.bos }
    public var eosTokenID: Int32? { vocabulary.specialIDs.eos }
    public let addBOS: Bool
    public let preTokenizer: PreTokenizer

    /// Texts, attributes, special tokens and decoded pieces.
    let vocabulary: Vocabulary
    let merges: MergeTable
    /// Gemma 4's kind (`tokenizer.ggml.model = gemma4`): spaces spelled "▁", text cut only between runs of newlines
    /// and the rest, merges from UTF-8 characters instead of bytes, `<0xAB>` tokens for what no token covers.
    let rawCharacters: Bool
    /// With `rawCharacters`: each byte's `<0xAB>` token, -1 when the vocabulary lacks it.
    let byteTokens: [Int32]

    /// Builds a tokenizer from the arrays a GGUF file stores.
    /// - Parameters:
    ///   - tokens: `tokenizer.ggml.tokens` (byte-level spelled).
    ///   - tokenTypes: `tokenizer.ggml.token_type` (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused,
    ///     6 byte); all normal when absent.
    ///   - merges: `tokenizer.ggml.merges`, `"left right"` in rank order.
    public init(tokens: [String], tokenTypes: [Int]?, merges: [String], preTokenizer: PreTokenizer,
                specialTokens: SpecialTokenIDs = SpecialTokenIDs(), addBOS: Bool = false,
                rawCharacters: Bool = false) throws(TokenizerError) {
        self.preTokenizer = preTokenizer
        self.addBOS = addBOS
        self.rawCharacters = rawCharacters
        let texts = Vocabulary.texts(tokens)
        vocabulary = try Vocabulary(texts: texts, tokenTypes: tokenTypes, specialTokens: specialTokens,
                                    normalBytes: rawCharacters ? SentencePieceTokenizer.unescapeWhitespace : ByteLevel.decode)
        let hex = Array("0123456789ABCDEF")
        var textToIDForBytes: [String: Int32] = [:]
        if rawCharacters {
            for (index, text) in texts.enumerated() where text.hasPrefix("<0x") && text.utf8.count == 6 { textToIDForBytes[text] = Int32(index) }
        }
        byteTokens = (0 ..< 256).map { byte in
            rawCharacters ? textToIDForBytes["<0x\(hex[byte >> 4])\(hex[byte & 15])>"] ?? -1 : -1
        }
        var textToID: [String: Int32] = [:]
        textToID.reserveCapacity(texts.count)
        for (index, text) in texts.enumerated() { textToID[text] = Int32(index) }
        self.merges = MergeTable(textToID: textToID, vocabularySize: texts.count, merges: merges)
    }

    // MARK: Tokenizer

    public func tokenBytes(_ id: Int32) -> [UInt8] { vocabulary.tokenBytes(id) }

    public func decode(_ ids: [Int32]) -> String { vocabulary.decode(ids) }

    public func isEndOfGeneration(_ id: Int32) -> Bool { vocabulary.endOfGeneration.contains(id) }

    public func tokenID(for text: String) -> Int32? { vocabulary.table.id(for: text) }

    /// Whether llama.cpp treats the token as a control token (matched only when parsing special tokens).
    public func isControl(_ id: Int32) -> Bool { vocabulary.isControl(id) }

    public func encode(_ text: String, parseSpecial: Bool) -> [Int32] {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { return [] }
        var output: [Int32] = []
        output.reserveCapacity(bytes.count / 3 + 4)
        var preScratch = PreTokenizerScratch()
        var bpeScratch = BPEScratch()
        for fragment in vocabulary.partition(bytes, parseSpecial: parseSpecial) {
            switch fragment {
            case .token(let id):
                output.append(id)
            case .text(let range) where rawCharacters:
                encodeRawCharacters(bytes, range, scratch: &bpeScratch, into: &output)
            case .text(let range):
                preTokenizer.split(bytes, range, scratch: &preScratch) { word in
                    // a whole word that is a token (spelled byte-level) is taken as it is
                    if preTokenizer.ignoresMerges, word.count > 1,
                       let id = vocabulary.table.id(for: bytes[word].reduce(into: "") { $0 += ByteLevel.string(for: $1) }) {
                        output.append(id)
                    } else {
                        merges.encode(bytes, word, scratch: &bpeScratch, into: &output)
                    }
                }
            }
        }
        return output
    }

    /// Gemma 4's path (llama.cpp's `gemma4` pre-tokenizer): spaces become "▁"; runs of newlines and runs of other
    /// text are words; a run of newlines that is a token is taken whole; the rest merge from characters.
    private func encodeRawCharacters(_ bytes: [UInt8], _ range: Range<Int>, scratch: inout BPEScratch, into output: inout [Int32]) {
        var text: [UInt8] = []
        text.reserveCapacity(range.count + 8)
        for byte in bytes[range] {
            if byte == 0x20 { text.append(contentsOf: [0xE2, 0x96, 0x81]) } else { text.append(byte) }
        }
        var start = 0
        while start < text.count {
            let newline = text[start] == 0x0A
            var end = start + 1
            while end < text.count, (text[end] == 0x0A) == newline { end += 1 }
            if newline, let id = text.withUnsafeBufferPointer({ vocabulary.table.id($0, start, end - start) }) {
                output.append(id)
            } else {
                merges.encodeCharacters(text, start..<end, byteTokens: byteTokens, scratch: &scratch, into: &output)
            }
            start = end
        }
    }
}
