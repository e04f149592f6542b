import Core
import Foundation
import Hummingbird

/// `/v1/models`, `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings` in OpenAI's exact wire format.
struct OpenAISurface {
    let backend: Backend

    func register(on router: Router<GatewayContext>) {
        router.get("/v1/models") { _, _ in try await models() }
        router.get("/v1/models/{id}") { _, context in
            let id = try context.parameters.require("id")
            guard let m = try await models(decoded: true).data.first(where: { $0.id == id }) else {
                throw CoreError.unknownModel(id, available: try await models(decoded: true).data.map(\.id))
            }
            return try json(m)
        }
        router.post("/v1/chat/completions") { request, context in try await chat(request, context) }
        router.post("/v1/completions") { request, context in try await completion(request, context) }
        router.post("/v1/embeddings") { request, context in try await embeddings(request, context) }
    }

    private func models(decoded: Bool = true) async throws -> OpenAI.ModelList {
        let created = Int(backend.startedAt.timeIntervalSince1970)
        return OpenAI.ModelList(data: try await backend.provider.models().map { OpenAI.Model(id: $0.name, created: created) })
    }

    private func models() async throws -> Response { try json(try await models(decoded: true)) }

    /// `prefix` and 24 random hex digits, as OpenAI's ids look.
    static func newID(_ prefix: String) -> String {
        var random = SystemRandomNumberGenerator()
        let digits = Array("0123456789abcdef".utf8)
        let a = random.next() as UInt64, b = random.next() as UInt64
        let hex = (0..<24).map { i -> UInt8 in
            let word = i < 16 ? a : b
            return digits[Int((word >> UInt64((i % 16) * 4)) & 15)]
        }
        return prefix + String(decoding: hex, as: UTF8.self)
    }

