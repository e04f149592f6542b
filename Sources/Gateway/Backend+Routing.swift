import Core
import Foundation
import Providers
import Routing

extension Backend {
    /// A backend whose completions go through a router built from the registry: its providers (API keys read from
    /// `environment`), routes and circuit breakers, with the local engine as provider `local`.
    public convenience init(host: ModelHost, registry: ModelRegistry,
                            environment: [String: String] = ProcessInfo.processInfo.environment,
                            clock: RouterClock = .continuous, options: Options = Options(), warn: (String) -> Void = { _ in }) {
        self.init(host: host, provider: Self.router(host: host, registry: registry, environment: environment, clock: clock, warn: warn),
                  options: options)
    }

    static func router(host: ModelHost, registry: ModelRegistry, environment: [String: String], clock: RouterClock,
                       warn: (String) -> Void) -> Router {
        var providers: [String: any Provider] = ["local": LocalProvider(host: host)]
        for (name, p) in registry.providers.sorted(by: { $0.key < $1.key }) {
            var key: String?
            if let env = p.apiKeyEnv {
                key = environment[env]
                if key == nil { warn("provider \(name): environment variable \(env) is not set; requests go without an API key") }
            }
            providers[name] = p.makeProvider(apiKey: key)
        }
        return Router(routes: registry.routes, providers: providers, breakers: registry.providers.mapValues(\.breaker), clock: clock)
    }
}

extension Backend {
    /// The routed deployments' states for `/api/v1/health` (none without a router).
    func deploymentStatuses() -> [Router.DeploymentStatus] {
        (provider as? Router)?.deploymentStatuses() ?? []
    }
}
