import Testing
import Tokenizers

@Suite struct PreTokenizerTests {
    let smollm = PreTokenizer.digitsThenGPT2
    let gpt2 = PreTokenizer.gpt2

    @Test func namesMapToPreTokenizers() {
        #expect(PreTokenizer(llamaName: "smollm") == .digitsThenGPT2)
        #expect(PreTokenizer(llamaName: "starcoder") == .digitsThenGPT2)
        #expect(PreTokenizer(llamaName: "gpt-2") == .gpt2)
        #expect(PreTokenizer(llamaName: "llama-bpe") == .llama3)
        #expect(PreTokenizer(llamaName: "qwen2") == .qwen2)
        #expect(PreTokenizer(llamaName: "chatglm-bpe") == nil)
        #expect(PreTokenizer(llamaName: "chatglm-bpe") == nil)
    }

    @Test func everyDigitIsItsOwnWord() {
        #expect(smollm.words(in: "3.14159 and 2,718")
            == ["3", ".", "1", "4", "1", "5", "9", " and", " ", "2", ",", "7", "1", "8"])
        #expect(smollm.words(in: "abc 123") == ["abc", " ", "1", "2", "3"])
        // Without the digit rule, a space joins the number run.
        #expect(gpt2.words(in: "abc 123") == ["abc", " 123"])
        // Non-ASCII numbers (Nd, No, Nl) count too.
        #expect(smollm.words(in: "x²½Ⅻ٣") == ["x", "²", "½", "Ⅻ", "٣"])
    }

    @Test func contractionsAreCaseSensitive() {
        #expect(gpt2.words(in: "I'm can't won't they'll we've you're he'd") == [
            "I", "'m", " can", "'t", " won", "'t", " they", "'ll", " we", "'ve", " you", "'re", " he", "'d",
        ])
        #expect(gpt2.words(in: "DON'T") == ["DON", "'", "T"])
        #expect(gpt2.words(in: "it's'") == ["it", "'s", "'"])
    }

    @Test func whitespaceRunsLeaveOneSpaceForTheNextWord() {
        #expect(gpt2.words(in: "Hello  world") == ["Hello", " ", " world"])
        #expect(gpt2.words(in: "   leading spaces") == ["  ", " leading", " spaces"])
        #expect(gpt2.words(in: "trailing spaces   ") == ["trailing", " spaces", "   "])
        #expect(gpt2.words(in: "Hello\n\nworld\n") == ["Hello", "\n", "\n", "world", "\n"])
        #expect(gpt2.words(in: "a \n b") == ["a", " \n", " b"])
        #expect(gpt2.words(in: "\t\tindented") == ["\t", "\t", "indented"])
        #expect(gpt2.words(in: "x    return") == ["x", "   ", " return"])
    }

    @Test func unicodeWhitespaceAndLetters() {
        // NBSP is whitespace but not a space: it never prefixes a word.
        #expect(gpt2.words(in: "\u{A0}non-breaking\u{A0}space") == ["\u{A0}", "non", "-", "breaking", "\u{A0}", "space"])
        // Combining marks are not letters.
        #expect(gpt2.words(in: "cafe\u{301} ok") == ["cafe", "\u{301}", " ok"])
        #expect(gpt2.words(in: "Привет, мир!") == ["Привет", ",", " мир", "!"])
        #expect(gpt2.words(in: "emoji 🤖🚀 mix") == ["emoji", " 🤖🚀", " mix"])
        #expect(gpt2.words(in: "日本語のテキスト") == ["日本語のテキスト"])
    }

    @Test func punctuationRuns() {
        #expect(gpt2.words(in: "x**2 == y;") == ["x", "**", "2", " ==", " y", ";"])
        #expect(smollm.words(in: "{'a': 1}") == ["{'", "a", "':", " ", "1", "}"])
        #expect(gpt2.words(in: "") == [])
    }

    @Test func wordsConcatenateToTheText() {
        let texts = ["The quick brown fox.\n\n  Jumps!", "a\t\r\nb", " \u{3000}x", "🇫🇷 👨‍👩‍👧 ok", "trailing\n\n"]
        for text in texts {
            #expect(smollm.words(in: text).joined() == text)
            #expect(gpt2.words(in: text).joined() == text)
        }
    }
}
