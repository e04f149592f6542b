import Core
import Foundation
import Grammar
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Storage

/// OpenAI's Responses API (`POST /v1/responses`, `GET` / `DELETE /v1/responses/{id}`,
/// `GET /v1/responses/{id}/input_items`), what OpenAI's newer SDKs and agent frameworks speak. A codec over the one
/// pipeline: `instructions`, `input` (a string, or items: messages with text parts, `function_call`,
/// `function_call_output`, `reasoning`), function `tools`, `tool_choice`, `parallel_tool_calls`, `text.format`,
/// `max_output_tokens`, `temperature`, `top_p` become a canonical request; the answer comes back as a response object
/// (whole) or as the API's semantic events (`response.created`, `response.output_item.added`,
/// `response.output_text.delta`, `response.function_call_arguments.delta`, …, `response.completed`).
///
/// Stateful: with `store` (the default) the response and every input item it saw are kept in the database, so that
/// `previous_response_id` continues from it (after a restart too, and on any replica over one PostgreSQL database),
/// and it can be read back or deleted. A key sees only the responses it made; without keys (auth off) every caller
/// sees all. Instructions are not carried to the next response, as OpenAI does.
struct ResponsesSurface {
    let backend: Backend
    /// Where responses are kept; nil: nowhere (`store` is answered false, `previous_response_id` is a 400).
    let store: ResponseStore?
    /// Where conversations are kept; nil: nowhere (`conversation` is a 400).
    var conversations: ConversationStore? = nil

    func register(on router: Router<GatewayContext>) {
        router.post("/v1/responses") { request, context in try await create(request, context) }
        router.get("/v1/responses/{id}") { _, context in
            let stored = try await find(try context.parameters.require("id"), for: context.caller)
            return Self.jsonResponse(try Self.parse(stored.response, what: "stored response"))
        }
        router.delete("/v1/responses/{id}") { _, context in
            let stored = try await find(try context.parameters.require("id"), for: context.caller)
            try await store?.delete(stored.id)
            return Self.jsonResponse(.object([("id", .string(stored.id)), ("object", .string("response.deleted")), ("deleted", .bool(true))]))
        }
        router.get("/v1/responses/{id}/input_items") { request, context in
            let stored = try await find(try context.parameters.require("id"), for: context.caller)
            let query = Dictionary(request.uri.queryParameters.map { (String($0.key), String($0.value)) }, uniquingKeysWith: { $1 })
            return Self.jsonResponse(try Self.inputItemsPage(stored, query: query))
        }
    }

    // MARK: stored responses

    /// Whether a caller may see a response made by `owner`: a key (`key`, its name) sees its own; the admin key,
    /// and everyone on a server without keys (`key` nil), see all.
    static func visible(owner: String?, toKey key: String?) -> Bool {
        key == nil || owner == key
    }

    static func notFound(_ id: String) -> APIError {
        APIError(.notFound, "no response with id '\(id)' is stored here", code: "response_not_found")
    }

    private func find(_ id: String, for caller: GuardCaller) async throws -> StoredResponse {
        guard let store else {
            throw APIError(.notFound, "this server keeps no responses (it has no database)", code: "response_not_found")
        }
        guard let stored = try await store.find(id), Self.visible(owner: stored.owner, toKey: caller.key?.name) else { throw Self.notFound(id) }
        return stored
    }

    static func parse(_ text: String, what: String) throws -> OrderedJSON {
        do { return try OrderedJSON.parse(text, maxDepth: 256) } catch {
            throw APIError(.internalServerError, "the \(what) is not valid JSON", type: "api_error")
        }
    }

    /// One page of a stored response's input items (`ListPage`: limit 1–100, default 20, newest first by default).
    static func inputItemsPage(_ stored: StoredResponse, query: [String: String]) throws -> OrderedJSON {
        guard case .array(let items) = try parse(stored.inputItems, what: "stored input") else {
            throw APIError(.internalServerError, "the stored input is not a list", type: "api_error")
        }
        return try ListPage.page(items, query: query, maxLimit: 100, defaultLimit: 20)
    }

    // MARK: creating a response

