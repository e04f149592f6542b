import AsyncHTTPClient
import Core
import Foundation
import NIOCore

extension OpenAICompatibleProvider {
    /// `POST {base}/embeddings`: the inputs as strings or token arrays, vectors asked for as floats.
    public func embed(_ request: EmbeddingRequest) async throws -> EmbeddingResult {
        struct Answer: Decodable {
            struct Item: Decodable { var index: Int?; var embedding: [Float] }
            struct Usage: Decodable { var prompt_tokens: Int? }
            var data: [Item]
            var usage: Usage?
        }
        let url = configuration.baseURL + "/embeddings"
        var body: [String: Any] = ["model": request.model, "encoding_format": "float"]
        body["input"] = request.inputs.map { input -> Any in
            switch input {
            case .text(let t): t
            case .tokens(let ids): ids.map(Int.init)
            }
        }
        if let d = request.dimensions { body["dimensions"] = d }
        do {
            var r = self.request(url, method: .POST)
            r.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
            r.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
            let response = try await UpstreamHTTP.send(r, client: client, timeout: configuration.maxDuration, url: url)
            let answer = try await UpstreamHTTP.decode(Answer.self, from: response, limit: configuration.maxBodyBytes, url: url, what: "embeddings")
            let ordered = answer.data.enumerated().sorted { ($0.element.index ?? $0.offset) < ($1.element.index ?? $1.offset) }.map(\.element.embedding)
            guard ordered.count == request.inputs.count else {
                throw CoreError.upstream("\(url) sent \(ordered.count) embeddings for \(request.inputs.count) inputs")
            }
            return EmbeddingResult(vectors: ordered, promptTokens: answer.usage?.prompt_tokens ?? 0)
        } catch {
            throw UpstreamHTTP.mapTransport(error, url: url)
        }
    }
}
