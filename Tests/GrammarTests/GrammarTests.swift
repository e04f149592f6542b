import Foundation
@testable import Grammar
import TestSupport
import Testing

/// The GBNF reader and the byte-level matcher: llama.cpp's own grammars load unchanged and decide texts as their
/// grammar says; errors are typed and placed; UTF-8 classes match exactly the code points they name.
@Suite struct GrammarTests {
    static func grammar(_ name: String) throws -> Grammar {
        try Grammar(gbnf: try String(contentsOf: Reference.file("grammars/\(name).gbnf"), encoding: .utf8))
    }

    /// Whether the whole of `text` is a sentence of `g`.
    static func matches(_ g: Grammar, _ text: String) -> Bool {
        var m = GrammarMatcher(g)
        return m.accept(Array(text.utf8)) && m.canEnd
    }

    @Test(arguments: ["arithmetic", "c", "chess", "english", "japanese", "json", "json_arr", "list"])
    func llamaCppGrammarsLoad(_ name: String) throws {
        let g = try Self.grammar(name)
        #expect(!GrammarMatcher(g).isDead)
    }

    @Test func jsonGrammarDecidesJSON() throws {
        let g = try Self.grammar("json")
        for good in [#"{}"#, #"{"a": 1}"#, #"{"a": [1, 2.5, -3e2, true, null, "x\n\u00e9"], "b": {"c": {}}}"#,
                     "{\n  \"name\": \"Ünïcödé ✓\"\n}", #"{"k":"v"} "#] {
            #expect(Self.matches(g, good), "\(good)")
        }
        for bad in [#"[]"#, #"{"a": }"#, #"{"a" 1}"#, #"{"a": 01}"#, #"{'a': 1}"#, "{\"a\": \"\u{01}\"}", #"{"a": tru}"#, #"{"a": 1"#] {
            #expect(!Self.matches(g, bad), "\(bad)")
        }
    }

    @Test func arithmeticChessAndJapanese() throws {
        let arithmetic = try Self.grammar("arithmetic")
        #expect(Self.matches(arithmetic, "(1+2)*3-x/4=y\n"))
        #expect(!Self.matches(arithmetic, "1++2=3\n"))
        #expect(!Self.matches(arithmetic, "1+2\n"))
        let chess = try Self.grammar("chess")
        #expect(Self.matches(chess, "1. e4 e5\n2. Nf3 Nc6\n"))
        #expect(!Self.matches(chess, "1. e9 e5\n2. Nf3 Nc6\n"))
        let japanese = try Self.grammar("japanese")
        #expect(Self.matches(japanese, "こんにちは、世界。"))
        #expect(!Self.matches(japanese, "hello"))
    }

