import Core
import Foundation
import Registry
@testable import Routing
import Synchronization
import Testing

/// Aliases, roles, `auto` and local-only, as the router resolves and plans them.
@Suite struct ResolveTests {
    func registry(_ yaml: String) throws -> ModelRegistry {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sy-resolve-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try yaml.write(to: dir.appendingPathComponent("models.yaml"), atomically: true, encoding: .utf8)
        return try ModelRegistry.load(directory: dir)
    }

    static let config = """
        providers:
          up: { type: openai-compatible, base_url: http://127.0.0.1:9001/v1, breaker: { failures: 1, window: 60s, cooldown: 30s } }
          box: { type: ollama, local: true }
        models:
          smollm2: { catalogue: smollm2, context: 8192, tools: true, memory: 300M, aliases: [small] }
          fast: { deployments: [ up/smollm2, local/smollm2 ], context: 4096 }
          smart: { model: up/big, context: 128000, tools: true, fallbacks: [fast] }
          boxed: { model: box/qwen, context: 32768, tools: true }
          gemma: { catalogue: gemma3-270m, context: 32768, tools: true }
          remote: { model: up/only }
        aliases:
          gpt-4o: smart
          best: gpt-4o
          coder: role:coder
        roles:
          coder:
            prefer: [smart, fast, smollm2]
            requires: { context: 8192, tools: true, local_only: true, max_memory: 4G }
          big: { prefer: [fast, gemma, boxed], requires: { context: 16000, max_memory: 1G } }
          any: [smart, fast]
        """

    func request(_ model: String, _ text: String = "hi", task: String? = nil, localOnly: Bool = false) -> ChatRequest {
        var r = ChatRequest(model: model, messages: [ChatMessage(role: .user, content: text)])
        r.hints = RequestHints(task: task, taskSource: task.map { _ in "x-switchyard-task header" }, localOnly: localOnly)
        return r
    }

    @Test func aliasesResolveToTheModelWithAReason() throws {
        let r = try registry(Self.config)
        #expect(try r.resolve(request("best")) == Resolution(models: ["smart"], reason: "alias best -> gpt-4o; alias gpt-4o -> smart"))
        #expect(try r.resolve(request("small")) == Resolution(models: ["smollm2"], reason: "alias small -> smollm2"))
        #expect(try r.resolve(request("smart")) == Resolution(models: ["smart"]))
        #expect(try r.resolve(request("unknown-name")) == Resolution(models: ["unknown-name"]))
    }

    @Test func aRoleChoosesTheFirstModelThatMeetsItsRequirements() throws {
        let r = try registry(Self.config)
        let coder = try r.resolve(request("role:coder"))
        #expect(coder.models == ["smollm2"] && coder.localOnly && !coder.withFallbacks && coder.role == "coder")
        #expect(coder.reason == "role=coder -> smollm2 (passed over smart: no local deployment; fast: context 4096 < 8192, tool support not declared)")
        // Through an alias, and the rest that qualify follow as fallbacks.
        let any = try r.resolve(request("role:any"))
        #expect(any.models == ["smart", "fast"] && !any.localOnly && any.reason == "role=any -> smart")
        #expect(try r.resolve(request("coder")).reason?.hasPrefix("alias coder -> role:coder; role=coder -> smollm2") == true)
    }

    @Test func memoryComesFromTheDeclarationOrTheModelFile() throws {
        let r = try registry(Self.config)
        // gemma's memory is not declared: unknown without the host's estimate, too big with it; boxed runs outside the engine.
        let unknown = try r.resolve(request("role:big"))
        #expect(unknown.models == ["boxed"])
        #expect(unknown.reason?.contains("gemma: memory use unknown") == true)
        #expect(unknown.reason?.contains("fast: context 4096 < 16000") == true)
        let estimated = try r.resolve(request("role:big"), localMemory: { $0 == "gemma3-270m" ? 2 << 30 : nil })
        #expect(estimated.reason?.contains("gemma: needs 2G > 1G") == true)
        let fits = try r.resolve(request("role:big"), localMemory: { $0 == "gemma3-270m" ? 400 << 20 : nil })
        #expect(fits.models == ["gemma", "boxed"])
    }

