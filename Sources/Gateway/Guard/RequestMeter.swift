import Core
import Foundation
import Synchronization

/// What one request did, as usage accounting needs it: filled by `StartedCompletion` (route, first token, token
/// counts) while the guard middleware, which made it, waits to write the usage record.
///
/// The middleware hands it down as a task-local (`RequestMeter.current`), so the surfaces need no new parameter;
/// a completion started without one (no guard, or tests of the surfaces alone) records nothing.
final class RequestMeter: Sendable {
    struct Reading: Sendable {
        var deployment: String?
        var promptTokens = 0
        var completionTokens = 0
        var firstToken: ContinuousClock.Instant?
    }

    @TaskLocal static var current: RequestMeter?

    let started = ContinuousClock.now
    private let state = Mutex(Reading())

    func route(_ route: RouteInfo) { state.withLock { $0.deployment = route.deployment } }
    /// The first token arrived `at` (now by default).
    func firstToken(at: ContinuousClock.Instant = .now) { state.withLock { if $0.firstToken == nil { $0.firstToken = at } } }
    func usage(_ usage: Usage) {
        state.withLock { $0.promptTokens = usage.promptTokens; $0.completionTokens = usage.completionTokens }
    }

    var reading: Reading { state.withLock { $0 } }
}

extension Duration {
    /// Milliseconds as a Double.
    var milliseconds: Double {
        Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15
    }
}
