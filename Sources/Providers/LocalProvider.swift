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
        switch e {
        case .contextOverflow(let needed, let limit): return CoreError.contextTooLong(needed: needed, limit: limit)
        case .unknownAdapter, .badAdapterScale: return CoreError.badRequest(e.description)
        default: return CoreError.engine(e.description)
        }
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
        var request = request
        // The model's own system message (an Ollama pull's SYSTEM) for a conversation that brings none, as Ollama does.
        if request.rawPrompt == nil, let system = worker.defaultSystem, !request.messages.contains(where: { $0.role == .system }) {
            request.messages.insert(ChatMessage(role: .system, content: system), at: 0)
        }
        let (text, format) = try renderPrompt(request, loaded: loaded, name: worker.name)
        let prompt = loaded.tokenize(text)
        let limit = loaded.model.shape.contextLength
        guard !prompt.isEmpty else { throw CoreError.badRequest("the prompt is empty") }
        guard prompt.count < limit else { throw CoreError.contextTooLong(needed: prompt.count, limit: limit) }
        if let max = request.sampling.maxTokens, max < 0 { throw CoreError.badRequest("max_tokens must not be negative") }
        if let adapters = request.sampling.adapters {
            do { _ = try loaded.model.resolveAdapters(adapters.map { AdapterUse(id: $0.id, scale: Float($0.scale)) }) } catch {
                throw canonical(error)
            }
        }

        var sampling = request.sampling
        let d = worker.defaults
        sampling.temperature = sampling.temperature ?? d.temperature
        sampling.topP = sampling.topP ?? d.topP
        sampling.topK = sampling.topK ?? d.topK
        sampling.maxTokens = sampling.maxTokens ?? d.maxTokens
        sampling.minP = sampling.minP ?? d.minP
        sampling.repeatPenalty = sampling.repeatPenalty ?? d.repeatPenalty
        if sampling.stop.isEmpty { sampling.stop = d.stop }
        var parameters = generationParameters(sampling, logprobs: request.logprobs, top: request.topLogprobs)
        parameters.constraint = try constraint(for: request, format: format, loaded: loaded)
        let tokenizer = loaded.tokenizer
        let wantLogprobs = request.logprobs
        let thinking = request.rawPrompt == nil && ReasoningSplitter.applies(toTemplate: loaded.chat.source)
        let output = OutputBox(reasoning: thinking ? ReasoningSplitter(startsInside: ReasoningSplitter.promptOpensBlock(text)) : nil,
                               tools: format.map { ToolCallParser(format: $0) })
        /// The answer's events: reasoning apart, calls out of the text; false when the client has gone.
        @Sendable func yield(_ text: String, _ lp: TokenLogprob?, final: Bool = false) -> Bool {
            for event in output.events(text, lp, final: final) {
                if case .terminated = continuation.yield(event) { return false }
            }
            return true
        }
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
                return yield(step.text, lp)
            },
            onFinish: { result in
                switch result {
                case .success(let r):
                    var reason: Core.FinishReason = switch r.finishReason {
                    case .stop: .stop
                    case .length: .length
                    case .cancelled: .cancelled
                    }
                    _ = yield("", nil, final: true)
                    if output.foundCalls, reason == .stop { reason = .toolCalls }
                    continuation.yield(.finished(reason))
                    continuation.yield(.usage(Usage(promptTokens: r.promptTokenCount, completionTokens: r.tokens.count,
                                                    cachedPromptTokens: r.cachedPromptTokens)))
                    continuation.finish()
                case .failure(let e):
                    continuation.finish(throwing: Self.canonical(e))
                }
            })
    }

    /// The prompt text for `request` with `loaded`'s chat template (the tools described as its format wants), and
    /// the tool-call format in play (nil without tools).
    static func renderPrompt(_ request: ChatRequest, loaded: LoadedModel, name: String) throws -> (String, ToolCallFormat?) {
        // Tools in play: the format the model writes calls in, from its template.
        let toolsActive = !request.tools.isEmpty && request.toolChoice != .none && request.rawPrompt == nil
        let format = toolsActive ? ToolCallFormat.detect(template: loaded.chat.source) : nil
        if let raw = request.rawPrompt { return (raw, format) }
        var messages = request.messages
        if format == .generic {
            let instruction = ToolCallFormat.genericInstruction(request.tools, choice: request.toolChoice, parallel: request.parallelToolCalls)
            if let i = messages.firstIndex(where: { $0.role == .system }) {
                messages[i].content = instruction + "\n\n" + messages[i].content
            } else {
                messages.insert(ChatMessage(role: .system, content: instruction), at: 0)
            }
        }
        let tools = toolsActive ? request.tools : []
        do {
            let text = try loaded.chat.render(promptMessages(messages), tools: tools.map {
                PromptTool(name: $0.name, description: $0.description, parametersJSON: $0.parametersJSON)
            })
            return (text, format)
        } catch {
            throw CoreError.badRequest("the chat template of '\(name)' cannot render these messages: \(error)")
        }
    }

    /// The grammar the answer must follow: the tool-call format's when tools are in play (calls forced by
    /// `tool_choice`, or the generic format's JSON), else the request's GBNF, or its `response_format` as a grammar;
    /// nil for free text. A grammar or schema the engine cannot enforce is the request's error, naming what is wrong.
    static func constraint(for request: ChatRequest, format: ToolCallFormat?, loaded: LoadedModel) throws -> TokenConstraint? {
        do {
            let gbnf: String
            if let format {
                let toolGrammar = try format.grammar(tools: request.tools, choice: request.toolChoice, parallel: request.parallelToolCalls)
                if request.grammar != nil || request.responseFormat != .text {
                    throw CoreError.badRequest("response_format or grammar together with tools is not supported for local models; send tool_choice: none to use them")
                }
                guard let toolGrammar else { return nil }
                return try loaded.grammars.constraint(gbnf: toolGrammar)
            }
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
        var parameters = GenerationParameters(sampling: p, maxTokens: s.maxTokens, stop: s.stop, logprobs: logprobs, topLogprobs: top, ignoreEOS: s.ignoreEOS)
        parameters.adapters = s.adapters?.map { AdapterUse(id: $0.id, scale: Float($0.scale)) }
        return parameters
    }
}

