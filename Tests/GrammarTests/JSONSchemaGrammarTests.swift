import Foundation
@testable import Grammar
import Testing

/// JSON Schema → grammar: instances that validate are sentences of the grammar (within the documented choices: keys
/// in schema order, no unlisted keys), instances that do not are refused; unsupported keywords are named.
@Suite struct JSONSchemaGrammarTests {
    static func matches(_ g: Grammar, _ text: String) -> Bool {
        var m = GrammarMatcher(g)
        return m.accept(Array(text.utf8)) && m.canEnd
    }

    static func check(_ schema: String, accepts good: [String], refuses bad: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let g = try JSONSchemaGrammar.grammar(schema: schema)
        for text in good { #expect(matches(g, text), "should accept \(text)", sourceLocation: sourceLocation) }
        for text in bad { #expect(!matches(g, text), "should refuse \(text)", sourceLocation: sourceLocation) }
    }

    @Test func objectsWithRequiredAndOptionalKeys() throws {
        try Self.check(#"{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},"tags":{"type":"array","items":{"type":"string"}}},"required":["name"],"additionalProperties":false}"#,
            accepts: [#"{"name":"Ann"}"#, #"{"name": "Ann", "age": 3}"#, #"{"name":"A","tags":["x","y"]}"#,
                      "{\n  \"name\": \"A\",\n  \"age\": -4,\n  \"tags\": []\n}"],
            refuses: [#"{}"#, #"{"age":3}"#, #"{"name":"A","age":3.5}"#, #"{"name":"A","other":1}"#, #"{"name":"A",}"#,
                      #"{"age":3,"name":"A"}"#, #"{"name":"A"} "#])
        // Only optional keys: any subset, in order, commas between.
        try Self.check(#"{"type":"object","properties":{"a":{"type":"boolean"},"b":{"type":"null"},"c":{"const":"k"}}}"#,
            accepts: [#"{}"#, #"{"a":true}"#, #"{"b":null}"#, #"{"a":false,"c":"k"}"#, #"{"a":true,"b":null,"c":"k"}"#],
            refuses: [#"{,"b":null}"#, #"{"a":true,}"#, #"{"c":"x"}"#, #"{"a":true "b":null}"#])
    }

    @Test func anyKeysWhenNoneAreListed() throws {
        try Self.check(#"{"type":"object","additionalProperties":{"type":"number"}}"#,
            accepts: [#"{}"#, #"{"x": 1.5, "y": -2e3}"#], refuses: [#"{"x":"s"}"#])
        try Self.check(#"{"type":"object","additionalProperties":false}"#, accepts: [#"{}"#], refuses: [#"{"a":1}"#])
    }

    @Test func arraysAndTuples() throws {
        try Self.check(#"{"type":"array","items":{"type":"integer"},"minItems":2,"maxItems":3}"#,
            accepts: ["[1,2]", "[1, 2, 3]"], refuses: ["[]", "[1]", "[1,2,3,4]", "[1,\"a\"]"])
        try Self.check(#"{"type":"array","items":{"type":"integer"},"minItems":1}"#,
            accepts: ["[1]", "[1,2,3,4,5]"], refuses: ["[]"])
        try Self.check(#"{"type":"array","maxItems":0}"#, accepts: ["[]"], refuses: ["[1]"])
        try Self.check(#"{"type":"array","prefixItems":[{"type":"string"},{"type":"number"}],"items":false}"#,
            accepts: [#"["a", 1]"#], refuses: [#"["a"]"#, #"[1, "a"]"#, #"["a", 1, 2]"#])
        try Self.check(#"{"type":"array","prefixItems":[{"type":"string"}],"items":{"type":"boolean"},"maxItems":3}"#,
            accepts: [#"["a"]"#, #"["a",true]"#, #"["a",true,false]"#], refuses: [#"["a",true,false,true]"#, #"["a",1]"#])
    }

    @Test func enumsConstsAndUnions() throws {
        try Self.check(#"{"enum":["red","green",3,null,{"a":[1]}]}"#,
            accepts: [#""red""#, "3", "null", #"{"a":[1]}"#], refuses: [#""blue""#, "4", #""Red""#])
        try Self.check(#"{"anyOf":[{"type":"string","maxLength":2},{"type":"integer","minimum":10}]}"#,
            accepts: [#""ab""#, "10", "12345"], refuses: [#""abc""#, "9", "-10"])
        try Self.check(#"{"type":["string","null"]}"#, accepts: [#""x""#, "null"], refuses: ["1"])
        try Self.check(#"{"type":"integer","nullable":true}"#, accepts: ["1", "null"], refuses: [#""1""#])
    }

    @Test func referencesIncludingRecursion() throws {
        let tree = ##"{"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},"kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["v","kids"]}},"$ref":"#/$defs/node"}"##
        try Self.check(tree, accepts: [#"{"v":1,"kids":[]}"#, #"{"v":1,"kids":[{"v":2,"kids":[{"v":3,"kids":[]}]}]}"#],
                       refuses: [#"{"v":1}"#, #"{"v":1,"kids":[{"v":2}]}"#])
        try Self.check(##"{"type":"object","properties":{"next":{"$ref":"#"}},"additionalProperties":false}"##,
                       accepts: [#"{}"#, #"{"next":{"next":{}}}"#], refuses: [#"{"next":1}"#])
        #expect(throws: GrammarError.invalidSchema("$ref '#/$defs/missing' leads nowhere", path: "$")) {
            try JSONSchemaGrammar.gbnf(schema: ##"{"$ref":"#/$defs/missing"}"##)
        }
    }

    @Test func stringsLengthsPatternsAndFormats() throws {
        try Self.check(#"{"type":"string","minLength":2,"maxLength":3}"#,
            accepts: [#""ab""#, #""a\"c""#, #""é✓x""#], refuses: [#""a""#, #""abcd""#])
        try Self.check(#"{"type":"string","pattern":"^[A-Z]{2}-\\d{3}$"}"#,
            accepts: [#""AB-123""#], refuses: [#""AB-12""#, #""ab-123""#, #""AB-1234""#])
        try Self.check(#"{"type":"string","pattern":"^(a|b\"c)+\\\\$"}"#,
            accepts: [#""ab\"c\\""#, #""a\\""#], refuses: [#""ab"c\\""#, #""a""#])
        try Self.check(#"{"type":"string","format":"date"}"#,
            accepts: [#""2024-02-28""#, #""1999-12-31""#], refuses: [#""2024-02-30""#, #""2024-13-01""#, #""2024-1-01""#])
        try Self.check(#"{"type":"string","format":"date-time"}"#,
            accepts: [#""2024-06-01T12:30:00Z""#, #""2024-06-01T23:59:59.123+02:00""#], refuses: [#""2024-06-01 12:30:00Z""#, #""2024-06-01T24:00:00Z""#])
        try Self.check(#"{"type":"string","format":"uuid"}"#,
            accepts: [#""123e4567-e89b-12d3-a456-426614174000""#], refuses: [#""123e4567e89b12d3a456426614174000""#])
        try Self.check(#"{"type":"string","format":"ipv4"}"#, accepts: [#""192.168.0.255""#], refuses: [#""256.1.1.1""#, #""1.2.3""#])
        try Self.check(#"{"type":"string","format":"email"}"#, accepts: [#""a.b@example.com""#], refuses: [#""ab.example.com""#])
        #expect(throws: GrammarError.invalidPattern("backreferences are not supported", pattern: #"(a)\1"#)) {
            try JSONSchemaGrammar.gbnf(schema: #"{"type":"string","pattern":"(a)\\1"}"#)
        }
    }

    /// Integer bounds: every integer in [-1200, 1200] is accepted exactly when it lies within the bounds, for many
    /// bound pairs (either side open, exclusive forms, fractional bounds).
    @Test func integerBoundsAreExact() throws {
        var rng = SystemRandomNumberGenerator()
        var cases: [(String, (Int) -> Bool)] = [
            (#"{"type":"integer","minimum":0}"#, { $0 >= 0 }),
            (#"{"type":"integer","maximum":-7}"#, { $0 <= -7 }),
            (#"{"type":"integer","exclusiveMinimum":-3,"exclusiveMaximum":99}"#, { $0 > -3 && $0 < 99 }),
            (#"{"type":"integer","minimum":1.5,"maximum":20.5}"#, { $0 >= 2 && $0 <= 20 }),
        ]
        for _ in 0..<12 {
            let a = Int.random(in: -1100...1100, using: &rng), b = Int.random(in: -1100...1100, using: &rng)
            let lo = min(a, b), hi = max(a, b)
            cases.append((#"{"type":"integer","minimum":\#(lo),"maximum":\#(hi)}"#, { $0 >= lo && $0 <= hi }))
        }
        for (schema, inRange) in cases {
            let g = try JSONSchemaGrammar.grammar(schema: schema)
            for v in -1200...1200 {
                #expect(Self.matches(g, String(v)) == inRange(v), "\(v) under \(schema)")
            }
            #expect(!Self.matches(g, "-0") && !Self.matches(g, "007"))
        }
    }

    @Test func numberBoundsAdmitOnlyValuesWithin() throws {
        let g = try JSONSchemaGrammar.grammar(schema: #"{"type":"number","minimum":-2.5,"exclusiveMaximum":10}"#)
        for v in ["-2", "-1.5", "0", "0.25", "9.999", "-2.25", "-2.5", "9", "9.999999"] { #expect(Self.matches(g, v), "\(v)") }
        for v in ["10", "10.5", "-3", "-2.75", "-2.500001", "11", "1e2", "9.9999999", "-0", "-0.0"] { #expect(!Self.matches(g, v), "\(v)") }
        // Strictly between two integers, and an exclusive bound a double could round onto.
        let narrow = try JSONSchemaGrammar.grammar(schema: #"{"type":"number","minimum":0.25,"maximum":0.75}"#)
        for v in ["0.25", "0.5", "0.75", "0.700001"] { #expect(Self.matches(narrow, v), "\(v)") }
        for v in ["0", "1", "0.2", "0.750001", "0.76"] { #expect(!Self.matches(narrow, v), "\(v)") }
        let open = try JSONSchemaGrammar.grammar(schema: #"{"type":"number","exclusiveMinimum":13,"exclusiveMaximum":32}"#)
        #expect(!Self.matches(open, "13.0000000000000001") && !Self.matches(open, "13") && !Self.matches(open, "32"))
        #expect(Self.matches(open, "13.000001") && Self.matches(open, "31.999999") && Self.matches(open, "20"))
    }

    /// Every decimal with up to 3 fraction digits in [-3, 3] is accepted exactly when it lies within random bounds.
    @Test func decimalBoundsAreExact() throws {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<6 {
            let a = Int.random(in: -3000...3000, using: &rng), b = Int.random(in: -3000...3000, using: &rng)
            let lo = min(a, b), hi = max(a, b)
            let exLo = Bool.random(using: &rng), exHi = Bool.random(using: &rng)
            func text(_ v: Int) -> String { (v < 0 ? "-" : "") + "\(abs(v) / 1000)." + String(String(abs(v) % 1000 + 1000).dropFirst()) }
            let schema = "{\"type\":\"number\",\"\(exLo ? "exclusiveMinimum" : "minimum")\":\(text(lo)),\"\(exHi ? "exclusiveMaximum" : "maximum")\":\(text(hi))}"
            guard exLo || exHi ? lo < hi : lo <= hi else { continue }
            let g = try JSONSchemaGrammar.grammar(schema: schema)
            for v in stride(from: -3100, through: 3100, by: 7) {
                let inside = (exLo ? v > lo : v >= lo) && (exHi ? v < hi : v <= hi)
                var written = text(v)
                while written.hasSuffix("0") { written.removeLast() }   // 1.500 → 1.5, 2.000 → 2.
                if written.hasSuffix(".") { written.removeLast() }
                if written == "-0" { continue }
                #expect(Self.matches(g, written) == inside, "\(written) under \(schema)")
            }
        }
    }

    @Test func unsupportedKeywordsAreNamed() {
        #expect(throws: GrammarError.unsupportedSchema(keyword: "multipleOf", path: "$.properties.n")) {
            try JSONSchemaGrammar.gbnf(schema: #"{"type":"object","properties":{"n":{"type":"integer","multipleOf":3}}}"#)
        }
        #expect(throws: GrammarError.unsupportedSchema(keyword: "format: hostname", path: "$")) {
            try JSONSchemaGrammar.gbnf(schema: #"{"type":"string","format":"hostname"}"#)
        }
        #expect(throws: GrammarError.unsupportedSchema(keyword: "allOf", path: "$")) {
            try JSONSchemaGrammar.gbnf(schema: #"{"allOf":[{"type":"string"},{"maxLength":3}]}"#)
        }
        #expect(throws: GrammarError.invalidSchema("unknown type 'str'", path: "$")) {
            try JSONSchemaGrammar.gbnf(schema: #"{"type":"str"}"#)
        }
    }

    @Test func anyObjectIsOneJSONObject() throws {
        let g = try Grammar(gbnf: JSONSchemaGrammar.anyObject)
        #expect(Self.matches(g, #"{"a": [1, {"b": null}], "c": "d"}"#))
        #expect(!Self.matches(g, "[1]"))
        #expect(!Self.matches(g, #"{"a": 1} "#))
        var m = GrammarMatcher(g)
        m.accept(Array("{}".utf8))
        #expect(m.mustEnd)
    }
}
