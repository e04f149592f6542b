/// A grammar as rules over Unicode code points, before it is compiled to bytes: what the GBNF parser and the JSON
/// Schema converter produce. Rule 0 is not special; `root` names the start rule.
public struct RuleSet: Sendable, Equatable {
    /// One item of a sequence: a set of code points (a literal character is a one-point set), or another rule.
    public enum Term: Sendable, Equatable, Hashable {
        case chars([ClosedRange<UInt32>])
        case rule(Int)
    }
    /// Rule names (synthetic rules made for groups and repetitions get `parent-N` names).
    public var names: [String] = []
    /// Per rule: its alternatives, each a sequence of terms (an empty sequence matches nothing: the empty string).
    public var alternatives: [[[Term]]] = []
    public var root: Int

    public init(names: [String], alternatives: [[[Term]]], root: Int) {
        self.names = names; self.alternatives = alternatives; self.root = root
    }
}

/// Reads llama.cpp's GBNF: `name ::= alternatives`, string literals with escapes, character classes (ranges,
/// negation), `.`, groups, `|`, `*`, `+`, `?`, `{m}`, `{m,}`, `{m,n}`, `{,n}` and `#` comments. A rule continues onto
/// the next line after `::=`, after `|` and inside parentheses. Token references (`<…>`) are refused by name.
public struct GBNFParser {
    /// Limits that keep a hostile grammar from taking unbounded memory.
    public static let maxRules = 20_000
    public static let maxRepetition = 1_000

    private let text: [Unicode.Scalar]
    private var pos = 0
    private var names: [String] = []
    private var index: [String: Int] = [:]
    private var defined: Set<Int> = []
    private var alternatives: [[[RuleSet.Term]]] = []
    private var firstUse: [Int: Int] = [:]

    public static func parse(_ source: String) throws(GrammarError) -> RuleSet {
        var p = GBNFParser(text: Array(source.unicodeScalars))
        return try p.parseAll()
    }

    private init(text: [Unicode.Scalar]) { self.text = text }

    private mutating func parseAll() throws(GrammarError) -> RuleSet {
        skipSpace(newlines: true)
        while pos < text.count {
            try parseRule()
            skipSpace(newlines: true)
        }
        for i in names.indices where !defined.contains(i) { throw .undefinedRule(names[i]) }
        guard let root = index["root"] else { throw .missingRoot }
        let rules = RuleSet(names: names, alternatives: alternatives, root: root)
        try GrammarChecks.rejectLeftRecursion(rules)
        return rules
    }

    // MARK: rules

    private mutating func parseRule() throws(GrammarError) {
        let name = try parseName()
        let id = ruleID(name)
        guard !defined.contains(id) else { throw .duplicateRule(name) }
        skipSpace(newlines: false)
        guard consume("::=") else { throw error("expected '::='") }
        skipSpace(newlines: true)
        alternatives[id] = try parseAlternatives(owner: name, nested: false)
        defined.insert(id)
        skipSpace(newlines: false)
        if pos < text.count {
            guard text[pos] == "\n" || text[pos] == "\r" else { throw error("expected the end of the line") }
        }
    }

    private mutating func parseAlternatives(owner: String, nested: Bool) throws(GrammarError) -> [[RuleSet.Term]] {
        var alts: [[RuleSet.Term]] = [try parseSequence(owner: owner, nested: nested)]
        while pos < text.count, text[pos] == "|" {
            pos += 1
            skipSpace(newlines: true)
            alts.append(try parseSequence(owner: owner, nested: nested))
        }
        return alts
    }

