/// SentencePiece-style BPE with scores (`tokenizer.ggml.model = "llama"`: Llama 1/2, Mistral, Gemma …),
/// matching llama.cpp's `llm_tokenizer_spm`:
///
/// 1. special tokens are cut out of the text first (control and unknown tokens only when parsing special
///    tokens, user-defined tokens always), exactly as for byte-level BPE;
/// 2. in each remaining piece, spaces become "▁" (U+2581), and a piece that starts the text or follows a
///    special token gets a leading "▁" when the vocabulary asks for it (`tokenizer.ggml.add_space_prefix`);
/// 3. the piece is split into UTF-8 characters, and adjacent symbols are merged greedily: always the pair whose
///    concatenation is a vocabulary entry with the highest score, the leftmost pair on equal scores;
/// 4. every final symbol is its token, or, when it is not in the vocabulary (a character the vocabulary lacks),
///    one `<0xAB>` byte token per UTF-8 byte.
///
/// Decoding turns "▁" back into spaces and byte tokens into their raw bytes. An immutable value: all tables
/// are built once in `init`.
public struct SentencePieceTokenizer: Tokenizer {
    public var vocabularySize: Int { vocabulary.count }
    public var bosTokenID: Int32? { vocabulary.specialIDs.bos }
    public var eosTokenID: Int32? { vocabulary.specialIDs.eos }
    /// `tokenizer.ggml.add_bos_token` (llama.cpp's default for this kind: true).
    public let addBOS: Bool
    /// `tokenizer.ggml.add_eos_token` (default false).
    public let addEOS: Bool
    /// `tokenizer.ggml.add_space_prefix` (default true; Gemma sets it false).
    public let addSpacePrefix: Bool
    /// Whether text after a special token gets the prefix too (llama.cpp's behaviour, and Hugging Face's
    /// `prepend_scheme: always`), or only the start of the text (`prepend_scheme: first`).
    public let spacePrefixAfterSpecial: Bool

    /// Whether a fragment that already starts with a space (or "▁") goes without the prefix (Hugging Face's
    /// Metaspace) or gets one more (llama.cpp, and the `Prepend` normalizer of older Llama 2 files).
    public let spacePrefixUnlessSpace: Bool

    /// GGUF keys of files converted from Hugging Face folders whose Metaspace pre-tokenizer prepends only at the start
    /// of the text (`prepend_scheme: first`), and not before a fragment that already starts with a space.
    public static let spacePrefixFirstOnlyKey = "switchyard.tokenizer.space_prefix_first_only"
    public static let spacePrefixUnlessSpaceKey = "switchyard.tokenizer.space_prefix_unless_space"

    /// Texts, attributes, special tokens and decoded pieces.
    let vocabulary: Vocabulary
    /// `tokenizer.ggml.scores`, one per id.
    let scores: [Float]
    /// The token each byte falls back to (`<0xAB>`, else the one-byte text, else unknown); -1 when none exists.
    let byteTokens: [Int32]

    /// Builds a tokenizer from the arrays a GGUF file stores.
    /// - Parameters:
    ///   - tokens: `tokenizer.ggml.tokens` (spaces spelled "▁").
    ///   - scores: `tokenizer.ggml.scores`; all 0 when absent.
    ///   - tokenTypes: `tokenizer.ggml.token_type` (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused,
    ///     6 byte); all normal when absent.
    public init(tokens: [String], scores: [Float]?, tokenTypes: [Int]?, specialTokens: SpecialTokenIDs = SpecialTokenIDs(),
                addBOS: Bool = true, addEOS: Bool = false, addSpacePrefix: Bool = true,
                spacePrefixAfterSpecial: Bool = true, spacePrefixUnlessSpace: Bool = false) throws(TokenizerError) {
        if let scores, scores.count < tokens.count {
            throw .invalidVocabulary("\(scores.count) scores for \(tokens.count) tokens")
        }
        let texts = Vocabulary.texts(tokens)
        let vocabulary = try Vocabulary(texts: texts, tokenTypes: tokenTypes, specialTokens: specialTokens,
                                        normalBytes: Self.unescapeWhitespace)
        self.vocabulary = vocabulary
        self.scores = scores.map { Array($0.prefix(tokens.count)) } ?? [Float](repeating: 0, count: tokens.count)
        self.addBOS = addBOS
        self.addEOS = addEOS
        self.addSpacePrefix = addSpacePrefix
        self.spacePrefixAfterSpecial = spacePrefixAfterSpecial
        self.spacePrefixUnlessSpace = spacePrefixUnlessSpace

        let hex = Array("0123456789ABCDEF".utf8)
        byteTokens = (0 ..< 256).map { byte -> Int32 in
            let spelled = [0x3C, 0x30, 0x78, hex[byte >> 4], hex[byte & 15], 0x3E] as [UInt8]
            if let id = spelled.withUnsafeBufferPointer({ vocabulary.table.id($0, 0, 6) }) { return id }
            if let id = [UInt8(byte)].withUnsafeBufferPointer({ vocabulary.table.id($0, 0, 1) }) { return id }
            return vocabulary.specialIDs.unknown ?? -1
        }
    }

