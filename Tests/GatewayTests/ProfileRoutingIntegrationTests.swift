import Core
import Foundation
import Gateway
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import Providers
import Registry
import Routing
import Storage
import Synchronization
import TestSupport
import Testing

/// An OpenAI-compatible upstream on a real loopback port whose streams send their first chunk, then wait until
/// `release()` before the rest.
final class GatedUpstream: Sendable {
    private let state = Mutex<(hits: Int, open: Bool)>((0, false))
    var hits: Int { state.withLock { $0.hits } }
    func release() { state.withLock { $0.open = true } }

    func application() -> some ApplicationProtocol {
        let router = Hummingbird.Router()
        router.post("/v1/chat/completions") { request, _ -> Response in
            var request = request
            _ = try await request.collectBody(upTo: 1 << 20)
            self.state.withLock { $0.hits += 1 }
            return Response(status: .ok, headers: [.contentType: "text/event-stream"], body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: "data: \(FakeUpstream.chunks[0])\n\n"))
                for _ in 0..<500 where !self.state.withLock({ $0.open }) { try await Task.sleep(for: .milliseconds(20)) }
                for chunk in FakeUpstream.chunks.dropFirst() { try await writer.write(ByteBuffer(string: "data: \(chunk)\n\n")) }
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
            })
        }
        return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    }
}

/// Aliases, roles, `auto`, local-only and profile switches end to end: the gateway in-process, a scriptable
/// upstream on a real loopback port, the local engine with SmolLM2.
@Suite(.serialized) struct ProfileRoutingIntegrationTests {
    static let host = ModelHost(options: .init(directory: RoutingIntegrationTests.modelDirectory, queueCapacity: 8))

