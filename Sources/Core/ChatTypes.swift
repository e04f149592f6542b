import Synchronization

/// The canonical request and event types every surface decodes into and every provider consumes.
/// Core knows no HTTP and no engine: surfaces and providers translate to and from these.

public struct ChatMessage: Sendable, Equatable, Codable {
    public enum Role: String, Sendable, Codable, CaseIterable { case system, user, assistant, tool }
    public var role: Role
    public var content: String
    /// For `tool` messages: the call this answers.
    public var toolCallID: String?
    /// For `assistant` messages: calls the model made.
    public var toolCalls: [ToolCall]
    /// For `assistant` messages: the reasoning that came before the answer, as the client sent it back (Anthropic's
    /// thinking blocks, the Responses API's reasoning items). Providers that take reasoning back (Anthropic, which
    /// needs its signed blocks again in a tool loop) send it; the others leave it out of the prompt.
    public var reasoning: [ReasoningBlock]

    public init(role: Role, content: String, toolCallID: String? = nil, toolCalls: [ToolCall] = [], reasoning: [ReasoningBlock] = []) {
        self.role = role; self.content = content; self.toolCallID = toolCallID; self.toolCalls = toolCalls; self.reasoning = reasoning
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        role = try c.decode(Role.self, forKey: .role)
        content = try c.decode(String.self, forKey: .content)
        toolCallID = try c.decodeIfPresent(String.self, forKey: .toolCallID)
        toolCalls = try c.decodeIfPresent([ToolCall].self, forKey: .toolCalls) ?? []
        reasoning = try c.decodeIfPresent([ReasoningBlock].self, forKey: .reasoning) ?? []
    }
}

/// One block of a model's reasoning in an earlier turn.
public struct ReasoningBlock: Sendable, Equatable, Codable {
    public var text: String
    /// The provider's signature over the text (Anthropic's `signature`, carried in the Responses API as a reasoning
    /// item's `encrypted_content`): the provider accepts the block back only with it, unchanged.
    public var signature: String?
    /// Reasoning the provider keeps encrypted (Anthropic's `redacted_thinking` data); `text` is then empty.
    public var redacted: String?

    public init(text: String, signature: String? = nil, redacted: String? = nil) {
        self.text = text; self.signature = signature; self.redacted = redacted
    }

    /// Joins reasoning events into blocks: text runs into the open block, a signature closes it.
    public static func append(_ event: ChatEvent, to blocks: inout [ReasoningBlock], open: inout Bool) {
        switch event {
        case .reasoning(let t):
            if open, !blocks.isEmpty { blocks[blocks.count - 1].text += t } else { blocks.append(ReasoningBlock(text: t)); open = true }
        case .reasoningSignature(let s):
            if open, !blocks.isEmpty { blocks[blocks.count - 1].signature = s } else { blocks.append(ReasoningBlock(text: "", signature: s)) }
            open = false
        default:
            open = false
        }
    }
}

public struct ToolCall: Sendable, Equatable, Codable {
    public var id: String
    public var name: String
    /// JSON text of the arguments.
    public var arguments: String
    public init(id: String, name: String, arguments: String) { self.id = id; self.name = name; self.arguments = arguments }
}

/// A piece of a tool call as it streams: which call it belongs to (`index`, the call's position among the answer's
/// calls), the call's id and function name (carried by its first piece), and the next fragment of its arguments' JSON
/// text. A call that arrives whole is one piece with all of them.
public struct ToolCallDelta: Sendable, Equatable, Codable {
    public var index: Int
    public var id: String?
    public var name: String?
    public var arguments: String
    public init(index: Int, id: String? = nil, name: String? = nil, arguments: String = "") {
        self.index = index; self.id = id; self.name = name; self.arguments = arguments
    }

    /// `call` as one piece.
    public static func whole(_ call: ToolCall, index: Int) -> ToolCallDelta {
        ToolCallDelta(index: index, id: call.id, name: call.name, arguments: call.arguments)
    }
}

/// Joins the pieces of an answer's tool calls into whole calls, ordered by index. A call that never got an id is
/// `call_<index>`; one whose arguments never came has `{}`.
public struct ToolCallAccumulator: Sendable, Equatable {
    private var pieces: [Int: (id: String?, name: String, arguments: String)] = [:]

