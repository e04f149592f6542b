import Core
import Registry
@testable import Routing
import Testing

@Suite struct RetryPolicyTests {
    let policy = RetryPolicy(retries: 4, baseDelay: .milliseconds(250), maxDelay: .seconds(1), maxRetryAfter: .seconds(10))

    @Test func backoffDoublesUpToTheCap() {
        let full = (1...4).map { policy.delay(beforeRetry: $0, retryAfter: nil, random: 1) }
        #expect(full == [.milliseconds(250), .milliseconds(500), .seconds(1), .seconds(1)])
    }

    @Test func jitterKeepsBetweenHalfAndAllOfTheStep() {
        #expect(policy.delay(beforeRetry: 2, retryAfter: nil, random: 0) == .milliseconds(250))
        #expect(policy.delay(beforeRetry: 2, retryAfter: nil, random: 0.5) == .milliseconds(375))
        #expect(policy.delay(beforeRetry: 2, retryAfter: nil, random: 7) == .milliseconds(500))   // clamped
    }

    @Test func noDelayPastTheRetries() {
        #expect(policy.delay(beforeRetry: 5, retryAfter: nil, random: 0.5) == nil)
        #expect(policy.delay(beforeRetry: 0, retryAfter: nil, random: 0.5) == nil)
        #expect(RetryPolicy(retries: 0).delay(beforeRetry: 1, retryAfter: nil, random: 0.5) == nil)
    }

    @Test func retryAfterIsHonouredAndALongOneIsNotWaitedFor() {
        #expect(policy.delay(beforeRetry: 1, retryAfter: .seconds(2), random: 1) == .seconds(2))
        #expect(policy.delay(beforeRetry: 3, retryAfter: .milliseconds(100), random: 1) == .seconds(1))   // never less than the backoff
        #expect(policy.delay(beforeRetry: 1, retryAfter: .seconds(11), random: 1) == nil)
    }
}

@Suite struct StrategyTests {
    let ds = ["a/m", "b/m", "c/m"].map { DeploymentDeclaration(provider: ProviderID(String($0.prefix(1))), model: "m") }

    @Test func orderedKeepsTheWrittenOrder() {
        #expect(RoutingStrategy.ordered.order(ds, turn: 5, inFlight: ["a/m": 9]).map(\.key) == ["a/m", "b/m", "c/m"])
    }

    @Test func roundRobinStartsOneFurtherEachTurn() {
        let firsts = (0..<4).map { RoutingStrategy.roundRobin.order(ds, turn: $0, inFlight: [:]).map(\.key) }
        #expect(firsts == [["a/m", "b/m", "c/m"], ["b/m", "c/m", "a/m"], ["c/m", "a/m", "b/m"], ["a/m", "b/m", "c/m"]])
    }

    @Test func leastBusyPutsTheIdlestFirstAndBreaksTiesInOrder() {
        #expect(RoutingStrategy.leastBusy.order(ds, turn: 0, inFlight: ["a/m": 2, "b/m": 1]).map(\.key) == ["c/m", "b/m", "a/m"])
        #expect(RoutingStrategy.leastBusy.order(ds, turn: 0, inFlight: ["a/m": 1, "b/m": 0]).map(\.key) == ["b/m", "c/m", "a/m"])
    }

    @Test func lowestLatencyMeasuresUnknownDeploymentsFirstThenPrefersTheFastest() {
        let s = RoutingStrategy.lowestLatency
        #expect(s.order(ds, turn: 0, inFlight: [:], latency: ["a/m": 0.5, "b/m": 0.1]).map(\.key) == ["c/m", "b/m", "a/m"])
        #expect(s.order(ds, turn: 0, inFlight: [:], latency: ["a/m": 0.5, "b/m": 0.1, "c/m": 0.3]).map(\.key) == ["b/m", "c/m", "a/m"])
    }

    @Test func weightedDrawsTheFirstInProportionToWeight() {
        var weighted = ds
        weighted[0].weight = 1; weighted[1].weight = 3   // c: default 1 → shares 1/5, 3/5, 1/5
        let s = RoutingStrategy.weighted
        #expect(s.order(weighted, turn: 0, inFlight: [:], random: 0.1).map(\.key) == ["a/m", "b/m", "c/m"])
        #expect(s.order(weighted, turn: 0, inFlight: [:], random: 0.5).map(\.key) == ["b/m", "a/m", "c/m"])
        #expect(s.order(weighted, turn: 0, inFlight: [:], random: 0.9).map(\.key) == ["c/m", "a/m", "b/m"])
        // over an even spread of draws, first picks follow the weights
        var firsts: [DeploymentKey: Int] = [:]
        for i in 0..<1000 { firsts[s.order(weighted, turn: 0, inFlight: [:], random: (Double(i) + 0.5) / 1000)[0].key, default: 0] += 1 }
        #expect(firsts == ["a/m": 200, "b/m": 600, "c/m": 200])
    }
}
