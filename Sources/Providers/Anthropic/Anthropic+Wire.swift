import Core
import Foundation

/// Anthropic's Messages API wire format, both ways: a canonical request as a `/v1/messages` body (system prompt apart,
/// alternating turns of content blocks, tools), and answers (whole, or streamed event by event) as canonical events.
extension AnthropicProvider {
    /// The JSON body for `/v1/messages`. `max_tokens` is required there: `defaultMaxTokens` when the request has none.
    static func body(for request: ChatRequest, defaultMaxTokens: Int) -> [String: Any] {
        var body: [String: Any] = ["model": request.model, "stream": request.stream,
                                   "max_tokens": request.sampling.maxTokens ?? defaultMaxTokens]
        let messages = request.rawPrompt.map { [ChatMessage(role: .user, content: $0)] } ?? request.messages
        let system = messages.filter { $0.role == .system }.map(\.content).filter { !$0.isEmpty }
        if !system.isEmpty { body["system"] = system.joined(separator: "\n\n") }
        // Turns alternate: consecutive messages of one side (a tool's results are the user's side) join in one turn.
        var turns: [(role: String, blocks: [[String: Any]])] = []
        for m in messages where m.role != .system {
            let role = m.role == .assistant ? "assistant" : "user"
            var blocks: [[String: Any]] = []
            switch m.role {
            case .tool:
                blocks.append(["type": "tool_result", "tool_use_id": m.toolCallID ?? "", "content": m.content])
            default:
                // Signed reasoning goes back as it came (Anthropic needs it in a tool loop); unsigned reasoning (another
                // model's) is not Anthropic's to check, and is left out.
                if m.role == .assistant {
                    for r in m.reasoning {
                        if let data = r.redacted {
                            blocks.append(["type": "redacted_thinking", "data": data])
                        } else if let signature = r.signature {
                            blocks.append(["type": "thinking", "thinking": r.text, "signature": signature])
                        }
                    }
                }
                if !m.content.isEmpty { blocks.append(["type": "text", "text": m.content]) }
                for call in m.toolCalls {
                    let input = (try? JSONSerialization.jsonObject(with: Data(call.arguments.utf8))) as? [String: Any] ?? [:]
                    blocks.append(["type": "tool_use", "id": call.id, "name": call.name, "input": input])
                }
            }
            if blocks.isEmpty { continue }
            if let last = turns.last, last.role == role { turns[turns.count - 1].blocks += blocks } else { turns.append((role, blocks)) }
        }
        body["messages"] = turns.map { ["role": $0.role, "content": $0.blocks] as [String: Any] }
        let s = request.sampling
        // Anthropic's temperature runs from 0 to 1 (OpenAI's to 2): higher values are sent as 1.
        if let v = s.temperature { body["temperature"] = min(max(v, 0), 1) }
        if let v = s.topP { body["top_p"] = v }
        if let v = s.topK { body["top_k"] = v }
        if !s.stop.isEmpty { body["stop_sequences"] = s.stop }
        if !request.tools.isEmpty {
            body["tools"] = request.tools.map { t -> [String: Any] in
                var tool: [String: Any] = ["name": t.name]
                if let d = t.description { tool["description"] = d }
                let schema = t.parametersJSON.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) }
                tool["input_schema"] = schema ?? (["type": "object", "properties": [String: Any]()] as [String: Any])
                return tool
            }
            var choice: [String: Any]? = switch request.toolChoice {
            case .auto: request.parallelToolCalls ? nil : ["type": "auto"]
            case .none: ["type": "none"]
            case .required: ["type": "any"]
            case .function(let name): ["type": "tool", "name": name]
            }
            if !request.parallelToolCalls, request.toolChoice != .none { choice?["disable_parallel_tool_use"] = true }
            if let choice { body["tool_choice"] = choice }
        }
        // No JSON mode here: the schema becomes the one tool the model must call, whose input is the answer.
        if let (name, schema) = schemaTool(request) {
            body["tools"] = [["name": name, "description": "Give the answer as this tool's input.", "input_schema": schema] as [String: Any]]
            body["tool_choice"] = ["type": "tool", "name": name]
        }
        return body
    }

    /// The forced tool that stands for `response_format` (a JSON object, or a JSON Schema), if the request has one.
    static func schemaTool(_ request: ChatRequest) -> (String, Any)? {
        switch request.responseFormat {
        case .text: return nil
        case .jsonObject: return ("json_response", ["type": "object"] as [String: Any])
        case .jsonSchema(let name, let schema, _):
            let object = (try? JSONSerialization.jsonObject(with: Data(schema.utf8))) ?? ["type": "object"] as [String: Any]
            let safe = name.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_" || $0 == "-" }
            return (safe && !name.isEmpty ? name : "json_response", object)
        }
    }

    /// The forced tool's call as the answer's text: its input is the JSON the client asked for.
    static func schemaToolAsText(_ events: [ChatEvent]) -> [ChatEvent] {
        events.compactMap { e in
            switch e {
            case .toolCall(let d): d.arguments.isEmpty ? nil : .text(d.arguments, nil)
            case .finished(.toolCalls): .finished(.stop)
            default: e
            }
        }
    }

    /// One streamed event's data, or a whole answer (`type: message`); fields not used are ignored.
    struct Event: Decodable {
        struct Block: Decodable {
            var type: String
            var text: String?
            var thinking: String?
            var signature: String?
            var id: String?
            var name: String?
            var input: JSONValue?
        }
        struct Delta: Decodable {
            var type: String?
            var text: String?
            var thinking: String?
            var signature: String?
            var partial_json: String?
            var stop_reason: String?
        }
        struct UsageBody: Decodable {
            var input_tokens: Int?
            var output_tokens: Int?
            var cache_read_input_tokens: Int?
            var cache_creation_input_tokens: Int?
        }
        struct Message: Decodable { var usage: UsageBody? }
        var type: String
        var index: Int?
        var message: Message?
        var content_block: Block?
        var delta: Delta?
        var usage: UsageBody?
        var error: UpstreamErrorBody?
        // A whole answer's fields.
        var content: [Block]?
        var stop_reason: String?
    }

    /// Turns events into canonical ones: text and tool-call pieces as they stream (a call's id and name when its
    /// block starts, then its JSON as it comes), then `.finished` and `.usage` at `message_stop`. Calls are numbered
    /// among the answer's calls, not its content blocks.
    struct EventMapper {
        let maxToolCallBytes: Int
        /// Open tool-use blocks by block index: the call's index and the bytes of JSON seen.
        private var tools: [Int: (call: Int, bytes: Int)] = [:]
        private var callCount = 0
        private var reason: FinishReason = .stop
        private var promptTokens = 0, cachedTokens = 0, outputTokens = 0
        private(set) var finished = false

        init(maxToolCallBytes: Int) { self.maxToolCallBytes = maxToolCallBytes }

        mutating func events(for e: Event) throws -> [ChatEvent] {
            guard !finished else { return [] }
            switch e.type {
            case "error":
                throw (e.error ?? UpstreamErrorBody(message: "the upstream sent an error event")).coreError(status: nil, retryAfter: nil)
            case "message_start":
                if let u = e.message?.usage { count(u) }
            case "content_block_start":
                guard let block = e.content_block, let index = e.index else { return [] }
                if block.type == "tool_use" {
                    guard callCount < 128 else { throw CoreError.upstream("the answer has too many tool calls") }
                    tools[index] = (callCount, 0)
                    callCount += 1
                    return [.toolCall(ToolCallDelta(index: callCount - 1, id: block.id ?? "toolu_\(callCount - 1)", name: block.name ?? ""))]
                } else if block.type == "text", let text = block.text, !text.isEmpty {
                    return [.text(text, nil)]
                } else if block.type == "thinking", let thought = block.thinking, !thought.isEmpty {
                    return [.reasoning(thought)]
                }
            case "content_block_delta":
                guard let d = e.delta, let index = e.index else { return [] }
                if d.type == "text_delta", let text = d.text, !text.isEmpty { return [.text(text, nil)] }
                if d.type == "thinking_delta", let thought = d.thinking, !thought.isEmpty { return [.reasoning(thought)] }
                if d.type == "signature_delta", let signature = d.signature, !signature.isEmpty { return [.reasoningSignature(signature)] }
                if d.type == "input_json_delta", let piece = d.partial_json, !piece.isEmpty, var call = tools[index] {
                    call.bytes += piece.utf8.count
                    guard call.bytes <= maxToolCallBytes else { throw CoreError.upstream("a tool call's arguments pass \(maxToolCallBytes) bytes") }
                    tools[index] = call
                    return [.toolCall(ToolCallDelta(index: call.call, arguments: piece))]
                }
            case "content_block_stop":
                // A call with no input at all: `{}`, so that what a client joins is JSON.
                guard let index = e.index, let call = tools.removeValue(forKey: index), call.bytes == 0 else { return [] }
                return [.toolCall(ToolCallDelta(index: call.call, arguments: "{}"))]
            case "message_delta":
                if let r = e.delta?.stop_reason { reason = Self.finishReason(r) }
                if let u = e.usage { count(u) }
            case "message_stop":
                return close()
            case "message":
                return try whole(e)
            default:
                break   // ping, and event types added later
            }
            return []
        }

        /// The events of a whole (non-streamed) answer.
        mutating func whole(_ e: Event) throws -> [ChatEvent] {
            var out: [ChatEvent] = []
            for block in e.content ?? [] {
                if block.type == "text", let text = block.text, !text.isEmpty { out.append(.text(text, nil)) }
                if block.type == "thinking" {
                    if let thought = block.thinking, !thought.isEmpty { out.append(.reasoning(thought)) }
                    if let signature = block.signature, !signature.isEmpty { out.append(.reasoningSignature(signature)) }
                }
                if block.type == "tool_use" {
                    let arguments = block.input?.jsonText ?? "{}"
                    out.append(.toolCall(ToolCallDelta(index: callCount, id: block.id ?? "toolu_\(callCount)", name: block.name ?? "", arguments: arguments)))
                    callCount += 1
                }
            }
            if let r = e.stop_reason { reason = Self.finishReason(r) }
            if let u = e.usage { count(u) }
            return out + close()
        }

        private mutating func count(_ u: Event.UsageBody) {
            if let n = u.input_tokens {
                cachedTokens = u.cache_read_input_tokens ?? 0
                promptTokens = n + cachedTokens + (u.cache_creation_input_tokens ?? 0)
            }
            if let n = u.output_tokens { outputTokens = n }
        }

        private mutating func close() -> [ChatEvent] {
            finished = true
            return [.finished(reason), .usage(Usage(promptTokens: promptTokens, completionTokens: outputTokens, cachedPromptTokens: cachedTokens))]
        }

        static func finishReason(_ s: String) -> FinishReason {
            switch s {
            case "max_tokens", "model_context_window_exceeded": .length
            case "tool_use": .toolCalls
            case "refusal": .contentFilter
            default: .stop   // end_turn, stop_sequence, pause_turn
            }
        }
    }
}

/// Any JSON value, decoded and encoded again unchanged (a tool call's `input` object); also what `JSONReader` reads.
public enum JSONValue: Codable, Sendable, Equatable {
    case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let v = try? c.decode(Bool.self) { self = .bool(v) }
        else if let v = try? c.decode(Double.self) { self = .number(v) }
        else if let v = try? c.decode(String.self) { self = .string(v) }
        else if let v = try? c.decode([JSONValue].self) { self = .array(v) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    /// As JSON text, keys sorted.
    var jsonText: String? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let v): try c.encode(v)
        case .number(let v):
            if v == v.rounded(), abs(v) < 1e15 { try c.encode(Int64(v)) } else { try c.encode(v) }
        case .string(let v): try c.encode(v)
        case .array(let v): try c.encode(v)
        case .object(let v): try c.encode(v)
        }
    }
}