    /// Whether `bytes[range]` begins with a space or "▁".
    static func startsWithSpace(_ bytes: [UInt8], _ range: Range<Int>) -> Bool {
        guard let first = range.first else { return false }
        if bytes[first] == 0x20 { return true }
        return range.count >= 3 && bytes[first] == 0xE2 && bytes[first + 1] == 0x96 && bytes[first + 2] == 0x81
    }

    /// "▁" → " " (llama.cpp's `llama_unescape_whitespace`).
    static func unescapeWhitespace(_ text: String) -> [UInt8] {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if index + 2 < bytes.count, bytes[index] == 0xE2, bytes[index + 1] == 0x96, bytes[index + 2] == 0x81 {
                out.append(0x20)
                index += 3
            } else {
                out.append(bytes[index])
                index += 1
            }
        }
        return out
    }

    // MARK: Tokenizer

    public func tokenBytes(_ id: Int32) -> [UInt8] { vocabulary.tokenBytes(id) }

    public func decode(_ ids: [Int32]) -> String { vocabulary.decode(ids) }

    public func isEndOfGeneration(_ id: Int32) -> Bool { vocabulary.endOfGeneration.contains(id) }

    public func tokenID(for text: String) -> Int32? { vocabulary.table.id(for: text) }

    /// Whether llama.cpp treats the token as a control token (matched only when parsing special tokens).
    public func isControl(_ id: Int32) -> Bool { vocabulary.isControl(id) }

    /// The score of a token (0 for out-of-range ids).
    public func score(_ id: Int32) -> Float {
        guard id >= 0, Int(id) < scores.count else { return 0 }
        return scores[Int(id)]
    }

    public func encode(_ text: String, parseSpecial: Bool) -> [Int32] {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { return [] }
        var output: [Int32] = []
        output.reserveCapacity(bytes.count / 3 + 4)
        var scratch = SentencePieceScratch()
        var previousIsSpecial = true // the start of the text counts as following a special token
        for fragment in vocabulary.partition(bytes, parseSpecial: parseSpecial) {
            switch fragment {
            case .token(let id):
                output.append(id)
                previousIsSpecial = spacePrefixAfterSpecial
            case .text(let range):
                var prefix = addSpacePrefix && previousIsSpecial
                if prefix, spacePrefixUnlessSpace, Self.startsWithSpace(bytes, range) { prefix = false }
                scratch.escape(bytes, range, prefixSpace: prefix)
                merge(&scratch, into: &output)
                previousIsSpecial = false
            }
        }
        return output
    }

    // MARK: Merging

    /// Merges the escaped piece in `scratch.text` and appends its tokens to `output` (the one hot loop here).
    func merge(_ scratch: inout SentencePieceScratch, into output: inout [Int32]) {
        let text = scratch.text
        let n = text.count
        guard n > 0 else { return }
        text.withUnsafeBufferPointer { bytes in
            scratch.symbols.removeAll(keepingCapacity: true)
            scratch.heap.removeAll()

            // One symbol per UTF-8 character (by its lead byte, cut short at the end).
            var offset = 0
            var index: Int32 = 0
            while offset < n {
                let length = min(Self.utf8Length(bytes[offset]), n - offset)
                offset += length
                scratch.symbols.append(Symbol(start: Int32(offset - length), length: Int32(length),
                                              previous: index - 1, next: offset == n ? -1 : index + 1))
                index += 1
            }

            let count = scratch.symbols.count
            for right in 1 ..< max(count, 1) {
                addBigram(Int32(right - 1), Int32(right), bytes, &scratch)
            }

            // Highest score first, leftmost first on ties.
            while let bigram = scratch.heap.popMin() {
                let left = Int(bigram.left)
                let right = Int(bigram.right)
                let leftLength = scratch.symbols[left].length
                let rightLength = scratch.symbols[right].length
                // Skip pairs an earlier merge has changed.
                guard leftLength != 0, rightLength != 0, leftLength + rightLength == bigram.size else { continue }
                scratch.symbols[left].length = leftLength + rightLength
                scratch.symbols[right].length = 0
                let after = scratch.symbols[right].next
                scratch.symbols[left].next = after
                if after >= 0 { scratch.symbols[Int(after)].previous = bigram.left }
                addBigram(scratch.symbols[left].previous, bigram.left, bytes, &scratch)
                addBigram(bigram.left, after, bytes, &scratch)
            }

            // Each final symbol is a token, or byte tokens when the vocabulary lacks it.
            var position: Int32 = 0
            while position >= 0 {
                let symbol = scratch.symbols[Int(position)]
                let start = Int(symbol.start)
                let length = Int(symbol.length)
                if let id = vocabulary.table.id(bytes, start, length) {
                    output.append(id)
                } else {
                    for k in start ..< start + length {
                        let id = byteTokens[Int(bytes[k])]
                        if id >= 0 { output.append(id) }
                    }
                }
                position = symbol.next
            }
        }
    }

    /// Queues the merge of two adjacent symbols when their concatenation is a vocabulary entry.
    @inline(__always)
    private func addBigram(_ left: Int32, _ right: Int32, _ bytes: UnsafeBufferPointer<UInt8>,
                           _ scratch: inout SentencePieceScratch) {
        guard left >= 0, right >= 0 else { return }
        let leftSymbol = scratch.symbols[Int(left)]
        let size = leftSymbol.length + scratch.symbols[Int(right)].length
        guard let id = vocabulary.table.id(bytes, Int(leftSymbol.start), Int(size)) else { return }
        scratch.heap.push(ScoredBigram(order: ScoredBigram.order(score: scores[Int(id)], left: left),
                                       right: right, size: size))
    }

    /// Length of a UTF-8 sequence from its first byte (continuation bytes count as 1, as in llama.cpp).
    @inline(__always)
    static func utf8Length(_ byte: UInt8) -> Int {
        switch byte >> 4 {
        case 0xC, 0xD: return 2
        case 0xE: return 3
        case 0xF: return 4
        default: return 1
        }
    }

    /// A run of the escaped text during merging; `length` 0 once merged into its left neighbour.
    struct Symbol {
        var start: Int32
        var length: Int32
        var previous: Int32
        var next: Int32
    }
}

