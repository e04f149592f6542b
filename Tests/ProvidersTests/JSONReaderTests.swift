import Core
import Foundation
import Testing
@testable import Providers

/// The direct JSON reader against Foundation's: the same values from JSON, errors from anything else, and answers
/// read directly equal to answers decoded.
@Suite struct JSONReaderTests {
    /// The reader's value as Foundation's JSONSerialization would give it, for comparison.
    func foundation(_ v: JSONValue) -> NSObject {
        switch v {
        case .null: NSNull()
        case .bool(let b): NSNumber(value: b)
        case .number(let d): NSNumber(value: d)
        case .string(let s): s as NSString
        case .array(let a): a.map(foundation) as NSArray
        case .object(let o): o.mapValues(foundation) as NSDictionary
        }
    }

    @Test(arguments: [
        #"{}"#, #"[]"#, #"  {"a" : [1, -2.5, 3e2, 0, -0.0, 1E-3], "b": {"c": null, "d": true, "e": false}}  "#,
        #""plain""#, #"["esc \" \\ \/ \b \f \n \r \t", "\u00e9\u4e2d", "\ud83c\udf0d", "héllo 🌍"]"#, "123", "null",
        #"{"choices":[{"index":0,"message":{"role":"assistant","content":"Paris"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9}}"#,
    ])
    func readsWhatFoundationReads(_ text: String) throws {
        let mine = try JSONReader.parse(Array(text.utf8))
        let theirs = try JSONSerialization.jsonObject(with: Data(text.utf8), options: .fragmentsAllowed) as! NSObject
        #expect(foundation(mine).isEqual(theirs))
    }

    @Test(arguments: ["", "{", "[1,]", #"{"a":1,}"#, #"{"a" 1}"#, "01", "1.", "-", "1e", "tru", "nul", #""unterminated"#,
                      "\"tab\there\"", #""\x""#, #""\u12""#, "[1] 2", #"{a:1}"#, "'single'"])
    func refusesWhatIsNotJSON(_ text: String) {
        #expect(throws: JSONReader.Failure.self) { try JSONReader.parse(Array(text.utf8)) }
    }

    @Test func nestingIsBounded() throws {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: JSONReader.Failure.self) { try JSONReader.parse(Array(deep.utf8)) }
        _ = try JSONReader.parse(Array((String(repeating: "[", count: 100) + String(repeating: "]", count: 100)).utf8))
    }

    @Test(arguments: [
        #"{"choices":[{"index":0,"message":{"role":"assistant","content":"Paris"},"finish_reason":"length"}],"usage":{"prompt_tokens":9,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":4}}}"#,
        #"{"choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null,"logprobs":{"content":[{"token":"Hel","logprob":-0.25,"top_logprobs":[{"token":"Hel","logprob":-0.25},{"token":"He","logprob":-2.5}]}]}}]}"#,
        #"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","function":{"name":"f","arguments":"{\"x\":"}}]}}]}"#,
        #"{"choices":[{"index":0,"text":" a raw completion","finish_reason":"stop"}]}"#,
        #"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5}}"#,
        #"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"g","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}"#,
    ])
    func answersReadDirectlyEqualAnswersDecoded(_ text: String) throws {
        var direct = OpenAICompatibleProvider.EventMapper(maxToolCallBytes: 1 << 20)
        var decoded = OpenAICompatibleProvider.EventMapper(maxToolCallBytes: 1 << 20)
        let a = try OpenAICompatibleProvider.Answer(json: try JSONReader.parse(Array(text.utf8)))
        let b = try JSONDecoder().decode(OpenAICompatibleProvider.Answer.self, from: Data(text.utf8))
        #expect(try direct.events(for: a) + direct.close() == (try decoded.events(for: b) + decoded.close()))
    }

    @Test(arguments: [#"{"choices":{}}"#, #"{"choices":[{"message":{"content":5}}]}"#, #"{"usage":{"prompt_tokens":"9"}}"#,
                      #"{"choices":[{"logprobs":{"content":[{"token":"a"}]}}]}"#])
    func membersOfTheWrongTypeAreRefusedAsDecodableRefusesThem(_ text: String) throws {
        let json = try JSONReader.parse(Array(text.utf8))
        #expect(throws: (any Error).self) { try OpenAICompatibleProvider.Answer(json: json) }
        #expect(throws: (any Error).self) { try JSONDecoder().decode(OpenAICompatibleProvider.Answer.self, from: Data(text.utf8)) }
    }
}
