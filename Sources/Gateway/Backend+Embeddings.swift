import Core
import Foundation

extension Backend {
    /// The vectors of an embedding request, through the router when there is one (the same names, routes and
    /// fallbacks as chat), else the local engine. A local-only key's request stays local and an API key's
    /// `keep_alive` is ignored, as for chat. The request's record gets the model, route and prompt tokens.
    func embed(_ request: EmbeddingRequest, caller: GuardCaller = .anonymous, record: RequestRecord = RequestRecord()) async throws -> EmbeddingResult {
        var request = request
        if caller.localOnly { request.hints.localOnly = true }
        if !caller.mayKeepAlive { request.keepAlive = nil }
        guard !request.inputs.isEmpty else { throw APIError(.badRequest, "input must not be empty", param: "input") }
        guard request.inputs.count <= Self.maxEmbeddingInputs else {
            throw APIError(.badRequest, "input has \(request.inputs.count) items; at most \(Self.maxEmbeddingInputs) are taken per request", param: "input")
        }
        if let d = request.dimensions, d < 1 { throw APIError(.badRequest, "dimensions must be at least 1", param: "dimensions") }
        let began = Date()
        do {
            let result = if let router { try await router.embed(request) } else { try await local.embed(request) }
            metrics.record(model: request.model, error: false, promptTokens: result.promptTokens, latency: Date().timeIntervalSince(began))
            record.update {
                $0.model = request.model
                $0.promptTokens = result.promptTokens
                $0.deployment = result.route?.deployment
            }
            return result
        } catch {
            let known = if case CoreError.unknownModel = error { false } else { true }
            let label = known ? request.model : "(unknown model)"
            metrics.record(model: label, error: true)
            record.update { $0.model = label }
            throw error
        }
    }

    /// Inputs one request may carry (OpenAI's own limit).
    static let maxEmbeddingInputs = 2048
}
