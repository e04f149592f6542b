import Foundation
@testable import Registry
import Testing

/// Profiles merged over the registry files.
@Suite struct ProfileTests {
    static let base = """
        providers:
          up: { type: openai-compatible, base_url: http://127.0.0.1:9001/v1, breaker: { failures: 5 } }
        models:
          smollm2:
            catalogue: smollm2
            context_length: 2048
            defaults: { temperature: 0.7, top_k: 40 }
          fast: { deployments: [ up/smollm2, local/smollm2 ], strategy: least-busy, fallbacks: [smollm2] }
          mini: { model: up/gpt-4o-mini }
        aliases:
          gpt-4o: mini
        roles:
          coder: { prefer: [fast, smollm2], requires: { context: 2048 } }
        routing:
          auto: { code: smollm2, general: fast }
        """

    @Test func aProfileDeepMergesOverTheBase() throws {
        let dir = try configFolder([
            "models.yaml": Self.base,
            "profiles/coding.yaml": """
                description: code on this machine
                models:
                  smollm2: { defaults: { temperature: 0.2 } }   # only the temperature changes
                  fast: { strategy: ordered }
                  mini: ~                                       # gone
                  coder-model: { path: coder.gguf, context: 16384 }
                aliases:
                  gpt-4o: coder-model
                roles:
                  coder: { prefer: [coder-model] }              # a list replaces the list
                routing:
                  auto: { general: smollm2 }
                """,
        ])
        let base = try ModelRegistry.load(directory: dir)
        #expect(base.profile == nil && base.routes["fast"]?.strategy == .leastBusy)
        let r = try ModelRegistry.load(directory: dir, profile: "coding")
        #expect(r.profile == "coding" && r.profileFile?.hasSuffix("profiles/coding.yaml") == true)
        let small = try #require(r.models["smollm2"])
        #expect(small.temperature == 0.2 && small.topK == 40 && small.contextLength == 2048 && small.source == "smollm2")
        let fast = try #require(r.routes["fast"])
        #expect(fast.strategy == .ordered && fast.deployments.map(\.key) == ["up/smollm2", "local/smollm2"] && fast.fallbacks == ["smollm2"])
        #expect(r.routes["mini"] == nil && r.models["mini"] == nil)
        #expect(r.models["coder-model"]?.source == "coder.gguf" && r.capabilities["coder-model"]?.context == 16384)
        #expect(r.aliases["gpt-4o"]?.target == "coder-model")
        #expect(r.roles["coder"]?.prefer == ["coder-model"] && r.roles["coder"]?.requires.context == 2048)   // requires kept
        #expect(r.autoRules.mapValues(\.target) == ["code": "smollm2", "general": "smollm2"])
        #expect(r.providers["up"]?.breaker.failures == 5)
        #expect(ModelRegistry.profileNames(in: ModelRegistry.defaultProfilesDirectory(for: dir)) == ["coding"])
        #expect(ModelRegistry.profileDescription(try #require(ModelRegistry.profileFile("coding", in: dir.appendingPathComponent("profiles")))) == "code on this machine")
    }

    @Test func laterFilesReplaceEntriesThenTheProfileMerges() throws {
        let dir = try configFolder([
            "models.yaml": Self.base,
            "models.json": #"{"models": {"smollm2": {"catalogue": "smollm2", "threads": 1}}}"#,
            "profiles/p.yaml": "models:\n  smollm2: { keep_alive: 1m }\n",
        ])
        let r = try ModelRegistry.load(directory: dir, profile: "p")
        // models.json replaced smollm2 whole (no context_length, no defaults); the profile added keep_alive.
        let m = try #require(r.models["smollm2"])
        #expect(m.threads == 1 && m.contextLength == nil && m.temperature == nil && m.keepAliveSeconds == 60)
        #expect(r.files.count == 2)
    }

    @Test func errorsNameTheFileAndLineTheValueCameFrom() throws {
        let dir = try configFolder([
            "models.yaml": Self.base,
            "profiles/broken.yaml": """
                models:
                  fast:
                    strategy: fastest
                  extra: { deployments: [ nowhere/x ] }
                aliases:
                  loop: loop2
                  loop2: loop
                """,
        ])
        do {
            _ = try ModelRegistry.load(directory: dir, profile: "broken")
            Issue.record("expected errors")
        } catch let e as ConfigError {
            let strategy = try #require(e.issues.first { $0.path == "models.fast.strategy" })
            #expect(strategy.file.hasSuffix("profiles/broken.yaml") && strategy.line == 3)
            let provider = try #require(e.issues.first { $0.message.contains("unknown provider 'nowhere'") })
            #expect(provider.file.hasSuffix("profiles/broken.yaml") && provider.line == 4)
            let cycle = try #require(e.issues.first { $0.message.contains("cycle") })
            #expect(cycle.file.hasSuffix("profiles/broken.yaml") && cycle.line == 6)
        }
        // An error of a merged entry as a whole points at the profile line that changed it.
        let dir2 = try configFolder([
            "models.yaml": "models:\n  a: { catalogue: smollm2 }\n",
            "profiles/p.yaml": "models:\n  a: { deployments: [ local/a ] }\n",
        ])
        do {
            _ = try ModelRegistry.load(directory: dir2, profile: "p")
            Issue.record("expected errors")
        } catch let e as ConfigError {
            #expect(e.issues.contains { $0.message.contains("not both") && $0.file.hasSuffix("profiles/p.yaml") && $0.line == 2 })
        }
    }

    @Test func anUnknownProfileListsTheOthers() throws {
        let dir = try configFolder(["models.yaml": Self.base, "profiles/a.yaml": "{}\n", "profiles/b.yml": "{}\n", "profiles/notes.txt": "x"])
        #expect(ModelRegistry.profileNames(in: dir.appendingPathComponent("profiles")) == ["a", "b"])
        #expect(try ModelRegistry.load(directory: dir, profile: "b").profile == "b")
        do {
            _ = try ModelRegistry.load(directory: dir, profile: "c")
            Issue.record("expected an error")
        } catch let e as ConfigError {
            #expect(e.issues.first?.message.contains("no profile 'c'") == true && e.issues.first?.message.contains("a, b") == true)
        }
        #expect(throws: ConfigError.self) { try ModelRegistry.load(directory: dir, profile: "../models") }
    }

    @Test func mergePatchFollowsRFC7396() throws {
        let base = try ConfigValue.parseYAML("a: { b: 1, c: [1, 2], d: { e: 1 } }\nf: 1\n")
        let patch = try ConfigValue.parseYAML("a: { b: ~, c: [3], d: { g: 2 } }\nf: { h: 1 }\ni: 2\n")
        let merged = ModelRegistry.mergePatch(base, patch)
        #expect(merged == (try ConfigValue.parseYAML("a: { c: [3], d: { e: 1, g: 2 } }\nf: { h: 1 }\ni: 2\n")))
        // The effective document prints as YAML that reads back the same.
        #expect(try ConfigValue.parseYAML(merged.yaml()) == merged)
    }
}
