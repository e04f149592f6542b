import Foundation

/// One request, as accounting keeps it.
public struct UsageRecord: Sendable, Hashable {
    /// Unique per request: a record written twice (a retried batch) is kept once.
    public var requestID: String
    /// The key's id (`APIKey.id`); nil when the request carried no key.
    public var keyID: String?
    /// The model name the client asked for.
    public var model: String
    /// The deployment that served it, when routing chose one.
    public var deployment: String?
    /// `local`, `openai`, `ollama`, …
    public var provider: String
    public var promptTokens: Int
    public var completionTokens: Int
    /// From the request's arrival to its last byte.
    public var latencyMs: Double
    /// Time to first token, for generations.
    public var timeToFirstTokenMs: Double?
    /// The HTTP status answered.
    public var status: Int
    /// Estimated cost in US dollars; nil when unknown (local models cost nothing: 0).
    public var costUSD: Double?
    public var servedLocally: Bool
    /// When the request arrived.
    public var timestamp: Date

    public init(requestID: String = UUID().uuidString, keyID: String?, model: String, deployment: String? = nil,
                provider: String, promptTokens: Int, completionTokens: Int, latencyMs: Double,
                timeToFirstTokenMs: Double? = nil, status: Int, costUSD: Double? = nil, servedLocally: Bool,
                timestamp: Date = Date()) {
        self.requestID = requestID
        self.keyID = keyID
        self.model = model
        self.deployment = deployment
        self.provider = provider
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.latencyMs = latencyMs
        self.timeToFirstTokenMs = timeToFirstTokenMs
        self.status = status
        self.costUSD = costUSD
        self.servedLocally = servedLocally
        self.timestamp = timestamp
    }
}

/// Sums over a set of usage records.
public struct UsageTotals: Sendable, Hashable {
    public var requests: Int = 0
    /// Requests answered with a status of 400 or more.
    public var failed: Int = 0
    public var promptTokens: Int = 0
    public var completionTokens: Int = 0
    public var servedLocally: Int = 0
    /// Sum of the known cost estimates; nil when no record had one.
    public var costUSD: Double?
    public var latencyMsSum: Double = 0
    public var timeToFirstTokenMsSum: Double = 0
    /// Records that carried a time to first token.
    public var timeToFirstTokenCount: Int = 0
    public var first: Date?
    public var last: Date?

    public init() {}

    public var totalTokens: Int { promptTokens + completionTokens }
    public var averageLatencyMs: Double? { requests == 0 ? nil : latencyMsSum / Double(requests) }
    public var averageTimeToFirstTokenMs: Double? {
        timeToFirstTokenCount == 0 ? nil : timeToFirstTokenMsSum / Double(timeToFirstTokenCount)
    }

    /// Adds `other` in.
    public mutating func add(_ other: UsageTotals) {
        requests += other.requests
        failed += other.failed
        promptTokens += other.promptTokens
        completionTokens += other.completionTokens
        servedLocally += other.servedLocally
        if let cost = other.costUSD { costUSD = (costUSD ?? 0) + cost }
        latencyMsSum += other.latencyMsSum
        timeToFirstTokenMsSum += other.timeToFirstTokenMsSum
        timeToFirstTokenCount += other.timeToFirstTokenCount
        if let f = other.first { first = min(first ?? f, f) }
        if let l = other.last { last = max(last ?? l, l) }
    }
}

/// What `UsageStore.summary` answers: totals, and the same per model (most requests first).
public struct UsageSummary: Sendable, Hashable {
    public var totals: UsageTotals
    /// Per-model rows, most requests first.
    public var models: [ModelUsage]

    public struct ModelUsage: Sendable, Hashable {
        public var model: String
        public var totals: UsageTotals
    }
}
