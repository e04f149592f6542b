import Grammar
import Synchronization
import Tokenizers

/// A loaded model's side of constrained decoding: its vocabulary as the grammar engine reads it (built on first use)
/// and the grammars compiled for it, kept by their GBNF text so a repeated schema costs nothing to compile and finds
/// its masks already computed.
public final class GrammarCache: Sendable {
    /// Compiled grammars kept at most (least recently used go first).
    public static let capacity = 64

    private let tokenizer: any Tokenizer
    private let table = Mutex<TokenTable?>(nil)
    private let compiled = Mutex<(entries: [String: (TokenConstraint, UInt64)], tick: UInt64)>(([:], 0))
    /// End-of-generation ids (allowed exactly when a grammar is complete).
    public let endOfGeneration: [Int32]

    public init(tokenizer: any Tokenizer, vocabularySize: Int) {
        self.tokenizer = tokenizer
        endOfGeneration = (0..<min(vocabularySize, tokenizer.vocabularySize)).map(Int32.init).filter { tokenizer.isEndOfGeneration($0) }
    }

    /// The vocabulary's bytes, sorted for mask computation; control and end-of-generation tokens excluded.
    public var tokenTable: TokenTable {
        table.withLock { t in
            if let t { return t }
            let tk = tokenizer
            let made = TokenTable(bytes: (0..<tk.vocabularySize).map { tk.tokenBytes(Int32($0)) },
                                  allowed: { !tk.isControl($0) && !tk.isEndOfGeneration($0) })
            t = made
            return made
        }
    }

    /// The constraint for GBNF `gbnf`, compiled once.
    public func constraint(gbnf: String) throws(GrammarError) -> TokenConstraint {
        let hit: TokenConstraint? = compiled.withLock { c in
            c.tick += 1
            guard let e = c.entries[gbnf] else { return nil }
            c.entries[gbnf] = (e.0, c.tick)
            return e.0
        }
        if let hit { return hit }
        let made = TokenConstraint(grammar: try Grammar(gbnf: gbnf), table: tokenTable)
        compiled.withLock { c in
            if c.entries.count >= Self.capacity, let oldest = c.entries.min(by: { $0.value.1 < $1.value.1 })?.key {
                c.entries.removeValue(forKey: oldest)
            }
            c.entries[gbnf] = (made, c.tick)
        }
        return made
    }
}
