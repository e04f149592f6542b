/// The regular expressions llama.cpp's pre-tokenizers split text with, run as llama.cpp runs the ones it has no
/// hand-written matcher for (`unicode_regex_split`, ECMAScript `std::regex`): leftmost match, alternatives tried in
/// order with backtracking, greedy quantifiers; `\p{L}`, `\p{N}`, `\p{P}`, `\p{M}`, `\p{S}` and `\s` by Unicode
/// category; `$` and lookahead see only the piece being split. A small engine over code points, for the subset these
/// patterns use: literals, classes with ranges and categories (negated too), `(?:…)`, `(?!…)`, `?`, `*`, `+`,
/// `{n}`, `{n,m}`, `$`. A pattern outside it does not compile (`nil`), so a vocabulary needing it is refused by name.
struct SplitRegex: Sendable, Equatable {
    let pattern: String
    private let root: [[Node]]   // alternatives

    indirect enum Node: Sendable, Equatable {
        case set(CharSet)
        case group([[Node]])
        case notFollowedBy([[Node]])
        case end
        case repeatSet(CharSet, min: Int, max: Int)
    }

    struct CharSet: Sendable, Equatable {
        var ranges: [ClosedRange<UInt32>] = []
        /// `CharClass` bits any of which makes a member.
        var classes: UInt8 = 0
        /// `\S`: anything not whitespace.
        var nonWhitespace = false
        var negated = false

        func contains(_ c: UInt32, _ flags: UInt8) -> Bool {
            var hit = flags & classes != 0 || (nonWhitespace && flags & CharClass.whitespace == 0)
            if !hit { hit = ranges.contains { $0.contains(c) } }
            return hit != negated
        }
    }

    init?(_ pattern: String) {
        self.pattern = pattern
        var parser = Parser(scalars: pattern.unicodeScalars.map(\.value))
        guard let alternatives = parser.alternatives(), parser.position == parser.scalars.count else { return nil }
        root = alternatives
    }

    /// The end of the match starting exactly at `start` in `scalars[..<end]`, if any.
    func match(_ scalars: [UInt32], _ classes: [UInt8], at start: Int, end: Int) -> Int? {
        var result: Int?
        _ = Self.matchAlternatives(root, scalars, classes, start, end) { result = $0; return true }
        return result
    }

    private static func matchAlternatives(_ alternatives: [[Node]], _ s: [UInt32], _ c: [UInt8], _ pos: Int, _ end: Int,
                                          _ k: (Int) -> Bool) -> Bool {
        for sequence in alternatives where matchSequence(sequence[...], s, c, pos, end, k) { return true }
        return false
    }

    private static func matchSequence(_ nodes: ArraySlice<Node>, _ s: [UInt32], _ c: [UInt8], _ pos: Int, _ end: Int,
                                      _ k: (Int) -> Bool) -> Bool {
        guard let node = nodes.first else { return k(pos) }
        let rest = nodes.dropFirst()
        switch node {
        case .set(let set):
            guard pos < end, set.contains(s[pos], c[pos]) else { return false }
            return matchSequence(rest, s, c, pos + 1, end, k)
        case .repeatSet(let set, let min, let max):
            var count = 0
            while count < max, pos + count < end, set.contains(s[pos + count], c[pos + count]) { count += 1 }
            guard count >= min else { return false }
            for n in stride(from: count, through: min, by: -1) where matchSequence(rest, s, c, pos + n, end, k) { return true }
            return false
        case .group(let alternatives):
            return matchAlternatives(alternatives, s, c, pos, end) { next in matchSequence(rest, s, c, next, end, k) }
        case .notFollowedBy(let alternatives):
            guard !matchAlternatives(alternatives, s, c, pos, end, { _ in true }) else { return false }
            return matchSequence(rest, s, c, pos, end, k)
        case .end:
            guard pos == end else { return false }
            return matchSequence(rest, s, c, pos, end, k)
        }
    }

    private struct Parser {
        let scalars: [UInt32]
        var position = 0

        mutating func alternatives() -> [[Node]]? {
            var result: [[Node]] = []
            var current: [Node] = []
            while position < scalars.count {
                let ch = scalars[position]
                if ch == 0x7C {   // |
                    result.append(current)
                    current = []
                    position += 1
                    continue
                }
                if ch == 0x29 { break }   // ) ends a group
                guard let atom = atom() else { return nil }
                guard let quantified = quantify(atom) else { return nil }
                current.append(quantified)
            }
            result.append(current)
            return result
        }

        mutating func atom() -> Node? {
            let ch = scalars[position]
            switch ch {
            case 0x28:   // (
                guard position + 2 < scalars.count, scalars[position + 1] == 0x3F else { return nil }   // only (?: and (?!
                let kind = scalars[position + 2]
                guard kind == 0x3A || kind == 0x21 else { return nil }
                position += 3
                guard let inner = alternatives(), position < scalars.count, scalars[position] == 0x29 else { return nil }
                position += 1
                return kind == 0x3A ? .group(inner) : .notFollowedBy(inner)
            case 0x5B: return characterClass().map(Node.set)
            case 0x24: position += 1; return .end
            case 0x5C:
                position += 1
                guard let set = escape(inClass: false) else { return nil }
                return .set(set)
            case 0x2E, 0x5E, 0x2A, 0x2B, 0x3F, 0x7B: return nil   // . ^ and a quantifier with nothing before it
            default:
                position += 1
                return .set(CharSet(ranges: [ch...ch]))
            }
        }

