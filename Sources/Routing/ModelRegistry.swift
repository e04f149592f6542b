import Core
import Foundation

/// One problem in a configuration file: where, and what was expected.
public struct ConfigIssue: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var path: String
    /// 1-based line in the file, where the parser knows it.
    public var line: Int?
    public var message: String
    public var description: String { "\(file)\(line.map { ":\($0)" } ?? ""): \(path): \(message)" }
}

public struct ConfigError: Error, CustomStringConvertible {
    public var issues: [ConfigIssue]
    public var description: String {
        "configuration has \(issues.count) error\(issues.count == 1 ? "" : "s"):\n" + issues.map { "  " + $0.description }.joined(separator: "\n")
    }
}

/// A model declared in configuration.
public struct ModelDeclaration: Sendable, Equatable {
    public var name: String
    /// A catalogue name (`smollm2`) or a GGUF file name or path.
    public var source: String
    public var contextLength: Int?
    public var threads: Int?
    public var keepAliveSeconds: Double?
    public var maxMemoryBytes: Int?
    /// Default sampling for requests that do not set it.
    public var temperature: Double?
    public var topP: Double?
    public var topK: Int?
    public var maxTokens: Int?
    /// The file that declared it (the last layer wins).
    public var file: String
}

/// The model registry: `models.yaml`, then `models.json`, then `user_models.json` from a configuration folder;
/// a later file's declaration of a name replaces an earlier one's.
///
/// ```yaml
/// models:
///   smollm2:
///     provider: local              # the only provider so far
///     path: SmolLM2-135M-Instruct.Q4_1.gguf   # or: catalogue: smollm2
///     context_length: 2048
///     threads: 2
///     keep_alive: 10m
///     max_memory: 512M
///     defaults: { temperature: 0.7, top_p: 0.9, top_k: 40, max_tokens: 256 }
/// ```
public struct ModelRegistry: Sendable {
    public var models: [String: ModelDeclaration]
    public var files: [String]

    public static let fileNames = ["models.yaml", "models.yml", "models.json", "user_models.json"]

