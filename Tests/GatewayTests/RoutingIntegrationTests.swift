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

/// A scriptable OpenAI-compatible upstream on a real loopback port: it answers, fails with a status (and
/// Retry-After), hangs, or dies in the middle of a stream, and counts the requests it got.
final class FakeUpstream: Sendable {
    enum Mode: Sendable, Equatable {
        case answer
        case status(Int, retryAfter: Int?)
        case hang
        case dieMidStream
    }
    private let state = Mutex<(mode: Mode, hits: Int)>((.answer, 0))
    var hits: Int { state.withLock { $0.hits } }
    var mode: Mode {
        get { state.withLock { $0.mode } }
        set { state.withLock { $0.mode = newValue } }
    }

    static let chunks = [
        #"{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}]}"#,
        #"{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" there"},"finish_reason":null}]}"#,
        #"{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
        #"{"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#,
    ]

    struct Died: Error {}

    func application() -> some ApplicationProtocol {
        let router = Router()
        router.get("/v1/models") { _, _ -> Response in
            let json = #"{"object":"list","data":[{"id":"smollm2","object":"model"}]}"#
            return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: json)))
        }
        router.post("/v1/chat/completions") { request, _ -> Response in
            var request = request
            let body = try await request.collectBody(upTo: 1 << 20)
            let stream = (try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any])?["stream"] as? Bool ?? false
            let mode = self.state.withLock { s in s.hits += 1; return s.mode }
            switch mode {
            case .answer:
                if stream {
                    let text = Self.chunks.map { "data: \($0)\n\n" }.joined() + "data: [DONE]\n\n"
                    return Response(status: .ok, headers: [.contentType: "text/event-stream"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
                }
                let json = #"{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#
                return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: json)))
            case .status(let code, let retryAfter):
                var headers: HTTPFields = [.contentType: "application/json"]
                if let retryAfter { headers[.retryAfter] = String(retryAfter) }
                let json = #"{"error":{"message":"fake failure \#(code)","type":"server_error","code":null}}"#
                return Response(status: .init(code: code), headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: json)))
            case .hang:
                for _ in 0..<50 where self.mode == .hang { try await Task.sleep(for: .milliseconds(100)) }
                throw Died()
            case .dieMidStream:
                return Response(status: .ok, headers: [.contentType: "text/event-stream"], body: ResponseBody { writer in
                    try await writer.write(ByteBuffer(string: "data: \(Self.chunks[0])\n\n"))
                    try await Task.sleep(for: .milliseconds(100))
                    throw Died()
                })
            }
        }
        return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    }
}

/// Time for the circuit breakers that moves only when told; backoff sleeps are recorded and return at once.
final class TestClock: Sendable {
    let base = ContinuousClock.now
    private let state = Mutex<(offset: Duration, slept: [Duration])>((.zero, []))
    var slept: [Duration] { state.withLock { $0.slept } }
    func advance(_ d: Duration) { state.withLock { $0.offset += d } }
    var clock: RouterClock {
        RouterClock(now: { [self] in base + state.withLock { $0.offset } }, sleep: { [self] d in state.withLock { $0.slept.append(d) } })
    }
}

/// Routing end to end: the gateway in-process, its upstreams real HTTP servers on loopback ports — another
/// Switchyard server over the same model, and a scriptable one — and the local engine as the fallback.
@Suite(.serialized) struct RoutingIntegrationTests {
    static let modelDirectory = (try? Reference.smolLM2()).map { URL(fileURLWithPath: $0).deletingLastPathComponent() } ?? Reference.modelDirectory
    /// The gateway's local engine (shared: loading once keeps the tests short).
    static let host = ModelHost(options: .init(directory: modelDirectory, queueCapacity: 8))

    func registry(_ yaml: String) throws -> ModelRegistry {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sy-routing-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try yaml.write(to: dir.appendingPathComponent("models.yaml"), atomically: true, encoding: .utf8)
        return try ModelRegistry.load(directory: dir)
    }

    /// Runs `body` against a gateway whose `fast` model is `upstream` first, then the local smollm2.
    func withGateway(upstreamPort: Int, deployment: String = "", breaker: String = "", clock: TestClock = TestClock(),
                     _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        _ = try Reference.smolLM2()
        let registry = try registry("""
            providers:
              upstream-a: { type: openai-compatible, base_url: "http://127.0.0.1:\(upstreamPort)/v1", api_key_env: SY_TEST_KEY\(breaker) }
            models:
              fast: { deployments: [ {provider: upstream-a, model: smollm2\(deployment)}, {provider: local, model: smollm2} ] }
            """)
        let backend = Backend(host: Self.host, registry: registry, environment: ["SY_TEST_KEY": "secret"], clock: clock.clock)
        try await Server(backend: backend, options: .init()).application().test(.router, body)
    }