        mutating func quantify(_ node: Node) -> Node? {
            guard position < scalars.count else { return node }
            var min = 0, max = Int.max
            switch scalars[position] {
            case 0x3F: max = 1; position += 1
            case 0x2A: position += 1
            case 0x2B: min = 1; position += 1
            case 0x7B:
                position += 1
                guard let low = number() else { return nil }
                min = low
                max = low
                if position < scalars.count, scalars[position] == 0x2C {
                    position += 1
                    max = number() ?? Int.max
                }
                guard position < scalars.count, scalars[position] == 0x7D else { return nil }
                position += 1
            default: return node
            }
            if position < scalars.count, scalars[position] == 0x3F || scalars[position] == 0x2B { return nil }   // lazy, possessive
            guard case .set(let set) = node else { return nil }   // quantified groups are not needed here
            return .repeatSet(set, min: min, max: max)
        }

        mutating func number() -> Int? {
            var value = 0, digits = 0
            while position < scalars.count, (0x30...0x39).contains(scalars[position]), digits < 6 {
                value = value * 10 + Int(scalars[position] - 0x30)
                position += 1
                digits += 1
            }
            return digits > 0 ? value : nil
        }

        /// After a backslash.
        mutating func escape(inClass: Bool) -> CharSet? {
            guard position < scalars.count else { return nil }
            let ch = scalars[position]
            position += 1
            switch ch {
            case 0x73: return CharSet(classes: CharClass.whitespace)                      // \s
            case 0x53: return CharSet(nonWhitespace: true)                                // \S
            case 0x64: return CharSet(ranges: [0x30...0x39])                              // \d
            case 0x72: return CharSet(ranges: [0x0D...0x0D])                              // \r
            case 0x6E: return CharSet(ranges: [0x0A...0x0A])                              // \n
            case 0x74: return CharSet(ranges: [0x09...0x09])                              // \t
            case 0x70:                                                                    // \p{…}
                guard position < scalars.count, scalars[position] == 0x7B,
                      let close = scalars[position...].firstIndex(of: 0x7D) else { return nil }
                let name = String(String.UnicodeScalarView(scalars[(position + 1)..<close].compactMap(Unicode.Scalar.init)))
                position = close + 1
                switch name {
                case "L": return CharSet(classes: CharClass.letter)
                case "N": return CharSet(classes: CharClass.number)
                case "P": return CharSet(classes: CharClass.punctuation)
                case "M": return CharSet(classes: CharClass.mark)
                case "S": return CharSet(classes: CharClass.symbol)
                default: return nil
                }
            default:
                // an escaped punctuation character stands for itself
                guard ch < 0x80, !(0x30...0x39).contains(ch), !(0x41...0x5A).contains(ch), !(0x61...0x7A).contains(ch) else { return nil }
                return CharSet(ranges: [ch...ch])
            }
        }

        mutating func characterClass() -> CharSet? {
            position += 1   // [
            var set = CharSet()
            if position < scalars.count, scalars[position] == 0x5E {
                set.negated = true
                position += 1
            }
            var first = true
            while position < scalars.count {
                let ch = scalars[position]
                if ch == 0x5D, !first {
                    position += 1
                    return set
                }
                first = false
                var low: UInt32
                if ch == 0x5C {
                    position += 1
                    guard let escaped = escape(inClass: true) else { return nil }
                    if escaped.ranges.count == 1, let only = escaped.ranges.first, only.count == 1, escaped.classes == 0, !escaped.nonWhitespace {
                        low = only.lowerBound
                    } else {
                        set.classes |= escaped.classes
                        set.nonWhitespace = set.nonWhitespace || escaped.nonWhitespace
                        set.ranges += escaped.ranges
                        continue
                    }
                } else {
                    low = ch
                    position += 1
                }
                // a range a-b (a '-' before ']' is itself)
                if position + 1 < scalars.count, scalars[position] == 0x2D, scalars[position + 1] != 0x5D {
                    position += 1
                    var high = scalars[position]
                    position += 1
                    if high == 0x5C {
                        guard let escaped = escape(inClass: true), escaped.ranges.count == 1, let only = escaped.ranges.first,
                              only.count == 1 else { return nil }
                        high = only.lowerBound
                    }
                    guard low <= high else { return nil }
                    set.ranges.append(low...high)
                } else {
                    set.ranges.append(low...low)
                }
            }
            return nil   // no closing ]
        }
    }
}

/// A list of split patterns applied one after the other, each to the pieces the previous ones left (llama.cpp's
/// `unicode_regex_split`): the matches and the text between them both become pieces.
public struct RegexSplitter: Sendable, Equatable {
    let patterns: [SplitRegex]

    /// Splits scalars `begin ..< end` (all at once), reporting each piece's scalar range.
    func pieces(_ scalars: [UInt32], _ classes: [UInt8], _ begin: Int, _ end: Int) -> [Range<Int>] {
        var pieces = [begin..<end]
        for regex in patterns {
            var next: [Range<Int>] = []
            for piece in pieces {
                var start = piece.lowerBound
                var position = piece.lowerBound
                while position < piece.upperBound {
                    if let matchEnd = regex.match(scalars, classes, at: position, end: piece.upperBound), matchEnd > position {
                        if position > start { next.append(start..<position) }
                        next.append(position..<matchEnd)
                        position = matchEnd
                        start = matchEnd
                    } else {
                        position += 1
                    }
                }
                if start < piece.upperBound { next.append(start..<piece.upperBound) }
            }
            pieces = next
        }
        return pieces
    }
}