    /// A configuration folder: models.yaml and profiles/NAME.yaml.
    func configFolder(_ models: String, profiles: [String: String] = [:]) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sy-profile-it-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("profiles"), withIntermediateDirectories: true)
        try models.write(to: dir.appendingPathComponent("models.yaml"), atomically: true, encoding: .utf8)
        for (name, text) in profiles { try text.write(to: dir.appendingPathComponent("profiles/\(name).yaml"), atomically: true, encoding: .utf8) }
        return dir
    }

    func config(port: Int) -> String {
        """
        providers:
          upstream-a: { type: openai-compatible, base_url: "http://127.0.0.1:\(port)/v1" }
        models:
          smollm2: { catalogue: smollm2, context: 8192, tools: true }
          cloud: { model: upstream-a/big, context: 128000, tools: true }
          mixed: { deployments: [ upstream-a/smollm2, local/smollm2 ] }
        aliases:
          gpt-4o: cloud
        roles:
          coder: { prefer: [cloud, smollm2], requires: { context: 8192, local_only: true } }
          writer: { prefer: [cloud, smollm2], requires: { context: 200000 } }
        routing:
          auto: { code: smollm2, general: cloud }
        """
    }

    func withGateway(_ dir: URL, access: AccessGuard? = nil, _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        _ = try Reference.smolLM2()
        let backend = Backend(host: Self.host, registry: try ModelRegistry.load(directory: dir))
        let profiles = ProfileSource.directory(dir, profiles: dir.appendingPathComponent("profiles"))
        try await Server(backend: backend, options: .init(), access: access, profiles: profiles).application().test(.router, body)
    }

    func chat(_ client: some TestClientProtocol, model: String, text: String = "Name a color.", stream: Bool = false,
              headers extra: HTTPFields = [:], metadata: String? = nil) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: "application/json"]
        headers.append(contentsOf: extra)
        let content = String(decoding: try JSONEncoder().encode(text), as: UTF8.self)
        let meta = metadata.map { #","metadata":\#($0)"# } ?? ""
        let body = #"{"model":"\#(model)","messages":[{"role":"user","content":\#(content)}],"temperature":0,"max_tokens":4,"stream":\#(stream)\#(meta)}"#
        return try await client.execute(uri: "/v1/chat/completions", method: .post, headers: headers, body: ByteBuffer(string: body))
    }

    func error(_ r: TestResponse) throws -> [String: Any] {
        let o = try #require(JSONSerialization.jsonObject(with: Data(buffer: r.body)) as? [String: Any])
        return try #require(o["error"] as? [String: Any])
    }

    func json(_ r: TestResponse) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(buffer: r.body)) as? [String: Any])
    }

    let route = HTTPField.Name("x-switchyard-route")!
    let reason = HTTPField.Name("x-switchyard-route-reason")!
    let servedBy = HTTPField.Name("x-switchyard-served-by")!
    let task = HTTPField.Name("x-switchyard-task")!
    let localOnly = HTTPField.Name("x-switchyard-local-only")!

    @Test func rolesAliasesAndAutoChooseTheModelAndSayWhy() async throws {
        let fake = FakeUpstream()
        try await fake.application().test(.live) { upstream in
            let dir = try configFolder(config(port: try #require(upstream.port)))
            try await withGateway(dir) { client in
                let coder = try await chat(client, model: "role:coder")
                #expect(coder.status == .ok && coder.headers[route] == "local/smollm2" && coder.headers[servedBy] == "local")
                #expect(coder.headers[reason] == "role=coder -> smollm2 (passed over cloud: no local deployment)")

                let writer = try await chat(client, model: "role:writer")
                #expect(try writer.status == .unprocessableContent && (error(writer)["code"] as? String) == "role_unmet")
                let message = try #require(try error(writer)["message"] as? String)
                #expect(message.contains("cloud: context 128000 < 200000") && message.contains("smollm2: context 8192 < 200000"))

                let unknownRole = try await chat(client, model: "role:nobody")
                #expect(unknownRole.status == .notFound)

                let alias = try await chat(client, model: "gpt-4o")
                #expect(alias.status == .ok && alias.headers[route] == "upstream-a/big" && alias.headers[servedBy] == "upstream-a")
                #expect(alias.headers[reason] == "alias gpt-4o -> cloud")
                let models = try await client.execute(uri: "/v1/models", method: .get)
                #expect(String(buffer: models.body).contains(#""id":"gpt-4o""#))

                let code = try await chat(client, model: "auto", text: "Why does this fail?\n```python\nprint(undefined)\n```")
                #expect(code.headers[route] == "local/smollm2")
                #expect(code.headers[reason] == "task=code (fenced code block); routing.auto.code -> smollm2")
                let general = try await chat(client, model: "auto", text: "What is the capital of France?", stream: true)
                #expect(general.headers[route] == "upstream-a/big")
                #expect(general.headers[reason] == "task=general (no code signals); routing.auto.general -> cloud")
                let told = try await chat(client, model: "auto", text: "What is the capital of France?", headers: [task: "code"])
                #expect(told.headers[route] == "local/smollm2" && told.headers[reason]?.hasPrefix("task=code (x-switchyard-task header)") == true)
                let meta = try await chat(client, model: "auto", text: "Please refactor this function", metadata: #"{"task": "general"}"#)
                #expect(meta.headers[route] == "upstream-a/big" && meta.headers[reason]?.hasPrefix("task=general (metadata.task)") == true)
                let bad = try await chat(client, model: "auto", headers: [task: "code review!"])
                #expect(try bad.status == .badRequest && (error(bad)["param"] as? String) == "x-switchyard-task")
                // A plain name has no reason.
                let plain = try await chat(client, model: "cloud")
                #expect(plain.headers[route] == "upstream-a/big" && plain.headers[reason] == nil)
            }
        }
    }

    @Test func localOnlyRefusesARemoteOnlyModelAndServesAMixedOneLocally() async throws {
        let fake = FakeUpstream()
        let database = try StorageDatabase(url: FileManager.default.temporaryDirectory.appendingPathComponent("lo-\(UUID().uuidString).sqlite"))
        let keys = KeyStore(database)
        let privateKey = try await keys.create(name: "private", limits: KeyLimits(localOnly: true)).plaintext
        let openKey = try await keys.create(name: "open").plaintext
        try await fake.application().test(.live) { upstream in
            let dir = try configFolder(config(port: try #require(upstream.port)))
            try await withGateway(dir) { client in
                let refused = try await chat(client, model: "cloud", headers: [localOnly: "true"])
                #expect(try refused.status == .forbidden && (error(refused)["code"] as? String) == "no_local_deployment")
                #expect((try error(refused)["message"] as? String)?.contains("no local deployment serves 'cloud'") == true)
                let viaAlias = try await chat(client, model: "gpt-4o", metadata: #"{"local_only": true}"#)
                #expect(viaAlias.status == .forbidden)
                #expect(fake.hits == 0)

                let mixed = try await chat(client, model: "mixed", stream: true, headers: [localOnly: "1"])
                #expect(mixed.status == .ok && mixed.headers[route] == "local/smollm2" && mixed.headers[servedBy] == "local")
                #expect(fake.hits == 0)
                let anywhere = try await chat(client, model: "mixed")
                #expect(anywhere.headers[route] == "upstream-a/smollm2" && anywhere.headers[servedBy] == "upstream-a")
                #expect(fake.hits == 1)
                let bad = try await chat(client, model: "mixed", headers: [localOnly: "perhaps"])
                #expect(bad.status == .badRequest)
            }
            // A key marked local-only makes every request it sends local-only.
            try await withGateway(dir, access: AccessGuard(database: database, requireAuth: true)) { client in
                let refused = try await chat(client, model: "cloud", headers: [.authorization: "Bearer \(privateKey)"])
                #expect(try refused.status == .forbidden && (error(refused)["code"] as? String) == "no_local_deployment")
                let mixed = try await chat(client, model: "mixed", headers: [.authorization: "Bearer \(privateKey)"])
                #expect(mixed.status == .ok && mixed.headers[route] == "local/smollm2")
                let open = try await chat(client, model: "cloud", headers: [.authorization: "Bearer \(openKey)"])
                #expect(open.status == .ok && open.headers[route] == "upstream-a/big")
            }
        }
    }

    /// A stream that started before `POST /admin/profile` ends on its model; a request after it goes to the new one.
    @Test(.timeLimit(.minutes(2))) func aProfileSwitchLeavesStreamsInFlightOnTheirModel() async throws {
        let gated = GatedUpstream()
        try await gated.application().test(.live) { upstream in
            let port = try #require(upstream.port)
            let dir = try configFolder("""
                providers:
                  upstream-a: { type: openai-compatible, base_url: "http://127.0.0.1:\(port)/v1" }
                models:
                  chat: { model: upstream-a/slow }
                """, profiles: [
                    "local": "description: nothing leaves the machine\nmodels:\n  chat: { model: local/smollm2 }\n",
                    "broken": "models:\n  chat: { strategy: sideways }\n",
                ])
            try await withGateway(dir) { client in
                let before = try json(try await client.execute(uri: "/admin/profile", method: .get))
                #expect(before["profile"] is NSNull && before["available"] as? [String] == ["broken", "local"])

                async let inFlight = chat(client, model: "chat", stream: true)
                for _ in 0..<500 where gated.hits == 0 { try await Task.sleep(for: .milliseconds(10)) }
                #expect(gated.hits == 1)

                let switched = try await client.execute(uri: "/admin/profile", method: .post, headers: [.contentType: "application/json"],
                                                        body: ByteBuffer(string: #"{"profile": "local"}"#))
                #expect(switched.status == .ok)
                let s = try json(switched)
                #expect(s["profile"] as? String == "local" && s["previous"] is NSNull)
                #expect(try json(try await client.execute(uri: "/admin/profile", method: .get))["profile"] as? String == "local")

                let after = try await chat(client, model: "chat")
                #expect(after.status == .ok && after.headers[route] == "local/smollm2")
                #expect(gated.hits == 1)

                gated.release()
                let old = try await inFlight
                #expect(old.status == .ok && old.headers[route] == "upstream-a/slow")
                let text = String(buffer: old.body)
                #expect(text.contains(#""content":"Hello""#) && text.contains(#""content":" there""#) && text.hasSuffix("data: [DONE]\n\n"))

                let missing = try await client.execute(uri: "/admin/profile", method: .post, body: ByteBuffer(string: #"{"profile": "nope"}"#))
                #expect(try missing.status == .notFound && (error(missing)["code"] as? String) == "profile_not_found")
                let broken = try await client.execute(uri: "/admin/profile", method: .post, body: ByteBuffer(string: #"{"profile": "broken"}"#))
                #expect(try broken.status == .badRequest && (error(broken)["message"] as? String)?.contains("models.chat.strategy") == true)
                #expect(try json(try await client.execute(uri: "/admin/profile", method: .get))["profile"] as? String == "local")

                let back = try await client.execute(uri: "/admin/profile", method: .post, body: ByteBuffer(string: #"{"profile": null}"#))
                #expect(try json(back)["profile"] is NSNull && json(back)["previous"] as? String == "local")
                gated.release()
                let base = try await chat(client, model: "chat", stream: true)   // the gated upstream only streams
                #expect(base.headers[route] == "upstream-a/slow" && gated.hits == 2)
            }
        }
        await Self.host.unloadAll()
    }
}
