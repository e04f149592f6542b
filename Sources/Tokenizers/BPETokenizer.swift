/// Byte-level BPE (`tokenizer.ggml.model = "gpt2"`), matching llama.cpp's `llm_tokenizer_bpe`:
/// special tokens are cut out of the text first, the rest is pre-tokenized into words, each word is spelled
/// with GPT-2's byte characters and merged by merge rank (lowest rank first, leftmost first on ties).
///
/// An immutable value: all tables are built once in `init` and shared by copies.
public struct BPETokenizer: Tokenizer {
    /// Ids of the special tokens a vocabulary may declare (`tokenizer.ggml.*_token_id`).
    public struct SpecialTokenIDs: Sendable, Equatable {
        public var bos: Int32?
        public var eos: Int32?
        public var eot: Int32?
        public var eom: Int32?
        public var fimPad: Int32?
        public var fimRep: Int32?
        public var fimSep: Int32?

        public init(bos: Int32? = nil, eos: Int32? = nil, eot: Int32? = nil, eom: Int32? = nil,
                    fimPad: Int32? = nil, fimRep: Int32? = nil, fimSep: Int32? = nil) {
            self.bos = bos
            self.eos = eos
            self.eot = eot
            self.eom = eom
            self.fimPad = fimPad
            self.fimRep = fimRep
            self.fimSep = fimSep
        }
    }

    public let vocabularySize: Int
    public let bosTokenID: Int32?
    public let eosTokenID: Int32?
    public let addBOS: Bool
    public let preTokenizer: PreTokenizer

    /// Attributes per id, after llama.cpp's text-based fix-ups.
    let attributes: [TokenAttributes]
    /// Vocabulary string → id (the last id wins for duplicated strings, as in llama.cpp).
    let textToID: [String: Int32]
    /// `tokenBytes` of every id, concatenated; id `i` owns `pieceStorage[pieceOffsets[i] ..< pieceOffsets[i + 1]]`.
    let pieceStorage: [UInt8]
    let pieceOffsets: [Int32]
    let endOfGeneration: Set<Int32>
    /// Tokens matched verbatim in the text before pre-tokenization, longest first.
    let specials: [SpecialToken]
    /// Whether some special token starts with the byte.
    let specialFirstByte: [Bool]
    let merges: MergeTable

    struct SpecialToken: Sendable {
        let id: Int32
        let bytes: [UInt8]
        /// Control and unknown tokens are matched only when parsing special tokens; user-defined ones always.
        let onlyWhenParsingSpecial: Bool
    }

    /// Builds a tokenizer from the arrays a GGUF file stores.
    /// - Parameters:
    ///   - tokens: `tokenizer.ggml.tokens` (byte-level spelled).
    ///   - tokenTypes: `tokenizer.ggml.token_type` (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused,
    ///     6 byte); all normal when absent.
    ///   - merges: `tokenizer.ggml.merges`, `"left right"` in rank order.
    public init(tokens: [String], tokenTypes: [Int]?, merges: [String], preTokenizer: PreTokenizer,
                specialTokens: SpecialTokenIDs = SpecialTokenIDs(), addBOS: Bool = false) throws(TokenizerError) {
        guard !tokens.isEmpty else { throw .invalidVocabulary("the token list is empty") }
        guard tokens.count < Int(Int32.max) else { throw .invalidVocabulary("too many tokens (\(tokens.count))") }
        if let tokenTypes, tokenTypes.count < tokens.count {
            throw .invalidVocabulary("\(tokenTypes.count) token types for \(tokens.count) tokens")
        }
        let count = tokens.count
        vocabularySize = count
        self.preTokenizer = preTokenizer
        self.addBOS = addBOS

        // Texts (llama.cpp renames empty entries) and the reverse map.
        var texts = tokens
        var textToID: [String: Int32] = [:]
        textToID.reserveCapacity(count)
        for index in 0 ..< count {
            if texts[index].isEmpty { texts[index] = "[EMPTY_\(index)]" }
            textToID[texts[index]] = Int32(index)
        }
        self.textToID = textToID

        var attributes = (0 ..< count).map { TokenAttributes(tokenType: tokenTypes?[$0] ?? 1) }

        // Declared special ids outside the vocabulary are ignored (llama.cpp warns and keeps its default).
        func valid(_ id: Int32?) -> Int32? {
            guard let id, id >= 0, Int(id) < count else { return nil }
            return id
        }
        var ids = specialTokens
        ids.bos = valid(ids.bos)
        ids.eos = valid(ids.eos)
        ids.eot = valid(ids.eot)
        ids.eom = valid(ids.eom)
        ids.fimPad = valid(ids.fimPad)
        ids.fimRep = valid(ids.fimRep)
        ids.fimSep = valid(ids.fimSep)
        bosTokenID = ids.bos
        eosTokenID = ids.eos

        // Text-based detection of undeclared special tokens; whatever is found becomes a control token.
        func detect(_ declared: Int32?, _ candidates: [String]) -> Int32? {
            if let declared { return declared }
            let found = candidates.compactMap { textToID[$0] }.min()
            if let found { attributes[Int(found)].insert(.control) }
            return found
        }
        ids.eot = detect(ids.eot, TextLists.endOfTurn)
        ids.eom = detect(ids.eom, ["<|eom_id|>"])
        _ = detect(nil, TextLists.fimPrefix)
        _ = detect(nil, TextLists.fimSuffix)
        _ = detect(nil, TextLists.fimMiddle)
        ids.fimPad = detect(ids.fimPad, TextLists.fimPad)
        ids.fimRep = detect(ids.fimRep, TextLists.fimRepo)
        ids.fimSep = detect(ids.fimSep, TextLists.fimSeparator)

        var endOfGeneration = Set([ids.fimPad, ids.fimRep, ids.fimSep, ids.eos, ids.eot, ids.eom].compactMap { $0 })
        for text in TextLists.endOfGeneration {
            guard let id = textToID[text] else { continue }
            endOfGeneration.insert(id)
            attributes[Int(id)].insert(.control)
        }
        for text in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let id = textToID[text] { attributes[Int(id)] = .userDefined }
        }
        self.endOfGeneration = endOfGeneration
        self.attributes = attributes

