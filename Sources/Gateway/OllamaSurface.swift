import Core
import Crypto
import Foundation
import Grammar
import Hummingbird
import NIOCore
import Providers

/// Ollama's API on the same port, so that apps written for Ollama (Open WebUI, Continue, the `ollama` SDKs) work
/// unchanged with `OLLAMA_HOST` pointed here: `/api/chat`, `/api/generate`, `/api/tags`, `/api/show`, `/api/ps`,
/// `/api/pull`, `/api/delete`, `/api/copy`, `/api/version`, `HEAD /`. A codec over the one pipeline: requests become
/// canonical ones (`options` → sampling settings, `format` → constrained decoding, `tools`, `think`, `keep_alive`
/// with Ollama's meaning: 0 unloads), answers stream as NDJSON; errors are Ollama's `{"error": "…"}`.
/// Names may carry Ollama's `:latest` tag.
struct OllamaSurface {
    let backend: Backend

    func register(on router: Router<GatewayContext>) {
        router.post("/api/chat") { request, context in try await generate(request, context, chat: true) }
        router.post("/api/generate") { request, context in try await generate(request, context, chat: false) }
        router.get("/api/tags") { _, _ in try await tags() }
        router.post("/api/show") { request, _ in try await show(request) }
        router.get("/api/ps") { _, _ in try await ps() }
        router.post("/api/pull") { request, _ in try await pull(request) }
        router.delete("/api/delete") { request, _ in try await delete(request) }
        router.post("/api/copy") { request, _ in try await copy(request) }
        router.get("/api/version") { _, _ in try json(["version": Self.version]) }
        router.head("/") { _, _ in Response(status: .ok) }
        router.post("/api/embed") { request, context in try await embed(request, context) }
        router.post("/api/embeddings") { request, context in try await legacyEmbeddings(request, context) }
    }

    /// The version `/api/version` reports (Switchyard's own).
    static let version = "0.1.0"

    /// A name as Ollama clients write it (`smollm2:latest`) → the name served here.
    static func servedName(_ name: String) -> String {
        name.hasSuffix(":latest") ? String(name.dropLast(7)) : name
    }

    // MARK: wire types

    struct ToolCallWire: Codable {
        struct Function: Codable {
            let name: String
            /// An object (Ollama sends arguments as JSON, not as a string of JSON).
            let arguments: JSONValue?
        }
        let function: Function

        /// The arguments as JSON text, for the canonical call.
        var argumentsText: String {
            guard let a = function.arguments else { return "{}" }
            if case .string(let s) = a { return s }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return (try? encoder.encode(a)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        }
    }

    struct MessageWire: Decodable {
        let role: String
        let content: String?
        let images: [String]?
        let tool_calls: [ToolCallWire]?
        let tool_name: String?
        let thinking: String?
    }

    struct Options: Decodable {
        let temperature: Double?
        let top_p: Double?
        let top_k: Int?
        let min_p: Double?
        let repeat_penalty: Double?
        let presence_penalty: Double?
        let frequency_penalty: Double?
        let seed: Int64?
        let num_predict: Int?
        let stop: [String]?
        // Sampling Switchyard does not do: refused when set to anything but their "off" value.
        let mirostat: Int?
        let typical_p: Double?
        let tfs_z: Double?

        func settings(ignoreEOS: Bool = false) throws -> SamplingSettings {
            if let m = mirostat, m != 0 { throw APIError(.badRequest, "options.mirostat is not supported (only 0)") }
            if let t = typical_p, t != 1 { throw APIError(.badRequest, "options.typical_p is not supported (only 1)") }
            if let t = tfs_z, t != 1 { throw APIError(.badRequest, "options.tfs_z is not supported (only 1)") }
            if let t = temperature, t < 0 { throw APIError(.badRequest, "options.temperature must not be negative") }
            // num_predict: -1 (no limit) and -2 (fill the context) both mean "no limit of its own" here.
            let max = num_predict.flatMap { $0 < 0 ? nil : $0 }
            return SamplingSettings(temperature: temperature, topP: top_p, topK: top_k, minP: min_p, repeatPenalty: repeat_penalty,
                                    presencePenalty: presence_penalty, frequencyPenalty: frequency_penalty,
                                    seed: seed.map { UInt64(bitPattern: $0) }, maxTokens: max, stop: stop ?? [])
        }
    }

