import Core
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Anthropic's Messages API (`POST /v1/messages`, `POST /v1/messages/count_tokens`), so that tools written for it
/// (Claude Code, the `anthropic` SDKs) can use any model here. A codec over the one pipeline: `system` (a string or
/// text blocks), turns of content blocks (`text`, `tool_use`, `tool_result`), `tools` / `tool_choice`,
/// `stop_sequences`, `max_tokens` become a canonical request; the answer comes back as a message (whole), or as
/// Anthropic's event sequence (`message_start`, `content_block_start` / `_delta` / `_stop` with `text_delta`,
/// `input_json_delta`, `thinking_delta`, `message_delta` with the stop reason and usage, `message_stop`, `ping`).
/// Errors are Anthropic's `{"type": "error", "error": {"type", "message"}}`; `x-api-key` is accepted as the key.
/// Thinking blocks of earlier assistant turns travel with them, signature and all (an Anthropic upstream needs them
/// back in a tool loop); other backends leave them out of the prompt.
struct AnthropicSurface {
    let backend: Backend

    /// Versions of the API whose shapes these are (the `anthropic-version` header; absent is taken as the latest).
    static let versions: Set<String> = ["2023-06-01", "2023-01-01"]

    func register(on router: Router<GatewayContext>) {
        router.post("/v1/messages") { request, context in try await messages(request, context) }
        router.post("/v1/messages/count_tokens") { request, _ in try await countTokens(request) }
    }

    static func newID() -> String {
        var rng = SystemRandomNumberGenerator()
        let chars = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        return "msg_" + String((0..<24).map { _ in chars[Int(rng.next() % UInt64(chars.count))] })
    }

    private static func bad(_ message: String) -> APIError { APIError(.badRequest, message) }

    // MARK: request

    /// The canonical request for a Messages API body.
    static func canonical(_ body: [String: Any], counting: Bool = false) throws -> ChatRequest {
        guard let model = body["model"] as? String, !model.isEmpty else { throw bad("model: field required") }
        var maxTokens: Int?
        if !counting {
            guard let m = body["max_tokens"] as? Int else { throw bad("max_tokens: field required") }
            guard m >= 1 else { throw bad("max_tokens: must be at least 1") }
            maxTokens = m
        }
        var messages: [ChatMessage] = []
        switch body["system"] {
        case nil, is NSNull: break
        case let s as String: if !s.isEmpty { messages.append(ChatMessage(role: .system, content: s)) }
        case let blocks as [Any]:
            let text = try blocks.enumerated().map { i, b -> String in
                guard let b = b as? [String: Any], b["type"] as? String == "text", let t = b["text"] as? String else {
                    throw bad("system.\(i): only text blocks are supported")
                }
                return t
            }.joined(separator: "\n\n")
            if !text.isEmpty { messages.append(ChatMessage(role: .system, content: text)) }
        default: throw bad("system: must be a string or a list of text blocks")
        }
        guard let turns = body["messages"] as? [Any] else { throw bad("messages: field required") }
        for (i, t) in turns.enumerated() {
            guard let turn = t as? [String: Any], let role = turn["role"] as? String else { throw bad("messages.\(i): role is required") }
            guard role == "user" || role == "assistant" else { throw bad("messages.\(i).role: must be user or assistant") }
            messages += try Self.turn(role == "user" ? .user : .assistant, turn["content"], at: "messages.\(i)")
        }
        var sampling = SamplingSettings()
        sampling.maxTokens = maxTokens
        if let v = body["temperature"] {
            guard let t = v as? Double, (0...1).contains(t) else { throw bad("temperature: must be between 0 and 1") }
            sampling.temperature = t
        }
        if let v = body["top_p"] { guard let p = v as? Double else { throw bad("top_p: must be a number") }; sampling.topP = p }
        if let v = body["top_k"] { guard let k = v as? Int else { throw bad("top_k: must be an integer") }; sampling.topK = k }
        if let v = body["stop_sequences"] {
            guard let stops = v as? [String] else { throw bad("stop_sequences: must be a list of strings") }
            sampling.stop = stops
        }
        var tools: [ToolDefinition] = []
        if let v = body["tools"] {
            guard let list = v as? [Any] else { throw bad("tools: must be a list") }
            for (i, t) in list.enumerated() {
                guard let tool = t as? [String: Any], let name = tool["name"] as? String else { throw bad("tools.\(i).name: field required") }
                if let type = tool["type"] as? String, type != "custom" {
                    throw bad("tools.\(i): server tools ('\(type)') are not supported; only client tools with an input_schema")
                }
                guard let schema = tool["input_schema"] else { throw bad("tools.\(i).input_schema: field required") }
                tools.append(ToolDefinition(name: name, description: tool["description"] as? String, parametersJSON: try Self.json(schema)))
            }
        }
        var request = ChatRequest(model: model, messages: messages, sampling: sampling, tools: tools, stream: body["stream"] as? Bool ?? false)
        if let v = body["tool_choice"] {
            guard let choice = v as? [String: Any], let type = choice["type"] as? String else { throw bad("tool_choice: must be an object with a type") }
            switch type {
            case "auto": request.toolChoice = .auto
            case "any": request.toolChoice = .required
            case "none": request.toolChoice = .none
            case "tool":
                guard let name = choice["name"] as? String else { throw bad("tool_choice.name: field required") }
                guard tools.contains(where: { $0.name == name }) else { throw bad("tool_choice.name: '\(name)' is not among the tools") }
                request.toolChoice = .function(name)
            default: throw bad("tool_choice.type: must be auto, any, tool or none")
            }
            if choice["disable_parallel_tool_use"] as? Bool == true { request.parallelToolCalls = false }
            if request.toolChoice == .required, tools.isEmpty { throw bad("tool_choice: 'any' needs tools") }
        }
        return request
    }

