import Foundation

/// BERT's WordPiece: text normalized (control characters dropped, lowercased, accents stripped), split at
/// whitespace and around punctuation and CJK ideographs, each word cut greedily into the longest vocabulary pieces
/// from its start, a word with an unmatchable part becoming `[UNK]` as a whole. `[CLS]` and `[SEP]` frame a
/// sequence (`addBOS`/`addEOS`).
///
/// Two vocabulary spellings lead here: GGUF's (llama.cpp writes word-initial pieces as `▁piece` and continuations
/// bare) and Hugging Face's (`tokenizer.json`: initial pieces bare, continuations `##piece`). Both are held as two
/// tables, initial and continuation, so one cutter serves both.
public struct WordPieceTokenizer: Tokenizer {
    public struct Options: Sendable, Equatable {
        public var lowercase = true
        /// Drop combining marks after canonical decomposition (NFD).
        public var stripAccents = true
        /// Which marks: all of \p{M} (llama.cpp) or only the non-spacing ones, Mn (Hugging Face's BertNormalizer).
        public var onlyNonspacingMarks = false
        /// Words longer than this many characters become `[UNK]` whole (Hugging Face's `max_input_chars_per_word`).
        public var maxWordCharacters: Int? = nil
        public init(lowercase: Bool = true, stripAccents: Bool = true, onlyNonspacingMarks: Bool = false, maxWordCharacters: Int? = nil) {
            self.lowercase = lowercase; self.stripAccents = stripAccents
            self.onlyNonspacingMarks = onlyNonspacingMarks; self.maxWordCharacters = maxWordCharacters
        }
    }

    public let vocabularySize: Int
    public let bosTokenID: Int32?
    public let eosTokenID: Int32?
    public let unknownTokenID: Int32
    public var addBOS: Bool { bosTokenID != nil }
    public var addEOS: Bool { eosTokenID != nil }
    public let options: Options
    let initial: [String: Int32]
    let continuation: [String: Int32]
    /// The longest piece, in Unicode scalars (bounds the search at each position).
    let longestPiece: Int
    /// What each id decodes to: initial pieces with a leading space, continuations bare, specials as written.
    let pieces: [String]
    let control: Set<Int32>
    /// Control tokens matched in the text when special tokens are parsed, longest first.
    let specials: [(text: String, id: Int32)]

    /// - Parameters:
    ///   - texts: the vocabulary by id.
    ///   - continuationPrefix: `"##"` (Hugging Face: continuations carry it) or nil (GGUF: initial pieces start with `▁`).
    ///   - controlIDs: ids of control tokens (`[CLS]`, `[PAD]`, …), never cut into and parsed from text on request.
    public init(texts: [String], continuationPrefix: String?, controlIDs: Set<Int32>, unknown: Int32, cls: Int32?, sep: Int32?,
                options: Options = Options()) throws(TokenizerError) {
        guard !texts.isEmpty, texts.count < Int(Int32.max) else { throw .invalidVocabulary("\(texts.count) tokens") }
        for (name, id) in [("unknown", Optional(unknown)), ("CLS", cls), ("SEP", sep)] {
            if let id, id < 0 || Int(id) >= texts.count { throw .invalidVocabulary("the \(name) token id \(id) is outside the vocabulary of \(texts.count)") }
        }
        vocabularySize = texts.count
        bosTokenID = cls
        eosTokenID = sep
        unknownTokenID = unknown
        self.options = options
        control = controlIDs
        var initial: [String: Int32] = [:], continuation: [String: Int32] = [:], pieces: [String] = []
        var longest = 1
        for (i, text) in texts.enumerated() {
            let id = Int32(i)
            if controlIDs.contains(id) { pieces.append(text); continue }
            var piece: String
            let isInitial: Bool
            if let prefix = continuationPrefix {
                isInitial = !text.hasPrefix(prefix) || text == prefix
                piece = isInitial ? text : String(text.dropFirst(prefix.count))
            } else {
                isInitial = text.hasPrefix("\u{2581}")
                piece = isInitial ? String(text.dropFirst()) : text
            }
            if piece.isEmpty { pieces.append(text); continue }
            // the first id wins for a duplicated spelling
            if isInitial { if initial[piece] == nil { initial[piece] = id } } else if continuation[piece] == nil { continuation[piece] = id }
            longest = max(longest, piece.unicodeScalars.count)
            pieces.append(isInitial ? " " + piece : piece)
        }
        self.initial = initial
        self.continuation = continuation
        self.pieces = pieces
        longestPiece = longest
        specials = controlIDs.sorted().map { (texts[Int($0)], $0) }.filter { !$0.0.isEmpty }.sorted { $0.0.utf8.count > $1.0.utf8.count }
    }