    public init() {}

    public var isEmpty: Bool { pieces.isEmpty }

    public mutating func add(_ delta: ToolCallDelta) {
        var call = pieces[delta.index] ?? (id: nil, name: "", arguments: "")
        if let id = delta.id, !id.isEmpty { call.id = id }
        if let name = delta.name { call.name += name }
        call.arguments += delta.arguments
        pieces[delta.index] = call
    }

    public var calls: [ToolCall] {
        pieces.keys.sorted().compactMap { i in
            pieces[i].map { ToolCall(id: $0.id ?? "call_\(i)", name: $0.name, arguments: $0.arguments.isEmpty ? "{}" : $0.arguments) }
        }
    }

    public static func == (a: ToolCallAccumulator, b: ToolCallAccumulator) -> Bool { a.calls == b.calls }
}

public struct ToolDefinition: Sendable, Equatable, Codable {
    public var name: String
    public var description: String?
    /// JSON Schema of the parameters, as JSON text.
    public var parametersJSON: String?
    public init(name: String, description: String? = nil, parametersJSON: String? = nil) {
        self.name = name; self.description = description; self.parametersJSON = parametersJSON
    }
}

/// The shape an answer must take (OpenAI's `response_format`).
public enum ResponseFormat: Sendable, Equatable, Codable {
    /// Free text.
    case text
    /// One JSON object.
    case jsonObject
    /// JSON that validates against `schema` (JSON text, members in the client's order); `name` and `strict` as sent.
    case jsonSchema(name: String, schema: String, strict: Bool)
}

/// Whether and which tools the model must call (OpenAI's `tool_choice`).
public enum ToolChoice: Sendable, Equatable, Codable {
    /// The model decides.
    case auto
    /// No tool calls: the answer is text.
    case none
    /// At least one tool call.
    case required
    /// A call of this function.
    case function(String)
}

/// Sampling settings as clients send them; nil means "the model's default".
public struct SamplingSettings: Sendable, Equatable, Codable {
    public var temperature: Double?
    public var topP: Double?
    public var topK: Int?
    public var minP: Double?
    public var repeatPenalty: Double?
    public var presencePenalty: Double?
    public var frequencyPenalty: Double?
    public var seed: UInt64?
    public var maxTokens: Int?
    public var stop: [String]
    /// Generate past the model's end-of-generation tokens, up to `maxTokens` (for benchmarks; llama-server's and
    /// vLLM's `ignore_eos`).
    public var ignoreEOS: Bool
    /// The LoRA adapters to run with (llama-server's `lora` field): adapters not listed are off; nil or empty: the
    /// model's configured scales. Local models and OpenAI-compatible upstreams only.
    public var adapters: [AdapterSelection]?
    public init(temperature: Double? = nil, topP: Double? = nil, topK: Int? = nil, minP: Double? = nil,
                repeatPenalty: Double? = nil, presencePenalty: Double? = nil, frequencyPenalty: Double? = nil,
                seed: UInt64? = nil, maxTokens: Int? = nil, stop: [String] = [], ignoreEOS: Bool = false,
                adapters: [AdapterSelection]? = nil) {
        self.temperature = temperature; self.topP = topP; self.topK = topK; self.minP = minP
        self.repeatPenalty = repeatPenalty; self.presencePenalty = presencePenalty; self.frequencyPenalty = frequencyPenalty
        self.seed = seed; self.maxTokens = maxTokens; self.stop = stop; self.ignoreEOS = ignoreEOS; self.adapters = adapters
    }
}

/// One LoRA adapter of the model, by its id (load order), and the scale to apply it at.
public struct AdapterSelection: Sendable, Hashable, Codable {
    public var id: Int
    public var scale: Double
    public init(id: Int, scale: Double) { self.id = id; self.scale = scale }
}

