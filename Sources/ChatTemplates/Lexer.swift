/// A token of the template source.
struct Token: Equatable {
    enum Kind: Equatable {
        /// Literal template text (already adjusted for whitespace control).
        case text(String)
        case variableBegin
        case variableEnd
        case blockBegin
        case blockEnd
        case name(String)
        case string(String)
        case integer(Int)
        case float(Double)
        case op(String)
        case end
    }

    var kind: Kind
    var line: Int
}

/// Splits a template into tokens with Jinja2's whitespace rules: `-` markers strip all adjacent
/// whitespace, `trim_blocks` drops the first newline after a block or comment tag, and
/// `lstrip_blocks` drops spaces and tabs before a block or comment tag at the start of a line.
struct Lexer {
    private let source: [UInt8]
    private let trimBlocks: Bool
    private let lstripBlocks: Bool
    private var position = 0
    private var line = 1
    private var lineStarting = true
    private var tokens: [Token] = []

    init(source: String, trimBlocks: Bool, lstripBlocks: Bool) {
        self.source = Array(Lexer.normalizeNewlines(source).utf8)
        self.trimBlocks = trimBlocks
        self.lstripBlocks = lstripBlocks
    }

    /// Jinja2 runs the source through `str.splitlines()` and joins with `\n`: every line
    /// boundary becomes `\n` and one trailing newline is dropped.
    static func normalizeNewlines(_ source: String) -> String {
        var scalars = String.UnicodeScalarView()
        var previousWasCR = false
        for scalar in source.unicodeScalars {
            switch scalar {
            case "\r":
                scalars.append("\n")
                previousWasCR = true
                continue
            case "\n":
                if !previousWasCR { scalars.append("\n") }
            case "\u{0B}", "\u{0C}", "\u{1C}", "\u{1D}", "\u{1E}", "\u{85}", "\u{2028}", "\u{2029}":
                scalars.append("\n")
            default:
                scalars.append(scalar)
            }
            previousWasCR = false
        }
        var result = String(scalars)
        if result.hasSuffix("\n") { result.removeLast() }
        return result
    }

    static func tokenize(_ source: String, trimBlocks: Bool, lstripBlocks: Bool) throws(TemplateError) -> [Token] {
        var lexer = Lexer(source: source, trimBlocks: trimBlocks, lstripBlocks: lstripBlocks)
        try lexer.run()
        return lexer.tokens
    }

    // MARK: - Root state

    private enum TagKind {
        case variable, block, comment
    }

    private mutating func run() throws(TemplateError) {
        while position < source.count {
            guard let (start, kind) = nextTagStart(from: position) else {
                emitText(position, source.count)
                break
            }
            var sign: UInt8?
            let afterDelimiter = start + 2
            if afterDelimiter < source.count, source[afterDelimiter] == UInt8(ascii: "-") || source[afterDelimiter] == UInt8(ascii: "+") {
                sign = source[afterDelimiter]
            }
            var text = String(decoding: source[position..<start], as: UTF8.self)
            if sign == UInt8(ascii: "-") {
                text = PythonString.rstrip(text)
            } else if sign != UInt8(ascii: "+"), lstripBlocks, kind != .variable {
                text = lstripTail(text)
            }
            let tagLine = line + newlineCount(position, start)
            if !text.isEmpty { tokens.append(Token(kind: .text(text), line: line)) }
            line = tagLine
            position = afterDelimiter + (sign == nil ? 0 : 1)
            lineStarting = false

            switch kind {
            case .comment:
                try skipComment(openLine: tagLine)
            case .variable:
                tokens.append(Token(kind: .variableBegin, line: tagLine))
                try lexInsideTag(variable: true, openLine: tagLine)
            case .block:
                if try lexRaw(openLine: tagLine) { continue }
                tokens.append(Token(kind: .blockBegin, line: tagLine))
                try lexInsideTag(variable: false, openLine: tagLine)
            }
        }
        tokens.append(Token(kind: .end, line: line))
    }

