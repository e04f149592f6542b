import Foundation
import Hummingbird
import Storage

/// The admin API over the key store, behind the admin key (see `GuardMiddleware`):
///
/// - `GET /admin/keys` — every key (never a secret or hash)
/// - `POST /admin/keys` `{"name", "rpm"?, "tpm"?, "budget_tokens"?, "budget_usd"?, "models"?, "local_only"?,
///   "allowed_ips"?, "expires"?}` — 201 with the key's text, shown this once
/// - `GET /admin/keys/{key}` — one key, by name, id or `sk-sy-<id>` prefix
/// - `POST /admin/keys/{key}/revoke` (or `DELETE /admin/keys/{key}`) — refused from now on, by every server within
///   the key cache's time to live (at once by this one)
/// - `POST /admin/keys/{key}/rotate` `{"expires"?}` — a new secret, the old one revoked
///
/// `GET /admin/usage` is the usage summary over every key (UsageRoute).
struct AdminRoutes {
    let store: KeyStore
    /// Forgotten after a change, so that this server applies it at once.
    let cache: KeyCache?

    struct KeyView: Encodable {
        var id, name, prefix, created_at, state: String
        var expires_at, revoked_at: String?
        var rpm, tpm, budget_tokens: Int?
        var budget_usd: Double?
        var models: [String]
        var local_only: Bool
        var allowed_ips: [String]

        init(_ k: APIKey, now: Date = Date()) {
            let f = ISO8601DateFormatter()
            id = k.id; name = k.name; prefix = k.prefix; created_at = f.string(from: k.createdAt)
            expires_at = k.expiresAt.map { f.string(from: $0) }; revoked_at = k.revokedAt.map { f.string(from: $0) }
            state = switch k.state(at: now) { case .active: "active"; case .expired: "expired"; case .revoked: "revoked" }
            rpm = k.limits.requestsPerMinute; tpm = k.limits.tokensPerMinute
            if case .tokens(let n) = k.limits.budget { budget_tokens = n }
            if case .usd(let x) = k.limits.budget { budget_usd = x }
            models = k.limits.allowedModels; local_only = k.limits.localOnly; allowed_ips = k.limits.allowedIPs
        }
    }

    struct Created: Encodable {
        var key: String
        var info: KeyView
    }

    struct CreateBody: Decodable {
        var name: String
        var rpm, tpm, budget_tokens: Int?
        var budget_usd: Double?
        var models: [String]?
        var local_only: Bool?
        var allowed_ips: [String]?
        var expires: String?
    }

    struct RotateBody: Decodable { var expires: String? }

    func register(on router: Router<GatewayContext>) {
        router.get("/admin/keys") { _, _ in
            try json(["data": try await store.list().map { KeyView($0) }])
        }
        router.post("/admin/keys") { request, _ in try await create(request) }
        router.get("/admin/keys/{key}") { _, context in
            try json(KeyView(try await mapped { try await store.find(try context.parameters.require("key")) }))
        }
        router.post("/admin/keys/{key}/revoke") { _, context in try await revoke(try context.parameters.require("key")) }
        router.delete("/admin/keys/{key}") { _, context in try await revoke(try context.parameters.require("key")) }
        router.post("/admin/keys/{key}/rotate") { request, context in
            let reference = try context.parameters.require("key")
            var request = request
            let body = try await request.collectBody(limit: 64 << 10)
            let expires = body.readableBytes == 0 ? nil : try JSONDecoder().decode(RotateBody.self, from: Data(buffer: body)).expires
            let rotated = try await mapped { try await store.rotate(reference, expiresAt: try expires.map(Self.date)) }
            cache?.removeAll()
            return try json(Created(key: rotated.plaintext, info: KeyView(rotated.key)), status: .created)
        }
    }

    private func create(_ request: Request) async throws -> Response {
        var request = request
        let body = try JSONDecoder().decode(CreateBody.self, from: Data(buffer: try await request.collectBody(limit: 64 << 10)))
        if body.budget_tokens != nil && body.budget_usd != nil {
            throw APIError(.badRequest, "budget_tokens and budget_usd are alternatives: give one", param: "budget_tokens")
        }
        let budget: Budget? = body.budget_tokens.map(Budget.tokens) ?? body.budget_usd.map(Budget.usd)
        let limits = KeyLimits(requestsPerMinute: body.rpm, tokensPerMinute: body.tpm, budget: budget,
                               allowedModels: body.models ?? [], localOnly: body.local_only ?? false,
                               allowedIPs: body.allowed_ips ?? [])
        let created = try await mapped {
            try await store.create(name: body.name, limits: limits, expiresAt: try body.expires.map(Self.date))
        }
        return try json(Created(key: created.plaintext, info: KeyView(created.key)), status: .created)
    }

    private func revoke(_ reference: String) async throws -> Response {
        let key = try await mapped { try await store.revoke(reference) }
        cache?.removeAll()
        return try json(KeyView(key))
    }

    static func date(_ text: String) throws -> Date {
        do { return try StorageDates.parse(text, direction: .future) } catch {
            throw APIError(.badRequest, "expires: \(error)", param: "expires")
        }
    }

    /// Storage errors as HTTP: an unknown key 404, a name in use 409, an invalid value 400.
    private func mapped<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let e as StorageError {
            switch e {
            case .unknownKey: throw APIError(.notFound, e.description, code: "key_not_found")
            case .duplicateName: throw APIError(.conflict, e.description, code: "key_name_in_use")
            case .alreadyRevoked: throw APIError(.conflict, e.description, code: "key_already_revoked")
            case .invalid: throw APIError(.badRequest, e.description)
            default: throw e
            }
        }
    }
}
