/// JSON Schema → GBNF, so that every answer generated under it validates against the schema.
///
/// Enforced: `type` (one or a list), `properties` / `required` / `additionalProperties`, `enum`, `const`, nested objects
/// and arrays, `items` / `prefixItems` / `minItems` / `maxItems`, `anyOf` / `oneOf`, `allOf` with one member, `$ref` to
/// `#`, `#/$defs/…` or `#/definitions/…` (recursion included), string `minLength` / `maxLength` / `pattern` / `format`
/// (`date`, `time`, `date-time`, `uuid`, `email`, `ipv4`), integer and number bounds (`minimum`, `maximum`, exclusive
/// forms), `nullable`. Annotations (`title`, `description`, `default`, `examples`, …) are ignored. Any other keyword is
/// refused by name, never ignored.
///
/// Choices that keep answers valid rather than permissive: keys are written in the schema's order; properties not
/// listed are not generated (also when `additionalProperties` allows them: an object with fewer keys still
/// validates), except for an object schema that lists none, which takes any keys; `prefixItems` are all written;
/// `oneOf` branches must not overlap (the grammar takes any one; an answer matching two would fail `oneOf`), numbers
/// with bounds have no exponent.
public struct JSONSchemaGrammar {
    /// GBNF for one JSON object of any shape (`response_format: {"type": "json_object"}`).
    public static let anyObject: String = {
        var c = JSONSchemaGrammar()
        let object = c.primitive("object")
        return "root ::= \(object)\n" + c.rendered()
    }()

    /// GBNF for answers that validate against `schema` (JSON text).
    public static func gbnf(schema: String) throws(GrammarError) -> String {
        try gbnf(schema: try OrderedJSON.parse(schema))
    }

    public static func gbnf(schema: OrderedJSON) throws(GrammarError) -> String {
        var c = JSONSchemaGrammar()
        let top = try c.expression(for: schema, name: "root-value")
        return "root ::= \(top)\n" + c.gbnfRules
    }

    /// An empty set of rules, to which several schemas can be added (a tool call's grammar holds one per tool).
    public init() { root = .null }

    /// Adds the rules for `schema` (its `$ref`s resolved within it) and returns the GBNF expression that matches it.
    public mutating func expression(for schema: OrderedJSON, name: String) throws(GrammarError) -> String {
        root = schema
        refRules = [:]
        return try visit(schema, path: "$", name: name)
    }

    /// The shared rule for any JSON value / object / string (`value`, `object`, `string`, `ws`…).
    public mutating func primitiveRule(_ name: String) -> String { primitive(name) }

    /// Every rule added so far, as GBNF lines.
    public var gbnfRules: String { rendered() }

    /// The grammar itself.
    public static func grammar(schema: String) throws(GrammarError) -> Grammar {
        try Grammar(gbnf: try gbnf(schema: schema))
    }

    // MARK: state

    private var root: OrderedJSON
    private var rules: [(String, String)] = []
    private var ruleIndex: [String: Int] = [:]
    private var refRules: [String: String] = [:]
    private var bodies: [String: String] = [:]   // body → rule name, so identical sub-schemas share a rule

    private func rendered() -> String { rules.map { "\($0.0) ::= \($0.1)" }.joined(separator: "\n") + "\n" }

    /// Adds rule `name` (made unique) with `body`; an identical body already present is reused.
    private mutating func add(_ name: String, _ body: String) -> String {
        if let existing = bodies[body] { return existing }
        var n = Self.ruleName(name), i = 1
        while ruleIndex[n] != nil { i += 1; n = Self.ruleName(name) + "-\(i)" }
        ruleIndex[n] = rules.count
        rules.append((n, body))
        bodies[body] = n
        return n
    }

    private mutating func reserve(_ name: String) -> String {
        var n = Self.ruleName(name), i = 1
        while ruleIndex[n] != nil { i += 1; n = Self.ruleName(name) + "-\(i)" }
        ruleIndex[n] = rules.count
        rules.append((n, "\"\""))
        return n
    }

    private mutating func define(_ name: String, _ body: String) { rules[ruleIndex[name]!].1 = body }

