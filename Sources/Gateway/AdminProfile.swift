import Core
import Foundation
import Hummingbird
import Registry
import Routing

/// Where a running server finds its profiles: what `POST /admin/profile` may switch to, and how the registry
/// with one of them merged over the base is read.
public struct ProfileSource: Sendable {
    /// The profiles there are now.
    public var names: @Sendable () -> [String]
    /// The base registry with profile NAME merged over it (nil: the base alone); throws `ConfigError`.
    public var load: @Sendable (String?) throws -> ModelRegistry

    public init(names: @escaping @Sendable () -> [String], load: @escaping @Sendable (String?) throws -> ModelRegistry) {
        self.names = names; self.load = load
    }

    /// The profiles in `profilesDirectory` over the registry files in `directory`.
    public static func directory(_ directory: URL, profiles profilesDirectory: URL) -> ProfileSource {
        ProfileSource(names: { ModelRegistry.profileNames(in: profilesDirectory) },
                      load: { try ModelRegistry.load(directory: directory, profile: $0, profilesDirectory: profilesDirectory) })
    }
}

/// `GET /admin/profile`: the active profile and those there are. `POST /admin/profile {"profile": "coding"}`
/// switches to another without a restart (`{"profile": null}`: back to the base configuration); requests in
/// flight finish on the plan they started with. Registered under `/admin/`, which the guard covers like every
/// path but health and metrics.
struct AdminProfileRoutes {
    let backend: Backend
    let profiles: ProfileSource?

    struct State: Encodable {
        let profile: String?
        let available: [String]
        var previous: String?? = nil
        func encode(to encoder: Encoder) throws {
            enum K: String, CodingKey { case profile, available, previous }
            var c = encoder.container(keyedBy: K.self)
            try c.encode(profile, forKey: .profile)   // null when the base configuration is active
            try c.encode(available, forKey: .available)
            if let previous { try c.encode(previous, forKey: .previous) }
        }
    }

    struct SwitchBody: Decodable { let profile: String? }

    func register(on router: Hummingbird.Router<GatewayContext>) {
        router.get("/admin/profile") { _, _ in try json(state()) }
        router.post("/admin/profile") { request, _ in try await switchProfile(request) }
    }

    private func state() -> State {
        State(profile: backend.router?.registry.profile, available: profiles?.names() ?? [])
    }

    private func switchProfile(_ request: Request) async throws -> Response {
        var request = request
        let body = try await request.collectBody(limit: 64 << 10)
        let wanted = try JSONDecoder().decode(SwitchBody.self, from: Data(buffer: body)).profile
        guard let profiles else {
            throw APIError(.badRequest, "this server has no profiles (it was started without a configuration folder)", code: "profiles_unavailable")
        }
        let available = profiles.names()
        if let wanted, !available.contains(wanted) {
            throw APIError(.notFound, "no profile '\(wanted)' (profiles: \(available.isEmpty ? "none" : available.joined(separator: ", ")))",
                           param: "profile", code: "profile_not_found")
        }
        let registry: ModelRegistry
        do {
            registry = try profiles.load(wanted)
        } catch let e as ConfigError {
            throw APIError(.badRequest, "profile '\(wanted ?? "(base)")' is not valid: \(e.description)", param: "profile", code: "invalid_profile")
        }
        let previous = backend.router?.registry.profile
        try await backend.apply(registry, warn: { FileHandle.standardError.write(Data(($0 + "\n").utf8)) })
        FileHandle.standardError.write(Data("profile switched: \(previous ?? "(base)") -> \(wanted ?? "(base)")\n".utf8))
        var s = state()
        s.previous = .some(previous)
        return try json(s)
    }
}