extension SamplingSettings {
    /// The first setting out of its range, named as the OpenAI API names it, and what is wrong with it; nil when
    /// every one is fine. The server's surfaces and the command line check with this one rule.
    public var problem: (field: String, message: String)? {
        if let t = temperature, !(0...2).contains(t) { return ("temperature", "must be between 0 and 2") }
        if let p = topP, !(0...1).contains(p) { return ("top_p", "must be between 0 and 1") }
        if let p = minP, !(0...1).contains(p) { return ("min_p", "must be between 0 and 1") }
        if let p = repeatPenalty, !(p > 0) { return ("repeat_penalty", "must be greater than 0") }
        if let p = presencePenalty, !(-2...2).contains(p) { return ("presence_penalty", "must be between -2 and 2") }
        if let p = frequencyPenalty, !(-2...2).contains(p) { return ("frequency_penalty", "must be between -2 and 2") }
        if let m = maxTokens, m < 1 { return ("max_tokens", "must be at least 1") }
        if stop.count > 4 { return ("stop", "must hold at most 4 sequences") }
        if let a = adapters {
            if a.count > 64 { return ("lora", "must list at most 64 adapters") }
            if a.contains(where: { $0.id < 0 }) { return ("lora", "ids must not be negative") }
            if a.contains(where: { !$0.scale.isFinite || abs($0.scale) > 1e6 }) { return ("lora", "scales must be finite numbers") }
        }
        return nil
    }
}

/// What a caller says about a request beyond the model name: its task (for `auto` routing) and whether it may
/// leave the machine.
public struct RequestHints: Sendable, Equatable {
    /// The kind of task (`code`, `general`, or a name the configuration's `routing.auto` rules know); nil: `auto`
    /// classifies the messages.
    public var task: String?
    /// Where `task` came from (`x-switchyard-task header`, `metadata.task`), for the route reason.
    public var taskSource: String?
    /// Served only by local deployments (the built-in engine, or a provider declared `local: true`); a model with
    /// none is refused rather than sent elsewhere.
    public var localOnly: Bool
    public init(task: String? = nil, taskSource: String? = nil, localOnly: Bool = false) {
        self.task = task; self.taskSource = taskSource; self.localOnly = localOnly
    }
}

public struct ChatRequest: Sendable, Equatable {
    /// A model name, alias, role (`role:coder`) or `auto`.
    public var model: String
    public var messages: [ChatMessage]
    public var sampling: SamplingSettings
    public var tools: [ToolDefinition]
    public var stream: Bool
    /// Report the chosen token's log-probability, and this many alternatives (0: only the chosen one).
    public var logprobs: Bool
    public var topLogprobs: Int
    /// A raw prompt (legacy completions): sent as is, without the chat template; `messages` is then ignored.
    public var rawPrompt: String?
    /// How long the model stays loaded after this request (Ollama's `keep_alive`; negative: forever).
    public var keepAlive: Duration?
    /// Task and privacy hints for the router.
    public var hints = RequestHints()
    /// The shape the answer must take.
    public var responseFormat: ResponseFormat = .text
    /// A GBNF grammar the answer must follow (llama.cpp's syntax); local models only.
    public var grammar: String?
    public var toolChoice: ToolChoice = .auto
    /// Whether the model may make several tool calls in one answer.
    public var parallelToolCalls = true
    public init(model: String, messages: [ChatMessage], sampling: SamplingSettings = SamplingSettings(),
                tools: [ToolDefinition] = [], stream: Bool = false, logprobs: Bool = false, topLogprobs: Int = 0,
                rawPrompt: String? = nil) {
        self.model = model; self.messages = messages; self.sampling = sampling; self.tools = tools
        self.stream = stream; self.logprobs = logprobs; self.topLogprobs = topLogprobs; self.rawPrompt = rawPrompt
    }
}

public struct Usage: Sendable, Equatable, Codable {
    public var promptTokens: Int
    public var completionTokens: Int
    /// Prompt tokens whose KV entries were reused from a cache.
    public var cachedPromptTokens: Int
    /// The upstream's price of this answer in US dollars, where the provider knows its prices (openrouter).
    public var costUSD: Double?
    public var totalTokens: Int { promptTokens + completionTokens }
    public init(promptTokens: Int, completionTokens: Int, cachedPromptTokens: Int = 0, costUSD: Double? = nil) {
        self.promptTokens = promptTokens; self.completionTokens = completionTokens; self.cachedPromptTokens = cachedPromptTokens
        self.costUSD = costUSD
    }
}

public enum FinishReason: String, Sendable, Equatable, Codable {
    case stop, length, toolCalls = "tool_calls", contentFilter = "content_filter", cancelled
}

