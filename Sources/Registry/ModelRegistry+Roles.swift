import Core
import Foundation

/// Parsing and checking of `aliases:`, `roles:`, `routing:` and the capability keys of `models:` (`aliases`,
/// `context`, `tools`, `memory`).
extension ModelRegistry {
    /// The prefix of a role's name in a request's `model`.
    public static let rolePrefix = "role:"
    /// The model name that routes by task.
    public static let autoName = "auto"

    /// Removes the keys of a model entry that are not about how it is served (`aliases`, `context`, `tools`,
    /// `memory`) and parses them; the rest goes to `parseModel`.
    static func extractModelExtras(name: String, _ value: ConfigValue, line: Int?, file: String,
                                   issue: Report) -> (ConfigValue, [AliasDeclaration], ModelCapabilities) {
        guard case .map(let fields) = value else { return (value, [], ModelCapabilities()) }
        let extras: Set<String> = ["aliases", "context", "tools", "memory"]
        var aliases: [AliasDeclaration] = []
        var caps = ModelCapabilities()
        var rest: [(key: String, value: ConfigValue, line: Int?)] = []
        for f in fields {
            guard extras.contains(f.key) else { rest.append(f); continue }
            let path = "models.\(name).\(f.key)", l = f.line ?? f.value.line ?? line
            let text: String? = if case .scalar(let s, _) = f.value { s } else { nil }
            switch f.key {
            case "aliases":
                let items: [ConfigValue] = if case .list(let xs) = f.value { xs } else { [f.value] }
                for (i, item) in items.enumerated() {
                    let p = items.count == 1 && !(f.value.isList) ? path : "\(path)[\(i)]"
                    if case .scalar(let s, let il) = item, isReserved(s) {
                        issue(p, il ?? l, reservedMessage(s))
                    } else if case .scalar(let s, let il) = item, !s.isEmpty {
                        aliases.append(AliasDeclaration(name: s, target: name, owner: name, file: file, path: p, line: il ?? l))
                    } else {
                        issue(p, item.line ?? l, "expected an alias name, found \(item.kind)")
                    }
                }
            case "context":
                if let t = text, let n = Int(t), n > 0 { caps.context = n } else { issue(path, l, "expected a context length in tokens such as 8192, found \(f.value.kind)") }
            case "tools":
                if let t = text, let b = bool(t) { caps.tools = b } else { issue(path, l, "expected true or false, found \(f.value.kind)") }
            default:   // memory
                if let t = text, let b = bytes(t), b > 0 { caps.memoryBytes = b } else { issue(path, l, "expected a size such as 512M or 4G, found \(f.value.kind)") }
            }
        }
        return (.map(rest), aliases, caps)
    }

    /// `aliases: { NAME: TARGET }`.
    static func parseAliases(_ value: ConfigValue, line: Int?, file: String, issue: Report) -> [AliasDeclaration] {
        if case .null = value { return [] }
        guard case .map(let entries) = value else {
            issue("aliases", line, "expected a mapping of alias names to model names, found \(value.kind)")
            return []
        }
        var out: [AliasDeclaration] = []
        for e in entries {
            let path = "aliases.\(e.key)", l = e.line ?? e.value.line
            if isReserved(e.key) { issue(path, l, reservedMessage(e.key)); continue }
            if case .scalar(let target, _) = e.value, !target.isEmpty, !e.key.isEmpty {
                out.append(AliasDeclaration(name: e.key, target: target, owner: nil, file: file, path: path, line: l))
            } else {
                issue(path, l, "expected the name of a model, a role (role:NAME) or auto, found \(e.value.kind)")
            }
        }
        return out
    }

