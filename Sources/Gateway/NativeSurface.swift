import Core
import Foundation
import Hummingbird
import Providers

/// The native `/api/v1` surface: generate, chat, models, load/unload, health, metrics.
/// Streaming answers are NDJSON: one JSON object per line, `{"response": piece, "done": false}`, and a last
/// line with `"done": true` and the totals.
struct NativeSurface {
    let backend: Backend

    struct GenerateBody: Decodable {
        let model: String
        let prompt: String?
        let messages: [OpenAI.Message]?
        let tools: [OpenAI.WireTool]?
        let system: String?
        let raw: Bool?
        let max_tokens: Int?
        let temperature: Double?
        let top_p: Double?
        let top_k: Int?
        let seed: Int64?
        let stop: OpenAI.Stop?
        let stream: Bool?
        let keep_alive: OpenAI.KeepAlive?
        let metadata: [String: MetadataValue]?
        /// Generate past end-of-generation tokens up to `max_tokens` (for benchmarks).
        let ignore_eos: Bool?
        /// LoRA adapters by id with their scales; unlisted adapters are off.
        let lora: [OpenAI.Adapter]?
    }

    struct Answer: Encodable {
        let response: String
        let model: String
        let tokens_used: Int
        let prompt_tokens: Int
        let completion_tokens: Int
        let processing_time: Double
        let timestamp: String
        let finish_reason: String
        /// The tool calls the model made, whole (`{"id", "type": "function", "function": {"name", "arguments"}}`); left
        /// out when there are none.
        var tool_calls: [OpenAI.ToolCallOut]? = nil
        /// The model's reasoning before its answer; left out when there is none (streamed: `reasoning` pieces).
        var reasoning: String? = nil
        var done = true
    }

    struct Piece: Encodable {
        let response: String
        let model: String
        var reasoning: String? = nil
        var done = false
        init(response: String, model: String, reasoning: String? = nil) {
            self.response = response; self.model = model; self.reasoning = reasoning
        }
    }

    func register(on router: Router<GatewayContext>) {
        router.post("/api/v1/generate") { request, context in try await generate(request, context, chat: false) }
        router.post("/api/v1/chat") { request, context in try await generate(request, context, chat: true) }
        router.get("/api/v1/models") { _, _ in try await models() }
        router.post("/api/v1/embeddings") { request, context in try await embeddings(request, context) }
        router.post("/api/v1/models/load") { request, _ in try await load(request) }
        router.post("/api/v1/models/unload") { request, _ in try await unload(request) }
        router.get("/api/v1/health") { _, _ in try await health() }
        router.get("/lora-adapters") { request, _ in try await loraAdapters(request, setting: false) }
        router.post("/lora-adapters") { request, _ in try await loraAdapters(request, setting: true) }
        router.get("/api/v1/metrics") { _, _ in try metrics() }
    }

