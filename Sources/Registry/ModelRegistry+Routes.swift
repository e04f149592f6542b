import Core
import Foundation

/// Parsing of `providers:` and of the routing keys of `models:` (deployments, fallbacks, timeouts, retries).
extension ModelRegistry {
    typealias Report = (String, Int?, String) -> Void

    /// `provider/model` → its parts; the model part may itself contain slashes (`openrouter/meta-llama/llama-3`).
    static func splitDeployment(_ s: String) -> DeploymentKey? { DeploymentKey(parsing: s) }

    /// `deployments:` — a list of `{provider, model, timeout, retries}` mappings or `provider/model` strings.
    static func parseDeployments(_ value: ConfigValue, path: String, line: Int?, issue: Report) -> [DeploymentDeclaration] {
        guard case .list(let items) = value, !items.isEmpty else {
            issue(path, line, "expected a non-empty list of deployments ({provider: NAME, model: MODEL} or PROVIDER/MODEL), found \(value.kind)")
            return []
        }
        var out: [DeploymentDeclaration] = []
        for (i, item) in items.enumerated() {
            let p = "\(path)[\(i)]"
            switch item {
            case .scalar(let s, let l):
                if let parts = splitDeployment(s) {
                    out.append(DeploymentDeclaration(provider: parts.provider, model: parts.model, path: p, line: l ?? line))
                } else {
                    issue(p, l ?? line, "expected PROVIDER/MODEL or {provider: NAME, model: MODEL}, found '\(s)'")
                }
            case .map(let fields):
                var d = DeploymentDeclaration(provider: "", model: "", path: p, line: fields.first?.line ?? line)
                for f in fields {
                    let fp = "\(p).\(f.key)", fl = f.line ?? f.value.line
                    switch f.key {
                    case "provider", "model":
                        guard case .scalar(let s, _) = f.value, !s.isEmpty else { issue(fp, fl, "expected a non-empty string, found \(f.value.kind)"); continue }
                        if f.key == "provider" { d.provider = ProviderID(s) } else { d.model = s }
                    case "timeout": d.timeoutSeconds = parseTimeout(f.value, path: fp, line: fl, issue: issue)
                    case "retries": d.retries = parseRetries(f.value, path: fp, line: fl, issue: issue)
                    case "weight":
                        if case .scalar(let s, _) = f.value, let w = Double(s), w > 0, w.isFinite { d.weight = w }
                        else { issue(fp, fl, "expected a positive number (a share of first picks under strategy: weighted), found \(f.value.kind)") }
                    default: issue(fp, fl, "unknown deployment setting (expected: provider, model, timeout, retries, weight)")
                    }
                }
                if d.provider.rawValue.isEmpty, let parts = splitDeployment(d.model) { d.provider = parts.provider; d.model = parts.model }
                if d.provider.rawValue.isEmpty { issue(p, d.line, "missing 'provider' (local or a name under providers:)") }
                if d.model.isEmpty { issue(p, d.line, "missing 'model' (the name the provider knows the model by)") }
                if !d.provider.rawValue.isEmpty && !d.model.isEmpty { out.append(d) }
            default:
                issue(p, line, "expected PROVIDER/MODEL or {provider: NAME, model: MODEL}, found \(item.kind)")
            }
        }
        return out
    }

    /// `fallbacks:` — public model names, as a list or one name.
    static func parseNames(_ value: ConfigValue, path: String, line: Int?, issue: Report) -> [String] {
        switch value {
        case .scalar(let s, _) where !s.isEmpty: return [s]
        case .list(let items):
            var out: [String] = []
            for (i, item) in items.enumerated() {
                if case .scalar(let s, _) = item, !s.isEmpty { out.append(s) }
                else { issue("\(path)[\(i)]", item.line ?? line, "expected a model name, found \(item.kind)") }
            }
            return out
        default:
            issue(path, line, "expected a list of model names, found \(value.kind)")
            return []
        }
    }

    /// true/yes/on or false/no/off.
    static func bool(_ s: String) -> Bool? {
        ["true": true, "yes": true, "on": true, "false": false, "no": false, "off": false][s.lowercased()]
    }

    static func parseTimeout(_ value: ConfigValue, path: String, line: Int?, issue: Report) -> Double? {
        if case .scalar(let s, _) = value, let v = seconds(s), v > 0, v <= 86_400 { return v }
        issue(path, line, "expected a duration such as 500ms, 30s or 2m, found \(value.kind)")
        return nil
    }

    static func parseRetries(_ value: ConfigValue, path: String, line: Int?, issue: Report) -> Int? {
        if case .scalar(let s, _) = value, let v = Int(s), (0...10).contains(v) { return v }
        issue(path, line, "expected a whole number from 0 to 10, found \(value.kind)")
        return nil
    }

