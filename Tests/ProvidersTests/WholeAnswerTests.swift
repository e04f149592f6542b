import Core
import Foundation
@testable import Providers
import Registry
import Routing
import Testing

/// The one fast path: an unstreamed answer read whole (`Provider.complete`, one HTTP response and one JSON parse,
/// no stream in between) must be exactly what the general path gives — the same request's stream read to its end —
/// for answers with text, tool calls, usage and finish reasons, for errors, and through the router (its route too).
@Suite struct WholeAnswerTests {
    static let answers: [String: String] = [
        "text": #"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Paris is the capital."},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":4}}}"#,
        "tools": #"{"id":"y","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},{"id":"call_2","type":"function","function":{"name":"get_time","arguments":"{}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":20,"completion_tokens":12}}"#,
        "length": #"{"choices":[{"index":0,"message":{"role":"assistant","content":"Once upon"},"finish_reason":"length"}]}"#,
    ]

    static func server() -> StandInServer {
        StandInServer([(.post, "/v1/chat/completions")]) { r in
            let model = r.json?["model"] as? String ?? ""
            if model == "refused" { return .init(status: 429, headers: ["content-type": "application/json", "retry-after": "3"], json: #"{"error":{"message":"slow down"}}"#) }
            return .init(json: answers[model] ?? #"{"error":{"message":"no such model"}}"#)
        }
    }

    func request(_ model: String) -> ChatRequest {
        ChatRequest(model: model, messages: [ChatMessage(role: .user, content: "Where is Paris?")], stream: false)
    }

    /// The general path: the stream read to its end.
    func collected(_ stream: ChatStream) async throws -> CompletedAnswer {
        var answer = CompletedAnswer()
        for try await e in stream.events { answer.append(e) }
        answer.route = stream.route
        return answer
    }

    @Test(arguments: ["text", "tools", "length"])
    func aWholeAnswerEqualsTheStreamCollected(model: String) async throws {
        let server = Self.server()
        try await server.run { base in
            let provider = OpenAICompatibleProvider(.init(name: "up", baseURL: base + "/v1"))
            #expect(provider.answersWhole)
            // a bound against a hang, not a measurement: generous, so a loaded machine does not fail it
            let whole = try await provider.complete(request(model), timeout: .seconds(120))
            let general = try await collected(provider.chat(request(model)))
            #expect(whole.events == general.events)
            #expect(whole.events.count >= 2, "\(whole.events)")
            let router = Routing.Router(routes: ["m": RouteDeclaration(name: "m", deployments: [DeploymentDeclaration(provider: "up", model: model)])],
                                        providers: ["up": provider])
            let routedWhole = try await router.complete(request("m"), timeout: nil)
            let routedGeneral = try await collected(router.chat(request("m")))
            #expect(routedWhole.events == general.events && routedGeneral.events == general.events)
            #expect(routedWhole.route == RouteInfo(deployment: "up/\(model)") && routedGeneral.route == routedWhole.route)
        }
        #expect(server.requests.allSatisfy { $0.json?["stream"] as? Bool != true })
    }

    @Test func anErrorIsTheSameErrorOnBothPaths() async throws {
        try await Self.server().run { base in
            let provider = OpenAICompatibleProvider(.init(name: "up", baseURL: base + "/v1"))
            let expected = CoreError.rateLimited("slow down", retryAfterSeconds: 3)
            await #expect(throws: expected) { _ = try await provider.complete(request("refused"), timeout: .seconds(10)) }
            await #expect(throws: expected) { _ = try await collected(provider.chat(request("refused"))) }
        }
    }
}
