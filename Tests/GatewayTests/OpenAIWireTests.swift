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
                OpenAI.ChatChoice(index: 0, message: OpenAI.ResponseMessage(role: "assistant", content: text),
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