    private func create(_ request: Request, _ context: GatewayContext) async throws -> Response {
        var request = request
        let raw = try await request.collectBody(limit: BodyLimit.maxBytes)
        let body: OrderedJSON
        do { body = try OrderedJSON.parse(String(decoding: raw.readableBytesView, as: UTF8.self), maxDepth: 256) } catch {
            throw APIError(.badRequest, "the body must be a JSON object")
        }
        guard case .object = body else { throw APIError(.badRequest, "the body must be a JSON object") }
        var parsed = try ResponsesRequest(body)
        var history: [OrderedJSON] = []
        if let previous = parsed.previousResponseID {
            guard let store else {
                throw APIError(.badRequest, "previous_response_id needs stored responses, and this server has no database",
                               param: "previous_response_id", code: "previous_response_not_found")
            }
            guard let stored = try await store.find(previous), Self.visible(owner: stored.owner, toKey: context.caller.key?.name) else {
                throw APIError(.badRequest, "previous response with id '\(previous)' not found", param: "previous_response_id",
                               code: "previous_response_not_found")
            }
            history = try Self.items(of: stored)
        }
        if let conversationID = parsed.conversationID {
            guard let conversations else {
                throw APIError(.badRequest, "conversation needs stored conversations, and this server has no database",
                               param: "conversation", code: "conversation_not_found")
            }
            guard let found = try await conversations.find(conversationID),
                  Self.visible(owner: found.owner, toKey: context.caller.key?.name) else {
                throw APIError(.notFound, "conversation with id '\(conversationID)' not found", param: "conversation",
                               code: "conversation_not_found")
            }
            history = try await ConversationsSurface.parsedItems(of: found.id, in: conversations)
        }
        let owner = context.caller.key?.name
        var core = parsed.core
        core.messages = try ResponsesRequest.messages(instructions: parsed.instructions, items: history + parsed.input)
        guard core.messages.contains(where: { $0.role != .system }) else {
            throw APIError(.badRequest, "input must hold at least one message or item", param: "input")
        }
        // `truncation: auto`: the oldest turns go until the prompt fits the (local) model's context; said in a header.
        var trimmed = 0
        if parsed.truncate, let window = await backend.contextWindow(for: core) {
            let fitted = try await window.fit(core.messages)
            core.messages = fitted.messages
            trimmed = fitted.droppedMessages
        }
        core.hints = try RequestHints.from(request, metadata: parsed.metadata)
        parsed.store = parsed.store && store != nil
        let started = try await backend.start(core, kind: "responses", cache: CacheDirective(request.headers), caller: context.caller,
                                              record: context.record)
        let id = OpenAISurface.newID("resp_")
        let created = Int(Date().timeIntervalSince1970)
        let seen = history + parsed.input
        let keep: @Sendable (OrderedJSON) async -> Bool = { [store, parsed] response in
            guard parsed.store, let store else { return false }
            do {
                try await store.save(StoredResponse(id: id, owner: owner, createdAt: Date(timeIntervalSince1970: TimeInterval(created)),
                                                    model: parsed.core.model, previousResponseID: parsed.previousResponseID,
                                                    response: response.text, inputItems: OrderedJSON.array(seen).text))
                return true
            } catch {
                RequestLogMiddleware<GatewayContext>.writeToStderr("response \(id) could not be stored: \(error)\n")
                return false
            }
        }
        // With `conversation`: this request's input and the answer's output join the conversation's items.
        let remember: @Sendable (OrderedJSON) async -> Void = { [conversations, parsed] response in
            guard let conversationID = parsed.conversationID, let conversations else { return }
            var added = parsed.input.map(ConversationsSurface.completed)
            if case .array(let output)? = response["output"] { added += output }
            do {
                if try await !conversations.append(conversationID, items: ConversationsSurface.rows(added)) {
                    RequestLogMiddleware<GatewayContext>.writeToStderr("response \(id): conversation \(conversationID) was deleted meanwhile\n")
                }
            } catch {
                RequestLogMiddleware<GatewayContext>.writeToStderr("response \(id) could not be added to conversation \(conversationID): \(error)\n")
            }
        }
        var events = ResponseEvents(id: id, created: created, request: parsed)
        if !core.stream {
            while let event = try await started.next() { _ = events.next(event) }
            var response = events.finalResponse()
            await remember(response)
            if await !keep(response) { response = response.setting("store", .bool(false)) }
            var headers: HTTPFields = [.contentType: "application/json"]
            headers.append(contentsOf: started.routeHeaders)
            if trimmed > 0 { headers[Self.trimmedHeader] = String(trimmed) }
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: response.text)))
        }
        var extra: HTTPFields = [:]
        if trimmed > 0 { extra[Self.trimmedHeader] = String(trimmed) }
        let renderer = ResponseStreamRenderer(events: events) { response in
            await remember(response)
            return await keep(response)
        }
        return backend.streams.respond(started, renderer: renderer, framing: .sse, caller: context.caller, headers: extra)
    }

    /// The items a stored response leaves to the next one: what it saw, then what it answered.
    static func items(of stored: StoredResponse) throws -> [OrderedJSON] {
        guard case .array(let seen) = try parse(stored.inputItems, what: "stored input") else { return [] }
        guard case .array(let output)? = try parse(stored.response, what: "stored response")["output"] else { return seen }
        return seen + output
    }

    /// How many messages of the history `truncation: auto` left out of the prompt (absent: none).
    static let trimmedHeader = HTTPField.Name("x-switchyard-trimmed-messages")!

    static func jsonResponse(_ value: OrderedJSON) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: value.text)))
    }
}