    /// One entry under `providers:`.
    static func parseProvider(name: String, _ value: ConfigValue, line: Int?, file: String, issue: Report) -> ProviderDeclaration? {
        let base = "providers.\(name)"
        guard !ProviderID(name).isLocal else { issue(base, line, "'local' is the built-in engine and cannot be declared"); return nil }
        guard case .map(let fields) = value else {
            issue(base, line, "expected a mapping of settings (type, base_url, api_key_env, headers), found \(value.kind)")
            return nil
        }
        var kind: ProviderDeclaration.Kind?
        var baseURL: String?
        var p = ProviderDeclaration(name: name, kind: .openAICompatible, baseURL: "", apiKeyEnv: nil, headers: [:],
                                    breaker: BreakerSettings(), file: file, line: line)
        var ok = true
        for f in fields {
            let path = "\(base).\(f.key)", l = f.line ?? f.value.line
            func string() -> String? {
                if case .scalar(let s, _) = f.value, !s.isEmpty { return s }
                issue(path, l, "expected a non-empty string, found \(f.value.kind)"); ok = false; return nil
            }
            switch f.key {
            case "type":
                guard let s = string() else { continue }
                if let k = ProviderDeclaration.Kind(rawValue: s) { kind = k }
                else {
                    issue(path, l, "provider type '\(s)' is not supported (supported: \(ProviderDeclaration.Kind.allCases.map(\.rawValue).joined(separator: ", ")))")
                    ok = false
                }
            case "base_url":
                guard let s = string() else { continue }
                let trimmed = s.hasSuffix("/") ? String(s.dropLast()) : s
                if let url = URL(string: trimmed), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil {
                    baseURL = trimmed
                } else {
                    issue(path, l, "expected an http:// or https:// URL such as http://127.0.0.1:9001/v1, found '\(s)'"); ok = false
                }
            case "api_key_env": p.apiKeyEnv = string()
            case "free_only", "local":
                guard let s = string() else { continue }
                if let b = bool(s) { if f.key == "local" { p.local = b } else { p.freeOnly = b } }
                else { issue(path, l, "expected true or false, found '\(s)'"); ok = false }
            case "headers":
                guard case .map(let headers) = f.value else { issue(path, l, "expected a mapping of header names to values, found \(f.value.kind)"); ok = false; continue }
                for h in headers {
                    if case .scalar(let v, _) = h.value, !h.key.isEmpty, !v.contains("\n"), !v.contains("\r") { p.headers[h.key] = v }
                    else { issue("\(path).\(h.key)", h.line ?? h.value.line, "expected a one-line string, found \(h.value.kind)"); ok = false }
                }
            case "breaker":
                guard case .map(let settings) = f.value else { issue(path, l, "expected {failures: 5, window: 60s, cooldown: 30s}, found \(f.value.kind)"); ok = false; continue }
                for s in settings {
                    let sp = "\(path).\(s.key)", sl = s.line ?? s.value.line
                    let text: String? = if case .scalar(let v, _) = s.value { v } else { nil }
                    switch s.key {
                    case "failures":
                        if let n = text.flatMap({ Int($0) }), n >= 1 { p.breaker.failures = n } else { issue(sp, sl, "expected a whole number ≥ 1, found \(s.value.kind)"); ok = false }
                    case "window", "cooldown":
                        if let v = text.flatMap({ seconds($0) }), v > 0 {
                            let d = Duration.milliseconds(Int64(v * 1000))
                            if s.key == "window" { p.breaker.window = d } else { p.breaker.cooldown = d }
                        } else { issue(sp, sl, "expected a duration such as 30s or 2m, found \(s.value.kind)"); ok = false }
                    default: issue(sp, sl, "unknown breaker setting (expected: failures, window, cooldown)"); ok = false
                    }
                }
            default:
                issue(path, l, "unknown setting (expected: type, base_url, api_key_env, headers, breaker, free_only, local)"); ok = false
            }
        }
        let types = ProviderDeclaration.Kind.allCases.map(\.rawValue).joined(separator: ", ")
        if kind == nil, ok { issue(base, line, "missing 'type' (\(types))"); ok = false }
        if p.freeOnly, let kind, kind != .openrouter, ok { issue(base, line, "'free_only' applies to type openrouter only"); ok = false }
        if baseURL == nil { baseURL = kind?.defaultBaseURL }
        if baseURL == nil, ok { issue(base, line, "missing 'base_url' (e.g. http://127.0.0.1:9001/v1)"); ok = false }
        // Declared even when broken (the issues above fail the load), so its deployments are not reported again.
        p.kind = kind ?? .openAICompatible
        p.baseURL = baseURL ?? ""
        return p
    }
}

extension ModelRegistry {
    /// `adapters: [a.gguf, {path: ./peft-folder, scale: 0.5}]`: LoRA adapters of a local model, ids in list order.
    static func parseAdapters(_ value: ConfigValue, path: String, line: Int?, issue: Report) -> [AdapterDeclaration] {
        guard case .list(let items) = value else {
            issue(path, line, "expected a list of adapters (a path, or {path, scale}), found \(value.kind)")
            return []
        }
        var out: [AdapterDeclaration] = []
        for (i, item) in items.enumerated() {
            let p = "\(path)[\(i)]", l = item.line ?? line
            switch item {
            case .scalar(let s, _) where !s.isEmpty:
                out.append(AdapterDeclaration(path: s))
            case .map(let fields):
                var a = AdapterDeclaration(path: "")
                for f in fields {
                    let fp = "\(p).\(f.key)", fl = f.line ?? f.value.line ?? l
                    switch f.key {
                    case "path":
                        if case .scalar(let s, _) = f.value, !s.isEmpty { a.path = s } else { issue(fp, fl, "expected a path, found \(f.value.kind)") }
                    case "scale":
                        if case .scalar(let s, _) = f.value, let v = Double(s), v.isFinite, abs(v) <= 1e6 { a.scale = v }
                        else { issue(fp, fl, "expected a number, found \(f.value.kind)") }
                    default:
                        issue(fp, fl, "unknown adapter setting (expected: path, scale)")
                    }
                }
                if a.path.isEmpty { issue(p, l, "an adapter needs a path") } else { out.append(a) }
            default:
                issue(p, l, "expected a path or {path, scale}, found \(item.kind)")
            }
        }
        return out
    }
}