    /// One turn's content (a string, or blocks) as canonical messages: tool results become `tool` messages.
    static func turn(_ role: ChatMessage.Role, _ content: Any?, at path: String) throws -> [ChatMessage] {
        if let s = content as? String { return [ChatMessage(role: role, content: s)] }
        guard let blocks = content as? [Any] else { throw bad("\(path).content: must be a string or a list of blocks") }
        var out: [ChatMessage] = []
        var message = ChatMessage(role: role, content: "")
        for (j, b) in blocks.enumerated() {
            guard let block = b as? [String: Any], let type = block["type"] as? String else { throw bad("\(path).content.\(j): type is required") }
            switch type {
            case "text":
                message.content += block["text"] as? String ?? ""
            case "tool_use" where role == .assistant:
                guard let id = block["id"] as? String, let name = block["name"] as? String else {
                    throw bad("\(path).content.\(j): tool_use needs id and name")
                }
                message.toolCalls.append(ToolCall(id: id, name: name, arguments: try Self.json(block["input"] ?? [String: Any]())))
            case "tool_result" where role == .user:
                guard let id = block["tool_use_id"] as? String else { throw bad("\(path).content.\(j).tool_use_id: field required") }
                var text: String
                switch block["content"] {
                case nil: text = ""
                case let s as String: text = s
                case let parts as [Any]:
                    text = try parts.map { p -> String in
                        guard let p = p as? [String: Any], p["type"] as? String == "text" else {
                            throw bad("\(path).content.\(j).content: only text is supported in tool results")
                        }
                        return p["text"] as? String ?? ""
                    }.joined()
                default: throw bad("\(path).content.\(j).content: must be a string or text blocks")
                }
                if block["is_error"] as? Bool == true { text = "Error: " + text }
                out.append(ChatMessage(role: .tool, content: text, toolCallID: id))
            case "thinking" where role == .assistant:
                message.reasoning.append(ReasoningBlock(text: block["thinking"] as? String ?? "", signature: block["signature"] as? String))
            case "redacted_thinking" where role == .assistant:
                guard let data = block["data"] as? String else { throw bad("\(path).content.\(j).data: field required") }
                message.reasoning.append(ReasoningBlock(text: "", redacted: data))
            case "image", "document":
                throw bad("\(path).content.\(j): \(type) blocks are not supported (the models here read text)")
            default:
                throw bad("\(path).content.\(j): block type '\(type)' is not supported here")
            }
        }
        if !message.content.isEmpty || !message.toolCalls.isEmpty || !message.reasoning.isEmpty || out.isEmpty { out.insert(message, at: message.role == .user ? out.count : 0) }
        return out
    }

