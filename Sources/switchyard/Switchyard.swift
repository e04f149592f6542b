import ArgumentParser
import Foundation

@main
struct Switchyard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchyard",
        abstract: "A self-hosted AI core: runs GGUF models on the CPU with its own engine.",
        discussion: """
        MODEL arguments accept a catalogue name (e.g. smollm2), a file name in the model directory \
        ($SWITCHYARD_MODELS, default ~/.switchyard/models), or a path to a .gguf file.
        """,
        version: "0.1.0",
        subcommands: [Serve.self, Config.self, Load.self, Unload.self, PS.self, Pull.self, List.self, Run.self, Tokenize.self, Perplexity.self, Bench.self, Template.self, GrammarCommand.self, Keys.self, Secrets.self, UsageReport.self, Profiles.self]
    )
}

/// Writes to stderr (progress and logs never mix with generated text on stdout).
func note(_ s: String, terminator: String = "\n") {
    FileHandle.standardError.write((s + terminator).data(using: .utf8) ?? Data())
}

/// Flushes a piece of generated text to stdout at once.
func emit(_ s: String) {
    FileHandle.standardOutput.write(s.data(using: .utf8) ?? Data())
}

struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
