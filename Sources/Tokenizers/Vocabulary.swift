/// Ids of the special tokens a vocabulary may declare (`tokenizer.ggml.*_token_id`).
public struct SpecialTokenIDs: Sendable, Equatable {
    public var bos: Int32?
    public var eos: Int32?
    public var unknown: Int32?
    public var eot: Int32?
    public var eom: Int32?
    public var fimPad: Int32?
    public var fimRep: Int32?
    public var fimSep: Int32?

    public init(bos: Int32? = nil, eos: Int32? = nil, unknown: Int32? = nil, eot: Int32? = nil, eom: Int32? = nil,
                fimPad: Int32? = nil, fimRep: Int32? = nil, fimSep: Int32? = nil) {
        self.bos = bos
        self.eos = eos
        self.unknown = unknown
        self.eot = eot
        self.eom = eom
        self.fimPad = fimPad
        self.fimRep = fimRep
        self.fimSep = fimSep
    }
}

/// What llama.cpp's vocabulary loading does whatever the tokenizer kind: token texts, attributes (with its
/// text-based fix-ups), special ids, the end-of-generation set, the bytes each token decodes to, and the
/// special-token partition of a text (`tokenizer_st_partition`).
///
/// Immutable; built once per model and shared by the tokenizers that hold it.
struct Vocabulary: Sendable {
    let count: Int
    /// Token text → id (the last id wins for duplicated texts, as in llama.cpp).
    let table: TokenTextTable
    /// Attributes per id, after llama.cpp's text-based fix-ups.
    let attributes: [TokenAttributes]
    /// The declared (and in-range) special ids, after text-based detection.
    let specialIDs: SpecialTokenIDs
    let endOfGeneration: Set<Int32>
    /// `tokenBytes` of every id, concatenated; id `i` owns `pieceStorage[pieceOffsets[i] ..< pieceOffsets[i + 1]]`.
    let pieceStorage: [UInt8]
    let pieceOffsets: [Int32]
    /// Tokens matched verbatim in the text before tokenization, longest first.
    let specials: [SpecialToken]
    /// Whether some special token starts with the byte.
    let specialFirstByte: [Bool]

    struct SpecialToken: Sendable {
        let id: Int32
        let bytes: [UInt8]
        /// Control and unknown tokens are matched only when parsing special tokens; user-defined ones always.
        let onlyWhenParsingSpecial: Bool
    }

    /// The texts llama.cpp keeps for `tokens`: empty entries are renamed `[EMPTY_i]`.
    static func texts(_ tokens: [String]) -> [String] {
        var texts = tokens
        for index in texts.indices where texts[index].isEmpty { texts[index] = "[EMPTY_\(index)]" }
        return texts
    }

