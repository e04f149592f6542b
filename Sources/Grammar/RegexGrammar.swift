/// A JSON Schema `pattern` (ECMA-262 syntax, the common subset) → GBNF for the inside of a JSON string whose value
/// matches it. Characters that JSON must escape (`"`, `\`, control characters) are written as their escapes.
///
/// Supported: literals, `.`, classes (`[a-z]`, `[^…]`, `\d \w \s \D \W \S`), groups `(…)` `(?:…)`, `|`, `*` `+` `?`
/// `{m}` `{m,}` `{m,n}` (lazy forms too), `^` at the start and `$` at the end. A pattern without `^…$` matches
/// anywhere in a string; the answer is a whole match, which contains one. Backreferences, lookaround and anchors
/// elsewhere are refused.
enum RegexGrammar {
    static func gbnf(_ pattern: String) throws(GrammarError) -> String {
        var p = Parser(text: Array(pattern.unicodeScalars), pattern: pattern)
        if p.peek == "^" { p.pos += 1 }
        let body = try p.alternation()
        if p.peek == "$" { p.pos += 1 }
        guard p.pos == p.text.count else { throw p.fail("unexpected '\(p.text[p.pos])'") }
        return "(\(body))"
    }

    /// A recursive-descent reader of the pattern that writes GBNF as it goes; repetition counts are checked by the
    /// GBNF reader (over `GBNFParser.maxRepetition` is refused).
    private struct Parser {
        let text: [Unicode.Scalar]
        let pattern: String
        var pos = 0

        var peek: Unicode.Scalar? { pos < text.count ? text[pos] : nil }

        func fail(_ why: String) -> GrammarError { .invalidPattern(why, pattern: pattern) }

        mutating func alternation() throws(GrammarError) -> String {
            var alts = [try sequence()]
            while peek == "|" { pos += 1; alts.append(try sequence()) }
            return alts.map { $0.isEmpty ? "\"\"" : $0 }.joined(separator: " | ")
        }

        mutating func sequence() throws(GrammarError) -> String {
            var items: [String] = []
            while let c = peek, c != "|", c != ")" {
                if c == "$" && pos == text.count - 1 { break }
                var atom = try self.atom()
                // quantifier
                if let q = peek {
                    var rep: String?
                    switch q {
                    case "*": rep = "*"; pos += 1
                    case "+": rep = "+"; pos += 1
                    case "?": rep = "?"; pos += 1
                    case "{":
                        let save = pos
                        pos += 1
                        let a = number()
                        if peek == "," {
                            pos += 1
                            let b = number()
                            if peek == "}", a != nil || b != nil { pos += 1; rep = "{\(a ?? 0),\(b.map(String.init) ?? "")}" } else { pos = save }
                        } else if peek == "}", let a { pos += 1; rep = "{\(a)}" } else { pos = save }
                    default: break
                    }
                    if rep != nil, peek == "?" { pos += 1 }   // lazy: the same set of strings
                    if let rep { atom = "(\(atom))\(rep)" }
                }
                items.append(atom)
            }
            return items.joined(separator: " ")
        }

        mutating func number() -> Int? {
            var v = 0, any = false
            while let c = peek, c.value >= 0x30, c.value <= 0x39 { v = min(v * 10 + Int(c.value - 0x30), 1_000_000); any = true; pos += 1 }
            return any ? v : nil
        }

        mutating func atom() throws(GrammarError) -> String {
            guard let c = peek else { throw fail("unexpected end") }
            pos += 1
            switch c {
            case "(":
                if peek == "?" {
                    guard pos + 1 < text.count, text[pos + 1] == ":" else { throw fail("lookaround and named groups are not supported") }
                    pos += 2
                }
                let inner = try alternation()
                guard peek == ")" else { throw fail("missing ')'") }
                pos += 1
                return "(\(inner))"
            case ".": return Self.charClass(CodePointSet.complement([0x0A...0x0A, 0x0D...0x0D]))
            case "[": return try bracket()
            case "\\": return Self.charClass(try escape(inClass: false))
            case "^", "$": throw fail("anchors are only supported at the start and the end")
            case "*", "+", "?", "{": throw fail("'\(c)' has nothing to repeat")
            default: return Self.charClass([c.value...c.value])
            }
        }

