import Core
import Foundation

extension LocalProvider {
    /// Tokenizes every input (framed by `[CLS]` … `[SEP]`, cut to the model's length when `truncate`, else refused
    /// as too long) and computes the vectors on the model's engine thread, batched with other requests.
    public func embed(_ request: EmbeddingRequest) async throws -> EmbeddingResult {
        let worker = try await host.embedder(for: request.model)
        if let keep = request.keepAlive { worker.keepAlive = keep }
        if let d = request.dimensions, d != worker.model.dimensions {
            throw CoreError.badRequest("'\(request.model)' makes vectors of \(worker.model.dimensions) dimensions and cannot shorten them (dimensions: \(d))")
        }
        let sequences = try request.inputs.map { input in
            switch input {
            case .text(let text): try worker.tokens(text, truncate: request.truncate)
            case .tokens(let ids): try worker.fit(ids, truncate: request.truncate, frame: true)
            }
        }
        let vectors = try await worker.embed(sequences)
        return EmbeddingResult(vectors: vectors, promptTokens: sequences.reduce(0) { $0 + $1.count })
    }
}