    struct Body: Decodable {
        let model: String
        let messages: [MessageWire]?
        let prompt: String?
        let suffix: String?
        let system: String?
        let template: String?
        let raw: Bool?
        let images: [String]?
        let tools: [OpenAI.WireTool]?
        let options: Options?
        let stream: Bool?
        let keep_alive: OpenAI.KeepAlive?
        let think: Bool?
    }

    // MARK: chat and generate

    private func generate(_ request: Request, _ context: GatewayContext, chat: Bool) async throws -> Response {
        var request = request
        let raw = try await request.collectBody(limit: BodyLimit.maxBytes)
        let b = try JSONDecoder().decode(Body.self, from: Data(buffer: raw))
        let model = await served(b.model)
        if b.images != nil || (b.messages ?? []).contains(where: { $0.images?.isEmpty == false }) {
            throw APIError(.badRequest, "images are not supported: the models served here read text only")
        }
        if let s = b.suffix, !s.isEmpty { throw APIError(.badRequest, "suffix (fill-in-the-middle) is not supported") }
        // No messages (chat) or an empty prompt (generate): load or unload the model, as Ollama does.
        let empty = chat ? (b.messages ?? []).isEmpty : (b.prompt ?? "").isEmpty
        if empty { return try await loadOrUnload(model, keepAlive: b.keep_alive?.duration, chat: chat) }

        var messages: [ChatMessage] = []
        var rawPrompt: String?
        if chat {
            messages = try Self.canonical(b.messages ?? [])
        } else if let template = b.template, !template.isEmpty {
            rawPrompt = try Self.fill(template, system: b.system, prompt: b.prompt ?? "")
        } else if b.raw ?? false {
            rawPrompt = b.prompt
        } else {
            if let s = b.system { messages.append(ChatMessage(role: .system, content: s)) }
            messages.append(ChatMessage(role: .user, content: b.prompt ?? ""))
        }
        var core = ChatRequest(model: model, messages: messages, sampling: try (b.options?.settings() ?? SamplingSettings()),
                               tools: try OpenAI.canonical(b.tools ?? []), stream: b.stream ?? true, rawPrompt: rawPrompt)
        core.keepAlive = b.keep_alive?.duration
        core.hints = try RequestHints.from(request, metadata: nil)
        core.responseFormat = try Self.format(raw)
        if b.think == true {
            let info = try? await backend.models.details(model)
            if let info, !(info.template.map { $0.contains("<think>") } ?? false) {
                throw APIError(.badRequest, "\"\(b.model)\" does not support thinking")
            }
        }
        let showThinking = b.think ?? true
        let began = Date()
        let started = try await backend.start(core, kind: chat ? "ollama-chat" : "ollama-generate", caller: context.caller, record: context.record)
        let name = b.model
        let unloadAfter = core.keepAlive == .zero
        let models = backend.models
        @Sendable func finalLine(_ r: CollectedCompletion, firstToken: Date?) -> Final {
            let end = Date()
            let first = firstToken ?? end
            // Ollama's arguments are objects: a call cut off before its arguments closed (`length`) cannot be one, so its
            // text goes to the content instead.
            var calls: [ToolCallWire] = []
            var content = r.text
            for call in r.toolCalls.calls {
                if let object = Self.argumentsObject(call.arguments) {
                    calls.append(ToolCallWire(function: .init(name: call.name, arguments: object)))
                } else {
                    content += "\(call.name)(\(call.arguments)"
                }
            }
            return Final(model: name, created_at: Self.timestamp(end), chat: chat, content: content, thinking: showThinking && !r.reasoning.isEmpty ? r.reasoning : nil,
                         tool_calls: calls.isEmpty ? nil : calls, done_reason: Self.doneReason(r.finish),
                         total_duration: Self.nanoseconds(end.timeIntervalSince(began)), load_duration: 0,
                         prompt_eval_count: r.usage.promptTokens, prompt_eval_duration: Self.nanoseconds(first.timeIntervalSince(began)),
                         eval_count: r.usage.completionTokens, eval_duration: Self.nanoseconds(end.timeIntervalSince(first)))
        }
        guard core.stream else {
            let r = try await collect(started)
            if unloadAfter { _ = await models.unload(model) }
            return try json(finalLine(r, firstToken: nil), headers: started.routeHeaders)
        }
        var headers: HTTPFields = [.contentType: "application/x-ndjson"]
        headers.append(contentsOf: started.routeHeaders)
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
            var totals = CollectedCompletion()
            var firstToken: Date?
            func line(_ v: some Encodable) async throws {
                var buffer = ByteBuffer(bytes: try encoder.encode(v))
                buffer.writeString("\n")
                try await writer.write(buffer)
            }
            do {
                while true {
                    let event: ChatEvent?
                    do { event = try await started.next() } catch {
                        try await line(["error": APIError.from(error).message])
                        break
                    }
                    guard let event else {
                        totals.text = ""; totals.reasoning = ""
                        try await line(finalLine(totals, firstToken: firstToken))
                        break
                    }
                    switch event {
                    case .text(let t, _):
                        if firstToken == nil { firstToken = Date() }
                        try await line(Piece(model: name, created_at: Self.timestamp(Date()), chat: chat, content: t, thinking: nil))
                    case .reasoning(let t):
                        if firstToken == nil { firstToken = Date() }
                        totals.reasoning += t
                        if showThinking { try await line(Piece(model: name, created_at: Self.timestamp(Date()), chat: chat, content: "", thinking: t)) }
                    case .toolCall(let piece):
                        if firstToken == nil { firstToken = Date() }
                        totals.toolCalls.add(piece)
                    case .usage(let u): totals.usage = u
                    case .finished(let f): totals.finish = f
                    case .reasoningSignature: continue   // Ollama's messages carry no signature
                    }
                }
                if unloadAfter { _ = await models.unload(model) }
                try await writer.finish(nil)
            } catch {
                started.cancel()
                throw error
            }
        })
    }

    /// A streamed piece: `message` for chat, `response` for generate.
    struct Piece: Encodable {
        let model: String
        let created_at: String
        let chat: Bool
        let content: String
        let thinking: String?
        enum Keys: String, CodingKey { case model, created_at, message, response, thinking, done }
        struct Message: Encodable { let role = "assistant"; let content: String; let thinking: String? }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: Keys.self)
            try c.encode(model, forKey: .model)
            try c.encode(created_at, forKey: .created_at)
            if chat { try c.encode(Message(content: content, thinking: thinking), forKey: .message) } else {
                try c.encode(content, forKey: .response)
                try c.encodeIfPresent(thinking, forKey: .thinking)
            }
            try c.encode(false, forKey: .done)
        }
    }

    /// The last line (or the whole answer): the text when whole, tool calls, why it ended and the counts.
    struct Final: Encodable {
        let model: String
        let created_at: String
        let chat: Bool
        let content: String
        let thinking: String?
        let tool_calls: [ToolCallWire]?
        let done_reason: String
        let total_duration: Int64
        let load_duration: Int64
        let prompt_eval_count: Int
        let prompt_eval_duration: Int64
        let eval_count: Int
        let eval_duration: Int64
        enum Keys: String, CodingKey {
            case model, created_at, message, response, thinking, done, done_reason, total_duration, load_duration
            case prompt_eval_count, prompt_eval_duration, eval_count, eval_duration
        }
        struct Message: Encodable {
            let role = "assistant"; let content: String; let thinking: String?; let tool_calls: [ToolCallWire]?
        }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: Keys.self)
            try c.encode(model, forKey: .model)
            try c.encode(created_at, forKey: .created_at)
            if chat { try c.encode(Message(content: content, thinking: thinking, tool_calls: tool_calls), forKey: .message) } else {
                try c.encode(content, forKey: .response)
                try c.encodeIfPresent(thinking, forKey: .thinking)
            }
            try c.encode(true, forKey: .done)
            try c.encode(done_reason, forKey: .done_reason)
            try c.encode(total_duration, forKey: .total_duration)
            try c.encode(load_duration, forKey: .load_duration)
            try c.encode(prompt_eval_count, forKey: .prompt_eval_count)
            try c.encode(prompt_eval_duration, forKey: .prompt_eval_duration)
            try c.encode(eval_count, forKey: .eval_count)
            try c.encode(eval_duration, forKey: .eval_duration)
        }
    }

    private func loadOrUnload(_ model: String, keepAlive: Duration?, chat: Bool) async throws -> Response {
        let reason: String
        if keepAlive == .zero {
            _ = await backend.models.unload(model)
            reason = "unload"
        } else {
            _ = try await backend.models.load(model, keepAlive: keepAlive)
            reason = "load"
        }
        struct Done: Encodable {
            let model: String; let created_at: String; let message: [String: String]?; let response: String?
            let done = true; let done_reason: String
        }
        return try json(Done(model: model, created_at: Self.timestamp(Date()), message: chat ? ["role": "assistant", "content": ""] : nil,
                             response: chat ? nil : "", done_reason: reason))
    }

    // MARK: translation

    /// Ollama messages in canonical form: a tool result names its call by `tool_name` (Ollama gives calls no ids),
    /// so calls are numbered and each result is linked to the latest call of that name.
    static func canonical(_ wire: [MessageWire]) throws -> [ChatMessage] {
        var out: [ChatMessage] = []
        var lastCall: [String: String] = [:]
        var count = 0
        for (i, m) in wire.enumerated() {
            let role: ChatMessage.Role
            switch m.role {
            case "system": role = .system
            case "user": role = .user
            case "assistant": role = .assistant
            case "tool": role = .tool
            default: throw APIError(.badRequest, "messages[\(i)].role '\(m.role)' is not one of system, user, assistant, tool")
            }
            var message = ChatMessage(role: role, content: m.content ?? "")
            for call in m.tool_calls ?? [] {
                let id = "call_\(count)"
                count += 1
                lastCall[call.function.name] = id
                message.toolCalls.append(ToolCall(id: id, name: call.function.name, arguments: call.argumentsText))
            }
            if role == .tool { message.toolCallID = m.tool_name.flatMap { lastCall[$0] } ?? lastCall.values.first }
            out.append(message)
        }
        return out
    }

    /// `format`: `"json"` → one JSON object; a JSON Schema (members kept in the client's order) → answers that
    /// validate; absent or `""` → free text.
    static func format(_ body: ByteBuffer) throws -> ResponseFormat {
        let text = String(buffer: body)
        guard text.contains("\"format\"") else { return .text }
        guard let json = try? OrderedJSON.parse(text, maxDepth: 128) else { return .text }
        switch json["format"] {
        case nil, .null?, .string("")?: return .text
        case .string("json")?: return .jsonObject
        case .object(let members)?: return .jsonSchema(name: "format", schema: OrderedJSON.object(members).text, strict: true)
        default: throw APIError(.badRequest, "format must be \"json\" or a JSON Schema object")
        }
    }

    /// Ollama's `template` for one request: `{{ .System }}`, `{{ .Prompt }}` and `{{ .Response }}` are filled in;
    /// any other template action is refused by name (Go templates are not interpreted here).
    static func fill(_ template: String, system: String?, prompt: String) throws -> String {
        var out = ""
        var rest = Substring(template)
        while let open = rest.range(of: "{{") {
            out += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].range(of: "}}") else {
                throw APIError(.badRequest, "template: '{{' without '}}'")
            }
            let action = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
                .trimmingCharacters(in: CharacterSet(charactersIn: "-")).trimmingCharacters(in: .whitespaces)
            switch action {
            case ".System": out += system ?? ""
            case ".Prompt": out += prompt
            case ".Response": break
            default: throw APIError(.badRequest, "template: '{{ \(action) }}' is not supported (only .System, .Prompt and .Response)")
            }
            rest = rest[close.upperBound...]
        }
        return out + rest
    }

    /// A call's arguments text as the object Ollama sends; nil when it is not a JSON object.
    static func argumentsObject(_ text: String) -> JSONValue? {
        guard let v = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)), case .object = v else { return nil }
        return v
    }

    static func doneReason(_ f: FinishReason) -> String {
        switch f {
        case .length: "length"
        case .cancelled: "stop"
        default: "stop"
        }
    }

    static func nanoseconds(_ seconds: TimeInterval) -> Int64 { Int64(max(0, seconds) * 1e9) }

    static func timestamp(_ d: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: d)
    }

    // MARK: models

    struct Details: Encodable {
        let parent_model = ""
        let format = "gguf"
        let family: String
        let families: [String]
        let parameter_size: String
        let quantization_level: String
    }

    static func details(architecture: String?, parameters: Int?, quantization: String?) -> Details {
        Details(family: architecture ?? "", families: architecture.map { [$0] } ?? [],
                parameter_size: parameters.map(Self.parameterSize) ?? "", quantization_level: quantization ?? "")
    }

    static func parameterSize(_ n: Int) -> String {
        n >= 1_000_000_000 ? String(format: "%.1fB", Double(n) / 1e9) : String(format: "%.0fM", Double(n) / 1e6)
    }

    /// An identifier for a model file (not a hash of its bytes: a hash of its path, size and modification time).
    static func digest(path: String, size: Int64) -> String {
        let modified = (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        let d = SHA256.hash(data: Data("\(path)\n\(size)\n\(modified)".utf8))
        return d.map { String(format: "%02x", $0) }.joined()
    }

    private func tags() async throws -> Response {
        struct Entry: Encodable {
            let name: String; let model: String; let modified_at: String; let size: Int64; let digest: String; let details: Details
        }
        let list = await backend.models.list()
        let entries = list.map { m in
            let modified = (try? FileManager.default.attributesOfItem(atPath: m.path)[.modificationDate] as? Date) ?? Date()
            return Entry(name: m.name, model: m.name, modified_at: Self.timestamp(modified), size: m.sizeBytes,
                         digest: Self.digest(path: m.path, size: m.sizeBytes),
                         details: Self.details(architecture: m.architecture, parameters: nil, quantization: m.quantization))
        }
        struct List: Encodable { let models: [Entry] }
        return try json(List(models: entries))
    }

    struct NameBody: Decodable { let model: String?; let name: String? }

    private func name(_ request: Request) async throws -> String {
        var request = request
        let body = try await request.collectBody(limit: 1 << 16)
        let n = try JSONDecoder().decode(NameBody.self, from: Data(buffer: body))
        guard let name = n.model ?? n.name, !name.isEmpty else { throw APIError(.badRequest, "model is required") }
        return await served(name)
    }

    /// `NAME-TAG` for `NAME:TAG` (the name a pulled `NAME:TAG` is served under); nil without a tag. (A key's model
    /// list is checked against the name as sent: a key for `NAME-TAG` asks for it by that name.)
    static func taggedAlternative(_ name: String) -> String? {
        guard let colon = name.lastIndex(of: ":") else { return nil }
        return String(name[..<colon]) + "-" + String(name[name.index(after: colon)...])
    }

    /// The served name for an Ollama client's `NAME:TAG`: `:latest` dropped, and `NAME:TAG` found as `NAME-TAG` (the
    /// file an `ollama:` pull saves) when no model has the name with the colon.
    func served(_ name: String) async -> String {
        let n = Self.servedName(name)
        guard let dashed = Self.taggedAlternative(n) else { return n }
        let names = Set((try? await backend.provider.models().map(\.name)) ?? [])
        guard !names.contains(n) else { return n }
        return names.contains(dashed) ? dashed : n
    }

    private func show(_ request: Request) async throws -> Response {
        let d = try await backend.models.details(try await name(request))
        struct Show: Encodable {
            let modelfile: String; let parameters: String; let template: String; let details: Details
            let model_info: [String: String]; let capabilities: [String]; let modified_at: String
        }
        var capabilities = ["completion", "tools"]
        if d.template?.contains("<think>") == true { capabilities.append("thinking") }
        var info = d.metadata
        if let p = d.parameterCount { info["general.parameter_count"] = String(p) }
        let parameters = d.parameters.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: "\n")
        return try json(Show(
            modelfile: "# served by Switchyard from a GGUF file\nFROM \(d.name)\n", parameters: parameters, template: d.template ?? "",
            details: Self.details(architecture: d.architecture, parameters: d.parameterCount, quantization: d.quantization),
            model_info: info, capabilities: capabilities, modified_at: Self.timestamp(Date())))
    }

    private func ps() async throws -> Response {
        struct Entry: Encodable {
            let name: String; let model: String; let size: Int; let digest: String; let details: Details
            let expires_at: String; let size_vram: Int
        }
        let list = await backend.models.list()
        let entries = list.compactMap { m -> Entry? in
            guard let loaded = m.loaded else { return nil }
            return Entry(name: m.name, model: m.name, size: loaded.memoryBytes, digest: Self.digest(path: m.path, size: m.sizeBytes),
                         details: Self.details(architecture: m.architecture, parameters: nil, quantization: m.quantization),
                         expires_at: Self.timestamp(Date().addingTimeInterval(300)), size_vram: 0)
        }
        struct List: Encodable { let models: [Entry] }
        return try json(List(models: entries))
    }

    private func pull(_ request: Request) async throws -> Response {
        var request = request
        let body = try await request.collectBody(limit: 1 << 16)
        struct PullBody: Decodable { let model: String?; let name: String?; let stream: Bool? }
        let p = try JSONDecoder().decode(PullBody.self, from: Data(buffer: body))
        guard let spec = (p.model ?? p.name).map(Self.servedName), !spec.isEmpty else { throw APIError(.badRequest, "model is required") }
        let models = backend.models
        struct Status: Encodable { let status: String; var digest: String? = nil; var total: Int64? = nil; var completed: Int64? = nil }
        guard p.stream ?? true else {
            _ = try await models.pull(spec) { _ in }
            return try json(Status(status: "success"))
        }
        let (reports, continuation) = AsyncStream<PullReport>.makeStream(bufferingPolicy: .bufferingNewest(64))
        let task = Task {
            defer { continuation.finish() }
            return try await models.pull(spec) { continuation.yield($0) }
        }
        return Response(status: .ok, headers: [.contentType: "application/x-ndjson"], body: ResponseBody { writer in
            let encoder = JSONEncoder()
            func line(_ v: some Encodable) async throws {
                var buffer = ByteBuffer(bytes: try encoder.encode(v))
                buffer.writeString("\n")
                try await writer.write(buffer)
            }
            try await line(Status(status: "pulling manifest"))
            var lastPhase = ""
            for await r in reports {
                switch r.phase {
                case "verifying":
                    if lastPhase != r.phase { try await line(Status(status: "verifying sha256 digest")) }
                case "already present":
                    try await line(Status(status: "pulling \(r.file)", digest: r.file, total: r.done, completed: r.done))
                default:
                    try await line(Status(status: "pulling \(r.file)", digest: r.file, total: r.total, completed: r.done))
                }
                lastPhase = r.phase
            }
            do {
                _ = try await task.value
                try await line(Status(status: "success"))
            } catch {
                try await line(["error": APIError.from(error).message])
            }
            try await writer.finish(nil)
        })
    }

    private func delete(_ request: Request) async throws -> Response {
        try await backend.models.delete(try await name(request))
        return Response(status: .ok)
    }

    private func copy(_ request: Request) async throws -> Response {
        var request = request
        let body = try await request.collectBody(limit: 1 << 16)
        struct CopyBody: Decodable { let source: String; let destination: String }
        let c = try JSONDecoder().decode(CopyBody.self, from: Data(buffer: body))
        try await backend.models.copy(Self.servedName(c.source), to: Self.servedName(c.destination))
        return Response(status: .ok)
    }
}
