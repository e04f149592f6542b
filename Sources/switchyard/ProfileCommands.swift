import ArgumentParser
import Foundation
import Registry
import Routing

/// The profile `serve` starts with, as `switchyard profiles use` records it, for one configuration folder:
/// `~/.switchyard/profile.json` (`$SWITCHYARD_HOME/profile.json`, or `$SWITCHYARD_PROFILE_STATE`) holds
/// `{"profile": "coding", "config": "/path/to/config"}`. A record made for another folder does not apply.
enum ActiveProfile {
    static var file: URL {
        let env = ProcessInfo.processInfo.environment
        if let path = env["SWITCHYARD_PROFILE_STATE"], !path.isEmpty { return URL(fileURLWithPath: (path as NSString).expandingTildeInPath) }
        return SwitchyardHome.url.appendingPathComponent("profile.json")
    }

    private struct State: Codable { var profile: String?; var config: String? }

    /// The profile recorded for the configuration folder `config`; nil: none (the base configuration).
    static func read(for config: URL) throws -> String? {
        guard FileManager.default.fileExists(atPath: file.path) else { return nil }
        let state: State
        do {
            state = try JSONDecoder().decode(State.self, from: Data(contentsOf: file))
        } catch {
            throw CLIError("\(file.path) is not a profile record ({\"profile\": \"NAME\"}): \(error); remove it or run `switchyard profiles use NAME`")
        }
        if let recorded = state.config, URL(fileURLWithPath: recorded).standardizedFileURL != config.standardizedFileURL { return nil }
        return state.profile
    }

    static func write(_ profile: String?, for config: URL) throws {
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(State(profile: profile, config: config.standardizedFileURL.path))
        data.append(0x0a)
        try data.write(to: file, options: .atomic)
    }

    /// The profile to start with: `explicit` (a flag), else `SWITCHYARD_PROFILE`, else the one recorded for `config`.
    static func choose(_ explicit: String?, config: URL) throws -> (name: String?, from: String) {
        if let explicit { return (explicit.isEmpty ? nil : explicit, "--profile") }
        if let env = ProcessInfo.processInfo.environment["SWITCHYARD_PROFILE"] { return (env.isEmpty ? nil : env, "SWITCHYARD_PROFILE") }
        return (try read(for: config), file.path)
    }
}

extension ConfigLocation {
    /// The registry with the chosen profile merged over it; a profile that cannot be read says where it was chosen.
    func registry(choosing explicit: String?) throws -> ModelRegistry {
        let (name, from) = try ActiveProfile.choose(explicit, config: url)
        do {
            return try registry(profile: name)
        } catch let e as ConfigError where name != nil {
            throw CLIError("\(e.description)\n(profile '\(name ?? "")' chosen by \(from); `switchyard profiles list` shows the profiles, `switchyard profiles use --none` starts from the base configuration)")
        }
    }
}

