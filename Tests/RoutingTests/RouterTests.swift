import Core
import Registry
@testable import Routing
import Synchronization
import Testing

/// A provider that answers from a script: events, an error before or after some events, or nothing at all.
final class ScriptedProvider: Provider {
    enum Step: Sendable {
        case answer([ChatEvent])
        case fail(Error)
        case failAfter([ChatEvent], Error)
        case hang
    }
    let name: String
    private let steps: Mutex<[Step]>
    private let fallback: Step
    private let seen = Mutex<[String]>([])

    /// Plays `steps` in turn, then `then` for every further request.
    init(_ name: String, _ steps: [Step] = [], then fallback: Step = .answer(ScriptedProvider.reply("ok"))) {
        self.name = name; self.steps = Mutex(steps); self.fallback = fallback
    }

    static func reply(_ text: String) -> [ChatEvent] {
        [.text(text, nil), .finished(.stop), .usage(Usage(promptTokens: 3, completionTokens: 1))]
    }

    var calls: [String] { seen.withLock { $0 } }

    func models() async throws -> [ModelInfo] { [ModelInfo(name: "m", provider: name)] }

    func chat(_ request: ChatRequest) -> ChatStream {
        seen.withLock { $0.append(request.model) }
        let step = steps.withLock { $0.isEmpty ? fallback : $0.removeFirst() }
        let (stream, c) = AsyncThrowingStream<ChatEvent, Error>.makeStream()
        switch step {
        case .answer(let events): for e in events { c.yield(e) }; c.finish()
        case .fail(let error): c.finish(throwing: error)
        case .failAfter(let events, let error): for e in events { c.yield(e) }; c.finish(throwing: error)
        case .hang: break   // finished when the consumer cancels
        }
        return ChatStream(events: stream, cancel: { c.finish() })
    }
}

/// Time that moves only when told; sleeps are recorded and return at once.
final class ManualClock: Sendable {
    let base = ContinuousClock.now
    private let offset = Mutex<Duration>(.zero)
    private let sleeps = Mutex<[Duration]>([])
    var slept: [Duration] { sleeps.withLock { $0 } }
    func advance(_ d: Duration) { offset.withLock { $0 += d } }
    var clock: RouterClock {
        RouterClock(now: { [self] in base + offset.withLock { $0 } }, sleep: { [self] d in sleeps.withLock { $0.append(d) } })
    }
}

@Suite struct RouterTests {
    let up = DeploymentDeclaration(provider: "up", model: "small")
    let local = DeploymentDeclaration(provider: "local", model: "tiny")

    func router(_ providers: [any Provider], routes: [RouteDeclaration], clock: ManualClock = ManualClock(),
                breaker: BreakerSettings = BreakerSettings()) -> Router {
        Router(routes: Dictionary(uniqueKeysWithValues: routes.map { ($0.name, $0) }),
               providers: Dictionary(uniqueKeysWithValues: providers.map { (ProviderID($0.name), $0) }),
               breakers: ["up": breaker], clock: clock.clock, random: { 1 })
    }

    /// Reads a stream to its end: the events, and the error it ended with.
    func drain(_ s: ChatStream) async -> ([ChatEvent], Error?) {
        var events: [ChatEvent] = []
        do {
            for try await e in s.events { events.append(e) }
            return (events, nil)
        } catch {
            return (events, error)
        }
    }

    /// `drain`, and where the router said the answer is served.
    func drained(_ s: ChatStream) async -> ([ChatEvent], Error?, RouteInfo?) {
        let (events, error) = await drain(s)
        return (events, error, s.route)
    }

    func request(_ model: String = "fast") -> ChatRequest { ChatRequest(model: model, messages: [ChatMessage(role: .user, content: "hi")]) }

    @Test func theFirstDeploymentAnswersWithItsRoute() async {
        let upstream = ScriptedProvider("up"), engine = ScriptedProvider("local")
        let r = router([upstream, engine], routes: [RouteDeclaration(name: "fast", deployments: [up, local])])
        let (events, error, route) = await drained(r.chat(request()))
        #expect(error == nil)
        #expect(route == RouteInfo(deployment: "up/small") && events == ScriptedProvider.reply("ok"))
        #expect(upstream.calls == ["small"] && engine.calls.isEmpty)
    }

