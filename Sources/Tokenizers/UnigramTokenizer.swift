import Foundation

/// A Unigram language-model tokenizer (SentencePiece's `unigram`, Hugging Face's `Unigram` model: XLM-RoBERTa,
/// multilingual E5, T5, ALBERT …), as Hugging Face `tokenizers` runs a `tokenizer.json`:
///
/// 1. added tokens are cut out of the text first (special ones only when parsing special tokens);
/// 2. each remaining fragment is normalized (`normalizers`, in order);
/// 3. it is split into words (on whitespace, when the file asks for `WhitespaceSplit`), spaces spelled "▁", a "▁"
///    put before each word as the Metaspace prepend scheme says, and words split again before every "▁" when
///    Metaspace splits;
/// 4. each word is segmented by Viterbi: the sequence of vocabulary pieces with the highest total log-probability
///    (scores in double precision; on equal totals the shorter last piece wins, as pieces are tried shortest first);
///    a character no piece covers is the unknown token at the lowest score less 10, and unknown tokens in a row are
///    fused into one.
///
/// An immutable value: all tables are built once in `init`.
public struct UnigramTokenizer: Tokenizer {
    public enum Normalizer: Sendable, Equatable {
        case precompiled(PrecompiledCharsmap)
        /// `Replace` of a literal string.
        case replace(String, String)
        /// `Replace` of the regex ` {2,}`: runs of spaces become `replacement`.
        case collapseSpaces(String)
        case nfkc, nfc, lowercase
    }

    public enum PrependScheme: String, Sendable, Equatable { case always, first, never }

    public var vocabularySize: Int { vocabulary.count }
    public var bosTokenID: Int32? { vocabulary.specialIDs.bos }
    public var eosTokenID: Int32? { vocabulary.specialIDs.eos }
    public let addBOS: Bool
    public let addEOS: Bool

    let vocabulary: Vocabulary
    let scores: [Double]
    let unknown: Int32
    let unknownScore: Double
    let longestPiece: Int
    let normalizers: [Normalizer]
    let whitespaceSplit: Bool
    let prependScheme: PrependScheme
    let splitOnMetaspace: Bool

    /// - Parameters:
    ///   - pieces: every id's text ("▁" for spaces) and log-probability.
    ///   - tokenTypes: llama.cpp's types (3 control for special added tokens, 4 user-defined for other added ones).
    public init(pieces: [(text: String, score: Double)], tokenTypes: [Int], unknown: Int32, normalizers: [Normalizer],
                whitespaceSplit: Bool, prependScheme: PrependScheme, splitOnMetaspace: Bool,
                bos: Int32?, eos: Int32?, addBOS: Bool, addEOS: Bool) throws(TokenizerError) {
        guard unknown >= 0, Int(unknown) < pieces.count else {
            throw .invalidVocabulary("the unknown id \(unknown) is outside the \(pieces.count) pieces")
        }
        let texts = Vocabulary.texts(pieces.map(\.text))
        vocabulary = try Vocabulary(texts: texts, tokenTypes: tokenTypes,
                                    specialTokens: SpecialTokenIDs(bos: bos, eos: eos, unknown: unknown),
                                    normalBytes: SentencePieceTokenizer.unescapeWhitespace)
        scores = pieces.map(\.score)
        self.unknown = unknown
        unknownScore = (scores.min() ?? 0) - 10
        longestPiece = min(256, texts.map(\.utf8.count).max() ?? 1)
        self.normalizers = normalizers
        self.whitespaceSplit = whitespaceSplit
        self.prependScheme = prependScheme
        self.splitOnMetaspace = splitOnMetaspace
        self.addBOS = addBOS
        self.addEOS = addEOS
    }

    public func tokenBytes(_ id: Int32) -> [UInt8] { vocabulary.tokenBytes(id) }
    public func decode(_ ids: [Int32]) -> String { vocabulary.decode(ids) }
    public func isEndOfGeneration(_ id: Int32) -> Bool { vocabulary.endOfGeneration.contains(id) }
    public func tokenID(for text: String) -> Int32? { vocabulary.table.id(for: text) }
    public func isControl(_ id: Int32) -> Bool { vocabulary.isControl(id) }