    static func json(_ value: Any) throws -> String {
        guard JSONSerialization.isValidJSONObject(value) else { throw bad("input_schema/input must be a JSON object") }
        return String(decoding: try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
    }

    private static func body(_ request: inout Request) async throws -> [String: Any] {
        if let v = request.headers[HTTPField.Name("anthropic-version")!], !versions.contains(v) {
            throw bad("anthropic-version '\(v)' is not supported (2023-06-01)")
        }
        let raw = try await request.collectBody(limit: BodyLimit.maxBytes)
        guard let object = try? JSONSerialization.jsonObject(with: Data(buffer: raw)) as? [String: Any] else {
            throw bad("the body must be a JSON object")
        }
        return object
    }

    // MARK: answers

    static func stopReason(_ f: FinishReason) -> String {
        switch f {
        case .length: "max_tokens"
        case .toolCalls: "tool_use"
        case .contentFilter: "refusal"
        default: "end_turn"
        }
    }

    static func usage(_ u: Usage) -> [String: Any] {
        ["input_tokens": u.promptTokens - u.cachedPromptTokens, "output_tokens": u.completionTokens,
         "cache_read_input_tokens": u.cachedPromptTokens, "cache_creation_input_tokens": 0]
    }

    static func inputObject(_ arguments: String) -> Any {
        (try? JSONSerialization.jsonObject(with: Data(arguments.utf8))) ?? [String: Any]()
    }

    private func messages(_ request: Request, _ context: GatewayContext) async throws -> Response {
        var request = request
        let b = try await Self.body(&request)
        var core = try Self.canonical(b)
        core.hints = try RequestHints.from(request, metadata: nil)
        let model = core.model
        let started = try await backend.start(core, kind: "messages", caller: context.caller, record: context.record)
        let id = Self.newID()
        guard core.stream else {
            let r = try await collect(started)
            var content: [[String: Any]] = []
            for block in r.reasoningBlocks {
                content.append(["type": "thinking", "thinking": block.text, "signature": block.signature ?? ""])
            }
            if !r.text.isEmpty { content.append(["type": "text", "text": r.text]) }
            for call in r.toolCalls.calls {
                content.append(["type": "tool_use", "id": call.id, "name": call.name, "input": Self.inputObject(call.arguments)])
            }
            let message: [String: Any] = [
                "id": id, "type": "message", "role": "assistant", "model": model, "content": content,
                "stop_reason": Self.stopReason(r.finish), "stop_sequence": NSNull(), "usage": Self.usage(r.usage),
            ]
            var headers: HTTPFields = [.contentType: "application/json"]
            headers.append(contentsOf: started.routeHeaders)
            return Response(status: .ok, headers: headers,
                            body: ResponseBody(byteBuffer: ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: message, options: [.sortedKeys]))))
        }
        return backend.streams.respond(started, renderer: MessageStreamRenderer(events: MessageEvents(id: id, model: model)),
                                       framing: .sse, caller: context.caller)
    }

    /// `input_tokens` of a request as the model would see it: the prompt rendered and tokenized (local models).
    private func countTokens(_ request: Request) async throws -> Response {
        var request = request
        let b = try await Self.body(&request)
        let core = try Self.canonical(b, counting: true)
        let count = try await backend.countPromptTokens(core)
        let data = try JSONSerialization.data(withJSONObject: ["input_tokens": count])
        return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Anthropic's stream events as a stream's frames.
struct MessageStreamRenderer: StreamRenderer {
    var events: MessageEvents

    private static func frames(_ list: [(String, [String: Any])]) throws -> [StreamFrame] {
        try list.map { name, data in
            StreamFrame(event: name, data: ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: data, options: [.sortedKeys])))
        }
    }

    func start() throws -> [StreamFrame] { try Self.frames(events.start()) }
    mutating func next(_ event: ChatEvent) throws -> [StreamFrame] { try Self.frames(events.next(event)) }
    mutating func end() throws -> [StreamFrame] { try Self.frames(events.end()) }
    func failed(_ error: APIError) -> [StreamFrame] {
        let data: [String: Any] = ["type": "error", "error": ["type": APIError.anthropicType(error.status), "message": error.message]]
        return (try? Self.frames([("error", data)])) ?? []
    }
}

