import Core
import Foundation
import Hummingbird

extension NativeSurface {
    /// `POST /api/v1/embeddings`: `{model, input: string | [string], truncate?}` → `{model, embeddings, prompt_tokens, route}`.
    func embeddings(_ request: Request, _ context: GatewayContext) async throws -> Response {
        struct Body: Decodable {
            let model: String
            let input: OllamaSurface.EmbedBody.Input
            let truncate: Bool?
        }
        struct Answer: Encodable {
            let model: String
            let embeddings: [[Float]]
            let prompt_tokens: Int
            let route: String?
        }
        var request = request
        let raw = try await request.collectBody(limit: BodyLimit.maxBytes)
        let b = try JSONDecoder().decode(Body.self, from: Data(buffer: raw))
        let texts: [String] = switch b.input { case .texts(let t): t }
        var core = EmbeddingRequest(model: b.model, inputs: texts.map(EmbeddingInput.text), truncate: b.truncate ?? false)
        core.hints = try RequestHints.from(request, metadata: nil)
        let result = try await backend.embed(core, caller: context.caller, record: context.record)
        return try json(Answer(model: b.model, embeddings: result.vectors, prompt_tokens: result.promptTokens, route: result.route?.deployment),
                        headers: RouteHeaders.fields(servedBy: result.route?.provider ?? "local", route: result.route))
    }
}
