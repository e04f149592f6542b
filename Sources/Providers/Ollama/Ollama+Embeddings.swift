import AsyncHTTPClient
import Core
import Foundation
import NIOCore

extension OllamaProvider {
    /// `POST {base}/api/embed`. Ollama takes text only: token inputs are refused by name.
    public func embed(_ request: EmbeddingRequest) async throws -> EmbeddingResult {
        struct Answer: Decodable {
            var embeddings: [[Float]]
            var prompt_eval_count: Int?
        }
        let url = configuration.baseURL + "/api/embed"
        var texts: [String] = []
        for input in request.inputs {
            guard case .text(let t) = input else { throw CoreError.badRequest("token-id inputs cannot be sent to Ollama models (its /api/embed takes text)") }
            texts.append(t)
        }
        var body: [String: Any] = ["model": request.model, "input": texts, "truncate": request.truncate]
        if let d = request.dimensions { body["dimensions"] = d }
        do {
            var r = self.request(url, method: .POST)
            r.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
            r.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
            let response = try await UpstreamHTTP.send(r, client: client, timeout: configuration.maxDuration, url: url)
            let answer = try await UpstreamHTTP.decode(Answer.self, from: response, limit: configuration.maxBodyBytes, url: url, what: "embeddings")
            guard answer.embeddings.count == texts.count else {
                throw CoreError.upstream("\(url) sent \(answer.embeddings.count) embeddings for \(texts.count) inputs")
            }
            return EmbeddingResult(vectors: answer.embeddings, promptTokens: answer.prompt_eval_count ?? 0)
        } catch {
            throw UpstreamHTTP.mapTransport(error, url: url)
        }
    }
}