    func chat(_ client: some TestClientProtocol, stream: Bool = false, model: String = "fast") async throws -> TestResponse {
        let body = #"{"model":"\#(model)","messages":[{"role":"user","content":"Name a color."}],"temperature":0,"max_tokens":8,"stream":\#(stream)}"#
        return try await client.execute(uri: "/v1/chat/completions", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: body))
    }

    func content(_ r: TestResponse) throws -> String {
        let body = try #require(JSONSerialization.jsonObject(with: Data(buffer: r.body)) as? [String: Any])
        let choice = try #require((body["choices"] as? [[String: Any]])?.first)
        return try #require((choice["message"] as? [String: Any])?["content"] as? String)
    }

    /// The text of an SSE response, and whether it carried an error event.
    func streamed(_ r: TestResponse) throws -> (text: String, error: String?, done: Bool) {
        var text = "", error: String?, done = false
        for line in String(buffer: r.body).split(separator: "\n") where line.hasPrefix("data: ") {
            let payload = line.dropFirst(6)
            if payload == "[DONE]" { done = true; continue }
            let object = try #require(JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any])
            if let e = object["error"] as? [String: Any] { error = e["message"] as? String }
            for c in object["choices"] as? [[String: Any]] ?? [] { text += ((c["delta"] as? [String: Any])?["content"] as? String) ?? "" }
        }
        return (text, error, done)
    }

    let route = HTTPField.Name("x-switchyard-route")!
    let fallbackFrom = HTTPField.Name("x-switchyard-fallback-from")!

    @Test func aSecondSwitchyardServesTheRoutedModel() async throws {
        _ = try Reference.smolLM2()
        let upstreamHost = ModelHost(options: .init(directory: Self.modelDirectory, queueCapacity: 8))
        let upstream = Server(backend: Backend(host: upstreamHost), options: .init(port: 0)).application()
        try await upstream.test(.live) { upstreamClient in
            let port = try #require(upstreamClient.port)
            try await withGateway(upstreamPort: port) { client in
                let routed = try await chat(client)
                #expect(routed.status == .ok)
                #expect(routed.headers[route] == "upstream-a/smollm2" && routed.headers[fallbackFrom] == nil)
                // The same greedy answer as the gateway's own engine gives.
                let direct = try await chat(client, model: "smollm2")
                #expect(direct.headers[route] == "local/smollm2")
                #expect(try content(routed) == content(direct) && !content(direct).isEmpty)

                let stream = try await chat(client, stream: true)
                #expect(stream.headers[route] == "upstream-a/smollm2")
                let s = try streamed(stream)
                #expect(try s.text == content(direct) && s.error == nil && s.done)

                let models = try await client.execute(uri: "/v1/models", method: .get)
                #expect(String(buffer: models.body).contains(#""id":"fast""#))
            }
        }
        await upstreamHost.unloadAll()
    }

    @Test func aRefusedConnectionFallsBackToTheLocalEngine() async throws {
        // A port that was free a moment ago: nothing listens there.
        let port = try await FakeUpstream().application().test(.live) { try #require($0.port) }
        try await withGateway(upstreamPort: port) { client in
            let r = try await chat(client)
            #expect(r.status == .ok)
            #expect(r.headers[route] == "local/smollm2" && r.headers[fallbackFrom] == "upstream-a/smollm2")
            #expect(try !content(r).isEmpty)
        }
    }

    @Test func serverErrorsAndRateLimitsFallBackAfterRetries() async throws {
        let fake = FakeUpstream()
        let clock = TestClock()
        try await fake.application().test(.live) { upstream in
            try await withGateway(upstreamPort: try #require(upstream.port), deployment: ", retries: 1", clock: clock) { client in
                let ok = try await chat(client, stream: true)
                #expect(try ok.headers[route] == "upstream-a/smollm2" && streamed(ok).text == "Hello there")

                fake.mode = .status(500, retryAfter: nil)
                let e500 = try await chat(client)
                #expect(e500.status == .ok && e500.headers[route] == "local/smollm2" && e500.headers[fallbackFrom] == "upstream-a/smollm2")
                #expect(fake.hits == 3)   // the answer, then the 500 and its retry

                fake.mode = .status(429, retryAfter: 2)
                let e429 = try await chat(client, stream: true)
                #expect(e429.headers[route] == "local/smollm2" && e429.headers[fallbackFrom] == "upstream-a/smollm2")
                #expect(try !streamed(e429).text.isEmpty)
                #expect(fake.hits == 5)
                // One backoff step after the 500 (250 ms at most), then the 429's Retry-After.
                #expect(clock.slept.count == 2 && clock.slept[0] <= .milliseconds(250) && clock.slept[1] == .seconds(2))
            }
        }
    }

    /// A deployment's state as `/api/v1/health` reports it.
    func deploymentState(_ client: some TestClientProtocol, _ key: String) async throws -> String? {
        let r = try await client.execute(uri: "/api/v1/health", method: .get)
        let health = try JSONSerialization.jsonObject(with: Data(r.body.readableBytesView)) as? [String: Any]
        let deployments = health?["deployments"] as? [[String: Any]] ?? []
        return deployments.first { $0["deployment"] as? String == key }?["state"] as? String
    }

    @Test func theBreakerOpensThenRecoversWhenTheUpstreamReturns() async throws {
        let fake = FakeUpstream()
        let clock = TestClock()
        fake.mode = .status(503, retryAfter: nil)
        try await fake.application().test(.live) { upstream in
            try await withGateway(upstreamPort: try #require(upstream.port), breaker: ", breaker: { failures: 2, window: 60s, cooldown: 30s }",
                                  clock: clock) { client in
                for _ in 0..<2 { #expect(try await chat(client).headers[route] == "local/smollm2") }
                #expect(fake.hits == 2)
                // Open: the upstream is not asked, the answer says it was passed over.
                fake.mode = .answer
                let skipped = try await chat(client)
                #expect(skipped.headers[route] == "local/smollm2" && skipped.headers[fallbackFrom] == "upstream-a/smollm2")
                #expect(fake.hits == 2)
                #expect(try await deploymentState(client, "upstream-a/smollm2") == "cooling down")
                // After the cooldown one probe goes; its success closes the circuit.
                clock.advance(.seconds(31))
                let probe = try await chat(client)
                #expect(try probe.headers[route] == "upstream-a/smollm2" && content(probe) == "Hello there")
                let after = try await chat(client)
                #expect(after.headers[route] == "upstream-a/smollm2")
                #expect(fake.hits == 4)
                #expect(try await deploymentState(client, "upstream-a/smollm2") == "healthy")
            }
        }
    }

    /// Without the timeout the hanging upstream would never answer: the time limit fails the test then.
    @Test(.timeLimit(.minutes(1))) func aHangingUpstreamTimesOutAndADyingStreamEndsWithAnErrorEvent() async throws {
        let fake = FakeUpstream()
        try await fake.application().test(.live) { upstream in
            try await withGateway(upstreamPort: try #require(upstream.port), deployment: ", timeout: 300ms") { client in
                fake.mode = .hang
                let hung = try await chat(client)
                #expect(hung.headers[route] == "local/smollm2" && hung.headers[fallbackFrom] == "upstream-a/smollm2")

                fake.mode = .dieMidStream
                let died = try await chat(client, stream: true)
                #expect(died.status == .ok && died.headers[route] == "upstream-a/smollm2")
                let s = try streamed(died)
                #expect(s.text == "Hello" && s.error != nil)
                fake.mode = .answer
            }
        }
    }
}

extension RoutingIntegrationTests {
    func registryFor(port: Int) throws -> ModelRegistry {
        try registry("""
            providers:
              upstream-a: { type: openai-compatible, base_url: "http://127.0.0.1:\(port)/v1" }
            models:
              fast: { deployments: [ {provider: upstream-a, model: smollm2}, {provider: local, model: smollm2} ] }
            """)
    }

    @Test func backgroundChecksShowADeadUpstreamAsDownAndALiveOneAsHealthy() async throws {
        _ = try Reference.smolLM2()
        let dead = try await FakeUpstream().application().test(.live) { try #require($0.port) }
        let down = Backend(host: Self.host, registry: try registryFor(port: dead))
        await try #require(down.router).checkProviders()
        let status = try #require(down.deploymentStatuses().first { $0.deployment == "upstream-a/smollm2" })
        #expect(status.state == "down")
        #expect(status.probe?.error != nil)
        try await Server(backend: down, options: .init()).application().test(.router) { client in
            let health = String(buffer: try await client.execute(uri: "/api/v1/health", method: .get).body)
            #expect(health.contains(#""state":"down""#) && health.contains("check_error"))
        }

        try await FakeUpstream().application().test(.live) { upstream in
            let live = Backend(host: Self.host, registry: try registryFor(port: try #require(upstream.port)))
            await try #require(live.router).checkProviders()
            let status = try #require(live.deploymentStatuses().first { $0.deployment == "upstream-a/smollm2" })
            #expect(status.state == "healthy")
            #expect(status.probe?.up == true && status.probe?.models == ["smollm2"])
            // Discovered models are listed as PROVIDER/MODEL and served by that provider when asked for by that name.
            try await Server(backend: live, options: .init()).application().test(.router) { client in
                let models = String(buffer: try await client.execute(uri: "/v1/models", method: .get).body)
                #expect(models.contains(#""id":"upstream-a\/smollm2""#) || models.contains(#""id":"upstream-a/smollm2""#))
                let r = try await chat(client, model: "upstream-a/smollm2")
                #expect(r.status == .ok)
                #expect(r.headers[route] == "upstream-a/smollm2")
                #expect(try content(r) == "Hello there")
            }
        }
    }
}
