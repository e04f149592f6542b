import ArgumentParser
import Core
import Foundation
import ModelStore
import Providers
import Registry
import Routing

/// Where the configuration folder is: `--config DIR`, `SWITCHYARD_CONFIG`, or `./config`.
struct ConfigLocation: ParsableArguments {
    @Option(name: .customLong("config"), help: "Configuration folder holding models.yaml / models.json (env SWITCHYARD_CONFIG; default ./config).")
    var directory: String = ProcessInfo.processInfo.environment["SWITCHYARD_CONFIG"] ?? "config"

    @Option(name: .customLong("profiles"), help: ArgumentHelp("Folder of profiles, NAME.yaml each (env SWITCHYARD_PROFILES; default: profiles/ in the configuration folder).", valueName: "dir"))
    var profilesDirectory: String?

    var url: URL { URL(fileURLWithPath: (directory as NSString).expandingTildeInPath) }

    var profilesURL: URL {
        let given = profilesDirectory ?? ProcessInfo.processInfo.environment["SWITCHYARD_PROFILES"].flatMap { $0.isEmpty ? nil : $0 }
        return given.map { URL(fileURLWithPath: ($0 as NSString).expandingTildeInPath) } ?? ModelRegistry.defaultProfilesDirectory(for: url)
    }

    /// The registry files, with `profile` merged over them.
    func registry(profile: String? = nil) throws -> ModelRegistry {
        try ModelRegistry.load(directory: url, profile: profile, profilesDirectory: profilesURL)
    }
}

struct Config: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check the configuration.", subcommands: [Validate.self])

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate the model registry and report every error with file, line, key path and what was expected.",
            discussion: "Also checks that each declared model's path or catalogue entry resolves to a file, and that every profile merges cleanly over the registry. Exits 1 if anything is wrong.")
        @OptionGroup var config: ConfigLocation

        func run() throws {
            let registry: ModelRegistry
            do {
                registry = try config.registry()
            } catch let e as ConfigError {
                print(e.description)
                throw ExitCode(1)
            }
            if registry.files.isEmpty {
                print("no registry files in \(config.url.path) (looked for \(ModelRegistry.fileNames.joined(separator: ", "))); models are discovered in \(ModelDirectory.default.path)")
                return
            }
            var problems: [String] = []
            for (name, d) in registry.models.sorted(by: { $0.key < $1.key }) {
                do { _ = try ModelResolver.resolve(d.source, in: ModelDirectory.default) } catch {
                    problems.append("\(d.file): models.\(name): '\(d.source)' does not resolve: \(error)")
                }
            }
            // Local deployments and fallbacks name a declared model, a route, or a file in the model directory.
            func known(_ name: String) -> Bool {
                registry.models[name] != nil || registry.routes[name] != nil
                    || (try? ModelResolver.resolve(name, in: ModelDirectory.default)) != nil
            }
            for (name, route) in registry.routes.sorted(by: { $0.key < $1.key }) {
                for d in route.deployments where d.provider.isLocal && !known(d.model) {
                    problems.append("\(route.file)\(d.line.map { ":\($0)" } ?? ""): \(d.path): no local model '\(d.model)' (not declared, not in \(ModelDirectory.default.path))")
                }
                for f in route.fallbacks where !known(f) {
                    problems.append("\(route.file)\(route.line.map { ":\($0)" } ?? ""): models.\(name).fallbacks: no model '\(f)'")
                }
            }
            if !problems.isEmpty {
                print("configuration has \(problems.count) error\(problems.count == 1 ? "" : "s"):\n" + problems.map { "  " + $0 }.joined(separator: "\n"))
                throw ExitCode(1)
            }
            print("ok: \(registry.files.joined(separator: ", ")) — \(registry.models.count) local model\(registry.models.count == 1 ? "" : "s"): \(registry.models.keys.sorted().joined(separator: ", "))")
            for (name, p) in registry.providers.sorted(by: { $0.key < $1.key }) {
                print("  provider \(name): \(p.kind.rawValue) \(p.baseURL)\(p.apiKeyEnv.map { " (key from $\($0))" } ?? "")")
            }
            for (name, r) in registry.routes.sorted(by: { $0.key < $1.key }) {
                print("  route \(name): \(r.deployments.map(\.key.description).joined(separator: ", ")) [\(r.strategy.rawValue)]" + (r.fallbacks.isEmpty ? "" : " → \(r.fallbacks.joined(separator: ", "))"))
            }
            for (name, a) in registry.aliases.sorted(by: { $0.key < $1.key }) { print("  alias \(name) → \(a.target)") }
            for (name, r) in registry.roles.sorted(by: { $0.key < $1.key }) {
                let needs = r.requires.summary(localOnly: r.requires.localOnly)
                print("  role \(name): \(r.prefer.joined(separator: ", "))" + (needs.isEmpty ? "" : " (requires \(needs))"))
            }
            for (task, rule) in registry.autoRules.sorted(by: { $0.key < $1.key }) { print("  auto \(task) → \(rule.target)") }
            var broken = false
            for profile in ModelRegistry.profileNames(in: config.profilesURL) {
                do {
                    _ = try config.registry(profile: profile)
                    print("  profile \(profile): ok")
                } catch let e as ConfigError {
                    print("profile \(profile): " + e.description)
                    broken = true
                }
            }
            if broken { throw ExitCode(1) }
        }
    }
}
