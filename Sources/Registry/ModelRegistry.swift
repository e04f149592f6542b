import Core
import Foundation

/// One problem in a configuration file: where, and what was expected.
public struct ConfigIssue: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var path: String
    /// 1-based line in the file, where the parser knows it.
    public var line: Int?
    /// 1-based column, for syntax errors.
    public var column: Int?
    public var message: String
    public init(file: String, path: String, line: Int?, column: Int? = nil, message: String) {
        self.file = file; self.path = path; self.line = line; self.column = column; self.message = message
    }
    /// `file:line: key.path: message`, or for the file as a whole `file:line:col: message`.
    public var description: String {
        let place = file + (line.map { ":\($0)" } ?? "") + (column.map { ":\($0)" } ?? "")
        return path == "(file)" ? "\(place): \(message)" : "\(place): \(path): \(message)"
    }
}

public struct ConfigError: Error, CustomStringConvertible {
    public var issues: [ConfigIssue]
    public init(issues: [ConfigIssue]) { self.issues = issues }
    /// Every issue, by file (in the order the files are read) and line.
    public var description: String {
        var order: [String: Int] = [:]
        for i in issues where order[i.file] == nil { order[i.file] = order.count }
        let sorted = issues.enumerated().sorted { a, b in
            let ka = (order[a.element.file] ?? 0, a.element.line ?? Int.max, a.offset)
            let kb = (order[b.element.file] ?? 0, b.element.line ?? Int.max, b.offset)
            return ka < kb
        }.map(\.element)
        return "configuration has \(issues.count) error\(issues.count == 1 ? "" : "s"):\n" + sorted.map { "  " + $0.description }.joined(separator: "\n")
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
    /// LoRA adapters attached at load (ids in this order): GGUF adapter files or PEFT folders, each with the scale
    /// requests get unless they send their own `lora` list.
    public var adapters: [AdapterDeclaration] = []
    /// The file that declared it (the last layer wins).
    public var file: String
    public var line: Int? = nil
}

/// A LoRA adapter of a local model: a path (absolute, or in the model directory) and its default scale.
public struct AdapterDeclaration: Sendable, Equatable {
    public var path: String
    public var scale: Double
    public init(path: String, scale: Double = 1) { self.path = path; self.scale = scale }
}

/// The model registry: `models.yaml`, then `models.json`, then `user_models.json` from a configuration folder;
/// a later file's declaration of a name (model or provider) replaces an earlier one's.
///
/// ```yaml
/// providers:
///   upstream-a: { type: openai-compatible, base_url: http://127.0.0.1:9001/v1, api_key_env: A_KEY }
/// models:
///   smollm2:
///     provider: local              # the default
///     path: SmolLM2-135M-Instruct.Q4_1.gguf   # or: catalogue: smollm2
///     context_length: 2048
///     threads: 2
///     keep_alive: 10m
///     max_memory: 512M
///     defaults: { temperature: 0.7, top_p: 0.9, top_k: 40, max_tokens: 256 }
///     adapters: [support-lora.gguf, {path: ./tone-peft, scale: 0}]   # LoRA: ids 0, 1; scale 0 = off unless asked
///     fallbacks: [fast]            # tried when the local model fails
///   fast:
///     deployments: [ {provider: upstream-a, model: smollm2}, {provider: local, model: smollm2} ]
///     strategy: least-busy
/// ```
public struct ModelRegistry: Sendable {
    /// Local models: a name and its GGUF source.
    public var models: [String: ModelDeclaration]
    /// Upstreams, by name (`local` is implicit).
    public var providers: [ProviderID: ProviderDeclaration]
    /// Names served through deployments, fallbacks or both.
    public var routes: [String: RouteDeclaration]
    /// Other names for models, roles or `auto` (see `resolve`).
    public var aliases: [String: AliasDeclaration] = [:]
    /// Roles a request may name as `role:NAME`.
    public var roles: [String: RoleDeclaration] = [:]
    /// `routing.auto`, by task (`code`, `general`, `default`, …).
    public var autoRules: [String: AutoRule] = [:]
    /// What each model declares it offers (`context`, `tools`, `memory`), by model name.
    public var capabilities: [String: ModelCapabilities] = [:]
    /// Telegram bots, by name.
    public var telegram: [String: TelegramBotDeclaration] = [:]
    /// Model and route names in the order they were declared (file by file), for defaults such as "the first
    /// local model".
    public var order: [String] = []
    /// The profile merged over the files, if any, and its file.
    public var profile: String?
    public var profileFile: String?
    public var files: [String]

