/// Why a grammar or a JSON Schema could not be turned into a constraint. Every case names the place in the input.
public enum GrammarError: Error, Sendable, Equatable, CustomStringConvertible {
    /// GBNF text that does not parse: what was expected, at 1-based line and column.
    case syntax(String, line: Int, column: Int)
    /// A rule used but never defined.
    case undefinedRule(String)
    /// A rule defined twice.
    case duplicateRule(String)
    /// No `root` rule.
    case missingRoot
    /// A rule that can reach itself without consuming a character (the matcher would never stop expanding it).
    case leftRecursion(String)
    /// A GBNF feature this engine does not provide (token references `<…>`), named.
    case unsupported(String)
    /// The grammar is larger than the engine accepts (rules, elements, repetition counts).
    case tooLarge(String)
    /// A JSON Schema keyword or value that cannot be enforced: the keyword and where it is (`$.properties.age`).
    case unsupportedSchema(keyword: String, path: String)
    /// A JSON Schema that is not valid JSON Schema (a wrong type for a keyword, a `$ref` that leads nowhere).
    case invalidSchema(String, path: String)
    /// A `pattern` that is not a regular expression this engine can turn into a grammar.
    case invalidPattern(String, pattern: String)

    public var description: String {
        switch self {
        case .syntax(let what, let line, let column): "grammar: \(what) at line \(line), column \(column)"
        case .undefinedRule(let name): "grammar: rule '\(name)' is used but not defined"
        case .duplicateRule(let name): "grammar: rule '\(name)' is defined twice"
        case .missingRoot: "grammar: no 'root' rule"
        case .leftRecursion(let name): "grammar: rule '\(name)' is left-recursive (it can reach itself without consuming a character)"
        case .unsupported(let what): "grammar: \(what) is not supported"
        case .tooLarge(let what): "grammar: too large (\(what))"
        case .unsupportedSchema(let keyword, let path): "JSON Schema: '\(keyword)' at \(path) is not supported"
        case .invalidSchema(let why, let path): "JSON Schema: \(why) at \(path)"
        case .invalidPattern(let why, let pattern): "JSON Schema: pattern /\(pattern)/: \(why)"
        }
    }
}
