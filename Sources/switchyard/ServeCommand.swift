import ArgumentParser
import Core
import Foundation
import NIOCore
import Gateway
import Inference
import ModelStore
import Providers
import Redis
import Registry
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
    @Option(help: "Port (env SWITCHYARD_PORT; default 8080; 0 picks a free one).") var port: Int?
    @Option(help: "Compute threads per model (default: all cores).") var threads: Int?
    @Option(name: .customLong("ctx"), help: "Context length per model (default: the model's, at most 4096).") var contextLength: Int?
    @Option(name: .customLong("max-queue"), help: "Requests that may wait per model before 429.") var maxQueue: Int = 128
    @Option(name: .customLong("parallel"), help: "Sequences each model generates at once (continuous batching; each has its own KV cache of --ctx positions).")
    var parallel: Int = 8
    @Option(name: .customLong("kv-cache"), help: "Key/value cache format: f16, or q8 (8-bit, about half the memory).")
    var kvCache: String = "f16"
    @Option(name: .customLong("kv-memory"), help: "Memory for each model's key/value caches, e.g. 256M; the context per sequence shrinks to fit --parallel sequences (default: --ctx each).")
    var kvMemory: String?
    @Option(help: "How a Hugging Face folder of a chat model is stored once converted for the engine (once, kept beside it in .converted/): none (its F32, F16 or BF16 weights as they are), q8_0 (8-bit, a quarter of F32's memory) or q4_k (4-bit K-quants, about a seventh; embeddings and rows that are not whole 256-value blocks in 8-bit).")
    var quantize: String = "none"
    @Option(help: "Scheduling niceness of the compute threads, 0 (normal) to 19 (lowest): above 0, the HTTP threads and other processes are served first when the cores are busy.")
    var niceness: Int32 = 5
    @Option(name: .customLong("log-format"), help: "text or json.") var logFormat: String = "text"
    @Option(help: "Load these models at start (comma-separated names; a path to a .gguf file is served under its file name without .gguf).") var preload: String?
    @OptionGroup var config: ConfigLocation
    @Flag(name: .customLong("allow-missing-models"), help: "Start even when declared models are missing (not pulled, a path that is gone): warn and serve the rest.")
    var allowMissingModels = false
    @Option(help: ArgumentHelp("Profile to start with (env SWITCHYARD_PROFILE; default: the one `switchyard profiles use` recorded; \"\": none).", valueName: "name"))
    var profile: String?
    @Option(name: .customLong("max-memory"), help: "Memory budget for loaded models, e.g. 4G or 800M (default: half of RAM). Loading past it unloads the least recently used idle model.")
    var maxMemory: String?
    @Option(name: .customLong("keep-alive"), help: "How long a model stays loaded after its last request: 300, 5m, 1h30m (-1: for ever). Requests may set keep_alive.")
    var keepAlive: String = "5m"
    @Option(name: .customLong("shutdown-grace"), help: "Seconds requests in flight may run on after SIGTERM/SIGINT before they are cancelled.")
    var shutdownGrace: Double = 10
    @Flag(name: .customLong("require-auth"), help: "Check API keys on a loopback address too (env SWITCHYARD_REQUIRE_AUTH=1). Always on for any other address.")
    var requireAuth = false
    @OptionGroup var database: DatabaseLocation
    @Option(name: .customLong("admin-key-env"), help: "Environment variable holding the admin key, which may use /admin/* (keys, every key's usage) and every model without limits. A weak key (short, well known, predictable) is refused.")
    var adminKeyEnv: String = "SWITCHYARD_ADMIN_KEY"
    @Option(name: .customLong("allow-ip"), help: ArgumentHelp("Only these client addresses or CIDR ranges may connect, comma-separated, e.g. 10.0.0.0/8,::1 (env SWITCHYARD_ALLOWED_IPS; default: any).", valueName: "list"))
    var allowIP: String? = ProcessInfo.processInfo.environment["SWITCHYARD_ALLOWED_IPS"]
    @Option(name: .customLong("max-concurrent"), help: "Model requests served at once; past it, 429 with Retry-After (env SWITCHYARD_MAX_CONCURRENT; default: no cap beyond each model's queue).")
    var maxConcurrent: Int?
    @Option(name: .customLong("max-prompt-length"), help: "Longest prompt accepted, in characters of message text; longer is 400 prompt_too_long (env MAX_PROMPT_LENGTH; default: the model's context decides).")
    var maxPromptLength: Int?
    @Option(name: .customLong("redis-url"), help: ArgumentHelp("Redis for state shared by replicas: the per-key rate-limit buckets, and the response cache with --cache redis (env SWITCHYARD_REDIS_URL), e.g. redis://:PASSWORD@10.0.0.5:6379/0.", valueName: "url"))
    var redisURL: String? = ProcessInfo.processInfo.environment["SWITCHYARD_REDIS_URL"]
    @Option(help: "Response cache for deterministic requests (temperature 0 or a seed; `x-switchyard-cache: on` opts others in): off, memory, sqlite or redis (env SWITCHYARD_CACHE).")
    var cache: String?
    @Flag(name: .customLong("no-usage"), help: "Do not record usage (no usage records, so no budgets); keys and limits still apply.")
    var noUsage = false
    @Option(name: .customLong("conversation-retention"), help: ArgumentHelp("Delete conversations and sessions left unchanged this long, e.g. 30d or 12h (checked hourly; default: kept until deleted).", valueName: "duration"))
    var conversationRetention: String?
    @Option(name: .customLong("stream-grace"), help: ArgumentHelp("How long a stream's generation goes on after its client's connection dropped, for the client to resume it (GET /api/v1/streams/ID with Last-Event-ID), e.g. 15s; 0: a dropped connection stops the generation at once.", valueName: "duration"))
    var streamGrace: String = "15s"
    @Option(name: .customLong("websocket-idle-timeout"), help: ArgumentHelp("Close a WebSocket (/api/v1/ws) with nothing in flight and nothing received this long, e.g. 5m.", valueName: "duration"))
    var webSocketIdleTimeout: String = "5m"
    @Option(name: .customLong("webhook-secret-env"), help: ArgumentHelp("Environment variable holding the secret that signs batches' webhooks (Standard Webhooks: whsec_ and base64); unset: batches may not ask for a webhook_url.", valueName: "name"))
    var webhookSecretEnv: String = "SWITCHYARD_WEBHOOK_SECRET"
    @Flag(name: .customLong("allow-private-webhooks"), help: "Let batches' webhooks go to this machine and private networks (off: only public addresses, so a key cannot make the server reach what only it can reach).")
    var allowPrivateWebhooks = false
    @Option(name: .customLong("batch-concurrency"), help: "Requests of a batch (the Batch API) run at once, in spare capacity: only while no interactive request is in flight.")
    var batchConcurrency: Int = 1
    @Option(name: .customLong("cache-ttl"), help: "Seconds a cached answer is kept.") var cacheTTL: Double = 3600
    @Option(name: .customLong("cache-memory"), help: "Memory for the in-process cache, e.g. 64M.") var cacheMemory: String = "64M"

    mutating func validate() throws {
        // The environment's values, where no option was given, checked and named as themselves.
        typealias Env = EnvironmentSettings
        if port == nil { port = try Env.int("SWITCHYARD_PORT", in: 0...65535, what: "a port number from 0 to 65535") ?? 8080 }
        if maxConcurrent == nil { maxConcurrent = try Env.int("SWITCHYARD_MAX_CONCURRENT", in: 1...1_000_000, what: "a number of requests (1 or more)") }
        if maxPromptLength == nil { maxPromptLength = try Env.int("MAX_PROMPT_LENGTH", in: 1...Int.max, what: "a number of characters (1 or more)") }
        if cache == nil { cache = try Env.choice("SWITCHYARD_CACHE", ["off", "memory", "sqlite", "redis"]) ?? "off" }
        _ = try Env.flag("SWITCHYARD_REQUIRE_AUTH")
        try Env.checkKernels()
        guard ["text", "json"].contains(logFormat) else { throw ValidationError("--log-format must be text or json") }
        guard (0...65535).contains(port ?? 8080) else { throw ValidationError("--port must be between 0 and 65535") }
        guard maxQueue >= 1 else { throw ValidationError("--max-queue must be at least 1") }
        guard (1...256).contains(parallel) else { throw ValidationError("--parallel must be between 1 and 256") }
        guard KVCacheType(rawValue: kvCache) != nil else { throw ValidationError("--kv-cache must be f16 or q8") }
        guard HuggingFaceConversion.Quantization(rawValue: quantize) != nil else { throw ValidationError("--quantize must be none, q8_0 or q4_k") }
        guard (0...19).contains(niceness) else { throw ValidationError("--niceness must be between 0 and 19") }
        guard ["off", "memory", "sqlite", "redis"].contains(cache ?? "off") else { throw ValidationError("--cache must be off, memory, sqlite or redis") }
        if cache == "redis" && (redisURL ?? "").isEmpty { throw ValidationError("--cache redis needs --redis-url (or SWITCHYARD_REDIS_URL)") }
        if let redisURL, !redisURL.isEmpty {
            do { _ = try RedisConfiguration(url: redisURL) } catch { throw ValidationError("--redis-url: \(error)") }
        }
        guard Units.seconds(keepAlive) != nil else { throw ValidationError("--keep-alive '\(keepAlive)' is not a duration such as 300, 5m or 1h30m (-1: for ever)") }
        guard cacheTTL > 0 else { throw ValidationError("--cache-ttl must be positive") }
        if let m = maxConcurrent, m < 1 { throw ValidationError("--max-concurrent must be at least 1") }
        if let m = maxPromptLength, m < 1 { throw ValidationError("--max-prompt-length must be at least 1") }
        if let secret = ProcessInfo.processInfo.environment[webhookSecretEnv], !secret.isEmpty {
            do { _ = try BatchWebhook(secret: secret) } catch { throw ValidationError("\(webhookSecretEnv): \(error)") }
        }
        guard (1...64).contains(batchConcurrency) else { throw ValidationError("--batch-concurrency must be between 1 and 64") }
        if let r = conversationRetention, (Units.seconds(r) ?? 0) <= 0 {
            throw ValidationError("--conversation-retention '\(r)' is not a positive duration such as 30d or 12h")
        }
        guard let grace = Units.seconds(streamGrace), grace >= 0, grace <= 3600 else {
            throw ValidationError("--stream-grace '\(streamGrace)' is not a duration from 0 to 1h, such as 15s or 0")
        }
        guard let idle = Units.seconds(webSocketIdleTimeout), idle > 0 else {
            throw ValidationError("--websocket-idle-timeout '\(webSocketIdleTimeout)' is not a positive duration such as 5m or 30s")
        }
        if let allowIP { do { _ = try IPAllowList(commaSeparated: allowIP) } catch { throw ValidationError("--allow-ip: \(error)") } }
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
        let redis = try redisClient()
        var (access, storage) = try await accessGuard()
        if let redis {
            access.limiter = RedisRateLimiter(client: redis, log: { note($0) })
            note("rate limits shared through Redis at \(redis.configuration.endpoint)")
        }
        let registry = try config.registry(choosing: profile)
        // What `config validate` reports, serve refuses; missing models only with --allow-missing-models.
        let problems = ConfigCheck.problems(registry)
        let fatal = allowMissingModels ? [] : problems
        if !fatal.isEmpty {
            throw CLIError(ConfigError(issues: fatal.map(\.issue)).description
                           + "\n(`switchyard config validate` shows the same; --allow-missing-models serves the rest)")
        }
        for p in problems { note("warning: \(p.issue.description); '\(p.missingModel)' is not served") }
        // A path given to --preload is the operator's own choice: it is declared, so requests name it by its stem
        // (requests themselves never reach a path).
        var pinned: [String: ModelHost.Declared] = [:]
        var preloads: [String] = []
        for item in (preload ?? "").split(separator: ",").map({ String($0).trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            guard item.contains("/") || item.hasPrefix("~") else { preloads.append(item); continue }
            let url = try ModelResolver.resolve(item)
            let name = url.deletingPathExtension().lastPathComponent
            pinned[name] = ModelHost.Declared(source: url.path)
            preloads.append(name)
        }
        var hostOptions = ModelHost.Options(directory: ModelDirectory.default, threads: threads, contextLength: contextLength, queueCapacity: maxQueue,
                                            niceness: niceness, maxMemoryBytes: budget, keepAlive: .milliseconds(Int64((Units.seconds(keepAlive) ?? 300) * 1000)),
                                            declared: registry.declared, parallel: parallel,
                                            kvCache: KVCacheType(rawValue: kvCache) ?? .f16, kvMemoryBytes: kvBytes)
        hostOptions.pinned = pinned
        hostOptions.quantize = HuggingFaceConversion.Quantization(rawValue: quantize) ?? .none
        let host = ModelHost(options: hostOptions)
        if !registry.files.isEmpty {
            note("model registry: \(registry.files.joined(separator: ", ")) (\(registry.models.count) local models, \(registry.routes.count) routes, \(registry.providers.count) providers)")
        }
        if let p = registry.profile { note("profile: \(p) (\(registry.profileFile ?? ""))") }
        let secrets = try providerEnvironment(needing: Set(registry.providers.values.compactMap(\.apiKeyEnv)
                                                            + registry.telegram.values.flatMap { [$0.tokenEnv, $0.secretTokenEnv] }))
        let backend = Backend(host: host, registry: registry, environment: secrets,
                              options: .init(cache: try responseCache(storage, redis: redis), maxPromptCharacters: maxPromptLength,
                                             streamGrace: .milliseconds(Int((Units.seconds(streamGrace) ?? 15) * 1000))), warn: { note($0) })
        for name in preloads {
            _ = try await host.worker(for: name)
            note("preloaded \(name)")
        }
        let names = (try? await backend.provider.models().map(\.name)) ?? []
        var server = Server(backend: backend, options: .init(host: self.host, port: port ?? 8080, jsonLogs: logFormat == "json",
                                                                      shutdownGrace: .milliseconds(Int64(shutdownGrace * 1000)),
                                                                      webSocketIdleTimeout: .milliseconds(Int64((Units.seconds(webSocketIdleTimeout) ?? 300) * 1000))),
                            access: access, profiles: .directory(config.url, profiles: config.profilesURL),
                            responses: storage.map(ResponseStore.init), conversations: storage.map(ConversationStore.init),
                            batches: storage.map(BatchStore.init))
        do { try server.addTelegramBots(Array(registry.telegram.values), secrets: secrets) } catch let e as APIError { throw CLIError(e.message) }
        if !registry.telegram.isEmpty {
            note("telegram bots: " + registry.telegram.keys.sorted().map { "\($0) at /api/v1/webhooks/telegram/\($0)" }.joined(separator: ", "))
        }
        if let secret = ProcessInfo.processInfo.environment[webhookSecretEnv], !secret.isEmpty {
            server.batchWebhook = try? BatchWebhook(secret: secret)   // checked in validate()
            server.batchWebhook?.allowPrivateHosts = allowPrivateWebhooks
        }
        let bindHost = self.host
        let storageLine = storage?.description ?? "off"
        let app = server.application { port in
            note("switchyard listening on http://\(bindHost):\(port) — models: \(names.isEmpty ? "(none; run switchyard pull smollm2)" : names.joined(separator: ", ")) — storage: \(storageLine)")
        }
        let reaper = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(5))
                await host.unloadExpired()
            }
        }
        defer { reaper.cancel() }
        let probing = Task { await backend.router?.runHealthChecks() }
        defer { probing.cancel() }
        let retention = Task { [conversations = server.conversations, retention = conversationRetention.flatMap(Units.seconds)] in
            guard let conversations, let retention else { return }
            while !Task.isCancelled {
                do {
                    let deleted = try await conversations.deleteIdle(before: Date().addingTimeInterval(-retention))
                    if deleted > 0 { note("deleted \(deleted) conversation\(deleted == 1 ? "" : "s") idle for longer than \(conversationRetention ?? "")") }
                } catch {
                    note("conversation retention: \(error)")
                }
                try? await Task.sleep(for: .seconds(3600))
            }
        }
        defer { retention.cancel() }
        let batchWork = Task { [runner = server.batchRunner(concurrency: batchConcurrency)] in await runner?.run() }
        defer { batchWork.cancel() }
        let grace = ShutdownGrace(host: host, grace: .milliseconds(Int64(shutdownGrace * 1000)))
        do {
            try await app.runService()
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            throw CLIError("port \(port ?? 8080) on \(bindHost) is already in use by another program; choose another with --port (0 picks a free one) or stop that program")
        } catch let error as IOError where error.errnoCode == EACCES {
            throw CLIError("port \(port ?? 8080) on \(bindHost) may not be used by this user (ports below 1024 need privileges); choose another with --port")
        } catch let error as IOError where error.errnoCode == EADDRNOTAVAIL {
            throw CLIError("\(bindHost) is not an address of this machine; bind one it has (--host 127.0.0.1, or 0.0.0.0 for all)")
        }
        withExtendedLifetime(grace) {}
        await host.unloadAll()
        if let usage = access.usage {
            do { try await usage.close() } catch { note("usage records could not all be written: \(error)") }
            let dropped = usage.statistics.dropped
            if dropped > 0 { note("\(dropped) usage records were dropped") }
        }
        await storage?.close()
        await redis?.close()
        note("switchyard stopped")
    }

    /// Keys, limits and usage from the database (SQLite, or PostgreSQL with --database-url). Auth is on for a
    /// non-loopback address, `--require-auth` or SWITCHYARD_REQUIRE_AUTH=1; then the server refuses to start without
    /// an active key or an admin key. Without auth a database that cannot be opened only turns usage accounting (and
    /// budgets) off.
    private func accessGuard() async throws -> (AccessGuard, StorageDatabase?) {
        let environment = ProcessInfo.processInfo.environment
        let envAuth = (try? EnvironmentSettings.flag("SWITCHYARD_REQUIRE_AUTH")) ?? nil
        let loopback = AccessGuard.isLoopback(host)
        let auth = requireAuth || envAuth == true || !loopback
        var adminKey: AdminKey?
        if let text = environment[adminKeyEnv], !text.isEmpty {
            do { adminKey = try AdminKey(text) } catch { throw ValidationError("\(adminKeyEnv): \(error)") }
        }
        let allowed = try allowIP.map { try IPAllowList(commaSeparated: $0) } ?? IPAllowList()
        let db: StorageDatabase
        do {
            db = try await database.open()
        } catch {
            if auth { throw ValidationError("API keys are required but the key database cannot be opened: \(error)") }
            note("usage accounting is off: \(error)")
            return (AccessGuard(requireAuth: false, keys: nil, adminKey: adminKey, allowedIPs: allowed,
                                maxConcurrentRequests: maxConcurrent), nil)
        }
        if auth {
            let active: [APIKey]
            do {
                active = try await KeyStore(db).list().filter { $0.state() == .active }
            } catch {
                await db.close()
                throw error
            }
            if active.isEmpty && adminKey == nil {
                await db.close()
                let why = loopback ? "auth is required (--require-auth or SWITCHYARD_REQUIRE_AUTH)"
                                   : "\(host) is not a loopback address, so every request needs an API key"
                let create = "switchyard keys create --name NAME" + database.hint
                throw ValidationError("\(why), but \(db.location) holds no active key and \(adminKeyEnv) is not set. Create one with\n  \(create)"
                                      + "\nor set an admin key (e.g. \(adminKeyEnv)=$(openssl rand -base64 32)) and create keys through /admin/keys"
                                      + (loopback ? "" : "\nor serve on 127.0.0.1 only."))
            }
            note("API keys required (\(active.count) active in \(db.location)\(adminKey == nil ? "" : ", and the admin key")); key checks are cached for 5 s")
        }
        if !allowed.isEmpty { note("clients allowed from: \(allowed)") }
        var access = AccessGuard(database: db, requireAuth: auth)
        if noUsage {
            access.usage = nil
            access.spending = nil
        }
        access.adminKey = adminKey
        access.allowedIPs = allowed
        access.maxConcurrentRequests = maxConcurrent
        return (access, db)
    }

    /// The response cache `--cache` asks for.
    /// The Redis client `--redis-url` names (connections are made on first use).
    private func redisClient() throws -> RedisClient? {
        guard let redisURL, !redisURL.isEmpty else { return nil }
        do { return try RedisClient(url: redisURL) } catch { throw ValidationError("--redis-url: \(error)") }
    }

    private func responseCache(_ db: StorageDatabase?, redis: RedisClient?) throws -> ResponseCache? {
        let ttl = Duration.milliseconds(Int64(cacheTTL * 1000))
        switch cache {
        case "memory":
            guard let bytes = Units.bytes(cacheMemory) else { throw ValidationError("--cache-memory '\(cacheMemory)' is not a size such as 64M") }
            note("response cache: in memory, up to \(cacheMemory), answers kept \(Int(cacheTTL)) s")
            return ResponseCache(store: MemoryCacheStore(maxBytes: bytes), ttl: ttl)
        case "sqlite":
            guard let db, let store = SQLiteCacheStore(db) else {
                throw ValidationError("--cache sqlite needs the SQLite database (not --database-url; use --cache memory or redis)")
            }
            note("response cache: in \(db.location), answers kept \(Int(cacheTTL)) s")
            return ResponseCache(store: store, ttl: ttl)
        case "redis":
            guard let redis else { throw ValidationError("--cache redis needs --redis-url") }
            note("response cache: in Redis at \(redis.configuration.endpoint), answers kept \(Int(cacheTTL)) s")
            return ResponseCache(store: RedisCacheStore(client: redis), ttl: ttl)
        default:
            return nil
        }
    }
}
