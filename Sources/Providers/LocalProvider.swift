import Core
import Foundation
import Grammar
import Inference

/// The local engine as a `Provider`: renders the chat with the model's format, tokenizes, queues the generation on
/// the model's engine thread and streams its tokens back.
public struct LocalProvider: Provider {
    public let host: ModelHost
    public var name: String { ProviderID.local.rawValue }

    public init(host: ModelHost) { self.host = host }

    public func models() async throws -> [ModelInfo] {
        await host.available().map { ModelInfo(name: $0.name, provider: name, sizeBytes: Int($0.sizeBytes)) }
    }

    public func chat(_ request: ChatRequest) -> ChatStream {
        let (stream, continuation) = AsyncThrowingStream<ChatEvent, Error>.makeStream()
        let cancel = CancelFlag()
        continuation.onTermination = { _ in cancel.set() }
        let host = host
        Task {
            do {
                let worker = try await host.worker(for: request.model)
                if let keep = request.keepAlive { worker.keepAlive = keep }
                let job = try Self.makeJob(request, worker: worker, cancel: cancel, continuation: continuation)
                try worker.submit(job)
            } catch {
                continuation.finish(throwing: Self.canonical(error))
            }
        }
        return ChatStream(events: stream, cancel: { cancel.set() })
    }

    /// An engine error as the canonical error the rest of the server knows: a context overflow is the request's
    /// (413), anything else the engine's own failure.
    static func canonical(_ error: Error) -> Error {
        guard let e = error as? InferenceError else { return error }
        if case .contextOverflow(let needed, let limit) = e { return CoreError.contextTooLong(needed: needed, limit: limit) }
        return CoreError.engine(e.description)
    }

    /// Messages in the shape chat templates expect; a tool result also gets the name of the call it answers.
    static func promptMessages(_ messages: [ChatMessage]) -> [PromptMessage] {
        var callNames: [String: String] = [:]
        return messages.map { m in
            for call in m.toolCalls { callNames[call.id] = call.name }
            return PromptMessage(role: m.role.rawValue, content: m.content,
                                 toolCalls: m.toolCalls.map { PromptToolCall(id: $0.id, name: $0.name, arguments: $0.arguments) },
                                 toolCallID: m.toolCallID, name: m.toolCallID.flatMap { callNames[$0] })
        }
    }

    static func makeJob(_ request: ChatRequest, worker: EngineWorker, cancel: CancelFlag,
                        continuation: AsyncThrowingStream<ChatEvent, Error>.Continuation) throws -> EngineWorker.Job {
        let loaded = worker.loaded
        let text: String
        if let raw = request.rawPrompt {
            text = raw
        } else {
            do {
                text = try loaded.chat.render(promptMessages(request.messages), tools: request.tools.map {
                    PromptTool(name: $0.name, description: $0.description, parametersJSON: $0.parametersJSON)
                })
            } catch {
                throw CoreError.badRequest("the chat template of '\(worker.name)' cannot render these messages: \(error)")
            }
        }
        let prompt = loaded.tokenize(text)
        let limit = loaded.model.shape.contextLength
        guard !prompt.isEmpty else { throw CoreError.badRequest("the prompt is empty") }
        guard prompt.count < limit else { throw CoreError.contextTooLong(needed: prompt.count, limit: limit) }
        if let max = request.sampling.maxTokens, max < 0 { throw CoreError.badRequest("max_tokens must not be negative") }

        var sampling = request.sampling
        let d = worker.defaults
        sampling.temperature = sampling.temperature ?? d.temperature
        sampling.topP = sampling.topP ?? d.topP
        sampling.topK = sampling.topK ?? d.topK
        sampling.maxTokens = sampling.maxTokens ?? d.maxTokens
        var parameters = generationParameters(sampling, logprobs: request.logprobs, top: request.topLogprobs)
        parameters.constraint = try constraint(for: request, loaded: loaded)
        let tokenizer = loaded.tokenizer
        let wantLogprobs = request.logprobs
        return EngineWorker.Job(
            prompt: prompt, parameters: parameters, cancelled: cancel,
            onToken: { step in
                var lp: TokenLogprob?
                if wantLogprobs, step.id >= 0, let value = step.logprob {
                    let piece = { (id: Int32) in String(decoding: tokenizer.tokenBytes(id), as: UTF8.self) }
                    lp = TokenLogprob(token: piece(step.id), logprob: Double(value),
                                      top: step.topLogprobs.map { TokenLogprob.Alternative(token: piece($0.id), logprob: Double($0.logprob)) })
                }
                if step.text.isEmpty && lp == nil { return true }
                if case .terminated = continuation.yield(.text(step.text, lp)) { return false }
                return true
            },
            onFinish: { result in
                switch result {
                case .success(let r):
                    let reason: Core.FinishReason = switch r.finishReason {
                    case .stop: .stop
                    case .length: .length
                    case .cancelled: .cancelled
                    }
                    continuation.yield(.finished(reason))
                    continuation.yield(.usage(Usage(promptTokens: r.promptTokenCount, completionTokens: r.tokens.count,
                                                    cachedPromptTokens: r.cachedPromptTokens)))
                    continuation.finish()
                case .failure(let e):
                    continuation.finish(throwing: Self.canonical(e))
                }
            })
    }

    /// The grammar the answer must follow: the request's GBNF, or its `response_format` as a grammar; nil for free
    /// text. A grammar or schema the engine cannot enforce is the request's error, naming what is wrong.
    static func constraint(for request: ChatRequest, loaded: LoadedModel) throws -> TokenConstraint? {
        do {
            let gbnf: String
            switch (request.grammar, request.responseFormat) {
            case (let g?, .text): gbnf = g
            case (.some, _): throw CoreError.badRequest("give either grammar or response_format, not both")
            case (nil, .text): return nil
            case (nil, .jsonObject): gbnf = JSONSchemaGrammar.anyObject
            case (nil, .jsonSchema(_, let schema, _)): gbnf = try JSONSchemaGrammar.gbnf(schema: schema)
            }
            return try loaded.grammars.constraint(gbnf: gbnf)
        } catch let e as GrammarError {
            throw CoreError.badRequest(e.description)
        }
    }

    /// Client settings over the engine's defaults. With no temperature given, sampling uses the defaults
    /// (0.8, top-k 40, top-p 0.95, min-p 0.05); temperature 0 is greedy.
    static func generationParameters(_ s: SamplingSettings, logprobs: Bool, top: Int) -> GenerationParameters {
        var p = SamplingParameters()
        if let t = s.temperature { p.temperature = Float(t) }
        if let v = s.topP { p.topP = Float(v) }
        if let v = s.topK { p.topK = v }
        if let v = s.minP { p.minP = Float(v) }
        if let v = s.repeatPenalty { p.repeatPenalty = Float(v) }
        if let v = s.presencePenalty { p.presencePenalty = Float(v) }
        if let v = s.frequencyPenalty { p.frequencyPenalty = Float(v) }
        p.seed = s.seed
        return GenerationParameters(sampling: p, maxTokens: s.maxTokens, stop: s.stop, logprobs: logprobs, topLogprobs: top, ignoreEOS: s.ignoreEOS)
    }
}
