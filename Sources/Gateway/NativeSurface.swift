import Core
import Foundation
import Grammar
import Hummingbird
import Providers
import Storage

/// The native `/api/v1` surface: generate, chat, models, load/unload, health, metrics.
/// Streaming answers are NDJSON: one JSON object per line, `{"response": piece, "done": false}`, and a last
/// line with `"done": true` and the totals.
///
/// `/api/v1/chat` with `session` (a name the client picks) keeps the conversation on the server: the session's
/// earlier turns are put before the request's messages, and the request's messages and the answer are added to it
/// once the answer is complete. The history is fitted to a local model's context as `ContextWindow` says (oldest
/// turns first, system messages kept) and what was left out is reported in the answer's `session`. A system message
/// in the request is used instead of the session's stored ones for that turn. Sessions are conversations (readable
/// at `/v1/conversations/{conversation_id}`), kept per key.
struct NativeSurface {
    let backend: Backend
    /// Where sessions are kept; nil: nowhere (`session` is a 400).
    var conversations: ConversationStore? = nil

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
        /// A conversation kept on the server under this name (chat only).
        let session: String?
    }

    /// What a session turn did: the conversation it lives in, the history put before the request's messages, what
    /// of it was left out to fit the context.
    struct SessionReport: Encodable, Sendable {
        let id: String
        let conversation_id: String
        /// Messages of the session's history sent with this turn.
        let history_messages: Int
        /// Messages of the history left out to fit the model's context (whole turns, oldest first).
        let trimmed_messages: Int
        let trimmed_turns: Int
        /// Whether this turn was added to the session (false when storing it failed; the answer stands).
        var stored: Bool
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
        /// With `session`: what the turn did with the session's history.
        var session: SessionReport? = nil
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
        var opened: SessionTurn?
        if let name = g.session {
            guard chat else { throw APIError(.badRequest, "session is for /api/v1/chat", param: "session") }
            opened = try await openSession(name, caller: context.caller, request: &core)
        }
        let session = opened
        let started = try await backend.start(core, caller: context.caller, record: context.record)
        let model = g.model
        @Sendable func answer(_ r: CollectedCompletion, session: SessionReport? = nil) -> Answer {
            let calls = r.toolCalls.calls
            return Answer(response: r.text, model: model, tokens_used: r.usage.totalTokens, prompt_tokens: r.usage.promptTokens,
                          completion_tokens: r.usage.completionTokens, processing_time: Date().timeIntervalSince(began),
                          timestamp: ISO8601DateFormatter().string(from: Date()), finish_reason: OpenAI.finishReason(r.finish),
                          tool_calls: calls.isEmpty ? nil : calls.map { OpenAI.ToolCallOut(id: $0.id, function: .init(name: $0.name, arguments: $0.arguments)) },
                          reasoning: r.reasoning.isEmpty ? nil : r.reasoning, session: session)
        }
        guard g.stream ?? false else {
            let collected = try await collect(started)
            var report: SessionReport?
            if let session { report = await session.store(answer: collected) }
            return try json(answer(collected, session: report), headers: started.routeHeaders)
        }
        let renderer = Lines(model: model, session: session) { answer($0, session: $1) }
        return backend.streams.respond(started, renderer: renderer, framing: .ndjson, caller: context.caller)
    }

    /// The native stream's NDJSON lines: a `Piece` per text or reasoning piece, then the answer with its totals and
    /// tool calls (after the session, if any, is stored); an error ends it with `{"error": {…}}`.
    struct Lines: StreamRenderer {
        let model: String
        let session: SessionTurn?
        let answer: @Sendable (CollectedCompletion, SessionReport?) -> Answer
        private var totals = CollectedCompletion()

        init(model: String, session: SessionTurn?, answer: @escaping @Sendable (CollectedCompletion, SessionReport?) -> Answer) {
            self.model = model; self.session = session; self.answer = answer
        }

        private static func line(_ v: some Encodable) throws -> StreamFrame {
            StreamFrame(data: ByteBuffer(bytes: try JSONEncoder().encode(v)))
        }

        func start() -> [StreamFrame] { [] }

        mutating func next(_ e: ChatEvent) throws -> [StreamFrame] {
            switch e {
            case .text(let t, _):
                totals.text += t
                return [try Self.line(Piece(response: t, model: model))]
            case .usage(let u): totals.usage = u
            case .finished(let f): totals.finish = f
            case .toolCall(let piece): totals.toolCalls.add(piece)
            case .reasoning(let t): return [try Self.line(Piece(response: "", model: model, reasoning: t))]
            case .reasoningSignature: break   // nothing here carries reasoning back
            }
            return []
        }

        /// The last line: the totals and the tool calls whole; the text was sent piece by piece.
        mutating func end() async throws -> [StreamFrame] {
            let report = await session?.store(answer: totals)
            totals.text = ""
            return [try Self.line(answer(totals, report))]
        }

        func failed(_ error: APIError) -> [StreamFrame] { [StreamFrame(data: error.body)] }
    }

    /// A session turn under way: where its conversation is, what this turn adds to it.
    struct SessionTurn: Sendable {
        let conversations: ConversationStore
        let report: SessionReport
        let owner: String?
        let added: [ChatMessage]

        /// Adds the request's messages and the answer to the session (creating it on its first turn); the report,
        /// with `stored` false when the database refused (the answer is still given).
        func store(answer: CollectedCompletion) async -> SessionReport {
            var report = report
            let reply = ChatMessage(role: .assistant, content: answer.text, toolCalls: answer.toolCalls.calls)
            let now = Date()
            let rows = ConversationsSurface.rows(ConversationsSurface.items(of: added + [reply]), at: now)
            do {
                if try await !conversations.append(report.conversation_id, items: rows, at: now) {
                    // The session's first turn.
                    do {
                        try await conversations.create(StoredConversation(id: report.conversation_id, owner: owner, createdAt: now, updatedAt: now,
                                                                  metadata: OrderedJSON.object([("session", .string(report.id))]).text),
                                               items: rows)
                    } catch {
                        // Another request made it first.
                        guard try await conversations.append(report.conversation_id, items: rows, at: now) else { throw error }
                    }
                }
                report.stored = true
            } catch {
                RequestLogMiddleware<GatewayContext>.writeToStderr("session \(report.id) could not be stored: \(error)\n")
                report.stored = false
            }
            return report
        }
    }

    /// Puts the session's history before the request's messages, fitted to the model's context.
    private func openSession(_ name: String, caller: GuardCaller, request core: inout ChatRequest) async throws -> SessionTurn {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:@".utf8)
        guard (1...128).contains(name.utf8.count), name.utf8.allSatisfy(allowed.contains) else {
            throw APIError(.badRequest, "session must be 1 to 128 letters, digits or - _ . : @", param: "session")
        }
        guard let store = conversations else {
            throw APIError(.badRequest, "sessions are kept in the server's database, and this server has none", param: "session")
        }
        let owner = caller.key?.name
        let id = ConversationsSurface.sessionID(owner: owner, session: name)
        let found = try await store.find(id)
        var history: [ChatMessage] = []
        if found != nil {
            let items = try await ConversationsSurface.parsedItems(of: id, in: store)
            history = try ResponsesRequest.messages(instructions: nil, items: items)
        }
        let added = core.messages
        let storedSystem = history.filter { $0.role == .system }
        if added.contains(where: { $0.role == .system }) { history.removeAll { $0.role == .system } }
        core.messages = history + added
        // A system message the session already holds (a client sending the same one every turn) is not stored again.
        let toStore = added.filter { m in !(m.role == .system && storedSystem.contains(m)) }
        var dropped = 0, turns = 0
        if !history.isEmpty, let window = await backend.contextWindow(for: core) {
            let fitted = try await window.fit(core.messages)
            core.messages = fitted.messages
            dropped = fitted.droppedMessages
            turns = fitted.droppedTurns
        }
        let report = SessionReport(id: name, conversation_id: id, history_messages: history.count - dropped,
                                   trimmed_messages: dropped, trimmed_turns: turns, stored: false)
        return SessionTurn(conversations: store, report: report, owner: owner, added: toStore)
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
