/// One input of an embedding request: text, or token ids the client already has.
public enum EmbeddingInput: Sendable, Equatable {
    case text(String)
    case tokens([Int32])
}

/// What every surface's embedding request becomes (OpenAI `/v1/embeddings`, Ollama `/api/embed`, native).
public struct EmbeddingRequest: Sendable, Equatable {
    public var model: String
    public var inputs: [EmbeddingInput]
    /// Vector length asked for (OpenAI's `dimensions`); nil: the model's own.
    public var dimensions: Int?
    /// Cut an input longer than the model takes instead of refusing it (Ollama's `truncate`, true by default there).
    public var truncate: Bool
    public var keepAlive: Duration?
    public var hints = RequestHints()

    public init(model: String, inputs: [EmbeddingInput], dimensions: Int? = nil, truncate: Bool = false, keepAlive: Duration? = nil) {
        self.model = model; self.inputs = inputs; self.dimensions = dimensions; self.truncate = truncate; self.keepAlive = keepAlive
    }
}

/// The vectors of an embedding request, one per input, in order.
public struct EmbeddingResult: Sendable, Equatable {
    public var vectors: [[Float]]
    /// Tokens the inputs took (framing tokens included).
    public var promptTokens: Int
    /// Where it was served, when a router chose it.
    public var route: RouteInfo?
    public init(vectors: [[Float]], promptTokens: Int, route: RouteInfo? = nil) {
        self.vectors = vectors; self.promptTokens = promptTokens; self.route = route
    }
}