    @Test func anUnmetRoleSaysWhyEachCandidateWasPassedOver() throws {
        let r = try registry(Self.config)
        // A local-only request passes over what has no local deployment.
        #expect(try r.resolve(request("role:any", localOnly: true)).models == ["fast"])
        let strict = try registry(Self.config + "\n  strict: { prefer: [smart, fast], requires: { context: 200000, tools: true } }\n")
        #expect(throws: RoutingError.roleUnmet(role: "strict", requirements: "context >= 200000, tools", passedOver: [
            .init(model: "smart", reasons: ["context 128000 < 200000"]),
            .init(model: "fast", reasons: ["context 4096 < 200000", "tool support not declared"]),
        ])) { try strict.resolve(request("role:strict")) }
        #expect(throws: CoreError.unknownModel("role:nobody", available: ["role:any", "role:big", "role:coder", "boxed", "fast", "remote", "smart"])) {
            try r.resolve(request("role:nobody"))
        }
    }

    @Test func autoFollowsTheTaskAndTheRules() throws {
        let rules = try registry(Self.config + "\nrouting:\n  auto: { code: role:coder, general: smart, default: fast }\n")
        let code = try rules.resolve(request("auto", "```py\nprint(1)\n```"))
        #expect(code.models == ["smollm2"])
        #expect(code.reason == "task=code (fenced code block); routing.auto.code -> role:coder; role=coder -> smollm2 (passed over smart: no local deployment; fast: context 4096 < 8192, tool support not declared)")
        #expect(try rules.resolve(request("auto", "What is the capital of France?")) ==
                Resolution(models: ["smart"], reason: "task=general (no code signals); routing.auto.general -> smart"))
        #expect(try rules.resolve(request("auto", "Fix this bug please", task: "general")).models == ["smart"])
        #expect(try rules.resolve(request("auto", task: "summarize")) ==
                Resolution(models: ["fast"], reason: "task=summarize (x-switchyard-task header); routing.auto.default -> fast"))

        // Without rules: code to the first model served locally, the rest to the first served remotely.
        let plain = try registry(Self.config)
        #expect(try plain.resolve(request("auto", "Please refactor this function")).reason ==
                "task=code (asks to \"refactor\"); default -> first local model smollm2")
        #expect(try plain.resolve(request("auto", "Hello there")) ==
                Resolution(models: ["fast"], reason: "task=general (no code signals); default -> first remote model fast"))
        #expect(try plain.resolve(request("auto", "Hello there", localOnly: true)).models == ["smollm2"])
        // Nothing configured: the local engine's first model.
        #expect(try ModelRegistry().resolve(request("auto"), discovered: ["tiny"]).models == ["tiny"])
        #expect(throws: CoreError.self) { try ModelRegistry().resolve(request("auto")) }
    }
}

/// The router with the resolution in front: local-only plans, roles and circuits, profile switches.
@Suite struct RouterResolutionTests {
    func router(_ registry: ModelRegistry, _ providers: [any Provider], clock: ManualClock = ManualClock()) -> Router {
        Router(Router.Configuration(registry: registry, providers: Dictionary(uniqueKeysWithValues: providers.map { (ProviderID($0.name), $0) })),
               clock: clock.clock, random: { 1 })
    }

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

    func request(_ model: String, localOnly: Bool = false) -> ChatRequest {
        var r = ChatRequest(model: model, messages: [ChatMessage(role: .user, content: "hi")])
        r.hints.localOnly = localOnly
        return r
    }

    @Test func localOnlyKeepsOnlyLocalDeployments() async throws {
        let r = try ResolveTests().registry(ResolveTests.config)
        let up = ScriptedProvider("up"), local = ScriptedProvider("local"), box = ScriptedProvider("box")
        let rt = router(r, [up, local, box])
        #expect(rt.plan(for: "smart")?.map(\.key) == ["up/big", "up/smollm2", "local/smollm2"])
        let (_, _, mixedRoute) = await drained(rt.chat(request("smart", localOnly: true)))
        #expect(mixedRoute == RouteInfo(deployment: "local/smollm2"))   // smart's fallback fast, its local deployment
        let (_, _, boxedRoute) = await drained(rt.chat(request("boxed", localOnly: true)))
        #expect(boxedRoute == RouteInfo(deployment: "box/qwen"))
        let (_, refused) = await drain(rt.chat(request("gpt-4o", localOnly: true)))
        #expect(refused == nil)   // gpt-4o → smart, which falls back to fast's local deployment
        let remoteOnly = r
        let (_, error) = await drain(self.router(remoteOnly, [up, local]).chat(request("remote", localOnly: true)))
        #expect(error as? RoutingError == .noLocalDeployment(model: "remote", deployments: ["up/only"]))
        #expect(up.calls.isEmpty)
        // Without local-only the same model goes out.
        let (_, _, route) = await drained(self.router(remoteOnly, [up, local]).chat(request("remote")))
        #expect(route == RouteInfo(deployment: "up/only"))
    }

