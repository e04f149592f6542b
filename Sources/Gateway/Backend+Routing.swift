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
        let log = Self.log
        return Router(routes: registry.routes, providers: providers, breakers: registry.providers.mapValues(\.breaker), clock: clock,
                      prober: HealthProber(providers: providers, log: log), log: log)
    }
}

extension Backend {
    /// Routing events (circuits opening and closing, providers going down and up) go to stderr with the request log.
    static let log: @Sendable (String) -> Void = { line in
        FileHandle.standardError.write(Data("routing: \(line)\n".utf8))
    }

    /// The background health checks of the remote providers (nil without a router or remote providers); `serve`
    /// runs them.
    public var prober: HealthProber? {
        guard let prober = (provider as? Router)?.prober, !prober.isEmpty else { return nil }
        return prober
    }

    /// The routed deployments' states for `/api/v1/health` (none without a router).
    public func deploymentStatuses() -> [Router.DeploymentStatus] {
        (provider as? Router)?.deploymentStatuses() ?? []
    }
}