        // What each token decodes to.
        var storage: [UInt8] = []
        storage.reserveCapacity(count * 6)
        var offsets: [Int32] = [0]
        offsets.reserveCapacity(count + 1)
        for index in 0 ..< count {
            let attribute = attributes[index]
            let text = texts[index]
            if !attribute.isDisjoint(with: [.control, .unknown, .userDefined]) {
                storage.append(contentsOf: text.utf8)
            } else if attribute.contains(.normal) {
                storage.append(contentsOf: ByteLevel.decode(text))
            } else if attribute.contains(.byte), let byte = Self.parseByteToken(text) {
                storage.append(byte)
            }
            guard storage.count < Int(Int32.max) else { throw .invalidVocabulary("token texts are too large") }
            offsets.append(Int32(storage.count))
        }
        pieceStorage = storage
        pieceOffsets = offsets

        // Special tokens, longest first (ties by id, for determinism).
        var specials: [SpecialToken] = []
        var firstByte = [Bool](repeating: false, count: 256)
        for index in 0 ..< count {
            let attribute = attributes[index]
            guard !attribute.isDisjoint(with: [.control, .userDefined, .unknown]) else { continue }
            let bytes = Array(texts[index].utf8)
            specials.append(SpecialToken(id: Int32(index), bytes: bytes,
                                         onlyWhenParsingSpecial: !attribute.isDisjoint(with: [.control, .unknown])))
            firstByte[Int(bytes[0])] = true
        }
        specials.sort { $0.bytes.count != $1.bytes.count ? $0.bytes.count > $1.bytes.count : $0.id < $1.id }
        self.specials = specials
        specialFirstByte = firstByte

