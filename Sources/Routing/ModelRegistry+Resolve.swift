import Core
import Registry
import Foundation

/// What a request's model name stands for, once aliases, `auto` and roles are resolved.
public struct Resolution: Sendable, Equatable {
    /// The public model names to serve from, in order: one name (its `fallbacks` follow), or a role's qualifying
    /// models.
    public var models: [String]
    /// Whether the models' own `fallbacks` are added (not for a role: they were not checked against it).
    public var withFallbacks: Bool
    /// Only local deployments may serve it (the request's `localOnly`, or the role's `local_only`).
    public var localOnly: Bool
    /// How the name was resolved; nil for a plain model name.
    public var reason: String?
    /// The role that chose the models, if any.
    public var role: String?
    public init(models: [String], withFallbacks: Bool = true, localOnly: Bool = false, reason: String? = nil, role: String? = nil) {
        self.models = models; self.withFallbacks = withFallbacks; self.localOnly = localOnly; self.reason = reason; self.role = role
    }
}

extension ModelRegistry {
    /// Resolves `request.model`: aliases are followed, `auto` picks a model by the request's task (the caller's
    /// `hints.task`, else `TaskClassifier`) through `routing.auto`, and `role:NAME` picks the role's first preferred
    /// model that meets its requirements. A plain name resolves to itself.
    ///
    /// - `coolingDown`: whether a deployment's circuit is open now (a role passes over a model whose deployments
    ///   all are, to the end of its list).
    /// - `localMemory`: bytes a local model takes, by its source (catalogue name, file name or path), when the
    ///   configuration does not declare it.
    /// - `discovered`: the local engine's models, for `auto` when no model is configured.
    public func resolve(_ request: ChatRequest, coolingDown: (DeploymentDeclaration) -> Bool = { _ in false },
                        localMemory: (String) -> Int? = { _ in nil }, discovered: [String] = []) throws -> Resolution {
        var steps: [String] = []
        var name = request.model
        var sawAuto = false
        for _ in 0..<16 {
            if let alias = aliases[name] {
                steps.append("alias \(name) -> \(alias.target)")
                name = alias.target
                continue
            }
            if name == Self.autoName {
                guard !sawAuto else { throw RoutingError.misconfigured("'\(request.model)' leads back to auto") }
                sawAuto = true
                let (target, why) = try autoTarget(request, discovered: discovered)
                steps.append(why)
                name = target
                continue
            }
            if name.hasPrefix(Self.rolePrefix) {
                return try resolveRole(String(name.dropFirst(Self.rolePrefix.count)), request: request, steps: steps,
                                       coolingDown: coolingDown, localMemory: localMemory)
            }
            return Resolution(models: [name], localOnly: request.hints.localOnly, reason: steps.isEmpty ? nil : steps.joined(separator: "; "))
        }
        throw RoutingError.misconfigured("'\(request.model)' does not resolve to a model (aliases loop)")
    }

    /// The deployments that serve a public name: its route's; else, for `PROVIDER/MODEL` with a declared provider,
    /// that provider's model (how an Ollama upstream's discovered models, or any upstream model, are asked for by
    /// name); else the local engine's model of that name.
    public func deployments(of name: String) -> [DeploymentDeclaration] {
        if let route = routes[name] { return route.deployments }
        if let key = DeploymentKey(parsing: name), !key.provider.isLocal, providers[key.provider] != nil {
            return [DeploymentDeclaration(provider: key.provider, model: key.model)]
        }
        return [DeploymentDeclaration(provider: .local, model: name)]
    }

    /// Whether a deployment stays on this machine: the built-in engine, or a provider declared `local: true`.
    public func isLocal(_ d: DeploymentDeclaration) -> Bool {
        d.provider.isLocal || providers[d.provider]?.local == true
    }

    /// `auto`: the task, then the rule for it (or `default`), else the built-in default — code to the first model
    /// served locally, anything else to the first model served remotely (each falling back to the other).
    func autoTarget(_ request: ChatRequest, discovered: [String]) throws -> (String, String) {
        let task: String, source: String
        if let t = request.hints.task {
            task = t; source = request.hints.taskSource ?? "given"
        } else {
            let v = TaskClassifier.classify(request.messages, rawPrompt: request.rawPrompt)
            task = v.task; source = v.reason
        }
        let why = "task=\(task) (\(source))"
        if let rule = autoRules[task] ?? autoRules["default"] {
            return (rule.target, "\(why); routing.auto.\(rule.task) -> \(rule.target)")
        }
        let firstLocal = order.first { deployments(of: $0).first.map(isLocal) ?? false }
        let firstRemote = order.first { !(deployments(of: $0).first.map(isLocal) ?? true) }
        let preferLocal = task == "code" || request.hints.localOnly
        let pick = preferLocal ? (firstLocal ?? firstRemote) : (firstRemote ?? firstLocal)
        if let pick {
            let kind = pick == firstLocal ? "first local model" : "first remote model"
            return (pick, "\(why); default -> \(kind) \(pick)")
        }
        if let first = discovered.first { return (first, "\(why); default -> \(first) (no model configured)") }
        throw CoreError.unknownModel(Self.autoName, available: [])
    }

