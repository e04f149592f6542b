import Core
import Foundation

/// The OpenAI chat-completions wire format, both ways: a canonical request as a JSON body, and answers (whole or
/// streamed chunk by chunk) as canonical events.
extension OpenAICompatibleProvider {
    /// The JSON body for `/chat/completions` (or `/completions` for a raw prompt).
    static func body(for request: ChatRequest) -> [String: Any] {
        var body: [String: Any] = ["model": request.model, "stream": request.stream]
        if let raw = request.rawPrompt {
            body["prompt"] = raw
        } else {
            body["messages"] = request.messages.map { m -> [String: Any] in
                var out: [String: Any] = ["role": m.role.rawValue, "content": m.content]
                if let id = m.toolCallID { out["tool_call_id"] = id }
                if !m.toolCalls.isEmpty {
                    out["tool_calls"] = m.toolCalls.map {
                        ["id": $0.id, "type": "function", "function": ["name": $0.name, "arguments": $0.arguments]] as [String: Any]
                    }
                }
                return out
            }
        }
        if request.stream { body["stream_options"] = ["include_usage": true] }
        let s = request.sampling
        if let v = s.temperature { body["temperature"] = v }
        if let v = s.topP { body["top_p"] = v }
        if let v = s.maxTokens { body["max_tokens"] = v }
        if let v = s.seed { body["seed"] = v }
        if let v = s.presencePenalty { body["presence_penalty"] = v }
        if let v = s.frequencyPenalty { body["frequency_penalty"] = v }
        // Extensions that llama-server, vLLM and Switchyard accept; sent only when the client set them.
        if let v = s.topK { body["top_k"] = v }
        if let v = s.minP { body["min_p"] = v }
        if let v = s.repeatPenalty { body["repeat_penalty"] = v }
        if !s.stop.isEmpty { body["stop"] = s.stop }
        if request.logprobs {
            body["logprobs"] = true
            if request.topLogprobs > 0 { body["top_logprobs"] = request.topLogprobs }
        }
        if !request.tools.isEmpty {
            body["tools"] = UpstreamHTTP.functionTools(request.tools)
        }
        return body
    }

    /// A streamed chunk or a whole answer: `choices[0].delta` (stream), `.message` (chat) or `.text` (completions).
    struct Answer: Decodable {
        struct Choice: Decodable {
            var delta: Message?
            var message: Message?
            var text: String?
            var finish_reason: String?
            var logprobs: Logprobs?
        }
        struct Message: Decodable {
            var content: String?
            var tool_calls: [ToolCallPiece]?
        }
        struct ToolCallPiece: Decodable {
            var index: Int?
            var id: String?
            var function: Function?
        }
        struct Function: Decodable {
            var name: String?
            var arguments: String?
        }
        struct Logprobs: Decodable { var content: [Entry]? }
        struct Entry: Decodable {
            var token: String
            var logprob: Double
            var top_logprobs: [Alternative]?
        }
        struct Alternative: Decodable {
            var token: String
            var logprob: Double
        }
        struct UsageBody: Decodable {
            struct Details: Decodable { var cached_tokens: Int? }
            var prompt_tokens: Int?
            var completion_tokens: Int?
            var prompt_tokens_details: Details?
        }
        var choices: [Choice]?
        var usage: UsageBody?
        var error: ErrorBody?
    }

    /// Turns answers into events in the canonical order: text and tool calls, `.finished`, then `.usage`.
    /// Tool calls stream in pieces; they are joined and yielded whole when the choice finishes.
    struct EventMapper {
        let maxToolCallBytes: Int
        private var calls: [Int: (id: String, name: String, arguments: String)] = [:]
        private var usage: Usage?
        private(set) var finished = false

        init(maxToolCallBytes: Int) { self.maxToolCallBytes = maxToolCallBytes }

        mutating func events(for answer: Answer) throws -> [ChatEvent] {
            if let e = answer.error { throw e.coreError(status: nil, retryAfter: nil) }
            var out: [ChatEvent] = []
            if let u = answer.usage {
                usage = Usage(promptTokens: u.prompt_tokens ?? 0, completionTokens: u.completion_tokens ?? 0,
                              cachedPromptTokens: u.prompt_tokens_details?.cached_tokens ?? 0)
            }
            guard let choice = answer.choices?.first, !finished else { return out }
            let message = choice.delta ?? choice.message
            if let text = message?.content ?? choice.text, !text.isEmpty {
                out.append(.text(text, choice.logprobs?.content?.first.map(Self.logprob)))
            }
            for (i, piece) in (message?.tool_calls ?? []).enumerated() {
                let index = piece.index ?? i
                guard calls[index] != nil || calls.count < 128 else { throw CoreError.upstream("the answer has too many tool calls") }
                var call = calls[index] ?? (id: "", name: "", arguments: "")
                if let id = piece.id { call.id = id }
                if let name = piece.function?.name { call.name += name }
                if let args = piece.function?.arguments { call.arguments += args }
                guard call.arguments.utf8.count <= maxToolCallBytes else { throw CoreError.upstream("a tool call's arguments pass \(maxToolCallBytes) bytes") }
                calls[index] = call
            }
            if let reason = choice.finish_reason { out += finish(Self.finishReason(reason)) }
            return out
        }

        /// The end of the answer (`[DONE]`, or the end of a whole body): what is still owed.
        mutating func close() -> [ChatEvent] {
            var out = finished ? [] : finish(.stop)
            if let usage { out.append(.usage(usage)) }
            return out
        }

        private mutating func finish(_ reason: FinishReason) -> [ChatEvent] {
            finished = true
            var out: [ChatEvent] = calls.keys.sorted().compactMap { i in
                guard let c = calls[i] else { return nil }
                return .toolCall(ToolCall(id: c.id.isEmpty ? "call_\(i)" : c.id, name: c.name, arguments: c.arguments.isEmpty ? "{}" : c.arguments))
            }
            calls = [:]
            out.append(.finished(reason))
            return out
        }

        static func logprob(_ e: Answer.Entry) -> TokenLogprob {
            TokenLogprob(token: e.token, logprob: e.logprob, top: (e.top_logprobs ?? []).map { .init(token: $0.token, logprob: $0.logprob) })
        }

        static func finishReason(_ s: String) -> FinishReason {
            switch s {
            case "length": .length
            case "tool_calls", "function_call": .toolCalls
            case "content_filter": .contentFilter
            default: .stop
            }
        }
    }
}
