import Foundation
import Testing

@testable import Gateway

/// A model's answer as Telegram messages: escaping for `parse_mode: HTML`, the little Markdown turned into tags, and
/// the cut into pieces of at most 4,096 characters.
@Suite struct TelegramTextTests {
    @Test func everythingButTheMarkupIsEscaped() {
        #expect(TelegramText.html("a < b && c > d") == "a &lt; b &amp;&amp; c &gt; d")
        #expect(TelegramText.html("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;")
        #expect(TelegramText.html("use `x < 1` and **bold <i>**") == "use <code>x &lt; 1</code> and <b>bold &lt;i&gt;</b>")
        #expect(TelegramText.html("a lone * and ` and **") == "a lone * and ` and **", "markers without their pair stay")
    }

    @Test func fencedCodeBecomesPreWithItsLanguage() {
        let text = "Here:\n```swift\nlet a = b < c && d\n```\nDone."
        #expect(TelegramText.html(text) == "Here:\n<pre><code class=\"language-swift\">let a = b &lt; c &amp;&amp; d</code></pre>\nDone.")
        #expect(TelegramText.html("```\"><x\nhi\n```") == "<pre>hi</pre>", "a language that is not a word is dropped")
    }

    @Test func longAnswersAreCutAtParagraphsAndLinesWithinTheLimit() {
        let paragraph = String(repeating: "word ", count: 150).trimmingCharacters(in: .whitespaces)   // 749 characters
        let text = Array(repeating: paragraph, count: 12).joined(separator: "\n\n")
        let pieces = TelegramText.pieces(text)
        #expect(pieces.count == 3)
        #expect(pieces.allSatisfy { $0.utf16.count <= TelegramText.limit })
        #expect(pieces.allSatisfy { $0.hasPrefix("word") && $0.hasSuffix("word") }, "cut between paragraphs")
        #expect(pieces.joined(separator: "\n\n") == text, "nothing lost")
        #expect(TelegramText.pieces("  \n ").isEmpty)
        #expect(TelegramText.pieces("short") == ["short"])
        #expect(TelegramText.pieces("```swift\r\nlet a = 1\r\n```") == ["```swift\nlet a = 1\n```"], "CRLF read as LF")
    }

    @Test func aCutNeverSplitsACharacterAndReopensACodeBlock() {
        let emoji = String(repeating: "👩‍👩‍👧", count: 1000)   // 8 UTF-16 units each, no space anywhere
        let pieces = TelegramText.pieces(emoji)
        #expect(pieces.allSatisfy { $0.utf16.count <= TelegramText.limit })
        #expect(pieces.joined() == emoji)
        let zalgo = "Z" + String(repeating: "\u{0301}", count: 9000) + " done"   // one character of 9,001 scalars
        let cutZalgo = TelegramText.pieces(zalgo)
        #expect(cutZalgo.count == 3 && cutZalgo.allSatisfy { $0.utf16.count <= TelegramText.limit })
        #expect(cutZalgo.joined().unicodeScalars.elementsEqual(zalgo.unicodeScalars), "every scalar, in order")
        let code = "```python\n" + Array(repeating: "print('x' * 40)", count: 400).joined(separator: "\n") + "\n```"
        let cut = TelegramText.pieces(code)
        #expect(cut.count == 2)
        #expect(cut.allSatisfy { $0.hasPrefix("```python\n") && $0.hasSuffix("\n```") }, "each piece is a whole code block")
        #expect(cut.allSatisfy { TelegramText.html($0).hasPrefix("<pre><code class=\"language-python\">") })
    }
}
