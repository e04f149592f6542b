import Core
import Foundation
import Hummingbird

extension OllamaSurface {
    /// `/api/embed`'s request: `input` a string or strings; `truncate` (default true) cuts inputs longer than the model
    /// takes instead of refusing them.
    struct EmbedBody: Decodable {
        enum Input: Decodable {
            case texts([String])
            init(from decoder: Decoder) throws {
                let c = try decoder.singleValueContainer()
                if let s = try? c.decode(String.self) { self = .texts([s]); return }
                if let a = try? c.decode([String].self) { self = .texts(a); return }
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "input must be a string or an array of strings")
            }
        }
        let model: String
        let input: Input?
        let truncate: Bool?
        let dimensions: Int?
        let keep_alive: OpenAI.KeepAlive?
    }

    struct EmbedAnswer: Encodable {
        let model: String
        let embeddings: [[Float]]
        let total_duration: Int64
        let load_duration: Int64
        let prompt_eval_count: Int
    }

    func embed(_ request: Request, _ context: GatewayContext) async throws -> Response {
        var request = request
        let raw = try await request.collectBody(limit: BodyLimit.maxBytes)
        let b = try JSONDecoder().decode(EmbedBody.self, from: Data(buffer: raw))
        let model = await served(b.model)
        guard case .texts(let texts)? = b.input else {
            // Ollama: no input loads the model (and keep_alive 0 unloads it), as for chat.
            return try await loadOrUnloadEmbedder(b.model, model, keepAlive: b.keep_alive?.duration)
        }
        let began = Date()
        var core = EmbeddingRequest(model: model, inputs: texts.map(EmbeddingInput.text), dimensions: b.dimensions,
                                    truncate: b.truncate ?? true, keepAlive: b.keep_alive?.duration)
        core.hints = try RequestHints.from(request, metadata: nil)
        let result = try await backend.embed(core, caller: context.caller, record: context.record)
        return try json(EmbedAnswer(model: b.model, embeddings: result.vectors, total_duration: Self.nanoseconds(Date().timeIntervalSince(began)),
                                    load_duration: 0, prompt_eval_count: result.promptTokens),
                        headers: RouteHeaders.fields(servedBy: result.route?.provider ?? "local", route: result.route))
    }

    /// The older `/api/embeddings`: one `prompt`, one `embedding`.
    func legacyEmbeddings(_ request: Request, _ context: GatewayContext) async throws -> Response {
        struct Body: Decodable { let model: String; let prompt: String?; let keep_alive: OpenAI.KeepAlive? }
        struct Answer: Encodable { let embedding: [Float] }
        var request = request
        let raw = try await request.collectBody(limit: BodyLimit.maxBytes)
        let b = try JSONDecoder().decode(Body.self, from: Data(buffer: raw))
        let model = await served(b.model)
        guard let prompt = b.prompt else { return try await loadOrUnloadEmbedder(b.model, model, keepAlive: b.keep_alive?.duration) }
        var core = EmbeddingRequest(model: model, inputs: [.text(prompt)], truncate: true, keepAlive: b.keep_alive?.duration)
        core.hints = try RequestHints.from(request, metadata: nil)
        let result = try await backend.embed(core, caller: context.caller, record: context.record)
        return try json(Answer(embedding: result.vectors.first ?? []))
    }

    /// A request without input: loads the model, or unloads it with `keep_alive: 0`.
    private func loadOrUnloadEmbedder(_ asked: String, _ model: String, keepAlive: Duration?) async throws -> Response {
        if keepAlive == .zero {
            _ = await backend.host.unload(model)
        } else {
            let worker = try await backend.host.embedder(for: model)
            if let keepAlive { worker.keepAlive = keepAlive }
        }
        return try json(EmbedAnswer(model: asked, embeddings: [], total_duration: 0, load_duration: 0, prompt_eval_count: 0))
    }
}