        self.merges = MergeTable(textToID: textToID, vocabularySize: count, merges: merges)
    }

    /// `<0xAB>` → 0xAB.
    static func parseByteToken(_ text: String) -> UInt8? {
        let bytes = Array(text.utf8)
        guard bytes.count == 6, bytes[0] == 0x3C, bytes[1] == 0x30, bytes[2] == 0x78, bytes[5] == 0x3E else { return nil }
        return UInt8(String(decoding: bytes[3 ..< 5], as: UTF8.self), radix: 16)
    }

    // MARK: Tokenizer

    public func tokenBytes(_ id: Int32) -> [UInt8] {
        guard id >= 0, Int(id) < vocabularySize else { return [] }
        return Array(pieceStorage[Int(pieceOffsets[Int(id)]) ..< Int(pieceOffsets[Int(id) + 1])])
    }

    public func decode(_ ids: [Int32]) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        for id in ids where id >= 0 && Int(id) < vocabularySize {
            bytes.append(contentsOf: pieceStorage[Int(pieceOffsets[Int(id)]) ..< Int(pieceOffsets[Int(id) + 1])])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    public func isEndOfGeneration(_ id: Int32) -> Bool {
        endOfGeneration.contains(id)
    }

    public func tokenID(for text: String) -> Int32? {
        textToID[text]
    }

    /// Whether llama.cpp treats the token as a control token (matched only when parsing special tokens).
    public func isControl(_ id: Int32) -> Bool {
        guard id >= 0, Int(id) < vocabularySize else { return false }
        return attributes[Int(id)].contains(.control)
    }

    public func encode(_ text: String, parseSpecial: Bool) -> [Int32] {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { return [] }
        var output: [Int32] = []
        output.reserveCapacity(bytes.count / 3 + 4)
        var preScratch = PreTokenizerScratch()
        var bpeScratch = BPEScratch()
        for fragment in partition(bytes, parseSpecial: parseSpecial) {
            switch fragment {
            case .token(let id):
                output.append(id)
            case .text(let range):
                preTokenizer.split(bytes, range, scratch: &preScratch) { word in
                    merges.encode(bytes, word, scratch: &bpeScratch, into: &output)
                }
            }
        }
        return output
    }

    // MARK: Special-token partition

    enum Fragment: Equatable {
        case text(Range<Int>)
        case token(Int32)
    }

    /// llama.cpp's `tokenizer_st_partition`: for each special token, longest first, every leftmost
    /// non-overlapping occurrence inside the still-unmatched text becomes that token.
    func partition(_ bytes: [UInt8], parseSpecial: Bool) -> [Fragment] {
        let n = bytes.count
        // Positions of the bytes special tokens start with.
        var positions = [[Int32]](repeating: [], count: 256)
        var any = false
        for index in 0 ..< n where specialFirstByte[Int(bytes[index])] {
            positions[Int(bytes[index])].append(Int32(index))
            any = true
        }
        guard any else { return [.text(0 ..< n)] }

        var covered = [Bool](repeating: false, count: n)
        var matches: [(start: Int, special: Int)] = []
        for (specialIndex, special) in specials.enumerated() {
            if special.onlyWhenParsingSpecial && !parseSpecial { continue }
            let length = special.bytes.count
            var lastEnd = 0
            for p32 in positions[Int(special.bytes[0])] {
                let p = Int(p32)
                guard p >= lastEnd, p + length <= n else { continue }
                var isMatch = true
                for k in 0 ..< length where covered[p + k] || bytes[p + k] != special.bytes[k] {
                    isMatch = false
                    break
                }
                guard isMatch else { continue }
                for k in p ..< p + length { covered[k] = true }
                matches.append((p, specialIndex))
                lastEnd = p + length
            }
        }
        guard !matches.isEmpty else { return [.text(0 ..< n)] }

        // Matches never overlap, so sorting by start gives the fragment order.
        matches.sort { $0.start < $1.start }
        var fragments: [Fragment] = []
        fragments.reserveCapacity(2 * matches.count + 1)
        var textStart = 0
        for match in matches {
            if textStart < match.start { fragments.append(.text(textStart ..< match.start)) }
            fragments.append(.token(specials[match.special].id))
            textStart = match.start + specials[match.special].bytes.count
        }
        if textStart < n { fragments.append(.text(textStart ..< n)) }
        return fragments
    }
}

/// llama.cpp's token attributes (`llama_token_attr`), derived from GGUF token types.
struct TokenAttributes: OptionSet, Sendable {
    let rawValue: UInt16
    static let undefined = TokenAttributes(rawValue: 1 << 0)
    static let unknown = TokenAttributes(rawValue: 1 << 1)
    static let unused = TokenAttributes(rawValue: 1 << 2)
    static let normal = TokenAttributes(rawValue: 1 << 3)
    static let control = TokenAttributes(rawValue: 1 << 4)
    static let userDefined = TokenAttributes(rawValue: 1 << 5)
    static let byte = TokenAttributes(rawValue: 1 << 6)

    init(rawValue: UInt16) { self.rawValue = rawValue }

    init(tokenType: Int) {
        switch tokenType {
        case 1: self = .normal
        case 2: self = .unknown
        case 3: self = .control
        case 4: self = .userDefined
        case 5: self = .unused
        case 6: self = .byte
        default: self = .undefined
        }
    }
}

/// Texts llama.cpp uses to recognise special tokens a vocabulary does not declare.
enum TextLists {
    static let endOfTurn = [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
        "<EOT>", "_<EOT>", "[EOT]", "<end_of_utterance>",
    ]
    static let fimPrefix = ["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<PRE>", "<|code_prefix|>", "<|prefix|>"]
    static let fimSuffix = ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<SUF>", "<|code_suffix|>", "<|suffix|>"]
    static let fimMiddle = ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<MID>", "<|code_middle|>", "<|middle|>"]
    static let fimPad = ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"]
    static let fimRepo = ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"]
    static let fimSeparator = ["<|file_sep|>"]
    static let endOfGeneration = [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>",
        "<|end_of_text|>", "<end_of_utterance>",
    ]
}