/// A candidate merge of adjacent symbols `left` and `right`: ordered by score (highest first), then by
/// `left` (lowest first), both packed into `order`.
struct ScoredBigram: HeapOrdered {
    let order: UInt64
    let right: Int32
    /// Byte length of the merged text; a queued pair is stale when its symbols no longer add up to it.
    let size: Int32

    var left: Int32 { Int32(truncatingIfNeeded: order & 0xFFFF_FFFF) }

    /// Higher scores give smaller orders; equal scores (0 and -0 included) order by `left`.
    @inline(__always)
    static func order(score: Float, left: Int32) -> UInt64 {
        let bits = (score == 0 ? Float(0) : score).bitPattern
        let ascending = bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000
        return UInt64(UInt32.max - ascending) << 32 | UInt64(UInt32(bitPattern: left))
    }
}

/// Reusable per-call buffers for `SentencePieceTokenizer`.
struct SentencePieceScratch {
    /// The piece being merged, spaces already spelled "▁".
    var text: [UInt8] = []
    var symbols: [SentencePieceTokenizer.Symbol] = []
    var heap = BigramHeap<ScoredBigram>()

    /// llama.cpp's `llama_escape_whitespace` of `bytes[range]`, with a leading "▁" when asked.
    mutating func escape(_ bytes: [UInt8], _ range: Range<Int>, prefixSpace: Bool) {
        text.removeAll(keepingCapacity: true)
        text.reserveCapacity(range.count + 16)
        if prefixSpace { text.append(contentsOf: [0xE2, 0x96, 0x81]) }
        for index in range {
            let byte = bytes[index]
            if byte == 0x20 {
                text.append(contentsOf: [0xE2, 0x96, 0x81])
            } else {
                text.append(byte)
            }
        }
    }
}
