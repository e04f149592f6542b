/// Splits raw text into the words BPE works on, the way llama.cpp's `unicode_regex_split` does for the
/// GPT-2 family of pre-tokenizers and Llama 3's (hand-written matchers, no regex engine).
public enum PreTokenizer: Sendable, Equatable {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)` (llama.cpp's GPT-2 list).
    case gpt2
    /// `\p{N}` first (every number character is a word of its own), then the GPT-2 pattern inside each piece
    /// (llama.cpp's list for smollm, starcoder, refact, command-r, codeshell, exaone).
    case digitsThenGPT2
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    /// (Llama 3's pattern; llama.cpp's list for llama3, llama-v3, llama-bpe, falcon3, falcon-h1, pixtral, midm-2.0,
    /// lfm2). Vocabularies with it also take a whole word that is a token as that token (`ignoresMerges`).
    case llama3
    /// Llama 3's pattern with `\p{N}` instead of `\p{N}{1,3}`: every digit a word of its own (llama.cpp's list for
    /// qwen2, deepseek-r1-qwen, kormo, f2llmv2). No whole-word shortcut.
    case qwen2
    /// llama.cpp's list of patterns for the other pre-tokenizers (DeepSeek's, Falcon's, Qwen 3.5's, the default),
    /// run by `SplitRegex` one after the other.
    case patterns(RegexSplitter)

    /// The pre-tokenizer for a `tokenizer.ggml.pre` value, if supported.
    public init?(llamaName name: String) {
        if Self.gpt2Names.contains(name) {
            self = .gpt2
        } else if Self.digitNames.contains(name) {
            self = .digitsThenGPT2
        } else if Self.llama3Names.contains(name) {
            self = .llama3
        } else if Self.qwen2Names.contains(name) {
            self = .qwen2
        } else if let list = Self.patternLists[name] {
            let compiled = list.compactMap(SplitRegex.init)
            guard compiled.count == list.count else { return nil }
            self = .patterns(RegexSplitter(patterns: compiled))
        } else {
            return nil
        }
    }

    static let gpt2Pattern = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
    /// llama.cpp's pattern lists (`llm_tokenizer_bpe`) for pre-tokenizers without a hand-written matcher here.
    static let patternLists: [String: [String]] = [
        "deepseek-llm": [
            "[\r\n]",
            "\\s?[A-Za-z\u{B5}\u{C0}-\u{D6}\u{D8}-\u{F6}\u{F8}-\u{1BA}\u{1BC}-\u{1BF}\u{1C4}-\u{293}\u{295}-\u{2AF}\u{370}-\u{373}\u{376}\u{377}\u{37B}-\u{37D}\u{37F}\u{386}\u{388}-\u{38A}\u{38C}\u{38E}-\u{3A1}\u{3A3}-\u{3F5}\u{3F7}-\u{481}\u{48A}-\u{52F}\u{531}-\u{556}\u{10A0}-\u{10C5}\u{13A0}-\u{13F5}\u{13F8}-\u{13FD}\u{1C90}-\u{1CBA}\u{1CBD}-\u{1CBF}\u{1D00}-\u{1D2B}\u{1D6B}-\u{1D77}\u{1D79}-\u{1D9A}\u{1E00}-\u{1F15}\u{1F18}-\u{1F1D}\u{1F20}-\u{1F45}\u{1F48}-\u{1F4D}\u{1F50}-\u{1F57}\u{1F59}\u{1F5B}\u{1F5D}\u{1F5F}-\u{1F7D}\u{1F80}-\u{1FB4}\u{1FB6}-\u{1FBC}\u{1FBE}\u{1FC2}-\u{1FC4}\u{1FC6}-\u{1FCC}\u{1FD0}-\u{1FD3}\u{1FD6}-\u{1FDB}\u{1FE0}-\u{1FEC}\u{1FF2}-\u{1FF4}\u{1FF6}-\u{1FFC}\u{2102}\u{2107}\u{210A}-\u{2113}\u{2115}\u{2119}-\u{211D}\u{2124}\u{2126}\u{2128}\u{212A}-\u{212D}\u{212F}-\u{2134}\u{2139}\u{213C}-\u{213F}\u{2145}-\u{2149}\u{214E}\u{2183}\u{2184}\u{2C00}-\u{2C7B}\u{2C7E}-\u{2CE4}\u{2CEB}-\u{2CEE}\u{2CF2}\u{2CF3}\u{A640}-\u{A66D}\u{A680}-\u{A69B}\u{A722}-\u{A76F}\u{A771}-\u{A787}\u{A78B}-\u{A78E}\u{AB70}-\u{ABBF}\u{FB00}-\u{FB06}\u{FB13}-\u{FB17}\u{FF21}-\u{FF3A}\u{FF41}-\u{FF5A}\u{10400}-\u{1044F}\u{104B0}-\u{104D3}\u{104D8}-\u{104FB}\u{10C80}-\u{10CB2}\u{10CC0}-\u{10CF2}\u{118A0}-\u{118DF}\u{1E900}-\u{1E943}]+",
            "\\s?[!-/:-~\u{FF01}-\u{FF0F}\u{FF1A}-\u{FF5E}\u{2018}-\u{201F}\u{3000}-\u{3002}]+",
            "\\s+$",
            "[\u{4E00}-\u{9FA5}\u{800}-\u{4E00}\u{AC00}-\u{D7FF}]+",
            "\\p{N}+",
        ],
        "deepseek-coder": ["[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[\u{4E00}-\u{9FA5}\u{800}-\u{4E00}\u{AC00}-\u{D7FF}]+", "\\p{N}"],
        "falcon": ["[\\p{P}\\$\\+<=>\\^~\\|`]+", gpt2Pattern, "[0-9][0-9][0-9]"],
        "qwen35": ["(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"],
        "default": ["[\\p{P}\\$\\+<=>\\^~\\|]+", gpt2Pattern, "\\p{N}+", "[0-9][0-9][0-9]"],
    ]

    static let gpt2Names: Set<String> = ["gpt-2", "phi-2", "mpt", "olmo", "jais"]
    static let digitNames: Set<String> = ["smollm", "starcoder", "refact", "command-r", "codeshell", "exaone"]
    static let llama3Names: Set<String> = ["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"]
    static let qwen2Names: Set<String> = ["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2"]
    static var supportedNames: Set<String> { gpt2Names.union(digitNames).union(llama3Names).union(qwen2Names).union(patternLists.keys) }

    /// Whether a word that is itself a vocabulary entry becomes that token without merges (llama.cpp's
    /// `ignore_merges`, set for these vocabularies).
    public var ignoresMerges: Bool { self == .llama3 }

    /// The words BPE sees for `text` (no special-token handling), in order; they concatenate to `text`.
    public func words(in text: String) -> [String] {
        let bytes = Array(text.utf8)
        var scratch = PreTokenizerScratch()
        var words: [String] = []
        split(bytes, 0 ..< bytes.count, scratch: &scratch) { range in
            words.append(String(decoding: bytes[range], as: UTF8.self))
        }
        return words
    }

    /// Calls `word` with the byte range of each word of `bytes[range]`, in order.
    func split(_ bytes: [UInt8], _ range: Range<Int>, scratch: inout PreTokenizerScratch, word: (Range<Int>) -> Void) {
        scratch.decode(bytes, range)
        let count = scratch.scalars.count
        guard count > 0 else { return }
        switch self {
        case .gpt2:
            splitGPT2(scratch, 0, count, word: word)
        case .digitsThenGPT2:
            // `\p{N}`: each number character is a piece; the text between them forms the other pieces.
            var start = 0
            for index in 0 ..< count where scratch.classes[index] & CharClass.number != 0 {
                if index > start { splitGPT2(scratch, start, index, word: word) }
                splitGPT2(scratch, index, index + 1, word: word)
                start = index + 1
            }
            if start < count { splitGPT2(scratch, start, count, word: word) }
        case .llama3:
            splitLlama3(scratch, 0, count, maxDigits: 3, word: word)
        case .qwen2:
            splitLlama3(scratch, 0, count, maxDigits: 1, word: word)
        case .patterns(let splitter):
            for piece in splitter.pieces(scratch.scalars, scratch.classes, 0, count) {
                word(scratch.offsets[piece.lowerBound] ..< scratch.offsets[piece.upperBound])
            }
        }
    }

    /// The length of `'s|'t|'re|'ve|'m|'ll|'d` at `pos` (an apostrophe), 0 if none; `caseless`: the letters in either
    /// case (only ASCII letters lower-case to these).
    @inline(__always)
    private static func contraction(_ scalars: [UInt32], _ pos: Int, _ end: Int, caseless: Bool) -> Int {
        @inline(__always) func letter(_ i: Int) -> UInt32 {
            let c = scalars[i]
            return caseless && c >= 0x41 && c <= 0x5A ? c | 0x20 : c
        }
        guard pos + 1 < end else { return 0 }
        let next = letter(pos + 1)
        if next == 0x73 || next == 0x74 || next == 0x6D || next == 0x64 { return 2 } // s t m d
        guard pos + 2 < end else { return 0 }
        let nextNext = letter(pos + 2)
        if (next == 0x72 && nextNext == 0x65) || (next == 0x76 && nextNext == 0x65) || (next == 0x6C && nextNext == 0x6C) { return 3 } // re ve ll
        return 0
    }

    /// Llama 3's pattern over scalars `begin ..< end`, alternative by alternative as a regex engine tries them;
    /// numbers are cut into words of at most `maxDigits`.
    private func splitLlama3(_ s: PreTokenizerScratch, _ begin: Int, _ end: Int, maxDigits: Int, word: (Range<Int>) -> Void) {
        var piece = Piece(s, begin, end)
        let scalars = s.scalars, classes = s.classes
        @inline(__always) func cls(_ pos: Int) -> UInt8 { piece.cls(pos) }
        @inline(__always) func cpt(_ pos: Int) -> UInt32 { piece.cpt(pos) }
        @inline(__always) func emit(_ to: Int) { piece.emit(to, word) }
        @inline(__always) func isLineBreak(_ c: UInt32) -> Bool { c == 0x0D || c == 0x0A }

        var pos = begin
        while pos < end {
            let c = scalars[pos]
            let flags = classes[pos]

            // (?i:'s|'t|'re|'ve|'m|'ll|'d)
            if c == 0x27, case let n = Self.contraction(scalars, pos, end, caseless: true), n > 0 {
                pos += n
                emit(pos)
                continue
            }
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if !isLineBreak(c), flags & CharClass.number == 0, flags & CharClass.letter != 0 || cls(pos + 1) & CharClass.letter != 0 {
                pos += 1
                while cls(pos) & CharClass.letter != 0 { pos += 1 }
                emit(pos)
                continue
            }
            // \p{N}{1,3} (Qwen 2: \p{N})
            if flags & CharClass.number != 0 {
                let start = pos
                while cls(pos) & CharClass.number != 0, pos - start < maxDigits { pos += 1 }
                emit(pos)
                continue
            }
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
            let isSpace = c == 0x20
            let other = CharClass.whitespace | CharClass.letter | CharClass.number | CharClass.outOfRange
            if (isSpace ? cls(pos + 1) : flags) & other == 0 {
                if isSpace { pos += 1 }
                while cls(pos) & other == 0 { pos += 1 }
                while isLineBreak(cpt(pos)) { pos += 1 }
                emit(pos)
                continue
            }
            var whitespaceCount = 0
            var afterLastLineBreak = 0
            while cls(pos + whitespaceCount) & CharClass.whitespace != 0 {
                if isLineBreak(scalars[pos + whitespaceCount]) { afterLastLineBreak = pos + whitespaceCount + 1 }
                whitespaceCount += 1
            }
            // \s*[\r\n]+
            if afterLastLineBreak > 0 {
                pos = afterLastLineBreak
                emit(pos)
                continue
            }
            pos = piece.lastAlternativesEnd(pos, whitespace: whitespaceCount)
            emit(pos)
        }
    }

    /// llama.cpp's `unicode_regex_split_custom_gpt2` over scalars `begin ..< end` (a piece of an earlier split:
    /// look-ahead never crosses its end).
    private func splitGPT2(_ s: PreTokenizerScratch, _ begin: Int, _ end: Int, word: (Range<Int>) -> Void) {
        var piece = Piece(s, begin, end)
        let scalars = s.scalars, classes = s.classes
        @inline(__always) func cls(_ pos: Int) -> UInt8 { piece.cls(pos) }
        @inline(__always) func cpt(_ pos: Int) -> UInt32 { piece.cpt(pos) }
        @inline(__always) func emit(_ to: Int) { piece.emit(to, word) }

        var pos = begin
        while pos < end {
            let c = scalars[pos]
            let flags = classes[pos]

            // 's|'t|'re|'ve|'m|'ll|'d
            if c == 0x27, case let n = Self.contraction(scalars, pos, end, caseless: false), n > 0 {
                pos += n
                emit(pos)
                continue
            }

            let isSpace = c == 0x20
            var flags2 = isSpace ? cls(pos + 1) : flags
            // ` ?\p{L}+`
            if flags2 & CharClass.letter != 0 {
                if isSpace { pos += 1 }
                while flags2 & CharClass.letter != 0 {
                    pos += 1
                    flags2 = cls(pos)
                }
                emit(pos)
                continue
            }
            // ` ?\p{N}+`
            if flags2 & CharClass.number != 0 {
                if isSpace { pos += 1 }
                while flags2 & CharClass.number != 0 {
                    pos += 1
                    flags2 = cls(pos)
                }
                emit(pos)
                continue
            }
            // ` ?[^\s\p{L}\p{N}]+`
            if flags2 & (CharClass.whitespace | CharClass.letter | CharClass.number | CharClass.outOfRange) == 0 {
                if isSpace { pos += 1 }
                while flags2 & (CharClass.whitespace | CharClass.letter | CharClass.number | CharClass.outOfRange) == 0 {
                    pos += 1
                    flags2 = cls(pos)
                }
                emit(pos)
                continue
            }

            var whitespaceCount = 0
            while cls(pos + whitespaceCount) & CharClass.whitespace != 0 {
                whitespaceCount += 1
            }
            pos = piece.lastAlternativesEnd(pos, whitespace: whitespaceCount)
            emit(pos)
        }
    }
}