    @Test func aRolePassesOverAModelWhoseCircuitsAreOpen() async throws {
        let registry = try ResolveTests().registry(ResolveTests.config)
        let clock = ManualClock()
        let up = ScriptedProvider("up", [.fail(CoreError.upstream("HTTP 500"))]), local = ScriptedProvider("local")
        let rt = router(registry, [up, local], clock: clock)
        let (_, _, firstRoute) = await drained(rt.chat(request("role:any")))
        // smart (up/big) failed once and opened its circuit; fast answered, from its first deployment.
        #expect(firstRoute == RouteInfo(deployment: "up/smollm2", fallbackFrom: ["up/big"], reason: "role=any -> smart"))
        let (_, _, secondRoute) = await drained(rt.chat(request("role:any")))
        #expect(secondRoute == RouteInfo(deployment: "up/smollm2", reason: "role=any -> fast"))
        #expect(up.calls == ["big", "smollm2", "smollm2"])
    }

    @Test func modelsListAliases() async throws {
        let rt = router(try ResolveTests().registry(ResolveTests.config), [ScriptedProvider("local")])
        let names = try await rt.models().map(\.name)
        #expect(names.contains("gpt-4o") && names.contains("best") && names.contains("small") && names.contains("smart"))
    }

    @Test func aSwitchLeavesRequestsInFlightOnTheirPlan() async throws {
        let before = try ResolveTests().registry("models:\n  chat: { model: a/m }\nproviders:\n  a: { type: ollama }\n  b: { type: ollama }\n")
        let after = try ResolveTests().registry("models:\n  chat: { model: b/m }\nproviders:\n  a: { type: ollama }\n  b: { type: ollama }\n")
        let gate = GatedProvider("a"), b = ScriptedProvider("b")
        let rt = router(before, [gate, b])
        let slow = rt.chat(request("chat"))
        var events = slow.events.makeAsyncIterator()
        #expect(try await events.next() == .text("first", nil))
        #expect(slow.route == RouteInfo(deployment: "a/m"))
        rt.reconfigure(Router.Configuration(registry: after, providers: ["a": gate, "b": b]))
        let (_, _, freshRoute) = await drained(rt.chat(request("chat")))
        #expect(freshRoute == RouteInfo(deployment: "b/m"))
        gate.open()
        #expect(try await events.next() == .text(" second", nil))
        #expect(try await events.next() == .finished(.stop))
        #expect(try await events.next() == nil)
        #expect(rt.registry.routes["chat"]?.deployments.map(\.key) == ["b/m"])
    }
}

/// Sends "first", then waits for `open()` before " second" and the end.
final class GatedProvider: Provider {
    let name: String
    private let waiting = Mutex<[CheckedContinuation<Void, Never>]>([])
    private let opened = Mutex(false)
    init(_ name: String) { self.name = name }

    func open() {
        opened.withLock { $0 = true }
        let ws = waiting.withLock { w in defer { w = [] }; return w }
        for w in ws { w.resume() }
    }

    func models() async throws -> [ModelInfo] { [] }

    func chat(_ request: ChatRequest) -> ChatStream {
        let (stream, c) = AsyncThrowingStream<ChatEvent, Error>.makeStream()
        let task = Task {
            c.yield(.text("first", nil))
            await withCheckedContinuation { (k: CheckedContinuation<Void, Never>) in
                let now = opened.withLock { o in
                    if !o { waiting.withLock { $0.append(k) } }
                    return o
                }
                if now { k.resume() }
            }
            c.yield(.text(" second", nil))
            c.yield(.finished(.stop))
            c.finish()
        }
        return ChatStream(events: stream, cancel: { task.cancel(); c.finish() })
    }
}
