import Core
import NIOCore
import Providers
import Foundation

/// The OpenAI wire format (chat completions, legacy completions, models), as the official SDKs send and expect it.
enum OpenAI {
    /// `content` is a string, an array of parts (`{"type": "text", "text": …}`), or null.
    struct Content: Decodable {
        let text: String
        init(text: String) { self.text = text }
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if c.decodeNil() { text = ""; return }
            if let s = try? c.decode(String.self) { text = s; return }
            struct Part: Decodable { let type: String; let text: String? }
            let parts = try c.decode([Part].self)
            for p in parts where p.type != "text" {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "content part type '\(p.type)' is not supported (only text)")
            }
            text = parts.compactMap(\.text).joined()
        }
    }

    struct Message: Decodable {
        let role: String
        let content: Content?
        let tool_calls: [WireToolCall]?
        let tool_call_id: String?
    }

    struct WireFunctionCall: Decodable { let name: String; let arguments: String? }
    struct WireToolCall: Decodable { let id: String?; let type: String?; let function: WireFunctionCall }

    struct WireFunction: Decodable { let name: String; let description: String?; let parameters: JSONText? }
    struct WireTool: Decodable { let type: String; let function: WireFunction? }

    /// Chat messages in canonical form: roles checked (`developer` is a system message), tool calls and results kept.
    static func canonical(_ wire: [Message]) throws -> [ChatMessage] {
        try wire.enumerated().map { i, m in
            let role: ChatMessage.Role
            switch m.role {
            case "system", "developer": role = .system
            case "user": role = .user
            case "assistant": role = .assistant
            case "tool": role = .tool
            default: throw APIError(.badRequest, "messages[\(i)].role '\(m.role)' is not one of system, developer, user, assistant, tool", param: "messages[\(i)].role")
            }
            let calls = (m.tool_calls ?? []).enumerated().map { j, call in
                ToolCall(id: call.id ?? "call_\(i)_\(j)", name: call.function.name, arguments: call.function.arguments ?? "{}")
            }
            return ChatMessage(role: role, content: m.content?.text ?? "", toolCallID: m.tool_call_id, toolCalls: calls)
        }
    }

    /// Function tools in canonical form; any other kind of tool is a 400 naming it.
    static func canonical(_ wire: [WireTool]) throws -> [ToolDefinition] {
        try wire.enumerated().map { i, tool in
            guard tool.type == "function", let f = tool.function else {
                throw APIError(.badRequest, "tools[\(i)] must be {\"type\": \"function\", \"function\": {…}}", param: "tools[\(i)]")
            }
            return ToolDefinition(name: f.name, description: f.description, parametersJSON: f.parameters?.text)
        }
    }

    /// Any JSON value, kept as compact JSON text (object keys sorted, so equal schemas give equal prompts).
    struct JSONText: Decodable {
        let text: String
        init(from decoder: Decoder) throws {
            let value = try JSONText.decodeAny(try decoder.singleValueContainer(), decoder)
            let data = try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed])
            text = String(decoding: data, as: UTF8.self)
        }

        private struct Key: CodingKey {
            var stringValue: String; var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        private static func decodeAny(_ c: SingleValueDecodingContainer, _ decoder: Decoder) throws -> Any {
            if c.decodeNil() { return NSNull() }
            if let b = try? c.decode(Bool.self) { return b }
            if let i = try? c.decode(Int.self) { return i }
            if let d = try? c.decode(Double.self) { return d }
            if let s = try? c.decode(String.self) { return s }
            if let a = try? decoder.unkeyedContainer() {
                var a = a, out: [Any] = []
                while !a.isAtEnd {
                    let sub = try a.superDecoder()
                    out.append(try decodeAny(try sub.singleValueContainer(), sub))
                }
                return out
            }
            let k = try decoder.container(keyedBy: Key.self)
            var out: [String: Any] = [:]
            for key in k.allKeys {
                let sub = try k.superDecoder(forKey: key)
                out[key.stringValue] = try decodeAny(try sub.singleValueContainer(), sub)
            }
            return out
        }
    }

    /// `stop` is a string or an array of up to 4 strings.
    struct Stop: Decodable {
        let values: [String]
        init(values: [String]) { self.values = values }
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if c.decodeNil() { values = []; return }
            if let s = try? c.decode(String.self) { values = [s]; return }
            values = try c.decode([String].self)
        }
    }

    struct StreamOptions: Decodable { let include_usage: Bool? }

    /// Ollama-style `keep_alive`: seconds as a number, or a duration string such as "30s", "5m", "1h"; negative
    /// keeps the model loaded for ever, 0 unloads it after the request.
    struct KeepAlive: Decodable {
        let duration: Duration
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let n = try? c.decode(Double.self) { duration = .milliseconds(Int64(n * 1000)); return }
            let s = try c.decode(String.self)
            if let v = Units.seconds(s) { duration = .milliseconds(Int64(v * 1000)); return }
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "keep_alive '\(s)' is not a duration such as 300, \"5m\" or \"-1\"")
        }
    }

    /// `{"id": 0, "scale": 0.5}` of a `lora` list.
    struct Adapter: Decodable { let id: Int; let scale: Double }

    /// Fields shared by chat and legacy completions (plus llama.cpp-style top_k / min_p / repeat_penalty).
    struct Sampling: Decodable {
        let temperature: Double?
        let top_p: Double?
        let top_k: Int?
        let min_p: Double?
        let repeat_penalty: Double?
        let max_tokens: Int?
        let max_completion_tokens: Int?
        let stop: Stop?
        let seed: Int64?
        let presence_penalty: Double?
        let frequency_penalty: Double?
        let n: Int?
        let user: String?
        let stream: Bool?
        let stream_options: StreamOptions?
        let keep_alive: KeepAlive?
        /// Generate past end-of-generation tokens up to `max_tokens` (llama-server's and vLLM's extension, for benchmarks).
        var ignore_eos: Bool? = nil
        /// LoRA adapters by id with their scales (llama-server's field); unlisted adapters are off.
        var lora: [Adapter]? = nil

        func validated() throws -> SamplingSettings {
            if let n, n != 1 { throw APIError(.badRequest, "only n=1 is supported", param: "n") }
            let settings = SamplingSettings(temperature: temperature, topP: top_p, topK: top_k, minP: min_p, repeatPenalty: repeat_penalty,
                                            presencePenalty: presence_penalty, frequencyPenalty: frequency_penalty,
                                            seed: seed.map { UInt64(bitPattern: $0) }, maxTokens: max_completion_tokens ?? max_tokens,
                                            stop: stop?.values ?? [], ignoreEOS: ignore_eos ?? false,
                                            adapters: lora?.map { AdapterSelection(id: $0.id, scale: $0.scale) })
            if var (field, message) = settings.problem {
                if field == "max_tokens", max_completion_tokens != nil { field = "max_completion_tokens" }
                throw APIError(.badRequest, "\(field) \(message)", param: field)
            }
            return settings
        }
    }

    struct ChatRequestBody: Decodable {
        let model: String
        let messages: [Message]
        let tools: [WireTool]?
        let logprobs: Bool?
        let top_logprobs: Int?
        /// Routing hints: `task`, `local_only` (see `RequestHints.from`).
        let metadata: [String: MetadataValue]?
    }

    /// A request body and its sampling settings, read from one parse of the JSON.
    struct WithSampling<Body: Decodable>: Decodable {
        let body: Body
        let sampling: Sampling
        init(body: Body, sampling: Sampling) { self.body = body; self.sampling = sampling }
        init(from decoder: Decoder) throws {
            body = try Body(from: decoder)
            sampling = try Sampling(from: decoder)
        }
    }

    struct CompletionRequestBody: Decodable {
        let model: String
        let prompt: Stop   // a string or a one-element array
        let logprobs: Int?
        let echo: Bool?
        let suffix: String?
        let metadata: [String: MetadataValue]?
    }

    // ---- responses

    struct Usage: Encodable {
        struct Details: Encodable { let cached_tokens: Int }
        let prompt_tokens: Int
        let completion_tokens: Int
        let total_tokens: Int
        let prompt_tokens_details: Details
        init(_ u: Core.Usage) {
            prompt_tokens = u.promptTokens; completion_tokens = u.completionTokens; total_tokens = u.totalTokens
            prompt_tokens_details = Details(cached_tokens: u.cachedPromptTokens)
        }
    }

    struct TopLogprob: Encodable { let token: String; let logprob: Double; let bytes: [UInt8] }
    struct TokenLogprob: Encodable {
        let token: String; let logprob: Double; let bytes: [UInt8]; let top_logprobs: [TopLogprob]
        init(_ t: Core.TokenLogprob) {
            token = t.token; logprob = t.logprob; bytes = Array(t.token.utf8)
            top_logprobs = t.top.map { TopLogprob(token: $0.token, logprob: $0.logprob, bytes: Array($0.token.utf8)) }
        }
    }
    struct Logprobs: Encodable { let content: [TokenLogprob] }

    /// An answer's message: `content` is null when the answer is only tool calls (as OpenAI sends it), and
    /// `tool_calls` is left out when there are none.
    struct ResponseMessage: Encodable {
        let role: String
        let content: String?
        var tool_calls: [ToolCallOut]? = nil
        /// The model's reasoning before its answer (left out when there is none).
        var reasoning_content: String? = nil
        enum CodingKeys: CodingKey { case content, role, tool_calls, reasoning_content }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(content, forKey: .content)
            try c.encode(role, forKey: .role)
            try c.encodeIfPresent(tool_calls, forKey: .tool_calls)
            try c.encodeIfPresent(reasoning_content, forKey: .reasoning_content)
        }

        init(role: String, text: String, toolCalls: [ToolCall], reasoning: String = "") {
            self.role = role
            reasoning_content = reasoning.isEmpty ? nil : reasoning
            content = text.isEmpty && !toolCalls.isEmpty ? nil : text
            tool_calls = toolCalls.isEmpty ? nil : toolCalls.map { ToolCallOut(id: $0.id, function: .init(name: $0.name, arguments: $0.arguments)) }
        }
    }

    /// `{"id", "type": "function", "function": {"name", "arguments"}}` of a whole answer.
    struct ToolCallOut: Encodable {
        struct Function: Encodable { let name: String; let arguments: String }
        let id: String
        var type = "function"
        let function: Function
    }

    /// A tool call's piece in a streamed delta: `index` always; `id`, `type` and the name with the call's first piece;
    /// the next fragment of the arguments.
    struct ToolCallDeltaOut: Encodable {
        struct Function: Encodable {
            let name: String?
            let arguments: String
            enum CodingKeys: CodingKey { case arguments, name }
            func encode(to encoder: Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(arguments, forKey: .arguments)
                try c.encodeIfPresent(name, forKey: .name)
            }
        }
        let index: Int
        let id: String?
        let function: Function
        enum CodingKeys: CodingKey { case function, id, index, type }
        init(_ d: ToolCallDelta) {
            index = d.index; id = d.id; function = Function(name: d.name, arguments: d.arguments)
        }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(function, forKey: .function)
            try c.encodeIfPresent(id, forKey: .id)
            try c.encode(index, forKey: .index)
            if id != nil { try c.encode("function", forKey: .type) }
        }
    }
    struct ChatChoice: Encodable {
        let index: Int
        let message: ResponseMessage
        let logprobs: Logprobs?
        let finish_reason: String
        enum CodingKeys: CodingKey { case index, message, logprobs, finish_reason }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(index, forKey: .index); try c.encode(message, forKey: .message)
            try c.encode(logprobs, forKey: .logprobs)   // null when absent, as OpenAI sends it
            try c.encode(finish_reason, forKey: .finish_reason)
        }
    }
    struct ChatCompletion: Encodable {
        let id: String
        var object = "chat.completion"
        let created: Int
        let model: String
        let choices: [ChatChoice]
        let usage: Usage
        var system_fingerprint = "switchyard"

        /// The same JSON as `JSONEncoder` with sorted keys gives, written directly (every answer that is not
        /// streamed is one of these).
        var json: ByteBuffer {
            var w = JSONWriter()
            w.beginObject()
            w.key("choices")
            w.beginArray()
            for c in choices {
                w.beginObject()
                w.field("finish_reason", c.finish_reason)
                w.field("index", c.index)
                w.key("logprobs")
                if let lp = c.logprobs {
                    w.beginObject()
                    w.key("content")
                    w.beginArray()
                    /// Opens an entry and writes its `bytes`, `logprob` and `token` (keys after them may follow).
                    func open(_ token: String, _ logprob: Double, _ bytes: [UInt8]) {
                        w.beginObject()
                        w.key("bytes"); w.beginArray(); for b in bytes { w.int(b) }; w.endArray()
                        w.field("logprob", logprob)
                        w.field("token", token)
                    }
                    for t in lp.content {
                        open(t.token, t.logprob, t.bytes)
                        w.key("top_logprobs")
                        w.beginArray()
                        for top in t.top_logprobs { open(top.token, top.logprob, top.bytes); w.endObject() }
                        w.endArray()
                        w.endObject()
                    }
                    w.endArray()
                    w.endObject()
                } else {
                    w.null()
                }
                w.key("message")
                w.beginObject()
                w.key("content")
                if let content = c.message.content { w.string(content) } else { w.null() }
                if let reasoning = c.message.reasoning_content { w.field("reasoning_content", reasoning) }
                w.field("role", c.message.role)
                if let calls = c.message.tool_calls {
                    w.key("tool_calls")
                    w.beginArray()
                    for call in calls {
                        w.beginObject()
                        w.key("function")
                        w.beginObject(); w.field("arguments", call.function.arguments); w.field("name", call.function.name); w.endObject()
                        w.field("id", call.id)
                        w.field("type", call.type)
                        w.endObject()
                    }
                    w.endArray()
                }
                w.endObject()
                w.endObject()
            }
            w.endArray()
            w.field("created", created)
            w.field("id", id)
            w.field("model", model)
            w.field("object", object)
            w.field("system_fingerprint", system_fingerprint)
            w.key("usage")
            w.beginObject()
            w.field("completion_tokens", usage.completion_tokens)
            w.field("prompt_tokens", usage.prompt_tokens)
            w.key("prompt_tokens_details")
            w.beginObject(); w.field("cached_tokens", usage.prompt_tokens_details.cached_tokens); w.endObject()
            w.field("total_tokens", usage.total_tokens)
            w.endObject()
            w.endObject()
            return w.buffer
        }
    }

    struct Delta: Encodable {
        var role: String?
        var content: String?
        var tool_calls: [ToolCallDeltaOut]?
        var reasoning_content: String?
    }
    struct ChunkChoice: Encodable {
        let index: Int
        let delta: Delta
        let logprobs: Logprobs?
        let finish_reason: String?
        enum CodingKeys: CodingKey { case index, delta, logprobs, finish_reason }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(index, forKey: .index); try c.encode(delta, forKey: .delta)
            try c.encode(logprobs, forKey: .logprobs); try c.encode(finish_reason, forKey: .finish_reason)
        }
    }
    struct ChatChunk: Encodable {
        let id: String
        var object = "chat.completion.chunk"
        let created: Int
        let model: String
        let choices: [ChunkChoice]
        let usage: Usage?
        var system_fingerprint = "switchyard"
        enum CodingKeys: CodingKey { case id, object, created, model, choices, usage, system_fingerprint }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id); try c.encode(object, forKey: .object); try c.encode(created, forKey: .created)
            try c.encode(model, forKey: .model); try c.encode(choices, forKey: .choices)
            try c.encode(usage, forKey: .usage); try c.encode(system_fingerprint, forKey: .system_fingerprint)
        }
    }

    struct CompletionChoice: Encodable {
        let text: String
        let index: Int
        let logprobs: String?
        let finish_reason: String?
        enum CodingKeys: CodingKey { case text, index, logprobs, finish_reason }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(text, forKey: .text); try c.encode(index, forKey: .index)
            try c.encode(logprobs, forKey: .logprobs); try c.encode(finish_reason, forKey: .finish_reason)
        }
    }
    struct Completion: Encodable {
        let id: String
        var object = "text_completion"
        let created: Int
        let model: String
        let choices: [CompletionChoice]
        let usage: Usage?
    }

    struct Model: Encodable {
        let id: String
        var object = "model"
        let created: Int
        var owned_by = "switchyard"
    }
    struct ModelList: Encodable {
        var object = "list"
        let data: [Model]
    }

    static func finishReason(_ r: Core.FinishReason) -> String {
        switch r {
        case .stop, .cancelled: "stop"
        case .length: "length"
        case .toolCalls: "tool_calls"
        case .contentFilter: "content_filter"
        }
    }
}