    public func encode(_ text: String, parseSpecial: Bool) -> [Int32] {
        var out: [Int32] = []
        guard parseSpecial, !specials.isEmpty else {
            for word in words(text) { cut(word, into: &out) }
            return out
        }
        // control tokens written in the text are taken as they are; the text between them is tokenized
        var rest = Substring(text)
        while !rest.isEmpty {
            var found: (range: Range<Substring.Index>, id: Int32)?
            for s in specials {
                if let r = rest.range(of: s.text), found.map({ r.lowerBound < $0.range.lowerBound }) ?? true { found = (r, s.id) }
            }
            guard let (range, id) = found else { break }
            for word in words(String(rest[..<range.lowerBound])) { cut(word, into: &out) }
            out.append(id)
            rest = rest[range.upperBound...]
        }
        for word in words(String(rest)) { cut(word, into: &out) }
        return out
    }

    /// The normalized words of `text`, each as Unicode scalars.
    func words(_ text: String) -> [[Unicode.Scalar]] {
        let source = options.stripAccents ? text.decomposedStringWithCanonicalMapping : text
        var words: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        func finish() { if !current.isEmpty { words.append(current); current = [] } }
        for scalar in source.unicodeScalars {
            let p = scalar.properties
            if p.isWhitespace { finish(); continue }
            let category = p.generalCategory
            if scalar.value == 0 || scalar.value == 0xFFFD || Self.isOther(category) { continue }
            if options.stripAccents {
                switch category {
                case .nonspacingMark: continue
                case .spacingMark, .enclosingMark: if !options.onlyNonspacingMarks { continue }
                default: break
                }
            }
            let isolated = Self.isPunctuation(category) || (scalar.value < 0x7F && Self.isSymbol(category)) || Self.isCJK(scalar.value)
            if isolated { finish() }
            if options.lowercase, p.changesWhenLowercased {
                current.append(contentsOf: p.lowercaseMapping.unicodeScalars)
            } else {
                current.append(scalar)
            }
            if isolated { finish() }
        }
        finish()
        return words
    }

    /// Greedy longest-match-first pieces of one word; `[UNK]` for the whole word when some part matches nothing.
    func cut(_ word: [Unicode.Scalar], into out: inout [Int32]) {
        if let max = options.maxWordCharacters, word.count > max { out.append(unknownTokenID); return }
        let start = out.count
        var i = 0
        while i < word.count {
            var matched = false
            var j = min(word.count, i + longestPiece)
            while j > i {
                var s = String.UnicodeScalarView()
                s.append(contentsOf: word[i..<j])
                if let id = (i == 0 ? initial : continuation)[String(s)] {
                    out.append(id)
                    i = j
                    matched = true
                    break
                }
                j -= 1
            }
            if !matched {
                out.removeSubrange(start...)
                out.append(unknownTokenID)
                return
            }
        }
    }

    static func isOther(_ c: Unicode.GeneralCategory) -> Bool {
        switch c {
        case .control, .format, .surrogate, .privateUse, .unassigned: true
        default: false
        }
    }
    static func isPunctuation(_ c: Unicode.GeneralCategory) -> Bool {
        switch c {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
             .finalPunctuation, .otherPunctuation: true
        default: false
        }
    }
    static func isSymbol(_ c: Unicode.GeneralCategory) -> Bool {
        switch c {
        case .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol: true
        default: false
        }
    }
    /// The CJK ideograph blocks BERT isolates (as Hugging Face's tokenizers spell them, quirk at 0x2B920 included).
    static func isCJK(_ v: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
            || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v) || (0x2B920...0x2CEAF).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }

    public func tokenBytes(_ id: Int32) -> [UInt8] {
        guard id >= 0, Int(id) < pieces.count else { return [] }
        return Array(pieces[Int(id)].utf8)
    }

    public func decode(_ ids: [Int32]) -> String {
        var s = ""
        for id in ids where !control.contains(id) { s += String(decoding: tokenBytes(id), as: UTF8.self) }
        return s.hasPrefix(" ") ? String(s.dropFirst()) : s
    }

    public func isEndOfGeneration(_ id: Int32) -> Bool { id == eosTokenID }
    public func tokenID(for text: String) -> Int32? {
        if let s = specials.first(where: { $0.text == text }) { return s.id }
        if text.hasPrefix("##") { return continuation[String(text.dropFirst(2))] }
        if text.hasPrefix("\u{2581}") { return initial[String(text.dropFirst())] }
        return initial[text]
    }
    public func isControl(_ id: Int32) -> Bool { control.contains(id) }
}