/// What both matchers read and track in one piece of text: its scalars and their classes, and where the last word
/// ended (the words are reported as byte ranges).
private struct Piece {
    let scalars: [UInt32]
    let classes: [UInt8]
    let offsets: [Int]
    let end: Int
    var previousEnd: Int

    init(_ s: PreTokenizerScratch, _ begin: Int, _ end: Int) {
        scalars = s.scalars; classes = s.classes; offsets = s.offsets; self.end = end; previousEnd = begin
    }

    /// Class of a position, or `outOfRange` past the piece (llama.cpp's empty flags).
    @inline(__always) func cls(_ pos: Int) -> UInt8 { pos < end ? classes[pos] : CharClass.outOfRange }
    @inline(__always) func cpt(_ pos: Int) -> UInt32 { pos < end ? scalars[pos] : UInt32.max }

    /// Where the word at `pos` ends by the patterns' last alternatives, `\s+(?!\S)|\s+` (a whitespace run followed
    /// by more text leaves its last character for the next word), or else one character on its own; `count`: the
    /// whitespace characters from `pos`.
    @inline(__always) func lastAlternativesEnd(_ pos: Int, whitespace count: Int) -> Int {
        if count > 1, cpt(pos + count) != UInt32.max { return pos + count - 1 }
        return pos + max(1, count)
    }

