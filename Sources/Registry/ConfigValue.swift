import Foundation
import Yams

/// A configuration document as a tree, from YAML or JSON, with the line each value came from (YAML only).
public indirect enum ConfigValue: Sendable, Equatable {
    case map([(key: String, value: ConfigValue, line: Int?)])
    case list([ConfigValue])
    case scalar(String, line: Int?)
    case null

    public static func == (a: ConfigValue, b: ConfigValue) -> Bool {
        switch (a, b) {
        case (.null, .null): true
        case (.scalar(let x, _), .scalar(let y, _)): x == y
        case (.list(let x), .list(let y)): x == y
        case (.map(let x), .map(let y)): x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: false
        }
    }

    var kind: String {
        switch self {
        case .map: "a mapping"
        case .list: "a list"
        case .scalar(let s, _): "'\(s)'"
        case .null: "nothing"
        }
    }

    var line: Int? {
        if case .scalar(_, let l) = self { return l }
        return nil
    }

    /// Parses YAML (a superset of JSON) keeping line numbers.
    public static func parseYAML(_ text: String) throws -> ConfigValue {
        guard let node = try Yams.compose(yaml: text) else { return .null }
        return convert(node)
    }

    private static func convert(_ node: Node) -> ConfigValue {
        switch node {
        case .scalar(let s):
            if s.style == .plain, ["", "~", "null", "Null", "NULL"].contains(s.string) { return .null }
            return .scalar(s.string, line: node.mark.map { $0.line })
        case .mapping(let m):
            return .map(m.map { (key: $0.key.string ?? "\($0.key)", value: convert($0.value), line: $0.key.mark.map { $0.line }) })
        case .sequence(let seq):
            return .list(seq.map(convert))
        case .alias:
            return .null
        }
    }

    /// Parses JSON (through the YAML parser: JSON documents are YAML, and so keep their line numbers too).
    public static func parseJSON(_ text: String) throws -> ConfigValue { try parseYAML(text) }
}