/// The Responses API's events as a stream's frames; once the response is complete, `finish` keeps it (true: stored).
struct ResponseStreamRenderer: StreamRenderer {
    var events: ResponseEvents
    let finish: @Sendable (OrderedJSON) async -> Bool

    private static func frames(_ list: [OrderedJSON]) -> [StreamFrame] {
        list.map { StreamFrame(event: $0["type"]?.stringValue ?? "message", $0.text) }
    }

    mutating func start() -> [StreamFrame] { Self.frames(events.start()) }
    mutating func next(_ event: ChatEvent) -> [StreamFrame] { Self.frames(events.next(event)) }
    mutating func failed(_ error: APIError) -> [StreamFrame] { Self.frames(events.failed(error)) }

    mutating func end() async -> [StreamFrame] {
        var (final, response) = events.end()
        if await !finish(response) {
            final = final.map { e in
                guard let r = e["response"] else { return e }
                return e.setting("response", r.setting("store", .bool(false)))
            }
        }
        return Self.frames(final)
    }
}

/// A Responses API request body, read and checked: the canonical request (without its messages, which depend on the
/// response it continues), this request's input items (each with an id), and what the response object echoes.
struct ResponsesRequest: Sendable {
    var core: ChatRequest
    var input: [OrderedJSON]
    var instructions: String?
    var previousResponseID: String?
    /// The conversation this response continues and adds to (`conversation`: an id or `{"id": …}`).
    var conversationID: String?
    /// `truncation: auto`: drop the oldest turns of the history to fit the model's context.
    var truncate: Bool
    var store: Bool
    var metadata: [String: MetadataValue]?
    /// Members of the response object that repeat the request (`tools`, `tool_choice`, `text`, `temperature`, …).
    var echo: [(String, OrderedJSON)]

    private static func bad(_ message: String, _ param: String) -> APIError { APIError(.badRequest, message, param: param) }

