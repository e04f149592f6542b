import Core
import Foundation
@testable import Gateway
import NIOCore
import Testing

/// Answers written directly as JSON say exactly what JSONEncoder would have said.
@Suite struct OpenAIWireTests {
    func viaEncoder(_ value: some Encodable) throws -> Any {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        return try JSONSerialization.jsonObject(with: encoder.encode(value))
    }

    @Test(arguments: [false, true])
    func aChatCompletionWrittenDirectlyEqualsTheEncodersJSON(withLogprobs: Bool) throws {
        let texts = ["Hello there.", "quote \" backslash \\ slash / newline \n tab \t bell \u{07}", "héllo 🌍", ""]
        for text in texts {
            let lp = Core.TokenLogprob(token: text, logprob: -0.125, top: [.init(token: "a\"b", logprob: -1.5), .init(token: "é", logprob: -2)])
            let completion = OpenAI.ChatCompletion(id: "chatcmpl-1", created: 1_700_000_000, model: "m/\(text)", choices: [
                OpenAI.ChatChoice(index: 0, message: OpenAI.ResponseMessage(role: "assistant", text: text, toolCalls: []),
                                  logprobs: withLogprobs ? OpenAI.Logprobs(content: [OpenAI.TokenLogprob(lp)]) : nil, finish_reason: "stop"),
            ], usage: OpenAI.Usage(Usage(promptTokens: 9, completionTokens: 3, cachedPromptTokens: 2)))
            let direct = try JSONSerialization.jsonObject(with: Data(completion.json.readableBytesView))
            #expect((direct as? NSDictionary) == (try viaEncoder(completion) as? NSDictionary))
            // Keys in sorted order, as the encoder writes them (a cached answer is replayed byte for byte).
            let text = String(buffer: completion.json)
            #expect(text.hasPrefix(#"{"choices":[{"finish_reason":"stop","index":0,"logprobs":"#))
            #expect(text.hasSuffix(#""total_tokens":12}}"#))
        }
    }
}

extension OpenAIWireTests {
    @Test(arguments: ["", "Checking the weather."])
    func toolCallsWrittenDirectlyEqualTheEncodersJSON(text: String) throws {
        let calls = [ToolCall(id: "call_1", name: "get_weather", arguments: #"{"city":"Paris \"Île\""}"#),
                     ToolCall(id: "toolu_2", name: "lookup", arguments: "{}")]
        let completion = OpenAI.ChatCompletion(id: "chatcmpl-2", created: 1_700_000_000, model: "m", choices: [
            OpenAI.ChatChoice(index: 0, message: OpenAI.ResponseMessage(role: "assistant", text: text, toolCalls: calls),
                              logprobs: nil, finish_reason: "tool_calls"),
        ], usage: OpenAI.Usage(Usage(promptTokens: 9, completionTokens: 3)))
        let direct = try #require(try JSONSerialization.jsonObject(with: Data(completion.json.readableBytesView)) as? NSDictionary)
        #expect(direct == (try viaEncoder(completion) as? NSDictionary))
        let message = try #require(((direct["choices"] as? [NSDictionary])?.first)?["message"] as? NSDictionary)
        // No text: content is null, as OpenAI sends it.
        #expect(text.isEmpty ? message["content"] is NSNull : message["content"] as? String == text)
        let wire = try #require(message["tool_calls"] as? [NSDictionary])
        #expect(wire.map { $0["id"] as? String } == ["call_1", "toolu_2"])
        #expect(wire.allSatisfy { $0["type"] as? String == "function" })
        #expect(wire.map { ($0["function"] as? NSDictionary)?["arguments"] as? String } == calls.map(\.arguments))
    }

    @Test func aStreamedPieceCarriesIdTypeAndNameOnlyWhenItHasThem() throws {
        let first = try #require(try viaEncoder(OpenAI.ToolCallDeltaOut(ToolCallDelta(index: 1, id: "call_1", name: "get"))) as? NSDictionary)
        #expect(first == ["index": 1, "id": "call_1", "type": "function", "function": ["name": "get", "arguments": ""]] as NSDictionary)
        let next = try #require(try viaEncoder(OpenAI.ToolCallDeltaOut(ToolCallDelta(index: 1, arguments: #"{"a""#))) as? NSDictionary)
        #expect(next == ["index": 1, "function": ["arguments": #"{"a""#]] as NSDictionary)
    }

    @Test func piecesJoinIntoWholeCallsInIndexOrder() {
        var calls = ToolCallAccumulator()
        for piece in [ToolCallDelta(index: 1, id: "b", name: "second"), ToolCallDelta(index: 0, id: "a", name: "fir"),
                      ToolCallDelta(index: 0, name: "st", arguments: #"{"x""#), ToolCallDelta(index: 0, arguments: ":1}"),
                      ToolCallDelta(index: 2, name: "third")] {
            calls.add(piece)
        }
        #expect(calls.calls == [ToolCall(id: "a", name: "first", arguments: #"{"x":1}"#), ToolCall(id: "b", name: "second", arguments: "{}"),
                                ToolCall(id: "call_2", name: "third", arguments: "{}")])
    }
}

