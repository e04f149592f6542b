/// Where a grammar stands after some bytes: a pushdown automaton run over bytes. Its state is a set of stacks (one per
/// way the bytes so far can be parsed); a stack lists positions in the compiled grammar, the top being the byte set to
/// match next and the rest where to continue when each rule finishes. An empty stack means the text so far is a
/// complete sentence of the grammar.
///
/// Bounded: a stack deeper than `maxDepth`, more than `maxStacks` parses, or an expansion of more than
/// `maxExpansions` steps drops that parse, so a hostile grammar or input costs bounded time and memory per byte.
public struct GrammarMatcher: Sendable, CustomStringConvertible {
    public static let maxDepth = 4096
    public static let maxStacks = 2048
    public static let maxExpansions = 100_000

    public let grammar: Grammar
    /// The current parses, distinct and sorted (so equal states compare and hash equal).
    public private(set) var stacks: [[Int32]]

    public init(_ grammar: Grammar) {
        self.grammar = grammar
        var out = Parses()
        var budget = Self.maxExpansions
        for a in grammar.starts[Int(grammar.root)] { Self.expand(grammar, [a], into: &out, budget: &budget) }
        stacks = out.sortedStacks
    }

    public var description: String { "GrammarMatcher(\(stacks.count) parses)" }

    /// Whether the text so far is a complete sentence (generation may end here).
    public var canEnd: Bool { stacks.first?.isEmpty ?? false }
    /// Whether nothing can follow (the only parse is complete).
    public var mustEnd: Bool { stacks.count == 1 && stacks[0].isEmpty }
    /// Whether no parse is left (the input was rejected).
    public var isDead: Bool { stacks.isEmpty }

    /// Consumes `bytes`; false (and the state unchanged) if the grammar rejects them.
    @discardableResult
    public mutating func accept<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
        var s = stacks
        for b in bytes {
            s = Self.step(grammar, s, b)
            if s.isEmpty { return false }
        }
        stacks = s
        return true
    }

    /// Whether `bytes` could come next.
    public func allows<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
        var s = stacks
        for b in bytes {
            s = Self.step(grammar, s, b)
            if s.isEmpty { return false }
        }
        return true
    }

    /// The parses after one more byte (empty: rejected).
    static func step(_ g: Grammar, _ stacks: [[Int32]], _ byte: UInt8) -> [[Int32]] {
        var out = Parses()
        var budget = maxExpansions
        for s in stacks {
            guard let top = s.last, case .bytes(let set) = g.elements[Int(top)], g.setContains(set, byte) else { continue }
            var t = s
            t[t.count - 1] = top + 1
            expand(g, t, into: &out, budget: &budget)
            if out.count > maxStacks { break }
        }
        return out.sortedStacks
    }

    /// Distinct stacks: a list while small (most grammar states have one to a few parses), a set beyond.
    struct Parses {
        private var list: [[Int32]] = []
        private var many: Set<[Int32]>?
        var count: Int { many?.count ?? list.count }
        mutating func insert(_ s: [Int32]) {
            if many != nil { many!.insert(s); return }
            if list.contains(s) { return }
            list.append(s)
            if list.count > 16 { many = Set(list); list = [] }
        }
        var sortedStacks: [[Int32]] {
            if let many { return GrammarMatcher.sorted(Array(many)) }
            return list.count <= 1 ? list : GrammarMatcher.sorted(list)
        }
    }

    /// Brings `stack` to tops that are byte sets (or to empty), adding every resulting parse to `out`.
    static func expand(_ g: Grammar, _ stack: [Int32], into out: inout Parses, budget: inout Int) {
        // The common case first: no rule to expand, nothing to branch.
        var s = stack
        while let top = s.last, g.elements[Int(top)] == .end { s.removeLast() }
        if let top = s.last, case .bytes = g.elements[Int(top)] { out.insert(s); return }
        if s.isEmpty { out.insert(s); return }
        var work: [[Int32]] = [s]
        while var s = work.popLast() {
            budget -= 1
            if budget < 0 || out.count > maxStacks { return }
            while let top = s.last, g.elements[Int(top)] == .end { s.removeLast() }
            guard let top = s.last else { out.insert(s); continue }
            switch g.elements[Int(top)] {
            case .bytes:
                out.insert(s)
            case .rule(let r):
                s.removeLast()
                // Where to go when the rule finishes; nothing to remember when that is the end of this alternative
                // (so right recursion, the shape of every repetition, keeps the stack flat).
                if g.elements[Int(top) + 1] != .end { s.append(top + 1) }
                guard s.count < maxDepth else { continue }
                for a in g.starts[Int(r)] {
                    var t = s
                    t.append(a)
                    work.append(t)
                }
            case .end:
                break   // unreachable: ends were popped above
            }
        }
    }

    static func sorted(_ stacks: [[Int32]]) -> [[Int32]] {
        stacks.sorted { a, b in
            if a.count != b.count { return a.count < b.count }
            for i in a.indices where a[i] != b[i] { return a[i] < b[i] }
            return false
        }
    }
}