    @Test(arguments: [
        CoreError.upstreamDown("connection refused"), .upstream("HTTP 500: boom"), .rateLimited("slow down", retryAfterSeconds: 1),
        .unavailable("busy", retryAfterSeconds: nil), .timeout("nothing"), .auth("bad key"),
    ])
    func failuresBeforeTheFirstEventFallBack(_ failure: CoreError) async {
        let upstream = ScriptedProvider("up", [.fail(failure)]), engine = ScriptedProvider("local", then: .answer(ScriptedProvider.reply("local")))
        let r = router([upstream, engine], routes: [RouteDeclaration(name: "fast", deployments: [up, local])])
        let (events, error, route) = await drained(r.chat(request()))
        #expect(error == nil)
        #expect(route == RouteInfo(deployment: "local/tiny", fallbackFrom: ["up/small"]))
        #expect(events.first == .text("local", nil))
        #expect(engine.calls == ["tiny"])
    }

    @Test func aFailureAfterTheFirstEventEndsTheStreamWithTheError() async {
        let upstream = ScriptedProvider("up", [.failAfter([.text("Hel", nil)], CoreError.upstreamDown("connection reset"))])
        let engine = ScriptedProvider("local")
        let r = router([upstream, engine], routes: [RouteDeclaration(name: "fast", deployments: [up, local])])
        let (events, error, route) = await drained(r.chat(request()))
        #expect(route == RouteInfo(deployment: "up/small") && events == [.text("Hel", nil)])
        #expect(error as? CoreError == .upstreamDown("connection reset"))
        #expect(engine.calls.isEmpty)
    }

    @Test func aBadRequestIsAnsweredNotFallenBack() async {
        let upstream = ScriptedProvider("up", [.fail(CoreError.badRequest("messages must not be empty"))]), engine = ScriptedProvider("local")
        let r = router([upstream, engine], routes: [RouteDeclaration(name: "fast", deployments: [up, local])])
        let (events, error) = await drain(r.chat(request()))
        #expect(events.isEmpty && error as? CoreError == .badRequest("messages must not be empty"))
        #expect(engine.calls.isEmpty)
    }

    @Test func retriesWaitForRetryAfterThenSucceed() async {
        var retried = up
        retried.retries = 2
        let upstream = ScriptedProvider("up", [.fail(CoreError.rateLimited("slow down", retryAfterSeconds: 2)), .fail(CoreError.upstream("HTTP 502"))])
        let clock = ManualClock()
        let r = router([upstream, ScriptedProvider("local")], routes: [RouteDeclaration(name: "fast", deployments: [retried, local])], clock: clock)
        let (_, error, route) = await drained(r.chat(request()))
        #expect(error == nil && route == RouteInfo(deployment: "up/small"))
        #expect(upstream.calls.count == 3)
        // Retry-After 2 s, then the second backoff step (500 ms with random = 1).
        #expect(clock.slept == [.seconds(2), .milliseconds(500)])
    }

    /// Without the timeout the hanging deployment would never answer: the time limit fails the test then (generous:
    /// a loaded machine may schedule the test late; a hang is forever).
    @Test(.timeLimit(.minutes(5))) func aHangingDeploymentTimesOutAndFallsBack() async {
        var slow = up
        slow.timeoutSeconds = 0.2
        let r = router([ScriptedProvider("up", [.hang]), ScriptedProvider("local")],
                       routes: [RouteDeclaration(name: "fast", deployments: [slow, local])])
        let (_, error, route) = await drained(r.chat(request()))
        #expect(error == nil && route == RouteInfo(deployment: "local/tiny", fallbackFrom: ["up/small"]))
    }

    @Test func lowestLatencyLearnsFromAnswers() async {
        let r = router([ScriptedProvider("up"), ScriptedProvider("local")],
                       routes: [RouteDeclaration(name: "fast", deployments: [up, local], strategy: .lowestLatency)])
        // neither is measured: the first as written answers and is measured; then the unmeasured one goes first
        _ = await drain(r.chat(request()))
        #expect(r.latency("up/small") != nil && r.latency("local/tiny") == nil)
        let (_, _, route) = await drained(r.chat(request()))
        #expect(route == RouteInfo(deployment: "local/tiny"))
        #expect(r.latency("local/tiny") != nil)
    }

