import ArgumentParser
import Core
import Dispatch
import Foundation
import ModelStore
import Providers
import Registry
import Synchronization

/// Where `chat` and `run --server` send their turns: the engine on this machine (the server's own path: a model
/// host and the local provider) or a running server (its OpenAI API, so any name it routes works).
struct AnswerSource {
    let provider: any Provider
    let model: String
    /// "smollm2 on this machine", "fast at http://10.0.0.5:8080".
    let description: String

    static func open(model: String, address: ServerAddress, threads: Int?, contextLength: Int?) async throws -> AnswerSource {
        if address.named {
            let base = try address.baseURL()
            let provider = OpenAICompatibleProvider(.init(name: "server", baseURL: base + "/v1", apiKey: address.key(admin: false)?.key))
            return AnswerSource(provider: provider, model: model, description: "\(model) at \(base)")
        }
        var options = ModelHost.Options(directory: ModelDirectory.default, threads: threads, contextLength: contextLength)
        var name = model
        if model.contains("/") || model.hasSuffix(".gguf") || model.hasPrefix("~") {
            let url = try ModelResolver.resolve(model)
            name = url.deletingPathExtension().lastPathComponent
            options.pinned = [name: ModelHost.Declared(source: url.path)]
        }
        let host = ModelHost(options: options)
        note("loading \(name)…")
        do { _ = try await host.worker(for: name) } catch let e as CoreError { throw CLIError(e.description) }
        return AnswerSource(provider: LocalProvider(host: host), model: name, description: "\(name) on this machine")
    }

    /// Streams one answer to stdout; Ctrl-C cancels it (not the program). Returns the text, or nil when cancelled.
    func answer(_ request: ChatRequest, showReasoning: Bool = true) async throws -> (text: String, finish: FinishReason)? {
        let stream = provider.chat(request)
        let cancelled = CancelFlag()
        // SIGINT only raises a flag while the answer streams; a watcher cancels the answer when it sees it.
        interruptRaised.store(false, ordering: .relaxed)
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in interruptRaised.store(true, ordering: .relaxed) }
        var previous = sigaction()
        sigaction(SIGINT, &action, &previous)
        let watcher = Task.detached {
            while !Task.isCancelled {
                if interruptRaised.load(ordering: .relaxed) { cancelled.set(); stream.cancel(); return }
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
        defer { watcher.cancel(); sigaction(SIGINT, &previous, nil) }
        var text = "", finish = FinishReason.stop, thinking = false
        let dim = isatty(STDOUT_FILENO) == 1
        do {
            for try await event in stream.events {
                switch event {
                case .text(let t, _):
                    if thinking { emit(dim ? "\u{1B}[0m\n" : "\n"); thinking = false }
                    text += t
                    emit(t)
                case .reasoning(let t) where showReasoning:
                    if !thinking { emit(dim ? "\u{1B}[2m" : ""); thinking = true }
                    emit(t)
                case .finished(let f): finish = f
                default: break
                }
            }
        } catch {
            if thinking && dim { emit("\u{1B}[0m") }
            if cancelled.value { return nil }
            if let e = error as? CoreError { throw CLIError(e.description) }
            throw error
        }
        if thinking && dim { emit("\u{1B}[0m") }
        if cancelled.value || finish == .cancelled { return nil }
        return (text, finish)
    }
}

/// Set by the SIGINT handler while an answer streams.
let interruptRaised = Atomic<Bool>(false)

final class CancelFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    func set() { lock.lock(); flag = true; lock.unlock() }
    var value: Bool { lock.lock(); defer { lock.unlock() }; return flag }
}

/// The sampling settings `/set` and the command line take, checked by the server's own rule.
enum SamplingOption {
    /// The names `/set` knows, with what they set.
    static let names = ["temperature", "top_p", "top_k", "min_p", "repeat_penalty", "presence_penalty", "frequency_penalty", "seed",
                        "max_tokens", "num_predict"]

    /// Sets `name` to `text` in `s`; throws a message naming the setting and its range.
    static func set(_ name: String, _ text: String, in s: inout SamplingSettings) throws {
        var t = s
        func number() throws -> Double {
            guard let v = Double(text), v.isFinite else { throw CLIError("\(name) takes a number, not '\(text)'") }
            return v
        }
        func integer() throws -> Int {
            guard let v = Int(text) else { throw CLIError("\(name) takes a whole number, not '\(text)'") }
            return v
        }
        switch name {
        case "temperature": t.temperature = try number()
        case "top_p": t.topP = try number()
        case "top_k": t.topK = try integer()
        case "min_p": t.minP = try number()
        case "repeat_penalty": t.repeatPenalty = try number()
        case "presence_penalty": t.presencePenalty = try number()
        case "frequency_penalty": t.frequencyPenalty = try number()
        case "seed":
            guard let v = UInt64(text) else { throw CLIError("seed takes a whole number of 0 or more, not '\(text)'") }
            t.seed = v
        case "max_tokens", "num_predict": t.maxTokens = try integer()
        default: throw CLIError("unknown setting '\(name)' (one of \(names.joined(separator: ", ")))")
        }
        if let (field, message) = t.problem { throw CLIError("\(field) \(message)") }
        s = t
    }
}