/// Log-probability of one generated token, with the most likely alternatives.
public struct TokenLogprob: Sendable, Equatable {
    public struct Alternative: Sendable, Equatable {
        public var token: String
        public var logprob: Double
        public init(token: String, logprob: Double) { self.token = token; self.logprob = logprob }
    }
    public var token: String
    public var logprob: Double
    public var top: [Alternative]
    public init(token: String, logprob: Double, top: [Alternative]) { self.token = token; self.logprob = logprob; self.top = top }
}

/// Where a completion is served: the deployment that answers (`provider/model`), and those passed over before it
/// (failed or skipped while their circuit was open), in order.
public struct RouteInfo: Sendable, Equatable {
    public var deployment: String
    public var fallbackFrom: [String]
    /// How the requested name became this deployment's model, when it was not a plain model name: an alias, a
    /// role's choice, `auto`'s task (`task=code (fenced code block); routing.auto.code -> smollm2`).
    public var reason: String?
    public init(deployment: String, fallbackFrom: [String] = [], reason: String? = nil) {
        self.deployment = deployment; self.fallbackFrom = fallbackFrom; self.reason = reason
    }
    /// The provider part of `deployment` (`local` for the built-in engine).
    public var provider: String { DeploymentKey(parsing: deployment)?.provider.rawValue ?? deployment }
}

/// What every provider yields, in order: text and tool-call pieces, then the finish reason, then usage.
/// Where the answer is served travels beside the events (`ChatStream.route`, `CompletedAnswer.route`).
public enum ChatEvent: Sendable, Equatable {
    /// Generated text, with the log-probability of the token it came from when requested.
    case text(String, TokenLogprob?)
    /// A piece of a tool call (a provider that gets calls whole yields each as one piece).
    case toolCall(ToolCallDelta)
    /// A piece of the model's reasoning before its answer (`<think>…</think>`, OpenAI's `reasoning_content`,
    /// Anthropic's thinking blocks): shown apart from the answer's text.
    case reasoning(String)
    /// The provider's signature of the reasoning just given (Anthropic's `signature_delta`); it ends that block of
    /// reasoning. A client that sends the reasoning back must send it with this.
    case reasoningSignature(String)
    case usage(Usage)
    case finished(FinishReason)
}

public struct ModelInfo: Sendable, Equatable, Codable {
    public var name: String
    public var provider: String
    public var contextLength: Int?
    public var sizeBytes: Int?
    public var quantization: String?
    public init(name: String, provider: String, contextLength: Int? = nil, sizeBytes: Int? = nil, quantization: String? = nil) {
        self.name = name; self.provider = provider; self.contextLength = contextLength
        self.sizeBytes = sizeBytes; self.quantization = quantization
    }
}

/// The canonical errors, each mapped by a surface to its own status code and error JSON.
public enum CoreError: Error, Sendable, Equatable, CustomStringConvertible {
    case badRequest(String)
    case unknownModel(String, available: [String])
    case contextTooLong(needed: Int, limit: Int)
    case overloaded(retryAfterSeconds: Int?)
    /// An upstream failed in a way not covered below (a 5xx answer, an unusable body), with its message.
    case upstream(String)
    case modelLoadFailed(String, reason: String)
    /// An upstream refused the configured credentials (401, 403).
    case auth(String)
    /// An upstream's rate limit (429), with its Retry-After.
    case rateLimited(String, retryAfterSeconds: Int?)
    /// An upstream is overloaded or temporarily unavailable (503, 529), with its Retry-After.
    case unavailable(String, retryAfterSeconds: Int?)
    /// An upstream says the prompt does not fit the model's context.
    case contextLengthExceeded(String)
    /// An upstream could not be reached (connection refused or reset, name not resolved, TLS failure).
    case upstreamDown(String)
    /// No answer (or no next event) within the deployment's timeout.
    case timeout(String)
    /// The local engine failed on this request (not the client's fault, not an upstream's).
    case engine(String)

