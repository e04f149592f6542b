import Foundation
import Hummingbird
import Storage

/// `GET /api/v1/usage?key=&model=&since=`: the usage summary as JSON. `key` is a key's name, id or prefix;
/// `since` a date (2026-11-01, 2026-11-01T12:00:00Z) or a duration back from now (24h, 7d).
/// A request with an API key sees only that key's usage (whatever `key` says); the admin key, or anyone while auth
/// is off, sees every key's. Also served at `/admin/usage`.
struct UsageRoute {
    let usage: UsageStore

    struct Totals: Encodable {
        var requests, failed, prompt_tokens, completion_tokens, total_tokens, served_locally: Int
        var cost_usd, average_latency_ms, average_ttft_ms: Double?
        var first, last: String?

        init(_ t: UsageTotals) {
            requests = t.requests; failed = t.failed; prompt_tokens = t.promptTokens
            completion_tokens = t.completionTokens; total_tokens = t.totalTokens; served_locally = t.servedLocally
            cost_usd = t.costUSD; average_latency_ms = t.averageLatencyMs; average_ttft_ms = t.averageTimeToFirstTokenMs
            let f = ISO8601DateFormatter()
            first = t.first.map { f.string(from: $0) }; last = t.last.map { f.string(from: $0) }
        }
    }

    struct ModelRow: Encodable {
        var model: String
        var totals: Totals
    }

    struct Summary: Encodable {
        var totals: Totals
        var models: [ModelRow]
    }

    func register(on router: Router<GatewayContext>) {
        router.get("/api/v1/usage") { request, context in try await summary(request, caller: context.caller) }
        router.get("/admin/usage") { request, context in try await summary(request, caller: context.caller) }
    }

    private func summary(_ request: Request, caller: GuardCaller) async throws -> Response {
        let query = request.uri.queryParameters
        var key = query["key"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
        if let own = caller.key { key = own.id }
        let model = query["model"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
        var since: Date?
        if let text = query["since"].map(String.init), !text.isEmpty {
            do { since = try StorageDates.parse(text, direction: .past) } catch {
                throw APIError(.badRequest, "since: \(error)", param: "since")
            }
        }
        try await usage.flush()
        let s: UsageSummary
        do {
            s = try await usage.summary(key: key, model: model, since: since)
        } catch let e as StorageError {
            if case .unknownKey = e { throw APIError(.notFound, "no key named '\(key ?? "")'", param: "key", code: "key_not_found") }
            throw e
        }
        return try json(Summary(totals: Totals(s.totals),
                                models: s.models.map { ModelRow(model: $0.model, totals: Totals($0.totals)) }))
    }
}