/// What one answer's text becomes — reasoning, text, tool calls — fed from the engine thread only (each job's tokens
/// arrive in order on it).
final class OutputBox: @unchecked Sendable {
    private var reasoning: ReasoningSplitter?
    private var tools: ToolCallParser?

    init(reasoning: ReasoningSplitter?, tools: ToolCallParser?) { self.reasoning = reasoning; self.tools = tools }

    var foundCalls: Bool { tools?.foundCalls ?? false }

    /// The events for the next piece of generated text (`final`: the answer ended, flush what was held back).
    func events(_ text: String, _ lp: TokenLogprob?, final: Bool) -> [ChatEvent] {
        var out: [ChatEvent] = []
        var lp = lp
        func answerText(_ t: String) {
            guard tools != nil else {
                if !t.isEmpty || lp != nil { out.append(.text(t, lp)); lp = nil }
                return
            }
            let pieces = (t.isEmpty ? [] : tools!.feed(t)) + (final ? tools!.finish() : [])
            for p in pieces {
                switch p {
                case .text(let s): out.append(.text(s, lp)); lp = nil
                case .call(let c): out.append(.toolCall(c))
                }
            }
        }
        if reasoning != nil {
            let pieces = (text.isEmpty ? [] : reasoning!.feed(text)) + (final ? reasoning!.finish() : [])
            var answer = ""
            for p in pieces {
                switch p {
                case .reasoning(let r): out.append(.reasoning(r))
                case .text(let t): answer += t
                }
            }
            answerText(answer)
        } else {
            answerText(text)
        }
        return out
    }
}