    public static let fileNames = ["models.yaml", "models.yml", "models.json", "user_models.json"]

    public init(models: [String: ModelDeclaration] = [:], providers: [ProviderID: ProviderDeclaration] = [:],
                routes: [String: RouteDeclaration] = [:], files: [String] = []) {
        self.models = models; self.providers = providers; self.routes = routes; self.files = files
    }

    /// What one file declares.
    public struct Layer: Sendable {
        public var models: [ModelDeclaration] = []
        public var providers: [ProviderDeclaration] = []
        public var routes: [RouteDeclaration] = []
        public var aliases: [AliasDeclaration] = []
        public var roles: [RoleDeclaration] = []
        public var autoRules: [AutoRule] = []
        public var capabilities: [String: ModelCapabilities] = [:]
        public var telegram: [TelegramBotDeclaration] = []
        /// Names under `models:`, in order.
        public var order: [String] = []
        public var issues: [ConfigIssue] = []
    }

    /// Reads every registry file present in `directory`; throws `ConfigError` listing every problem found.
    /// With `profile`, the file `NAME.yaml` in `profilesDirectory` (default: `profiles/` in `directory`) is merged
    /// over them (see `ModelRegistry+Profiles`).
    public static func load(directory: URL, profile: String? = nil, profilesDirectory: URL? = nil) throws -> ModelRegistry {
        if let profile {
            return try load(directory: directory, profile: profile, in: profilesDirectory ?? defaultProfilesDirectory(for: directory))
        }
        var registry = ModelRegistry()
        var issues: [ConfigIssue] = []
        for name in fileNames {
            let url = directory.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path) else { continue }
            registry.files.append(url.path)
            let layer = parse(file: url)
            issues += layer.issues
            registry.merge(layer)
        }
        issues += registry.crossCheck()
        if !issues.isEmpty { throw ConfigError(issues: issues) }
        return registry
    }

    /// Adds a later layer: each name it declares replaces the earlier declaration, whatever its kind.
    mutating func merge(_ layer: Layer) {
        for p in layer.providers { providers[p.id] = p }
        let declared = Set(layer.models.map(\.name) + layer.routes.map(\.name))
        for name in declared {
            models[name] = nil; routes[name] = nil; capabilities[name] = nil
            for (alias, a) in aliases where a.owner == name { aliases[alias] = nil }
        }
        for m in layer.models { models[m.name] = m }
        for r in layer.routes { routes[r.name] = r }
        for (name, c) in layer.capabilities where declared.contains(name) { capabilities[name] = c }
        for a in layer.aliases { aliases[a.name] = a }
        for r in layer.roles { roles[r.name] = r }
        for r in layer.autoRules { autoRules[r.task] = r }
        for b in layer.telegram { telegram[b.name] = b }
        for name in layer.order where declared.contains(name) && !order.contains(name) { order.append(name) }
    }

    /// Problems visible only once every file is read: deployments of providers no file declares; aliases that
    /// loop, hide a model or name an unknown role; roles and `routing.auto` rules that name unknown roles.
    func crossCheck() -> [ConfigIssue] {
        var issues: [ConfigIssue] = checkNames()
        let known = ([.local] + providers.keys.sorted()).map(\.rawValue)
        for route in routes.values.sorted(by: { $0.name < $1.name }) {
            for d in route.deployments where !d.provider.isLocal && providers[d.provider] == nil {
                issues.append(ConfigIssue(file: route.file, path: d.path, line: d.line,
                                          message: "unknown provider '\(d.provider)' (declared: \(known.joined(separator: ", ")))"))
            }
        }
        return issues
    }