struct Chat: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Talk with a model, turn by turn: on this machine, or through a running server (--server).",
        discussion: """
        Type a message and press Enter; the answer streams back. Arrow keys edit the line and go through earlier \
        ones; a message of several lines goes between \"\"\" lines. Ctrl-C stops an answer (the chat goes on); \
        /bye or Ctrl-D leaves. Commands: /set NAME VALUE (temperature, top_p, top_k, min_p, repeat_penalty, \
        presence_penalty, frequency_penalty, seed, max_tokens), /set system TEXT or /system TEXT, /show, /clear \
        (forget the conversation), /save FILE and /load FILE (the conversation as JSON), /bye, /?. With --server, \
        MODEL is any name the server answers to (routed models and aliases too).
        """)

    @Argument(help: "Catalogue name, file name in the model directory, path to a .gguf file, or with --server a name the server serves.")
    var model: String
    @OptionGroup var address: ServerAddress
    @Option(help: "System prompt.") var system: String?
    @Option(help: "Sampling temperature (0: greedy).") var temperature: Double?
    @Option(name: .long, help: "Compute threads (default: all cores).") var threads: Int?
    @Option(name: .customLong("ctx"), help: "Context length in tokens (default: the model's, at most 4096).") var contextLength: Int?

    func validate() throws {
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
        if let t = temperature, !(0...2).contains(t) { throw ValidationError("--temperature must be between 0 and 2") }
        if let c = contextLength, c < 16 { throw ValidationError("--ctx must be at least 16") }
    }

    func run() async throws {
        let source = try await AnswerSource.open(model: model, address: address, threads: threads, contextLength: contextLength)
        var session = ChatSession(source: source)
        session.system = system
        session.sampling.temperature = temperature
        try await session.loop()
    }
}

/// One conversation at the prompt: its turns, system prompt and settings, and the commands that change them.
struct ChatSession {
    let source: AnswerSource
    var system: String?
    var sampling = SamplingSettings()
    var turns: [ChatMessage] = []
    let editor = LineEditor()

    init(source: AnswerSource) { self.source = source }

    mutating func loop() async throws {
        if editor.isTerminal { note("Chatting with \(source.description). /? for help; /bye or Ctrl-D to leave.") }
        while true {
            switch editor.read(prompt: ">>> ") {
            case .end: return
            case .interrupted:
                note("(/bye or Ctrl-D to leave)")
            case .line(let line):
                var text = line
                if text.trimmingCharacters(in: .whitespaces).hasPrefix("\"\"\"") {
                    guard let block = readBlock(first: text) else { return }
                    text = block
                }
                if text.trimmingCharacters(in: .whitespaces).isEmpty { continue }
                if text.hasPrefix("/") {
                    if try command(text) == false { return }
                    continue
                }
                try await send(text)
            }
        }
    }

    /// A message between `"""` lines (the first may carry text after its `"""`).
    private func readBlock(first: String) -> String? {
        var lines: [String] = []
        var rest = first.trimmingCharacters(in: .whitespaces).dropFirst(3)
        if rest.hasSuffix("\"\"\""), rest.count >= 3 { return String(rest.dropLast(3)) }
        if !rest.isEmpty { lines.append(String(rest)) }
        while true {
            switch editor.read(prompt: "... ") {
            case .end: return nil
            case .interrupted: return ""
            case .line(let l):
                if l.hasSuffix("\"\"\"") {
                    rest = l.dropLast(3)
                    if !rest.isEmpty { lines.append(String(rest)) }
                    return lines.joined(separator: "\n")
                }
                lines.append(l)
            }
        }
    }

    private mutating func send(_ text: String) async throws {
        let user = ChatMessage(role: .user, content: text)
        var messages = system.map { [ChatMessage(role: .system, content: $0)] } ?? []
        messages += turns + [user]
        let request = ChatRequest(model: source.model, messages: messages, sampling: sampling, stream: true)
        do {
            guard let (answer, finish) = try await source.answer(request) else {
                emit("\n")
                note("(answer stopped; it is not part of the conversation)")
                return
            }
            emit("\n\n")
            if finish == .length { note("(the answer reached max_tokens)") }
            turns += [user, ChatMessage(role: .assistant, content: answer)]
        } catch let error as CLIError {
            emit("\n")
            note("error: \(error.description)")
        }
    }