    init(_ body: OrderedJSON) throws {
        guard case .string(let model)? = body["model"], !model.isEmpty else { throw Self.bad("model: field required", "model") }
        // What this surface cannot do is refused by name rather than ignored.
        for (field, why) in [("background", "background responses are not supported; stream instead"),
                             ("prompt", "stored prompt templates are not supported; send instructions and input"),
                             ("max_tool_calls", "max_tool_calls is not supported")] {
            switch body[field] {
            case nil, .null?, .bool(false)?: continue
            default: throw Self.bad(why, field)
            }
        }
        if case .object? = body["reasoning"], let effort = body["reasoning"]?["effort"], effort != .null {
            throw Self.bad("reasoning.effort is not supported: a model here reasons or not as its chat template makes it", "reasoning.effort")
        }
        input = try Self.inputItems(body["input"])
        switch body["instructions"] {
        case nil, .null?: instructions = nil
        case .string(let s)?: instructions = s
        default: throw Self.bad("instructions must be a string", "instructions")
        }
        switch body["previous_response_id"] {
        case nil, .null?: previousResponseID = nil
        case .string(let s)?: previousResponseID = s
        default: throw Self.bad("previous_response_id must be a string", "previous_response_id")
        }
        switch body["conversation"] {
        case nil, .null?: conversationID = nil
        case .string(let s)?: conversationID = s
        case .object? where body["conversation"]?["id"]?.stringValue != nil: conversationID = body["conversation"]?["id"]?.stringValue
        default: throw Self.bad("conversation must be a conversation id or {\"id\": …}", "conversation")
        }
        if conversationID != nil && previousResponseID != nil {
            throw Self.bad("conversation and previous_response_id cannot be used together", "conversation")
        }
        switch body["truncation"] {
        case nil, .null?, .string("disabled")?: truncate = false
        case .string("auto")?: truncate = true
        default: throw Self.bad("truncation must be auto or disabled", "truncation")
        }
        switch body["store"] {
        case nil, .null?: store = true
        case .bool(let b)?: store = b
        default: throw Self.bad("store must be a boolean", "store")
        }
        var sampling = SamplingSettings()
        if let v = body["temperature"], v != .null {
            guard let t = v.doubleValue, (0...2).contains(t) else { throw Self.bad("temperature must be between 0 and 2", "temperature") }
            sampling.temperature = t
        }
        if let v = body["top_p"], v != .null {
            guard let p = v.doubleValue, (0...1).contains(p) else { throw Self.bad("top_p must be between 0 and 1", "top_p") }
            sampling.topP = p
        }
        if let v = body["max_output_tokens"], v != .null {
            guard let n = v.intValue, n >= 1 else { throw Self.bad("max_output_tokens must be a positive integer", "max_output_tokens") }
            sampling.maxTokens = n
        }
        var tools: [ToolDefinition] = []
        if let v = body["tools"], v != .null {
            guard case .array(let list) = v else { throw Self.bad("tools must be a list", "tools") }
            for (i, t) in list.enumerated() {
                guard case .string(let type)? = t["type"] else { throw Self.bad("tools[\(i)].type: field required", "tools[\(i)].type") }
                guard type == "function" else {
                    throw Self.bad("tools[\(i)]: '\(type)' tools are not supported here; only function tools", "tools[\(i)].type")
                }
                guard case .string(let name)? = t["name"], !name.isEmpty else { throw Self.bad("tools[\(i)].name: field required", "tools[\(i)].name") }
                var parameters: String?
                if let p = t["parameters"], p != .null {
                    guard case .object = p else { throw Self.bad("tools[\(i)].parameters must be a JSON Schema object", "tools[\(i)].parameters") }
                    // Keys sorted, as the chat surface has them: equal schemas give equal prompts whichever surface
                    // (or hop) they came through.
                    let object = try? JSONSerialization.jsonObject(with: Data(p.text.utf8), options: [.fragmentsAllowed])
                    parameters = object.flatMap { try? JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys, .fragmentsAllowed]) }
                        .map { String(decoding: $0, as: UTF8.self) } ?? p.text
                }
                tools.append(ToolDefinition(name: name, description: t["description"]?.stringValue, parametersJSON: parameters))
            }
        }
        var stream = false
        switch body["stream"] {
        case nil, .null?: break
        case .bool(let b)?: stream = b
        default: throw Self.bad("stream must be a boolean", "stream")
        }
        core = ChatRequest(model: model, messages: [], sampling: sampling, tools: tools, stream: stream)
        switch body["tool_choice"] {
        case nil, .null?, .string("auto")?: core.toolChoice = .auto
        case .string("none")?: core.toolChoice = .none
        case .string("required")?:
            guard !tools.isEmpty else { throw Self.bad("tool_choice is required but the request has no tools", "tool_choice") }
            core.toolChoice = .required
        case .object? where body["tool_choice"]?["type"]?.stringValue == "function":
            guard let name = body["tool_choice"]?["name"]?.stringValue else { throw Self.bad("tool_choice.name: field required", "tool_choice.name") }
            guard tools.contains(where: { $0.name == name }) else {
                throw Self.bad("tool_choice names '\(name)', which is not among the request's tools", "tool_choice.name")
            }
            core.toolChoice = .function(name)
        default:
            throw Self.bad("tool_choice must be auto, none, required or {\"type\": \"function\", \"name\": …}", "tool_choice")
        }
        switch body["parallel_tool_calls"] {
        case nil, .null?: break
        case .bool(let b)?: core.parallelToolCalls = b
        default: throw Self.bad("parallel_tool_calls must be a boolean", "parallel_tool_calls")
        }
        var text = OrderedJSON.object([("format", .object([("type", .string("text"))]))])
        if let t = body["text"], t != .null {
            guard case .object = t else { throw Self.bad("text must be an object", "text") }
            if let format = t["format"], format != .null {
                switch format["type"]?.stringValue {
                case "text": break
                case "json_object": core.responseFormat = .jsonObject
                case "json_schema":
                    guard let schema = format["schema"], case .object = schema else {
                        throw Self.bad("text.format.schema: a JSON Schema object is required", "text.format.schema")
                    }
                    guard let name = format["name"]?.stringValue else { throw Self.bad("text.format.name: field required", "text.format.name") }
                    core.responseFormat = .jsonSchema(name: name, schema: schema.text, strict: format["strict"] == .bool(true))
                default: throw Self.bad("text.format.type must be text, json_object or json_schema", "text.format.type")
                }
            }
            text = t
        }
        switch body["metadata"] {
        case nil, .null?: metadata = nil
        case .object(let members)?:
            metadata = Dictionary(members.map { ($0.0, MetadataValue(text: $0.1.stringValue ?? $0.1.text)) }, uniquingKeysWith: { $1 })
        default: throw Self.bad("metadata must be an object", "metadata")
        }
        echo = [
            ("instructions", .optional(instructions)),
            ("max_output_tokens", body["max_output_tokens"] ?? .null),
            ("metadata", body["metadata"].flatMap { $0 == .null ? nil : $0 } ?? .object([])),
            ("parallel_tool_calls", .bool(core.parallelToolCalls)),
            ("previous_response_id", .optional(previousResponseID)),
            ("reasoning", .object([("effort", .null), ("summary", .null)])),
            ("temperature", body["temperature"] ?? .null),
            ("text", text),
            ("tool_choice", body["tool_choice"].flatMap { $0 == .null ? nil : $0 } ?? .string("auto")),
            ("tools", body["tools"].flatMap { $0 == .null ? nil : $0 } ?? .array([])),
            ("top_p", body["top_p"] ?? .null),
            ("truncation", .string(truncate ? "auto" : "disabled")),
            ("user", body["user"] ?? .null),
        ]
        if let conversationID { echo.append(("conversation", .object([("id", .string(conversationID))]))) }
    }

    /// `input` as items, each with an id (`msg_…`, `fc_…`, `fco_…` where the client gave none); a string is one user
    /// message.
    static func inputItems(_ input: OrderedJSON?) throws -> [OrderedJSON] {
        switch input {
        case nil, .null?: return []
        case .string(let s)?:
            return [message(role: "user", text: s)]
        case .array(let items)?:
            return try items.enumerated().map { i, item in
                guard case .object = item else { throw bad("input[\(i)] must be an object", "input[\(i)]") }
                var item = item
                let type = item["type"]?.stringValue ?? (item["role"] != nil ? "message" : "")
                if item["type"] == nil { item = item.inserting("type", .string(type)) }
                if item["id"]?.stringValue == nil {
                    let prefix = switch type {
                    case "function_call": "fc_"
                    case "function_call_output": "fco_"
                    case "reasoning": "rs_"
                    default: "msg_"
                    }
                    item = item.inserting("id", .string(OpenAISurface.newID(prefix)))
                }
                return item
            }
        default:
            throw bad("input must be a string or a list of items", "input")
        }
    }

    static func message(role: String, text: String) -> OrderedJSON {
        .object([("id", .string(OpenAISurface.newID("msg_"))), ("type", .string("message")), ("role", .string(role)),
                 ("content", .array([.object([("type", .string("input_text")), ("text", .string(text))])]))])
    }

    /// The canonical conversation for instructions and items: messages (developer and system are system), function
    /// calls joined to the assistant turn before them, function call outputs as tool messages, reasoning items
    /// carried by the assistant turn that follows them (`encrypted_content` as the signature).
    static func messages(instructions: String?, items: [OrderedJSON]) throws -> [ChatMessage] {
        var out: [ChatMessage] = []
        var reasoning: [ReasoningBlock] = []
        /// The assistant turn an assistant item joins: the last message when it is the assistant's and no reasoning
        /// came between, else a new one (carrying the reasoning before it).
        func assistantTurn() -> Int {
            if reasoning.isEmpty, let last = out.last, last.role == .assistant { return out.count - 1 }
            out.append(ChatMessage(role: .assistant, content: "", reasoning: reasoning))
            reasoning = []
            return out.count - 1
        }
        if let instructions, !instructions.isEmpty { out.append(ChatMessage(role: .system, content: instructions)) }
        for (i, item) in items.enumerated() {
            let at = "input[\(i)]"
            switch item["type"]?.stringValue ?? "" {
            case "message":
                let role: ChatMessage.Role
                switch item["role"]?.stringValue {
                case "user": role = .user
                case "assistant": role = .assistant
                case "system", "developer": role = .system
                default: throw bad("\(at).role must be user, assistant, system or developer", "\(at).role")
                }
                let content = try text(of: item["content"], at: at)
                if role == .assistant {
                    let turn = assistantTurn()
                    out[turn].content += content
                } else {
                    out.append(ChatMessage(role: role, content: content))
                }
            case "function_call":
                guard let callID = item["call_id"]?.stringValue, let name = item["name"]?.stringValue else {
                    throw bad("\(at): a function_call needs call_id and name", at)
                }
                let call = ToolCall(id: callID, name: name, arguments: item["arguments"]?.stringValue ?? "{}")
                out[assistantTurn()].toolCalls.append(call)
            case "function_call_output":
                guard let callID = item["call_id"]?.stringValue else { throw bad("\(at).call_id: field required", "\(at).call_id") }
                let output: String
                switch item["output"] {
                case .string(let s)?: output = s
                case .array?: output = try text(of: item["output"], at: "\(at).output")
                default: throw bad("\(at).output must be a string or text parts", "\(at).output")
                }
                out.append(ChatMessage(role: .tool, content: output, toolCallID: callID))
            case "reasoning":
                var text = ""
                if case .array(let parts)? = item["content"] { text = parts.compactMap { $0["text"]?.stringValue }.joined() }
                if text.isEmpty, case .array(let parts)? = item["summary"] { text = parts.compactMap { $0["text"]?.stringValue }.joined() }
                let signature = item["encrypted_content"]?.stringValue
                if !text.isEmpty || signature != nil { reasoning.append(ReasoningBlock(text: text, signature: signature)) }
            case "item_reference":
                throw bad("\(at): item_reference is not supported; send the item itself, or continue with previous_response_id", at)
            case let other:
                throw bad("\(at): items of type '\(other)' are not supported here", "\(at).type")
            }
        }
        return out
    }

    /// A message's content: a string, or text parts (`input_text`, `output_text`, `text`, `refusal`); images, files
    /// and audio are refused.
    static func text(of content: OrderedJSON?, at path: String) throws -> String {
        switch content {
        case .string(let s)?: return s
        case .array(let parts)?:
            return try parts.enumerated().map { j, part in
                switch part["type"]?.stringValue {
                case "input_text", "output_text", "text": return part["text"]?.stringValue ?? ""
                case "refusal": return part["refusal"]?.stringValue ?? ""
                case let type?: throw bad("\(path).content[\(j)]: \(type) is not supported (the models here read text)", "\(path).content[\(j)].type")
                case nil: throw bad("\(path).content[\(j)].type: field required", "\(path).content[\(j)].type")
                }
            }.joined()
        default: throw bad("\(path).content must be a string or a list of parts", "\(path).content")
        }
    }
}

