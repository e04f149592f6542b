import Testing
import Tokenizers

@Suite struct StreamingDetokenizerTests {
    /// Feeds `ids` one at a time; checks that every piece is an exact, whole-character slice of `expected`.
    static func stream(_ ids: [Int32], through tokenizer: any Tokenizer, expecting expected: String)
        -> (pieces: [String], held: Int) {
        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        let expectedBytes = Array(expected.utf8)
        var offset = 0
        var pieces: [String] = []
        var held = 0
        for id in ids {
            let piece = detokenizer.append(id)
            if piece.isEmpty && !tokenizer.tokenBytes(id).isEmpty { held += 1 }
            let bytes = Array(piece.utf8)
            #expect(!piece.unicodeScalars.contains("\u{FFFD}"))
            #expect(offset + bytes.count <= expectedBytes.count)
            if offset + bytes.count <= expectedBytes.count {
                #expect(Array(expectedBytes[offset ..< offset + bytes.count]) == bytes)
            }
            offset += bytes.count
            pieces.append(piece)
        }
        let rest = detokenizer.flush()
        #expect(rest.isEmpty)
        pieces.append(rest)
        #expect(offset == expectedBytes.count)
        #expect(pieces.joined() == expected)
        return (pieces, held)
    }

    @Test func multibyteCharactersAreHeldUntilComplete() throws {
        let tokenizer = try TinyVocabulary().build()
        let text = "é日🤖x"
        let ids = text.utf8.map { Int32($0) } // one token per byte
        let (pieces, held) = Self.stream(ids, through: tokenizer, expecting: text)
        #expect(pieces == ["", "é", "", "", "日", "", "", "", "🤖", "x", ""])
        #expect(held == 6)
    }

    @Test func invalidBytesBecomeReplacementCharacters() throws {
        let tokenizer = try TinyVocabulary().build()
        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        // A lone continuation byte can never become valid: emitted at once.
        #expect(detokenizer.append(0x80) == "\u{FFFD}")
        // An unfinished 4-byte sequence is held, then replaced on flush.
        #expect(detokenizer.append(0xF0) == "")
        #expect(detokenizer.append(0x9F) == "")
        #expect(detokenizer.flush() == "\u{FFFD}")
        // A lead byte followed by a non-continuation byte is not held back.
        #expect(detokenizer.append(0xE2) == "")
        #expect(detokenizer.append(0x41) == "\u{FFFD}A")
        // 0xE0 0x80 is not a prefix of any valid character.
        #expect(detokenizer.append(0xE0) == "")
        #expect(detokenizer.append(0x80) == "\u{FFFD}\u{FFFD}")
        #expect(detokenizer.flush() == "")
    }

    @Test func streamingMatchesDecodeForArbitraryBytes() throws {
        let tokenizer = try TinyVocabulary().build()
        var generator = SystemRandomNumberGenerator()
        for _ in 0 ..< 200 {
            let ids = (0 ..< Int.random(in: 0 ... 12, using: &generator)).map { _ in
                Int32.random(in: 0 ... 255, using: &generator)
            }
            var detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
            var text = ""
            for id in ids { text += detokenizer.append(id) }
            text += detokenizer.flush()
            #expect(Array(text.unicodeScalars) == Array(tokenizer.decode(ids).unicodeScalars), "ids \(ids)")
        }
    }
}
