import Core
import Foundation
import NIOCore
import NIOHTTP1
@testable import Providers
import Testing

/// The OpenAI-compatible adapter's pure parts: server-sent events, answers as events, errors as canonical ones.
@Suite struct OpenAICompatibleTests {
    @Test func serverSentEventsSplitAcrossAnyChunking() throws {
        let text = "data: {\"a\":1}\r\n\r\n: keep-alive\n\nevent: x\ndata: one\ndata: two\n\ndata:[DONE]\n\n"
        let bytes = Array(text.utf8)
        for size in [1, 2, 3, 7, bytes.count] {
            var parser = ServerSentEventParser()
            var events: [String] = []
            var i = 0
            while i < bytes.count {
                events += try parser.feed(bytes[i..<min(i + size, bytes.count)])
                i += size
            }
            #expect(events == [#"{"a":1}"#, "one\ntwo", "[DONE]"], "chunks of \(size)")
        }
        var unterminated = ServerSentEventParser()
        #expect(try unterminated.feed("data: last".utf8).isEmpty)
        #expect(unterminated.finish() == "last")
    }

    @Test func anEndlessLineIsCutOff() {
        var parser = ServerSentEventParser(maxEventBytes: 64)
        #expect(throws: ServerSentEventParser.Failure.eventTooLong(limit: 64)) {
            _ = try parser.feed(("data: " + String(repeating: "x", count: 100)).utf8)
        }
    }

    func answer(_ json: String) throws -> OpenAICompatibleProvider.Answer {
        try JSONDecoder().decode(OpenAICompatibleProvider.Answer.self, from: Data(json.utf8))
    }

    @Test func streamedChunksBecomeEventsInTheCanonicalOrder() throws {
        var m = OpenAICompatibleProvider.EventMapper(maxToolCallBytes: 1024)
        var events: [ChatEvent] = []
        for chunk in [
            #"{"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}"#,
            #"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_9","function":{"name":"get","arguments":"{\"a\""}}]}}]}"#,
            #"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]}}]}"#,
            #"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":4,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":1}}}"#,
        ] { events += try m.events(for: answer(chunk)) }
        events += m.close()
        // The call's pieces pass on as they arrive (id and name with the first), not joined at the end.
        #expect(events == [.text("Hi", nil),
                           .toolCall(ToolCallDelta(index: 0, id: "call_9", name: "get", arguments: #"{"a""#)),
                           .toolCall(ToolCallDelta(index: 0, arguments: ":1}")), .finished(.toolCalls),
                           .usage(Usage(promptTokens: 4, completionTokens: 2, cachedPromptTokens: 1))])
        #expect(joinedToolCalls(events) == [ToolCall(id: "call_9", name: "get", arguments: #"{"a":1}"#)])
    }

    /// `reasoning_content` (llama-server, vLLM, DeepSeek) and `reasoning` (OpenRouter) become reasoning events.
    @Test func reasoningIsKeptApartFromText() throws {
        var m = OpenAICompatibleProvider.EventMapper(maxToolCallBytes: 1024)
        var events: [ChatEvent] = []
        for chunk in [
            #"{"choices":[{"index":0,"delta":{"reasoning_content":"Think"},"finish_reason":null}]}"#,
            #"{"choices":[{"index":0,"delta":{"reasoning":"ing."},"finish_reason":null}]}"#,
            #"{"choices":[{"index":0,"delta":{"content":"Paris"},"finish_reason":"stop"}]}"#,
        ] { events += try m.events(for: answer(chunk)) }
        #expect(events == [.reasoning("Think"), .reasoning("ing."), .text("Paris", nil), .finished(.stop)])
    }

    @Test func aWholeAnswerAndAnErrorInsideAStream() throws {
        var m = OpenAICompatibleProvider.EventMapper(maxToolCallBytes: 1024)
        let whole = #"{"choices":[{"index":0,"message":{"role":"assistant","content":"Paris"},"finish_reason":"length"}],"usage":{"prompt_tokens":9,"completion_tokens":1}}"#
        #expect(try m.events(for: answer(whole)) + m.close() == [.text("Paris", nil), .finished(.length), .usage(Usage(promptTokens: 9, completionTokens: 1))])
        var n = OpenAICompatibleProvider.EventMapper(maxToolCallBytes: 1024)
        #expect(throws: CoreError.rateLimited("Rate limit reached", retryAfterSeconds: nil)) {
            _ = try n.events(for: answer(#"{"error":{"message":"Rate limit reached","type":"requests"}}"#))
        }
    }

    @Test(arguments: [
        (401, #"{"error":{"message":"Incorrect API key","type":"invalid_request_error","code":"invalid_api_key"}}"#, CoreError.auth("Incorrect API key")),
        (429, #"{"error":{"message":"slow down"}}"#, CoreError.rateLimited("slow down", retryAfterSeconds: 7)),
        (503, #"{"detail":"busy"}"#, CoreError.unavailable("busy", retryAfterSeconds: 7)),
        (400, #"{"error":{"message":"This model's maximum context length is 4096 tokens","code":"context_length_exceeded"}}"#,
         CoreError.contextLengthExceeded("This model's maximum context length is 4096 tokens")),
        (400, #"{"error":"temperature must be at most 2"}"#, CoreError.badRequest("temperature must be at most 2")),
        (500, "<html>oops</html>", CoreError.upstream("HTTP 500: <html>oops</html>")),
        (408, "", CoreError.timeout("HTTP 408")),
    ])
    func errorAnswersBecomeCanonicalErrors(_ status: Int, _ body: String, _ expected: CoreError) {
        let e = OpenAICompatibleProvider.ErrorBody.parse(ByteBuffer(string: body), status: status)
        #expect(e.coreError(status: status, retryAfter: 7) == expected)
    }

    @Test func retryAfterInSecondsMillisecondsOrADate() {
        #expect(OpenAICompatibleProvider.retryAfter(HTTPHeaders([("Retry-After", "3")])) == 3)
        #expect(OpenAICompatibleProvider.retryAfter(HTTPHeaders([("retry-after-ms", "1500"), ("Retry-After", "9")])) == 2)
        let now = Date(timeIntervalSince1970: 1_700_000_000)   // Tue, 14 Nov 2023 22:13:20 GMT
        #expect(OpenAICompatibleProvider.retryAfter(HTTPHeaders([("Retry-After", "Tue, 14 Nov 2023 22:13:50 GMT")]), now: now) == 30)
        #expect(OpenAICompatibleProvider.retryAfter(HTTPHeaders([("Retry-After", "soon")])) == nil)
        #expect(OpenAICompatibleProvider.retryAfter(HTTPHeaders()) == nil)
    }

    @Test func theRequestBodyCarriesWhatTheClientSet() throws {
        var r = ChatRequest(model: "m", messages: [
            ChatMessage(role: .assistant, content: "", toolCalls: [ToolCall(id: "c1", name: "f", arguments: "{}")]),
            ChatMessage(role: .tool, content: "42", toolCallID: "c1"),
        ], sampling: SamplingSettings(temperature: 0, maxTokens: 5, stop: ["\n"]),
           tools: [ToolDefinition(name: "f", parametersJSON: #"{"type":"object"}"#)], stream: true)
        r.logprobs = true
        let bytes = try OpenAICompatibleProvider.body(for: r)
        let body = try #require(try JSONSerialization.jsonObject(with: Data(bytes.readableBytesView)) as? [String: Any])
        #expect(body["model"] as? String == "m" && body["stream"] as? Bool == true && body["max_tokens"] as? Int == 5)
        #expect((body["stream_options"] as? [String: Bool])?["include_usage"] == true && body["top_k"] == nil)
        let messages = try #require(body["messages"] as? [[String: Any]])
        #expect(messages[1]["tool_call_id"] as? String == "c1" && (messages[0]["tool_calls"] as? [[String: Any]])?.count == 1)
        let tool = try #require((body["tools"] as? [[String: Any]])?.first?["function"] as? [String: Any])
        #expect((tool["parameters"] as? [String: Any])?["type"] as? String == "object")
        #expect(body["temperature"] as? Double == 0 && (body["stop"] as? [String]) == ["\n"] && body["logprobs"] as? Bool == true)
        #expect(body["ignore_eos"] == nil)
        r.sampling.ignoreEOS = true
        let ignoring = try #require(try JSONSerialization.jsonObject(with: Data(try OpenAICompatibleProvider.body(for: r).readableBytesView)) as? [String: Any])
        #expect(ignoring["ignore_eos"] as? Bool == true)
    }

    /// response_format (the schema as the client wrote it), tool_choice, parallel_tool_calls and grammar pass through.
    @Test func constraintsPassThrough() throws {
        var r = ChatRequest(model: "m", messages: [ChatMessage(role: .user, content: "Hi")],
                            tools: [ToolDefinition(name: "f", parametersJSON: #"{"type":"object"}"#)])
        r.toolChoice = .function("f")
        r.parallelToolCalls = false
        r.responseFormat = .jsonSchema(name: "s", schema: #"{"type":"object","properties":{"b":{},"a":{}}}"#, strict: true)
        r.grammar = #"root ::= "x""#
        let bytes = try OpenAICompatibleProvider.body(for: r)
        let text = String(buffer: bytes)
        #expect(text.contains(#""schema":{"type":"object","properties":{"b":{},"a":{}}}"#))
        let body = try #require(try JSONSerialization.jsonObject(with: Data(bytes.readableBytesView)) as? [String: Any])
        #expect(((body["tool_choice"] as? [String: Any])?["function"] as? [String: Any])?["name"] as? String == "f")
        #expect(body["parallel_tool_calls"] as? Bool == false && body["grammar"] as? String == #"root ::= "x""#)
        let format = try #require(body["response_format"] as? [String: Any])
        #expect(format["type"] as? String == "json_schema" && (format["json_schema"] as? [String: Any])?["strict"] as? Bool == true)
    }

    @Test func theRequestBodyIsValidJSONForAnyText() throws {
        // Quotes, backslashes, control characters, non-ASCII and a schema that is not JSON (left out).
        let texts = ["plain", "say \"hi\"", "back\\slash", "line\nbreak\ttab\r", "\u{01}\u{1f}\u{7f}", "héllo 🌍 中文", ""]
        for text in texts {
            let r = ChatRequest(model: text, messages: [ChatMessage(role: .user, content: text)],
                                sampling: SamplingSettings(temperature: 0.7, topP: 1e-5, stop: [text]),
                                tools: [ToolDefinition(name: text, description: text, parametersJSON: "{not json")])
            let bytes = try OpenAICompatibleProvider.body(for: r)
            let body = try #require(try JSONSerialization.jsonObject(with: Data(bytes.readableBytesView)) as? [String: Any])
            let messages = try #require(body["messages"] as? [[String: Any]])
            #expect(body["model"] as? String == text && messages.first?["content"] as? String == text && (body["stop"] as? [String]) == [text])
            #expect(body["temperature"] as? Double == 0.7 && body["top_p"] as? Double == 1e-5)
            let function = try #require((body["tools"] as? [[String: Any]])?.first?["function"] as? [String: Any])
            #expect(function["name"] as? String == text && function["parameters"] == nil)
        }
    }
}
