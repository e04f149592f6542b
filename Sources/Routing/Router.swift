import Core
import Registry
import Foundation
import Synchronization

/// The time the router reads (circuit breakers) and sleeps on (backoff between retries); tests pass their own.
public struct RouterClock: Sendable {
    public var now: @Sendable () -> ContinuousClock.Instant
    public var sleep: @Sendable (Duration) async throws -> Void
    public init(now: @escaping @Sendable () -> ContinuousClock.Instant, sleep: @escaping @Sendable (Duration) async throws -> Void) {
        self.now = now; self.sleep = sleep
    }
    public static let continuous = RouterClock(now: { ContinuousClock.now }, sleep: { try await Task.sleep(for: $0) })
}

/// The provider the surfaces talk to: resolves a public model name to its deployments (in the order its strategy
/// gives, then its fallbacks' deployments) and tries them in turn. A deployment that fails before its first event
/// (refused, 5xx, 429, timed out) is retried as its policy allows, then passed over for the next; once events have
/// reached the client, a failure ends the stream with that error, never with a silently shortened answer.
/// Names that no route declares go to the local engine as they are. Aliases, roles and `auto` are resolved first
/// (`ModelRegistry.resolve`); a local-only request keeps only local deployments.
///
/// `reconfigure` swaps the whole configuration at once (a profile switch): each request reads it once, when it
/// starts, and keeps that plan and those providers to its end. Circuit breakers, latencies and counters are kept
/// by deployment key across switches.
public final class Router: Provider {
    public var name: String { "router" }

    /// What a profile switch replaces: the registry (routes, aliases, roles, rules), the providers by name
    /// (`local` among them) and their breaker settings.
    public struct Configuration: Sendable {
        public var registry: ModelRegistry
        public var providers: [ProviderID: any Provider]
        public var breakers: [ProviderID: BreakerSettings]
        public init(registry: ModelRegistry, providers: [ProviderID: any Provider], breakers: [ProviderID: BreakerSettings]? = nil) {
            self.registry = registry; self.providers = providers
            self.breakers = breakers ?? registry.providers.mapValues(\.breaker)
        }
    }
    private let configuration: Mutex<Configuration>
    /// The configuration new requests are planned with.
    public var current: Configuration { configuration.withLock { $0 } }
    public var registry: ModelRegistry { current.registry }
    public var routes: [String: RouteDeclaration] { current.registry.routes }
    let clock: RouterClock
    let random: @Sendable () -> Double
    /// The wait for a routed deployment's first event (and between events) when its declaration gives none.
    let defaultTimeout: Duration
    /// Memory a local model takes, by its source, when the configuration does not say (roles' `max_memory`).
    let localMemory: @Sendable (String) -> Int?
    /// Background checks of the remote providers (run by the server: `runHealthChecks`).
    public let prober: HealthProber
    /// Where circuit and provider state changes are told (the server's log).
    let log: @Sendable (String) -> Void
    private let state = Mutex(State())

    struct State {
        var breakers: [DeploymentKey: CircuitBreaker<ContinuousClock.Instant>] = [:]
        var inFlight: [DeploymentKey: Int] = [:]
        /// By route name: where its next request starts (round robin).
        var turns: [String: Int] = [:]
        /// Time to first event by deployment (seconds), an exponentially weighted moving average.
        var latency: [DeploymentKey: Double] = [:]
    }

    /// Weight of the newest measurement in the latency average.
    static let latencySmoothing = 0.3

    /// Every routed deployment's state, for health reports: its circuit (`healthy`, `cooling down` until a time,
    /// `probing`), measured time to first token and requests in flight.
    public struct DeploymentStatus: Sendable, Equatable {
        public var deployment: String
        public var state: String
        public var latencySeconds: Double?
        public var inFlight: Int
        /// The provider's last background check.
        public var probe: HealthProber.Result? = nil
    }

    public func deploymentStatuses() -> [DeploymentStatus] {
        let keys = Set(routes.values.flatMap { $0.deployments.map(\.key) }).sorted()
        return state.withLock { s in
            keys.map { key in
                let probe = prober.result(key.provider)
                let circuit: String = switch s.breakers[key]?.state {
                case .open?: "cooling down"
                case .halfOpen?: "probing"
                case .closed?, nil: probe?.up == false ? "down" : "healthy"
                }
                return DeploymentStatus(deployment: key.description, state: circuit, latencySeconds: s.latency[key], inFlight: s.inFlight[key] ?? 0,
                                        probe: probe)
            }
        }
    }