    /// Reports the text from the end of the last word to `to` as a word.
    @inline(__always) mutating func emit(_ to: Int, _ word: (Range<Int>) -> Void) {
        if to > previousEnd { word(offsets[previousEnd] ..< offsets[to]) }
        previousEnd = to
    }
}

/// Reusable buffers for pre-tokenizing one fragment.
struct PreTokenizerScratch {
    /// Code points of the fragment.
    var scalars: [UInt32] = []
    /// `CharClass` bits for each code point.
    var classes: [UInt8] = []
    /// UTF-8 offset (into the whole byte array) of each code point, plus the end offset.
    var offsets: [Int] = []

    /// Decodes `bytes[range]` (well-formed UTF-8, as it comes from a `String`); a malformed byte would count
    /// as U+FFFD, as llama.cpp does.
    mutating func decode(_ bytes: [UInt8], _ range: Range<Int>) {
        scalars.removeAll(keepingCapacity: true)
        classes.removeAll(keepingCapacity: true)
        offsets.removeAll(keepingCapacity: true)
        var i = range.lowerBound
        let end = range.upperBound
        while i < end {
            let b0 = bytes[i]
            var value: UInt32 = 0xFFFD
            var length = 1
            if b0 < 0x80 {
                value = UInt32(b0)
            } else if b0 & 0xE0 == 0xC0, i + 1 < end, bytes[i + 1] & 0xC0 == 0x80 {
                value = UInt32(b0 & 0x1F) << 6 | UInt32(bytes[i + 1] & 0x3F)
                length = 2
            } else if b0 & 0xF0 == 0xE0, i + 2 < end, bytes[i + 1] & 0xC0 == 0x80, bytes[i + 2] & 0xC0 == 0x80 {
                value = UInt32(b0 & 0x0F) << 12 | UInt32(bytes[i + 1] & 0x3F) << 6 | UInt32(bytes[i + 2] & 0x3F)
                length = 3
            } else if b0 & 0xF8 == 0xF0, i + 3 < end, bytes[i + 1] & 0xC0 == 0x80, bytes[i + 2] & 0xC0 == 0x80,
                      bytes[i + 3] & 0xC0 == 0x80 {
                value = UInt32(b0 & 0x07) << 18 | UInt32(bytes[i + 1] & 0x3F) << 12
                    | UInt32(bytes[i + 2] & 0x3F) << 6 | UInt32(bytes[i + 3] & 0x3F)
                length = 4
            }
            scalars.append(value)
            classes.append(CharClass.of(value))
            offsets.append(i)
            i += length
        }
        offsets.append(end)
    }
}