    private static func ruleName(_ s: String) -> String {
        let mapped = s.unicodeScalars.map { c -> Character in
            (c.value < 128 && (c.properties.isAlphabetic || ("0"..."9").contains(c))) ? Character(c) : "-"
        }
        let n = String(mapped).lowercased()
        return n.isEmpty ? "r" : String(n.prefix(40))
    }

    // MARK: primitives

    private static let primitiveBodies: [String: String] = [
        "ws": #"| " " | "\n" [ \t]{0,20}"#,
        "boolean": #""true" | "false""#,
        "null": #""null""#,
        "integer": #""-"? ("0" | [1-9] [0-9]{0,15})"#,
        "number": #""-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})?"#,
        // \u escapes of surrogates are left out (a pair would count as two characters against minLength/maxLength,
        // but decode to one): characters beyond the BMP are written as themselves.
        "char": #"[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" ([0-9a-cA-CefEF] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2}))"#,
        "string": #""\"" char* "\"""#,
        "value": #"object | array | string | number | boolean | null"#,
        "object": #""{" ws ( string ":" ws value ws ("," ws string ":" ws value ws)* )? "}""#,
        "array": #""[" ws ( value ws ("," ws value ws)* )? "]""#,
    ]
    private static let primitiveUses: [String: [String]] = [
        "string": ["char"], "value": ["object", "array", "string", "number", "boolean", "null"],
        "object": ["ws", "string", "value"], "array": ["ws", "value"],
    ]

    /// The shared rule for a primitive (added with what it uses on first use).
    private mutating func primitive(_ name: String) -> String {
        if ruleIndex[name] == nil {
            ruleIndex[name] = rules.count
            rules.append((name, Self.primitiveBodies[name]!))
            for u in Self.primitiveUses[name] ?? [] { _ = primitive(u) }
        }
        return name
    }

    // MARK: schemas

    private static let annotations: Set<String> = [
        "title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated", "readOnly",
        "writeOnly", "$defs", "definitions", "contentMediaType", "contentEncoding",
    ]

    /// The rule (or expression) for `schema` at `path`.
    private mutating func visit(_ schema: OrderedJSON, path: String, name: String) throws(GrammarError) -> String {
        if case .bool(let b) = schema {
            guard b else { throw .unsupportedSchema(keyword: "false", path: path) }
            return primitive("value")
        }
        guard case .object(let members) = schema else { throw .invalidSchema("a schema must be an object or a boolean", path: path) }
        let known: Set<String> = [
            "type", "properties", "required", "additionalProperties", "enum", "const", "items", "prefixItems",
            "minItems", "maxItems", "anyOf", "oneOf", "allOf", "$ref", "minLength", "maxLength", "pattern", "format",
            "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "nullable",
        ]
        for (k, _) in members where !known.contains(k) && !Self.annotations.contains(k) {
            throw .unsupportedSchema(keyword: k, path: path)
        }
        var expr = try visitMain(schema, path: path, name: name)
        if case .bool(true)? = schema["nullable"] {
            expr = add(name + "-or-null", "\(expr) | \(primitive("null"))")
        }
        return expr
    }

