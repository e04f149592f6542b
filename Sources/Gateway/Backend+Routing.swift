import Core
import Foundation
import Providers
import Registry
import Routing
import Synchronization

extension Backend {
    /// A backend whose completions go through a router built from the registry: its providers (API keys read from
    /// `environment`), routes and circuit breakers, with the local engine as provider `local`.
    public convenience init(host: ModelHost, registry: ModelRegistry,
                            environment: [String: String] = ProcessInfo.processInfo.environment,
                            clock: RouterClock = .continuous, options: Options = Options(), warn: (String) -> Void = { _ in }) {
        let configuration = Router.Configuration(registry: registry, providers: Self.providers(host: host, registry: registry, environment: environment, warn: warn))
        let router = Router(configuration, clock: clock, localMemory: { [host] in host.memoryEstimate(source: $0) }, log: Self.log)
        self.init(host: host, router: router, options: options, environment: environment)
    }

    /// The local engine as `local`, and one provider per declaration (its API key read from `environment`).
    static func providers(host: ModelHost, registry: ModelRegistry, environment: [String: String],
                          warn: (String) -> Void) -> [ProviderID: any Provider] {
        var providers: [ProviderID: any Provider] = [.local: LocalProvider(host: host)]
        for (name, p) in registry.providers.sorted(by: { $0.key < $1.key }) {
            var key: String?
            if let env = p.apiKeyEnv {
                key = environment[env]
                if key == nil { warn("provider \(name): environment variable \(env) is not set; requests go without an API key") }
            }
            providers[name] = p.makeProvider(apiKey: key)
        }
        return providers
    }

    /// Serves from `registry` from now on (a profile switch): the router's routes, aliases, roles, rules and
    /// providers are replaced at once, and the model host's declarations. Requests in flight finish with the
    /// configuration they started with. Switches run one at a time.
    public func apply(_ registry: ModelRegistry, warn: (String) -> Void = { _ in }) async throws {
        guard let router else {
            throw APIError(.badRequest, "this server does not route (it was started without a model registry)", code: "not_routed")
        }
        let providers = Self.providers(host: host, registry: registry, environment: environment, warn: warn)
        try await switches.run {
            await self.host.redeclare(registry.declared)
            router.reconfigure(Router.Configuration(registry: registry, providers: providers))
        }
    }
}

extension Backend {
    /// Routing events (circuits opening and closing, providers going down and up) go to stderr with the request log.
    static let log: @Sendable (String) -> Void = { line in
        FileHandle.standardError.write(Data("routing: \(line)\n".utf8))
    }

    /// The routed deployments' states for `/api/v1/health` (none without a router).
    public func deploymentStatuses() -> [Router.DeploymentStatus] {
        router?.deploymentStatuses() ?? []
    }
}

/// Runs bodies one after another, in the order they were submitted.
final class SerialRunner: Sendable {
    private let tail = Mutex<Task<Void, Never>?>(nil)

    func run(_ body: @escaping @Sendable () async throws -> Void) async throws {
        let task: Task<Void, Error> = tail.withLock { tail in
            let previous = tail
            let task = Task<Void, Error> {
                await previous?.value
                try await body()
            }
            tail = Task { _ = try? await task.value }
            return task
        }
        try await task.value
    }
}
