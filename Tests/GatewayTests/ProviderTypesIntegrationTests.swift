import Core
import Foundation
import Gateway
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import Providers
import Registry
import Routing
import Synchronization
import TestSupport
import Testing

/// Provider types declared in models.yaml, end to end: the gateway routes to stand-in Anthropic and Ollama servers
/// on loopback ports (speaking their documented wire formats) and falls back to the local engine when Anthropic is
/// overloaded.
@Suite(.serialized) struct ProviderTypesIntegrationTests {
    /// Answers `/v1/messages` (Anthropic) and `/api/chat` (Ollama) with a streamed "Hello there", or 529 when overloaded.
    final class StandIn: Sendable {
        let state = Mutex<(overloaded: Bool, keys: [String])>((false, []))

        static let anthropic = [
            #"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","usage":{"input_tokens":5,"output_tokens":1}}}"#,
            #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
            #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" there"}}"#,
            #"{"type":"content_block_stop","index":0}"#,
            #"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":2}}"#,
            #"{"type":"message_stop"}"#,
        ]
        static let ollama = [
            #"{"model":"llama3.2","message":{"role":"assistant","content":"Hello"},"done":false}"#,
            #"{"model":"llama3.2","message":{"role":"assistant","content":" there"},"done":false}"#,
            #"{"model":"llama3.2","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":5,"eval_count":2}"#,
        ]

        func application() -> some ApplicationProtocol {
            let router = Hummingbird.Router()
            router.post("/v1/messages") { request, _ -> Response in
                let overloaded = self.state.withLock { s in
                    s.keys.append(request.headers[HTTPField.Name("x-api-key")!] ?? "")
                    return s.overloaded
                }
                if overloaded {
                    return Response(status: .init(code: 529), headers: [.contentType: "application/json"],
                                    body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#)))
                }
                let text = Self.anthropic.map { "event: x\ndata: \($0)\n\n" }.joined()
                return Response(status: .ok, headers: [.contentType: "text/event-stream"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
            }
            router.post("/api/chat") { _, _ -> Response in
                Response(status: .ok, headers: [.contentType: "application/x-ndjson"],
                         body: ResponseBody(byteBuffer: ByteBuffer(string: Self.ollama.map { $0 + "\n" }.joined())))
            }
            return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        }
    }

    static let modelDirectory = (try? Reference.smolLM2()).map { URL(fileURLWithPath: $0).deletingLastPathComponent() } ?? Reference.modelDirectory
    static let host = ModelHost(options: .init(directory: modelDirectory, queueCapacity: 8))

    func withGateway(port: Int, _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        _ = try Reference.smolLM2()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sy-types-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try """
            providers:
              claude: { type: anthropic, base_url: "http://127.0.0.1:\(port)", api_key_env: SY_ANTHROPIC_KEY }
              home: { type: ollama, base_url: "http://127.0.0.1:\(port)" }
            models:
              smart: { deployments: [ {provider: claude, model: claude-sonnet-4-5}, {provider: local, model: smollm2} ] }
              homely: { model: home/llama3.2 }
            """.write(to: dir.appendingPathComponent("models.yaml"), atomically: true, encoding: .utf8)
        let backend = Backend(host: Self.host, registry: try ModelRegistry.load(directory: dir), environment: ["SY_ANTHROPIC_KEY": "sk-ant-test"])
        try await Server(backend: backend, options: .init()).application().test(.router, body)
    }

    func chat(_ client: some TestClientProtocol, model: String, stream: Bool) async throws -> TestResponse {
        let body = #"{"model":"\#(model)","messages":[{"role":"user","content":"Name a color."}],"temperature":0,"max_tokens":8,"stream":\#(stream)}"#
        return try await client.execute(uri: "/v1/chat/completions", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: body))
    }

    /// The streamed text of an SSE answer.
    func streamed(_ r: TestResponse) throws -> String {
        var text = ""
        for line in String(buffer: r.body).split(separator: "\n") where line.hasPrefix("data: ") && line != "data: [DONE]" {
            let object = try #require(JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8)) as? [String: Any])
            for c in object["choices"] as? [[String: Any]] ?? [] { text += ((c["delta"] as? [String: Any])?["content"] as? String) ?? "" }
        }
        return text
    }

    let route = HTTPField.Name("x-switchyard-route")!
    let fallbackFrom = HTTPField.Name("x-switchyard-fallback-from")!

    @Test func anthropicAndOllamaServeTheirRoutesAndAnOverloadedAnthropicFallsBack() async throws {
        let standIn = StandIn()
        try await standIn.application().test(.live) { upstream in
            try await withGateway(port: try #require(upstream.port)) { client in
                let claude = try await chat(client, model: "smart", stream: true)
                #expect(try claude.headers[route] == "claude/claude-sonnet-4-5" && streamed(claude) == "Hello there")
                let ollama = try await chat(client, model: "homely", stream: true)
                #expect(try ollama.headers[route] == "home/llama3.2" && streamed(ollama) == "Hello there")

                standIn.state.withLock { $0.overloaded = true }
                let fallback = try await chat(client, model: "smart", stream: false)
                #expect(fallback.status == .ok && fallback.headers[route] == "local/smollm2" && fallback.headers[fallbackFrom] == "claude/claude-sonnet-4-5")
            }
        }
        #expect(standIn.state.withLock { $0.keys } == ["sk-ant-test", "sk-ant-test"])
    }
}
