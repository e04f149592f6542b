import Foundation
@testable import Registry
import Testing

/// `providers:` and the routing keys of `models:`.
@Suite struct RouteConfigTests {
    @Test func theIssuesExampleShapeParses() throws {
        let r = try ModelRegistry.load(directory: try configFolder(["models.yaml": """
            providers:
              upstream-a: { type: openai-compatible, base_url: http://127.0.0.1:9001/v1/, api_key_env: A_KEY, headers: { X-Team: search } }
            models:
              smollm2:  { provider: local, path: SmolLM2-135M-Instruct.Q4_1.gguf }
              fast:     { deployments: [ {provider: upstream-a, model: smollm2}, {provider: local, model: smollm2} ], strategy: least-busy }
            """]))
        #expect(r.models["smollm2"]?.source == "SmolLM2-135M-Instruct.Q4_1.gguf" && r.routes["smollm2"] == nil)
        let p = try #require(r.providers["upstream-a"])
        #expect(p.kind == .openAICompatible && p.baseURL == "http://127.0.0.1:9001/v1" && p.apiKeyEnv == "A_KEY" && p.headers == ["X-Team": "search"])
        let fast = try #require(r.routes["fast"])
        #expect(fast.deployments.map(\.key) == ["upstream-a/smollm2", "local/smollm2"] && fast.strategy == .leastBusy && fast.fallbacks.isEmpty)
        #expect(r.models["fast"] == nil)
    }

    @Test func weightsAndTheLatencyAndWeightedStrategies() throws {
        let r = try ModelRegistry.load(directory: try configFolder(["models.yaml": """
            providers:
              a: { type: openai-compatible, base_url: http://127.0.0.1:9001/v1 }
            models:
              split: { deployments: [ {provider: a, model: m, weight: 3}, {provider: local, model: smollm2} ], strategy: weighted }
              quick: { deployments: [ a/m, local/smollm2 ], strategy: lowest-latency }
            """]))
        #expect(r.routes["split"]?.strategy == .weighted && r.routes["split"]?.deployments.map(\.weight) == [3, nil])
        #expect(r.routes["quick"]?.strategy == .lowestLatency)
        let bad = try configIssues(["models.yaml": """
            providers:
              a: { type: openai-compatible, base_url: http://127.0.0.1:9001/v1 }
            models:
              split: { deployments: [ {provider: a, model: m, weight: -2} ], strategy: weighted }
            """])
        #expect(bad.contains { $0.path.hasSuffix(".weight") && $0.line == 4 })
    }

    @Test func shortFormsTimeoutsRetriesFallbacksAndBreakers() throws {
        let r = try ModelRegistry.load(directory: try configFolder(["models.yaml": """
            providers:
              up:
                type: openai-compatible
                base_url: https://api.example.com/v1
                breaker: { failures: 3, window: 30s, cooldown: 2m }
            models:
              tiny:
                catalogue: smollm2
                fallbacks: fast
                retries: 1
              mini: { model: up/gpt-4o-mini }
              smart: { provider: up, model: big/model, fallbacks: [mini, tiny] }
              fast:
                deployments:
                  - up/smollm2
                  - { provider: local, model: tiny, timeout: 500ms, retries: 0 }
                strategy: round-robin
                timeout: 10s
                retries: 2
            """]))
        #expect(r.providers["up"]?.breaker == BreakerSettings(failures: 3, window: .seconds(30), cooldown: .seconds(120)))
        #expect(r.models["tiny"]?.source == "smollm2")
        #expect(r.routes["tiny"]?.deployments == [DeploymentDeclaration(provider: "local", model: "tiny", retries: 1, path: "models.tiny", line: 7)])
        #expect(r.routes["tiny"]?.fallbacks == ["fast"])
        #expect(r.routes["mini"]?.deployments.map(\.key) == ["up/gpt-4o-mini"])
        #expect(r.routes["smart"]?.deployments.map(\.key) == ["up/big/model"] && r.routes["smart"]?.fallbacks == ["mini", "tiny"])
        let fast = try #require(r.routes["fast"])
        #expect(fast.strategy == .roundRobin)
        #expect(fast.deployments.map(\.timeoutSeconds) == [10, 0.5] && fast.deployments.map(\.retries) == [2, 0])
    }

    @Test func aLaterFileReplacesANameWhateverItsKind() throws {
        let r = try ModelRegistry.load(directory: try configFolder([
            "models.yaml": "models:\n  a: { path: a.gguf }\n  b: { deployments: [local/a] }\n",
            "user_models.json": #"{"models": {"a": {"deployments": ["local/b"]}, "b": {"path": "b.gguf"}}}"#,
        ]))
        #expect(r.models["a"] == nil && r.routes["a"]?.deployments.map(\.key) == ["local/b"])
        #expect(r.routes["b"] == nil && r.models["b"]?.source == "b.gguf")
    }

