import Registry

/// A deployment's circuit breaker, as a state machine with no clock and no I/O: callers pass `now`.
///
/// closed → (`failures` failures within `window`) → open → (`cooldown` passes) → half-open: one probe request is
/// let through → its success closes the circuit, its failure opens it again for another cooldown.
public struct CircuitBreaker<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration {
    public enum State: Sendable, Equatable {
        /// Serving; the times of recent failures (within the window).
        case closed(failures: [Instant])
        /// Refusing until the instant given.
        case open(until: Instant)
        /// Cooldown over: one probe may go (or is in flight).
        case halfOpen(probing: Bool)
    }

    /// What a request may do.
    public enum Admission: Sendable, Equatable {
        case allowed
        /// Allowed as the half-open probe: report its outcome, or `release` it.
        case probe
        /// Refused: the circuit is open (or a probe is already in flight); worth asking again at `retryAt`.
        case rejected(retryAt: Instant?)
    }

    /// What changed, for logs and health.
    public enum Transition: Sendable, Equatable {
        case none
        case opened(until: Instant)
        case closed
    }

    public let settings: BreakerSettings
    public private(set) var state: State = .closed(failures: [])

    public init(settings: BreakerSettings) { self.settings = settings }

    /// Asks to send a request now.
    public mutating func acquire(now: Instant) -> Admission {
        switch state {
        case .closed: return .allowed
        case .open(let until):
            guard now >= until else { return .rejected(retryAt: until) }
            state = .halfOpen(probing: true)
            return .probe
        case .halfOpen(let probing):
            if probing { return .rejected(retryAt: nil) }
            state = .halfOpen(probing: true)
            return .probe
        }
    }

    /// The deployment answered.
    public mutating func succeeded(now: Instant) -> Transition {
        switch state {
        case .closed: state = .closed(failures: []); return .none
        case .halfOpen: state = .closed(failures: []); return .closed
        case .open: return .none   // an answer from a request admitted before the circuit opened
        }
    }

    /// The deployment failed (refused, 5xx, 429, timed out).
    public mutating func failed(now: Instant) -> Transition {
        switch state {
        case .closed(let failures):
            let recent = failures.filter { $0.duration(to: now) < settings.window } + [now]
            if recent.count >= settings.failures {
                let until = now.advanced(by: settings.cooldown)
                state = .open(until: until)
                return .opened(until: until)
            }
            state = .closed(failures: recent)
            return .none
        case .halfOpen:
            let until = now.advanced(by: settings.cooldown)
            state = .open(until: until)
            return .opened(until: until)
        case .open:
            return .none
        }
    }

    /// A request admitted as the probe ended without telling anything (cancelled, or refused as a bad request):
    /// the next request may probe.
    public mutating func release() {
        if case .halfOpen = state { state = .halfOpen(probing: false) }
    }
}