    /// Runs a `/` command; false: leave.
    private mutating func command(_ line: String) throws -> Bool {
        let parts = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true).map(String.init)
        switch parts[0] {
        case "/bye", "/exit", "/quit":
            return false
        case "/?", "/help":
            note("""
                /set NAME VALUE   \(SamplingOption.names.joined(separator: ", "))
                /set system TEXT  the system prompt (also /system TEXT)
                /show             the settings and the system prompt
                /clear            forget the conversation (settings stay)
                /save FILE        write the conversation as JSON
                /load FILE        continue a saved conversation
                /bye              leave (also Ctrl-D)
                \"\"\"               begin or end a message of several lines
                """)
        case "/set" where parts.count >= 2 && parts[1] == "system", "/system":
            let text = parts[0] == "/system" ? parts.dropFirst().joined(separator: " ") : (parts.count > 2 ? parts[2] : "")
            system = text.isEmpty ? nil : text
            note(system == nil ? "system prompt cleared" : "system prompt set")
        case "/set":
            guard parts.count == 3 else { note("usage: /set NAME VALUE (\(SamplingOption.names.joined(separator: ", ")))"); break }
            do {
                try SamplingOption.set(parts[1], parts[2], in: &sampling)
                note("set \(parts[1]) to \(parts[2])")
            } catch let e as CLIError {
                note("error: \(e.description)")
            }
        case "/show":
            note("model: \(source.description)")
            note("system: \(system ?? "(none)")")
            let s = sampling
            let set: [(String, String?)] = [("temperature", s.temperature.map { "\($0)" }), ("top_p", s.topP.map { "\($0)" }),
                                            ("top_k", s.topK.map(String.init)), ("min_p", s.minP.map { "\($0)" }),
                                            ("repeat_penalty", s.repeatPenalty.map { "\($0)" }),
                                            ("presence_penalty", s.presencePenalty.map { "\($0)" }),
                                            ("frequency_penalty", s.frequencyPenalty.map { "\($0)" }), ("seed", s.seed.map(String.init)),
                                            ("max_tokens", s.maxTokens.map(String.init))]
            let shown = set.compactMap { k, v in v.map { "\(k) \($0)" } }
            note("settings: " + (shown.isEmpty ? "the model's defaults" : shown.joined(separator: ", ")))
            note("turns: \(turns.count / 2)")
        case "/clear":
            turns = []
            note("conversation cleared")
        case "/save":
            guard parts.count >= 2 else { note("usage: /save FILE"); break }
            let path = parts.dropFirst().joined(separator: " ")
            do {
                try save(to: path)
                note("saved \(turns.count / 2) turns to \(path)")
            } catch {
                note("error: cannot write \(path): \(ConfigFileError.reason(error))")
            }
        case "/load":
            guard parts.count >= 2 else { note("usage: /load FILE"); break }
            let path = parts.dropFirst().joined(separator: " ")
            do {
                try load(from: path)
                note("loaded \(turns.count / 2) turns from \(path)")
            } catch let e as CLIError {
                note("error: \(e.description)")
            } catch {
                note("error: cannot read \(path): \(ConfigFileError.reason(error))")
            }
        default:
            note("unknown command \(parts[0]); /? lists them")
        }
        return true
    }

    struct Saved: Codable {
        struct Turn: Codable { let role: String; let content: String }
        var model: String
        var system: String?
        var settings: [String: String]
        var messages: [Turn]
    }

    private func save(to path: String) throws {
        var settings: [String: String] = [:]
        if let v = sampling.temperature { settings["temperature"] = "\(v)" }
        if let v = sampling.topP { settings["top_p"] = "\(v)" }
        if let v = sampling.topK { settings["top_k"] = "\(v)" }
        if let v = sampling.minP { settings["min_p"] = "\(v)" }
        if let v = sampling.repeatPenalty { settings["repeat_penalty"] = "\(v)" }
        if let v = sampling.presencePenalty { settings["presence_penalty"] = "\(v)" }
        if let v = sampling.frequencyPenalty { settings["frequency_penalty"] = "\(v)" }
        if let v = sampling.seed { settings["seed"] = "\(v)" }
        if let v = sampling.maxTokens { settings["max_tokens"] = "\(v)" }
        let saved = Saved(model: source.model, system: system, settings: settings,
                          messages: turns.map { Saved.Turn(role: $0.role.rawValue, content: $0.content) })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(saved).write(to: URL(fileURLWithPath: (path as NSString).expandingTildeInPath))
    }

    private mutating func load(from path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: (path as NSString).expandingTildeInPath))
        let saved: Saved
        do { saved = try JSONDecoder().decode(Saved.self, from: data) } catch {
            throw CLIError("\(path) is not a saved conversation (expected the JSON /save writes)")
        }
        var s = SamplingSettings()
        for (k, v) in saved.settings.sorted(by: { $0.key < $1.key }) { try SamplingOption.set(k, v, in: &s) }
        let loaded = try saved.messages.enumerated().map { i, t -> ChatMessage in
            guard let role = ChatMessage.Role(rawValue: t.role), role == .user || role == .assistant else {
                throw CLIError("\(path): message \(i) has role '\(t.role)' (expected user or assistant)")
            }
            return ChatMessage(role: role, content: t.content)
        }
        turns = loaded
        system = saved.system
        sampling = s
    }
}