    @Test func fallbacksNameOtherModels() async {
        let other = DeploymentDeclaration(provider: "other", model: "big")
        let r = router([ScriptedProvider("up", [.fail(CoreError.upstreamDown("refused"))]), ScriptedProvider("other"), ScriptedProvider("local")],
                       routes: [RouteDeclaration(name: "fast", deployments: [up], fallbacks: ["smart", "tiny"]),
                                RouteDeclaration(name: "smart", deployments: [other], fallbacks: ["fast"])])
        #expect(r.plan(for: "fast")?.map(\.key) == ["up/small", "other/big", "local/tiny"])
        let (_, _, route) = await drained(r.chat(request()))
        #expect(route == RouteInfo(deployment: "other/big", fallbackFrom: ["up/small"]))
    }

    @Test func theBreakerOpensSkipsTheDeploymentAndClosesAfterAProbe() async {
        let clock = ManualClock()
        let upstream = ScriptedProvider("up", [.fail(CoreError.upstream("HTTP 500")), .fail(CoreError.upstream("HTTP 500"))])
        let r = router([upstream, ScriptedProvider("local")], routes: [RouteDeclaration(name: "fast", deployments: [up, local])],
                       clock: clock, breaker: BreakerSettings(failures: 2, window: .seconds(60), cooldown: .seconds(30)))
        for _ in 0..<2 { _ = await drain(r.chat(request())) }
        #expect(upstream.calls.count == 2)
        guard case .open = r.circuit("up/small") else { Issue.record("expected an open circuit, found \(String(describing: r.circuit("up/small")))"); return }

        let (_, _, skippedRoute) = await drained(r.chat(request()))
        #expect(upstream.calls.count == 2)   // not asked while open
        #expect(skippedRoute == RouteInfo(deployment: "local/tiny", fallbackFrom: ["up/small"]))

        clock.advance(.seconds(31))
        let (_, _, probedRoute) = await drained(r.chat(request()))
        #expect(upstream.calls.count == 3)
        #expect(probedRoute == RouteInfo(deployment: "up/small"))
        #expect(r.circuit("up/small") == .closed(failures: []))
    }

    @Test func everyCircuitOpenAnswersUnavailableWithRetryAfter() async {
        let clock = ManualClock()
        let r = router([ScriptedProvider("up", then: .fail(CoreError.upstreamDown("refused")))],
                       routes: [RouteDeclaration(name: "fast", deployments: [up])], clock: clock,
                       breaker: BreakerSettings(failures: 1, window: .seconds(60), cooldown: .seconds(30)))
        let (_, first) = await drain(r.chat(request()))
        #expect(first as? CoreError == .upstreamDown("refused"))
        let (_, second) = await drain(r.chat(request()))
        guard case .unavailable(_, let after) = second as? CoreError else { Issue.record("expected unavailable, got \(String(describing: second))"); return }
        #expect(after == 31)
    }

    @Test func unroutedNamesGoToTheLocalEngineAndUnknownOnesListRoutes() async throws {
        let engine = ScriptedProvider("local", [.answer(ScriptedProvider.reply("x")), .fail(CoreError.unknownModel("nope", available: ["tiny"]))])
        let r = router([engine], routes: [RouteDeclaration(name: "fast", deployments: [up])])
        let (_, _, route) = await drained(r.chat(request("tiny")))
        #expect(route == RouteInfo(deployment: "local/tiny"))
        let (_, error) = await drain(r.chat(request("nope")))
        #expect(error as? CoreError == .unknownModel("nope", available: ["fast", "tiny"]))
        #expect(try await r.models().map(\.name) == ["m", "fast"])
    }

    @Test func roundRobinSpreadsRequests() async {
        let a = ScriptedProvider("a"), b = ScriptedProvider("b")
        let r = router([a, b], routes: [RouteDeclaration(name: "fast", deployments: [.init(provider: "a", model: "m"), .init(provider: "b", model: "m")],
                                                         strategy: .roundRobin)])
        for _ in 0..<4 { _ = await drain(r.chat(request())) }
        #expect(a.calls.count == 2 && b.calls.count == 2)
    }
}