    private mutating func visitMain(_ schema: OrderedJSON, path: String, name: String) throws(GrammarError) -> String {
        if let ref = schema["$ref"] {
            guard case .string(let r) = ref else { throw .invalidSchema("$ref must be a string", path: path) }
            return try reference(r, path: path)
        }
        if let c = schema["const"] { return add(name + "-const", Self.literal(c)) }
        if let e = schema["enum"] {
            guard case .array(let values) = e, !values.isEmpty else { throw .invalidSchema("enum must be a non-empty array", path: path) }
            return add(name + "-enum", values.map(Self.literal).joined(separator: " | "))
        }
        for key in ["anyOf", "oneOf"] {
            guard let v = schema[key] else { continue }
            guard case .array(let branches) = v, !branches.isEmpty else { throw .invalidSchema("\(key) must be a non-empty array", path: path) }
            var alts: [String] = []
            for (i, b) in branches.enumerated() {
                alts.append(try visit(b, path: "\(path).\(key)[\(i)]", name: "\(name)-\(i)"))
            }
            return add(name, alts.joined(separator: " | "))
        }
        if let v = schema["allOf"] {
            guard case .array(let parts) = v, parts.count == 1 else { throw .unsupportedSchema(keyword: "allOf", path: path) }
            return try visit(parts[0], path: "\(path).allOf[0]", name: name)
        }
        var types: [String]
        switch schema["type"] {
        case .string(let t)?: types = [t]
        case .array(let ts)?:
            types = []
            for t in ts {
                guard case .string(let s) = t else { throw .invalidSchema("type must name types", path: path) }
                types.append(s)
            }
        case nil:
            // No type: inferred from the keywords present, else any value.
            if schema["properties"] != nil || schema["additionalProperties"] != nil { types = ["object"] }
            else if schema["items"] != nil || schema["prefixItems"] != nil { types = ["array"] }
            else if schema["pattern"] != nil || schema["format"] != nil || schema["minLength"] != nil || schema["maxLength"] != nil { types = ["string"] }
            else { return primitive("value") }
        default: throw .invalidSchema("type must be a string or an array", path: path)
        }
        var alts: [String] = []
        for t in types {
            switch t {
            case "object": alts.append(try object(schema, path: path, name: name))
            case "array": alts.append(try array(schema, path: path, name: name))
            case "string": alts.append(try string(schema, path: path, name: name))
            case "integer": alts.append(try integer(schema, path: path, name: name))
            case "number": alts.append(try number(schema, path: path, name: name))
            case "boolean": alts.append(primitive("boolean"))
            case "null": alts.append(primitive("null"))
            default: throw .invalidSchema("unknown type '\(t)'", path: path)
            }
        }
        return alts.count == 1 ? alts[0] : add(name, alts.joined(separator: " | "))
    }

    private mutating func reference(_ ref: String, path: String) throws(GrammarError) -> String {
        if let r = refRules[ref] { return r }
        var target = root
        var parts: [String] = []
        if ref != "#" {
            guard ref.hasPrefix("#/") else { throw .unsupportedSchema(keyword: "$ref \(ref)", path: path) }
            parts = ref.dropFirst(2).split(separator: "/", omittingEmptySubsequences: false).map {
                String($0).replacing("~1", with: "/").replacing("~0", with: "~")
            }
        }
        for p in parts {
            guard let next = target[p] else { throw .invalidSchema("$ref '\(ref)' leads nowhere", path: path) }
            target = next
        }
        let rule = reserve("ref-" + (parts.last ?? "root"))
        refRules[ref] = rule
        let body = try visit(target, path: ref, name: rule + "-body")
        define(rule, body)
        return rule
    }

    /// A JSON value written exactly, as a GBNF literal.
    private static func literal(_ v: OrderedJSON) -> String { gbnfString(v.text) }