    public func encode(_ text: String, parseSpecial: Bool) -> [Int32] {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { return [] }
        var output: [Int32] = []
        for fragment in vocabulary.partition(bytes, parseSpecial: parseSpecial) {
            switch fragment {
            case .token(let id):
                output.append(id)
            case .text(let range):
                let piece = normalize(String(decoding: bytes[range], as: UTF8.self))
                for word in words(piece, atStart: range.lowerBound == 0) { segment(word, into: &output) }
            }
        }
        return output
    }

    func normalize(_ text: String) -> String {
        var s = text
        for step in normalizers {
            switch step {
            case .precompiled(let map): s = map.normalize(s)
            case .replace(let pattern, let content): s = s.replacingOccurrences(of: pattern, with: content)
            case .collapseSpaces(let content): s = s.replacingOccurrences(of: " {2,}", with: content, options: .regularExpression)
            case .nfkc: s = s.precomposedStringWithCompatibilityMapping
            case .nfc: s = s.precomposedStringWithCanonicalMapping
            case .lowercase: s = s.lowercased()
            }
        }
        return s
    }

    /// The words of a normalized fragment, as UTF-8 with "▁" for spaces.
    func words(_ text: String, atStart: Bool) -> [[UInt8]] {
        let meta: [UInt8] = [0xE2, 0x96, 0x81]
        var pieces: [[UInt8]]
        if whitespaceSplit {
            pieces = text.split(whereSeparator: { $0.isWhitespace }).map { Array($0.utf8) }
        } else {
            pieces = text.isEmpty ? [] : [Array(text.utf8)]
        }
        var out: [[UInt8]] = []
        for (index, piece) in pieces.enumerated() {
            var word: [UInt8] = []
            word.reserveCapacity(piece.count + 3)
            for byte in piece {
                if byte == 0x20 { word.append(contentsOf: meta) } else { word.append(byte) }
            }
            let startsWithMeta = word.count >= 3 && Array(word[0..<3]) == meta
            let prepend = switch prependScheme {
            case .always: true
            case .first: atStart && index == 0
            case .never: false
            }
            if prepend, !startsWithMeta { word.insert(contentsOf: meta, at: 0) }
            guard splitOnMetaspace else {
                out.append(word)
                continue
            }
            // split before every "▁" (the "▁" starts the next word)
            var start = 0
            var i = 0
            while i + 3 <= word.count {
                if word[i] == 0xE2, word[i + 1] == 0x96, word[i + 2] == 0x81 {
                    if i > start { out.append(Array(word[start..<i])) }
                    start = i
                    i += 3
                } else {
                    i += 1
                }
            }
            if start < word.count { out.append(Array(word[start...])) }
        }
        return out
    }

    /// Viterbi over one word; appends its ids.
    func segment(_ word: [UInt8], into output: inout [Int32]) {
        let n = word.count
        guard n > 0 else { return }
        var score = [Double](repeating: 0, count: n + 1)
        var from = [Int](repeating: -1, count: n + 1)
        var id = [Int32](repeating: -1, count: n + 1)
        from[0] = 0
        var i = 0
        word.withUnsafeBufferPointer { buffer in
            while i < n {
                let width = min(SentencePieceTokenizer.utf8Length(buffer[i]), n - i)
                if from[i] >= 0 || i == 0 {
                    var single = false
                    let base = score[i]
                    for length in 1...min(longestPiece, n - i) {
                        guard let piece = vocabulary.table.id(buffer, i, length) else { continue }
                        let candidate = base + scores[Int(piece)]
                        let end = i + length
                        if from[end] < 0 || candidate > score[end] {
                            score[end] = candidate
                            from[end] = i
                            id[end] = piece
                        }
                        if length == width { single = true }
                    }
                    if !single {
                        let end = i + width
                        let candidate = base + unknownScore
                        if from[end] < 0 || candidate > score[end] {
                            score[end] = candidate
                            from[end] = i
                            id[end] = unknown
                        }
                    }
                }
                i += width
            }
        }
        var path: [Int32] = []
        var end = n
        while end > 0 {
            let start = from[end]
            guard start >= 0, start < end else { break }   // unreachable: every character has a way across
            path.append(id[end])
            end = start
        }
        var previousUnknown = false   // unknown tokens in a row within a word are fused into one
        for token in path.reversed() {
            if token == unknown {
                if previousUnknown { continue }
                previousUnknown = true
            } else {
                previousUnknown = false
            }
            output.append(token)
        }
    }
}
