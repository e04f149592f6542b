import Core

extension Router {
    /// Embeddings through the same routes, fallbacks, retries and circuits as chat: the request's name resolved and
    /// planned as a chat request's would be, each deployment tried in turn until one answers.
    public func embed(_ request: EmbeddingRequest) async throws -> EmbeddingResult {
        let config = current
        var probe = ChatRequest(model: request.model, messages: [])
        probe.hints = request.hints
        let (plan, routed, reason) = try await route(probe, config)
        var passed: [String] = []
        var lastError: Error?
        for d in plan {
            let policy = RetryPolicy(retries: d.retries ?? 0)
            var retry = 0
            attempts: while true {
                try Task.checkCancellation()
                if routed, case .rejected = admit(d, settings: config.breakers[d.provider]) { break attempts }
                guard let provider = config.providers[d.provider] else {
                    lastError = CoreError.upstream("no provider '\(d.provider)' is configured")
                    break attempts
                }
                var upstream = request
                upstream.model = d.model
                do {
                    var result = try await provider.embed(upstream)
                    report(d, routed: routed, .success)
                    result.route = RouteInfo(deployment: d.key.description, fallbackFrom: passed, reason: reason)
                    return result
                } catch {
                    switch Self.classify(error) {
                    case .final:
                        report(d, routed: routed, error is CancellationError ? .neutral : .success)
                        throw error
                    case .failover(let retryable, let retryAfter):
                        report(d, routed: routed, .failure)
                        lastError = error
                        guard retryable, let wait = policy.delay(beforeRetry: retry + 1, retryAfter: retryAfter, random: random()) else { break attempts }
                        try await clock.sleep(wait)
                        retry += 1
                    }
                }
            }
            passed.append(d.key.description)
        }
        if let lastError { throw lastError }
        throw CoreError.unavailable("every deployment of '\(request.model)' is cooling down after failures (\(passed.joined(separator: ", ")))",
                                    retryAfterSeconds: nil)
    }
}
