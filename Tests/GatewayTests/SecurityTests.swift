import Foundation
@testable import Gateway
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Providers
import Storage
import TestSupport
import Testing

/// What the server promises a caller it does not trust, in-process: a model name never reaches a file outside the
/// model directory, operations that change the server for everyone need the admin key, and an oversized body is
/// refused with 413. Tests/clients/test_security.py sends the same requests over real HTTP to a real `serve`; here
/// the router test client is used because a live test client's fixed 20 s read timeout can pass while the test
/// process's other suites keep its threads busy.
@Suite(.serialized) struct SecurityTests {
    static let adminText = GuardLimitsTests.adminText

    /// A server with auth on, the admin key set, and an ordinary key made in its database.
    func guarded() async throws -> (access: AccessGuard, key: String) {
        let db = try GuardLimitsTests.database()
        let key = try await KeyStore(db).create(name: "tenant").plaintext
        var access = AccessGuard(database: db, requireAuth: true)
        access.adminKey = try AdminKey(Self.adminText)
        return (access, key)
    }

    /// A backend of this suite's own: it loads and unloads models, which must not cancel other suites' requests.
    static let backend: Backend = {
        let dir = (try? Reference.smolLM2()).map { URL(fileURLWithPath: $0).deletingLastPathComponent() } ?? Reference.modelDirectory
        return Backend(host: ModelHost(options: .init(directory: dir, queueCapacity: 4, parallel: 2)))
    }()

    func app(_ access: AccessGuard?) throws -> some ApplicationProtocol {
        _ = try Reference.smolLM2()
        return Server(backend: Self.backend, options: .init(), access: access).application()
    }