    /// `roles: { NAME: { prefer: [...], requires: {...} } }`.
    static func parseRoles(_ value: ConfigValue, line: Int?, file: String, issue: Report) -> [RoleDeclaration] {
        if case .null = value { return [] }
        guard case .map(let entries) = value else {
            issue("roles", line, "expected a mapping of role names to {prefer: [...], requires: {...}}, found \(value.kind)")
            return []
        }
        var out: [RoleDeclaration] = []
        for e in entries {
            let base = "roles.\(e.key)", roleLine = e.line ?? e.value.line
            guard isPlainName(e.key) else {
                issue(base, roleLine, "a role name takes letters, digits, '.', '_' and '-' only"); continue
            }
            // A bare list is the preference list.
            let fields: [(key: String, value: ConfigValue, line: Int?)]
            switch e.value {
            case .map(let f): fields = f
            case .list: fields = [("prefer", e.value, roleLine)]
            default:
                issue(base, roleLine, "expected {prefer: [models…], requires: {…}}, found \(e.value.kind)"); continue
            }
            var role = RoleDeclaration(name: e.key, prefer: [], file: file, line: roleLine)
            var hasPrefer = false
            for f in fields {
                let path = "\(base).\(f.key)", l = f.line ?? f.value.line ?? roleLine
                switch f.key {
                case "prefer":
                    hasPrefer = true
                    role.prefer = parseNames(f.value, path: path, line: l, issue: issue)
                    if role.prefer.isEmpty, case .list = f.value { issue(path, l, "expected at least one model name") }
                case "requires":
                    role.requires = parseRequirements(f.value, path: path, line: l, issue: issue)
                case "description":
                    if case .scalar = f.value {} else { issue(path, l, "expected a line of text, found \(f.value.kind)") }
                default:
                    issue(path, l, "unknown role setting (expected: prefer, requires, description)")
                }
            }
            if !hasPrefer { issue(base, roleLine, "missing 'prefer' (the models this role may use, best first)") }
            out.append(role)
        }
        return out
    }

    static func parseRequirements(_ value: ConfigValue, path: String, line: Int?, issue: Report) -> RoleDeclaration.Requirements {
        var r = RoleDeclaration.Requirements()
        if case .null = value { return r }
        guard case .map(let fields) = value else {
            issue(path, line, "expected {context: 8192, tools: true, local_only: true, max_memory: 4G}, found \(value.kind)")
            return r
        }
        for f in fields {
            let p = "\(path).\(f.key)", l = f.line ?? f.value.line ?? line
            let text: String? = if case .scalar(let s, _) = f.value { s } else { nil }
            switch f.key {
            case "context":
                if let t = text, let n = Int(t), n > 0 { r.context = n } else { issue(p, l, "expected a context length in tokens such as 8192, found \(f.value.kind)") }
            case "tools", "local_only":
                guard let t = text, let b = bool(t) else { issue(p, l, "expected true or false, found \(f.value.kind)"); continue }
                if f.key == "tools" { r.tools = b } else { r.localOnly = b }
            case "max_memory":
                if let t = text, let b = bytes(t), b > 0 { r.maxMemoryBytes = b } else { issue(p, l, "expected a size such as 512M or 4G, found \(f.value.kind)") }
            default:
                issue(p, l, "unknown requirement (expected: context, tools, local_only, max_memory)")
            }
        }
        return r
    }

    /// `routing: { auto: { TASK: MODEL, default: MODEL } }`.
    static func parseRouting(_ value: ConfigValue, line: Int?, file: String, issue: Report) -> [AutoRule] {
        if case .null = value { return [] }
        guard case .map(let fields) = value else {
            issue("routing", line, "expected a mapping such as {auto: {code: MODEL, general: MODEL}}, found \(value.kind)")
            return []
        }
        var out: [AutoRule] = []
        for f in fields {
            let path = "routing.\(f.key)", l = f.line ?? f.value.line ?? line
            guard f.key == "auto" else { issue(path, l, "unknown routing setting (expected: auto)"); continue }
            if case .null = f.value { continue }
            guard case .map(let rules) = f.value else {
                issue(path, l, "expected a mapping of tasks to models such as {code: smollm2, general: smart, default: fast}, found \(f.value.kind)")
                continue
            }
            for rule in rules {
                let p = "\(path).\(rule.key)", rl = rule.line ?? rule.value.line ?? l
                guard isTaskName(rule.key) else {
                    issue(p, rl, "a task name takes lower-case letters, digits, '_' and '-' only (code, general, default, …)"); continue
                }
                if case .scalar(let target, _) = rule.value, !target.isEmpty {
                    out.append(AutoRule(task: rule.key, target: target, file: file, line: rl))
                } else {
                    issue(p, rl, "expected the name of a model, an alias or a role (role:NAME), found \(rule.value.kind)")
                }
            }
        }
        return out
    }