/// The Responses API's view of one answer as it is generated: the semantic stream events for each canonical event
/// (an output item opens when the kind of output changes and closes, with its `.done` events, before the next
/// opens), and the response object at any point. Events carry `sequence_number` from 0.
struct ResponseEvents: Sendable {
    let id: String
    let created: Int
    let request: ResponsesRequest
    private(set) var output: [OrderedJSON] = []
    private var sequence = 0
    private enum Open: Sendable {
        case none
        case message(id: String, text: String)
        case reasoning(id: String, text: String, signature: String?)
        case call(index: Int, id: String, callID: String, name: String, arguments: String)
    }
    private var open = Open.none
    private var finish = FinishReason.stop
    private var usage = Usage(promptTokens: 0, completionTokens: 0)

    init(id: String, created: Int, request: ResponsesRequest) {
        self.id = id; self.created = created; self.request = request
    }

    /// The response object; `status` nil: from the finish reason (`completed`, or `incomplete` when the answer was
    /// cut by `max_output_tokens` or a content filter).
    func response(status: String?, error: OrderedJSON = .null) -> OrderedJSON {
        var incomplete = OrderedJSON.null
        var status = status ?? "completed"
        if status == "completed" {
            switch finish {
            case .length: status = "incomplete"; incomplete = .object([("reason", .string("max_output_tokens"))])
            case .contentFilter: status = "incomplete"; incomplete = .object([("reason", .string("content_filter"))])
            default: break
            }
        }
        let inProgress = status == "in_progress"
        let usageJSON: OrderedJSON = inProgress ? .null : .object([
            ("input_tokens", .int(usage.promptTokens)),
            ("input_tokens_details", .object([("cached_tokens", .int(usage.cachedPromptTokens))])),
            ("output_tokens", .int(usage.completionTokens)),
            ("output_tokens_details", .object([("reasoning_tokens", .int(0))])),
            ("total_tokens", .int(usage.totalTokens)),
        ])
        var members: [(String, OrderedJSON)] = [
            ("id", .string(id)), ("object", .string("response")), ("created_at", .int(created)), ("status", .string(status)),
            ("background", .bool(false)), ("error", error), ("incomplete_details", incomplete), ("model", .string(request.core.model)),
            ("output", .array(output)), ("store", .bool(request.store)), ("usage", usageJSON),
        ]
        members += request.echo
        return .object(members)
    }