    func post(_ client: some TestClientProtocol, _ uri: String, key: String?, _ body: String) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let key { headers[.authorization] = "Bearer \(key)" }
        return try await client.execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: body))
    }

    func error(_ r: TestResponse) throws -> (code: String?, message: String) {
        let o = try #require(JSONSerialization.jsonObject(with: Data(buffer: r.body)) as? [String: Any])
        let e = try #require(o["error"] as? [String: Any])
        return (e["code"] as? String, e["message"] as? String ?? "")
    }

    static let pathNames = ["/etc/hostname", "/etc/passwd", "../../../../etc/passwd", "~/.bashrc", "./smollm2",
                            "/proc/self/environ", "..", "SmolLM2-135M-Instruct.Q4_1.gguf/../../../etc/passwd"]

    /// A name that is a path gets 404 `model_not_found` listing what is served, and never a word of the file.
    func expectNotFound(_ r: TestResponse, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(r.status == .notFound, "\(name): \(r.status)", sourceLocation: sourceLocation)
        let e = try error(r)
        #expect(e.code == "model_not_found", "\(name): \(e)", sourceLocation: sourceLocation)
        #expect(e.message.contains("smollm2"), sourceLocation: sourceLocation)
        for leak in ["GGUF", "magic", "root", "first four bytes", "localhost"] {
            #expect(!e.message.contains(leak), "\(name): '\(leak)' in \(e.message)", sourceLocation: sourceLocation)
        }
    }

    func chatBody(_ model: String) -> String {
        let quoted = String(decoding: try! JSONEncoder().encode(model), as: UTF8.self)
        return #"{"model":\#(quoted),"messages":[{"role":"user","content":"hi"}],"max_tokens":1}"#
    }

    @Test func aModelNameThatIsAPathIsNotFoundOnEverySurface() async throws {
        let g = try await guarded()
        try await app(g.access).test(.router) { client in
            for name in Self.pathNames {
                let quoted = String(decoding: try JSONEncoder().encode(name), as: UTF8.self)
                try expectNotFound(try await post(client, "/v1/chat/completions", key: g.key, chatBody(name)), name)
                try expectNotFound(try await post(client, "/v1/completions", key: g.key, #"{"model":\#(quoted),"prompt":"hi","max_tokens":1}"#), name)
                try expectNotFound(try await post(client, "/api/v1/generate", key: g.key, #"{"model":\#(quoted),"prompt":"hi","max_tokens":1}"#), name)
                try expectNotFound(try await post(client, "/api/v1/chat", key: g.key, chatBody(name)), name)
                // The admin key too: the server resolves names the same way for everyone.
                try expectNotFound(try await post(client, "/api/v1/models/load", key: Self.adminText, #"{"model":\#(quoted)}"#), name)
                try expectNotFound(try await post(client, "/v1/chat/completions", key: Self.adminText, chatBody(name)), name)
            }
            // What is served still answers, by catalogue name and by file name.
            let byName = try await post(client, "/v1/chat/completions", key: g.key, chatBody("smollm2"))
            let byFile = try await post(client, "/v1/chat/completions", key: g.key, chatBody("SmolLM2-135M-Instruct.Q4_1"))
            #expect(byName.status == .ok && byFile.status == .ok)
        }
    }

    @Test func withAuthOffPathsAreNotFoundEither() async throws {
        try await app(nil).test(.router) { client in
            for name in Self.pathNames {
                try expectNotFound(try await post(client, "/v1/chat/completions", key: nil, chatBody(name)), name)
                let quoted = String(decoding: try JSONEncoder().encode(name), as: UTF8.self)
                try expectNotFound(try await post(client, "/api/v1/models/load", key: nil, #"{"model":\#(quoted)}"#), name)
            }
        }
    }

    @Test func changingTheServerNeedsTheAdminKey() async throws {
        let g = try await guarded()
        try await app(g.access).test(.router) { client in
            let model = #"{"model":"smollm2"}"#
            for (uri, body) in [("/api/v1/models/load", model), ("/api/v1/models/unload", model), ("/admin/profile", #"{"profile":null}"#),
                                ("/admin/keys", #"{"name":"mine"}"#), ("/lora-adapters?model=smollm2", "[]")] {
                let r = try await post(client, uri, key: g.key, body)
                #expect(r.status == .forbidden, "\(uri)")
                #expect(try error(r).code == "admin_required", "\(uri)")
                let none = try await post(client, uri, key: nil, body)
                #expect(none.status == .unauthorized, "\(uri)")
                let wrong = try await post(client, uri, key: "sk-sy-AAAAAAAAAAAA-nope", body)
                #expect(wrong.status == .unauthorized, "\(uri)")
            }
            for uri in ["/admin/keys", "/admin/usage", "/admin/profile", "/lora-adapters?model=smollm2"] {
                let r = try await client.execute(uri: uri, method: .get, headers: [.authorization: "Bearer \(g.key)"])
                #expect(r.status == .forbidden, "\(uri)")
                #expect(try error(r).code == "admin_required", "\(uri)")
            }
            // The admin key may; the ordinary key still uses models.
            let loaded = try await post(client, "/api/v1/models/load", key: Self.adminText, model)
            #expect(loaded.status == .ok)
            #expect(try await post(client, "/v1/chat/completions", key: g.key, chatBody("smollm2")).status == .ok)
            // An ordinary key's keep_alive does not change how long the model stays loaded; the admin key's does.
            let worker = try #require(await Self.backend.host.loadedWorkers().first { $0.name == "smollm2" })
            let before = worker.keepAlive
            let tenantKeep = #"{"model":"smollm2","messages":[{"role":"user","content":"hi"}],"max_tokens":1,"keep_alive":0}"#
            #expect(try await post(client, "/v1/chat/completions", key: g.key, tenantKeep).status == .ok)
            #expect(worker.keepAlive == before)
            let adminKeep = #"{"model":"smollm2","messages":[{"role":"user","content":"hi"}],"max_tokens":1,"keep_alive":"7m"}"#
            #expect(try await post(client, "/v1/chat/completions", key: Self.adminText, adminKeep).status == .ok)
            #expect(worker.keepAlive == .seconds(420))
            let unloaded = try await post(client, "/api/v1/models/unload", key: Self.adminText, model)
            #expect(unloaded.status == .ok)
        }
    }

    @Test func withAuthOnAndNoAdminKeyAnOrdinaryKeyIsToldItNeedsOne() async throws {
        let db = try GuardLimitsTests.database()
        let key = try await KeyStore(db).create(name: "tenant").plaintext
        try await app(AccessGuard(database: db, requireAuth: true)).test(.router) { client in
            for uri in ["/api/v1/models/load", "/api/v1/models/unload"] {
                let r = try await post(client, uri, key: key, #"{"model":"smollm2"}"#)
                #expect(r.status == .forbidden)
                let e = try error(r)
                #expect(e.code == "admin_required")
                #expect(e.message.contains("SWITCHYARD_ADMIN_KEY"))
            }
        }
    }

    @Test func anOversizedBodyIs413() async throws {
        let g = try await guarded()
        // Longer than the 4 MiB every surface reads: refused before it is read, with or without a key.
        let big = #"{"model":"smollm2","messages":[{"role":"user","content":""# + String(repeating: "a", count: BodyLimit.maxBytes) + #""}]}"#
        try await app(g.access).test(.router) { client in
            for key in [g.key, nil] {
                let r = try await post(client, "/v1/chat/completions", key: key, big)
                #expect(r.status == .contentTooLarge)
                #expect(try error(r).code == "request_too_large")
            }
            // A route with a smaller limit (an admin body, 64 KiB) refuses past its own limit the same way.
            let admin = #"{"name":""# + String(repeating: "n", count: 100_000) + #""}"#
            let r = try await post(client, "/admin/keys", key: Self.adminText, admin)
            #expect(r.status == .contentTooLarge)
            let message = try error(r).message
            #expect(message.contains("64 KiB"), "\(message)")
            // The server goes on answering.
            #expect(try await client.execute(uri: "/api/v1/health", method: .get).status == .ok)
        }
    }
}