    private func generate(_ request: Request, _ context: GatewayContext, chat: Bool) async throws -> Response {
        var request = request
        let body = try await request.collectBody(limit: BodyLimit.maxBytes)
        let g = try JSONDecoder().decode(GenerateBody.self, from: Data(buffer: body))
        if let t = g.temperature, !(0...2).contains(t) { throw APIError(.badRequest, "temperature must be between 0 and 2", param: "temperature") }
        if let p = g.top_p, !(0...1).contains(p) { throw APIError(.badRequest, "top_p must be between 0 and 1", param: "top_p") }
        if let m = g.max_tokens, m < 1 { throw APIError(.badRequest, "max_tokens must be at least 1", param: "max_tokens") }
        var messages: [ChatMessage] = []
        var raw: String?
        if chat {
            guard let ms = g.messages, !ms.isEmpty else { throw APIError(.badRequest, "messages must be a non-empty list", param: "messages") }
            messages = try OpenAI.canonical(ms)
        } else {
            guard let prompt = g.prompt else { throw APIError(.badRequest, "prompt is required", param: "prompt") }
            if g.raw ?? false { raw = prompt } else {
                if let s = g.system { messages.append(ChatMessage(role: .system, content: s)) }
                messages.append(ChatMessage(role: .user, content: prompt))
            }
        }
        let sampling = SamplingSettings(temperature: g.temperature, topP: g.top_p, topK: g.top_k, seed: g.seed.map { UInt64(bitPattern: $0) },
                                        maxTokens: g.max_tokens, stop: g.stop?.values ?? [], ignoreEOS: g.ignore_eos ?? false,
                                        adapters: g.lora?.map { AdapterSelection(id: $0.id, scale: $0.scale) })
        if let (field, message) = sampling.problem { throw APIError(.badRequest, "\(field) \(message)", param: field) }
        let began = Date()
        var core = ChatRequest(model: g.model, messages: messages, sampling: sampling, tools: try OpenAI.canonical(g.tools ?? []),
                               stream: g.stream ?? false, rawPrompt: raw)
        core.keepAlive = g.keep_alive?.duration
        core.hints = try RequestHints.from(request, metadata: g.metadata)
        OutputConstraints.apply(try OutputConstraints.read(body, toolNames: core.tools.map(\.name)), to: &core)
        let started = try await backend.start(core, caller: context.caller, record: context.record)
        let model = g.model
        @Sendable func answer(_ r: CollectedCompletion) -> Answer {
            let calls = r.toolCalls.calls
            return Answer(response: r.text, model: model, tokens_used: r.usage.totalTokens, prompt_tokens: r.usage.promptTokens,
                          completion_tokens: r.usage.completionTokens, processing_time: Date().timeIntervalSince(began),
                          timestamp: ISO8601DateFormatter().string(from: Date()), finish_reason: OpenAI.finishReason(r.finish),
                          tool_calls: calls.isEmpty ? nil : calls.map { OpenAI.ToolCallOut(id: $0.id, function: .init(name: $0.name, arguments: $0.arguments)) },
                          reasoning: r.reasoning.isEmpty ? nil : r.reasoning)
        }
        guard g.stream ?? false else { return try json(answer(try await collect(started)), headers: started.routeHeaders) }
        var headers: HTTPFields = [.contentType: "application/x-ndjson"]
        headers.append(contentsOf: started.routeHeaders)
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            let encoder = JSONEncoder()
            var totals = CollectedCompletion()
            func line(_ v: some Encodable) async throws {
                var b = ByteBuffer(bytes: try encoder.encode(v))
                b.writeString("\n")
                try await writer.write(b)
            }
            do {
                while let e = try await started.next() {
                    switch e {
                    case .text(let t, _):
                        totals.text += t
                        try await line(Piece(response: t, model: model))
                    case .usage(let u): totals.usage = u
                    case .finished(let f): totals.finish = f
                    case .toolCall(let piece): totals.toolCalls.add(piece)
                    case .reasoning(let t): try await line(Piece(response: "", model: model, reasoning: t))
                    case .reasoningSignature: continue   // nothing here carries reasoning back
                    }
                }
                // The last line: the totals and the tool calls whole; the text was sent piece by piece.
                totals.text = ""
                let last = answer(totals)
                try await line(last)
                try await writer.finish(nil)
            } catch {
                started.cancel()
                throw error
            }
        })
    }

    struct ModelEntry: Encodable {
        let name: String
        let format = "gguf"
        let path: String
        let size: Int64
        let quantization: String?
        let architecture: String?
        let context_length: Int?
        let loaded: Bool
        let memory: Int?
        let queue_length: Int?
        /// A loaded model's LoRA adapters (ids for `lora`); left out when it has none or is not loaded.
        var adapters: [Adapter]? = nil
        struct Adapter: Encodable { let id: Int; let path: String; let scale: Double; let rank: Int; let matrices: Int }
    }

    private func models() async throws -> Response {
        let out = await backend.models.list().map { m in
            ModelEntry(name: m.name, path: m.path, size: m.sizeBytes, quantization: m.quantization, architecture: m.architecture,
                       context_length: m.contextLength, loaded: m.loaded != nil, memory: m.loaded?.memoryBytes,
                       queue_length: m.loaded?.queueLength,
                       adapters: m.loaded.flatMap { l in
                           l.adapters.isEmpty ? nil : l.adapters.map { .init(id: $0.id, path: $0.path, scale: $0.scale, rank: $0.rank, matrices: $0.matrices) }
                       })
        }
        struct List: Encodable { let models: [ModelEntry] }
        return try json(List(models: out))
    }

    struct ModelName: Decodable { let model: String; let keep_alive: OpenAI.KeepAlive? }

    /// llama-server's `GET /lora-adapters` (the model's adapters: `[{id, path, scale}]`) and `POST /lora-adapters`
    /// (`[{id, scale}]`: new default scales, unlisted adapters 0; `{"success": true}`), for the model named by
    /// `?model=` (loaded first if it is not). Admin only: the scales apply to every client's requests.
    private func loraAdapters(_ request: Request, setting: Bool) async throws -> Response {
        var request = request
        guard let model = request.uri.queryParameters.get("model"), !model.isEmpty else {
            throw APIError(.badRequest, "name the model: /lora-adapters?model=NAME", param: "model")
        }
        var scales: [AdapterSelection]?
        if setting {
            let body = try await request.collectBody(limit: 1 << 16)
            let list: [OpenAI.Adapter]
            do { list = try JSONDecoder().decode([OpenAI.Adapter].self, from: Data(buffer: body)) } catch {
                throw APIError(.badRequest, "the body must be a list of {\"id\": N, \"scale\": X}", param: "lora")
            }
            let selection = SamplingSettings(adapters: list.map { AdapterSelection(id: $0.id, scale: $0.scale) })
            if let (field, message) = selection.problem { throw APIError(.badRequest, "\(field) \(message)", param: field) }
            scales = selection.adapters
        }
        let info = try await backend.models.adapters(of: model, setting: scales)
        if setting {
            struct Done: Encodable { let success = true }
            return try json(Done())
        }
        struct Entry: Encodable { let id: Int; let path: String; let scale: Double }
        return try json(info.adapters.map { Entry(id: $0.id, path: $0.path, scale: $0.scale) })
    }

    private func load(_ request: Request) async throws -> Response {
        var request = request
        let body = try await request.collectBody(limit: 1 << 16)
        let m = try JSONDecoder().decode(ModelName.self, from: Data(buffer: body))
        let t0 = Date()
        let w = try await backend.models.load(m.model, keepAlive: m.keep_alive?.duration)
        struct Loaded: Encodable { let model: String; let loaded = true; let load_time: Double; let memory: Int }
        return try json(Loaded(model: m.model, load_time: Date().timeIntervalSince(t0), memory: w.memoryBytes))
    }

    private func unload(_ request: Request) async throws -> Response {
        var request = request
        let body = try await request.collectBody(limit: 1 << 16)
        let m = try JSONDecoder().decode(ModelName.self, from: Data(buffer: body))
        let was = await backend.models.unload(m.model)
        struct Unloaded: Encodable { let model: String; let unloaded: Bool }
        return try json(Unloaded(model: m.model, unloaded: was))
    }

    private func health() async throws -> Response {
        let workers = await backend.models.loaded()
        struct LoadedModel: Encodable { let name: String; let status: String; let queue_length: Int; let memory: Int }
        struct Memory: Encodable { let process_rss_bytes: Int?; let system_total_bytes: Int?; let system_available_bytes: Int? }
        struct CPU: Encodable { let cores: Int; let load_average_1m: Double?; let process_cpu_seconds: Double }
        struct Deployment: Encodable {
            let deployment: String; let state: String; let latency_ms: Double?; let in_flight: Int
            let checked_at: String?; let check_ms: Double?; let check_error: String?
        }
        struct Model: Encodable { let name: String; let status: String; let error: String? }
        struct Health: Encodable {
            let status: String; let uptime_seconds: Double; let loaded_models: [LoadedModel]; let models: [Model]; let queue_length: Int
            let requests: Int; let average_response_ms: Double?
            let memory: Memory; let cpu: CPU; let deployments: [Deployment]
        }
        let served = backend.metrics.snapshot().values
        let requests = served.map(\.requests).reduce(0, +)
        let answered = served.map { $0.requests - $0.errors }.reduce(0, +)
        let latency = served.map(\.totalLatency).reduce(0, +)
        let mem = SystemStats.memory()
        let h = Health(
            status: "ok", uptime_seconds: Date().timeIntervalSince(backend.startedAt),
            loaded_models: workers.map { LoadedModel(name: $0.name, status: $0.busy ? "busy" : "ready", queue_length: $0.queueLength, memory: $0.memoryBytes) },
            models: await backend.models.statuses().map { Model(name: $0.name, status: $0.state, error: $0.detail) },
            queue_length: workers.map(\.queueLength).reduce(0, +),
            requests: requests, average_response_ms: answered > 0 ? (latency / Double(answered) * 1000).rounded() : nil,
            memory: Memory(process_rss_bytes: SystemStats.residentBytes(), system_total_bytes: mem.total, system_available_bytes: mem.available),
            cpu: CPU(cores: ProcessInfo.processInfo.activeProcessorCount, load_average_1m: SystemStats.loadAverage(), process_cpu_seconds: SystemStats.cpuSeconds()),
            deployments: backend.deploymentStatuses().map {
                Deployment(deployment: $0.deployment, state: $0.state, latency_ms: $0.latencySeconds.map { ($0 * 1000).rounded() }, in_flight: $0.inFlight,
                           checked_at: $0.probe.map { ISO8601DateFormatter().string(from: $0.checkedAt) },
                           check_ms: $0.probe.map { ($0.latency * 1000).rounded() }, check_error: $0.probe?.error)
            })
        return try json(h)
    }

    private func metrics() throws -> Response {
        struct Entry: Encodable {
            let requests: Int; let errors: Int; let prompt_tokens: Int; let completion_tokens: Int
            let average_latency_seconds: Double; let tokens_per_second: Double
        }
        var out: [String: Entry] = [:]
        for (name, m) in backend.metrics.snapshot() {
            let ok = max(1, m.requests - m.errors)
            out[name] = Entry(requests: m.requests, errors: m.errors, prompt_tokens: m.promptTokens, completion_tokens: m.completionTokens,
                              average_latency_seconds: m.totalLatency / Double(ok),
                              tokens_per_second: m.generationSeconds > 0 ? Double(m.completionTokens) / m.generationSeconds : 0)
        }
        struct Metrics: Encodable { let uptime_seconds: Double; let models: [String: Entry] }
        return try json(Metrics(uptime_seconds: Date().timeIntervalSince(backend.startedAt), models: out))
    }
}

/// Process and system figures from /proc.
enum SystemStats {
    static func residentBytes() -> Int? {
        guard let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let parts = s.split(separator: " ")
        guard parts.count > 1, let pages = Int(parts[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    static func memory() -> (total: Int?, available: Int?) {
        guard let s = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return (nil, nil) }
        func value(_ key: String) -> Int? {
            guard let line = s.split(separator: "\n").first(where: { $0.hasPrefix(key + ":") }) else { return nil }
            return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }.map { $0 * 1024 }
        }
        return (value("MemTotal"), value("MemAvailable"))
    }

    static func loadAverage() -> Double? {
        guard let s = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return nil }
        return s.split(separator: " ").first.flatMap { Double($0) }
    }

    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
}