    @Test func aPartialCharacterIsAllowedOnlyIfItCanBeCompleted() throws {
        let g = try Grammar(gbnf: #"root ::= [é-ë]+"#)
        var m = GrammarMatcher(g)
        let lead = m.accept([0xC3])          // the first byte of é…ë
        #expect(lead)
        #expect(!m.allows([0xC3]))         // a second lead byte cannot follow
        #expect(!m.allows([0xA8]))         // è is below é
        let e = m.accept([0xA9])           // é
        #expect(e)
        #expect(m.canEnd)
    }

    @Test func repetitionCounts() throws {
        let g = try Grammar(gbnf: #"root ::= "a"{2,3} "b"{2} ("c" "d"){0,1} "e"{1,}"#)
        for (text, ok) in [("aabbe", true), ("aaabbcdee", true), ("abbe", false), ("aaaabbe", false), ("aabbcde", true),
                           ("aabb", false), ("aabbcdcde", false)] {
            #expect(Self.matches(g, text) == ok, "\(text)")
        }
    }

    @Test func errorsAreTypedAndPlaced() {
        #expect(throws: GrammarError.leftRecursion("root")) { try Grammar(gbnf: #"root ::= root "a" | "b""#) }
        #expect(throws: GrammarError.leftRecursion("a")) { try Grammar(gbnf: "root ::= a\na ::= b? a \"x\"\nb ::= \"y\"") }
        #expect(throws: GrammarError.undefinedRule("thing")) { try Grammar(gbnf: "root ::= thing") }
        #expect(throws: GrammarError.duplicateRule("root")) { try Grammar(gbnf: "root ::= \"a\"\nroot ::= \"b\"") }
        #expect(throws: GrammarError.missingRoot) { try Grammar(gbnf: #"start ::= "a""#) }
        #expect(throws: GrammarError.syntax("unterminated string literal", line: 2, column: 11)) {
            try Grammar(gbnf: "root ::= x\nx ::= \"abc")
        }
        #expect(throws: GrammarError.syntax("expected ')'", line: 1, column: 15)) { try Grammar(gbnf: #"root ::= ("a" "#) }
        #expect(throws: GrammarError.tooLarge("a repetition count over 1000")) { try Grammar(gbnf: #"root ::= "a"{5000}"#) }
        #expect(throws: GrammarError.unsupported("the token reference at line 1, column 10")) { try Grammar(gbnf: "root ::= <think>") }
    }

    /// Every code point of a class (surrogates aside) is accepted as its UTF-8 bytes, and no other is, across the
    /// boundaries between encoding lengths and continuation blocks.
    @Test func utf8ClassesMatchExactlyTheirCodePoints() throws {
        let classes: [[ClosedRange<UInt32>]] = [
            [0x41...0x5A, 0xE9...0xEB], [0x7F...0x800], [0x3B1...0x3C9, 0x4E00...0x4E10], [0xFFF0...0x10010],
            CodePointSet.complement([0x22...0x22, 0x5C...0x5C, 0x00...0x1F]),
        ]
        let probes: [UInt32] = Array(0...0x900) + Array(0xD7F0...0xE010) + Array(0xFFE0...0x10100) + [0x4E00, 0x4E10, 0x4E11, 0x10FFFF]
        for ranges in classes {
            let g = try Grammar(RuleSet(names: ["root"], alternatives: [[[.chars(ranges)]]], root: 0))
            for cp in probes {
                guard let scalar = Unicode.Scalar(cp) else { continue }
                let inClass = ranges.contains { $0.contains(cp) }
                var m = GrammarMatcher(g)
                let ok = m.accept(Array(String(scalar).utf8)) && m.canEnd
                #expect(ok == inClass, "U+\(String(cp, radix: 16)) in \(ranges)")
            }
        }
    }

    /// A grammar that explodes into many parses is cut off at the limit instead of growing without bound.
    @Test func ambiguityIsBounded() throws {
        let g = try Grammar(gbnf: "root ::= x*\nx ::= \"a\" | \"a\" \"a\" | \"a\" \"a\" \"a\" | y\ny ::= \"a\"+")
        var m = GrammarMatcher(g)
        for _ in 0..<200 { _ = m.accept([UInt8(ascii: "a")]) }
        #expect(m.stacks.count <= GrammarMatcher.maxStacks + 1)
        #expect(!m.isDead)
    }

    /// The trie walk gives exactly the tokens that checking each token's bytes one by one allows.
    @Test func maskEqualsTokenByTokenCheck() throws {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("{}[]\":,. -0123456789abetrunlfsé\\\n".utf8)
        var tokens: [[UInt8]] = (0..<256).map { [UInt8($0)] }
        for _ in 0..<3000 {
            let n = Int.random(in: 1...6, using: &rng)
            tokens.append((0..<n).map { _ in alphabet.randomElement(using: &rng)! })
        }
        tokens.append([])   // a token with no bytes is never allowed
        let table = TokenTable(bytes: tokens, allowed: { $0 != 10 })   // token 10 stands for a control token
        let constraint = TokenConstraint(grammar: try Self.grammar("json"), table: table)
        var state = constraint.start()
        let text = Array(#"{"key": [1, -2.5e3, "é\"x", true], "n": null}"#.utf8)
        var checked = 0
        for b in text {
            let mask = state.mask()
            for id in 0..<tokens.count {
                #expect(mask.contains(Int32(id)) == state.allows(Int32(id)), "token \(tokens[id]) after \(checked) bytes")
            }
            #expect(mask.contains(Int32(b)) || b == 10)
            let accepted = state.accept(Int32(b))
            #expect(accepted)
            checked += 1
        }
        // json.gbnf lets whitespace follow the object: complete, and only whitespace may come.
        #expect(state.canEnd && !state.mustEnd)
        let after = state.mask()
        #expect(after.count > 0)
        for id in 0..<tokens.count where after.contains(Int32(id)) {
            #expect(tokens[id].allSatisfy { $0 == 0x20 || $0 == 0x0A || $0 == 0x09 }, "\(tokens[id])")
        }
    }
}
