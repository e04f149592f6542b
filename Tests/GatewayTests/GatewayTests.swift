import Foundation
import Gateway
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import Providers
import TestSupport
import Testing

/// The surfaces in-process (router test client) over the real SmolLM2 model.
@Suite(.serialized) struct GatewayTests {
    static let backend: Backend = {
        let dir = (try? Reference.smolLM2()).map { URL(fileURLWithPath: $0).deletingLastPathComponent() } ?? Reference.modelDirectory
        return Backend(host: ModelHost(options: .init(directory: dir, queueCapacity: 4)))
    }()

    func app() throws -> some ApplicationProtocol {
        _ = try Reference.smolLM2()
        return Server(backend: Self.backend, options: .init()).application()
    }

    func object(_ b: ByteBuffer) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(buffer: b)) as? [String: Any])
    }

    func post(_ client: some TestClientProtocol, _ uri: String, _ json: String) async throws -> TestResponse {
        try await client.execute(uri: uri, method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: json))
    }

    @Test func errorsAreOpenAIShaped() async throws {
        try await app().test(.router) { client in
            let unknown = try await post(client, "/v1/chat/completions", #"{"model":"nope","messages":[{"role":"user","content":"hi"}]}"#)
            #expect(unknown.status == .notFound)
            let e = try #require(try object(unknown.body)["error"] as? [String: Any])
            #expect((e["message"] as? String)?.contains("smollm2") == true)
            #expect(e["code"] as? String == "model_not_found" && e["param"] as? String == "model")

            let bad = try await post(client, "/v1/chat/completions", #"{"model":"smollm2","messages":[{"role":"user","content":"hi"}],"temperature":"hot"}"#)
            #expect(bad.status == .badRequest)
            #expect((try object(bad.body)["error"] as? [String: Any])?["param"] as? String == "temperature")

            let missing = try await post(client, "/v1/chat/completions", #"{"messages":[]}"#)
            #expect(missing.status == .badRequest)

            let notJSON = try await post(client, "/v1/chat/completions", "{nope")
            #expect(notJSON.status == .badRequest)

            let range = try await post(client, "/v1/chat/completions", #"{"model":"smollm2","messages":[{"role":"user","content":"hi"}],"temperature":5}"#)
            #expect(range.status == .badRequest)

            let long = String(repeating: "word ", count: 6000)
            let tooLong = try await post(client, "/v1/chat/completions", #"{"model":"smollm2","messages":[{"role":"user","content":"\#(long)"}]}"#)
            #expect(tooLong.status == .contentTooLarge)
            #expect((try object(tooLong.body)["error"] as? [String: Any])?["code"] as? String == "context_length_exceeded")

            let route = try await client.execute(uri: "/v1/nothing", method: .get)
            #expect(route.status == .notFound)
            #expect(try object(route.body)["error"] != nil)
        }
    }

    /// Every answer, errors too, carries an `x-request-id`: the caller's when it is a plausible id, else a new one.
    @Test func everyAnswerCarriesARequestID() async throws {
        let name = HTTPField.Name("x-request-id")!
        try await app().test(.router) { client in
            let a = try await client.execute(uri: "/api/v1/health", method: .get)
            let b = try await client.execute(uri: "/api/v1/health", method: .get)
            let ida = try #require(a.headers[name]), idb = try #require(b.headers[name])
            #expect(ida.hasPrefix("req_") && ida != idb)
            let echoed = try await client.execute(uri: "/v1/nothing", method: .get, headers: [name: "trace-42.a_b"])
            #expect(echoed.status == .notFound && echoed.headers[name] == "trace-42.a_b")
            let refused = try await client.execute(uri: "/api/v1/health", method: .get, headers: [name: "bad id with spaces"])
            #expect(refused.headers[name]?.hasPrefix("req_") == true)
        }
    }

    @Test func greedyChatMatchesNativeGenerateAndCountsTokens() async throws {
        try await app().test(.router) { client in
            let chat = try await post(client, "/v1/chat/completions",
                                      #"{"model":"smollm2","messages":[{"role":"user","content":"Name a color."}],"temperature":0,"max_tokens":12}"#)
            #expect(chat.status == .ok)
            let body = try object(chat.body)
            let choice = try #require((body["choices"] as? [[String: Any]])?.first)
            let text = try #require((choice["message"] as? [String: Any])?["content"] as? String)
            let usage = try #require(body["usage"] as? [String: Any])
            #expect((usage["completion_tokens"] as? Int ?? 0) <= 12 && (usage["prompt_tokens"] as? Int ?? 0) > 0)

            let native = try await post(client, "/api/v1/generate", #"{"model":"smollm2","prompt":"Name a color.","temperature":0,"max_tokens":12}"#)
            let n = try object(native.body)
            #expect(n["response"] as? String == text)
            #expect(n["tokens_used"] as? Int == usage["total_tokens"] as? Int)
            #expect(n["processing_time"] is Double && n["timestamp"] is String)
        }
    }

    /// `ignore_eos` generates past the end of the answer, to `max_tokens`: the same greedy tokens up to where the
    /// answer would have ended, then more (on the OpenAI and native surfaces).
    @Test func ignoreEOSGeneratesUpToMaxTokens() async throws {
        try await app().test(.router) { client in
            let question = #""model":"smollm2","messages":[{"role":"user","content":"Reply with the single word yes."}],"temperature":0,"max_tokens":40"#
            let plain = try object(try await post(client, "/v1/chat/completions", "{\(question)}").body)
            let plainUsage = try #require(plain["usage"] as? [String: Any])
            let plainChoice = try #require((plain["choices"] as? [[String: Any]])?.first)
            let plainText = try #require((plainChoice["message"] as? [String: Any])?["content"] as? String)
            // The question is chosen so that the answer ends before max_tokens.
            #expect(plainChoice["finish_reason"] as? String == "stop")
            #expect((plainUsage["completion_tokens"] as? Int ?? 40) < 40)
            let ignoring = try object(try await post(client, "/v1/chat/completions", "{\(question),\"ignore_eos\":true}").body)
            let choice = try #require((ignoring["choices"] as? [[String: Any]])?.first)
            #expect(choice["finish_reason"] as? String == "length")
            #expect((ignoring["usage"] as? [String: Any])?["completion_tokens"] as? Int == 40)
            let text = try #require((choice["message"] as? [String: Any])?["content"] as? String)
            #expect(text.hasPrefix(plainText) && text.count > plainText.count)
            let native = try object(try await post(client, "/api/v1/chat", "{\(question),\"ignore_eos\":true}").body)
            #expect(native["completion_tokens"] as? Int == 40 && native["finish_reason"] as? String == "length")
        }
    }

    /// `lora` (llama-server's per-request adapters) is checked: a model without adapters refuses any id, by name;
    /// a malformed list is the request's error; `lora: []` asks for the configured scales (here: none).
    @Test func loraRequestsAreChecked() async throws {
        try await app().test(.router) { client in
            let ask = #""model":"smollm2","messages":[{"role":"user","content":"Name a color."}],"temperature":0,"max_tokens":6"#
            for uri in ["/v1/chat/completions", "/api/v1/chat"] {
                let unknown = try await post(client, uri, "{\(ask),\"lora\":[{\"id\":0,\"scale\":1}]}")
                #expect(unknown.status == .badRequest)
                let message = (try object(unknown.body)["error"] as? [String: Any])?["message"] as? String
                #expect(message?.contains("adapter 0 does not exist: this model has no LoRA adapters") == true, "\(uri): \(message ?? "")")
                let negative = try await post(client, uri, "{\(ask),\"lora\":[{\"id\":-1,\"scale\":1}]}")
                #expect(negative.status == .badRequest)
                #expect((try object(negative.body)["error"] as? [String: Any])?["param"] as? String == "lora")
                let shapeless = try await post(client, uri, "{\(ask),\"lora\":[{\"id\":0}]}")
                #expect(shapeless.status == .badRequest)
            }
            let none = try object(try await post(client, "/v1/chat/completions", "{\(ask),\"lora\":[]}").body)
            let plain = try object(try await post(client, "/v1/chat/completions", "{\(ask)}").body)
            func text(_ o: [String: Any]) -> String? {
                ((o["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String
            }
            #expect(text(none) != nil && text(none) == text(plain))
        }
    }

    @Test func healthModelsAndUnload() async throws {
        try await app().test(.router) { client in
            _ = try await post(client, "/api/v1/models/load", #"{"model":"smollm2"}"#)
            let health = try object(try await client.execute(uri: "/api/v1/health", method: .get).body)
            #expect(health["status"] as? String == "ok")
            #expect((health["loaded_models"] as? [[String: Any]])?.first?["name"] as? String == "smollm2")
            func state(_ h: [String: Any], _ name: String) -> String? {
                (h["models"] as? [[String: Any]])?.first { $0["name"] as? String == name }?["status"] as? String
            }
            #expect(["ready", "busy"].contains(state(health, "smollm2")))
            let models = try object(try await client.execute(uri: "/api/v1/models", method: .get).body)
            let entry = try #require((models["models"] as? [[String: Any]])?.first { $0["name"] as? String == "smollm2" })
            #expect(entry["quantization"] as? String == "Q4_1" && entry["loaded"] as? Bool == true)
            let unload = try object(try await post(client, "/api/v1/models/unload", #"{"model":"smollm2"}"#).body)
            #expect(unload["unloaded"] as? Bool == true)
            let after = try object(try await client.execute(uri: "/api/v1/health", method: .get).body)
            #expect((after["loaded_models"] as? [Any])?.isEmpty == true)
            // Other suites share this host and may be loading it again already.
            #expect(["stopped", "loading", "ready", "busy"].contains(state(after, "smollm2")))
        }
    }
}

extension GatewayTests {
    @Test func logprobsAreReportedPerToken() async throws {
        try await app().test(.router) { client in
            let r = try await post(client, "/v1/chat/completions",
                                   #"{"model":"smollm2","messages":[{"role":"user","content":"Hi"}],"temperature":0,"max_tokens":5,"logprobs":true,"top_logprobs":3}"#)
            #expect(r.status == .ok)
            let choice = try #require((try object(r.body)["choices"] as? [[String: Any]])?.first)
            let content = try #require((choice["logprobs"] as? [String: Any])?["content"] as? [[String: Any]])
            #expect(content.count == 5)
            for t in content {
                let lp = try #require(t["logprob"] as? Double)
                let top = try #require(t["top_logprobs"] as? [[String: Any]])
                #expect(lp <= 0 && top.count == 3)
                // greedy: the chosen token is the most likely one
                #expect(abs((top.first?["logprob"] as? Double ?? 1) - lp) < 1e-6)
            }
        }
    }

    @Test func overloadAnswers429WithRetryAfter() async throws {
        // A queue of one behind a busy model: some of several simultaneous requests get 429 with Retry-After.
        let dir = try URL(fileURLWithPath: Reference.smolLM2()).deletingLastPathComponent()
        let backend = Backend(host: ModelHost(options: .init(directory: dir, queueCapacity: 1, parallel: 1)))
        let app = Server(backend: backend, options: .init()).application()
        try await app.test(.router) { client in
            let statuses = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
                for _ in 0..<5 {
                    group.addTask {
                        let r = try await post(client, "/v1/chat/completions",
                                               #"{"model":"smollm2","messages":[{"role":"user","content":"Tell me a story"}],"temperature":0,"max_tokens":48}"#)
                        return (r.status.code, r.headers[.retryAfter])
                    }
                }
                var all: [(Int, String?)] = []
                for try await s in group { all.append(s) }
                return all
            }
            #expect(statuses.allSatisfy { $0.0 == 200 || $0.0 == 429 })
            #expect(statuses.contains { $0.0 == 429 && Int($0.1 ?? "") != nil }, "\(statuses)")
            #expect(statuses.contains { $0.0 == 200 })
        }
    }
}