    /// `s` as a GBNF string literal.
    public static func gbnfString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }

    // MARK: objects

    private mutating func object(_ schema: OrderedJSON, path: String, name: String) throws(GrammarError) -> String {
        var required: Set<String> = []
        if let r = schema["required"] {
            guard case .array(let names) = r else { throw .invalidSchema("required must be an array", path: path) }
            for n in names {
                guard case .string(let s) = n else { throw .invalidSchema("required must list names", path: path) }
                required.insert(s)
            }
        }
        var props: [(String, OrderedJSON)] = []
        if let p = schema["properties"] {
            guard case .object(let m) = p else { throw .invalidSchema("properties must be an object", path: path) }
            props = m
        }
        for r in required where !props.contains(where: { $0.0 == r }) {
            // A required key with no schema of its own: any value (or what additionalProperties says).
            props.append((r, schema["additionalProperties"].flatMap { if case .object = $0 { $0 } else { nil } } ?? .bool(true)))
        }
        let ws = primitive("ws")
        if props.isEmpty {
            let extra = schema["additionalProperties"]
            if case .bool(false)? = extra { return add(name + "-empty", "\"{\" \(ws) \"}\"") }
            let valueRule: String
            if let extra, case .object = extra {
                valueRule = try visit(extra, path: "\(path).additionalProperties", name: name + "-extra")
            } else {
                valueRule = primitive("value")
            }
            let key = primitive("string")
            let kv = add(name + "-kv", "\(key) \":\" \(ws) \(valueRule) \(ws)")
            return add(name, "\"{\" \(ws) ( \(kv) (\",\" \(ws) \(kv))* )? \"}\"")
        }
        var kvs: [String] = []
        for (key, sub) in props {
            let value = try visit(sub, path: "\(path).properties.\(key)", name: "\(name)-\(key)")
            kvs.append(add("\(name)-\(key)-kv", "\(Self.gbnfString(OrderedJSON.quoted(key))) \(ws) \":\" \(ws) \(value) \(ws)"))
        }
        // rest(i, first): properties i… with a comma before each but the first written.
        var restFirst = "", restLater = ""   // "" = nothing left
        for i in stride(from: props.count - 1, through: 0, by: -1) {
            let isRequired = required.contains(props[i].0)
            let tailLater = restLater.isEmpty ? "" : " " + restLater
            let tailFirst = restFirst.isEmpty ? "" : " " + restFirst
            let withFirst = "\(kvs[i])\(tailLater)"
            let withLater = "\",\" \(ws) \(kvs[i])\(tailLater)"
            let newFirst: String, newLater: String
            if isRequired {
                newFirst = add("\(name)-from-\(i)", withFirst)
                newLater = add("\(name)-then-\(i)", withLater)
            } else {
                newFirst = add("\(name)-from-\(i)", restFirst.isEmpty ? "\(withFirst) | \"\"" : "\(withFirst) |\(tailFirst)")
                newLater = add("\(name)-then-\(i)", restLater.isEmpty ? "\(withLater) | \"\"" : "\(withLater) |\(tailLater)")
            }
            restFirst = newFirst; restLater = newLater
        }
        return add(name, "\"{\" \(ws) \(restFirst) \"}\"")
    }

    // MARK: arrays

    private mutating func array(_ schema: OrderedJSON, path: String, name: String) throws(GrammarError) -> String {
        let ws = primitive("ws")
        let minItems = try count(schema["minItems"], "minItems", path: path) ?? 0
        let maxItems = try count(schema["maxItems"], "maxItems", path: path)
        if let maxItems, maxItems < minItems { throw .invalidSchema("maxItems is below minItems", path: path) }
        var parts: [String] = []
        if let p = schema["prefixItems"] {
            guard case .array(let items) = p else { throw .invalidSchema("prefixItems must be an array", path: path) }
            for (i, s) in items.enumerated() { parts.append(try visit(s, path: "\(path).prefixItems[\(i)]", name: "\(name)-\(i)")) }
            if let maxItems, maxItems < parts.count { throw .unsupportedSchema(keyword: "maxItems below the prefixItems count", path: path) }
        }
        var item: String? = primitive("value")
        switch schema["items"] {
        case .bool(false)?: item = nil
        case .some(let s): item = try visit(s, path: "\(path).items", name: "\(name)-item")
        case nil: if !parts.isEmpty { item = nil }   // a tuple: exactly its items (more would still validate, but need not be written)
        }
        if item == nil, minItems > parts.count { throw .invalidSchema("minItems is more than the items allowed", path: path) }
        var body = "\"[\" \(ws)"
        var written = 0
        for p in parts {
            body += written == 0 ? " \(p) \(ws)" : " \",\" \(ws) \(p) \(ws)"
            written += 1
        }
        if let item {
            let more = max(0, minItems - written)
            let limit = maxItems.map { $0 - written }
            guard (limit ?? 0) <= GBNFParser.maxRepetition, more <= GBNFParser.maxRepetition else {
                throw .unsupportedSchema(keyword: "minItems/maxItems over \(GBNFParser.maxRepetition)", path: path)
            }
            let sepItem = "\",\" \(ws) \(item) \(ws)"
            if written > 0 {
                let rep = limit.map { "{\(more),\($0)}" } ?? (more == 0 ? "*" : "{\(more),}")
                if limit != 0 { body += " (\(sepItem))\(rep)" }
            } else {
                let firstItem = "\(item) \(ws)"
                let restMin = max(0, more - 1)
                let restRep = limit.map { "{\(restMin),\(max(restMin, $0 - 1))}" } ?? (restMin == 0 ? "*" : "{\(restMin),}")
                let seq = "\(firstItem) (\(sepItem))\(restRep)"
                if limit != 0 { body += more > 0 ? " \(seq)" : " (\(seq))?" }
            }
        }
        body += " \"]\""
        return add(name, body)
    }

    private func count(_ v: OrderedJSON?, _ key: String, path: String) throws(GrammarError) -> Int? {
        guard let v else { return nil }
        guard case .number(let d, _) = v, d >= 0, d == d.rounded(), d < 1e9 else { throw .invalidSchema("\(key) must be a non-negative integer", path: path) }
        return Int(d)
    }

    // MARK: strings

    private mutating func string(_ schema: OrderedJSON, path: String, name: String) throws(GrammarError) -> String {
        if let f = schema["format"] {
            guard case .string(let format) = f else { throw .invalidSchema("format must be a string", path: path) }
            guard let body = Self.formats[format] else { throw .unsupportedSchema(keyword: "format: \(format)", path: path) }
            if schema["pattern"] != nil || schema["minLength"] != nil || schema["maxLength"] != nil {
                throw .unsupportedSchema(keyword: "format with pattern or lengths", path: path)
            }
            return add("format-" + format, "\"\\\"\" \(body) \"\\\"\"")
        }
        if let p = schema["pattern"] {
            guard case .string(let pattern) = p else { throw .invalidSchema("pattern must be a string", path: path) }
            if schema["minLength"] != nil || schema["maxLength"] != nil {
                throw .unsupportedSchema(keyword: "pattern with minLength/maxLength", path: path)
            }
            let body = try RegexGrammar.gbnf(pattern)
            return add(name + "-pattern", "\"\\\"\" \(body) \"\\\"\"")
        }
        let minLength = try count(schema["minLength"], "minLength", path: path)
        let maxLength = try count(schema["maxLength"], "maxLength", path: path)
        guard minLength != nil || maxLength != nil else { return primitive("string") }
        let lo = minLength ?? 0
        if let maxLength, maxLength < lo { throw .invalidSchema("maxLength is below minLength", path: path) }
        guard max(lo, maxLength ?? 0) <= GBNFParser.maxRepetition else {
            throw .unsupportedSchema(keyword: "minLength/maxLength over \(GBNFParser.maxRepetition)", path: path)
        }
        _ = primitive("string")
        let rep = maxLength.map { "{\(lo),\($0)}" } ?? "{\(lo),}"
        return add(name + "-string", "\"\\\"\" char\(rep) \"\\\"\"")
    }

    private static let formats: [String: String] = {
        let date = #"[0-9]{4} "-" ( ("01" | "03" | "05" | "07" | "08" | "10" | "12") "-" ("0" [1-9] | [12] [0-9] | "3" [01]) | ("04" | "06" | "09" | "11") "-" ("0" [1-9] | [12] [0-9] | "30") | "02" "-" ("0" [1-9] | "1" [0-9] | "2" [0-8]) )"#
        let time = #"([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ("." [0-9]{1,6})? ("Z" | [+-] ([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9])"#
        let octet = #"("25" [0-5] | "2" [0-4] [0-9] | "1" [0-9] [0-9] | [1-9] [0-9] | [0-9])"#
        return [
            "date": date,
            "time": time,
            "date-time": "\(date) \"T\" \(time)",
            "uuid": #"[0-9a-f]{8} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{12}"#,
            "email": #"[a-zA-Z0-9_] [a-zA-Z0-9._+-]{0,63} "@" [a-zA-Z0-9] [a-zA-Z0-9-]{0,62} ("." [a-zA-Z0-9] [a-zA-Z0-9-]{0,62}){1,4}"#,
            "ipv4": "\(octet) \".\" \(octet) \".\" \(octet) \".\" \(octet)",
        ]
    }()

    // MARK: numbers

    /// A bound of `key` (and whether it is exclusive): `minimum` / `exclusiveMinimum` (a number, or draft 4's boolean).
    private func bound(_ schema: OrderedJSON, _ key: String, _ exclusiveKey: String, path: String) throws(GrammarError) -> (value: Double, exclusive: Bool, text: String)? {
        var result: (value: Double, exclusive: Bool, text: String)?
        if let v = schema[key] {
            guard case .number(let d, let t) = v else { throw .invalidSchema("\(key) must be a number", path: path) }
            result = (d, false, t)
            if case .bool(let ex)? = schema[exclusiveKey] { result = (d, ex, t) }
        }
        if case .number(let d, let t)? = schema[exclusiveKey] {
            let tighter = key == "minimum" ? d >= (result?.value ?? -.infinity) : d <= (result?.value ?? .infinity)
            if tighter { result = (d, true, t) }
        }
        if let r = result, abs(r.value) >= 1e15 { throw .unsupportedSchema(keyword: "\(key) beyond ±10^15", path: path) }
        return result
    }

    private mutating func integerBounds(_ schema: OrderedJSON, path: String) throws(GrammarError) -> (Int64?, Int64?) {
        var lo: Int64?, hi: Int64?
        if let (d, ex, _) = try bound(schema, "minimum", "exclusiveMinimum", path: path) {
            lo = Int64((ex && d == d.rounded()) ? d + 1 : d.rounded(.up))
        }
        if let (d, ex, _) = try bound(schema, "maximum", "exclusiveMaximum", path: path) {
            hi = Int64((ex && d == d.rounded()) ? d - 1 : d.rounded(.down))
        }
        if let lo, let hi, lo > hi { throw .invalidSchema("no integer lies within the bounds", path: path) }
        return (lo, hi)
    }

    private mutating func integer(_ schema: OrderedJSON, path: String, name: String) throws(GrammarError) -> String {
        let (lo, hi) = try integerBounds(schema, path: path)
        if lo == nil, hi == nil { return primitive("integer") }
        return add(name + "-int", IntegerRange.gbnf(lo: lo, hi: hi))
    }

    /// Numbers within bounds, written with at most 6 decimals and below 10^9 in magnitude, no exponent: every value
    /// K / 10^6 with K an integer between the bounds (taken exactly from the bounds' decimal text), so that what a
    /// client parses as a double is within them too.
    private mutating func number(_ schema: OrderedJSON, path: String, name: String) throws(GrammarError) -> String {
        let low = try bound(schema, "minimum", "exclusiveMinimum", path: path)
        let high = try bound(schema, "maximum", "exclusiveMaximum", path: path)
        if low == nil, high == nil { return primitive("number") }
        let limit = DecimalRange.limit
        var kLo = -limit, kHi = limit
        if let low {
            if let k = DecimalRange.scaled(low.text, roundUp: true) { kLo = max(kLo, low.exclusive && k.exact ? k.value + 1 : k.value) }
            else if low.value > 0 { throw .unsupportedSchema(keyword: "minimum of 10^9 or more for a number", path: path) }
        }
        if let high {
            if let k = DecimalRange.scaled(high.text, roundUp: false) { kHi = min(kHi, high.exclusive && k.exact ? k.value - 1 : k.value) }
            else if high.value < 0 { throw .unsupportedSchema(keyword: "maximum of -10^9 or less for a number", path: path) }
        }
        guard kLo <= kHi else { throw .invalidSchema("no number with at most 6 decimals lies within the bounds", path: path) }
        return add(name + "-num", DecimalRange.gbnf(kLo, kHi))
    }
}