    /// Parses one file, collecting every problem rather than stopping at the first.
    public static func parse(file url: URL) -> Layer {
        let file = url.path
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            return Layer(issues: [ConfigFileError.unreadable(url, error)])
        }
        let root: ConfigValue
        do {
            root = url.pathExtension == "json" ? try ConfigValue.parseJSON(text) : try ConfigValue.parseYAML(text)
        } catch {
            return Layer(issues: [ConfigFileError.syntax(url, error, text: text)])
        }
        return parse(root, file: file)
    }

    static func parse(_ root: ConfigValue, file: String) -> Layer {
        var layer = Layer()
        func issue(_ path: String, _ line: Int?, _ message: String) { layer.issues.append(ConfigIssue(file: file, path: path, line: line, message: message)) }
        if case .null = root { return layer }
        guard case .map(let top) = root else { issue("(root)", nil, "expected a mapping with a 'models' key, found \(root.kind)"); return layer }
        for entry in top {
            switch entry.key {
            case "providers":
                guard case .map(let providers) = entry.value else {
                    if case .null = entry.value { continue }
                    issue("providers", entry.line, "expected a mapping of provider names to settings, found \(entry.value.kind)")
                    continue
                }
                for p in providers {
                    if let declared = parseProvider(name: p.key, p.value, line: p.line, file: file, issue: issue) { layer.providers.append(declared) }
                }
            case "models":
                guard case .map(let models) = entry.value else {
                    if case .null = entry.value { continue }
                    issue("models", entry.line, "expected a mapping of model names to settings, found \(entry.value.kind)")
                    continue
                }
                for m in models {
                    let (value, aliases, capabilities) = extractModelExtras(name: m.key, m.value, line: m.line, file: file, issue: issue)
                    let (local, route) = parseModel(name: m.key, value, line: m.line, file: file, issue: issue)
                    if var local { local.line = m.line; layer.models.append(local) }
                    if let route { layer.routes.append(route) }
                    layer.order.append(m.key)
                    layer.aliases += aliases
                    if capabilities != ModelCapabilities() { layer.capabilities[m.key] = capabilities }
                }
            case "aliases":
                layer.aliases += parseAliases(entry.value, line: entry.line, file: file, issue: issue)
            case "roles":
                layer.roles += parseRoles(entry.value, line: entry.line, file: file, issue: issue)
            case "routing":
                layer.autoRules += parseRouting(entry.value, line: entry.line, file: file, issue: issue)
            case "telegram":
                layer.telegram += parseTelegram(entry.value, line: entry.line, file: file, issue: issue)
            case "description":
                if case .scalar = entry.value {} else if case .null = entry.value {} else {
                    issue("description", entry.line, "expected a line of text, found \(entry.value.kind)")
                }
            default:
                issue(entry.key, entry.line, "unknown key (expected: providers, models, aliases, roles, routing, telegram, description)")
            }
        }
        return layer
    }

    /// One entry under `models:`: a local model, a route, or a local model with fallbacks (both).
    static func parseModel(name: String, _ value: ConfigValue, line modelLine: Int?, file: String,
                           issue: (String, Int?, String) -> Void) -> (ModelDeclaration?, RouteDeclaration?) {
        let base = "models.\(name)"
        guard case .map(let fields) = value else {
            issue(base, modelLine, "expected a mapping of settings (path or catalogue, deployments, provider and model, …), found \(value.kind)")
            return (nil, nil)
        }
        var d = ModelDeclaration(name: name, source: "", file: file)
        var hasSource = false
        var provider: String?
        var upstreamModel: (name: String, path: String, line: Int?)?
        var deployments: [DeploymentDeclaration]?
        var strategy = RoutingStrategy.ordered
        var fallbacks: [String] = []
        var timeout: Double?
        var retries: Int?
        var localOnly: [(path: String, line: Int?)] = []
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
            case "context_length", "threads", "keep_alive", "max_memory", "defaults", "adapters": localOnly.append((path, line))
            default: break
            }
            switch f.key {
            case "provider": provider = string()
            case "model": if let m = string() { upstreamModel = (m, path, line) }
            case "deployments": deployments = parseDeployments(f.value, path: path, line: line, issue: issue)
            case "strategy":
                if case .scalar(let s, _) = f.value, let v = RoutingStrategy(rawValue: s) { strategy = v }
                else { issue(path, line, "expected one of \(RoutingStrategy.allCases.map(\.rawValue).joined(separator: ", ")), found \(f.value.kind)") }
            case "fallbacks": fallbacks = parseNames(f.value, path: path, line: line, issue: issue)
            case "timeout": timeout = parseTimeout(f.value, path: path, line: line, issue: issue)
            case "retries": retries = parseRetries(f.value, path: path, line: line, issue: issue)
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
            case "adapters": d.adapters = parseAdapters(f.value, path: path, line: line, issue: issue)
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
                issue(path, line, "unknown setting (expected: provider, path, catalogue, model, deployments, strategy, fallbacks, timeout, retries, context_length, threads, keep_alive, max_memory, defaults, adapters, aliases, context, tools, memory)")
            }
        }
        let isLocal = provider.map { ProviderID($0).isLocal } ?? true
        var planned: [DeploymentDeclaration]?
        var local: ModelDeclaration?
        if let deployments {
            if hasSource { issue(base, modelLine, "give either deployments or path/catalogue, not both") }
            if provider != nil || upstreamModel != nil { issue(base, modelLine, "give either deployments or provider and model, not both") }
            planned = deployments
        } else if hasSource {
            if !isLocal { issue("\(base).provider", modelLine, "path and catalogue are for local models; a model of provider '\(provider ?? "")' names its upstream model with 'model'") }
            if let m = upstreamModel { issue(m.path, m.line, "give either model or path/catalogue, not both") }
            local = d
            // A local model with fallbacks, a timeout or retries is also a route whose first deployment is itself.
            if !fallbacks.isEmpty || timeout != nil || retries != nil {
                planned = [DeploymentDeclaration(provider: .local, model: name, path: base, line: modelLine)]
            }
        } else if let m = upstreamModel {
            if let provider {
                planned = [DeploymentDeclaration(provider: ProviderID(provider), model: m.name, path: m.path, line: m.line)]
            } else if let single = splitDeployment(m.name) {
                planned = [DeploymentDeclaration(provider: single.provider, model: single.model, path: m.path, line: m.line)]
            } else {
                issue(m.path, m.line, "'\(m.name)' names no provider: write provider: NAME beside it, or model: PROVIDER/MODEL")
            }
        } else {
            issue(base, modelLine, "missing 'path' (a GGUF file name or path) or 'catalogue' (e.g. smollm2) for a local model, or 'deployments', or 'provider' and 'model'")
            return (d, nil)
        }
        if planned != nil, local == nil {
            for key in localOnly { issue(key.path, key.line, "applies only to local models (declared with path or catalogue)") }
        }
        if fallbacks.contains(name) { issue("\(base).fallbacks", modelLine, "'\(name)' cannot fall back to itself") }
        guard var planned else { return (local, nil) }
        for i in planned.indices {
            planned[i].timeoutSeconds = planned[i].timeoutSeconds ?? timeout
            planned[i].retries = planned[i].retries ?? retries
        }
        return (local, RouteDeclaration(name: name, deployments: planned, strategy: strategy, fallbacks: fallbacks, file: file, line: modelLine))
    }

    public static func seconds(_ s: String) -> Double? { Units.seconds(s) }
    public static func bytes(_ s: String) -> Int? { Units.bytes(s) }
}
