import ArgumentParser
import Core
import Foundation
import ModelStore
import Providers
import Registry
import Routing

/// Where Switchyard keeps its things by default: `$SWITCHYARD_HOME`, else `~/.switchyard` (configuration in `config/`,
/// the profile record, and unless their own variables say otherwise the models and the database).
enum SwitchyardHome {
    static var url: URL {
        let env = ProcessInfo.processInfo.environment
        if let value = env["SWITCHYARD_HOME"], !value.isEmpty {
            return URL(fileURLWithPath: (value as NSString).expandingTildeInPath, isDirectory: true).standardizedFileURL
        }
        let home = env["HOME"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0, isDirectory: true) } ?? FileManager.default.homeDirectoryForCurrentUser
        return home.appendingPathComponent(".switchyard", isDirectory: true)
    }
}

/// Where the configuration folder is: `--config DIR`, `SWITCHYARD_CONFIG`, or the home's `config/`
/// (`~/.switchyard/config`). A folder that was named must exist; the home's may not (then: no registry files).
struct ConfigLocation: ParsableArguments {
    @Option(name: .customLong("config"), help: ArgumentHelp("Configuration folder holding models.yaml / models.json (env SWITCHYARD_CONFIG; default ~/.switchyard/config, or $SWITCHYARD_HOME/config).",
                                                            valueName: "dir"))
    var given: String?

    /// The folder as named, and by what; nil: the default.
    var named: (path: String, by: String)? {
        if let given { return (given, "--config") }
        if let env = ProcessInfo.processInfo.environment["SWITCHYARD_CONFIG"], !env.isEmpty { return (env, "SWITCHYARD_CONFIG") }
        return nil
    }

    var directory: String { named?.path ?? SwitchyardHome.url.appendingPathComponent("config").path }

    func validate() throws {
        guard let (path, by) = named else { return }
        var isDirectory: ObjCBool = false
        let expanded = (path as NSString).expandingTildeInPath
        guard FileManager.default.fileExists(atPath: expanded, isDirectory: &isDirectory) else {
            throw ValidationError("\(by) names \(expanded), which does not exist (a folder holding models.yaml)")
        }
        guard isDirectory.boolValue else { throw ValidationError("\(by) names \(expanded), which is a file; name the folder that holds it") }
    }

    @Option(name: .customLong("profiles"), help: ArgumentHelp("Folder of profiles, NAME.yaml each (env SWITCHYARD_PROFILES; default: profiles/ in the configuration folder).", valueName: "dir"))
    var profilesDirectory: String?

    var url: URL { URL(fileURLWithPath: (directory as NSString).expandingTildeInPath).standardizedFileURL }

    var profilesURL: URL {
        let given = profilesDirectory ?? ProcessInfo.processInfo.environment["SWITCHYARD_PROFILES"].flatMap { $0.isEmpty ? nil : $0 }
        return given.map { URL(fileURLWithPath: ($0 as NSString).expandingTildeInPath) } ?? ModelRegistry.defaultProfilesDirectory(for: url)
    }

    /// The registry files, with `profile` merged over them.
    func registry(profile: String? = nil) throws -> ModelRegistry {
        try ModelRegistry.load(directory: url, profile: profile, profilesDirectory: profilesURL)
    }
}

/// What `config validate` checks beyond the files' own shape, and `serve` refuses to start on: every declared
/// model resolves to a file, every local deployment and fallback names a model that exists.
enum ConfigCheck {
    struct Problem {
        let issue: ConfigIssue
        /// The model (declared, or named by a route) that is missing; `serve --allow-missing-models` leaves it out.
        let missingModel: String
    }

    static func problems(_ registry: ModelRegistry) -> [Problem] {
        var problems: [Problem] = []
        for (name, d) in registry.models.sorted(by: { $0.key < $1.key }) {
            do { _ = try ModelResolver.resolve(d.source, in: ModelDirectory.default) } catch {
                problems.append(Problem(issue: ConfigIssue(file: d.file, path: "models.\(name)", line: d.line,
                                                           message: "'\(d.source)' does not resolve: \(error)"), missingModel: name))
            }
        }
        // Local deployments and fallbacks name a declared model, a route, or a file in the model directory.
        func known(_ name: String) -> Bool {
            registry.models[name] != nil || registry.routes[name] != nil
                || (try? ModelResolver.resolve(name, in: ModelDirectory.default)) != nil
        }
        for (name, route) in registry.routes.sorted(by: { $0.key < $1.key }) {
            for d in route.deployments where d.provider.isLocal && !known(d.model) {
                problems.append(Problem(issue: ConfigIssue(file: route.file, path: d.path, line: d.line,
                                                           message: "no local model '\(d.model)' (not declared, not in \(ModelDirectory.default.path))"),
                                        missingModel: d.model))
            }
            for f in route.fallbacks where !known(f) {
                problems.append(Problem(issue: ConfigIssue(file: route.file, path: "models.\(name).fallbacks", line: route.line,
                                                           message: "no model '\(f)'"), missingModel: f))
            }
        }
        return problems
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
            let problems = ConfigCheck.problems(registry)
            if !problems.isEmpty {
                print(ConfigError(issues: problems.map(\.issue)).description)
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
            for (name, bot) in registry.telegram.sorted(by: { $0.key < $1.key }) {
                print("  telegram bot \(name): \(bot.model) at /api/v1/webhooks/telegram/\(name) (token from $\(bot.tokenEnv))")
            }
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