    /// `auto` and `role:…` cannot be alias names.
    static func isReserved(_ name: String) -> Bool { name == autoName || name.hasPrefix(rolePrefix) }
    static func reservedMessage(_ name: String) -> String {
        "'\(name)' is reserved and cannot be an alias (auto routes by task; role:NAME names a role)"
    }

    static func isPlainName(_ s: String) -> Bool {
        !s.isEmpty && s.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0) }
    }

    /// A task as rules and the `x-switchyard-task` header name it: 1–32 of `a-z`, `0-9`, `_`, `-`.
    public static func isTaskName(_ s: String) -> Bool {
        (1...32).contains(s.utf8.count) && s.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 || $0 == 45 }
    }

    /// Follows aliases from `name` to what is not an alias; nil when they loop. `chain` lists the aliases passed.
    public func followAliases(_ name: String) -> (target: String, chain: [String])? {
        var current = name, chain: [String] = []
        while let a = aliases[current] {
            if chain.contains(current) { return nil }
            chain.append(current)
            current = a.target
        }
        return (current, chain)
    }

    /// Alias, role and `routing.auto` problems, found once every file is read.
    func checkNames() -> [ConfigIssue] {
        var issues: [ConfigIssue] = []
        var reportedCycles: Set<String> = []
        func at(_ a: AliasDeclaration, _ message: String) { issues.append(ConfigIssue(file: a.file, path: a.path, line: a.line, message: message)) }
        for a in aliases.values.sorted(by: { ($0.file, $0.line ?? 0, $0.name) < ($1.file, $1.line ?? 0, $1.name) }) {
            if a.target == a.name { at(a, "alias '\(a.name)' names itself"); continue }
            if let shadowed = models[a.name].map({ ($0.file, $0.line) }) ?? routes[a.name].map({ ($0.file, $0.line) }) {
                let whereDeclared = shadowed.0 + (shadowed.1.map { ":\($0)" } ?? "")
                at(a, "alias '\(a.name)' has the name of a model declared at \(whereDeclared); an alias may not hide a model (rename one of them)")
                continue
            }
            guard let (target, _) = followAliases(a.name) else {
                // Report each loop once, at its first alias in file order.
                var loop = [a.name], current = a.target
                while current != a.name, let next = aliases[current], !loop.contains(current) { loop.append(current); current = next.target }
                let key = loop.sorted().joined(separator: ",")
                if reportedCycles.insert(key).inserted {
                    at(a, "aliases form a cycle: \((loop + [current]).joined(separator: " -> "))")
                }
                continue
            }
            if target.hasPrefix(Self.rolePrefix), roles[String(target.dropFirst(Self.rolePrefix.count))] == nil {
                at(a, "'\(target)' names no declared role (declared: \(roles.keys.sorted().joined(separator: ", ")))")
            }
        }
        for role in roles.values.sorted(by: { $0.name < $1.name }) {
            for (i, name) in role.prefer.enumerated() {
                guard let (target, _) = followAliases(name) else { continue }   // the cycle is reported above
                if target == Self.autoName || target.hasPrefix(Self.rolePrefix) {
                    issues.append(ConfigIssue(file: role.file, path: "roles.\(role.name).prefer[\(i)]", line: role.line,
                                              message: "'\(name)' is not a model (a role prefers models; \(target) is resolved by the router)"))
                }
            }
        }
        for rule in autoRules.values.sorted(by: { $0.task < $1.task }) {
            let path = "routing.auto.\(rule.task)"
            guard let (target, _) = followAliases(rule.target) else { continue }
            if target == Self.autoName {
                issues.append(ConfigIssue(file: rule.file, path: path, line: rule.line, message: "a rule of auto cannot lead back to auto"))
            } else if target.hasPrefix(Self.rolePrefix), roles[String(target.dropFirst(Self.rolePrefix.count))] == nil {
                issues.append(ConfigIssue(file: rule.file, path: path, line: rule.line,
                                          message: "'\(target)' names no declared role (declared: \(roles.keys.sorted().joined(separator: ", ")))"))
            }
        }
        return issues
    }
}

extension ConfigValue {
    var isList: Bool { if case .list = self { return true } else { return false } }
}