/// The Unicode classes the GPT-2 pattern distinguishes, as llama.cpp's code-point flags define them:
/// `\p{L}` is general category L* (marks are not letters), `\p{N}` is N* (Nd, Nl, No), `\s` is White_Space.
enum CharClass {
    static let letter: UInt8 = 1
    static let number: UInt8 = 2
    static let whitespace: UInt8 = 4
    /// Unicode punctuation (P*), symbols (S*) and marks (M*): only the pattern lists ask for these.
    static let punctuation: UInt8 = 16
    static let symbol: UInt8 = 32
    static let mark: UInt8 = 64
    /// Past the end of the piece (llama.cpp's all-zero flags): matches none of the classes, not even "other".
    static let outOfRange: UInt8 = 8

    private static let ascii: [UInt8] = (0 ..< 128).map { classify(UInt32($0)) }

    @inline(__always)
    static func of(_ value: UInt32) -> UInt8 {
        value < 128 ? ascii[Int(value)] : classify(value)
    }

    private static func classify(_ value: UInt32) -> UInt8 {
        guard let scalar = Unicode.Scalar(value) else { return 0 }
        let properties = scalar.properties
        var result: UInt8 = 0
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            result = letter
        case .decimalNumber, .letterNumber, .otherNumber:
            result = number
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
             .finalPunctuation, .otherPunctuation:
            result = punctuation
        case .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol:
            result = symbol
        case .nonspacingMark, .spacingMark, .enclosingMark:
            result = mark
        default:
            break
        }
        if properties.isWhitespace { result |= whitespace }
        return result
    }
}