    @Test func providersMayBeDeclaredInAnotherFile() throws {
        let r = try ModelRegistry.load(directory: try configFolder([
            "models.yaml": "providers:\n  up: { type: openai-compatible, base_url: http://h:1/v1 }\n",
            "models.json": #"{"models": {"x": {"model": "up/x"}}}"#,
        ]))
        #expect(r.routes["x"]?.deployments.first?.provider == "up")
    }

    @Test func routingErrorsNameFileLineAndKeyPath() throws {
        let found = try configIssues(["models.yaml": """
            providers:
              local: { type: openai-compatible, base_url: http://h/v1 }
              claude: { type: gemini, base_url: https://api.anthropic.com/v1 }
              bad: { type: openai-compatible, base_url: ftp://h, colour: red }
              nourl: { type: openai-compatible }
            models:
              a:
                deployments:
                  - ghost/m
                  - { provider: local }
                  - nothing
                strategy: fastest
                retries: -1
                context_length: 2048
              b: { model: no-provider-here }
              c: { path: c.gguf, fallbacks: [c] }
              d: { deployments: [] }
              e: { path: e.gguf, model: up/e }
            """])
        let byPath = Dictionary(found.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        let expected = [
            "providers.local", "providers.claude.type", "providers.bad.base_url", "providers.bad.colour", "providers.nourl",
            "models.a.deployments[0]", "models.a.deployments[1]", "models.a.deployments[2]", "models.a.strategy", "models.a.retries",
            "models.a.context_length", "models.b.model", "models.c.fallbacks", "models.d.deployments", "models.e.model",
        ]
        for p in expected { #expect(byPath[p] != nil, "no issue at \(p): \(found.map(\.description))") }
        #expect(found.count == expected.count, "\(found.map(\.description))")
        #expect(byPath["models.a.deployments[0]"]?.message.contains("unknown provider 'ghost'") == true)
        #expect(byPath["models.a.deployments[0]"]?.line == 9)
        #expect(byPath["providers.claude.type"]?.message.contains("openai-compatible") == true)
        #expect(byPath["models.a.strategy"]?.line == 12 && byPath["models.a.strategy"]?.file.hasSuffix("models.yaml") == true)
    }

    @Test func anthropicOllamaAndOpenRouterHaveTheirUsualAddresses() throws {
        let r = try ModelRegistry.load(directory: try configFolder(["models.yaml": """
            providers:
              claude: { type: anthropic, api_key_env: ANTHROPIC_API_KEY }
              home: { type: ollama }
              router: { type: openrouter, free_only: true, headers: { X-Title: tests } }
              mine: { type: ollama, base_url: "http://10.0.0.2:11434/" }
            models:
              smart: { deployments: [ {provider: claude, model: claude-sonnet-4-5}, {provider: router, model: "meta-llama/llama-3.3-70b-instruct:free"} ] }
            """]))
        #expect(r.providers["claude"]?.kind == .anthropic && r.providers["claude"]?.baseURL == "https://api.anthropic.com")
        #expect(r.providers["home"]?.kind == .ollama && r.providers["home"]?.baseURL == "http://127.0.0.1:11434")
        #expect(r.providers["mine"]?.baseURL == "http://10.0.0.2:11434")
        #expect(r.providers["router"]?.baseURL == "https://openrouter.ai/api/v1" && r.providers["router"]?.freeOnly == true)
        #expect(r.providers["claude"]?.freeOnly == false)
        #expect(r.routes["smart"]?.deployments.map(\.key) == ["claude/claude-sonnet-4-5", "router/meta-llama/llama-3.3-70b-instruct:free"])

        let found = try configIssues(["models.yaml": """
            providers:
              a: { type: anthropic, free_only: true }
              b: { type: openrouter, free_only: maybe }
              c: { type: bedrock }
            """])
        #expect(Set(found.map(\.path)) == ["providers.a", "providers.b.free_only", "providers.c.type"], "\(found.map(\.description))")
        #expect(found.first { $0.path == "providers.c.type" }?.message.contains("anthropic, ollama, openrouter") == true)
        #expect(found.first { $0.path == "providers.c.type" }?.line == 4)
    }

    @Test func theShippedConfigIsValid() throws {
        let config = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("config")
        let r = try ModelRegistry.load(directory: config)
        #expect(r.models["smollm2"] != nil)
    }
}