struct Profiles: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, choose, show, export and import configuration profiles.",
        discussion: """
        A profile is a file PROFILES/NAME.yaml (PROFILES: --profiles DIR, env SWITCHYARD_PROFILES, default \
        profiles/ in the configuration folder) of the same shape as models.yaml — providers, models, aliases, \
        roles, routing, description — merged over the configuration files as a JSON merge patch: mappings merge \
        key by key at any depth, lists and values replace, null (~) deletes. `use` records the profile `serve` \
        starts with; a running server switches with POST /admin/profile {"profile": "NAME"}.
        """,
        subcommands: [List.self, Use.self, Show.self, Export.self, Import.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The profiles, the one `serve` starts with marked *.")
        @OptionGroup var config: ConfigLocation

        func run() throws {
            let names = ModelRegistry.profileNames(in: config.profilesURL)
            let active = try ActiveProfile.choose(nil, config: config.url).name
            guard !names.isEmpty else {
                print("no profiles in \(config.profilesURL.path) (a profile is NAME.yaml there)")
                return
            }
            for name in names {
                let description = ModelRegistry.profileFile(name, in: config.profilesURL).flatMap(ModelRegistry.profileDescription)
                print("\(name == active ? "*" : " ") \(name)\(description.map { "  — \($0)" } ?? "")")
            }
            if let active, !names.contains(active) { print("(the recorded profile '\(active)' is not in \(config.profilesURL.path))") }
        }
    }

    struct Use: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record the profile `serve` starts with (checked first: it must merge cleanly over the configuration).",
            discussion: "Written to ~/.switchyard/profile.json (env SWITCHYARD_PROFILE_STATE). `serve --profile NAME` and SWITCHYARD_PROFILE override it.")
        @Argument(help: "The profile.") var name: String?
        @Flag(help: "Start from the base configuration, without a profile.") var none = false
        @OptionGroup var config: ConfigLocation

        func validate() throws {
            if (name == nil) == !none { throw ValidationError("give a profile NAME, or --none") }
        }

        func run() throws {
            if none {
                try ActiveProfile.write(nil, for: config.url)
                print("serve starts from the base configuration (\(ActiveProfile.file.path))")
                return
            }
            let registry: ModelRegistry
            do { registry = try config.registry(profile: name) } catch let e as ConfigError {
                print(e.description)
                throw ExitCode(1)
            }
            try ActiveProfile.write(name, for: config.url)
            print("serve starts with profile '\(name ?? "")' (\(registry.profileFile ?? "")); recorded in \(ActiveProfile.file.path)")
            print("a running server switches with: curl -X POST http://127.0.0.1:8080/admin/profile -d '{\"profile\": \"\(name ?? "")\"}'")
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the effective configuration: the configuration files with the profile merged over them (YAML).")
        @Argument(help: "The profile (default: the one `serve` would start with).") var name: String?
        @Flag(help: "The configuration files alone, without a profile.") var base = false
        @OptionGroup var config: ConfigLocation

        func run() throws {
            let profile = base ? nil : try name ?? ActiveProfile.choose(nil, config: config.url).name
            // Errors first: show what is wrong rather than a document serve would refuse.
            do { _ = try config.registry(profile: profile) } catch let e as ConfigError {
                print(e.description)
                throw ExitCode(1)
            }
            let document = try ModelRegistry.effectiveDocument(directory: config.url, profile: profile, profilesDirectory: config.profilesURL)
            print("# \(config.url.path)" + (profile.map { " + profile \($0)" } ?? " (no profile)"))
            print(try document.yaml(), terminator: "")
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a profile's file to FILE (or stdout), to share it.")
        @Argument(help: "The profile.") var name: String
        @Argument(help: "Where to write it (default: stdout).") var file: String?
        @OptionGroup var config: ConfigLocation

        func run() throws {
            guard let url = ModelRegistry.profileFile(name, in: config.profilesURL) else {
                throw CLIError("no profile '\(name)' in \(config.profilesURL.path)")
            }
            let data = try Data(contentsOf: url)
            guard let file else { FileHandle.standardOutput.write(data); return }
            try data.write(to: URL(fileURLWithPath: (file as NSString).expandingTildeInPath), options: .atomic)
            note("wrote profile '\(name)' to \(file)")
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a profile from FILE (checked first: it must merge cleanly over the configuration).")
        @Argument(help: "A profile file (.yaml, .yml or .json).") var file: String
        @Option(help: "The profile's name (default: the file's name without its extension).") var name: String?
        @Flag(help: "Replace a profile of the same name.") var force = false
        @OptionGroup var config: ConfigLocation

        func run() throws {
            let source = URL(fileURLWithPath: (file as NSString).expandingTildeInPath)
            let ext = source.pathExtension.lowercased()
            guard ModelRegistry.profileExtensions.contains(ext) else { throw CLIError("\(file): a profile is a .yaml, .yml or .json file") }
            let profile = name ?? source.deletingPathExtension().lastPathComponent
            guard ModelRegistry.isValidProfileName(profile) else {
                throw CLIError("'\(profile)' is not a profile name (letters, digits, '.', '_', '-'); give one with --name")
            }
            let existing = ModelRegistry.profileFile(profile, in: config.profilesURL)
            if existing != nil, !force { throw CLIError("profile '\(profile)' exists (\(existing!.path)); --force replaces it") }
            let data = try Data(contentsOf: source)
            // Check it in a scratch folder of profiles, against the real configuration.
            let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("switchyard-import-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: scratch) }
            try data.write(to: scratch.appendingPathComponent("\(profile).\(ext)"))
            do { _ = try ModelRegistry.load(directory: config.url, profile: profile, profilesDirectory: scratch) } catch let e as ConfigError {
                print(e.description.replacingOccurrences(of: scratch.path + "/", with: ""))
                throw ExitCode(1)
            }
            try FileManager.default.createDirectory(at: config.profilesURL, withIntermediateDirectories: true)
            if let existing { try FileManager.default.removeItem(at: existing) }
            let target = config.profilesURL.appendingPathComponent("\(profile).\(ext)")
            try data.write(to: target, options: .atomic)
            print("imported profile '\(profile)' to \(target.path)")
        }
    }
}
