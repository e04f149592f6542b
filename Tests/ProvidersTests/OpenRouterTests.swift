import Core
import Foundation
@testable import Providers
import Testing

/// The OpenRouter adapter against a stand-in server speaking its API as its reference documents it: the model list
/// with prices, the `free_only` filter, and a cost estimate on each answer's usage.
@Suite struct OpenRouterTests {
    static let models = #"""
        {"data":[
          {"id":"openai/gpt-4o-mini","name":"OpenAI: GPT-4o-mini","created":1721260800,"context_length":128000,
           "pricing":{"prompt":"0.00000015","completion":"0.0000006","request":"0","image":"0.000217"}},
          {"id":"meta-llama/llama-3.3-70b-instruct:free","name":"Meta: Llama 3.3 70B Instruct (free)","context_length":131072,
           "pricing":{"prompt":"0","completion":"0","request":"0","image":"0"}},
          {"id":"openrouter/auto","name":"Auto Router","context_length":2000000,"pricing":{"prompt":"-1","completion":"-1"}}
        ]}
        """#
    static let chunks = [
        #"{"id":"gen-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}"#,
        #"{"id":"gen-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
        #"{"id":"gen-1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":1000,"completion_tokens":200,"total_tokens":1200}}"#,
    ]

    static func server() -> StandInServer {
        StandInServer([(.get, "/api/v1/models"), (.post, "/api/v1/chat/completions")]) { r in
            if r.path.hasSuffix("/models") { return .init(json: models) }
            let text = ": OPENROUTER PROCESSING\n\n" + chunks.map { "data: \($0)\n\n" }.joined() + "data: [DONE]\n\n"
            return .init(headers: ["content-type": "text/event-stream"], pieces: StandInServer.pieces(text, size: 9))
        }
    }

    /// A provider whose clock stands still (`at`): the cache's ages do not depend on how long a loaded machine takes.
    func provider(_ base: String, freeOnly: Bool = false, at instant: ContinuousClock.Instant = .now) -> OpenRouterProvider {
        OpenRouterProvider(.init(name: "openrouter", baseURL: base + "/api/v1", apiKey: "sk-or-test",
                                 headers: ["HTTP-Referer": "https://example.org", "X-Title": "Switchyard tests"]), freeOnly: freeOnly,
                           now: { instant })
    }

    func collect(_ stream: ChatStream) async throws -> [ChatEvent] {
        var out: [ChatEvent] = []
        for try await e in stream.events { out.append(e) }
        return out
    }

    func request(_ model: String) -> ChatRequest { ChatRequest(model: model, messages: [ChatMessage(role: .user, content: "Hi")], stream: true) }

    @Test func theModelListCarriesPricesAndFreeOnlyKeepsTheFreeOnes() async throws {
        let server = Self.server()
        try await server.run { base in
            let all = try await provider(base).models()
            #expect(all.map(\.name) == ["meta-llama/llama-3.3-70b-instruct:free", "openai/gpt-4o-mini", "openrouter/auto"])
            #expect(all.first?.contextLength == 131072)
            let free = try await provider(base, freeOnly: true).models()
            #expect(free.map(\.name) == ["meta-llama/llama-3.3-70b-instruct:free"])
            let catalogue = try await provider(base).catalogue()
            #expect(catalogue["openai/gpt-4o-mini"]?.pricing == .init(prompt: 0.00000015, completion: 0.0000006))
            #expect(catalogue["openrouter/auto"]?.pricing == nil)
        }
    }

    @Test func eachAnswerCarriesItsEstimatedCost() async throws {
        let server = Self.server()
        try await server.run { base in
            let events = try await collect(provider(base).chat(request("openai/gpt-4o-mini")))
            #expect(events.prefix(2) == [.text("Hi", nil), .finished(.stop)])
            guard case .usage(let u) = events.last else { Issue.record("no usage: \(events)"); return }
            #expect(u.promptTokens == 1000 && u.completionTokens == 200)
            #expect(abs((u.costUSD ?? 0) - (1000 * 0.00000015 + 200 * 0.0000006)) < 1e-12)
            // A model without a fixed price: served, no estimate.
            let auto = try await collect(provider(base).chat(request("openrouter/auto")))
            #expect(auto.last == .usage(Usage(promptTokens: 1000, completionTokens: 200)))
        }
        let chat = try #require(server.requests.first { $0.path.hasSuffix("/chat/completions") })
        #expect(chat.headers["authorization"] == "Bearer sk-or-test" && chat.headers["http-referer"] == "https://example.org")
        #expect(chat.headers["x-title"] == "Switchyard tests" && chat.json?["model"] as? String == "openai/gpt-4o-mini")
    }

    @Test func freeOnlyRefusesAPaidModelWithoutAskingForIt() async throws {
        let server = Self.server()
        try await server.run { base in
            let p = provider(base, freeOnly: true)
            await #expect(throws: CoreError.unknownModel("openai/gpt-4o-mini", available: [])) { _ = try await collect(p.chat(request("openai/gpt-4o-mini"))) }
            let free = try await collect(p.chat(request("meta-llama/llama-3.3-70b-instruct:free")))
            #expect(free.last == .usage(Usage(promptTokens: 1000, completionTokens: 200, costUSD: 0)))
        }
        #expect(server.requests.filter { $0.path.hasSuffix("/chat/completions") }.count == 1)
    }

    @Test func withoutThePriceListAnswersGoOnWithoutACost() async throws {
        let server = StandInServer([(.get, "/api/v1/models"), (.post, "/api/v1/chat/completions")]) { r in
            if r.path.hasSuffix("/models") { return .init(status: 500, json: #"{"error":{"message":"down"}}"#) }
            return .init(headers: ["content-type": "text/event-stream"], pieces: Self.chunks.map { "data: \($0)\n\n" } + ["data: [DONE]\n\n"])
        }
        try await server.run { base in
            let p = provider(base)
            for _ in 0..<2 {
                let events = try await collect(p.chat(request("openai/gpt-4o-mini")))
                #expect(events.last == .usage(Usage(promptTokens: 1000, completionTokens: 200)))
            }
            // Under free_only only a `:free` model is served while the list cannot be read.
            let free = provider(base, freeOnly: true)
            await #expect(throws: CoreError.unknownModel("openai/gpt-4o-mini", available: [])) { _ = try await collect(free.chat(request("openai/gpt-4o-mini"))) }
            let served = try await collect(free.chat(request("meta-llama/llama-3.3-70b-instruct:free")))
            #expect(served.count == 3)
        }
        // The failed list is not asked for again by the same provider within a minute.
        #expect(server.requests.filter { $0.path.hasSuffix("/models") }.count == 2)
    }

    @Test func rateLimitsAndCreditErrorsBecomeCanonicalErrors() async throws {
        let server = StandInServer([(.get, "/api/v1/models"), (.post, "/api/v1/chat/completions")]) { r in
            if r.path.hasSuffix("/models") { return .init(json: Self.models) }
            return .init(status: 429, headers: ["content-type": "application/json", "retry-after": "12"],
                         json: #"{"error":{"code":429,"message":"Rate limit exceeded: free-models-per-min."}}"#)
        }
        try await server.run { base in
            await #expect(throws: CoreError.rateLimited("Rate limit exceeded: free-models-per-min.", retryAfterSeconds: 12)) {
                _ = try await collect(provider(base).chat(request("openai/gpt-4o-mini")))
            }
            server.reply { r in
                r.path.hasSuffix("/models") ? .init(json: Self.models) : .init(status: 402, json: #"{"error":{"code":402,"message":"Insufficient credits"}}"#)
            }
            await #expect(throws: CoreError.auth("Insufficient credits")) { _ = try await collect(provider(base).chat(request("openai/gpt-4o-mini"))) }
        }
    }
}
