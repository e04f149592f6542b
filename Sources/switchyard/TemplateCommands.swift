import ArgumentParser
import ChatTemplates
import Foundation
import GGUF
import ModelStore

struct Template: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Render and inspect chat templates (the Jinja templates models ship in tokenizer.chat_template).",
        subcommands: [RenderTemplate.self, ShowTemplate.self])
}

struct RenderTemplate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "render",
        abstract: "Print exactly what a chat template renders for a context (no newline is added).",
        discussion: """
        The context is a JSON object whose keys become template variables, e.g.
          {"messages": [{"role": "user", "content": "Hi"}], "add_generation_prompt": true,
           "bos_token": "<s>", "eos_token": "</s>", "tools": [...]}
        Rendering follows Hugging Face transformers: trim_blocks and lstrip_blocks on, loop controls, \
        tojson without ASCII escaping, raise_exception() and strftime_now(). A template error names its line.
        """)

    @Option(help: "The template file (Jinja).") var template: String?
    @Option(help: "Use this model's own template instead of --template (catalogue name, file name or path).") var model: String?
    @Option(help: "JSON file with the context ('-': standard input).") var context: String
    @Option(help: "The time strftime_now() sees, e.g. 2026-01-15T10:30:00 (UTC; default: now).") var now: String?

    func run() throws {
        let source: String
        switch (template, model) {
        case (let path?, nil): source = try String(contentsOfFile: path, encoding: .utf8)
        case (nil, let name?): source = try modelTemplate(name)
        default: throw ValidationError("give exactly one of --template FILE or --model MODEL")
        }
        let data = context == "-" ? FileHandle.standardInput.readDataToEndOfFile()
                                  : try Data(contentsOf: URL(fileURLWithPath: context))
        guard case .object(let object) = try JinjaValue(jsonData: data) else {
            throw CLIError("the context must be a JSON object (its keys become template variables)")
        }
        var variables: [String: JinjaValue] = [:]
        for (key, value) in object { variables[key] = value }
        let date = try now.map(parseTime) ?? Date()
        let compiled = try ChatTemplate(source: source)
        emit(try compiled.render(variables, now: date))
    }

    func parseTime(_ text: String) throws -> Date {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        for format in ["yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd"] {
            f.dateFormat = format
            if let d = f.date(from: text) { return d }
        }
        throw ValidationError("--now '\(text)' is not a time such as 2026-01-15T10:30:00")
    }
}

struct ShowTemplate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print a model's chat template (tokenizer.chat_template), as stored in its file.")

    @Argument(help: "Catalogue name, file name in the model directory, or path to a .gguf file.") var model: String

    func run() throws {
        emit(try modelTemplate(model))
    }
}

/// The chat template stored in a model file, or an error saying that the model has none.
func modelTemplate(_ model: String) throws -> String {
    let file = try GGUFFile(path: try ModelResolver.resolve(model).path)
    guard let template = file.string("tokenizer.chat_template"), !template.isEmpty else {
        throw CLIError("\(model) has no chat template (tokenizer.chat_template); chats with it use ChatML")
    }
    return template
}
