import Synchronization

/// A model's vocabulary as the grammar engine sees it: each token's bytes, sorted so that tokens sharing a prefix are
/// neighbours (a trie, flattened). Built once per loaded model. Tokens with no bytes and control tokens are never
/// allowed by a grammar (end-of-generation is the caller's: allowed exactly when the grammar `canEnd`).
public final class TokenTable: Sendable {
    public let count: Int
    let bytes: [[UInt8]]
    /// Token ids in lexicographic order of their bytes (only tokens a grammar may produce).
    let order: [Int32]
    /// For position i of `order`: how many leading bytes it shares with the token before it.
    let shared: [Int32]

    /// `bytes[i]`: the bytes of token i; `allowed(i)`: whether a grammar may ever produce it (false for control and
    /// end-of-generation tokens).
    public init(bytes: [[UInt8]], allowed: (Int32) -> Bool) {
        count = bytes.count
        self.bytes = bytes
        let candidates = (0..<bytes.count).map { Int32($0) }.filter { !bytes[Int($0)].isEmpty && allowed($0) }
        order = candidates.sorted { bytes[Int($0)].lexicographicallyPrecedes(bytes[Int($1)]) }
        var shared = [Int32](repeating: 0, count: order.count)
        for i in 1..<max(1, order.count) {
            let a = bytes[Int(order[i - 1])], b = bytes[Int(order[i])]
            var n = 0
            while n < a.count, n < b.count, a[n] == b[n] { n += 1 }
            shared[i] = Int32(n)
        }
        self.shared = shared
        var usable = TokenMask(count: bytes.count)
        for id in order { usable.insert(id) }
        self.usable = usable
    }

    public func tokenBytes(_ id: Int32) -> [UInt8] { id >= 0 && Int(id) < count ? bytes[Int(id)] : [] }

    /// The tokens a grammar may produce at all.
    let usable: TokenMask
}

/// A bit per token.
public struct TokenMask: Sendable, Equatable {
    public private(set) var words: [UInt64]
    public init(count: Int) { words = [UInt64](repeating: 0, count: (count + 63) / 64) }
    @inlinable public func contains(_ id: Int32) -> Bool {
        let i = Int(id)
        return i >= 0 && i / 64 < words.count && words[i / 64] & (1 << UInt64(i % 64)) != 0
    }
    public mutating func insert(_ id: Int32) { words[Int(id) / 64] |= 1 << UInt64(Int(id) % 64) }
    public var count: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }
}

/// A compiled grammar over one vocabulary, shared by every sequence that uses it: masks already computed for a
/// grammar state are kept (most steps of a JSON answer revisit a state — inside a string, between values), so a
/// constrained step usually costs a lookup.
public final class TokenConstraint: Sendable, Equatable {
    public static func == (a: TokenConstraint, b: TokenConstraint) -> Bool { a === b }

    public let grammar: Grammar
    public let table: TokenTable
    private let masks: Mutex<[[[Int32]]: TokenMask]>
    /// States whose masks are kept at most.
    public static let cachedMasks = 256

    public init(grammar: Grammar, table: TokenTable) {
        self.grammar = grammar
        self.table = table
        masks = Mutex([:])
    }

    public func start() -> ConstraintState { ConstraintState(self) }

    /// The tokens allowed after `state` (computed once per distinct state, then cached).
    func mask(for matcher: GrammarMatcher) -> TokenMask {
        if let m = masks.withLock({ $0[matcher.stacks] }) { return m }
        let m = computeMask(matcher)
        masks.withLock { cache in
            if cache.count >= Self.cachedMasks { cache.removeAll(keepingCapacity: true) }
            cache[matcher.stacks] = m
        }
        return m
    }

    /// Walks the sorted vocabulary as a trie: the parse states after each prefix are kept by depth, so tokens that
    /// share a prefix share its work, and a rejected prefix skips every token that starts with it.
    private func computeMask(_ matcher: GrammarMatcher) -> TokenMask {
        var mask = TokenMask(count: table.count)
        let order = table.order, shared = table.shared
        var states: [[[Int32]]] = [matcher.stacks]   // states[d]: after the first d bytes of the current token
        var i = 0
        while i < order.count {
            let bytes = table.bytes[Int(order[i])]
            let keep = min(Int(shared[i]), states.count - 1)
            states.removeLast(states.count - 1 - keep)
            var d = keep
            var dead = false
            while d < bytes.count {
                let next = GrammarMatcher.step(grammar, states[d], bytes[d])
                if next.isEmpty { dead = true; break }
                states.append(next)
                d += 1
            }
            if !dead {
                mask.insert(order[i])
                i += 1
                continue
            }
            // Every following token that starts with the rejected prefix (bytes[0...d]) is rejected too.
            i += 1
            while i < order.count, Int(shared[i]) > d { i += 1 }
        }
        return mask
    }
}

/// One sequence's place in a grammar.
public struct ConstraintState: Sendable {
    public let constraint: TokenConstraint
    public private(set) var matcher: GrammarMatcher
    /// The state after the token `allows` checked last, so that accepting the token the sampler then chose costs
    /// nothing more. A sequence is advanced from one thread (its engine's), so the box is not shared across threads.
    private final class Checked: @unchecked Sendable {
        var id: Int32 = -1
        var after: GrammarMatcher?
    }
    private let checked = Checked()

    init(_ constraint: TokenConstraint) {
        self.constraint = constraint
        matcher = GrammarMatcher(constraint.grammar)
    }

    /// Whether the text so far is complete (end-of-generation may be sampled).
    public var canEnd: Bool { matcher.canEnd }
    /// Whether nothing more can be written: generation ends here.
    public var mustEnd: Bool { matcher.mustEnd }

    /// Whether token `id` may come next (never for a token the table excludes).
    public func allows(_ id: Int32) -> Bool {
        guard constraint.table.usable.contains(id) else { return false }
        var m = matcher
        let ok = m.accept(constraint.table.tokenBytes(id))
        checked.id = id
        checked.after = ok ? m : nil
        return ok
    }

    /// Moves past token `id`; false if the grammar rejects it (the state is then unchanged).
    @discardableResult
    public mutating func accept(_ id: Int32) -> Bool {
        if checked.id == id, let after = checked.after {
            matcher = after
            checked.id = -1; checked.after = nil
            return true
        }
        guard constraint.table.usable.contains(id) else { return false }
        checked.id = -1; checked.after = nil
        return matcher.accept(constraint.table.tokenBytes(id))
    }

    /// Every token that may come next.
    public func mask() -> TokenMask { constraint.mask(for: matcher) }
}
