import Core
@testable import Gateway
import Grammar
import Testing

/// The Responses API as a codec: request bodies become the canonical request and conversation, canonical events
/// become the API's semantic events in order, and who may see a stored response.
@Suite struct ResponsesCodecTests {
    func body(_ text: String) throws -> OrderedJSON { try OrderedJSON.parse(text) }

    @Test func itemsBecomeTheCanonicalConversation() throws {
        let r = try ResponsesRequest(try body("""
            {"model": "m", "instructions": "Be brief.", "max_output_tokens": 50, "temperature": 0.5, "top_p": 0.9,
             "tools": [{"type": "function", "name": "add", "parameters": {"type": "object", "properties": {"b": {}, "a": {}}}}],
             "tool_choice": {"type": "function", "name": "add"}, "parallel_tool_calls": false,
             "input": [
               {"role": "developer", "content": "Use tools."},
               {"role": "user", "content": [{"type": "input_text", "text": "Add 1 "}, {"type": "input_text", "text": "and 2."}]},
               {"type": "reasoning", "id": "rs_1", "summary": []},
               {"type": "function_call", "call_id": "call_1", "name": "add", "arguments": "{\\"a\\":1,\\"b\\":2}"},
               {"type": "function_call", "call_id": "call_2", "name": "add", "arguments": "{\\"a\\":3,\\"b\\":4}"},
               {"type": "function_call_output", "call_id": "call_1", "output": "3"},
               {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "7"}]}
             ]}
            """))
        #expect(r.core.model == "m" && r.core.sampling.maxTokens == 50 && r.core.sampling.temperature == 0.5 && r.core.sampling.topP == 0.9)
        #expect(r.core.toolChoice == .function("add") && !r.core.parallelToolCalls)
        #expect(r.core.tools.map(\.name) == ["add"])
        #expect(r.core.tools[0].parametersJSON == #"{"properties":{"a":{},"b":{}},"type":"object"}"#, "keys sorted, as the chat surface has them")
        #expect(r.input.count == 7 && r.input.allSatisfy { $0["id"]?.stringValue != nil }, "every item gets an id")
        #expect(r.input[0]["type"] == .string("message") && r.input[0]["id"]?.stringValue?.hasPrefix("msg_") == true)
        #expect(r.input[3]["id"]?.stringValue?.hasPrefix("fc_") == true && r.input[5]["id"]?.stringValue?.hasPrefix("fco_") == true)
        #expect(r.input[2]["id"] == .string("rs_1"), "a given id is kept")
        let messages = try ResponsesRequest.messages(instructions: r.instructions, items: r.input)
        #expect(messages == [
            ChatMessage(role: .system, content: "Be brief."),
            ChatMessage(role: .system, content: "Use tools."),
            ChatMessage(role: .user, content: "Add 1 and 2."),
            ChatMessage(role: .assistant, content: "", toolCalls: [ToolCall(id: "call_1", name: "add", arguments: #"{"a":1,"b":2}"#),
                                                                   ToolCall(id: "call_2", name: "add", arguments: #"{"a":3,"b":4}"#)]),
            ChatMessage(role: .tool, content: "3", toolCallID: "call_1"),
            ChatMessage(role: .tool, content: "7", toolCallID: "call_2"),
        ])
    }

    @Test func aStringInputIsOneUserMessageAndTextFormatIsTheResponseFormat() throws {
        let r = try ResponsesRequest(try body("""
            {"model": "m", "input": "Hi", "store": false, "stream": true,
             "text": {"format": {"type": "json_schema", "name": "x", "strict": true, "schema": {"type": "object", "properties": {"z": {}, "a": {}}}}}}
            """))
        #expect(try ResponsesRequest.messages(instructions: nil, items: r.input) == [ChatMessage(role: .user, content: "Hi")])
        #expect(!r.store && r.core.stream)
        #expect(r.core.responseFormat == .jsonSchema(name: "x", schema: #"{"type":"object","properties":{"z":{},"a":{}}}"#, strict: true))
        #expect(try ResponsesRequest(try body(#"{"model": "m", "input": "Hi"}"#)).store, "store defaults to true")
    }

    @Test(arguments: [
        (#"{"input": "Hi"}"#, "model"),
        (#"{"model": "m", "input": 3}"#, "input"),
        (#"{"model": "m", "input": "Hi", "tools": [{"type": "file_search"}]}"#, "tools[0].type"),
        (#"{"model": "m", "input": "Hi", "tools": [{"type": "function"}]}"#, "tools[0].name"),
        (#"{"model": "m", "input": "Hi", "tool_choice": "required"}"#, "tool_choice"),
        (#"{"model": "m", "input": "Hi", "max_output_tokens": 0}"#, "max_output_tokens"),
        (#"{"model": "m", "input": "Hi", "temperature": 3}"#, "temperature"),
        (#"{"model": "m", "input": "Hi", "background": true}"#, "background"),
        (#"{"model": "m", "input": "Hi", "conversation": "conv_1", "previous_response_id": "resp_1"}"#, "conversation"),
        (#"{"model": "m", "input": "Hi", "conversation": 5}"#, "conversation"),
        (#"{"model": "m", "input": "Hi", "truncation": "sometimes"}"#, "truncation"),
        (#"{"model": "m", "input": "Hi", "text": {"format": {"type": "json_schema", "name": "x"}}}"#, "text.format.schema"),
    ])
    func badRequestsNameTheirField(_ text: String, _ param: String) throws {
        let error = #expect(throws: APIError.self) { try ResponsesRequest(try OrderedJSON.parse(text)) }
        #expect(error?.status == .badRequest && error?.param == param, "\(error?.message ?? "")")
    }

    @Test(arguments: [
        (#"[{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]"#, "input[0].content[0].type"),
        (#"[{"role": "tool", "content": "x"}]"#, "input[0].role"),
        (#"[{"type": "function_call", "name": "f"}]"#, "input[0]"),
        (#"[{"type": "function_call_output", "output": "x"}]"#, "input[0].call_id"),
        (#"[{"type": "web_search_call", "id": "ws_1"}]"#, "input[0].type"),
    ])
    func itemsThatCannotBeExpressedAreRefused(_ items: String, _ param: String) throws {
        let input = try ResponsesRequest.inputItems(try OrderedJSON.parse(items))
        let error = #expect(throws: APIError.self) { try ResponsesRequest.messages(instructions: nil, items: input) }
        #expect(error?.status == .badRequest && error?.param == param, "\(error?.message ?? "")")
    }

    @Test func eventsOpenAndCloseOneItemAtATime() throws {
        var e = ResponseEvents(id: "resp_1", created: 1, request: try ResponsesRequest(try body(#"{"model": "m", "input": "Hi"}"#)))
        var events = e.start()
        for event: ChatEvent in [.reasoning("Let me"), .reasoning(" think."), .text("Sure", nil), .text(".", nil),
                                 .toolCall(ToolCallDelta(index: 0, id: "call_a", name: "add")), .toolCall(ToolCallDelta(index: 0, arguments: #"{"a":"#)),
                                 .toolCall(ToolCallDelta(index: 0, arguments: "1}")), .toolCall(ToolCallDelta(index: 1, id: "call_b", name: "add", arguments: "{}")),
                                 .finished(.toolCalls), .usage(Usage(promptTokens: 10, completionTokens: 4, cachedPromptTokens: 3))] {
            events += e.next(event)
        }
        let (end, response) = e.end()
        events += end
        #expect(events.map { $0["type"]?.stringValue ?? "" } == [
            "response.created", "response.in_progress",
            "response.output_item.added", "response.content_part.added", "response.reasoning_text.delta", "response.reasoning_text.delta",
            "response.reasoning_text.done", "response.content_part.done", "response.output_item.done",
            "response.output_item.added", "response.content_part.added", "response.output_text.delta", "response.output_text.delta",
            "response.output_text.done", "response.content_part.done", "response.output_item.done",
            "response.output_item.added", "response.function_call_arguments.delta", "response.function_call_arguments.delta",
            "response.function_call_arguments.done", "response.output_item.done",
            "response.output_item.added", "response.function_call_arguments.delta", "response.function_call_arguments.done",
            "response.output_item.done", "response.completed",
        ])
        #expect(events.map { $0["sequence_number"]?.intValue ?? -1 } == Array(0..<events.count))
        guard case .array(let output)? = response["output"] else { Issue.record("no output"); return }
        #expect(output.map { $0["type"]?.stringValue ?? "" } == ["reasoning", "message", "function_call", "function_call"])
        #expect(output[1]["content"] == .array([.object([("type", .string("output_text")), ("text", .string("Sure.")),
                                                           ("annotations", .array([])), ("logprobs", .array([]))])]))
        #expect(output[2]["arguments"] == .string(#"{"a":1}"#) && output[2]["call_id"] == .string("call_a"))
        #expect(output[3]["arguments"] == .string("{}") && output[3]["call_id"] == .string("call_b"))
        #expect(response["status"] == .string("completed"))
        #expect(response["usage"]?["input_tokens"] == .int(10) && response["usage"]?["input_tokens_details"]?["cached_tokens"] == .int(3))
        #expect(response["usage"]?["total_tokens"] == .int(14))
    }

    @Test func reasoningItemsTravelWithTheirTurnAndSignaturesComeBackAsEncryptedContent() throws {
        let items = try ResponsesRequest.inputItems(try OrderedJSON.parse("""
            [{"role": "user", "content": "Weather?"},
             {"type": "reasoning", "id": "rs_1", "summary": [], "content": [{"type": "reasoning_text", "text": "Look it up."}], "encrypted_content": "sig1"},
             {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
             {"type": "function_call_output", "call_id": "call_1", "output": "Sunny"}]
            """))
        let messages = try ResponsesRequest.messages(instructions: nil, items: items)
        #expect(messages[1] == ChatMessage(role: .assistant, content: "", toolCalls: [ToolCall(id: "call_1", name: "get_weather", arguments: "{}")],
                                           reasoning: [ReasoningBlock(text: "Look it up.", signature: "sig1")]))
        var e = ResponseEvents(id: "resp_1", created: 1, request: try ResponsesRequest(try body(#"{"model": "m", "input": "Hi"}"#)))
        _ = e.start()
        for event: ChatEvent in [.reasoning("Look "), .reasoning("it up."), .reasoningSignature("sig1"), .text("Sunny.", nil), .finished(.stop)] {
            _ = e.next(event)
        }
        let (_, response) = e.end()
        guard case .array(let output)? = response["output"] else { Issue.record("no output"); return }
        #expect(output.map { $0["type"]?.stringValue ?? "" } == ["reasoning", "message"])
        #expect(output[0]["encrypted_content"] == .string("sig1"))
        #expect(output[0]["content"] == .array([.object([("type", .string("reasoning_text")), ("text", .string("Look it up."))])]))
    }

    @Test func aCutAnswerIsIncomplete() throws {
        var e = ResponseEvents(id: "resp_1", created: 1, request: try ResponsesRequest(try body(#"{"model": "m", "input": "Hi"}"#)))
        _ = e.start()
        _ = e.next(.text("Once", nil))
        _ = e.next(.finished(.length))
        let (end, response) = e.end()
        #expect(end.last?["type"] == .string("response.incomplete"))
        #expect(response["status"] == .string("incomplete") && response["incomplete_details"]?["reason"] == .string("max_output_tokens"))
        var failing = ResponseEvents(id: "resp_2", created: 1, request: try ResponsesRequest(try body(#"{"model": "m", "input": "Hi"}"#)))
        _ = failing.start()
        _ = failing.next(.text("Once", nil))
        let failed = failing.failed(APIError(.badGateway, "upstream went away", type: "api_error"))
        #expect(failed.map { $0["type"]?.stringValue ?? "" } == ["response.output_text.done", "response.content_part.done",
                                                                 "response.output_item.done", "response.failed"])
        #expect(failed.last?["response"]?["error"]?["code"] == .string("server_error"))
    }

    @Test func keysSeeOnlyTheirOwnResponses() {
        #expect(ResponsesSurface.visible(owner: "alice", toKey: "alice"))
        #expect(!ResponsesSurface.visible(owner: "alice", toKey: "bob"))
        #expect(!ResponsesSurface.visible(owner: nil, toKey: "bob"), "a key does not see what was made without one")
        #expect(ResponsesSurface.visible(owner: "alice", toKey: nil) && ResponsesSurface.visible(owner: nil, toKey: nil),
                "the admin key, and every caller of a server without keys")
    }
}
