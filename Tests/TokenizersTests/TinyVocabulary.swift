import Tokenizers

/// GPT-2's byte → character spelling, written out independently of the library for tests.
func gpt2Spelling(_ byte: UInt8) -> String {
    var printable: [UInt8] = []
    printable += Array(0x21 ... 0x7E)
    printable += Array(0xA1 ... 0xAC)
    printable += Array(0xAE ... 0xFF)
    if printable.contains(byte) { return String(Character(Unicode.Scalar(byte))) }
    let others = (0 ... 255).map { UInt8($0) }.filter { !printable.contains($0) }
    let index = others.firstIndex(of: byte) ?? 0
    return String(Character(Unicode.Scalar(UInt32(256 + index)) ?? " "))
}

func gpt2Spelling(_ text: String) -> String {
    text.utf8.map { gpt2Spelling($0) }.joined()
}

/// A small byte-level vocabulary: the 256 byte characters (ids 0…255), then `extra` tokens.
struct TinyVocabulary {
    var extra: [(text: String, type: Int)] = []
    var merges: [String] = []
    var special = BPETokenizer.SpecialTokenIDs()
    var preTokenizer = PreTokenizer.digitsThenGPT2

    var tokens: [String] { (0 ... 255).map { gpt2Spelling(UInt8($0)) } + extra.map(\.text) }
    var types: [Int] { [Int](repeating: 1, count: 256) + extra.map(\.type) }

    /// Adds a token (spelled with GPT-2 byte characters when `normal`); returns its id.
    @discardableResult
    mutating func add(_ text: String, type: Int = 1) -> Int32 {
        extra.append((type == 1 ? gpt2Spelling(text) : text, type))
        return Int32(255 + extra.count)
    }

    /// Adds the merge of two raw-text pieces.
    mutating func merge(_ left: String, _ right: String) {
        merges.append(gpt2Spelling(left) + " " + gpt2Spelling(right))
    }

    func build() throws -> BPETokenizer {
        try BPETokenizer(tokens: tokens, tokenTypes: types, merges: merges, preTokenizer: preTokenizer,
                         specialTokens: special)
    }

    /// Id of a single byte.
    static func byte(_ character: Character) -> Int32 {
        Int32(character.asciiValue ?? 0)
    }
}