    private func chat(_ request: Request, _ context: GatewayContext) async throws -> Response {
        var request = request
        let body = try await request.collectBody(limit: BodyLimit.maxBytes)
        // Parsed once: by the guard when it read the model, else here.
        let decoded = try (context.parsedBody.map(OpenAI.WithSampling.direct) ?? OpenAI.WithSampling.direct(body))
            ?? JSONDecoder().decode(OpenAI.WithSampling<OpenAI.ChatRequestBody>.self, from: Data(buffer: body))
        let chat = decoded.body, sampling = decoded.sampling
        let messages = try OpenAI.canonical(chat.messages)
        let tools = try OpenAI.canonical(chat.tools ?? [])
        guard !messages.isEmpty else { throw APIError(.badRequest, "messages must not be empty", param: "messages") }
        if let t = chat.top_logprobs, !(0...20).contains(t) { throw APIError(.badRequest, "top_logprobs must be between 0 and 20", param: "top_logprobs") }
        var core = ChatRequest(model: chat.model, messages: messages, sampling: try sampling.validated(), tools: tools,
                               stream: sampling.stream ?? false, logprobs: chat.logprobs ?? false, topLogprobs: chat.top_logprobs ?? 0)
        core.keepAlive = sampling.keep_alive?.duration
        core.hints = try RequestHints.from(request, metadata: chat.metadata)
        OutputConstraints.apply(try OutputConstraints.read(body, toolNames: tools.map(\.name)), to: &core)
        let started = try await backend.start(core, kind: "chat", cache: CacheDirective(request.headers), caller: context.caller,
                                              record: context.record)
        let (id, created) = started.identity { (Self.newID("chatcmpl-"), Int(Date().timeIntervalSince1970)) }
        if core.stream {
            let includeUsage = sampling.stream_options?.include_usage ?? false
            return sse(started, in: backend.streams, caller: context.caller) { event, encoder in
                switch event {
                case .text(let text, let lp):
                    let chunk = OpenAI.ChatChunk(id: id, created: created, model: chat.model, choices: [
                        OpenAI.ChunkChoice(index: 0, delta: OpenAI.Delta(content: text),
                                           logprobs: lp.map { OpenAI.Logprobs(content: [OpenAI.TokenLogprob($0)]) }, finish_reason: nil),
                    ], usage: nil)
                    return [try encoder.encode(chunk)]
                case .finished(let reason):
                    return [try encoder.encode(OpenAI.ChatChunk(id: id, created: created, model: chat.model, choices: [
                        OpenAI.ChunkChoice(index: 0, delta: OpenAI.Delta(), logprobs: nil, finish_reason: OpenAI.finishReason(reason)),
                    ], usage: nil))]
                case .usage(let u):
                    guard includeUsage else { return [] }
                    return [try encoder.encode(OpenAI.ChatChunk(id: id, created: created, model: chat.model, choices: [], usage: OpenAI.Usage(u)))]
                case .toolCall(let piece):
                    return [try encoder.encode(OpenAI.ChatChunk(id: id, created: created, model: chat.model, choices: [
                        OpenAI.ChunkChoice(index: 0, delta: OpenAI.Delta(tool_calls: [OpenAI.ToolCallDeltaOut(piece)]), logprobs: nil, finish_reason: nil),
                    ], usage: nil))]
                case .reasoning(let text):
                    return [try encoder.encode(OpenAI.ChatChunk(id: id, created: created, model: chat.model, choices: [
                        OpenAI.ChunkChoice(index: 0, delta: OpenAI.Delta(reasoning_content: text), logprobs: nil, finish_reason: nil),
                    ], usage: nil))]
                case .reasoningSignature:
                    return []   // Chat Completions has no place for it
                }
            } first: { encoder in
                [try encoder.encode(OpenAI.ChatChunk(id: id, created: created, model: chat.model, choices: [
                    OpenAI.ChunkChoice(index: 0, delta: OpenAI.Delta(role: "assistant", content: ""), logprobs: nil, finish_reason: nil),
                ], usage: nil))]
            }
        }
        let result = try await collect(started)
        let response = OpenAI.ChatCompletion(id: id, created: created, model: chat.model, choices: [
            OpenAI.ChatChoice(index: 0, message: OpenAI.ResponseMessage(role: "assistant", text: result.text, toolCalls: result.toolCalls.calls,
                                                                         reasoning: result.reasoning),
                              logprobs: core.logprobs ? OpenAI.Logprobs(content: result.logprobs.map(OpenAI.TokenLogprob.init)) : nil,
                              finish_reason: OpenAI.finishReason(result.finish)),
        ], usage: OpenAI.Usage(result.usage))
        var headers: HTTPFields = [.contentType: "application/json"]
        headers.append(contentsOf: started.routeHeaders)
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: response.json))
    }

    private func completion(_ request: Request, _ context: GatewayContext) async throws -> Response {
        var request = request
        let body = try await request.collectBody(limit: BodyLimit.maxBytes)
        let data = Data(buffer: body)
        let decoder = JSONDecoder()
        let decoded = try decoder.decode(OpenAI.WithSampling<OpenAI.CompletionRequestBody>.self, from: data)
        let c = decoded.body, sampling = decoded.sampling
        guard c.prompt.values.count == 1, let prompt = c.prompt.values.first else {
            throw APIError(.badRequest, "prompt must be one string", param: "prompt")
        }
        if c.suffix != nil { throw APIError(.badRequest, "suffix is not supported", param: "suffix") }
        var core = ChatRequest(model: c.model, messages: [], sampling: try sampling.validated(), stream: sampling.stream ?? false,
                               rawPrompt: prompt)
        core.keepAlive = sampling.keep_alive?.duration
        core.hints = try RequestHints.from(request, metadata: c.metadata)
        let started = try await backend.start(core, kind: c.echo == true ? "completion+echo" : "completion",
                                              cache: CacheDirective(request.headers), caller: context.caller, record: context.record)
        let (id, created) = started.identity { (Self.newID("cmpl-"), Int(Date().timeIntervalSince1970)) }
        if core.stream {
            let includeUsage = sampling.stream_options?.include_usage ?? false
            return sse(started, in: backend.streams, caller: context.caller) { event, encoder in
                switch event {
                case .text(let text, _):
                    return [try encoder.encode(OpenAI.Completion(id: id, created: created, model: c.model, choices: [
                        OpenAI.CompletionChoice(text: text, index: 0, logprobs: nil, finish_reason: nil)], usage: nil))]
                case .finished(let reason):
                    return [try encoder.encode(OpenAI.Completion(id: id, created: created, model: c.model, choices: [
                        OpenAI.CompletionChoice(text: "", index: 0, logprobs: nil, finish_reason: OpenAI.finishReason(reason))], usage: nil))]
                case .usage(let u):
                    guard includeUsage else { return [] }
                    return [try encoder.encode(OpenAI.Completion(id: id, created: created, model: c.model, choices: [], usage: OpenAI.Usage(u)))]
                case .toolCall, .reasoning, .reasoningSignature:
                    return []
                }
            } first: { _ in [] }
        }
        let result = try await collect(started)
        let text = (c.echo ?? false) ? prompt + result.text : result.text
        return try json(OpenAI.Completion(id: id, created: created, model: c.model, choices: [
            OpenAI.CompletionChoice(text: text, index: 0, logprobs: nil, finish_reason: OpenAI.finishReason(result.finish))],
            usage: OpenAI.Usage(result.usage)), headers: started.routeHeaders)
    }
}

