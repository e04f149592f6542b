import ArgumentParser
import Core
import Foundation
import Gateway
import Inference
import ModelStore
import Providers
import Routing
import Storage

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the HTTP server: OpenAI-compatible /v1 and native /api/v1.",
        discussion: """
        Models in the model directory are served by name: pulled catalogue models by their catalogue name \
        (smollm2), other .gguf files by file name without the extension. A model loads on its first request and \
        stays loaded until unloaded (POST /api/v1/models/unload), its keep-alive passes, or another needs the room. \
        Each model generates --parallel sequences at once with continuous batching (one pass over the weights per \
        step for all of them); more requests wait in a bounded queue, past which the server answers 429 with \
        Retry-After. A prompt that starts like an earlier one reuses its cached keys and values. SIGTERM or SIGINT stops \
        accepting connections and lets requests in flight finish.
        """)

    @Option(help: "Address to bind (env SWITCHYARD_HOST).") var host: String = ProcessInfo.processInfo.environment["SWITCHYARD_HOST"] ?? "127.0.0.1"
    @Option(help: "Port (env SWITCHYARD_PORT; 0 picks a free one).") var port: Int = Int(ProcessInfo.processInfo.environment["SWITCHYARD_PORT"] ?? "") ?? 8080
    @Option(help: "Compute threads per model (default: all cores).") var threads: Int?
    @Option(name: .customLong("ctx"), help: "Context length per model (default: the model's, at most 4096).") var contextLength: Int?
    @Option(name: .customLong("max-queue"), help: "Requests that may wait per model before 429.") var maxQueue: Int = 128
    @Option(name: .customLong("parallel"), help: "Sequences each model generates at once (continuous batching; each has its own KV cache of --ctx positions).")
    var parallel: Int = 8
    @Option(name: .customLong("kv-cache"), help: "Key/value cache format: f16, or q8 (8-bit, about half the memory).")
    var kvCache: String = "f16"
    @Option(name: .customLong("kv-memory"), help: "Memory for each model's key/value caches, e.g. 256M; the context per sequence shrinks to fit --parallel sequences (default: --ctx each).")
    var kvMemory: String?
    @Option(help: "Scheduling niceness of the compute threads, 0 (normal) to 19 (lowest): above 0, the HTTP threads and other processes are served first when the cores are busy.")
    var niceness: Int32 = 5
    @Option(name: .customLong("log-format"), help: "text or json.") var logFormat: String = "text"
    @Option(help: "Load these models at start (comma-separated).") var preload: String?
    @OptionGroup var config: ConfigLocation
    @Option(help: ArgumentHelp("Profile to start with (env SWITCHYARD_PROFILE; default: the one `switchyard profiles use` recorded; \"\": none).", valueName: "name"))
    var profile: String?
    @Option(name: .customLong("max-memory"), help: "Memory budget for loaded models, e.g. 4G or 800M (default: half of RAM). Loading past it unloads the least recently used idle model.")
    var maxMemory: String?
    @Option(name: .customLong("keep-alive"), help: "Seconds a model stays loaded after its last request (default 300; -1: for ever). Requests may set keep_alive.")
    var keepAlive: Double = 300
    @Option(name: .customLong("shutdown-grace"), help: "Seconds requests in flight may run on after SIGTERM/SIGINT before they are cancelled.")
    var shutdownGrace: Double = 10
    @Flag(name: .customLong("require-auth"), help: "Check API keys on a loopback address too (env SWITCHYARD_REQUIRE_AUTH=1). Always on for any other address.")
    var requireAuth = false
    @OptionGroup var database: DatabaseLocation

    func validate() throws {
        guard ["text", "json"].contains(logFormat) else { throw ValidationError("--log-format must be text or json") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
        guard maxQueue >= 1 else { throw ValidationError("--max-queue must be at least 1") }
        guard (1...256).contains(parallel) else { throw ValidationError("--parallel must be between 1 and 256") }
        guard KVCacheType(rawValue: kvCache) != nil else { throw ValidationError("--kv-cache must be f16 or q8") }
        guard (0...19).contains(niceness) else { throw ValidationError("--niceness must be between 0 and 19") }
    }

    func run() async throws {
        var budget = ModelHost.defaultMemoryBudget
        if let m = maxMemory {
            guard let b = Units.bytes(m) else { throw ValidationError("--max-memory '\(m)' is not a size such as 4G or 800M") }
            budget = b
        }
        var kvBytes: Int?
        if let m = kvMemory {
            guard let b = Units.bytes(m) else { throw ValidationError("--kv-memory '\(m)' is not a size such as 256M") }
            kvBytes = b
        }
        let access = try await accessGuard()
        let registry = try config.registry(choosing: profile)
        let host = ModelHost(options: .init(directory: ModelDirectory.default, threads: threads, contextLength: contextLength, queueCapacity: maxQueue,
                                            niceness: niceness, maxMemoryBytes: budget, keepAlive: .milliseconds(Int64(keepAlive * 1000)),
                                            declared: registry.declared, parallel: parallel,
                                            kvCache: KVCacheType(rawValue: kvCache) ?? .f16, kvMemoryBytes: kvBytes))
        if !registry.files.isEmpty {
            note("model registry: \(registry.files.joined(separator: ", ")) (\(registry.models.count) local models, \(registry.routes.count) routes, \(registry.providers.count) providers)")
        }
        if let p = registry.profile { note("profile: \(p) (\(registry.profileFile ?? ""))") }
        let backend = Backend(host: host, registry: registry, warn: { note($0) })
        for name in (preload ?? "").split(separator: ",").map({ String($0).trimmingCharacters(in: .whitespaces) }) where !name.isEmpty {
            _ = try await host.worker(for: name)
            note("preloaded \(name)")
        }
        let names = (try? await backend.provider.models().map(\.name)) ?? []
        let server = Server(backend: backend, options: .init(host: self.host, port: port, jsonLogs: logFormat == "json",
                                                                      shutdownGrace: .milliseconds(Int64(shutdownGrace * 1000))),
                            access: access, profiles: .directory(config.url, profiles: config.profilesURL))
        let bindHost = self.host
        let app = server.application { port in
            note("switchyard listening on http://\(bindHost):\(port) — models: \(names.isEmpty ? "(none; run switchyard pull smollm2)" : names.joined(separator: ", "))")
        }
        let reaper = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(5))
                await host.unloadExpired()
            }
        }
        defer { reaper.cancel() }
        let grace = ShutdownGrace(host: host, grace: .milliseconds(Int64(shutdownGrace * 1000)))
        try await app.runService()
        withExtendedLifetime(grace) {}
        await host.unloadAll()
        if let usage = access?.usage {
            do { try await usage.close() } catch { note("usage records could not all be written: \(error)") }
            let dropped = usage.statistics.dropped
            if dropped > 0 { note("\(dropped) usage records were dropped") }
        }
        note("switchyard stopped")
    }

    /// Keys and usage from the database. Auth is on for a non-loopback address, `--require-auth` or
    /// SWITCHYARD_REQUIRE_AUTH=1; then the server refuses to start without an active key. Without auth a database
    /// that cannot be opened only turns usage accounting off.
    private func accessGuard() async throws -> AccessGuard? {
        let env = ProcessInfo.processInfo.environment["SWITCHYARD_REQUIRE_AUTH"]?.lowercased()
        let loopback = AccessGuard.isLoopback(host)
        let auth = requireAuth || ["1", "true", "yes", "on"].contains(env ?? "") || !loopback
        let db: StorageDatabase
        do {
            db = try database.open()
        } catch {
            if auth { throw ValidationError("API keys are required but the key database cannot be opened: \(error)") }
            note("usage accounting is off: \(error)")
            return nil
        }
        if auth {
            let active = try await KeyStore(db).list().filter { $0.state() == .active }
            if active.isEmpty {
                let why = loopback ? "auth is required (--require-auth or SWITCHYARD_REQUIRE_AUTH)"
                                   : "\(host) is not a loopback address, so every request needs an API key"
                let create = "switchyard keys create --name NAME" + (database.path.map { " --database \($0)" } ?? "")
                throw ValidationError("\(why), but \(db.path) holds no active key. Create one with\n  \(create)"
                                      + (loopback ? "" : "\nor serve on 127.0.0.1 only."))
            }
            note("API keys required (\(active.count) active in \(db.path)); key checks are cached for 5 s")
        }
        return AccessGuard(database: db, requireAuth: auth)
    }
}
