import Foundation

/// A model's answer as Telegram messages: cut into pieces Telegram accepts (at most 4,096 characters each), then the
/// little Markdown models write — fenced code blocks, `inline code`, **bold** — as Telegram's HTML, with everything
/// else escaped so that no answer can break the markup (`parse_mode: HTML`).
enum TelegramText {
    /// Telegram's longest message, in characters after its markup is read.
    static let limit = 4096

    /// The answer's pieces, each at most `limit` UTF-16 units of source (its markup only shortens it), cut at a blank
    /// line, else a line's end, else a space, else anywhere; a code block cut in two is closed and opened again.
    static func pieces(_ text: String, limit: Int = TelegramText.limit) -> [String] {
        let text = text.replacingOccurrences(of: "\r\n", with: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { return [] }
        // Room for a fence closed at the end of a piece and opened at the start of the next.
        let room = max(16, limit - 32)
        var pieces: [String] = []
        var rest = Substring(text)
        var openFence: String?   // the fence line (with its language) the previous piece ended inside
        while !rest.isEmpty {
            var piece: Substring
            if rest.utf16.count <= room {
                piece = rest
                rest = ""
            } else {
                let cut = cutIndex(rest, room: room)
                piece = rest[..<cut]
                rest = rest[cut...].drop { $0 == "\n" || $0 == " " }
            }
            var out = (openFence.map { $0 + "\n" } ?? "") + piece
            let fence = fenceOpenAtEnd(of: out)
            if fence != nil { out += "\n```" }
            // Reopened with its language only when that fits the room kept for it.
            openFence = fence.map { $0.utf16.count > 24 ? "```" : $0 }
            let trimmed = out.trimmingCharacters(in: .whitespacesAndNewlines)
            if !trimmed.isEmpty && trimmed != "```" { pieces.append(trimmed) }
        }
        return pieces
    }

    /// Where to cut `text` so the first part is at most `room` UTF-16 units: the last blank line, line end or space
    /// in its second half, else at `room`.
    private static func cutIndex(_ text: Substring, room: Int) -> Substring.Index {
        // The longest run of whole characters within `room`.
        var count = 0, end = text.startIndex, half = text.startIndex
        for i in text.indices {
            let width = text[i].utf16.count
            if count + width > room { break }
            count += width
            end = text.index(after: i)
            if count <= room / 2 { half = end }
        }
        let head = text[..<end]
        for separator in ["\n\n", "\n", " "] {
            if let r = head.range(of: separator, options: .backwards), r.lowerBound >= half, r.lowerBound > text.startIndex {
                return r.lowerBound
            }
        }
        if end == text.startIndex {
            // One character longer than the room (a letter under thousands of combining marks): cut among its scalars.
            var units = 0
            var scalar = text.unicodeScalars.startIndex
            while scalar < text.unicodeScalars.endIndex, units + text.unicodeScalars[scalar].utf16.count <= room {
                units += text.unicodeScalars[scalar].utf16.count
                scalar = text.unicodeScalars.index(after: scalar)
            }
            return scalar
        }
        return end
    }

    /// The fence line a text leaves open (an odd count of ``` lines), or nil.
    private static func fenceOpenAtEnd(of text: String) -> String? {
        var open: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let t = line.trimmingCharacters(in: .whitespaces)
            guard t.hasPrefix("```") else { continue }
            open = open == nil ? t : nil
        }
        return open
    }

    /// Telegram HTML for the Markdown of one piece.
    static func html(_ markdown: String) -> String {
        var out = ""
        var lines = markdown.split(separator: "\n", omittingEmptySubsequences: false)[...]
        var paragraph: [Substring] = []
        func flush() {
            if !paragraph.isEmpty { out += inline(paragraph.joined(separator: "\n")) + "\n"; paragraph = [] }
        }
        while let line = lines.popFirst() {
            let t = line.trimmingCharacters(in: .whitespaces)
            guard t.hasPrefix("```") else { paragraph.append(line); continue }
            // A fenced block: to its closing fence, or to the end.
            flush()
            let language = t.dropFirst(3).trimmingCharacters(in: .whitespaces)
            var code: [Substring] = []
            while let l = lines.popFirst(), !l.trimmingCharacters(in: .whitespaces).hasPrefix("```") { code.append(l) }
            let safeLanguage = language.allSatisfy { $0.isLetter || $0.isNumber || "+#-_.".contains($0) } ? language : ""
            out += safeLanguage.isEmpty ? "<pre>" : "<pre><code class=\"language-\(safeLanguage)\">"
            out += escape(code.joined(separator: "\n"))
            out += safeLanguage.isEmpty ? "</pre>\n" : "</code></pre>\n"
        }
        flush()
        while out.hasSuffix("\n") { out.removeLast() }
        return out
    }

    /// `inline code` and **bold** in a paragraph, the rest escaped; a marker without its pair stays as it is.
    static func inline(_ text: String) -> String {
        var out = ""
        var rest = Substring(text)
        while !rest.isEmpty {
            if rest.hasPrefix("`"), let close = rest.dropFirst().firstIndex(of: "`"), close > rest.index(after: rest.startIndex) {
                out += "<code>" + escape(rest[rest.index(after: rest.startIndex)..<close]) + "</code>"
                rest = rest[rest.index(after: close)...]
            } else if rest.hasPrefix("**"), let close = rest.dropFirst(2).range(of: "**"),
                      close.lowerBound > rest.index(rest.startIndex, offsetBy: 2) {
                let inner = rest[rest.index(rest.startIndex, offsetBy: 2)..<close.lowerBound]
                out += "<b>" + inline(String(inner)) + "</b>"
                rest = rest[close.upperBound...]
            } else {
                let next = rest.dropFirst().firstIndex { $0 == "`" || $0 == "*" } ?? rest.endIndex
                out += escape(rest[..<next])
                rest = rest[next...]
            }
        }
        return out
    }

    /// `&`, `<` and `>` as Telegram's HTML mode wants them.
    static func escape(_ s: some StringProtocol) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            default: out.append(c)
            }
        }
        return out
    }
}
