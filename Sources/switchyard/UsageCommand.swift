import ArgumentParser
import Foundation
import Storage

struct UsageReport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usage",
        abstract: "Summarise recorded usage: requests, tokens, latency and cost, in all and per model.",
        discussion: """
        DATE is 2026-11-01 (00:00 UTC), 2026-11-01T12:00:00Z, or a duration back from now such as 24h, 7d.
        `switchyard serve` records one row per model request; this reads what the database holds.
        """)
    @OptionGroup var database: DatabaseLocation
    @Option(help: ArgumentHelp("Only this key: a name (its rotations included), an id or an sk-sy-<id> prefix.", valueName: "key"))
    var key: String?
    @Option(help: "Only this model.") var model: String?
    @Option(help: ArgumentHelp("Only requests since this date.", valueName: "date")) var since: String?

    func validate() throws {
        if let since { _ = try parseSince(since) }
    }

    func run() async throws {
        let start = try since.map(parseSince)
        let summary = try await database.with { db in
            let store = UsageStore(db)
            do {
                let summary = try await store.summary(key: key, model: model, since: start)
                try await store.close()
                return summary
            } catch {
                try? await store.close()
                throw error
            }
        }
        var scope = [key.map { "key \($0)" }, model.map { "model \($0)" }, since.map { "since \($0)" }].compactMap { $0 }
        if scope.isEmpty { scope = ["all requests"] }
        let t = summary.totals
        guard t.requests > 0 else {
            print("no usage recorded (\(scope.joined(separator: ", ")))")
            return
        }
        print("usage, \(scope.joined(separator: ", ")): \(t.first.map(StorageDates.display) ?? "?") to \(t.last.map(StorageDates.display) ?? "?")")
        let rows = summary.models.map { row(name: $0.model, $0.totals) } + (summary.models.count > 1 ? [row(name: "total", t)] : [])
        print(table(header: ["MODEL", "REQUESTS", "FAILED", "PROMPT", "COMPLETION", "TOKENS", "AVG LATENCY", "AVG TTFT", "LOCAL", "COST"],
                    rows: rows))
    }

    private func row(name: String, _ t: UsageTotals) -> [String] {
        [name, "\(t.requests)", "\(t.failed)", "\(t.promptTokens)", "\(t.completionTokens)", "\(t.totalTokens)",
         t.averageLatencyMs.map { String(format: "%.0f ms", $0) } ?? "-",
         t.averageTimeToFirstTokenMs.map { String(format: "%.0f ms", $0) } ?? "-",
         "\(t.servedLocally)", t.costUSD.map { String(format: "$%.4f", $0) } ?? "-"]
    }

    private func parseSince(_ text: String) throws -> Date {
        do { return try StorageDates.parse(text, direction: .past) } catch let error as StorageError {
            throw ValidationError("--since: \(error)")
        }
    }
}
