import Core
import Foundation
import NIOCore

/// The OpenAI chat-completions wire format, both ways: a canonical request as a JSON body, and answers (whole or
/// streamed chunk by chunk) as canonical events.
extension OpenAICompatibleProvider {
    /// The JSON body for `/chat/completions` (or `/completions` for a raw prompt).
    static func body(for request: ChatRequest) throws -> ByteBuffer {
        var w = JSONWriter()
        w.beginObject()
        w.field("model", request.model)
        w.field("stream", request.stream)
        if let raw = request.rawPrompt {
            w.field("prompt", raw)
        } else {
            w.key("messages")
            w.beginArray()
            for m in request.messages {
                w.beginObject()
                w.field("role", m.role.rawValue)
                w.field("content", m.content)
                if let id = m.toolCallID { w.field("tool_call_id", id) }
                if !m.toolCalls.isEmpty {
                    w.key("tool_calls")
                    w.beginArray()
                    for c in m.toolCalls {
                        w.beginObject()
                        w.field("id", c.id)
                        w.field("type", "function")
                        w.key("function")
                        w.beginObject(); w.field("name", c.name); w.field("arguments", c.arguments); w.endObject()
                        w.endObject()
                    }
                    w.endArray()
                }
                w.endObject()
            }
            w.endArray()
        }
        if request.stream {
            w.key("stream_options")
            w.beginObject(); w.field("include_usage", true); w.endObject()
        }
        let s = request.sampling
        if let v = s.temperature { w.field("temperature", v) }
        if let v = s.topP { w.field("top_p", v) }
        if let v = s.maxTokens { w.field("max_tokens", v) }
        if let v = s.seed { w.field("seed", v) }
        if let v = s.presencePenalty { w.field("presence_penalty", v) }
        if let v = s.frequencyPenalty { w.field("frequency_penalty", v) }
        // Extensions that llama-server, vLLM and Switchyard accept; sent only when the client set them.
        if let v = s.topK { w.field("top_k", v) }
        if let v = s.minP { w.field("min_p", v) }
        if let v = s.repeatPenalty { w.field("repeat_penalty", v) }
        if s.ignoreEOS { w.field("ignore_eos", true) }
        if !s.stop.isEmpty {
            w.key("stop")
            w.beginArray(); for x in s.stop { w.string(x) }; w.endArray()
        }
        if request.logprobs {
            w.field("logprobs", true)
            if request.topLogprobs > 0 { w.field("top_logprobs", request.topLogprobs) }
        }
        if !request.tools.isEmpty {
            w.key("tools")
            w.beginArray()
            for t in request.tools {
                w.beginObject()
                w.field("type", "function")
                w.key("function")
                w.beginObject()
                w.field("name", t.name)
                if let d = t.description { w.field("description", d) }
                // A schema that is not JSON is left out (as the upstream would refuse it).
                if let p = t.parametersJSON, (try? JSONSerialization.jsonObject(with: Data(p.utf8), options: .fragmentsAllowed)) != nil {
                    w.key("parameters"); w.raw(p)
                }
                w.endObject()
                w.endObject()
            }
            w.endArray()
            switch request.toolChoice {
            case .auto: break
            case .none: w.field("tool_choice", "none")
            case .required: w.field("tool_choice", "required")
            case .function(let name):
                w.key("tool_choice")
                w.beginObject(); w.field("type", "function")
                w.key("function"); w.beginObject(); w.field("name", name); w.endObject()
                w.endObject()
            }
            if !request.parallelToolCalls { w.field("parallel_tool_calls", false) }
        }
        switch request.responseFormat {
        case .text: break
        case .jsonObject:
            w.key("response_format")
            w.beginObject(); w.field("type", "json_object"); w.endObject()
        case .jsonSchema(let name, let schema, let strict):
            w.key("response_format")
            w.beginObject(); w.field("type", "json_schema")
            w.key("json_schema")
            w.beginObject(); w.field("name", name); w.field("strict", strict); w.key("schema"); w.raw(schema); w.endObject()
            w.endObject()
        }
        // llama-server's and Switchyard's extension.
        if let g = request.grammar { w.field("grammar", g) }
        if let adapters = request.sampling.adapters {
            w.key("lora")
            w.beginArray()
            for a in adapters { w.beginObject(); w.field("id", a.id); w.field("scale", a.scale); w.endObject() }
            w.endArray()
        }
        w.endObject()
        return w.buffer
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
            /// Reasoning before the answer (llama-server, vLLM, DeepSeek, Switchyard: `reasoning_content`;
            /// OpenRouter: `reasoning`).
            var reasoning_content: String?
            var reasoning: String?
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

    /// Turns answers into events in the canonical order: text and tool-call pieces as they arrive, `.finished`, then
    /// `.usage`. A call's first piece carries its id (`call_<index>` when the upstream sends none) and name.
    struct EventMapper {
        let maxToolCallBytes: Int
        /// Bytes of arguments seen per call index.
        private var calls: [Int: Int] = [:]
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
            if let thought = message?.reasoning_content ?? message?.reasoning, !thought.isEmpty { out.append(.reasoning(thought)) }
            if let text = message?.content ?? choice.text, !text.isEmpty {
                out.append(.text(text, choice.logprobs?.content?.first.map(Self.logprob)))
            }
            for (i, piece) in (message?.tool_calls ?? []).enumerated() {
                let index = piece.index ?? i
                let first = calls[index] == nil
                guard !first || calls.count < 128 else { throw CoreError.upstream("the answer has too many tool calls") }
                let arguments = piece.function?.arguments ?? ""
                let size = (calls[index] ?? 0) + arguments.utf8.count
                guard size <= maxToolCallBytes else { throw CoreError.upstream("a tool call's arguments pass \(maxToolCallBytes) bytes") }
                calls[index] = size
                let id = piece.id.flatMap { $0.isEmpty ? nil : $0 } ?? (first ? "call_\(index)" : nil)
                out.append(.toolCall(ToolCallDelta(index: index, id: id, name: piece.function?.name, arguments: arguments)))
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
            // A call whose arguments never came gets `{}`, so that what a client joins is JSON.
            let out: [ChatEvent] = calls.keys.sorted().filter { calls[$0] == 0 }.map { .toolCall(ToolCallDelta(index: $0, arguments: "{}")) }
            calls = [:]
            return out + [.finished(reason)]
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

extension OpenAICompatibleProvider.Answer {
    /// A member of the wrong type.
    struct ShapeError: Error, CustomStringConvertible {
        let path: String
        var description: String { "\(path) has the wrong type" }
    }

    /// Reads an answer from parsed JSON by the rules of its `Decodable` conformance: absent and null members are
    /// nil, unknown ones ignored, a member of the wrong type an error. (An `error` member is read by `Decodable`.)
    init(json: JSONValue) throws {
        func string(_ v: JSONValue?, _ path: @autoclosure () -> String) throws -> String? {
            guard let v else { return nil }
            guard case .string(let s) = v else { throw ShapeError(path: path()) }
            return s
        }
        func double(_ v: JSONValue?, _ path: @autoclosure () -> String) throws -> Double? {
            guard let v else { return nil }
            guard case .number(let d) = v else { throw ShapeError(path: path()) }
            return d
        }
        func int(_ v: JSONValue?, _ path: @autoclosure () -> String) throws -> Int? {
            guard let d = try double(v, path()) else { return nil }
            guard d == d.rounded(), abs(d) < 9e15 else { throw ShapeError(path: path()) }
            return Int(d)
        }
        func array(_ v: JSONValue?, _ path: @autoclosure () -> String) throws -> [JSONValue]? {
            guard let v else { return nil }
            guard case .array(let a) = v else { throw ShapeError(path: path()) }
            return a
        }
        func object(_ v: JSONValue?, _ path: @autoclosure () -> String) throws -> JSONValue? {
            guard let v else { return nil }
            guard case .object = v else { throw ShapeError(path: path()) }
            return v
        }
        func message(_ v: JSONValue?, _ path: String) throws -> Message? {
            guard let m = try object(v, path) else { return nil }
            let calls = try array(m["tool_calls"], path + ".tool_calls")?.enumerated().map { i, c -> ToolCallPiece in
                let p = "\(path).tool_calls[\(i)]"
                guard let c = try object(c, p) else { return ToolCallPiece() }
                let f = try object(c["function"], p + ".function").map {
                    Function(name: try string($0["name"], p + ".function.name"), arguments: try string($0["arguments"], p + ".function.arguments"))
                }
                return ToolCallPiece(index: try int(c["index"], p + ".index"), id: try string(c["id"], p + ".id"), function: f)
            }
            return Message(content: try string(m["content"], path + ".content"), tool_calls: calls)
        }
        func entry(_ v: JSONValue, _ path: String) throws -> (token: String, logprob: Double, top: [JSONValue]?) {
            guard let e = try object(v, path), let token = try string(e["token"], path + ".token"),
                  let logprob = try double(e["logprob"], path + ".logprob") else { throw ShapeError(path: path) }
            return (token, logprob, try array(e["top_logprobs"], path + ".top_logprobs"))
        }

        self.init()
        choices = try array(json["choices"], "choices")?.enumerated().map { i, c -> Choice in
            let p = "choices[\(i)]"
            guard let c = try object(c, p) else { return Choice() }
            var choice = Choice()
            choice.delta = try message(c["delta"], p + ".delta")
            choice.message = try message(c["message"], p + ".message")
            choice.text = try string(c["text"], p + ".text")
            choice.finish_reason = try string(c["finish_reason"], p + ".finish_reason")
            if let lp = try object(c["logprobs"], p + ".logprobs") {
                let content = try array(lp["content"], p + ".logprobs.content")?.enumerated().map { j, e -> Entry in
                    let q = "\(p).logprobs.content[\(j)]"
                    let (token, logprob, top) = try entry(e, q)
                    let alternatives = try top?.enumerated().map { k, t -> Alternative in
                        let (token, logprob, _) = try entry(t, "\(q).top_logprobs[\(k)]")
                        return Alternative(token: token, logprob: logprob)
                    }
                    return Entry(token: token, logprob: logprob, top_logprobs: alternatives)
                }
                choice.logprobs = Logprobs(content: content)
            }
            return choice
        }
        if let u = try object(json["usage"], "usage") {
            let details = try object(u["prompt_tokens_details"], "usage.prompt_tokens_details").map {
                UsageBody.Details(cached_tokens: try int($0["cached_tokens"], "usage.prompt_tokens_details.cached_tokens"))
            }
            usage = UsageBody(prompt_tokens: try int(u["prompt_tokens"], "usage.prompt_tokens"),
                              completion_tokens: try int(u["completion_tokens"], "usage.completion_tokens"), prompt_tokens_details: details)
        }
    }
}
