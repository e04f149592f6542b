import Core
import Foundation
import ModelStore
import Providers
import TestSupport
import Testing

/// Model lifecycle over the real SmolLM2 file (linked twice into a temporary model directory).
@Suite(.serialized) struct ModelHostTests {
    /// A model directory holding `names` as hard links to the real model (copies where the temporary directory is on
    /// another file system). Not symbolic links: the host serves no file whose real location is outside its directory.
    func directory(_ names: [String]) throws -> URL {
        let model = try Reference.smolLM2()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sy-host-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for n in names {
            let target = dir.appendingPathComponent(n + ".gguf").path
            do { try FileManager.default.linkItem(atPath: model, toPath: target) } catch { try FileManager.default.copyItem(atPath: model, toPath: target) }
        }
        return dir
    }

    @Test func aSymbolicLinkOutOfTheDirectoryIsNotServed() async throws {
        let dir = try directory([])
        try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent("escape.gguf").path, withDestinationPath: try Reference.smolLM2())
        let host = ModelHost(options: .init(directory: dir))
        #expect(await host.available().isEmpty)
        await #expect(throws: CoreError.unknownModel("escape", available: [])) { _ = try await host.worker(for: "escape") }
        await #expect(throws: CoreError.unknownModel(try Reference.smolLM2(), available: [])) { _ = try await host.worker(for: try Reference.smolLM2()) }
    }

    func chat(_ model: String, _ text: String = "Hi", max: Int = 4) -> ChatRequest {
        ChatRequest(model: model, messages: [ChatMessage(role: .user, content: text)], sampling: SamplingSettings(temperature: 0, maxTokens: max))
    }

    func run(_ provider: LocalProvider, _ request: ChatRequest) async throws -> String {
        var text = ""
        for try await e in provider.chat(request).events { if case .text(let t, _) = e { text += t } }
        return text
    }

    @Test func loadsOnceForConcurrentRequests() async throws {
        let host = ModelHost(options: .init(directory: try directory(["a"])))
        async let w1 = host.worker(for: "a")
        async let w2 = host.worker(for: "a")
        let (x, y) = try await (w1, w2)
        #expect(x === y)
        await host.unloadAll()
    }

    /// Defaults that came with a file (`NAME.defaults.json`, as an Ollama pull writes them) apply to requests that
    /// leave the setting unset; a request's own setting wins.
    @Test func defaultsBesideAFileApply() async throws {
        let dir = try directory(["a", "b"])
        try ModelDefaults(temperature: 0, max_tokens: 3).write(for: dir.appendingPathComponent("a.gguf"))
        let host = ModelHost(options: .init(directory: dir, contextLength: 512, parallel: 1))
        let provider = LocalProvider(host: host)
        func usage(_ model: String, max: Int?) async throws -> (Int, FinishReason?) {
            var tokens = 0, finish: FinishReason?
            let request = ChatRequest(model: model, messages: [ChatMessage(role: .user, content: "Tell me a long story.")],
                                      sampling: SamplingSettings(temperature: 0, maxTokens: max))
            for try await e in provider.chat(request).events {
                if case .usage(let u) = e { tokens = u.completionTokens }
                if case .finished(let f) = e { finish = f }
            }
            return (tokens, finish)
        }
        let (withDefaults, reason) = try await usage("a", max: nil)
        #expect(withDefaults == 3 && reason == .length)
        #expect(try await usage("a", max: 5).0 == 5, "the request's own max_tokens wins")
        #expect(try await host.worker(for: "b").defaults == SamplingSettings(), "a file without defaults: none")
        #expect(try await host.worker(for: "a").defaults == SamplingSettings(temperature: 0, maxTokens: 3))
        await host.unloadAll()
    }

    /// A defaults file's system message (an Ollama pull's SYSTEM) goes before a conversation that has none, and a
    /// conversation's own system message wins.
    @Test func aModelsSystemMessageOpensConversationsWithoutOne() async throws {
        let dir = try directory(["plain", "terse"])
        try ModelDefaults(system: "You are Tiny, a terse assistant.").write(for: dir.appendingPathComponent("terse.gguf"))
        let host = ModelHost(options: .init(directory: dir, contextLength: 512, parallel: 1))
        let provider = LocalProvider(host: host)
        func promptTokens(_ model: String, system: String?) async throws -> Int {
            var tokens = 0
            let messages = (system.map { [ChatMessage(role: .system, content: $0)] } ?? []) + [ChatMessage(role: .user, content: "Hi")]
            let request = ChatRequest(model: model, messages: messages, sampling: SamplingSettings(temperature: 0, maxTokens: 1))
            for try await e in provider.chat(request).events { if case .usage(let u) = e { tokens = u.promptTokens } }
            return tokens
        }
        let plain = try await promptTokens("plain", system: nil), terse = try await promptTokens("terse", system: nil)
        let explicit = try await promptTokens("plain", system: "You are Tiny, a terse assistant.")
        // (SmolLM2's template puts its own system message in a conversation without one: a different length)
        #expect(terse == explicit && terse != plain)
        #expect(try await promptTokens("terse", system: "Be brief.") == (try await promptTokens("plain", system: "Be brief.")))
        await host.unloadAll()
    }

    @Test func loadingPastTheBudgetEvictsTheLeastRecentlyUsed() async throws {
        let dir = try directory(["a", "b"])
        // Each model needs about 98 MB of weights + its caches; the budget fits one.
        let host = ModelHost(options: .init(directory: dir, contextLength: 512, maxMemoryBytes: 200_000_000))
        let provider = LocalProvider(host: host)
        _ = try await run(provider, chat("a"))
        #expect(await host.loadedWorkers().map(\.name) == ["a"])
        _ = try await run(provider, chat("b"))
        #expect(await host.loadedWorkers().map(\.name) == ["b"])
        await host.unloadAll()
    }

    @Test func idleModelsUnloadAfterKeepAlive() async throws {
        let host = ModelHost(options: .init(directory: try directory(["a"]), keepAlive: .seconds(60)))
        let provider = LocalProvider(host: host)
        _ = try await run(provider, chat("a"))
        await host.unloadExpired(now: Date().addingTimeInterval(30))
        #expect(await host.loadedWorkers().count == 1)
        await host.unloadExpired(now: Date().addingTimeInterval(61))
        #expect(await host.loadedWorkers().isEmpty)
        // a request's keep_alive (negative: for ever) overrides the default
        var forever = chat("a")
        forever.keepAlive = .seconds(-1)
        _ = try await run(provider, forever)
        await host.unloadExpired(now: Date().addingTimeInterval(3600))
        #expect(await host.loadedWorkers().count == 1)
        await host.unloadAll()
    }

    @Test func fullQueueRefusesWithRetryAfterAndLosesNothingAccepted() async throws {
        let host = ModelHost(options: .init(directory: try directory(["a"]), queueCapacity: 1, parallel: 1))
        let provider = LocalProvider(host: host)
        _ = try await host.worker(for: "a")
        let outcomes = await withTaskGroup(of: Result<String, Error>.self) { group in
            for _ in 0..<6 {
                group.addTask { do { return .success(try await run(provider, chat("a", max: 24))) } catch { return .failure(error) } }
            }
            var all: [Result<String, Error>] = []
            for await r in group { all.append(r) }
            return all
        }
        let refused = outcomes.filter { if case .failure(CoreError.overloaded(let r)) = $0 { return (r ?? 0) >= 1 } else { return false } }
        let served = outcomes.filter { if case .success(let t) = $0 { return !t.isEmpty } else { return false } }
        #expect(!refused.isEmpty, "a queue of 1 must refuse some of 6 simultaneous requests")
        #expect(served.count + refused.count == 6, "every request is either served in full or refused")
        await host.unloadAll()
    }

    @Test func unknownModelListsWhatExists() async throws {
        let host = ModelHost(options: .init(directory: try directory(["a", "b"])))
        await #expect(throws: CoreError.unknownModel("zzz", available: ["a", "b"])) { try await host.worker(for: "zzz") }
    }

    @Test func cancellingStopsGenerationPromptly() async throws {
        let host = ModelHost(options: .init(directory: try directory(["a"])))
        let provider = LocalProvider(host: host)
        let stream = provider.chat(chat("a", "Tell me a long story.", max: 400))
        var pieces = 0
        for try await e in stream.events {
            if case .text = e { pieces += 1 }
            if pieces == 3 { stream.cancel(); break }
        }
        // The slot is free again: a new request is served at once.
        let t0 = Date()
        let text = try await run(provider, chat("a"))
        #expect(!text.isEmpty && Date().timeIntervalSince(t0) < 10)
        let worker = try await host.worker(for: "a")
        #expect(worker.queueLength == 0)
        await host.unloadAll()
    }
}

