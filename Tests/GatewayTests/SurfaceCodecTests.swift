import Core
@testable import Gateway
import Testing

/// The Anthropic and Ollama surfaces as codecs: requests in their wire shapes become the canonical request, and
/// canonical events become their wire events in the order their clients expect.
@Suite struct SurfaceCodecTests {
    @Test func anthropicEventsOpenAndCloseOneBlockAtATime() {
        var e = MessageEvents(id: "msg_1", model: "m")
        var names = e.start().map(\.0)
        for event: ChatEvent in [.reasoning("Let me"), .reasoning(" think."), .text("Sure", nil), .text(".", nil),
                                 .toolCall(ToolCallDelta(index: 0, id: "call_a", name: "add")), .toolCall(ToolCallDelta(index: 0, arguments: #"{"a":"#)),
                                 .toolCall(ToolCallDelta(index: 0, arguments: "1}")), .toolCall(ToolCallDelta(index: 1, id: "call_b", name: "add", arguments: "{}")),
                                 .finished(.toolCalls), .usage(Usage(promptTokens: 10, completionTokens: 4, cachedPromptTokens: 3))] {
            names += e.next(event).map(\.0)
        }
        let end = e.end()
        names += end.map(\.0)
        #expect(names == ["message_start", "ping",
                          "content_block_start", "content_block_delta", "content_block_delta",   // thinking
                          "content_block_stop", "content_block_start", "content_block_delta", "content_block_delta",   // text
                          "content_block_stop", "content_block_start", "content_block_delta", "content_block_delta",   // tool 0
                          "content_block_stop", "content_block_start", "content_block_delta",   // tool 1
                          "content_block_stop", "message_delta", "message_stop"])
        let delta = end.first { $0.0 == "message_delta" }!.1
        #expect((delta["delta"] as? [String: Any])?["stop_reason"] as? String == "tool_use")
        let usage = delta["usage"] as? [String: Any]
        #expect(usage?["input_tokens"] as? Int == 7 && usage?["cache_read_input_tokens"] as? Int == 3 && usage?["output_tokens"] as? Int == 4)
    }

    @Test func anthropicRequestsBecomeCanonical() throws {
        let body: [String: Any] = [
            "model": "m", "max_tokens": 50, "temperature": 0.5, "stop_sequences": ["END"],
            "system": [["type": "text", "text": "Be brief."]],
            "tools": [["name": "add", "input_schema": ["type": "object"]]],
            "tool_choice": ["type": "any", "disable_parallel_tool_use": true],
            "messages": [
                ["role": "user", "content": "Add 1 and 2."],
                ["role": "assistant", "content": [["type": "thinking", "thinking": "hm", "signature": "x"],
                                                  ["type": "tool_use", "id": "toolu_1", "name": "add", "input": ["a": 1, "b": 2]]]],
                ["role": "user", "content": [["type": "tool_result", "tool_use_id": "toolu_1", "content": "3"],
                                             ["type": "text", "text": "Thanks."]]],
            ],
        ]
        let r = try AnthropicSurface.canonical(body)
        #expect(r.messages.map(\.role) == [.system, .user, .assistant, .tool, .user])
        #expect(r.messages[2].toolCalls == [ToolCall(id: "toolu_1", name: "add", arguments: #"{"a":1,"b":2}"#)])
        #expect(r.messages[2].reasoning == [ReasoningBlock(text: "hm", signature: "x")], "thinking travels with its turn")
        #expect(r.messages[3].toolCallID == "toolu_1" && r.messages[3].content == "3" && r.messages[4].content == "Thanks.")
        #expect(r.sampling.maxTokens == 50 && r.sampling.stop == ["END"] && r.toolChoice == .required && !r.parallelToolCalls)
        #expect(throws: APIError.self) { try AnthropicSurface.canonical(["model": "m", "messages": [Any]()]) }
    }

    @Test func aSignatureEndsItsThinkingBlock() {
        var e = MessageEvents(id: "msg_1", model: "m")
        var out = e.start()
        for event: ChatEvent in [.reasoning("Hm."), .reasoningSignature("sig1"), .reasoning("More."), .reasoningSignature("sig2"), .text("Hi", nil)] {
            out += e.next(event)
        }
        out += e.end()
        let deltas = out.filter { $0.0 == "content_block_delta" }.compactMap { $0.1["delta"] as? [String: Any] }
        #expect(deltas.map { $0["type"] as? String } == ["thinking_delta", "signature_delta", "thinking_delta", "signature_delta", "text_delta"])
        #expect(deltas[1]["signature"] as? String == "sig1" && deltas[3]["signature"] as? String == "sig2")
        let starts = out.filter { $0.0 == "content_block_start" }.compactMap { ($0.1["content_block"] as? [String: Any])?["type"] as? String }
        #expect(starts == ["thinking", "thinking", "text"], "two signed blocks stay two blocks")
    }

    @Test func ollamaMessagesLinkToolResultsToTheirCalls() throws {
        let wire = [
            OllamaSurface.MessageWire(role: "user", content: "2+3?", images: nil, tool_calls: nil, tool_name: nil, thinking: nil),
            OllamaSurface.MessageWire(role: "assistant", content: "", images: nil,
                                      tool_calls: [.init(function: .init(name: "add", arguments: .object(["a": .number(2), "b": .number(3)])))],
                                      tool_name: nil, thinking: nil),
            OllamaSurface.MessageWire(role: "tool", content: "5", images: nil, tool_calls: nil, tool_name: "add", thinking: nil),
        ]
        let m = try OllamaSurface.canonical(wire)
        #expect(m[1].toolCalls.first?.id == "call_0" && m[1].toolCalls.first?.arguments == #"{"a":2,"b":3}"#)
        #expect(m[2].role == .tool && m[2].toolCallID == "call_0")
        #expect(try OllamaSurface.fill("{{ .System }}|{{- .Prompt -}}|{{ .Response }}", system: "S", prompt: "P") == "S|P|")
        #expect(throws: APIError.self) { try OllamaSurface.fill("{{ if .System }}x{{ end }}", system: nil, prompt: "") }
    }
}
