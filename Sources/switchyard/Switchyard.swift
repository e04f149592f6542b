import ArgumentParser
import Foundation

@main
struct Switchyard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchyard",
        abstract: "A self-hosted AI core: runs GGUF models on the CPU with its own engine.",
        discussion: """
        MODEL arguments accept a catalogue name (e.g. smollm2), a file name in the model directory \
        ($SWITCHYARD_MODELS, default ~/.switchyard/models), or a path to a .gguf file. Commands that talk to a \
        running server take --server (env SWITCHYARD_URL) and --api-key (env SWITCHYARD_API_KEY).
        """,
        version: "0.1.0",
        subcommands: [Serve.self, Chat.self, Run.self, Pull.self, List.self, Show.self, Remove.self, Copy.self, PS.self, Load.self,
                      Unload.self, Config.self, Profiles.self, Keys.self, Secrets.self, UsageReport.self, Tokenize.self,
                      Perplexity.self, Bench.self, Template.self, GrammarCommand.self, Telegram.self]
    )

    /// Every name a subcommand answers to.
    static var commandNames: [String] {
        configuration.subcommands.flatMap { c in [c._commandName] + c.configuration.aliases }
    }

    /// An unknown command is named as such, with the nearest known one; errors that are not about the command line
    /// are printed as themselves, without a usage line.
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let first = arguments.first, !first.hasPrefix("-"), first != "help", !commandNames.contains(first) {
            var message = "switchyard: unknown command '\(first)'"
            if let near = nearest(first, in: commandNames) { message += "; did you mean '\(near)'?" }
            note(message + "\nSee 'switchyard --help' for the commands.")
            Foundation.exit(64)
        }
        var command: ParsableCommand
        do { command = try await asyncParseAsRoot(arguments) } catch { exit(withError: error) }
        // Past parsing, an error is about the work, not the command line: it is printed alone, without a usage line.
        do {
            if var async = command as? AsyncParsableCommand { try await async.run() } else { try command.run() }
        } catch let error as ValidationError {
            note("error: \(error.message)")
            Foundation.exit(64)
        } catch let error as CLIError {
            note("error: \(error.description)")
            Foundation.exit(1)
        } catch {
            // ExitCode, help and version requests (the built-in commands throw them), and other errors as the parser
            // prints them.
            exit(withError: error)
        }
    }

    /// The known name closest to `word`, if close enough to be a likely typo (edits, with a swap of neighbours
    /// counting as one).
    static func nearest(_ word: String, in names: [String]) -> String? {
        func distance(_ a: [Character], _ b: [Character]) -> Int {
            guard !a.isEmpty else { return b.count }
            guard !b.isEmpty else { return a.count }
            var d = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
            for i in 0...a.count { d[i][0] = i }
            for j in 0...b.count { d[0][j] = j }
            for i in 1...a.count {
                for j in 1...b.count {
                    d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
                    if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1) }
                }
            }
            return d[a.count][b.count]
        }
        let w = Array(word.lowercased())
        guard let best = names.map({ ($0, distance(w, Array($0))) }).min(by: { $0.1 < $1.1 }) else { return nil }
        return best.1 <= (w.count >= 4 ? 2 : 1) ? best.0 : nil
    }
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