/// GBNF for decimal numbers K / 10^6, K in [lo, hi]: an integer part without leading zeros and an optional fraction of
/// 1 to 6 digits; "-0" never.
enum DecimalRange {
    static let scale: Int64 = 1_000_000
    /// K beyond this (10^9 in value) is not written.
    static let limit: Int64 = 999_999_999_999_999

    /// `text` (a JSON number) × 10^6 rounded up or down to an integer, and whether no rounding was needed; nil for
    /// text that is not a number or a value beyond the limit.
    static func scaled(_ text: String, roundUp: Bool) -> (value: Int64, exact: Bool)? {
        var t = Substring(text.lowercased())
        var negative = false
        if t.hasPrefix("-") { negative = true; t = t.dropFirst() }
        var exponent = 0
        if let e = t.firstIndex(of: "e") {
            guard let x = Int(t[t.index(after: e)...]), abs(x) < 40 else { return nil }
            exponent = x
            t = t[..<e]
        }
        let parts = t.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, let whole = parts.first else { return nil }
        let fraction = parts.count == 2 ? parts[1] : ""
        var digits = Array((whole + fraction).utf8).map { Int64($0) - 48 }
        guard !digits.isEmpty, digits.allSatisfy({ (0...9).contains($0) }) else { return nil }
        // value = digits × 10^(exponent − fraction count); scaled: × 10^6.
        var shift = exponent - fraction.count + 6
        while digits.count > 1, digits[0] == 0 { digits.removeFirst() }
        var magnitude: Int64 = 0
        var remainder = false
        for (i, d) in digits.enumerated() {
            if shift < 0, i >= digits.count + shift { remainder = remainder || d != 0; continue }
            guard magnitude <= limit else { return nil }
            magnitude = magnitude * 10 + d
        }
        while shift > 0 { guard magnitude <= limit else { return nil }; magnitude *= 10; shift -= 1 }
        guard magnitude <= limit * 10 else { return nil }
        // Round the magnitude's value (magnitude + a fraction when `remainder`) with the sign in mind.
        let up = roundUp != negative   // rounding the signed value up rounds a negative magnitude down
        let m = remainder && up ? magnitude + 1 : magnitude
        return (negative ? -m : m, !remainder)
    }

