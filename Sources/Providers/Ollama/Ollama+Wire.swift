import Core
import Foundation

/// Ollama's native API wire format, both ways: a canonical request as an `/api/chat` body (sampling settings under
/// `options`), and its answers (one JSON object per line when streamed) as canonical events.
extension OllamaProvider {
    /// The JSON body for `/api/chat`.
    static func body(for request: ChatRequest) -> [String: Any] {
        var body: [String: Any] = ["model": request.model, "stream": request.stream]
        let messages = request.rawPrompt.map { [ChatMessage(role: .user, content: $0)] } ?? request.messages
        body["messages"] = messages.map { m -> [String: Any] in
            var out: [String: Any] = ["role": m.role.rawValue, "content": m.content]
            if !m.toolCalls.isEmpty {
                out["tool_calls"] = m.toolCalls.map { call -> [String: Any] in
                    let arguments = (try? JSONSerialization.jsonObject(with: Data(call.arguments.utf8))) as? [String: Any] ?? [:]
                    return ["function": ["name": call.name, "arguments": arguments] as [String: Any]]
                }
            }
            if m.role == .tool, let id = m.toolCallID,
               let name = messages.lazy.flatMap(\.toolCalls).first(where: { $0.id == id })?.name { out["tool_name"] = name }
            return out
        }
        let s = request.sampling
        var options: [String: Any] = [:]
        if let v = s.temperature { options["temperature"] = v }
        if let v = s.topP { options["top_p"] = v }
        if let v = s.topK { options["top_k"] = v }
        if let v = s.minP { options["min_p"] = v }
        if let v = s.repeatPenalty { options["repeat_penalty"] = v }
        if let v = s.presencePenalty { options["presence_penalty"] = v }
        if let v = s.frequencyPenalty { options["frequency_penalty"] = v }
        if let v = s.seed { options["seed"] = v }
        if let v = s.maxTokens { options["num_predict"] = v }
        if !s.stop.isEmpty { options["stop"] = s.stop }
        if !options.isEmpty { body["options"] = options }
        if let k = request.keepAlive {
            let seconds = k.components.seconds
            body["keep_alive"] = seconds < 0 ? (-1 as Any) : ("\(seconds)s" as Any)
        }
        if !request.tools.isEmpty, request.toolChoice != .none {
            body["tools"] = UpstreamHTTP.functionTools(request.tools)
        }
        // Ollama's `format`: "json", or a JSON Schema.
        switch request.responseFormat {
        case .text: break
        case .jsonObject: body["format"] = "json"
        case .jsonSchema(_, let schema, _): body["format"] = (try? JSONSerialization.jsonObject(with: Data(schema.utf8))) ?? "json"
        }
        return body
    }

    /// One line of a streamed answer, or a whole one.
    struct Answer: Decodable {
        struct Message: Decodable {
            var content: String?
            var tool_calls: [Call]?
            /// The model's reasoning (Ollama's `think`).
            var thinking: String?
        }
        struct Call: Decodable {
            struct Function: Decodable {
                var name: String
                var arguments: JSONValue?
            }
            var function: Function
        }
        var message: Message?
        var done: Bool?
        var done_reason: String?
        var prompt_eval_count: Int?
        var eval_count: Int?
        var error: String?
    }

    /// Turns answers into canonical events: text and tool calls as they come, then `.finished` and `.usage` when
    /// a line says `done`. Ollama's API cannot ask for one call at a time; with `parallelToolCalls` off only the first
    /// call is passed on (calls arrive whole, so the first is complete).
    struct EventMapper {
        var parallelToolCalls = true
        private var calls = 0
        private(set) var finished = false

        init(parallelToolCalls: Bool = true) { self.parallelToolCalls = parallelToolCalls }

        mutating func events(for a: Answer) throws -> [ChatEvent] {
            if let message = a.error { throw UpstreamErrorBody(message: message).coreError(status: nil, retryAfter: nil) }
            guard !finished else { return [] }
            var out: [ChatEvent] = []
            if let thought = a.message?.thinking, !thought.isEmpty { out.append(.reasoning(thought)) }
            if let text = a.message?.content, !text.isEmpty { out.append(.text(text, nil)) }
            for call in a.message?.tool_calls ?? [] where parallelToolCalls || calls == 0 {
                calls += 1
                guard calls <= 128 else { throw CoreError.upstream("the answer has too many tool calls") }
                let arguments = call.function.arguments?.jsonText ?? "{}"
                out.append(.toolCall(ToolCallDelta(index: calls - 1, id: "call_\(calls - 1)", name: call.function.name, arguments: arguments)))
            }
            if a.done == true {
                finished = true
                let reason: FinishReason = switch a.done_reason ?? "" {
                case "length": .length
                case _ where calls > 0: .toolCalls
                default: .stop
                }
                out.append(.finished(reason))
                out.append(.usage(Usage(promptTokens: a.prompt_eval_count ?? 0, completionTokens: a.eval_count ?? 0)))
            }
            return out
        }
    }

    /// `/api/tags`.
    struct Tags: Decodable {
        struct Model: Decodable {
            struct Details: Decodable { var quantization_level: String? }
            var name: String
            var size: Int?
            var details: Details?
        }
        var models: [Model]
    }
}