    /// `lstrip_blocks`: removes whitespace between the last newline and the tag when nothing else
    /// is on that line.
    private func lstripTail(_ text: String) -> String {
        let scalars = text.unicodeScalars
        var lineStart = scalars.startIndex
        var sawNewline = false
        if let newline = scalars.lastIndex(of: "\n") {
            lineStart = scalars.index(after: newline)
            sawNewline = true
        }
        guard sawNewline || lineStarting else { return text }
        let tail = scalars[lineStart...]
        guard !tail.isEmpty, tail.allSatisfy(PythonString.isWhitespace) else { return text }
        return String(scalars[..<lineStart])
    }

    private func nextTagStart(from start: Int) -> (Int, TagKind)? {
        var index = start
        while index + 1 < source.count {
            if source[index] == UInt8(ascii: "{") {
                switch source[index + 1] {
                case UInt8(ascii: "{"): return (index, .variable)
                case UInt8(ascii: "%"): return (index, .block)
                case UInt8(ascii: "#"): return (index, .comment)
                default: break
                }
            }
            index += 1
        }
        return nil
    }

    private mutating func emitText(_ start: Int, _ end: Int) {
        guard start < end else { return }
        tokens.append(Token(kind: .text(String(decoding: source[start..<end], as: UTF8.self)), line: line))
        line += newlineCount(start, end)
        position = end
    }

    private func newlineCount(_ start: Int, _ end: Int) -> Int {
        var count = 0
        var index = start
        while index < end {
            if source[index] == 0x0A { count += 1 }
            index += 1
        }
        return count
    }

    private func matches(_ literal: String, at index: Int) -> Bool {
        var offset = index
        for byte in literal.utf8 {
            guard offset < source.count, source[offset] == byte else { return false }
            offset += 1
        }
        return true
    }

    /// Consumes the whitespace that follows a closing `-%}`, `-}}` or `-#}`.
    private mutating func skipAllWhitespace() {
        while position < source.count {
            let (scalar, width) = scalarAt(position)
            guard PythonString.isWhitespace(scalar) else { break }
            if scalar == "\n" { line += 1 }
            position += width
        }
    }

    private func scalarAt(_ index: Int) -> (Unicode.Scalar, Int) {
        let lead = source[index]
        if lead < 0x80 { return (Unicode.Scalar(lead), 1) }
        let width = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2
        let end = min(index + width, source.count)
        let decoded = String(decoding: source[index..<end], as: UTF8.self).unicodeScalars.first ?? "\u{FFFD}"
        return (decoded, end - index)
    }

    /// Handles the end of a block or comment tag: `-` strips all following whitespace, `+`
    /// keeps it, otherwise `trim_blocks` removes one newline.
    private mutating func finishTag(sign: UInt8?, delimiterLength: Int) {
        position += delimiterLength
        let consumedStart = position
        if sign == UInt8(ascii: "-") {
            skipAllWhitespace()
        } else if sign != UInt8(ascii: "+"), trimBlocks, position < source.count, source[position] == 0x0A {
            position += 1
            line += 1
        }
        lineStarting = position > consumedStart && source[position - 1] == 0x0A
    }

    private mutating func skipComment(openLine: Int) throws(TemplateError) {
        var index = position
        while index + 1 < source.count {
            if source[index] == UInt8(ascii: "#"), source[index + 1] == UInt8(ascii: "}") {
                var sign: UInt8?
                var end = index
                if index > position, source[index - 1] == UInt8(ascii: "-") || source[index - 1] == UInt8(ascii: "+") {
                    sign = source[index - 1]
                    end = index - 1
                }
                line += newlineCount(position, end)
                position = end
                finishTag(sign: sign, delimiterLength: sign == nil ? 2 : 3)
                return
            }
            index += 1
        }
        throw .syntax("missing end of comment tag", line: openLine)
    }