    private mutating func event(_ type: String, _ members: [(String, OrderedJSON)]) -> OrderedJSON {
        defer { sequence += 1 }
        return .object([("type", .string(type))] + members + [("sequence_number", .int(sequence))])
    }

    mutating func start() -> [OrderedJSON] {
        let r = response(status: "in_progress")
        return [event("response.created", [("response", r)]), event("response.in_progress", [("response", r)])]
    }

    private var index: OrderedJSON { .int(output.count) }

    private static func messageItem(_ id: String, _ text: String, status: String) -> OrderedJSON {
        .object([("id", .string(id)), ("type", .string("message")), ("status", .string(status)), ("role", .string("assistant")),
                 ("content", .array(status == "in_progress" ? [] : [outputText(text)]))])
    }

    private static func outputText(_ text: String) -> OrderedJSON {
        .object([("type", .string("output_text")), ("text", .string(text)), ("annotations", .array([])), ("logprobs", .array([]))])
    }

    private static func reasoningItem(_ id: String, _ text: String, signature: String? = nil, done: Bool) -> OrderedJSON {
        var members: [(String, OrderedJSON)] = [
            ("id", .string(id)), ("type", .string("reasoning")), ("summary", .array([])),
            ("content", .array(done ? [.object([("type", .string("reasoning_text")), ("text", .string(text))])] : [])),
        ]
        if let signature { members.append(("encrypted_content", .string(signature))) }
        return .object(members)
    }

