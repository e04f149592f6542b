import Foundation
@testable import Grammar
import Testing

/// Random grammars and random inputs: the reader either compiles a grammar or throws a `GrammarError` (never
/// crashes), and the matcher stays within its bounds on any input — at most `maxStacks` parses, no stack deeper than
/// `maxDepth` — so every byte costs bounded time. A short version runs in `make test`; `GRAMMAR_FUZZ=N` runs N rounds.
@Suite struct GrammarFuzzTests {
    static let rounds = Int(ProcessInfo.processInfo.environment["GRAMMAR_FUZZ"] ?? "") ?? 300

    /// A random but well-formed grammar over a few rule names (left recursion and undefined rules can appear).
    static func randomGrammar(_ rng: inout some RandomNumberGenerator) -> String {
        let names = ["root", "a", "b", "c"]
        func atom(_ depth: Int) -> String {
            switch Int.random(in: 0..<(depth > 2 ? 4 : 7), using: &rng) {
            case 0: return "\"" + String((0..<Int.random(in: 0...3, using: &rng)).map { _ in "xyz{}é\"".randomElement(using: &rng)! })
                .replacingOccurrences(of: "\"", with: "\\\"") + "\""
            case 1: return ["[a-z]", "[^x]", "[é-ü]", ".", "[0-9]", "[\\x00-\\x7F]", "[^\\n]"].randomElement(using: &rng)!
            case 2: return names.randomElement(using: &rng)!
            case 3: return "\"q\""
            case 4: return "(" + alternatives(depth + 1) + ")"
            case 5: return atom(depth + 1) + ["*", "+", "?", "{2}", "{0,3}", "{1,}"].randomElement(using: &rng)!
            default: return atom(depth + 1) + " " + atom(depth + 1)
            }
        }
        func alternatives(_ depth: Int) -> String {
            (0..<Int.random(in: 1...3, using: &rng)).map { _ in atom(depth) }.joined(separator: " | ")
        }
        return names.map { "\($0) ::= \(alternatives(0))" }.joined(separator: "\n")
    }

    @Test func randomGrammarsAndInputsStayBounded() throws {
        var rng = SystemRandomNumberGenerator()
        var compiled = 0
        for _ in 0..<Self.rounds {
            let text = Self.randomGrammar(&rng)
            let grammar: Grammar
            do { grammar = try Grammar(gbnf: text) } catch { continue }   // typed: GrammarError is the only error thrown
            compiled += 1
            var m = GrammarMatcher(grammar)
            for _ in 0..<64 {
                let byte = "xyzq{}\"é0a\n".utf8.randomElement(using: &rng)!
                if !m.accept([byte]) { break }
                #expect(m.stacks.count <= GrammarMatcher.maxStacks + 1)
                #expect(m.stacks.allSatisfy { $0.count <= GrammarMatcher.maxDepth + 1 })
            }
        }
        #expect(compiled > Self.rounds / 10, "the generator should make mostly usable grammars")
    }

    /// Bytes that are not a grammar at all: a typed error every time.
    @Test func garbageIsATypedError() {
        var rng = SystemRandomNumberGenerator()
        let pieces = ["root", " ::= ", "\"", "[", "]", "(", ")", "|", "*", "{", "}", "\\", "\n", "x", "é", "#", "<", "::=", "^", "-"]
        for _ in 0..<Self.rounds * 3 {
            let text = (0..<Int.random(in: 0...20, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
            do {
                _ = try Grammar(gbnf: text)
            } catch {
                // `Grammar(gbnf:)` throws GrammarError by its signature; reaching here is the check.
                _ = error.description
            }
        }
    }

    /// Random JSON Schemas built from the supported keywords (and some that are not): a grammar or a typed error.
    @Test func randomSchemasCompileOrAreRefusedByName() {
        var rng = SystemRandomNumberGenerator()
        func schema(_ depth: Int) -> String {
            let leaf = [#"{"type":"string"}"#, #"{"type":"integer","minimum":-5,"maximum":300}"#, #"{"type":"number"}"#,
                        #"{"enum":["a",1,null]}"#, #"{"type":"boolean"}"#, #"{"type":"string","pattern":"^[a-c]{1,3}$"}"#,
                        #"{"type":"string","format":"date"}"#, #"{"multipleOf":2}"#, #"{"type":"string","maxLength":4}"#]
            if depth > 2 || Bool.random(using: &rng) { return leaf.randomElement(using: &rng)! }
            if Bool.random(using: &rng) {
                let props = (0..<Int.random(in: 0...3, using: &rng)).map { "\"p\($0)\":\(schema(depth + 1))" }.joined(separator: ",")
                return #"{"type":"object","properties":{\#(props)},"required":["p0"]}"#
            }
            return #"{"type":"array","items":\#(schema(depth + 1)),"maxItems":\#(Int.random(in: 0...3, using: &rng))}"#
        }
        for _ in 0..<Self.rounds {
            let s = schema(0)
            do {
                let g = try JSONSchemaGrammar.grammar(schema: s)
                #expect(!GrammarMatcher(g).isDead, "\(s)")
            } catch {
                switch error {
                case .unsupportedSchema(let keyword, _): #expect(keyword == "multipleOf", "\(s)")
                default: Issue.record("\(s): \(error)")
                }
            }
        }
    }
}
