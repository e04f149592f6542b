import ArgumentParser
import Foundation
import GGUF
import Grammar
import Inference
import ModelStore
import Tokenizers

struct GrammarCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grammar",
        abstract: "Turn JSON Schemas into GBNF grammars, check grammars, and time their compilation.",
        discussion: """
        With one JSON Schema file, prints the GBNF grammar that constrained decoding uses for \
        response_format: {"type": "json_schema"}; with --gbnf, checks that GBNF files compile (llama.cpp's syntax). \
        An unsupported keyword or a grammar error is reported with where it is, and the exit status is 1.

        With --timings, prints one JSON line per file: schema_ms (schema → GBNF), compile_ms (GBNF → automaton) \
        and, with --model, first_mask_ms (what a first request pays: compiled, and the allowed tokens at the start \
        computed over the model's vocabulary) and \
        cached_ms (the same grammar asked for again, as a repeated request finds it).
        """)

    @Argument(help: "JSON Schema files (or GBNF files with --gbnf); '-' reads standard input.") var files: [String]
    @Flag(help: "The files are GBNF grammars, not JSON Schemas.") var gbnf = false
    @Flag(help: "Print timings as JSON lines instead of the grammar.") var timings = false
    @Option(help: "Also time the first token mask over this model's vocabulary (catalogue name, file name or path).") var model: String?

    func run() throws {
        guard !files.isEmpty else { throw ValidationError("give at least one file") }
        var cache: GrammarCache?
        if let model {
            let file = try GGUFFile(path: try ModelResolver.resolve(model).path)
            let tokenizer = try TokenizerFactory.load(from: file)
            let c = GrammarCache(tokenizer: tokenizer, vocabularySize: tokenizer.vocabularySize)
            let t0 = monotonicSeconds()
            _ = c.tokenTable
            if timings { emit("{\"vocabulary_table_ms\": \(Self.ms(monotonicSeconds() - t0)), \"tokens\": \(tokenizer.vocabularySize)}\n") }
            cache = c
        }
        var failed = false
        for path in files {
            let text = path == "-" ? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
                                   : try String(contentsOfFile: path, encoding: .utf8)
            do throws(GrammarError) {
                let t0 = monotonicSeconds()
                let source = gbnf ? text : try JSONSchemaGrammar.gbnf(schema: text)
                let t1 = monotonicSeconds()
                _ = try Grammar(gbnf: source)
                let t2 = monotonicSeconds()
                guard timings else {
                    if !gbnf { emit(source) } else { note("\(path): compiles") }
                    continue
                }
                var line = "{\"file\": \(Self.quoted(path)), \"schema_ms\": \(Self.ms(t1 - t0)), \"compile_ms\": \(Self.ms(t2 - t1))"
                if let cache {
                    let t3 = monotonicSeconds()
                    let constraint = try cache.constraint(gbnf: source)
                    _ = constraint.start().mask()
                    let t4 = monotonicSeconds()
                    _ = try cache.constraint(gbnf: source).start().mask()
                    let t5 = monotonicSeconds()
                    line += ", \"first_mask_ms\": \(Self.ms(t4 - t3)), \"cached_ms\": \(Self.ms(t5 - t4))"
                }
                emit(line + "}\n")
            } catch {
                note("\(path): \(error)")
                failed = true
            }
        }
        if failed { throw ExitCode(1) }
    }

    static func ms(_ seconds: Double) -> String { String(format: "%.3f", seconds * 1000) }

    static func quoted(_ s: String) -> String { OrderedJSON.quoted(s) }
}