    private static func callItem(_ id: String, callID: String, name: String, arguments: String, status: String) -> OrderedJSON {
        .object([("id", .string(id)), ("type", .string("function_call")), ("status", .string(status)), ("arguments", .string(arguments)),
                 ("call_id", .string(callID)), ("name", .string(name))])
    }

    /// Closes the open item: its `.done` events, and the item joins the output.
    private mutating func close() -> [OrderedJSON] {
        var out: [OrderedJSON] = []
        switch open {
        case .none: return []
        case .message(let itemID, let text):
            let at: [(String, OrderedJSON)] = [("item_id", .string(itemID)), ("output_index", index), ("content_index", .int(0))]
            out.append(event("response.output_text.done", at + [("text", .string(text)), ("logprobs", .array([]))]))
            out.append(event("response.content_part.done", at + [("part", Self.outputText(text))]))
            let item = Self.messageItem(itemID, text, status: "completed")
            out.append(event("response.output_item.done", [("output_index", index), ("item", item)]))
            output.append(item)
        case .reasoning(let itemID, let text, let signature):
            let at: [(String, OrderedJSON)] = [("item_id", .string(itemID)), ("output_index", index), ("content_index", .int(0))]
            out.append(event("response.reasoning_text.done", at + [("text", .string(text))]))
            out.append(event("response.content_part.done", at + [("part", .object([("type", .string("reasoning_text")), ("text", .string(text))]))]))
            let item = Self.reasoningItem(itemID, text, signature: signature, done: true)
            out.append(event("response.output_item.done", [("output_index", index), ("item", item)]))
            output.append(item)
        case .call(_, let itemID, let callID, let name, let arguments):
            let args = arguments.isEmpty ? "{}" : arguments
            out.append(event("response.function_call_arguments.done",
                             [("item_id", .string(itemID)), ("output_index", index), ("name", .string(name)), ("arguments", .string(args))]))
            let item = Self.callItem(itemID, callID: callID, name: name, arguments: args, status: "completed")
            out.append(event("response.output_item.done", [("output_index", index), ("item", item)]))
            output.append(item)
        }
        open = .none
        return out
    }