    static func gbnf(_ lo: Int64, _ hi: Int64) -> String {
        var alts: [String] = []
        if hi >= 0 { alts += nonNegative(max(lo, 0), hi, allowZero: true) }
        if lo < 0 {
            // Negative values: "-" and a magnitude in [max(1, -hi), -lo].
            let neg = nonNegative(max(1, -hi), -lo, allowZero: false)
            if !neg.isEmpty { alts.append("\"-\" (" + neg.joined(separator: " | ") + ")") }
        }
        return alts.isEmpty ? "[^\\x00-\\U0010FFFF]" : alts.joined(separator: " | ")
    }

    /// Magnitudes M/10^6 with M in [a, b] (0 ≤ a ≤ b).
    static func nonNegative(_ a: Int64, _ b: Int64, allowZero: Bool) -> [String] {
        guard a <= b else { return [] }
        let ia = a / scale, fa = a % scale, ib = b / scale, fb = b % scale
        var alts: [String] = []
        func part(_ i: Int64, _ fLo: Int64, _ fHi: Int64) {
            // The integer `i` with a fraction in [fLo, fHi] (of 10^6); `i` alone when the fraction 0 is in range.
            let whole = IntegerRange.nonNegative(i, i)
            let zeroOK = fLo == 0 && (allowZero || i > 0)
            let fraction = fractions(fLo, fHi, allowAllZero: allowZero || i > 0)
            if zeroOK, let fraction { alts.append("\(whole) (\(fraction))?") }
            else if zeroOK { alts.append(whole) }
            else if let fraction { alts.append("\(whole) (\(fraction))") }
        }
        if ia == ib {
            part(ia, fa, fb)
        } else {
            part(ia, fa, scale - 1)
            if ia + 1 <= ib - 1 {
                let whole = IntegerRange.nonNegative(ia + 1, ib - 1)
                alts.append("(\(whole)) (\".\" [0-9]{1,6})?")
            }
            part(ib, 0, fb)
        }
        return alts
    }