        /// An escape after `\`: its code points.
        mutating func escape(inClass: Bool) throws(GrammarError) -> [ClosedRange<UInt32>] {
            guard let e = peek else { throw fail("trailing '\\'") }
            pos += 1
            let digit: [ClosedRange<UInt32>] = [0x30...0x39]
            let word: [ClosedRange<UInt32>] = [0x30...0x39, 0x41...0x5A, 0x5F...0x5F, 0x61...0x7A]
            let space: [ClosedRange<UInt32>] = [0x09...0x0D, 0x20...0x20]
            switch e {
            case "d": return digit
            case "D": return CodePointSet.complement(digit)
            case "w": return word
            case "W": return CodePointSet.complement(word)
            case "s": return space
            case "S": return CodePointSet.complement(space)
            case "n": return [0x0A...0x0A]
            case "r": return [0x0D...0x0D]
            case "t": return [0x09...0x09]
            case "f": return [0x0C...0x0C]
            case "v": return [0x0B...0x0B]
            case "b" where inClass: return [0x08...0x08]
            case "u", "x":
                let n = e == "u" ? 4 : 2
                guard pos + n <= text.count, let v = UInt32(String(String.UnicodeScalarView(text[pos..<(pos + n)])), radix: 16) else { throw fail("bad \\\(e) escape") }
                pos += n
                return [v...v]
            default:
                if ("1"..."9").contains(e) { throw fail("backreferences are not supported") }
                if e == "b" || e == "B" { throw fail("word boundaries are not supported") }
                if e.properties.isAlphabetic { throw fail("unknown escape '\\\(e)'") }
                return [e.value...e.value]
            }
        }

        mutating func bracket() throws(GrammarError) -> String {
            var negated = false
            if peek == "^" { negated = true; pos += 1 }
            var ranges: [ClosedRange<UInt32>] = []
            var first = true
            while let c = peek, c != "]" || first {
                first = false
                pos += 1
                var lo: [ClosedRange<UInt32>]
                if c == "\\" { lo = try escape(inClass: true) } else { lo = [c.value...c.value] }
                if peek == "-", pos + 1 < text.count, text[pos + 1] != "]", lo.count == 1, lo[0].count == 1 {
                    pos += 1
                    guard let h = peek else { break }
                    pos += 1
                    var hi: [ClosedRange<UInt32>] = [h.value...h.value]
                    if h == "\\" { hi = try escape(inClass: true) }
                    guard hi.count == 1, hi[0].count == 1, hi[0].lowerBound >= lo[0].lowerBound else { throw fail("bad range in a class") }
                    lo = [lo[0].lowerBound...hi[0].lowerBound]
                }
                ranges += lo
            }
            guard peek == "]" else { throw fail("missing ']'") }
            pos += 1
            return Self.charClass(negated ? CodePointSet.complement(ranges) : CodePointSet.normalized(ranges))
        }

        /// A set of characters as they appear inside a JSON string: plain characters as a GBNF class, and the ones
        /// JSON escapes as their escape sequences.
        static func charClass(_ ranges: [ClosedRange<UInt32>]) -> String {
            let escaped: [(UInt32, String)] = [
                (0x22, #""\\\"""#), (0x5C, #""\\\\""#), (0x0A, #""\\n""#), (0x09, #""\\t""#), (0x0D, #""\\r""#),
            ]
            let plain = CodePointSet.subtract(ranges, [0x00...0x1F, 0x22...0x22, 0x5C...0x5C])
            var alts: [String] = []
            if !plain.isEmpty { alts.append(classText(plain)) }
            for (cp, text) in escaped where ranges.contains(where: { $0.contains(cp) }) { alts.append(text) }
            if alts.isEmpty { return "[^\\x00-\\U0010FFFF]" }
            return alts.count == 1 ? alts[0] : "(" + alts.joined(separator: " | ") + ")"
        }

        static func classText(_ ranges: [ClosedRange<UInt32>]) -> String {
            func ch(_ v: UInt32) -> String {
                if v < 0x20 || v == 0x5D || v == 0x5C || v == 0x2D || v == 0x5E || v == 0x22 || v >= 0x7F {
                    let h = String(v, radix: 16)
                    return v <= 0xFF ? "\\x" + String(repeating: "0", count: 2 - h.count) + h
                                     : "\\U" + String(repeating: "0", count: 8 - h.count) + h
                }
                return String(Character(Unicode.Scalar(v)!))
            }
            return "[" + ranges.map { $0.count == 1 ? ch($0.lowerBound) : "\(ch($0.lowerBound))-\(ch($0.upperBound))" }.joined() + "]"
        }
    }
}

extension CodePointSet {
    static func subtract(_ a: [ClosedRange<UInt32>], _ b: [ClosedRange<UInt32>]) -> [ClosedRange<UInt32>] {
        let notB = complement(b)
        var out: [ClosedRange<UInt32>] = []
        for x in normalized(a) {
            for y in notB {
                let lo = max(x.lowerBound, y.lowerBound), hi = min(x.upperBound, y.upperBound)
                if lo <= hi { out.append(lo...hi) }
            }
        }
        return normalized(out)
    }
}
