import Core
import Foundation
@testable import Providers
import Registry
import Routing
import Testing

/// The Anthropic adapter against a stand-in server speaking the Messages API as its reference documents it: the
/// request it sends, streamed text and tool use, whole answers, error and rate-limit answers, and a router falling
/// back from an overloaded Anthropic deployment.
@Suite struct AnthropicTests {
    static let textStream: [(String, String)] = [
        ("message_start", #"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}}"#),
        ("content_block_start", #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#),
        ("ping", #"{"type": "ping"}"#),
        ("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#),
        ("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" there"}}"#),
        ("content_block_stop", #"{"type":"content_block_stop","index":0}"#),
        ("message_delta", #"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}"#),
        ("message_stop", #"{"type":"message_stop"}"#),
    ]

    static let toolStream: [(String, String)] = [
        ("message_start", #"{"type":"message_start","message":{"id":"msg_2","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","usage":{"input_tokens":40,"output_tokens":1,"cache_read_input_tokens":10}}}"#),
        ("content_block_start", #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#),
        ("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Checking."}}"#),
        ("content_block_stop", #"{"type":"content_block_stop","index":0}"#),
        ("content_block_start", #"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{}}}"#),
        ("content_block_delta", #"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}"#),
        ("content_block_delta", #"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"location\": \"San Fra"}}"#),
        ("content_block_delta", #"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"ncisco\"}"}}"#),
        ("content_block_stop", #"{"type":"content_block_stop","index":1}"#),
        ("message_delta", #"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}"#),
        ("message_stop", #"{"type":"message_stop"}"#),
    ]

    static func server(_ reply: @escaping @Sendable (StandInServer.Request) -> StandInServer.Reply) -> StandInServer {
        StandInServer([(.post, "/v1/messages"), (.get, "/v1/models")], reply: reply)
    }

    func provider(_ base: String) -> AnthropicProvider { AnthropicProvider(.init(name: "claude", baseURL: base, apiKey: "sk-ant-test")) }

    func collect(_ stream: ChatStream) async throws -> [ChatEvent] {
        var out: [ChatEvent] = []
        for try await e in stream.events { out.append(e) }
        return out
    }

    func request(stream: Bool, tools: [ToolDefinition] = []) -> ChatRequest {
        ChatRequest(model: "claude-sonnet-4-5", messages: [ChatMessage(role: .system, content: "Be brief."), ChatMessage(role: .user, content: "Hi")],
                    tools: tools, stream: stream)
    }

    @Test func theRequestBodySeparatesTheSystemPromptAndAlternatesTurns() throws {
        let r = ChatRequest(model: "claude-x", messages: [
            ChatMessage(role: .system, content: "Be brief."),
            ChatMessage(role: .user, content: "Weather in Paris?"),
            ChatMessage(role: .assistant, content: "Checking.", toolCalls: [ToolCall(id: "toolu_1", name: "get_weather", arguments: #"{"city":"Paris"}"#)]),
            ChatMessage(role: .tool, content: "18 C", toolCallID: "toolu_1"),
            ChatMessage(role: .user, content: "And tomorrow?"),
        ], sampling: SamplingSettings(temperature: 1.5, topK: 5, stop: ["END"]),
           tools: [ToolDefinition(name: "get_weather", description: "Weather", parametersJSON: #"{"type":"object","properties":{"city":{"type":"string"}}}"#)])
        let body = AnthropicProvider.body(for: r, defaultMaxTokens: 1024)
        #expect(JSONSerialization.isValidJSONObject(body))
        #expect(body["system"] as? String == "Be brief." && body["max_tokens"] as? Int == 1024 && body["temperature"] as? Double == 1)
        #expect(body["top_k"] as? Int == 5 && body["stop_sequences"] as? [String] == ["END"] && body["stream"] as? Bool == false)
        let messages = try #require(body["messages"] as? [[String: Any]])
        #expect(messages.map { $0["role"] as? String } == ["user", "assistant", "user"])
        let assistant = try #require(messages[1]["content"] as? [[String: Any]])
        #expect(assistant.map { $0["type"] as? String } == ["text", "tool_use"])
        #expect(assistant[1]["id"] as? String == "toolu_1" && (assistant[1]["input"] as? [String: Any])?["city"] as? String == "Paris")
        // The tool's result and the next question are one user turn.
        let user = try #require(messages[2]["content"] as? [[String: Any]])
        #expect(user.map { $0["type"] as? String } == ["tool_result", "text"])
        #expect(user[0]["tool_use_id"] as? String == "toolu_1" && user[0]["content"] as? String == "18 C")
        let tool = try #require((body["tools"] as? [[String: Any]])?.first)
        #expect(tool["name"] as? String == "get_weather" && (tool["input_schema"] as? [String: Any])?["type"] as? String == "object")
        var withMax = r
        withMax.sampling.maxTokens = 7
        #expect(AnthropicProvider.body(for: withMax, defaultMaxTokens: 1024)["max_tokens"] as? Int == 7)
    }

    /// tool_choice maps to Anthropic's; a response_format becomes the one forced tool, whose input comes back as text.
    @Test func toolChoiceAndSchemaAsAForcedTool() throws {
        var r = ChatRequest(model: "claude", messages: [ChatMessage(role: .user, content: "Hi")],
                            tools: [ToolDefinition(name: "get_weather", parametersJSON: #"{"type":"object"}"#)])
        r.toolChoice = .function("get_weather")
        r.parallelToolCalls = false
        let choice = try #require(AnthropicProvider.body(for: r, defaultMaxTokens: 64)["tool_choice"] as? [String: Any])
        #expect(choice["type"] as? String == "tool" && choice["name"] as? String == "get_weather" && choice["disable_parallel_tool_use"] as? Bool == true)
        r.toolChoice = .required
        #expect((AnthropicProvider.body(for: r, defaultMaxTokens: 64)["tool_choice"] as? [String: Any])?["type"] as? String == "any")
        var s = ChatRequest(model: "claude", messages: [ChatMessage(role: .user, content: "Hi")])
        s.responseFormat = .jsonSchema(name: "person", schema: #"{"type":"object","properties":{"name":{"type":"string"}}}"#, strict: true)
        let body = AnthropicProvider.body(for: s, defaultMaxTokens: 64)
        let tools = try #require(body["tools"] as? [[String: Any]])
        #expect(tools.count == 1 && tools[0]["name"] as? String == "person")
        #expect(((tools[0]["input_schema"] as? [String: Any])?["properties"] as? [String: Any])?["name"] != nil)
        #expect((body["tool_choice"] as? [String: Any])?["name"] as? String == "person")
        let events: [ChatEvent] = [.toolCall(ToolCallDelta(index: 0, id: "toolu_1", name: "person")), .toolCall(ToolCallDelta(index: 0, arguments: #"{"name":"#)),
                                   .toolCall(ToolCallDelta(index: 0, arguments: #""Ann"}"#)), .finished(.toolCalls)]
        #expect(AnthropicProvider.schemaToolAsText(events) == [.text(#"{"name":"#, nil), .text(#""Ann"}"#, nil), .finished(.stop)])
    }

    @Test func streamedTextArrivesEventByEvent() async throws {
        let server = Self.server { _ in .init(headers: ["content-type": "text/event-stream"], pieces: StandInServer.events(Self.textStream)) }
        try await server.run { base in
            let events = try await collect(provider(base).chat(request(stream: true)))
            #expect(events == [.text("Hello", nil), .text(" there", nil), .finished(.stop), .usage(Usage(promptTokens: 25, completionTokens: 15))])
        }
        let sent = try #require(server.requests.first)
        #expect(sent.path == "/v1/messages" && sent.headers["x-api-key"] == "sk-ant-test" && sent.headers["anthropic-version"] == "2023-06-01")
        #expect(sent.headers["authorization"] == nil)
        #expect(sent.json?["stream"] as? Bool == true && sent.json?["system"] as? String == "Be brief." && sent.json?["max_tokens"] as? Int == 1024)
    }

    @Test func streamedToolUseBecomesOneToolCallInPieces() async throws {
        let server = Self.server { _ in .init(headers: ["content-type": "text/event-stream"], pieces: StandInServer.events(Self.toolStream, size: 13)) }
        try await server.run { base in
            let tools = [ToolDefinition(name: "get_weather", parametersJSON: #"{"type":"object"}"#)]
            let events = try await collect(provider(base).chat(request(stream: true, tools: tools)))
            // The id and name when the block starts, then the JSON as it streams (the empty first piece dropped).
            #expect(events == [
                .text("Checking.", nil),
                .toolCall(ToolCallDelta(index: 0, id: "toolu_01", name: "get_weather")),
                .toolCall(ToolCallDelta(index: 0, arguments: #"{"location": "San Fra"#)),
                .toolCall(ToolCallDelta(index: 0, arguments: #"ncisco"}"#)),
                .finished(.toolCalls), .usage(Usage(promptTokens: 50, completionTokens: 89, cachedPromptTokens: 10)),
            ])
            #expect(joinedToolCalls(events) == [ToolCall(id: "toolu_01", name: "get_weather", arguments: #"{"location": "San Francisco"}"#)])
        }
        #expect((server.requests.first?.json?["tools"] as? [[String: Any]])?.first?["input_schema"] != nil)
    }

    /// Extended thinking as Anthropic streams it: thinking deltas, then the block's signature, then the answer.
    static let thinkingStream: [(String, String)] = [
        ("message_start", #"{"type":"message_start","message":{"id":"msg_4","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","usage":{"input_tokens":30,"output_tokens":1}}}"#),
        ("content_block_start", #"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#),
        ("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"The user wants "}}"#),
        ("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"the weather."}}"#),
        ("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3h"}}"#),
        ("content_block_stop", #"{"type":"content_block_stop","index":0}"#),
        ("content_block_start", #"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_7","name":"get_weather","input":{}}}"#),
        ("content_block_delta", #"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\":\"Paris\"}"}}"#),
        ("content_block_stop", #"{"type":"content_block_stop","index":1}"#),
        ("message_delta", #"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":40}}"#),
        ("message_stop", #"{"type":"message_stop"}"#),
    ]

    @Test func thinkingComesWithItsSignatureAndGoesBackSigned() async throws {
        let server = Self.server { _ in .init(headers: ["content-type": "text/event-stream"], pieces: StandInServer.events(Self.thinkingStream, size: 17)) }
        try await server.run { base in
            let events = try await collect(provider(base).chat(request(stream: true, tools: [ToolDefinition(name: "get_weather")])))
            #expect(Array(events.prefix(3)) == [.reasoning("The user wants "), .reasoning("the weather."),
                                                .reasoningSignature("EqQBCgIYAhIM1gbcDa9GJwZA2b3h")])
            var blocks: [ReasoningBlock] = [], open = false
            for e in events { ReasoningBlock.append(e, to: &blocks, open: &open) }
            #expect(blocks == [ReasoningBlock(text: "The user wants the weather.", signature: "EqQBCgIYAhIM1gbcDa9GJwZA2b3h")])
        }
        // The next turn of the tool loop: the signed block goes back before the call, the unsigned one (another
        // model's reasoning) does not, a redacted block goes back as its data.
        let r = ChatRequest(model: "claude-sonnet-4-5", messages: [
            ChatMessage(role: .user, content: "Weather in Paris?"),
            ChatMessage(role: .assistant, content: "", toolCalls: [ToolCall(id: "toolu_7", name: "get_weather", arguments: #"{"city":"Paris"}"#)],
                        reasoning: [ReasoningBlock(text: "The user wants the weather.", signature: "EqQB"),
                                    ReasoningBlock(text: "unsigned"), ReasoningBlock(text: "", redacted: "c2VjcmV0")]),
            ChatMessage(role: .tool, content: "Sunny", toolCallID: "toolu_7"),
        ])
        let turns = try #require(AnthropicProvider.body(for: r, defaultMaxTokens: 64)["messages"] as? [[String: Any]])
        let blocks = try #require(turns[1]["content"] as? [[String: Any]])
        #expect(blocks.map { $0["type"] as? String } == ["thinking", "redacted_thinking", "tool_use"])
        #expect(blocks[0]["thinking"] as? String == "The user wants the weather." && blocks[0]["signature"] as? String == "EqQB")
        #expect(blocks[1]["data"] as? String == "c2VjcmV0")
        // A whole answer's thinking block gives its signature too.
        let whole = #"{"id":"msg_5","type":"message","role":"assistant","model":"m","content":[{"type":"thinking","thinking":"Hm.","signature":"sig1"},{"type":"text","text":"Hi"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":2}}"#
        let wholeServer = Self.server { _ in .init(json: whole) }
        try await wholeServer.run { base in
            let events = try await collect(provider(base).chat(request(stream: false)))
            #expect(Array(events.prefix(3)) == [.reasoning("Hm."), .reasoningSignature("sig1"), .text("Hi", nil)])
        }
    }

    @Test func aWholeAnswer() async throws {
        let json = #"{"id":"msg_3","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Paris."},{"type":"tool_use","id":"toolu_9","name":"lookup","input":{"q":"Paris","n":2}}],"stop_reason":"max_tokens","stop_sequence":null,"usage":{"input_tokens":9,"output_tokens":3}}"#
        let server = Self.server { _ in .init(json: json) }
        try await server.run { base in
            let events = try await collect(provider(base).chat(request(stream: false)))
            #expect(events.count == 4)
            #expect(events.first == .text("Paris.", nil) && events.dropFirst(2).first == .finished(.length))
            #expect(events.last == .usage(Usage(promptTokens: 9, completionTokens: 3)))
            guard case .toolCall(let call) = events[1] else { Issue.record("expected a tool call: \(events)"); return }
            #expect(call.index == 0 && call.id == "toolu_9" && call.name == "lookup")
            let arguments = try #require(JSONSerialization.jsonObject(with: Data(call.arguments.utf8)) as? [String: Any])
            #expect(arguments["q"] as? String == "Paris" && arguments["n"] as? Int == 2)
            // A 200 whose body is an error object is that error.
            server.reply { _ in .init(json: Self.error("overloaded_error", "Overloaded")) }
            await #expect(throws: CoreError.unavailable("Overloaded", retryAfterSeconds: nil)) { _ = try await collect(provider(base).chat(request(stream: false))) }
        }
    }

    static func error(_ type: String, _ message: String) -> String { #"{"type":"error","error":{"type":"\#(type)","message":"\#(message)"}}"# }

    @Test(arguments: [
        (429, ["retry-after": "30"], error("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
         CoreError.rateLimited("Number of request tokens has exceeded your per-minute rate limit", retryAfterSeconds: 30)),
        (529, [:], error("overloaded_error", "Overloaded"), CoreError.unavailable("Overloaded", retryAfterSeconds: nil)),
        (401, [:], error("authentication_error", "invalid x-api-key"), CoreError.auth("invalid x-api-key")),
        (400, [:], error("invalid_request_error", "max_tokens: Field required"), CoreError.badRequest("max_tokens: Field required")),
        (400, [:], error("invalid_request_error", "prompt is too long: 208310 tokens > 200000 maximum"),
         CoreError.contextLengthExceeded("prompt is too long: 208310 tokens > 200000 maximum")),
        (500, [:], error("api_error", "Internal server error"), CoreError.upstream("HTTP 500: Internal server error")),
    ] as [(Int, [String: String], String, CoreError)])
    func errorAnswersBecomeCanonicalErrors(_ status: Int, _ headers: [String: String], _ body: String, _ expected: CoreError) async throws {
        var all = headers
        all["content-type"] = "application/json"
        let server = Self.server { [all] _ in .init(status: status, headers: all, pieces: [body]) }
        try await server.run { base in
            for stream in [true, false] {
                await #expect(throws: expected) { _ = try await collect(provider(base).chat(request(stream: stream))) }
            }
        }
    }

    @Test func anErrorEventOrACutStreamEndsTheStreamWithAnError() async throws {
        let overloaded = Array(Self.textStream.prefix(4)) + [("error", Self.error("overloaded_error", "Overloaded"))]
        let server = Self.server { _ in .init(headers: ["content-type": "text/event-stream"], pieces: StandInServer.events(overloaded)) }
        try await server.run { base in
            var got: [ChatEvent] = []
            await #expect(throws: CoreError.unavailable("Overloaded", retryAfterSeconds: nil)) {
                for try await e in provider(base).chat(request(stream: true)).events { got.append(e) }
            }
            #expect(got == [.text("Hello", nil)])
            server.reply { _ in .init(headers: ["content-type": "text/event-stream"], pieces: StandInServer.events(Array(Self.textStream.prefix(5)))) }
            await #expect(throws: CoreError.self) { _ = try await collect(provider(base).chat(request(stream: true))) }
        }
    }

    @Test func modelsAreListed() async throws {
        let server = Self.server { _ in .init(json: #"{"data":[{"type":"model","id":"claude-sonnet-4-5","display_name":"Claude Sonnet 4.5"}],"has_more":false}"#) }
        try await server.run { base in
            let models = try await provider(base + "/v1/").models()
            #expect(models == [ModelInfo(name: "claude-sonnet-4-5", provider: "claude")])
        }
    }

    @Test func theRouterFallsBackFromAnOverloadedDeployment() async throws {
        let overloaded = Self.server { _ in .init(status: 529, json: Self.error("overloaded_error", "Overloaded")) }
        let healthy = Self.server { _ in .init(headers: ["content-type": "text/event-stream"], pieces: StandInServer.events(Self.textStream)) }
        try await overloaded.run { busyBase in
            try await healthy.run { okBase in
                let route = RouteDeclaration(name: "smart", deployments: [DeploymentDeclaration(provider: "claude", model: "claude-sonnet-4-5"),
                                                                         DeploymentDeclaration(provider: "backup", model: "claude-haiku-4-5")])
                let router = Routing.Router(routes: ["smart": route], providers: [
                    "claude": provider(busyBase), "backup": AnthropicProvider(.init(name: "backup", baseURL: okBase)),
                ])
                var r = request(stream: true)
                r.model = "smart"
                let stream = router.chat(r)
                let events = try await collect(stream)
                #expect(stream.route == RouteInfo(deployment: "backup/claude-haiku-4-5", fallbackFrom: ["claude/claude-sonnet-4-5"]))
                #expect(events == [.text("Hello", nil), .text(" there", nil), .finished(.stop), .usage(Usage(promptTokens: 25, completionTokens: 15))])
            }
        }
        #expect(overloaded.requests.count == 1 && healthy.requests.first?.json?["model"] as? String == "claude-haiku-4-5")
    }
}