    /// "." and 1 to 6 digits whose value × 10^6 is in [lo, hi]; nil when none is.
    static func fractions(_ lo: Int64, _ hi: Int64, allowAllZero: Bool) -> String? {
        var alts: [String] = []
        var step = scale
        for length in 1...6 {
            step /= 10
            // An L-digit fraction f stands for f × 10^(6−L).
            var fLo = (lo + step - 1) / step
            let fHi = hi / step
            if !allowAllZero { fLo = max(fLo, 1) }
            guard fLo <= fHi else { continue }
            func padded(_ v: Int64) -> [UInt8] {
                let s = String(v)
                return Array((String(repeating: "0", count: length - s.count) + s).utf8)
            }
            alts.append("\".\" (" + IntegerRange.sameLength(padded(fLo), padded(fHi)) + ")")
        }
        return alts.isEmpty ? nil : alts.joined(separator: " | ")
    }
}

/// GBNF for the decimal integers in [lo, hi] (either side open), written without leading zeros, "-0" never.
enum IntegerRange {
    /// The widest integer written: 16 digits.
    static let maxDigits = 16

    static func gbnf(lo: Int64?, hi: Int64?) -> String {
        var alts: [String] = []
        // Negatives: -x for x in [max(1, -hi), -lo].
        if lo.map({ $0 < 0 }) ?? true, hi.map({ $0 < 0 || true }) ?? true {
            let negHiAbs = lo.map { -$0 }          // nil: unbounded
            let negLoAbs = max(1, hi.map { -$0 } ?? 1)
            if negHiAbs.map({ $0 >= negLoAbs }) ?? true {
                alts.append("\"-\" (\(nonNegative(negLoAbs, negHiAbs)))")
            }
        }
        // Non-negatives in [max(0, lo), hi].
        let pLo = max(0, lo ?? 0)
        if hi.map({ $0 >= pLo }) ?? true {
            alts.append(nonNegative(pLo, hi))
        }
        return alts.isEmpty ? "\"\"" : alts.joined(separator: " | ")
    }

