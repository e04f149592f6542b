import Core
import Foundation

extension LocalProvider {
    /// Tokenizes every input (framed by `[CLS]` … `[SEP]`, cut to the model's length when `truncate`, else refused
    /// as too long) and computes the vectors on the model's engine thread, batched with other requests. `dimensions`
    /// below the model's keeps the first numbers, normalized again when the model normalizes (Matryoshka
    /// truncation, as Ollama does: models trained for it, such as nomic-embed-text v1.5, keep their quality).
    public func embed(_ request: EmbeddingRequest) async throws -> EmbeddingResult {
        let worker = try await host.embedder(for: request.model)
        if let keep = request.keepAlive { worker.keepAlive = keep }
        let full = worker.model.dimensions
        if let d = request.dimensions, d > full {
            throw CoreError.badRequest("'\(request.model)' makes vectors of \(full) dimensions; dimensions must be at most \(full) (got \(d))")
        }
        let sequences = try request.inputs.map { input in
            switch input {
            case .text(let text): try worker.tokens(text, truncate: request.truncate)
            case .tokens(let ids): try worker.fit(ids, truncate: request.truncate, frame: true)
            }
        }
        var vectors = try await worker.embed(sequences)
        if let d = request.dimensions, d < full {
            vectors = vectors.map { Self.shortened($0, to: d, normalize: worker.model.normalizes) }
        }
        return EmbeddingResult(vectors: vectors, promptTokens: sequences.reduce(0) { $0 + $1.count })
    }

    /// The first `count` numbers of `vector`, scaled back to length 1 when `normalize`.
    static func shortened(_ vector: [Float], to count: Int, normalize: Bool) -> [Float] {
        var v = Array(vector.prefix(count))
        guard normalize else { return v }
        let norm = v.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        if norm > 0 { for i in v.indices { v[i] = Float(Double(v[i]) / norm) } }
        return v
    }
}