    func resolveRole(_ roleName: String, request: ChatRequest, steps: [String], coolingDown: (DeploymentDeclaration) -> Bool,
                     localMemory: (String) -> Int?) throws -> Resolution {
        guard let role = roles[roleName] else {
            throw CoreError.unknownModel(Self.rolePrefix + roleName,
                                         available: roles.keys.sorted().map { Self.rolePrefix + $0 } + routes.keys.sorted())
        }
        let needs = role.requires
        let localOnly = needs.localOnly || request.hints.localOnly
        var ready: [String] = [], cooling: [String] = []
        var passed: [RoutingError.PassedOver] = []
        for candidate in role.prefer {
            guard let (target, _) = followAliases(candidate), target != Self.autoName, !target.hasPrefix(Self.rolePrefix) else {
                passed.append(.init(model: candidate, reasons: ["not a model"])); continue
            }
            let offers = offered(by: target, localMemory: localMemory)
            let all = deployments(of: target)
            let local = all.filter(isLocal)
            var why: [String] = []
            if let need = needs.context {
                if let have = offers.context { if have < need { why.append("context \(have) < \(need)") } }
                else { why.append("context length not declared") }
            }
            if needs.tools, offers.tools != true { why.append(offers.tools == false ? "no tool support" : "tool support not declared") }
            if localOnly, local.isEmpty { why.append(needs.localOnly ? "no local deployment" : "no local deployment (the request is local-only)") }
            if let limit = needs.maxMemoryBytes, !local.isEmpty {
                if let have = offers.memoryBytes { if have > limit { why.append("needs \(sizeText(have)) > \(sizeText(limit))") } }
                else { why.append("memory use unknown") }
            }
            guard why.isEmpty else { passed.append(.init(model: candidate, reasons: why)); continue }
            let usable = localOnly ? local : all
            if ready.contains(target) || cooling.contains(target) { continue }
            if usable.allSatisfy(coolingDown) { cooling.append(target) } else { ready.append(target) }
        }
        let chosen = ready + cooling
        guard let first = chosen.first else {
            throw RoutingError.roleUnmet(role: roleName, requirements: needs.summary(localOnly: localOnly), passedOver: passed)
        }
        var why = "role=\(roleName) -> \(first)"
        if ready.isEmpty { why += " (every preferred model is cooling down)" }
        if !passed.isEmpty { why += " (passed over " + passed.map { "\($0.model): \($0.reasons.joined(separator: ", "))" }.joined(separator: "; ") + ")" }
        return Resolution(models: chosen, withFallbacks: false, localOnly: localOnly,
                          reason: (steps + [why]).joined(separator: "; "), role: roleName)
    }

    /// What a model offers: declared `context` (or a local model's `context_length`), `tools`, and the memory
    /// its deployments on the built-in engine take (declared `memory`, else each one's `max_memory`, else its
    /// file's size as `localMemory` tells; nil when any is unknown; 0 when it has none).
    public func offered(by name: String, localMemory: (String) -> Int? = { _ in nil }) -> ModelCapabilities {
        var caps = capabilities[name] ?? ModelCapabilities()
        if caps.context == nil { caps.context = models[name]?.contextLength }
        if caps.memoryBytes == nil {
            var total = 0, known = true
            for d in deployments(of: name) where d.provider.isLocal {
                let declared = d.model == name ? nil : capabilities[d.model]?.memoryBytes
                guard let bytes = declared ?? models[d.model]?.maxMemoryBytes ?? localMemory(models[d.model]?.source ?? d.model) else {
                    known = false; break
                }
                total = max(total, bytes)
            }
            caps.memoryBytes = known ? total : nil
        }
        return caps
    }
}

extension RoleDeclaration.Requirements {
    /// `context ≥ 8192, tools, local only, memory ≤ 4 GiB`.
    public func summary(localOnly: Bool) -> String {
        var parts: [String] = []
        if let c = context { parts.append("context >= \(c)") }
        if tools { parts.append("tools") }
        if localOnly { parts.append("local only") }
        if let m = maxMemoryBytes { parts.append("memory <= \(sizeText(m))") }
        return parts.joined(separator: ", ")
    }
}

/// 4294967296 → "4G", 536870912 → "512M", 1610612736 → "1.5G".
func sizeText(_ bytes: Int) -> String {
    for (unit, scale) in [("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)] where bytes >= scale {
        let v = Double(bytes) / Double(scale)
        return (v == v.rounded() ? String(Int(v)) : String(format: "%.1f", v)) + unit
    }
    return "\(bytes)B"
}