    /// - Parameters:
    ///   - texts: token texts as `texts(_:)` returns them.
    ///   - tokenTypes: `tokenizer.ggml.token_type` (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused,
    ///     6 byte); all normal when absent.
    ///   - normalBytes: what a normal token's text decodes to (byte-level or SentencePiece spelling).
    init(texts: [String], tokenTypes: [Int]?, specialTokens: SpecialTokenIDs,
         normalBytes: (String) -> [UInt8]) throws(TokenizerError) {
        guard !texts.isEmpty else { throw .invalidVocabulary("the token list is empty") }
        guard texts.count < Int(Int32.max) else { throw .invalidVocabulary("too many tokens (\(texts.count))") }
        if let tokenTypes, tokenTypes.count < texts.count {
            throw .invalidVocabulary("\(tokenTypes.count) token types for \(texts.count) tokens")
        }
        let count = texts.count
        self.count = count
        let table = try TokenTextTable(texts: texts)
        self.table = table

        var attributes = (0 ..< count).map { TokenAttributes(tokenType: tokenTypes?[$0] ?? 1) }

        // Declared special ids outside the vocabulary are ignored (llama.cpp warns and keeps its default).
        func valid(_ id: Int32?) -> Int32? {
            guard let id, id >= 0, Int(id) < count else { return nil }
            return id
        }
        var ids = specialTokens
        ids.bos = valid(ids.bos)
        ids.eos = valid(ids.eos)
        ids.unknown = valid(ids.unknown)
        ids.eot = valid(ids.eot)
        ids.eom = valid(ids.eom)
        ids.fimPad = valid(ids.fimPad)
        ids.fimRep = valid(ids.fimRep)
        ids.fimSep = valid(ids.fimSep)

        // Text-based detection of undeclared special tokens; whatever is found becomes a control token.
        func detect(_ declared: Int32?, _ candidates: [String]) -> Int32? {
            if let declared { return declared }
            let found = candidates.compactMap { table.id(for: $0) }.min()
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
            guard let id = table.id(for: text) else { continue }
            endOfGeneration.insert(id)
            attributes[Int(id)].insert(.control)
        }
        for text in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let id = table.id(for: text) { attributes[Int(id)] = .userDefined }
        }
        specialIDs = ids
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
                storage.append(contentsOf: normalBytes(text))
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
    }

    /// `<0xAB>` → 0xAB.
    static func parseByteToken(_ text: String) -> UInt8? {
        let bytes = Array(text.utf8)
        guard bytes.count == 6, bytes[0] == 0x3C, bytes[1] == 0x30, bytes[2] == 0x78, bytes[5] == 0x3E else { return nil }
        return UInt8(String(decoding: bytes[3 ..< 5], as: UTF8.self), radix: 16)
    }

    // MARK: Decoding

    func tokenBytes(_ id: Int32) -> [UInt8] {
        guard id >= 0, Int(id) < count else { return [] }
        return Array(pieceStorage[Int(pieceOffsets[Int(id)]) ..< Int(pieceOffsets[Int(id) + 1])])
    }

    func decode(_ ids: [Int32]) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        for id in ids where id >= 0 && Int(id) < count {
            bytes.append(contentsOf: pieceStorage[Int(pieceOffsets[Int(id)]) ..< Int(pieceOffsets[Int(id) + 1])])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    func isControl(_ id: Int32) -> Bool {
        guard id >= 0, Int(id) < count else { return false }
        return attributes[Int(id)].contains(.control)
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
        guard n > 0 else { return [] }
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

/// Token texts → ids without building a `String` per lookup: the texts' UTF-8 in one buffer and an
/// open-addressing hash table of ids over it, so any byte range of a text can be looked up in place.
struct TokenTextTable: Sendable {
    /// UTF-8 of every text, concatenated; id `i` owns `storage[offsets[i] ..< offsets[i + 1]]`.
    let storage: [UInt8]
    let offsets: [Int32]
    /// `-1` for an empty slot, otherwise an id.
    let slots: [Int32]
    let mask: Int

    init(texts: [String]) throws(TokenizerError) {
        var storage: [UInt8] = []
        storage.reserveCapacity(texts.count * 8)
        var offsets: [Int32] = [0]
        offsets.reserveCapacity(texts.count + 1)
        for text in texts {
            storage.append(contentsOf: text.utf8)
            guard storage.count < Int(Int32.max) else { throw .invalidVocabulary("token texts are too large") }
            offsets.append(Int32(storage.count))
        }
        var capacity = 16
        while capacity < 2 * texts.count { capacity <<= 1 }
        let mask = capacity - 1
        var slots = [Int32](repeating: -1, count: capacity)
        storage.withUnsafeBufferPointer { bytes in
            for id in 0 ..< texts.count {
                let start = Int(offsets[id])
                let length = Int(offsets[id + 1]) - start
                var slot = Self.hash(bytes, start, length) & mask
                while true {
                    let other = slots[slot]
                    if other < 0 { slots[slot] = Int32(id); break }
                    // A duplicated text: the later id replaces the earlier one.
                    if Self.equal(bytes, offsets, other, bytes, start, length) { slots[slot] = Int32(id); break }
                    slot = (slot + 1) & mask
                }
            }
        }
        self.storage = storage
        self.offsets = offsets
        self.slots = slots
        self.mask = mask
    }

    @inline(__always)
    static func hash(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ length: Int) -> Int {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325 // FNV-1a
        for i in start ..< start + length {
            h = (h ^ UInt64(bytes[i])) &* 0x0000_0100_0000_01B3
        }
        h ^= h >> 29
        return Int(truncatingIfNeeded: h)
    }

    @inline(__always)
    static func equal(_ storage: UnsafeBufferPointer<UInt8>, _ offsets: [Int32], _ id: Int32,
                      _ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ length: Int) -> Bool {
        let from = Int(offsets[Int(id)])
        guard Int(offsets[Int(id) + 1]) - from == length else { return false }
        for k in 0 ..< length where storage[from + k] != bytes[start + k] { return false }
        return true
    }

    /// The id whose text is exactly `bytes[start ..< start + length]`.
    @inline(__always)
    func id(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ length: Int) -> Int32? {
        storage.withUnsafeBufferPointer { storage in
            var slot = Self.hash(bytes, start, length) & mask
            while true {
                let id = slots[slot]
                if id < 0 { return nil }
                if Self.equal(storage, offsets, id, bytes, start, length) { return id }
                slot = (slot + 1) & mask
            }
        }
    }

    func id(for text: String) -> Int32? {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBufferPointer { id($0, 0, bytes.count) }
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
