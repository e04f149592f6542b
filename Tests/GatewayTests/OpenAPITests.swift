import Foundation
@testable import Gateway
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Providers
import Storage
import Testing

/// `/openapi.json` is true: it lists exactly the routes the server registers (with keys on, so that every route is
/// there), and every route it lists answers — with its handler's own status, never the router's "no such route".
@Suite struct OpenAPITests {
    static func server() throws -> Server {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("openapi-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        let db = try StorageDatabase(url: tmp.appendingPathComponent("db.sqlite"))
        let backend = Backend(host: ModelHost(options: .init(directory: tmp)))
        return Server(backend: backend, options: .init(), access: AccessGuard(database: db, requireAuth: false))
    }

    @Test func theDocumentListsExactlyTheRegisteredRoutes() throws {
        let registered = Set(try Self.server().router().routes.map { "\($0.method.rawValue.lowercased()) \($0.path)" })
        let documented = Set(OpenAPIDocument.operations.map { "\($0.method) \($0.path)" })
        #expect(registered.subtracting(documented).isEmpty, "registered but not documented: \(registered.subtracting(documented).sorted())")
        #expect(documented.subtracting(registered).isEmpty, "documented but not registered: \(documented.subtracting(registered).sorted())")
        let doc = try #require(try JSONSerialization.jsonObject(with: OpenAPIDocument.json) as? [String: Any])
        #expect(doc["openapi"] as? String == "3.1.0")
        #expect((doc["paths"] as? [String: Any])?.count == Set(OpenAPIDocument.operations.map(\.path)).count)
        // Every schema reference resolves.
        let text = String(decoding: OpenAPIDocument.json, as: UTF8.self)
        let schemas = try #require((doc["components"] as? [String: Any])?["schemas"] as? [String: Any])
        for r in text.split(separator: "\"").filter({ $0.hasPrefix("#/components/schemas/") }) {
            #expect(schemas[String(r.dropFirst("#/components/schemas/".count))] != nil, "\(r)")
        }
    }

    @Test func everyDocumentedRouteAnswers() async throws {
        try await Self.server().application().test(.router) { client in
            for op in OpenAPIDocument.operations {
                let path = op.path.replacingOccurrences(of: "{id}", with: "no-such-model").replacingOccurrences(of: "{key}", with: "no-such-key")
                let method = HTTPRequest.Method(rawValue: op.method.uppercased())!
                let body: ByteBuffer? = op.request == nil ? nil : ByteBuffer(string: "{}")
                let r = try await client.execute(uri: path, method: method, headers: [.contentType: "application/json"], body: body)
                let routerMiss = r.status == .notFound && String(buffer: r.body).contains("\"Not Found\"")
                #expect(!routerMiss && r.status != .methodNotAllowed, "\(op.method) \(op.path): \(r.status)")
            }
            let page = try await client.execute(uri: "/docs", method: .get)
            #expect(page.status == .ok && String(buffer: page.body).contains("/v1/chat/completions"))
        }
    }
}