    mutating func next(_ e: ChatEvent) -> [OrderedJSON] {
        switch e {
        case .text(let t, _):
            guard !t.isEmpty else { return [] }
            var out: [OrderedJSON] = []
            if case .message(let itemID, let text) = open {
                open = .message(id: itemID, text: text + t)
            } else {
                out += close()
                let itemID = OpenAISurface.newID("msg_")
                open = .message(id: itemID, text: t)
                out.append(event("response.output_item.added", [("output_index", index), ("item", Self.messageItem(itemID, "", status: "in_progress"))]))
                out.append(event("response.content_part.added", [("item_id", .string(itemID)), ("output_index", index), ("content_index", .int(0)),
                                                                 ("part", Self.outputText(""))]))
            }
            guard case .message(let itemID, _) = open else { return out }
            out.append(event("response.output_text.delta", [("item_id", .string(itemID)), ("output_index", index), ("content_index", .int(0)),
                                                            ("delta", .string(t)), ("logprobs", .array([]))]))
            return out
        case .reasoning(let t):
            guard !t.isEmpty else { return [] }
            var out: [OrderedJSON] = []
            if case .reasoning(let itemID, let text, let signature) = open, signature == nil {
                open = .reasoning(id: itemID, text: text + t, signature: nil)
            } else {
                out += close()
                let itemID = OpenAISurface.newID("rs_")
                open = .reasoning(id: itemID, text: t, signature: nil)
                out.append(event("response.output_item.added", [("output_index", index), ("item", Self.reasoningItem(itemID, "", done: false))]))
                out.append(event("response.content_part.added", [("item_id", .string(itemID)), ("output_index", index), ("content_index", .int(0)),
                                                                 ("part", .object([("type", .string("reasoning_text")), ("text", .string(""))]))]))
            }
            guard case .reasoning(let itemID, _, _) = open else { return out }
            out.append(event("response.reasoning_text.delta", [("item_id", .string(itemID)), ("output_index", index), ("content_index", .int(0)),
                                                               ("delta", .string(t))]))
            return out
        case .reasoningSignature(let s):
            // The signature ends its block of reasoning.
            var out: [OrderedJSON] = []
            if case .reasoning(let itemID, let text, nil) = open {
                open = .reasoning(id: itemID, text: text, signature: s)
            } else {
                out += close()
                let itemID = OpenAISurface.newID("rs_")
                open = .reasoning(id: itemID, text: "", signature: s)
                out.append(event("response.output_item.added", [("output_index", index), ("item", Self.reasoningItem(itemID, "", done: false))]))
                out.append(event("response.content_part.added", [("item_id", .string(itemID)), ("output_index", index), ("content_index", .int(0)),
                                                                 ("part", .object([("type", .string("reasoning_text")), ("text", .string(""))]))]))
            }
            return out + close()
        case .toolCall(let d):
            var out: [OrderedJSON] = []
            if case .call(let i, let itemID, let callID, let name, let arguments) = open, i == d.index {
                open = .call(index: i, id: itemID, callID: callID, name: name + (d.name ?? ""), arguments: arguments + d.arguments)
            } else {
                out += close()
                let itemID = OpenAISurface.newID("fc_")
                let callID = d.id ?? "call_\(d.index)"
                open = .call(index: d.index, id: itemID, callID: callID, name: d.name ?? "", arguments: d.arguments)
                out.append(event("response.output_item.added", [("output_index", index), ("item",
                    Self.callItem(itemID, callID: callID, name: d.name ?? "", arguments: "", status: "in_progress"))]))
            }
            guard case .call(_, let itemID, _, _, _) = open, !d.arguments.isEmpty else { return out }
            out.append(event("response.function_call_arguments.delta", [("item_id", .string(itemID)), ("output_index", index),
                                                                        ("delta", .string(d.arguments))]))
            return out
        case .finished(let f):
            finish = f
            return close()
        case .usage(let u):
            usage = u
            return []
        }
    }

    /// The last events (`response.completed`, or `response.incomplete`) and the response object they carry.
    mutating func end() -> ([OrderedJSON], OrderedJSON) {
        var out = close()
        let r = response(status: nil)
        out.append(event(r["status"] == .string("incomplete") ? "response.incomplete" : "response.completed", [("response", r)]))
        return (out, r)
    }

    /// `response.failed` for an error after the stream began.
    mutating func failed(_ e: APIError) -> [OrderedJSON] {
        var out = close()
        let error = OrderedJSON.object([("code", .string(e.code ?? APIError.responsesCode(e.status))), ("message", .string(e.message))])
        out.append(event("response.failed", [("response", response(status: "failed", error: error))]))
        return out
    }

    /// The response as a whole answer (after every event went through `next`).
    mutating func finalResponse() -> OrderedJSON {
        _ = close()
        return response(status: nil)
    }
}

extension APIError {
    /// The `error.code` of a failed response for a status without a code of its own.
    static func responsesCode(_ status: HTTPResponse.Status) -> String {
        switch status.code {
        case 429: "rate_limit_exceeded"
        case 400..<500: "invalid_request"
        default: "server_error"
        }
    }
}

extension OrderedJSON {
    static func int(_ n: Int) -> OrderedJSON { .number(Double(n), String(n)) }
    static func optional(_ s: String?) -> OrderedJSON { s.map { .string($0) } ?? .null }

    var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    var doubleValue: Double? { if case .number(let d, _) = self { d } else { nil } }
    /// An integral number that fits an `Int`.
    var intValue: Int? {
        guard case .number(let d, _) = self, d == d.rounded(), abs(d) < 9e15 else { return nil }
        return Int(d)
    }

    /// The object with `key` set to `value` (replaced in place, or added at the end).
    func setting(_ key: String, _ value: OrderedJSON) -> OrderedJSON {
        guard case .object(var members) = self else { return self }
        if let i = members.firstIndex(where: { $0.0 == key }) { members[i].1 = value } else { members.append((key, value)) }
        return .object(members)
    }

    /// The object with `key` set to `value`, added first when new (ids and types lead, as OpenAI writes them).
    func inserting(_ key: String, _ value: OrderedJSON) -> OrderedJSON {
        guard case .object(var members) = self else { return self }
        if let i = members.firstIndex(where: { $0.0 == key }) { members[i].1 = value } else { members.insert((key, value), at: 0) }
        return .object(members)
    }
}
