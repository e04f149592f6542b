import Core
import Registry
import Foundation
import Synchronization

/// Background checks of the remote providers: every `interval`, each is asked for its model list (`GET /models`,
/// `/api/tags`…) with a `timeout`; the answer's time and any error are kept for `/api/v1/health` and `switchyard ps`,
/// so a dead upstream shows as `down` before a request finds out. Probing does not route: breakers still decide.
/// A change of a provider's state (up ↔ down) is logged once.
public final class HealthProber: Sendable {
    public struct Result: Sendable, Equatable {
        public var up: Bool
        /// Seconds the check took.
        public var latency: Double
        public var checkedAt: Date
        public var error: String?
        /// The models the provider listed (an Ollama upstream's pulled models, for instance).
        public var models: [String]
    }

    public let interval: Duration
    public let timeout: Duration
    private let log: @Sendable (String) -> Void
    private let results = Mutex<[ProviderID: Result]>([:])

    public init(interval: Duration = .seconds(30), timeout: Duration = .seconds(5), log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.interval = interval
        self.timeout = timeout
        self.log = log
    }

    /// The last check of `provider`, if any.
    public func result(_ provider: ProviderID) -> Result? { results.withLock { $0[provider] } }

    /// Checks each of `providers` once (by name; `local`, the engine, has its own health), concurrently; returns
    /// when all have answered or timed out.
    public func probeOnce(_ providers: [ProviderID: any Provider]) async {
        await withTaskGroup(of: (ProviderID, Result).self) { group in
            for (name, provider) in providers where !name.isLocal {
                group.addTask { [timeout] in (name, await Self.check(provider, timeout: timeout)) }
            }
            for await (name, result) in group {
                let before = results.withLock { table in
                    defer { table[name] = result }
                    return table[name]
                }
                if before?.up != result.up {
                    if result.up {
                        if before != nil { log("provider \(name) is up again (\(Int(result.latency * 1000)) ms)") }
                    } else {
                        log("provider \(name) is down: \(result.error ?? "no answer")")
                    }
                }
            }
        }
    }

    static func check(_ provider: any Provider, timeout: Duration) async -> Result {
        let start = ContinuousClock.now
        let outcome: Swift.Result<[ModelInfo], any Error> = await withTaskGroup(of: Swift.Result<[ModelInfo], any Error>?.self) { group in
            group.addTask {
                do { return .success(try await provider.models()) } catch { return .failure(error) }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? .failure(CoreError.timeout("no answer to the health check within \(timeout)"))
        }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        switch outcome {
        case .success(let models):
            return Result(up: true, latency: seconds, checkedAt: Date(), error: nil, models: models.map(\.name))
        case .failure(let error):
            return Result(up: false, latency: seconds, checkedAt: Date(), error: "\(error)", models: [])
        }
    }
}