    /// Reads every registry file present in `directory`; throws `ConfigError` listing every problem found.
    public static func load(directory: URL) throws -> ModelRegistry {
        var models: [String: ModelDeclaration] = [:]
        var files: [String] = []
        var issues: [ConfigIssue] = []
        for name in fileNames {
            let url = directory.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path) else { continue }
            files.append(url.path)
            let (found, problems) = parse(file: url)
            issues += problems
            for m in found { models[m.name] = m }
        }
        if !issues.isEmpty { throw ConfigError(issues: issues) }
        return ModelRegistry(models: models, files: files)
    }

    /// Parses one file, collecting every problem rather than stopping at the first.
    public static func parse(file url: URL) -> ([ModelDeclaration], [ConfigIssue]) {
        let file = url.path
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            return ([], [ConfigIssue(file: file, path: "(file)", line: nil, message: "cannot be read: \(error.localizedDescription)")])
        }
        let root: ConfigValue
        do {
            root = url.pathExtension == "json" ? try ConfigValue.parseJSON(text) : try ConfigValue.parseYAML(text)
        } catch {
            return ([], [ConfigIssue(file: file, path: "(file)", line: nil, message: "is not valid \(url.pathExtension == "json" ? "JSON" : "YAML"): \(error)")])
        }
        return parse(root, file: file)
    }

    static func parse(_ root: ConfigValue, file: String) -> ([ModelDeclaration], [ConfigIssue]) {
        var issues: [ConfigIssue] = []
        func issue(_ path: String, _ line: Int?, _ message: String) { issues.append(ConfigIssue(file: file, path: path, line: line, message: message)) }
        if case .null = root { return ([], []) }
        guard case .map(let top) = root else { issue("(root)", nil, "expected a mapping with a 'models' key, found \(root.kind)"); return ([], issues) }
        var out: [ModelDeclaration] = []
        for entry in top {
            guard entry.key == "models" else {
                issue(entry.key, entry.line, "unknown key (expected: models)")
                continue
            }
            guard case .map(let models) = entry.value else {
                if case .null = entry.value { continue }
                issue("models", entry.line, "expected a mapping of model names to settings, found \(entry.value.kind)")
                continue
            }
            for m in models {
                let base = "models.\(m.key)"
                guard case .map(let fields) = m.value else {
                    issue(base, m.line, "expected a mapping of settings (path or catalogue, context_length, …), found \(m.value.kind)")
                    continue
                }
                var d = ModelDeclaration(name: m.key, source: "", file: file)
                var hasSource = false
                for f in fields {
                    let path = "\(base).\(f.key)", line = f.line ?? f.value.line
                    func string() -> String? {
                        if case .scalar(let s, _) = f.value, !s.isEmpty { return s }
                        issue(path, line, "expected a non-empty string, found \(f.value.kind)"); return nil
                    }
                    func positiveInt() -> Int? {
                        if case .scalar(let s, _) = f.value, let v = Int(s), v > 0 { return v }
                        issue(path, line, "expected a positive integer, found \(f.value.kind)"); return nil
                    }
                    switch f.key {
                    case "provider":
                        if let p = string(), p != "local" { issue(path, line, "expected 'local' (the only provider so far), found '\(p)'") }
                    case "path", "catalogue", "file":
                        if hasSource { issue(path, line, "give one of path or catalogue, not both") }
                        if let s = string() { d.source = s; hasSource = true }
                    case "context_length": d.contextLength = positiveInt()
                    case "threads": d.threads = positiveInt()
                    case "keep_alive":
                        if case .scalar(let s, _) = f.value, let v = Self.seconds(s) { d.keepAliveSeconds = v }
                        else { issue(path, line, "expected a duration such as 300, 5m, 1h or -1, found \(f.value.kind)") }
                    case "max_memory":
                        if case .scalar(let s, _) = f.value, let v = Self.bytes(s) { d.maxMemoryBytes = v }
                        else { issue(path, line, "expected a size such as 512M or 4G, found \(f.value.kind)") }
                    case "defaults":
                        guard case .map(let defaults) = f.value else { issue(path, line, "expected a mapping of sampling defaults, found \(f.value.kind)"); continue }
                        for s in defaults {
                            let p = "\(path).\(s.key)", l = s.line ?? s.value.line
                            let number: Double? = if case .scalar(let v, _) = s.value { Double(v) } else { nil }
                            switch s.key {
                            case "temperature":
                                if let n = number, (0...2).contains(n) { d.temperature = n } else { issue(p, l, "expected a number from 0 to 2, found \(s.value.kind)") }
                            case "top_p":
                                if let n = number, (0...1).contains(n) { d.topP = n } else { issue(p, l, "expected a number from 0 to 1, found \(s.value.kind)") }
                            case "top_k":
                                if let n = number, n >= 0, n == n.rounded() { d.topK = Int(n) } else { issue(p, l, "expected a whole number ≥ 0, found \(s.value.kind)") }
                            case "max_tokens":
                                if let n = number, n >= 1, n == n.rounded() { d.maxTokens = Int(n) } else { issue(p, l, "expected a whole number ≥ 1, found \(s.value.kind)") }
                            default:
                                issue(p, l, "unknown sampling default (expected: temperature, top_p, top_k, max_tokens)")
                            }
                        }
                    default:
                        issue(path, line, "unknown setting (expected: provider, path, catalogue, context_length, threads, keep_alive, max_memory, defaults)")
                    }
                }
                if !hasSource { issue(base, m.line, "missing 'path' (a GGUF file name or path) or 'catalogue' (e.g. smollm2)") }
                out.append(d)
            }
        }
        return (out, issues)
    }

    public static func seconds(_ s: String) -> Double? { Units.seconds(s) }
    public static func bytes(_ s: String) -> Int? { Units.bytes(s) }
}
