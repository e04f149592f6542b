import Foundation
@testable import Registry
import Testing

@Suite struct ModelRegistryTests {
    @Test func parsesEverySetting() throws {
        let dir = try configFolder(["models.yaml": """
            models:
              smollm2:
                provider: local
                catalogue: smollm2
                context_length: 2048
                threads: 2
                keep_alive: 10m
                max_memory: 512M
                defaults: { temperature: 0.7, top_p: 0.9, top_k: 20, max_tokens: 256 }
              tiny:
                path: /models/tiny.gguf
            """])
        let r = try ModelRegistry.load(directory: dir)
        let m = try #require(r.models["smollm2"])
        #expect(m.source == "smollm2" && m.contextLength == 2048 && m.threads == 2)
        #expect(m.keepAliveSeconds == 600 && m.maxMemoryBytes == 512 << 20)
        #expect(m.temperature == 0.7 && m.topP == 0.9 && m.topK == 20 && m.maxTokens == 256)
        #expect(r.models["tiny"]?.source == "/models/tiny.gguf")
    }

    @Test func adaptersAreListedWithScales() throws {
        let bad = try configFolder(["models.yaml": """
            models:
              bad:
                path: b.gguf
                adapters:
                  - {scale: 2}
                  - {path: x.gguf, scale: loud, colour: red}
                  - [nested]
              worse:
                path: w.gguf
                adapters: one.gguf
            """])
        do {
            _ = try ModelRegistry.load(directory: bad)
            Issue.record("expected errors")
        } catch let e as ConfigError {
            #expect(Set(e.issues.map(\.path)) == ["models.bad.adapters[0]", "models.bad.adapters[1].scale", "models.bad.adapters[1].colour",
                                                  "models.bad.adapters[2]", "models.worse.adapters"])
            #expect(e.issues.first { $0.path == "models.worse.adapters" }?.message.contains("expected a list of adapters") == true)
        }
        let good = try configFolder(["models.yaml": """
            models:
              smollm2:
                catalogue: smollm2
                adapters: [support.gguf, {path: ./tone-peft, scale: 0.5}, {path: /abs/off.gguf, scale: 0}]
            """])
        let m = try #require(try ModelRegistry.load(directory: good).models["smollm2"])
        #expect(m.adapters == [AdapterDeclaration(path: "support.gguf"), AdapterDeclaration(path: "./tone-peft", scale: 0.5),
                               AdapterDeclaration(path: "/abs/off.gguf", scale: 0)])
    }

    @Test func laterLayersWin() throws {
        let dir = try configFolder([
            "models.yaml": "models:\n  a: { path: one.gguf }\n  b: { path: b.gguf }\n",
            "models.json": #"{"models": {"a": {"path": "two.gguf", "threads": 1}}}"#,
            "user_models.json": #"{"models": {"a": {"path": "three.gguf"}}}"#,
        ])
        let r = try ModelRegistry.load(directory: dir)
        #expect(r.models["a"]?.source == "three.gguf" && r.models["b"]?.source == "b.gguf")
        #expect(r.files.count == 3)
    }

    @Test func reportsEveryErrorWithFileLineAndPath() throws {
        let dir = try configFolder(["models.yaml": """
            models:
              a:
                path: a.gguf
                context_length: -5
                keep_alive: soon
                defaults:
                  temperature: 7
                  flavour: spicy
              b:
                threads: 2
              c: just a string
            extra: 1
            """])
        do {
            _ = try ModelRegistry.load(directory: dir)
            Issue.record("expected errors")
        } catch let e as ConfigError {
            let paths = e.issues.map(\.path)
            #expect(paths.contains("models.a.context_length"))
            #expect(paths.contains("models.a.keep_alive"))
            #expect(paths.contains("models.a.defaults.temperature"))
            #expect(paths.contains("models.a.defaults.flavour"))
            #expect(paths.contains("models.b"))   // no path or catalogue
            #expect(paths.contains("models.c"))
            #expect(paths.contains("extra"))
            #expect(e.issues.count == 7)
            let ctx = try #require(e.issues.first { $0.path == "models.a.context_length" })
            #expect(ctx.line == 4 && ctx.message.contains("positive integer") && ctx.file.hasSuffix("models.yaml"))
            #expect(e.description.contains("models.yaml:4: models.a.context_length"))
        }
    }

    @Test func malformedFilesAreReported() throws {
        let dir = try configFolder(["models.json": #"{"models": {"a": "#])
        #expect(throws: ConfigError.self) { try ModelRegistry.load(directory: dir) }
        let empty = try configFolder([:])
        #expect(try ModelRegistry.load(directory: empty).models.isEmpty)
    }

    @Test func durationsAndSizes() {
        #expect(ModelRegistry.seconds("300") == 300 && ModelRegistry.seconds("5m") == 300 && ModelRegistry.seconds("-1") == -1)
        #expect(ModelRegistry.seconds("1h") == 3600 && ModelRegistry.seconds("soon") == nil)
        #expect(ModelRegistry.seconds("1h30m") == 5400 && ModelRegistry.seconds("2m30s") == 150 && ModelRegistry.seconds("250ms") == 0.25)
        #expect(ModelRegistry.seconds("-1h") == -3600 && ModelRegistry.seconds("5x") == nil && ModelRegistry.seconds("m5") == nil)
        #expect(ModelRegistry.seconds("nan") == nil && ModelRegistry.seconds("inf") == nil && ModelRegistry.seconds("") == nil)
        #expect(ModelRegistry.bytes("4G") == 4 << 30 && ModelRegistry.bytes("512mb") == 512 << 20 && ModelRegistry.bytes("0") == nil)
    }
}