    private mutating func parseSequence(owner: String, nested: Bool) throws(GrammarError) -> [RuleSet.Term] {
        var seq: [RuleSet.Term] = []
        var lastStart = 0   // where the last item's terms begin in `seq` (what a repetition operator applies to)
        while pos < text.count {
            let c = text[pos]
            if c == "\"" {
                pos += 1
                lastStart = seq.count
                var any = false
                while pos < text.count, text[pos] != "\"" {
                    let v = try parseChar()
                    seq.append(.chars([v...v])); any = true
                }
                guard pos < text.count else { throw error("unterminated string literal") }
                pos += 1
                if !any { lastStart = seq.count }
            } else if c == "[" {
                pos += 1
                lastStart = seq.count
                seq.append(.chars(try parseClass()))
            } else if c == "." {
                pos += 1
                lastStart = seq.count
                seq.append(.chars([0...0x10FFFF]))
            } else if c == "(" {
                pos += 1
                skipSpace(newlines: true)
                let alts = try parseAlternatives(owner: owner, nested: true)
                guard pos < text.count, text[pos] == ")" else { throw error("expected ')'") }
                pos += 1
                lastStart = seq.count
                seq.append(.rule(try synthetic(owner, alts)))
            } else if c == "<" || (c == "!" && pos + 1 < text.count && text[pos + 1] == "<") {
                throw .unsupported("the token reference at line \(location().line), column \(location().column)")
            } else if isNameChar(c) {
                let start = pos
                let name = try parseName()
                skipSpace(newlines: false)
                if consume("::=") {   // the next rule begins: this name was its head, not part of this sequence
                    pos = start
                    return seq
                }
                pos = start
                _ = try parseName()
                lastStart = seq.count
                let id = ruleID(name)
                if firstUse[id] == nil { firstUse[id] = start }
                seq.append(.rule(id))
            } else if c == "*" || c == "+" || c == "?" || c == "{" {
                guard lastStart < seq.count else { throw error("'\(c)' has nothing before it to repeat") }
                pos += 1
                var minCount = 0, maxCount: Int? = nil
                switch c {
                case "*": break
                case "+": minCount = 1
                case "?": maxCount = 1
                default:
                    skipSpace(newlines: false)
                    let a = parseInt()
                    skipSpace(newlines: false)
                    if consume(",") {
                        skipSpace(newlines: false)
                        let b = parseInt()
                        minCount = a ?? 0; maxCount = b
                    } else {
                        guard let a else { throw error("expected a number in '{…}'") }
                        minCount = a; maxCount = a
                    }
                    skipSpace(newlines: false)
                    guard consume("}") else { throw error("expected '}'") }
                    if let m = maxCount, m < minCount { throw error("'{\(minCount),\(m)}' has its maximum below its minimum") }
                    if max(minCount, maxCount ?? 0) > Self.maxRepetition { throw .tooLarge("a repetition count over \(Self.maxRepetition)") }
                }
                let item = Array(seq[lastStart...])
                seq.removeLast(seq.count - lastStart)
                let repeated = try repetition(owner, item, min: minCount, max: maxCount)
                seq.append(contentsOf: repeated)
                lastStart = seq.count   // `a**` is an error, as in llama.cpp
            } else {
                break
            }
            skipSpace(newlines: nested)
        }
        return seq
    }

    /// `item` repeated between `min` and `max` times (nil: unbounded), as terms (synthetic rules where needed).
    private mutating func repetition(_ owner: String, _ item: [RuleSet.Term], min: Int, max: Int?) throws(GrammarError) -> [RuleSet.Term] {
        // The item as one term, so that nested optionals stay small.
        let one: [RuleSet.Term] = item.count == 1 ? item : [.rule(try synthetic(owner, [item]))]
        var out: [RuleSet.Term] = []
        for _ in 0..<min { out += one }
        if let max {
            guard max > min else { return out }
            // (item (item (…)?)?)? — nested so that each count has one parse.
            var tail: Int? = nil
            for _ in 0..<(max - min) {
                let seqWithTail = one + (tail.map { [RuleSet.Term.rule($0)] } ?? [])
                tail = try synthetic(owner, [seqWithTail, []])
            }
            if let tail { out.append(.rule(tail)) }
        } else {
            // star ::= item star | ""
            let star = try newRule("\(owner)-\(names.count)")
            alternatives[star] = [one + [.rule(star)], []]
            defined.insert(star)
            out.append(.rule(star))
        }
        return out
    }

    private mutating func synthetic(_ owner: String, _ alts: [[RuleSet.Term]]) throws(GrammarError) -> Int {
        let id = try newRule("\(owner)-\(names.count)")
        alternatives[id] = alts
        defined.insert(id)
        return id
    }

    private mutating func newRule(_ name: String) throws(GrammarError) -> Int {
        guard names.count < Self.maxRules else { throw .tooLarge("more than \(Self.maxRules) rules") }
        names.append(name); alternatives.append([])
        index[name] = names.count - 1
        return names.count - 1
    }

    private mutating func ruleID(_ name: String) -> Int {
        if let id = index[name] { return id }
        names.append(name); alternatives.append([])
        index[name] = names.count - 1
        return names.count - 1
    }

    // MARK: lexical pieces

    private func isNameChar(_ c: Unicode.Scalar) -> Bool {
        (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "-" || c == "_"
    }

    private mutating func parseName() throws(GrammarError) -> String {
        let start = pos
        while pos < text.count, isNameChar(text[pos]) { pos += 1 }
        guard pos > start else { throw error("expected a rule name") }
        var s = ""
        s.unicodeScalars.append(contentsOf: text[start..<pos])
        return s
    }

    private mutating func parseInt() -> Int? {
        var v = 0, any = false
        while pos < text.count, text[pos].value >= 0x30, text[pos].value <= 0x39 {
            v = min(v * 10 + Int(text[pos].value - 0x30), Int(Int32.max)); any = true; pos += 1
        }
        return any ? v : nil
    }

    /// One character of a literal or class, with its escape decoded.
    private mutating func parseChar() throws(GrammarError) -> UInt32 {
        guard pos < text.count else { throw error("unexpected end of input") }
        let c = text[pos]
        pos += 1
        guard c == "\\" else { return c.value }
        guard pos < text.count else { throw error("unexpected end of input after '\\'") }
        let e = text[pos]
        pos += 1
        switch e {
        case "n": return 0x0A
        case "r": return 0x0D
        case "t": return 0x09
        case "0": return 0
        case "\\", "\"", "[", "]", "-", "^", "'": return e.value
        case "x": return try parseHex(2)
        case "u": return try parseHex(4)
        case "U": return try parseHex(8)
        default: throw error("unknown escape '\\\(e)'")
        }
    }

    private mutating func parseHex(_ digits: Int) throws(GrammarError) -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<digits {
            guard pos < text.count, let d = text[pos].properties.isASCIIHexDigit ? UInt32(String(text[pos]), radix: 16) : nil else {
                throw error("expected \(digits) hexadecimal digits")
            }
            v = v << 4 | d
            pos += 1
        }
        guard v <= 0x10FFFF else { throw error("code point \(v) is beyond Unicode") }
        return v
    }