    /// [lo, hi] with 0 ≤ lo, hi nil for unbounded.
    static func nonNegative(_ lo: Int64, _ hi: Int64?) -> String {
        let loDigits = String(lo).count
        let hiDigits = hi.map { String($0).count } ?? maxDigits
        var alts: [String] = []
        for len in loDigits...max(loDigits, hiDigits) {
            let first: Int64 = len == 1 ? 0 : pow10(len - 1)
            let last: Int64 = pow10(len) - 1
            let a = max(lo, first), b = min(hi ?? last, last)
            if a > b { continue }
            alts.append(sameLength(Array(String(a).utf8), Array(String(b).utf8)))
        }
        return alts.joined(separator: " | ")
    }

    static func pow10(_ n: Int) -> Int64 { (0..<n).reduce(Int64(1)) { acc, _ in acc * 10 } }

    /// Digit strings of equal length between a and b (inclusive).
    static func sameLength(_ a: [UInt8], _ b: [UInt8]) -> String {
        if a.isEmpty { return "\"\"" }
        let d0 = Character(Unicode.Scalar(a[0])), e0 = Character(Unicode.Scalar(b[0]))
        let restA = Array(a.dropFirst()), restB = Array(b.dropFirst())
        if a.count == 1 { return a[0] == b[0] ? "\"\(d0)\"" : "[\(d0)-\(e0)]" }
        let allZero = restA.allSatisfy { $0 == UInt8(ascii: "0") }
        let allNine = restB.allSatisfy { $0 == UInt8(ascii: "9") }
        let any = "[0-9]{\(restA.count)}"
        if allZero && allNine { return a[0] == b[0] ? "\"\(d0)\" \(any)" : "[\(d0)-\(e0)] \(any)" }
        if a[0] == b[0] { return "\"\(d0)\" (\(sameLength(restA, restB)))" }
        var alts: [String] = []
        let nines = [UInt8](repeating: UInt8(ascii: "9"), count: restA.count)
        let zeros = [UInt8](repeating: UInt8(ascii: "0"), count: restB.count)
        if allZero {
            // a[0]…(b[0]-1) followed by anything, then b[0] with the rest up to restB.
            let upper = b[0] - 1
            alts.append(a[0] == upper ? "\"\(d0)\" \(any)" : "[\(d0)-\(Character(Unicode.Scalar(upper)))] \(any)")
        } else {
            alts.append("\"\(d0)\" (\(sameLength(restA, nines)))")
            if a[0] + 1 <= b[0] - 1 {
                let from = Character(Unicode.Scalar(a[0] + 1)), to = Character(Unicode.Scalar(b[0] - 1))
                alts.append(from == to ? "\"\(from)\" \(any)" : "[\(from)-\(to)] \(any)")
            }
        }
        alts.append(allNine ? "\"\(e0)\" \(any)" : "\"\(e0)\" (\(sameLength(zeros, restB)))")
        return alts.joined(separator: " | ")
    }
}