/// A whole completion, read to the end.
struct CollectedCompletion {
    var text = ""
    var reasoning = ""
    /// The reasoning as blocks, each with its signature where the provider signs them.
    var reasoningBlocks: [ReasoningBlock] = []
    var reasoningOpen = false
    var toolCalls = ToolCallAccumulator()
    var logprobs: [TokenLogprob] = []
    var usage = Usage(promptTokens: 0, completionTokens: 0)
    var finish = FinishReason.stop
}

func collect(_ started: StartedCompletion) async throws -> CollectedCompletion {
    var r = CollectedCompletion()
    while let e = try await started.next() {
        ReasoningBlock.append(e, to: &r.reasoningBlocks, open: &r.reasoningOpen)
        switch e {
        case .text(let t, let lp):
            r.text += t
            if let lp { r.logprobs.append(lp) }
        case .usage(let u): r.usage = u
        case .finished(let f): r.finish = f
        case .toolCall(let piece): r.toolCalls.add(piece)
        case .reasoning(let t): r.reasoning += t
        case .reasoningSignature: break
        }
    }
    return r
}

func json(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers extra: HTTPFields = [:]) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
    var headers: HTTPFields = [.contentType: "application/json"]
    headers.append(contentsOf: extra)
    return Response(status: status, headers: headers,
                    body: ResponseBody(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
}

/// Server-sent events: `data: {json}` per chunk, then `data: [DONE]`; an error after the headers were sent becomes a
/// final `data: {"error": …}` event. The stream is resumable (`StreamHub`).
func sse(_ started: StartedCompletion, in hub: StreamHub, caller: GuardCaller,
         chunks: @escaping @Sendable (ChatEvent, JSONEncoder) throws -> [Data],
         first: @escaping @Sendable (JSONEncoder) throws -> [Data] = { _ in [] }) -> Response {
    hub.respond(started, renderer: OpenAIChunks(chunks: chunks, first: first), framing: .sse, caller: caller)
}

/// OpenAI's chunks as a stream's frames.
struct OpenAIChunks: StreamRenderer {
    let chunks: @Sendable (ChatEvent, JSONEncoder) throws -> [Data]
    let first: @Sendable (JSONEncoder) throws -> [Data]
    private let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        return e
    }()

    init(chunks: @escaping @Sendable (ChatEvent, JSONEncoder) throws -> [Data], first: @escaping @Sendable (JSONEncoder) throws -> [Data]) {
        self.chunks = chunks
        self.first = first
    }

    private static func frames(_ list: [Data]) -> [StreamFrame] { list.map { StreamFrame(data: ByteBuffer(bytes: $0)) } }
    func start() throws -> [StreamFrame] { Self.frames(try first(encoder)) }
    func next(_ event: ChatEvent) throws -> [StreamFrame] { Self.frames(try chunks(event, encoder)) }
    func end() -> [StreamFrame] { [StreamFrame("[DONE]")] }
    func failed(_ error: APIError) -> [StreamFrame] { [StreamFrame(data: error.body), StreamFrame("[DONE]")] }
}
