import Core
import Foundation
@testable import Providers
import Testing

/// The Ollama adapter against a stand-in server speaking Ollama's native API as its reference documents it:
/// `/api/chat` streamed as newline-delimited JSON and whole, tool calls, errors, and `/api/tags`.
@Suite struct OllamaTests {
    static func line(_ content: String) -> String {
        #"{"model":"llama3.2","created_at":"2023-08-04T08:52:19.385406455-07:00","message":{"role":"assistant","content":"\#(content)","images":null},"done":false}"# + "\n"
    }
    static let last = #"{"model":"llama3.2","created_at":"2023-08-04T19:22:45.499127Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":4883583458,"load_duration":1334875,"prompt_eval_count":26,"prompt_eval_duration":342546000,"eval_count":282,"eval_duration":4535599000}"# + "\n"

    static func server(_ reply: @escaping @Sendable (StandInServer.Request) -> StandInServer.Reply) -> StandInServer {
        StandInServer([(.post, "/api/chat"), (.get, "/api/tags")], reply: reply)
    }

    func provider(_ base: String) -> OllamaProvider { OllamaProvider(.init(name: "ollama", baseURL: base)) }

    func collect(_ stream: ChatStream) async throws -> [ChatEvent] {
        var out: [ChatEvent] = []
        for try await e in stream.events { out.append(e) }
        return out
    }

    func request(stream: Bool) -> ChatRequest {
        ChatRequest(model: "llama3.2", messages: [ChatMessage(role: .user, content: "why is the sky blue?")],
                    sampling: SamplingSettings(temperature: 0, seed: 42, maxTokens: 16, stop: ["\n\n"]), stream: stream)
    }

    @Test func linesSplitAcrossAnyChunkingAndAnEndlessLineIsCutOff() throws {
        let bytes = Array("{\"a\":1}\r\n\n{\"b\":2}\n{\"c\"".utf8)
        for size in [1, 2, 5, bytes.count] {
            var splitter = LineSplitter()
            var lines: [String] = []
            for start in stride(from: 0, to: bytes.count, by: size) { lines += try splitter.feed(bytes[start..<min(start + size, bytes.count)]) }
            #expect(lines == [#"{"a":1}"#, #"{"b":2}"#] && splitter.finish() == #"{"c""#, "chunks of \(size)")
        }
        var short = LineSplitter(maxLineBytes: 16)
        #expect(throws: LineSplitter.Failure.lineTooLong(limit: 16)) { _ = try short.feed(String(repeating: "x", count: 40).utf8) }
    }