extension ModelHostTests {
    /// Greedy outputs under continuous batching (16 different prompts at once, 8 slots) equal each prompt run alone.
    @Test func batchedGreedyEqualsUnbatched() async throws {
        let prompts = (0..<16).map { "Write one sentence about the number \($0 * 7 + 3)." }
        let alone = ModelHost(options: .init(directory: try directory(["a"]), contextLength: 512, parallel: 1))
        var expected: [String] = []
        for p in prompts { expected.append(try await run(LocalProvider(host: alone), chat("a", p, max: 24))) }
        await alone.unloadAll()

        let batched = ModelHost(options: .init(directory: try directory(["a"]), contextLength: 512, parallel: 8))
        let provider = LocalProvider(host: batched)
        let got = try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for (i, p) in prompts.enumerated() { group.addTask { (i, try await run(provider, chat("a", p, max: 24))) } }
            var out = [String](repeating: "", count: prompts.count)
            for try await (i, t) in group { out[i] = t }
            return out
        }
        for i in prompts.indices { #expect(got[i] == expected[i], "prompt \(i)") }
        #expect(Set(expected).count > 8, "the prompts give different answers")
        await batched.unloadAll()
    }
}

extension ModelHostTests {
    /// A prompt that starts like an earlier one reuses its cached keys and values: the same greedy text, the
    /// reused count reported, and the first token much sooner.
    @Test func promptPrefixIsReusedFromTheCache() async throws {
        let host = ModelHost(options: .init(directory: try directory(["a"]), contextLength: 2048, parallel: 2))
        let provider = LocalProvider(host: host)
        let system = String(repeating: "You are a careful assistant who answers briefly and precisely. ", count: 90)
        func ask(_ q: String) async throws -> (text: String, usage: Usage, ttft: Double) {
            let request = ChatRequest(model: "a", messages: [ChatMessage(role: .system, content: system), ChatMessage(role: .user, content: q)],
                                      sampling: SamplingSettings(temperature: 0, maxTokens: 8))
            let t0 = Date()
            var first: Double?
            var text = "", usage = Usage(promptTokens: 0, completionTokens: 0)
            for try await e in provider.chat(request).events {
                if case .text(let t, _) = e { text += t; if first == nil { first = Date().timeIntervalSince(t0) } }
                if case .usage(let u) = e { usage = u }
            }
            return (text, usage, first ?? 0)
        }
        _ = try await host.worker(for: "a")
        let cold = try await ask("What is two plus two?")
        #expect(cold.usage.cachedPromptTokens == 0 && cold.usage.promptTokens > 1000)
        let warm = try await ask("What is two plus three?")
        #expect(warm.usage.cachedPromptTokens > 1000, "\(warm.usage)")
        // the same question again: the same text as with nothing cached
        let again = try await ask("What is two plus two?")
        #expect(again.text == cold.text)
        print("TTFT with a \(warm.usage.cachedPromptTokens)-token cached prefix: \(warm.ttft * 1000) ms vs \(cold.ttft * 1000) ms uncached")
        #expect(warm.ttft * 3 < cold.ttft)
        await host.unloadAll()
    }
}

extension ModelHostTests {
    @Test func statusesTellStoppedReadyAndErrorApart() async throws {
        let dir = try directory(["good"])
        try Data("not a gguf file at all".utf8).write(to: dir.appendingPathComponent("broken.gguf"))
        let host = ModelHost(options: .init(directory: dir, queueCapacity: 2, parallel: 1))
        func state(_ name: String) async -> ModelHost.Status? { await host.statuses().first { $0.name == name } }
        #expect(await state("good")?.state == "stopped")
        _ = try await host.worker(for: "good")
        #expect(["ready", "busy"].contains(await state("good")?.state))
        await #expect(throws: (any Error).self) { _ = try await host.worker(for: "broken") }
        let broken = await state("broken")
        #expect(broken?.state == "error")
        #expect(broken?.detail?.isEmpty == false)
        #expect(await host.unload("good"))
        #expect(await state("good")?.state == "stopped")
    }
}