    /// Recognizes `{% raw %}...{% endraw %}` and emits its content verbatim.
    private mutating func lexRaw(openLine: Int) throws(TemplateError) -> Bool {
        var index = position
        func skipSpaces(_ index: inout Int) {
            while index < source.count, PythonString.isWhitespace(Unicode.Scalar(source[index])) { index += 1 }
        }
        skipSpaces(&index)
        guard matches("raw", at: index) else { return false }
        index += 3
        skipSpaces(&index)
        var openSign: UInt8?
        if matches("-%}", at: index) {
            openSign = UInt8(ascii: "-")
        } else if !matches("%}", at: index) {
            return false
        }
        line += newlineCount(position, index)
        position = index
        // The opening raw tag does not honour trim_blocks: only `-` strips.
        position += openSign == nil ? 2 : 3
        if openSign != nil { skipAllWhitespace() }

        var search = position
        while let (start, kind) = nextTagStart(from: search) {
            search = start + 2
            guard kind == .block else { continue }
            var cursor = start + 2
            var sign: UInt8?
            if cursor < source.count, source[cursor] == UInt8(ascii: "-") || source[cursor] == UInt8(ascii: "+") {
                sign = source[cursor]
                cursor += 1
            }
            skipSpaces(&cursor)
            guard matches("endraw", at: cursor) else { continue }
            cursor += 6
            skipSpaces(&cursor)
            var closeSign: UInt8?
            if matches("-%}", at: cursor) || matches("+%}", at: cursor) {
                closeSign = source[cursor]
            } else if !matches("%}", at: cursor) {
                continue
            }
            var text = String(decoding: source[position..<start], as: UTF8.self)
            if sign == UInt8(ascii: "-") {
                text = PythonString.rstrip(text)
            } else if sign != UInt8(ascii: "+"), lstripBlocks {
                text = lstripTail(text)
            }
            if !text.isEmpty { tokens.append(Token(kind: .text(text), line: line)) }
            line += newlineCount(position, cursor)
            position = cursor
            finishTag(sign: closeSign, delimiterLength: closeSign == nil ? 2 : 3)
            return true
        }
        throw .syntax("missing end of raw directive", line: openLine)
    }

    // MARK: - Inside a tag