/// Chat requests read directly say what Decodable reads from them; anything beyond the common shape is left to it.
@Suite struct OpenAIDirectRequestTests {
    func decoded(_ text: String) throws -> OpenAI.WithSampling<OpenAI.ChatRequestBody> {
        try JSONDecoder().decode(OpenAI.WithSampling<OpenAI.ChatRequestBody>.self, from: Data(text.utf8))
    }

    @Test(arguments: [
        #"{"model":"echo","messages":[{"role":"user","content":"Hi"}]}"#,
        #"{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Say \"hi\" \u00e9 🌍"},{"role":"assistant","content":null},{"role":"tool","content":"42","tool_call_id":"c1"}],"temperature":0.7,"top_p":0.9,"top_k":40,"min_p":0.05,"repeat_penalty":1.1,"max_tokens":16,"max_completion_tokens":8,"stop":"\n","seed":1234567890123,"presence_penalty":-0.5,"frequency_penalty":0.25,"n":1,"user":"u","stream":true,"stream_options":{"include_usage":true},"logprobs":true,"top_logprobs":3,"unknown":{"x":[1,2]}}"#,
        #"{"model":"m","messages":[],"stop":["a","b"],"stream":false,"temperature":null,"stream_options":{}}"#,
    ])
    func theCommonShapeReadsAsDecodableReadsIt(_ text: String) throws {
        let direct = try #require(OpenAI.WithSampling.direct(ByteBuffer(string: text)))
        #expect("\(direct)" == "\(try decoded(text))")
    }

    @Test(arguments: [
        #"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]}]}"#,
        #"{"model":"m","messages":[{"role":"assistant","content":"","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}]}"#,
        #"{"model":"m","messages":[{"role":"user","content":"Hi"}],"tools":[{"type":"function","function":{"name":"f"}}]}"#,
        #"{"model":"m","messages":[{"role":"user","content":"Hi"}],"metadata":{"task":"code"}}"#,
        #"{"model":"m","messages":[{"role":"user","content":"Hi"}],"keep_alive":"5m"}"#,
        #"{"model":"m","messages":[{"role":"user","content":"Hi"}],"temperature":"hot"}"#,
        #"{"model":"m","messages":[{"role":"user","content":"Hi"}],"max_tokens":1.5}"#,
        #"{"model":5,"messages":[]}"#, #"{"messages":[]}"#, #"{"model":"m"}"#, #"[1]"#, "not json",
        #"{"model":"m","messages":[{"role":"user","content":"Hi"}],"stop":[1]}"#,
        #"{"model":"m","messages":[{"role":"user","content":"Hi"}],"seed":12345678901234567890}"#,
    ])
    func anythingElseIsLeftToDecodable(_ text: String) {
        #expect(OpenAI.WithSampling.direct(ByteBuffer(string: text)) == nil)
    }
}