    /// A deployment's measured time to first event (seconds), for `lowest-latency`, health reports and tests.
    public func latency(_ key: DeploymentKey) -> Double? {
        state.withLock { $0.latency[key] }
    }

    /// `providers` by the names deployments use; `local` among them.
    public convenience init(routes: [String: RouteDeclaration], providers: [ProviderID: any Provider], breakers: [ProviderID: BreakerSettings] = [:],
                            clock: RouterClock = .continuous, random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
                            defaultTimeout: Duration = .seconds(120)) {
        self.init(Configuration(registry: ModelRegistry(routes: routes), providers: providers, breakers: breakers),
                  clock: clock, random: random, defaultTimeout: defaultTimeout)
    }

    public init(_ configuration: Configuration, clock: RouterClock = .continuous,
                random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }, defaultTimeout: Duration = .seconds(120),
                localMemory: @escaping @Sendable (String) -> Int? = { _ in nil },
                log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.configuration = Mutex(configuration)
        self.clock = clock; self.random = random; self.defaultTimeout = defaultTimeout; self.localMemory = localMemory
        self.log = log
        self.prober = HealthProber(log: log)
    }

    /// Whether any provider is remote (and so worth checking in the background).
    public var hasRemoteProviders: Bool { current.providers.keys.contains { !$0.isLocal } }

    /// Checks every remote provider of the current configuration once.
    public func checkProviders() async { await prober.probeOnce(current.providers) }

    /// Checks the remote providers every `prober.interval` until the task is cancelled.
    public func runHealthChecks() async {
        while !Task.isCancelled {
            if hasRemoteProviders { await checkProviders() }
            try? await Task.sleep(for: prober.interval)
        }
    }

    /// Replaces the configuration for requests that start from now on; requests in flight finish with the one
    /// they started with. Breakers of providers whose breaker settings changed start afresh.
    public func reconfigure(_ new: Configuration) {
        let old = configuration.withLock { c in
            let old = c
            c = new
            return old
        }
        let changed = Set(new.breakers.keys).union(old.breakers.keys).filter { new.breakers[$0] != old.breakers[$0] }
        guard !changed.isEmpty else { return }
        state.withLock { s in
            for key in s.breakers.keys where changed.contains(key.provider) {
                s.breakers[key] = nil
            }
        }
    }

    /// The local engine's models, then every routed name and alias it does not list.
    public func models() async throws -> [ModelInfo] {
        let config = current
        var out = try await config.providers[.local]?.models() ?? []
        var names = Set(out.map(\.name))
        for name in config.registry.routes.keys.sorted() + config.registry.aliases.keys.sorted() where names.insert(name).inserted {
            out.append(ModelInfo(name: name, provider: self.name))
        }
        // What the background checks found on each upstream, as PROVIDER/MODEL (served by that provider directly).
        for provider in config.providers.keys.sorted() where !provider.isLocal {
            for model in prober.result(provider)?.models ?? [] where names.insert("\(provider)/\(model)").inserted {
                out.append(ModelInfo(name: "\(provider)/\(model)", provider: provider.rawValue))
            }
        }
        return out
    }

    public func chat(_ request: ChatRequest) -> ChatStream {
        let (stream, out) = AsyncThrowingStream<ChatEvent, Error>.makeStream()
        let route = RouteSlot()
        let task = Task {
            do {
                try await self.serve(request, whole: false, announce: route.set) { if case .terminated = out.yield($0) { false } else { true } }
                out.finish()
            } catch {
                out.finish(throwing: error)
            }
        }
        out.onTermination = { _ in task.cancel() }
        return ChatStream(events: stream, cancel: { task.cancel() }, route: route)
    }

    public var answersWhole: Bool { true }

    /// The whole answer, with its route, through the same retries, fallbacks and circuits as `chat`: read in one
    /// piece from providers that answer whole (the deployment's timeout then bounds the whole answer), else from
    /// their streams. The router's own `timeout` is not used (each deployment has its own).
    public func complete(_ request: ChatRequest, timeout: Duration?) async throws -> CompletedAnswer {
        var answer = CompletedAnswer()
        var route: RouteInfo?
        try await serve(request, whole: true, announce: { route = $0 }) { answer.append($0); return true }
        answer.route = route
        return answer
    }

    /// A deployment's circuit, for health reports and tests.
    public func circuit(_ key: DeploymentKey) -> CircuitBreaker<ContinuousClock.Instant>.State? {
        state.withLock { $0.breakers[key]?.state }
    }

    /// The deployments one request tries, in order: the route's (by its strategy), then each fallback's, without
    /// repeats. A fallback that no route declares is a local model. Nil for a name no route declares.
    func plan(for name: String) -> [DeploymentDeclaration]? {
        let registry = self.registry
        guard registry.routes[name] != nil else { return nil }
        return plan([name], withFallbacks: true, registry: registry)
    }

    /// The deployments of `names` in turn (each by its strategy), each followed by its fallbacks' if
    /// `withFallbacks`, without repeats. A name no route declares is served as `ModelRegistry.deployments(of:)` says
    /// (`PROVIDER/MODEL` by that provider, anything else by the local engine).
    func plan(_ names: [String], withFallbacks: Bool, registry: ModelRegistry) -> [DeploymentDeclaration] {
        let routes = registry.routes
        var out: [DeploymentDeclaration] = []
        var seenRoutes: Set<String> = [], seenKeys: Set<DeploymentKey> = []
        func add(_ routeName: String, depth: Int) {
            guard depth < 8, seenRoutes.insert(routeName).inserted else { return }
            guard let route = routes[routeName] else {
                for d in registry.deployments(of: routeName) where seenKeys.insert(d.key).inserted { out.append(d) }
                return
            }
            let ordered = state.withLock { s in
                let turn = s.turns[routeName, default: 0]
                s.turns[routeName] = turn &+ 1
                return route.strategy.order(route.deployments, turn: turn, inFlight: s.inFlight, latency: s.latency, random: random())
            }
            for d in ordered where seenKeys.insert(d.key).inserted { out.append(d) }
            if withFallbacks { for f in route.fallbacks { add(f, depth: depth + 1) } }
        }
        for name in names { add(name, depth: 0) }
        return out
    }

    /// Whether a deployment's circuit is open now (not yet probing).
    func isCoolingDown(_ d: DeploymentDeclaration) -> Bool {
        let now = clock.now()
        return state.withLock { s in
            if case .open(let until)? = s.breakers[d.key]?.state { return now < until }
            return false
        }
    }

    /// Resolves the request's name and plans its deployments, with the configuration it started under.
    func route(_ request: ChatRequest, _ config: Configuration) async throws -> (plan: [DeploymentDeclaration], routed: Bool, reason: String?) {
        let registry = config.registry
        var discovered: [String] = []
        if registry.order.isEmpty, registry.followAliases(request.model)?.target == ModelRegistry.autoName {
            discovered = (try? await config.providers[.local]?.models().map(\.name)) ?? []
        }
        let resolution = try registry.resolve(request, coolingDown: isCoolingDown, localMemory: localMemory, discovered: discovered)
        let routed = resolution.role != nil || resolution.models.contains {
            registry.routes[$0] != nil || registry.deployments(of: $0).contains { !$0.provider.isLocal }
        }
        var planned = self.plan(resolution.models, withFallbacks: resolution.withFallbacks, registry: registry)
        if resolution.localOnly {
            let all = planned
            planned = all.filter(registry.isLocal)
            if planned.isEmpty { throw RoutingError.noLocalDeployment(model: resolution.models.first ?? request.model, deployments: all.map(\.key.description)) }
        }
        return (planned, routed, resolution.reason)
    }

    /// Tries the request's deployments in turn, passing the events of the one that answers to `emit` (which says
    /// false once the consumer has gone away), after telling `announce` where it is served; returns when the answer
    /// ended (or the consumer went), throws what ended it otherwise. `whole`: the answer is wanted in one piece
    /// (see `complete`).
    private func serve(_ request: ChatRequest, whole: Bool, announce: (RouteInfo) -> Void, emit: (ChatEvent) -> Bool) async throws {
        let config = current
        let (plan, routed, reason) = try await route(request, config)
        var passed: [String] = []
        var lastError: Error?
        var reopens: ContinuousClock.Instant?
        for d in plan {
            let policy = RetryPolicy(retries: d.retries ?? 0)
            let timeout: Duration? = d.timeoutSeconds.map { .milliseconds(Int64($0 * 1000)) } ?? (routed ? defaultTimeout : nil)
            var retry = 0
            attempts: while true {
                if Task.isCancelled { return }
                if routed, case .rejected(let at) = admit(d, settings: config.breakers[d.provider]) {
                    if let at { reopens = min(reopens ?? at, at) }
                    break attempts
                }
                let provider = config.providers[d.provider]
                let route = RouteInfo(deployment: d.key.description, fallbackFrom: passed, reason: reason)
                let outcome = if whole, let provider, provider.answersWhole {
                    await attemptWhole(d, provider: provider, request: request, timeout: timeout, route: route, announce: announce, emit: emit)
                } else {
                    await attempt(d, provider: provider, request: request, timeout: timeout, route: route, announce: announce, emit: emit)
                }
                switch outcome {
                case .completed:
                    report(d, routed: routed, .success)
                    return
                case .stopped:
                    report(d, routed: routed, .neutral)
                    return
                case .failedAfterFirstEvent(let error):
                    report(d, routed: routed, .failure)
                    throw error
                case .failedBeforeFirstEvent(let error):
                    switch Self.classify(error) {
                    case .final:
                        // The request itself was refused (or cancelled): the deployment is fine, others would refuse too.
                        report(d, routed: routed, error is CancellationError ? .neutral : .success)
                        throw routed ? error : withRoutedNames(error, config.registry)
                    case .failover(let retryable, let retryAfter):
                        report(d, routed: routed, .failure)
                        lastError = error
                        guard retryable, let wait = policy.delay(beforeRetry: retry + 1, retryAfter: retryAfter, random: random()) else { break attempts }
                        do { try await clock.sleep(wait) } catch { return }
                        retry += 1
                    }
                }
            }
            passed.append(d.key.description)
        }
        if let lastError {
            throw routed ? lastError : withRoutedNames(lastError, config.registry)
        }
        let seconds = reopens.map { max(1, Int(($0 - clock.now()).components.seconds) + 1) }
        throw CoreError.unavailable("every deployment of '\(request.model)' is cooling down after failures (\(passed.joined(separator: ", ")))",
                                    retryAfterSeconds: seconds)
    }

    /// An unknown local name: the error lists the routed names and aliases too.
    private func withRoutedNames(_ error: Error, _ registry: ModelRegistry) -> Error {
        guard case CoreError.unknownModel(let name, let available) = error else { return error }
        return CoreError.unknownModel(name, available: Array(Set(available + registry.routes.keys + registry.aliases.keys)).sorted())
    }

    enum Outcome {
        case completed
        /// The client went away.
        case stopped
        case failedBeforeFirstEvent(Error)
        case failedAfterFirstEvent(Error)
    }

    /// Runs one deployment that answers whole: the answer within `timeout`, its route announced, then its events
    /// passed to `emit`.
    private func attemptWhole(_ d: DeploymentDeclaration, provider: any Provider, request: ChatRequest, timeout: Duration?,
                              route: RouteInfo, announce: (RouteInfo) -> Void, emit: (ChatEvent) -> Bool) async -> Outcome {
        state.withLock { $0.inFlight[d.key, default: 0] += 1 }
        let began = ContinuousClock.now
        defer { state.withLock { $0.inFlight[d.key, default: 1] -= 1 } }
        var upstreamRequest = request
        upstreamRequest.model = d.model
        let answer: CompletedAnswer
        do {
            answer = try await provider.complete(upstreamRequest, timeout: timeout)
        } catch {
            if Task.isCancelled { return .stopped }
            if case CoreError.timeout = error, let timeout, ContinuousClock.now - began >= timeout {
                return .failedBeforeFirstEvent(CoreError.timeout("\(d.key) sent nothing for \(timeout)"))
            }
            return .failedBeforeFirstEvent(error)
        }
        guard !answer.events.isEmpty else { return .failedBeforeFirstEvent(CoreError.upstream("\(d.key) ended without an answer")) }
        recordLatency(d.key, ContinuousClock.now - began)
        announce(route)
        for e in answer.events { guard emit(e) else { return .stopped } }
        return .completed
    }

    /// Runs one deployment, forwarding its events to `emit` (its route announced once the first one arrives). A
    /// watchdog ends the attempt with `CoreError.timeout` when `timeout` passes without an event.
    private func attempt(_ d: DeploymentDeclaration, provider: (any Provider)?, request: ChatRequest, timeout: Duration?, route: RouteInfo,
                         announce: (RouteInfo) -> Void, emit: (ChatEvent) -> Bool) async -> Outcome {
        guard let provider else {
            return .failedBeforeFirstEvent(CoreError.upstream("no provider '\(d.provider)' is configured"))
        }
        state.withLock { $0.inFlight[d.key, default: 0] += 1 }
        let began = ContinuousClock.now
        defer { state.withLock { $0.inFlight[d.key, default: 1] -= 1 } }
        var upstreamRequest = request
        upstreamRequest.model = d.model
        let upstream = provider.chat(upstreamRequest)
        let (relay, relayIn) = AsyncThrowingStream<ChatEvent, Error>.makeStream()
        let lastEvent = Stamp()
        let forward = Task {
            do {
                for try await e in upstream.events {
                    lastEvent.touch()
                    relayIn.yield(e)
                }
                relayIn.finish()
            } catch {
                relayIn.finish(throwing: error)
            }
        }
        let watchdog: Task<Void, Never>? = timeout.map { limit in
            Task {
                while !Task.isCancelled {
                    let deadline = lastEvent.instant + limit
                    if ContinuousClock.now >= deadline {
                        relayIn.finish(throwing: CoreError.timeout("\(d.key) sent nothing for \(limit)"))
                        upstream.cancel()
                        return
                    }
                    try? await Task.sleep(until: deadline, clock: .continuous)
                }
            }
        }
        defer { watchdog?.cancel(); forward.cancel() }
        var started = false
        do {
            try await withTaskCancellationHandler {
                for try await e in relay {
                    if !started {
                        started = true
                        recordLatency(d.key, ContinuousClock.now - began)
                        announce(route)
                    }
                    guard emit(e) else { throw CancellationError() }
                }
            } onCancel: {
                upstream.cancel()
            }
        } catch {
            if Task.isCancelled || error is CancellationError && started { upstream.cancel(); return .stopped }
            return started ? .failedAfterFirstEvent(error) : .failedBeforeFirstEvent(error)
        }
        if Task.isCancelled { upstream.cancel(); return .stopped }
        return started ? .completed : .failedBeforeFirstEvent(CoreError.upstream("\(d.key) ended without an answer"))
    }

    enum Verdict { case success, failure, neutral }

    func admit(_ d: DeploymentDeclaration, settings: BreakerSettings?) -> CircuitBreaker<ContinuousClock.Instant>.Admission {
        let now = clock.now()
        let settings = settings ?? BreakerSettings()
        return state.withLock { s in
            var b = s.breakers[d.key] ?? CircuitBreaker(settings: settings)
            let admission = b.acquire(now: now)
            s.breakers[d.key] = b
            return admission
        }
    }

    private func recordLatency(_ key: DeploymentKey, _ elapsed: Duration) {
        let c = elapsed.components
        let seconds = Double(c.seconds) + Double(c.attoseconds) / 1e18
        state.withLock { s in
            let a = Self.latencySmoothing
            s.latency[key] = s.latency[key].map { a * seconds + (1 - a) * $0 } ?? seconds
        }
    }

    func report(_ d: DeploymentDeclaration, routed: Bool, _ verdict: Verdict) {
        guard routed else { return }
        let now = clock.now()
        let settings = current.breakers[d.provider] ?? BreakerSettings()
        let transition = state.withLock { s -> CircuitBreaker<ContinuousClock.Instant>.Transition in
            guard var b = s.breakers[d.key] else { return .none }
            defer { s.breakers[d.key] = b }
            switch verdict {
            case .success: return b.succeeded(now: now)
            case .failure: return b.failed(now: now)
            case .neutral: b.release(); return .none
            }
        }
        switch transition {
        case .opened: log("circuit of \(d.key) opened after \(settings.failures) failures within \(settings.window); next try in \(settings.cooldown)")
        case .closed: log("circuit of \(d.key) closed: the probe request succeeded")
        case .none: break
        }
    }

    enum Classification: Equatable {
        /// About the request itself: return it to the client.
        case final
        /// About the deployment: try the next one; `retryable` failures may first be retried after a wait.
        case failover(retryable: Bool, retryAfter: Duration?)
    }

    static func classify(_ error: Error) -> Classification {
        if error is RoutingError { return .final }
        guard let e = error as? CoreError else { return error is CancellationError ? .final : .failover(retryable: false, retryAfter: nil) }
        switch e {
        case .badRequest, .contextTooLong, .contextLengthExceeded: return .final
        case .unknownModel, .modelLoadFailed, .auth, .engine: return .failover(retryable: false, retryAfter: nil)
        case .overloaded(let r), .rateLimited(_, let r), .unavailable(_, let r):
            return .failover(retryable: true, retryAfter: r.map { .seconds($0) })
        case .upstream, .upstreamDown, .timeout: return .failover(retryable: true, retryAfter: nil)
        }
    }
}

/// When the last event arrived (read by a deployment's watchdog).
private final class Stamp: Sendable {
    private let time = Mutex(ContinuousClock.now)
    var instant: ContinuousClock.Instant { time.withLock { $0 } }
    func touch() { time.withLock { $0 = .now } }
}
