import ArgumentParser
import Foundation
import Storage

struct Secrets: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Keep provider API keys in an encrypted file instead of the environment.",
        discussion: """
        The file (~/.switchyard/secrets.enc, or $\(SecretsFile.fileVariable)) is sealed with AES-256-GCM under the key \
        in $\(SecretsFile.keyVariable). A provider's `api_key_env: NAME` in models.yaml is read from the environment \
        first, then from this file under the same NAME. Values are never printed.
        Start with: export \(SecretsFile.keyVariable)=$(switchyard secrets generate-key)
        """,
        subcommands: [GenerateKey.self, Set.self, List.self, Remove.self])

    struct GenerateKey: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "generate-key",
                                                        abstract: "Print a new random key for \(SecretsFile.keyVariable).")
        func run() { print(SecretsFile.generateKey()) }
    }

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Store a secret, read from standard input (so that it stays out of the shell's history).",
            discussion: "Example: printf %s \"$KEY\" | switchyard secrets set ANTHROPIC_API_KEY")
        @Argument(help: "The name providers refer to (api_key_env).") var name: String

        func run() throws {
            let input = FileHandle.standardInput.readDataToEndOfFile()
            guard input.count <= 1 << 16 else { throw ValidationError("the value is longer than 64 KiB") }
            let value = String(decoding: input, as: UTF8.self).trimmingCharacters(in: .newlines)
            guard !value.isEmpty else { throw ValidationError("no value on standard input") }
            let file = try SecretsFile()
            try file.set(name, value)
            note("stored \(name) in \(file.url.path)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the names of the stored secrets (never their values).")
        func run() throws {
            for name in try SecretsFile().read().keys.sorted() { print(name) }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a secret.")
        @Argument var name: String
        func run() throws {
            guard try SecretsFile().remove(name) else { throw ValidationError("no secret named \(name)") }
            note("removed \(name)")
        }
    }
}

/// The environment providers read their API keys from: the process's, over the secrets file's entries when there
/// is a file. A file that exists but cannot be opened stops `serve` with the reason.
///
/// `needed` are the variables the configured providers read their keys from: when the environment has them all, the
/// secrets file is not opened (so it needs no SWITCHYARD_SECRET_KEY).
func providerEnvironment(needing needed: Set<String>,
                         _ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [String: String] {
    let location = SecretsFile.location(environment: environment)
    guard FileManager.default.fileExists(atPath: location.path) else { return environment }
    let missing = needed.filter { (environment[$0] ?? "").isEmpty }.sorted()
    guard !missing.isEmpty else { return environment }
    do {
        let secrets = try SecretsFile(environment: environment).read()
        note("provider secrets: \(secrets.count) in \(location.path)")
        return secrets.merging(environment) { _, fromEnvironment in fromEnvironment }
    } catch {
        throw CLIError("the providers' keys \(missing.joined(separator: ", ")) are not in the environment, and the secrets file \(location.path) cannot be read: \(error)")
    }
}