/// Anthropic's stream events for canonical events: one content block at a time (a thinking, text or tool_use block
/// opens when the kind of content changes, and closes before the next opens), then the stop reason and usage.
struct MessageEvents {
    let id: String
    let model: String
    private var index = -1
    private enum Open { case none, text, thinking, tool(Int) }
    private var open = Open.none
    private var reason = FinishReason.stop
    private var usage = Usage(promptTokens: 0, completionTokens: 0)

    init(id: String, model: String) { self.id = id; self.model = model }

    func start() -> [(String, [String: Any])] {
        [("message_start", ["type": "message_start", "message": [
            "id": id, "type": "message", "role": "assistant", "model": model, "content": [Any](),
            "stop_reason": NSNull(), "stop_sequence": NSNull(),
            "usage": ["input_tokens": 0, "output_tokens": 0] as [String: Any],
        ] as [String: Any]]),
         ("ping", ["type": "ping"])]
    }

    private mutating func close() -> [(String, [String: Any])] {
        if case .none = open { return [] }
        open = .none
        return [("content_block_stop", ["type": "content_block_stop", "index": index])]
    }

    private mutating func begin(_ block: [String: Any], _ kind: Open) -> [(String, [String: Any])] {
        var out = close()
        index += 1
        open = kind
        out.append(("content_block_start", ["type": "content_block_start", "index": index, "content_block": block]))
        return out
    }

    private func delta(_ d: [String: Any]) -> (String, [String: Any]) {
        ("content_block_delta", ["type": "content_block_delta", "index": index, "delta": d])
    }

    mutating func next(_ event: ChatEvent) -> [(String, [String: Any])] {
        switch event {
        case .text(let t, _):
            guard !t.isEmpty else { return [] }
            var out: [(String, [String: Any])] = []
            if case .text = open {} else { out += begin(["type": "text", "text": ""], .text) }
            out.append(delta(["type": "text_delta", "text": t]))
            return out
        case .reasoning(let t):
            guard !t.isEmpty else { return [] }
            var out: [(String, [String: Any])] = []
            if case .thinking = open {} else { out += begin(["type": "thinking", "thinking": "", "signature": ""], .thinking) }
            out.append(delta(["type": "thinking_delta", "thinking": t]))
            return out
        case .reasoningSignature(let s):
            // The signature ends its thinking block.
            var out: [(String, [String: Any])] = []
            if case .thinking = open {} else { out += begin(["type": "thinking", "thinking": "", "signature": ""], .thinking) }
            out.append(delta(["type": "signature_delta", "signature": s]))
            return out + close()
        case .toolCall(let d):
            var out: [(String, [String: Any])] = []
            var same = false
            if case .tool(let i) = open, i == d.index { same = true }
            if !same || d.name != nil {
                out += begin(["type": "tool_use", "id": d.id ?? "call_\(d.index)", "name": d.name ?? "", "input": [String: Any]()], .tool(d.index))
            }
            if !d.arguments.isEmpty { out.append(delta(["type": "input_json_delta", "partial_json": d.arguments])) }
            return out
        case .finished(let f):
            reason = f
            return close()
        case .usage(let u):
            usage = u
            return []
        }
    }

    mutating func end() -> [(String, [String: Any])] {
        var out = close()
        out.append(("message_delta", ["type": "message_delta",
                                      "delta": ["stop_reason": AnthropicSurface.stopReason(reason), "stop_sequence": NSNull()] as [String: Any],
                                      "usage": AnthropicSurface.usage(usage)]))
        out.append(("message_stop", ["type": "message_stop"]))
        return out
    }
}