    public var description: String {
        switch self {
        case .badRequest(let m): m
        case .unknownModel(let n, let a): "unknown model '\(n)'; available: \(a.joined(separator: ", "))"
        case .contextTooLong(let n, let l): "the prompt needs \(n) tokens but the context holds \(l)"
        case .overloaded(let r): "overloaded" + (r.map { "; retry after \($0) s" } ?? "")
        case .upstream(let m): "upstream error: \(m)"
        case .modelLoadFailed(let n, let r): "model '\(n)' could not be loaded: \(r)"
        case .auth(let m): "the upstream refused the credentials: \(m)"
        case .rateLimited(let m, let r): "rate limited by the upstream: \(m)" + (r.map { "; retry after \($0) s" } ?? "")
        case .unavailable(let m, let r): "the upstream is unavailable: \(m)" + (r.map { "; retry after \($0) s" } ?? "")
        case .contextLengthExceeded(let m): m
        case .upstreamDown(let m): "the upstream cannot be reached: \(m)"
        case .timeout(let m): "timed out: \(m)"
        case .engine(let m): "the engine failed: \(m)"
        }
    }
}

/// A running completion: its events, and a way to stop it early (a client that went away).
/// A consumer that stops reading before `.finished` must call `cancel()` so the provider frees its slot.
public struct ChatStream: Sendable {
    public let events: AsyncThrowingStream<ChatEvent, Error>
    public let cancel: @Sendable () -> Void
    private let routeSlot: RouteSlot?
    /// Where the answer is served, when a router chose it: set before the first event is yielded, so it can be
    /// read once that event has arrived. Nil from a provider that does not route.
    public var route: RouteInfo? { routeSlot?.value }

    public init(events: AsyncThrowingStream<ChatEvent, Error>, cancel: @escaping @Sendable () -> Void, route: RouteSlot? = nil) {
        self.events = events; self.cancel = cancel; self.routeSlot = route
    }
}

/// Where a routed stream's `route` is written (once, before its first event) and read.
public final class RouteSlot: Sendable {
    private let slot = Mutex<RouteInfo?>(nil)
    public init() {}
    public var value: RouteInfo? { slot.withLock { $0 } }
    public func set(_ route: RouteInfo) { slot.withLock { $0 = route } }
}

/// One source of completions: the local engine or a remote server.
public protocol Provider: Sendable {
    var name: String { get }
    func models() async throws -> [ModelInfo]
    func chat(_ request: ChatRequest) -> ChatStream
    /// Whether `complete` reads a whole answer in one piece, without a stream in between (an HTTP upstream's single
    /// response), and honours its `timeout` for the whole answer. False by default.
    var answersWhole: Bool { get }
    /// The whole answer to a request, its events in order. The default reads `chat` to its end (and leaves the
    /// timeout to whoever reads it); providers that answer whole wait at most `timeout` for the answer.
    func complete(_ request: ChatRequest, timeout: Duration?) async throws -> CompletedAnswer
    /// The vectors of an embedding request. By default: refused, naming the provider.
    func embed(_ request: EmbeddingRequest) async throws -> EmbeddingResult
}

/// A whole answer: its events in the order a stream would carry them, and when the first text arrived.
public struct CompletedAnswer: Sendable {
    public var events: [ChatEvent] = []
    /// Where it was served, when a router chose it.
    public var route: RouteInfo?
    /// When the first `.text` or `.toolCall` event arrived (a stream read to its end), or the answer (read whole); nil if none.
    public var firstTextAt: ContinuousClock.Instant?

    public init(events: [ChatEvent] = [], route: RouteInfo? = nil) {
        self.events = []
        self.route = route
        for e in events { append(e) }
    }

    public mutating func append(_ event: ChatEvent) {
        switch event {
        case .text, .toolCall, .reasoning: if firstTextAt == nil { firstTextAt = .now }
        default: break
        }
        events.append(event)
    }
}

extension Provider {
    public var answersWhole: Bool { false }

    public func embed(_ request: EmbeddingRequest) async throws -> EmbeddingResult {
        throw CoreError.badRequest("provider '\(name)' does not serve embeddings (model '\(request.model)')")
    }

    public func complete(_ request: ChatRequest, timeout: Duration?) async throws -> CompletedAnswer {
        let stream = chat(request)
        var answer = CompletedAnswer()
        try await withTaskCancellationHandler {
            for try await e in stream.events { answer.append(e) }
        } onCancel: {
            stream.cancel()
        }
        answer.route = stream.route
        return answer
    }
}