    private mutating func lexInsideTag(variable: Bool, openLine: Int) throws(TemplateError) {
        var balancing: [UInt8] = []
        while true {
            // Whitespace between tokens.
            while position < source.count {
                let (scalar, width) = scalarAt(position)
                guard PythonString.isWhitespace(scalar) else { break }
                if scalar == "\n" { line += 1 }
                position += width
            }
            guard position < source.count else {
                let what = variable ? "'}}'" : "'%}'"
                throw .syntax("unexpected end of template, expected \(what) to close the tag opened on line \(openLine)", line: line)
            }
            if balancing.isEmpty {
                if variable {
                    if matches("-}}", at: position) {
                        position += 3
                        skipAllWhitespace()
                        lineStarting = source[position - 1] == 0x0A
                        tokens.append(Token(kind: .variableEnd, line: line))
                        return
                    }
                    if matches("}}", at: position) {
                        position += 2
                        lineStarting = false
                        tokens.append(Token(kind: .variableEnd, line: line))
                        return
                    }
                } else {
                    if matches("-%}", at: position) || matches("+%}", at: position) {
                        let sign = source[position]
                        tokens.append(Token(kind: .blockEnd, line: line))
                        finishTag(sign: sign, delimiterLength: 3)
                        return
                    }
                    if matches("%}", at: position) {
                        tokens.append(Token(kind: .blockEnd, line: line))
                        finishTag(sign: nil, delimiterLength: 2)
                        return
                    }
                }
            }
            let byte = source[position]
            if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                try lexNumber()
            } else if byte == UInt8(ascii: "_") || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "z")) {
                let start = position
                while position < source.count {
                    let c = source[position]
                    guard c == UInt8(ascii: "_") || (c | 0x20 >= UInt8(ascii: "a") && c | 0x20 <= UInt8(ascii: "z"))
                        || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
                    else { break }
                    position += 1
                }
                tokens.append(Token(kind: .name(String(decoding: source[start..<position], as: UTF8.self)), line: line))
            } else if byte == UInt8(ascii: "'") || byte == UInt8(ascii: "\"") {
                try lexString(quote: byte)
            } else {
                try lexOperator(&balancing)
            }
        }
    }

    private static let twoCharacterOperators: Set<String> = ["//", "**", "==", "!=", ">=", "<="]
    private static let oneCharacterOperators: Set<UInt8> = Set("+-/*%~[](){}><=.:|,;".utf8)

    private mutating func lexOperator(_ balancing: inout [UInt8]) throws(TemplateError) {
        if position + 1 < source.count {
            let pair = String(decoding: source[position..<position + 2], as: UTF8.self)
            if Lexer.twoCharacterOperators.contains(pair) {
                tokens.append(Token(kind: .op(pair), line: line))
                position += 2
                return
            }
        }
        let byte = source[position]
        guard Lexer.oneCharacterOperators.contains(byte) else {
            let (scalar, _) = scalarAt(position)
            throw .syntax("unexpected character '\(scalar)'", line: line)
        }
        switch byte {
        case UInt8(ascii: "("): balancing.append(UInt8(ascii: ")"))
        case UInt8(ascii: "["): balancing.append(UInt8(ascii: "]"))
        case UInt8(ascii: "{"): balancing.append(UInt8(ascii: "}"))
        case UInt8(ascii: ")"), UInt8(ascii: "]"), UInt8(ascii: "}"):
            guard let expected = balancing.popLast() else {
                throw .syntax("unexpected '\(Character(Unicode.Scalar(byte)))'", line: line)
            }
            guard expected == byte else {
                throw .syntax("unexpected '\(Character(Unicode.Scalar(byte)))', expected '\(Character(Unicode.Scalar(expected)))'", line: line)
            }
        default: break
        }
        tokens.append(Token(kind: .op(String(Character(Unicode.Scalar(byte)))), line: line))
        position += 1
    }

    private func isDigit(_ index: Int) -> Bool {
        index < source.count && source[index] >= UInt8(ascii: "0") && source[index] <= UInt8(ascii: "9")
    }

    /// Digits with optional single underscores between them (`1_000`).
    private mutating func scanDigits() {
        while position < source.count {
            if isDigit(position) {
                position += 1
            } else if source[position] == UInt8(ascii: "_"), isDigit(position + 1), position > 0, isDigit(position - 1) {
                position += 1
            } else {
                break
            }
        }
    }

    private mutating func lexNumber() throws(TemplateError) {
        let start = position
        // 0b / 0o / 0x literals.
        if source[position] == UInt8(ascii: "0"), position + 2 < source.count {
            let prefix = source[position + 1] | 0x20
            let radix = prefix == UInt8(ascii: "b") ? 2 : prefix == UInt8(ascii: "o") ? 8 : prefix == UInt8(ascii: "x") ? 16 : 0
            if radix != 0 {
                var end = position + 2
                while end < source.count, source[end] == UInt8(ascii: "_") || Character(Unicode.Scalar(source[end])).hexDigitValue.map({ $0 < radix }) == true {
                    end += 1
                }
                let digits = String(decoding: source[(position + 2)..<end], as: UTF8.self).replacingOccurrences("_", "")
                if let value = Int(digits, radix: radix) {
                    position = end
                    tokens.append(Token(kind: .integer(value), line: line))
                    return
                }
            }
        }
        scanDigits()
        var isFloat = false
        if position + 1 < source.count, source[position] == UInt8(ascii: "."), isDigit(position + 1) {
            isFloat = true
            position += 1
            scanDigits()
        }
        if position < source.count, source[position] | 0x20 == UInt8(ascii: "e") {
            var cursor = position + 1
            if cursor < source.count, source[cursor] == UInt8(ascii: "+") || source[cursor] == UInt8(ascii: "-") { cursor += 1 }
            if isDigit(cursor) {
                isFloat = true
                position = cursor
                scanDigits()
            }
        }
        let text = String(decoding: source[start..<position], as: UTF8.self).replacingOccurrences("_", "")
        if isFloat {
            guard let value = Double(text) else { throw .syntax("invalid number '\(text)'", line: line) }
            tokens.append(Token(kind: .float(value), line: line))
        } else {
            guard let value = Int(text) else { throw .syntax("integer literal '\(text)' is too large", line: line) }
            tokens.append(Token(kind: .integer(value), line: line))
        }
    }

    private mutating func lexString(quote: UInt8) throws(TemplateError) {
        let startLine = line
        position += 1
        let start = position
        while position < source.count, source[position] != quote {
            if source[position] == UInt8(ascii: "\\") { position += 1 }
            position += 1
        }
        guard position < source.count else { throw .syntax("unterminated string literal", line: startLine) }
        let raw = String(decoding: source[start..<position], as: UTF8.self)
        line += newlineCount(start, position)
        position += 1
        tokens.append(Token(kind: .string(Lexer.unescape(raw)), line: startLine))
    }

    /// The character with the given Unicode name (`\N{BULLET}`), found by a linear scan.
    private static func scalarNamed(_ name: String) -> Unicode.Scalar? {
        let wanted = name.uppercased()
        for value in UInt32(0x20)...UInt32(0x10FFFF) {
            guard let scalar = Unicode.Scalar(value) else { continue }
            if scalar.properties.name == wanted || scalar.properties.nameAlias == wanted { return scalar }
        }
        return nil
    }

    /// Decodes backslash escapes the way Python's `unicode_escape` codec does.
    static func unescape(_ raw: String) -> String {
        guard raw.utf8.contains(UInt8(ascii: "\\")) else { return raw }
        var result = String.UnicodeScalarView()
        let scalars = Array(raw.unicodeScalars)
        var index = 0
        func hexValue(_ count: Int) -> UInt32? {
            guard index + count < scalars.count else { return nil }
            var value: UInt32 = 0
            for offset in 1...count {
                guard let digit = Character(scalars[index + offset]).hexDigitValue else { return nil }
                value = value * 16 + UInt32(digit)
            }
            return value
        }
        while index < scalars.count {
            let scalar = scalars[index]
            guard scalar == "\\", index + 1 < scalars.count else {
                result.append(scalar)
                index += 1
                continue
            }
            index += 1
            let escape = scalars[index]
            switch escape {
            case "\n": index += 1
            case "\\", "'", "\"":
                result.append(escape)
                index += 1
            case "n": result.append("\n"); index += 1
            case "t": result.append("\t"); index += 1
            case "r": result.append("\r"); index += 1
            case "a": result.append("\u{07}"); index += 1
            case "b": result.append("\u{08}"); index += 1
            case "f": result.append("\u{0C}"); index += 1
            case "v": result.append("\u{0B}"); index += 1
            case "0"..."7":
                var value: UInt32 = 0
                var digits = 0
                while digits < 3, index < scalars.count, ("0"..."7").contains(scalars[index]) {
                    value = value * 8 + (scalars[index].value - 48)
                    index += 1
                    digits += 1
                }
                result.append(Unicode.Scalar(value) ?? "\u{FFFD}")
            case "N":
                if index + 1 < scalars.count, scalars[index + 1] == "{",
                    let close = scalars[(index + 1)...].firstIndex(of: "}"),
                    let named = scalarNamed(String(String.UnicodeScalarView(scalars[(index + 2)..<close])))
                {
                    result.append(named)
                    index = close + 1
                } else {
                    result.append("\\")
                    result.append(escape)
                    index += 1
                }
            case "x", "u", "U":
                let count = escape == "x" ? 2 : escape == "u" ? 4 : 8
                if let value = hexValue(count), let decoded = Unicode.Scalar(value) {
                    result.append(decoded)
                    index += count + 1
                } else {
                    result.append("\\")
                    result.append(escape)
                    index += 1
                }
            default:
                result.append("\\")
                result.append(escape)
                index += 1
            }
        }
        return String(result)
    }
}

extension String {
    fileprivate func replacingOccurrences(_ target: Character, _ replacement: String) -> String {
        var result = ""
        for character in self {
            if character == target { result += replacement } else { result.append(character) }
        }
        return result
    }
}
