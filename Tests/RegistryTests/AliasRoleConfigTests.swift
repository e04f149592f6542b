import Foundation
@testable import Registry
import Testing

/// `aliases:`, `roles:`, `routing:` and the capability keys of `models:`.
@Suite struct AliasRoleConfigTests {
    static let base = """
        providers:
          up: { type: openai-compatible, base_url: http://127.0.0.1:9001/v1 }
          box: { type: ollama, local: true }
        models:
          smollm2: { catalogue: smollm2, aliases: [small, tiny], context: 8192, tools: true, memory: 300M }
          fast: { deployments: [ up/smollm2, local/smollm2 ], context: 4096 }
          smart: { model: up/big, context: 128000, tools: true }
          boxed: { model: box/qwen }
        aliases:
          gpt-4o: smart
          best: gpt-4o
          coder: role:coder
        roles:
          coder:
            prefer: [smart, fast, smollm2]
            requires: { context: 8192, tools: true, local_only: true, max_memory: 4G }
          writer: [smart, fast]
        routing:
          auto: { code: role:coder, general: smart, default: fast }
        """

    @Test func everythingParses() throws {
        let r = try ModelRegistry.load(directory: try configFolder(["models.yaml": Self.base]))
        #expect(r.aliases.mapValues(\.target) == ["small": "smollm2", "tiny": "smollm2", "gpt-4o": "smart", "best": "gpt-4o", "coder": "role:coder"])
        #expect(r.aliases["small"]?.owner == "smollm2" && r.aliases["gpt-4o"]?.owner == nil)
        #expect(r.capabilities["smollm2"] == ModelCapabilities(context: 8192, tools: true, memoryBytes: 300 << 20))
        #expect(r.capabilities["fast"] == ModelCapabilities(context: 4096))
        #expect(r.models["smollm2"]?.source == "smollm2")   // the extra keys do not disturb the model itself
        let coder = try #require(r.roles["coder"])
        #expect(coder.prefer == ["smart", "fast", "smollm2"])
        #expect(coder.requires == .init(context: 8192, tools: true, localOnly: true, maxMemoryBytes: 4 << 30))
        #expect(r.roles["writer"]?.prefer == ["smart", "fast"] && r.roles["writer"]?.requires == .init())
        #expect(r.autoRules.mapValues(\.target) == ["code": "role:coder", "general": "smart", "default": "fast"])
        #expect(r.providers["box"]?.local == true && r.providers["up"]?.local == false)
        #expect(r.order == ["smollm2", "fast", "smart", "boxed"])
        #expect(r.followAliases("best")! == ("smart", ["best", "gpt-4o"]))
    }

    @Test func aliasCyclesAreErrorsWithFileLineAndPath() throws {
        let found = try configIssues(["models.yaml": """
            models:
              m: { catalogue: smollm2 }
            aliases:
              a: b
              b: c
              c: a
              d: m
            """])
        let cycle = try #require(found.first { $0.message.contains("cycle") })
        #expect(cycle.path == "aliases.a" && cycle.line == 4 && cycle.file.hasSuffix("models.yaml"))
        #expect(cycle.message.contains("a -> b -> c -> a"))
        #expect(found.filter { $0.message.contains("cycle") }.count == 1)   // one loop, one error
    }

    @Test func anAliasMayNotHideAModel() throws {
        let found = try configIssues(["models.yaml": """
            models:
              smollm2: { catalogue: smollm2 }
              fast: { model: up/x }
            providers:
              up: { type: openai-compatible, base_url: http://127.0.0.1:9001/v1 }
            aliases:
              fast: smollm2
            """, "user_models.json": #"{"models": {"tiny": {"catalogue": "smollm2", "aliases": ["smollm2"]}}}"#])
        let hidden = found.filter { $0.message.contains("may not hide a model") }
        #expect(hidden.count == 2)
        #expect(hidden.contains { $0.path == "aliases.fast" && $0.line == 7 && $0.message.contains("models.yaml:3") })
        #expect(hidden.contains { $0.path == "models.tiny.aliases[0]" && $0.file.hasSuffix("user_models.json") })
    }

    @Test func unknownRolesReservedNamesAndBadShapesAreReported() throws {
        let found = try configIssues(["models.yaml": """
            models:
              m: { catalogue: smollm2, tools: maybe, context: lots }
            aliases:
              auto: m
              x: role:nobody
            roles:
              r: { prefer: [auto], requires: { context: big, gpu: true } }
              "bad name": [m]
              empty: { requires: { tools: true } }
            routing:
              auto: { code: role:ghost, Weird: m, general: auto }
              manual: { }
            """])
        func has(_ path: String, _ text: String) -> Bool { found.contains { $0.path == path && $0.message.contains(text) } }
        #expect(has("models.m.tools", "true or false"))
        #expect(has("models.m.context", "context length"))
        #expect(has("aliases.auto", "reserved"))
        #expect(has("aliases.x", "no declared role"))
        #expect(has("roles.r.requires.context", "context length"))
        #expect(has("roles.r.requires.gpu", "unknown requirement"))
        #expect(has("roles.r.prefer[0]", "not a model"))
        #expect(has("roles.bad name", "role name"))
        #expect(has("roles.empty", "missing 'prefer'"))
        #expect(has("routing.auto.code", "no declared role"))
        #expect(has("routing.auto.Weird", "task name"))
        #expect(has("routing.auto.general", "back to auto"))
        #expect(has("routing.manual", "unknown routing setting"))
    }

    @Test func aModelDeclaredAgainTakesItsAliasesAlong() throws {
        let r = try ModelRegistry.load(directory: try configFolder([
            "models.yaml": "models:\n  a: { catalogue: smollm2, aliases: [first], context: 2048 }\n",
            "models.json": #"{"models": {"a": {"path": "other.gguf"}}, "aliases": {"second": "a"}}"#,
        ]))
        #expect(r.aliases["first"] == nil && r.aliases["second"]?.target == "a")
        #expect(r.capabilities["a"] == nil && r.models["a"]?.source == "other.gguf")
    }
}
