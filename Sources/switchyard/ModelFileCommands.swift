import ArgumentParser
import Core
import Foundation
import ModelStore
import Providers

/// `rm`, `cp` and `show`, the names Ollama's users type: on the model directory here, or on a running server's
/// (`--server` / `SWITCHYARD_URL`, through its Ollama API; removing and copying need its admin key).

/// The model directory of this machine, as a server would list it.
private func localHost() -> ModelHost {
    ModelHost(options: ModelHost.Options(directory: ModelDirectory.default))
}

/// A model error as a person reads it.
private func described(_ error: Error) -> Error {
    if let e = error as? CoreError { return CLIError(e.description) }
    return error
}

struct Remove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Remove a model's file from the model directory (here, or on --server).",
        discussion: "Models declared in the configuration are removed there, not here. A loaded model is unloaded first.")
    @OptionGroup var address: ServerAddress
    @Argument(help: "Model names.") var models: [String]

    func validate() throws { if models.isEmpty { throw ValidationError("name at least one model") } }

    func run() async throws {
        for model in models {
            if address.named {
                _ = try await address.call("DELETE", "/api/delete", body: ["model": model], admin: true)
            } else {
                do { try await localHost().delete(model) } catch { throw described(error) }
            }
            print("deleted '\(model)'")
        }
    }
}

struct Copy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cp", abstract: "Serve a model under another name too (a link to the same file; here, or on --server).")
    @OptionGroup var address: ServerAddress
    @Argument(help: "The model to copy.") var source: String
    @Argument(help: "The new name.") var destination: String

    func run() async throws {
        if address.named {
            _ = try await address.call("POST", "/api/copy", body: ["source": source, "destination": destination], admin: true)
        } else {
            do { try await localHost().copy(source, to: destination) } catch { throw described(error) }
        }
        print("copied '\(source)' to '\(destination)'")
    }
}

struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "What a model's file says: architecture, parameters, context, quantization, defaults, license, chat template.",
        discussion: "Reads the GGUF file in the model directory (or a .gguf path); with --server, asks the running server.")
    @OptionGroup var address: ServerAddress
    @Argument(help: "Catalogue name, file name in the model directory, or path to a .gguf file.") var model: String
    @Flag(help: "Print only the chat template.") var template = false
    @Flag(help: "Print only the license.") var license = false

    struct Facts {
        var architecture: String?
        var parameters: Int?
        var context: Int?
        var embedding: Int?
        var quantization: String?
        var defaults: [(String, String)] = []
        var license: String?
        var template: String?
    }

    func run() async throws {
        let facts = try await address.named ? remote() : local()
        if template { print(facts.template ?? "(the file has no chat template)"); return }
        if license { print(facts.license ?? "(the file names no license)"); return }
        func row(_ name: String, _ value: String?) {
            guard let value else { return }
            print("    " + name.padding(toLength: 20, withPad: " ", startingAt: 0) + value)
        }
        print("  Model")
        row("architecture", facts.architecture)
        row("parameters", facts.parameters.map(Self.count))
        row("context length", facts.context.map(String.init))
        row("embedding length", facts.embedding.map(String.init))
        row("quantization", facts.quantization)
        if !facts.defaults.isEmpty {
            print("\n  Parameters")
            for (k, v) in facts.defaults { row(k, v) }
        }
        if let l = facts.license {
            print("\n  License")
            for line in l.split(separator: "\n", omittingEmptySubsequences: true).prefix(2) { print("    " + line.trimmingCharacters(in: .whitespaces)) }
        }
        print("\n  Template")
        print("    " + (facts.template.map { "\($0.count) characters (switchyard show \(model) --template)" } ?? "none"))
    }

    /// 134.5M, 1.2B.
    static func count(_ n: Int) -> String {
        n >= 1_000_000_000 ? String(format: "%.1fB", Double(n) / 1e9) : String(format: "%.1fM", Double(n) / 1e6)
    }

    private func local() async throws -> Facts {
        let host = localHost()
        var name = model
        // A path, or a catalogue name whose file has another name: the entry the directory lists for that file.
        if let url = try? ModelResolver.resolve(model) {
            let available = await host.available()
            name = available.first { $0.path.standardizedFileURL == url.standardizedFileURL }?.name
                ?? url.deletingPathExtension().lastPathComponent
            if !available.contains(where: { $0.name == name }) {
                var options = ModelHost.Options(directory: ModelDirectory.default)
                options.pinned = [name: ModelHost.Declared(source: url.path)]
                return try await facts(ModelHost(options: options), name)
            }
        }
        return try await facts(host, name)
    }

    private func facts(_ host: ModelHost, _ name: String) async throws -> Facts {
        let d: ModelDetails
        do { d = try await host.details(name) } catch { throw described(error) }
        let arch = d.architecture ?? ""
        return Facts(architecture: d.architecture, parameters: d.parameterCount, context: d.contextLength,
                     embedding: d.metadata["\(arch).embedding_length"].flatMap { Int($0) }, quantization: d.quantization,
                     defaults: d.parameters.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
                     license: d.metadata["general.license"], template: d.template)
    }

    private func remote() async throws -> Facts {
        let r = try await address.call("POST", "/api/show", body: ["model": model])
        let info = r["model_info"] as? [String: Any] ?? [:]
        let details = r["details"] as? [String: Any] ?? [:]
        let arch = info["general.architecture"] as? String
        func int(_ key: String) -> Int? { (info[key] as? Int) ?? (info[key] as? String).flatMap { Int($0) } }
        let defaults = (r["parameters"] as? String ?? "").split(separator: "\n").compactMap { line -> (String, String)? in
            let parts = line.split(separator: " ", maxSplits: 1)
            return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
        }
        let template = r["template"] as? String
        return Facts(architecture: arch, parameters: int("general.parameter_count"), context: arch.flatMap { int("\($0).context_length") },
                     embedding: arch.flatMap { int("\($0).embedding_length") }, quantization: details["quantization_level"] as? String,
                     defaults: defaults, license: info["general.license"] as? String, template: template?.isEmpty == false ? template : nil)
    }
}
