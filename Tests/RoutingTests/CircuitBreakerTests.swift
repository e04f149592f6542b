import Registry
@testable import Routing
import Testing

/// The breaker as a pure state machine: instants are passed in, nothing sleeps.
@Suite struct CircuitBreakerTests {
    typealias Breaker = CircuitBreaker<ContinuousClock.Instant>
    let t0 = ContinuousClock.now
    let settings = BreakerSettings(failures: 3, window: .seconds(10), cooldown: .seconds(30))

    @Test func opensAfterEnoughFailuresWithinTheWindow() {
        var b = Breaker(settings: settings)
        #expect(b.failed(now: t0) == .none)
        #expect(b.failed(now: t0 + .seconds(1)) == .none)
        #expect(b.acquire(now: t0 + .seconds(1)) == .allowed)
        #expect(b.failed(now: t0 + .seconds(2)) == .opened(until: t0 + .seconds(32)))
        #expect(b.acquire(now: t0 + .seconds(5)) == .rejected(retryAt: t0 + .seconds(32)))
        #expect(b.acquire(now: t0 + .seconds(31)) == .rejected(retryAt: t0 + .seconds(32)))
    }

    @Test func failuresOutsideTheWindowAreForgotten() {
        var b = Breaker(settings: settings)
        for s in [0, 6, 12, 18, 24] { #expect(b.failed(now: t0 + .seconds(s)) == .none) }
        #expect(b.acquire(now: t0 + .seconds(25)) == .allowed)
        #expect(b.state == .closed(failures: [t0 + .seconds(18), t0 + .seconds(24)]))
    }

    @Test func successInTheClosedStateClearsFailures() {
        var b = Breaker(settings: settings)
        _ = b.failed(now: t0)
        _ = b.failed(now: t0 + .seconds(1))
        #expect(b.succeeded(now: t0 + .seconds(2)) == .none)
        #expect(b.failed(now: t0 + .seconds(3)) == .none)
        #expect(b.state == .closed(failures: [t0 + .seconds(3)]))
    }

    func opened() -> Breaker {
        var b = Breaker(settings: settings)
        for s in 0..<3 { _ = b.failed(now: t0 + .seconds(s)) }
        return b
    }

    @Test func afterTheCooldownOneProbeGoesAndItsSuccessCloses() {
        var b = opened()
        let later = t0 + .seconds(32)
        #expect(b.acquire(now: later) == .probe)
        #expect(b.acquire(now: later) == .rejected(retryAt: nil))   // one probe at a time
        #expect(b.succeeded(now: later + .seconds(1)) == .closed)
        #expect(b.acquire(now: later + .seconds(1)) == .allowed)
        #expect(b.state == .closed(failures: []))
    }

    @Test func aFailedProbeOpensForAnotherCooldown() {
        var b = opened()
        let later = t0 + .seconds(40)
        #expect(b.acquire(now: later) == .probe)
        #expect(b.failed(now: later) == .opened(until: later + .seconds(30)))
        #expect(b.acquire(now: later + .seconds(29)) == .rejected(retryAt: later + .seconds(30)))
        #expect(b.acquire(now: later + .seconds(30)) == .probe)
    }

    @Test func aReleasedProbeLetsTheNextRequestProbe() {
        var b = opened()
        let later = t0 + .seconds(32)
        #expect(b.acquire(now: later) == .probe)
        b.release()
        #expect(b.state == .halfOpen(probing: false))
        #expect(b.acquire(now: later) == .probe)
    }

    @Test func lateAnswersWhileOpenChangeNothing() {
        var b = opened()
        #expect(b.succeeded(now: t0 + .seconds(3)) == .none)
        #expect(b.failed(now: t0 + .seconds(3)) == .none)
        #expect(b.state == .open(until: t0 + .seconds(32)))
    }
}