    @Test func aStreamedAnswerArrivesLineByLine() async throws {
        let text = Self.line("The") + Self.line(" sky") + Self.line(" is blue.") + Self.last
        let server = Self.server { _ in .init(headers: ["content-type": "application/x-ndjson"], pieces: StandInServer.pieces(text, size: 11)) }
        try await server.run { base in
            let events = try await collect(provider(base).chat(request(stream: true)))
            #expect(events == [.text("The", nil), .text(" sky", nil), .text(" is blue.", nil), .finished(.stop),
                               .usage(Usage(promptTokens: 26, completionTokens: 282))])
        }
        let sent = try #require(server.requests.first?.json)
        let options = try #require(sent["options"] as? [String: Any])
        #expect(sent["stream"] as? Bool == true && sent["model"] as? String == "llama3.2")
        #expect(options["num_predict"] as? Int == 16 && options["seed"] as? Int == 42 && options["temperature"] as? Double == 0 && options["stop"] as? [String] == ["\n\n"])
    }

    @Test func aWholeAnswerWithAToolCall() async throws {
        let json = #"{"model":"llama3.2","created_at":"2024-07-22T20:33:28.123648Z","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_current_weather","arguments":{"format":"celsius","location":"Paris, FR"}}}]},"done_reason":"stop","done":true,"total_duration":885095291,"prompt_eval_count":122,"eval_count":25}"#
        let server = Self.server { _ in .init(json: json) }
        try await server.run { base in
            var r = request(stream: false)
            r.tools = [ToolDefinition(name: "get_current_weather", parametersJSON: #"{"type":"object"}"#)]
            let events = try await collect(provider(base).chat(r))
            #expect(events == [.toolCall(.whole(ToolCall(id: "call_0", name: "get_current_weather", arguments: #"{"format":"celsius","location":"Paris, FR"}"#), index: 0)),
                               .finished(.toolCalls), .usage(Usage(promptTokens: 122, completionTokens: 25))])
        }
        #expect((server.requests.first?.json?["tools"] as? [[String: Any]])?.count == 1)
    }

    /// Ollama cannot be asked for one call at a time: with parallel_tool_calls off only the first call is passed on.
    @Test func oneCallAtATimeKeepsTheFirst() async throws {
        let json = #"{"model":"m","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"a","arguments":{"x":1}}},{"function":{"name":"b","arguments":{}}}]},"done_reason":"stop","done":true,"prompt_eval_count":5,"eval_count":9}"#
        let server = Self.server { _ in .init(json: json) }
        try await server.run { base in
            var r = request(stream: false)
            r.tools = [ToolDefinition(name: "a"), ToolDefinition(name: "b")]
            #expect(joinedToolCalls(try await collect(provider(base).chat(r))).map(\.name) == ["a", "b"])
            r.parallelToolCalls = false
            let events = try await collect(provider(base).chat(r))
            #expect(joinedToolCalls(events) == [ToolCall(id: "call_0", name: "a", arguments: #"{"x":1}"#)])
            #expect(events.contains(.finished(.toolCalls)))
        }
    }

    @Test func theRequestCarriesToolCallsAndResults() throws {
        let r = ChatRequest(model: "m", messages: [
            ChatMessage(role: .assistant, content: "", toolCalls: [ToolCall(id: "c1", name: "f", arguments: #"{"x":1}"#)]),
            ChatMessage(role: .tool, content: "42", toolCallID: "c1"),
        ])
        let body = OllamaProvider.body(for: r)
        #expect(JSONSerialization.isValidJSONObject(body) && body["options"] == nil)
        let messages = try #require(body["messages"] as? [[String: Any]])
        let call = try #require((messages[0]["tool_calls"] as? [[String: Any]])?.first?["function"] as? [String: Any])
        #expect(call["name"] as? String == "f" && (call["arguments"] as? [String: Any])?["x"] as? Int == 1)
        #expect(messages[1]["role"] as? String == "tool" && messages[1]["tool_name"] as? String == "f")
    }

    /// `format` goes as Ollama's format; a GBNF grammar, which Ollama cannot take, is refused before anything is sent.
    @Test func formatIsSentAndAGrammarIsRefused() async throws {
        var r = request(stream: false)
        r.responseFormat = .jsonSchema(name: "s", schema: #"{"type":"object"}"#, strict: true)
        #expect((OllamaProvider.body(for: r)["format"] as? [String: Any])?["type"] as? String == "object")
        r.responseFormat = .jsonObject
        #expect(OllamaProvider.body(for: r)["format"] as? String == "json")
        let server = Self.server { _ in .init(json: "{}") }
        try await server.run { base in
            var g = request(stream: false)
            g.grammar = #"root ::= "x""#
            await #expect(throws: CoreError.badRequest("grammar is not supported by Ollama models; use response_format")) {
                _ = try await collect(provider(base).chat(g))
            }
        }
        #expect(server.requests.isEmpty)
    }

    /// What Ollama's API cannot express is refused before anything is sent: forcing a tool call, log-probabilities.
    /// `tool_choice: none` is kept by leaving the tools out.
    @Test func toolChoiceItCannotExpressIsRefused() async throws {
        let server = Self.server { _ in .init(json: "{}") }
        let tools = [ToolDefinition(name: "f", parametersJSON: #"{"type":"object"}"#)]
        try await server.run { base in
            var r = request(stream: false)
            r.tools = tools
            r.toolChoice = .required
            await #expect(throws: CoreError.badRequest("tool_choice 'required' cannot be sent to Ollama models (Ollama's API has no tool_choice)")) {
                _ = try await collect(provider(base).chat(r))
            }
            r.toolChoice = .function("f")
            await #expect(throws: CoreError.badRequest("tool_choice naming 'f' cannot be sent to Ollama models (Ollama's API has no tool_choice)")) {
                _ = try await collect(provider(base).chat(r))
            }
            r.toolChoice = .auto
            r.logprobs = true
            await #expect(throws: CoreError.badRequest("logprobs are not available from Ollama models here")) {
                _ = try await collect(provider(base).chat(r))
            }
        }
        #expect(server.requests.isEmpty)
        var none = request(stream: false)
        none.tools = tools
        #expect(OllamaProvider.body(for: none)["tools"] != nil)
        none.toolChoice = .none
        #expect(OllamaProvider.body(for: none)["tools"] == nil)
    }

    @Test func errorsBecomeCanonicalErrors() async throws {
        let server = Self.server { _ in .init(status: 404, json: #"{"error":"model \"nope\" not found, try pulling it first"}"#) }
        try await server.run { base in
            await #expect(throws: CoreError.upstream(#"HTTP 404: model "nope" not found, try pulling it first"#)) {
                _ = try await collect(provider(base).chat(request(stream: true)))
            }
            server.reply { _ in .init(status: 400, json: #"{"error":"invalid options"}"#) }
            await #expect(throws: CoreError.badRequest("invalid options")) { _ = try await collect(provider(base).chat(request(stream: false))) }
            server.reply { _ in .init(status: 503, headers: ["retry-after": "5"], json: #"{"error":"server busy"}"#) }
            await #expect(throws: CoreError.unavailable("server busy", retryAfterSeconds: 5)) { _ = try await collect(provider(base).chat(request(stream: true))) }
            // An error line in the middle of a stream, and a stream that stops before `done`.
            server.reply { _ in .init(pieces: [Self.line("The"), #"{"error":"an unexpected error occurred"}"# + "\n"]) }
            var got: [ChatEvent] = []
            await #expect(throws: CoreError.upstream("an unexpected error occurred")) {
                for try await e in provider(base).chat(request(stream: true)).events { got.append(e) }
            }
            #expect(got == [.text("The", nil)])
            server.reply { _ in .init(pieces: [Self.line("The")]) }
            await #expect(throws: CoreError.self) { _ = try await collect(provider(base).chat(request(stream: true))) }
        }
    }

    @Test func modelsComeFromTags() async throws {
        let json = #"{"models":[{"name":"deepseek-r1:latest","model":"deepseek-r1:latest","modified_at":"2025-05-10T08:06:48.639712648-07:00","size":4683075271,"digest":"0a8c26691023","details":{"parent_model":"","format":"gguf","family":"qwen2","families":["qwen2"],"parameter_size":"7.6B","quantization_level":"Q4_K_M"}}]}"#
        let server = Self.server { _ in .init(json: json) }
        try await server.run { base in
            let models = try await provider(base).models()
            #expect(models == [ModelInfo(name: "deepseek-r1:latest", provider: "ollama", sizeBytes: 4683075271, quantization: "Q4_K_M")])
        }
        #expect(server.requests.first?.path == "/api/tags")
    }
}