    private mutating func parseClass() throws(GrammarError) -> [ClosedRange<UInt32>] {
        var negated = false
        if pos < text.count, text[pos] == "^" { negated = true; pos += 1 }
        var ranges: [ClosedRange<UInt32>] = []
        while pos < text.count, text[pos] != "]" {
            let lo = try parseChar()
            if pos + 1 < text.count, text[pos] == "-", text[pos + 1] != "]" {
                pos += 1
                let hi = try parseChar()
                guard lo <= hi else { throw error("range end below its start") }
                ranges.append(lo...hi)
            } else {
                ranges.append(lo...lo)
            }
        }
        guard pos < text.count else { throw error("unterminated character class") }
        pos += 1
        return negated ? CodePointSet.complement(ranges) : CodePointSet.normalized(ranges)
    }

    private mutating func consume(_ s: String) -> Bool {
        let scalars = Array(s.unicodeScalars)
        guard pos + scalars.count <= text.count, Array(text[pos..<(pos + scalars.count)]) == scalars else { return false }
        pos += scalars.count
        return true
    }

    private mutating func skipSpace(newlines: Bool) {
        while pos < text.count {
            let c = text[pos]
            if c == " " || c == "\t" || (newlines && (c == "\n" || c == "\r")) {
                pos += 1
            } else if c == "#" {
                while pos < text.count, text[pos] != "\n", text[pos] != "\r" { pos += 1 }
            } else {
                return
            }
        }
    }

    private func location() -> (line: Int, column: Int) {
        var line = 1, column = 1
        for c in text[..<min(pos, text.count)] {
            if c == "\n" { line += 1; column = 1 } else { column += 1 }
        }
        return (line, column)
    }

    private func error(_ what: String) -> GrammarError {
        let l = location()
        return .syntax(what, line: l.line, column: l.column)
    }
}

/// Sorted, merged code point ranges.
enum CodePointSet {
    static func normalized(_ ranges: [ClosedRange<UInt32>]) -> [ClosedRange<UInt32>] {
        var out: [ClosedRange<UInt32>] = []
        for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = out.last, r.lowerBound <= last.upperBound &+ 1 {
                out[out.count - 1] = last.lowerBound...max(last.upperBound, r.upperBound)
            } else {
                out.append(r)
            }
        }
        return out
    }

    static func complement(_ ranges: [ClosedRange<UInt32>]) -> [ClosedRange<UInt32>] {
        var out: [ClosedRange<UInt32>] = []
        var next: UInt32 = 0
        for r in normalized(ranges) {
            if r.lowerBound > next { out.append(next...(r.lowerBound - 1)) }
            next = r.upperBound + 1
        }
        if next <= 0x10FFFF { out.append(next...0x10FFFF) }
        return out
    }
}

/// Checks over a rule set that the matcher relies on.
enum GrammarChecks {
    /// Refuses a rule that can reach itself at the left edge without consuming anything (directly, through other
    /// rules, or after rules that can match the empty string).
    static func rejectLeftRecursion(_ rules: RuleSet) throws(GrammarError) {
        let n = rules.alternatives.count
        // Which rules can match the empty string (fixpoint).
        var nullable = [Bool](repeating: false, count: n)
        var changed = true
        while changed {
            changed = false
            for r in 0..<n where !nullable[r] {
                let canBeEmpty = rules.alternatives[r].contains { seq in
                    seq.allSatisfy { if case .rule(let s) = $0 { nullable[s] } else { false } }
                }
                if canBeEmpty { nullable[r] = true; changed = true }
            }
        }
        // Edges r → s where s can be the first thing r expands to.
        var edges = [[Int]](repeating: [], count: n)
        for r in 0..<n {
            for seq in rules.alternatives[r] {
                for term in seq {
                    guard case .rule(let s) = term else { break }
                    edges[r].append(s)
                    if !nullable[s] { break }
                }
            }
        }
        // Cycle search (iterative DFS, colours: 0 new, 1 on the path, 2 done).
        var colour = [UInt8](repeating: 0, count: n)
        for start in 0..<n where colour[start] == 0 {
            var stack: [(node: Int, next: Int)] = [(start, 0)]
            colour[start] = 1
            while let top = stack.last {
                if top.next < edges[top.node].count {
                    stack[stack.count - 1].next += 1
                    let s = edges[top.node][top.next]
                    if colour[s] == 1 { throw .leftRecursion(rules.names[s]) }
                    if colour[s] == 0 { colour[s] = 1; stack.append((s, 0)) }
                } else {
                    colour[top.node] = 2
                    stack.removeLast()
                }
            }
        }
    }
}
