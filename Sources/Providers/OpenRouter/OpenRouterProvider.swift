import AsyncHTTPClient
import Core
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// OpenRouter: the OpenAI-compatible adapter at `https://openrouter.ai/api/v1`, plus its model list with prices
/// (`/models`, fetched once an hour). With `freeOnly`, only models whose prompt and completion prices are both 0 are
/// listed and served. Each answer's `.usage` carries its estimated cost: prices × tokens (+ the per-request price).
/// Optional attribution headers (`HTTP-Referer`, `X-Title`) go in `headers`.
public final class OpenRouterProvider: Provider {
    public static let defaultBaseURL = "https://openrouter.ai/api/v1"

    /// A model's prices in US dollars.
    public struct Pricing: Sendable, Equatable {
        public var prompt: Double
        public var completion: Double
        public var request: Double
        public var isFree: Bool { prompt == 0 && completion == 0 && request == 0 }
        public init(prompt: Double, completion: Double, request: Double = 0) { self.prompt = prompt; self.completion = completion; self.request = request }

        /// The cost of an answer with this usage.
        public func cost(of usage: Usage) -> Double {
            prompt * Double(usage.promptTokens) + completion * Double(usage.completionTokens) + request
        }
    }

    /// One entry of `/models`.
    public struct Model: Sendable, Equatable {
        public var id: String
        public var contextLength: Int?
        /// nil when OpenRouter gives no fixed price (a router model priced per answer).
        public var pricing: Pricing?
    }

    public let inner: OpenAICompatibleProvider
    public let freeOnly: Bool
    let catalogueLifetime: Duration
    /// After a failed fetch, how long the list is not asked for again (requests go on without prices meanwhile).
    let retryFetchAfter: Duration = .seconds(60)
    /// The last fetch: when, and its models (nil: it failed).
    private let cache = Mutex<(at: ContinuousClock.Instant, models: [String: Model]?)?>(nil)
    /// The clock the cache's ages are read on (injected by tests).
    let now: @Sendable () -> ContinuousClock.Instant
    public var name: String { inner.name }

    public init(_ configuration: OpenAICompatibleProvider.Configuration, freeOnly: Bool = false, catalogueLifetime: Duration = .seconds(3600),
                client: HTTPClient = OpenAICompatibleProvider.sharedClient,
                now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }) {
        inner = OpenAICompatibleProvider(configuration, client: client)
        self.freeOnly = freeOnly
        self.catalogueLifetime = catalogueLifetime
        self.now = now
    }

    /// The model list with prices, from the cache while it is fresh.
    public func catalogue() async throws -> [String: Model] {
        if let c = cache.withLock({ $0 }) {
            if let models = c.models, now() - c.at < catalogueLifetime { return models }
            if c.models == nil, now() - c.at < retryFetchAfter { throw CoreError.upstream("the OpenRouter model list could not be read recently") }
        }
        struct List: Decodable {
            struct Entry: Decodable {
                struct Prices: Decodable { var prompt: String?; var completion: String?; var request: String? }
                var id: String
                var context_length: Int?
                var pricing: Prices?
            }
            var data: [Entry]
        }
        let url = inner.configuration.baseURL + "/models"
        do {
            let response = try await UpstreamHTTP.send(inner.request(url, method: .GET), client: inner.client, timeout: .seconds(30), url: url)
            let list = try await UpstreamHTTP.decode(List.self, from: response, limit: inner.configuration.maxBodyBytes, url: url, what: "a model list")
            var models: [String: Model] = [:]
            for e in list.data {
                // Prices are decimal strings; a negative or unreadable one means "no fixed price".
                func price(_ s: String?) -> Double? { s.flatMap { Double($0) }.flatMap { $0 >= 0 && $0.isFinite ? $0 : nil } }
                let pricing = e.pricing.flatMap { p in
                    price(p.prompt).flatMap { prompt in price(p.completion).map { Pricing(prompt: prompt, completion: $0, request: price(p.request) ?? 0) } }
                }
                models[e.id] = Model(id: e.id, contextLength: e.context_length, pricing: pricing)
            }
            let at = now()
            cache.withLock { $0 = (at, models) }
            return models
        } catch {
            let at = now()
            cache.withLock { $0 = (at, nil) }
            throw UpstreamHTTP.mapTransport(error, url: url)
        }
    }

    /// The models OpenRouter serves (only the free ones with `freeOnly`).
    public func models() async throws -> [ModelInfo] {
        try await catalogue().values.filter { !freeOnly || $0.pricing?.isFree == true }.sorted { $0.id < $1.id }
            .map { ModelInfo(name: $0.id, provider: name, contextLength: $0.contextLength) }
    }

    public func chat(_ request: ChatRequest) -> ChatStream {
        let (stream, continuation) = AsyncThrowingStream<ChatEvent, Error>.makeStream()
        let task = Task {
            // Prices are needed for the cost estimate, and to refuse a paid model under `freeOnly`; without the list
            // a model is served (a `:free` one only, under `freeOnly`) and its cost is not estimated.
            let pricing = (try? await catalogue())?[request.model]?.pricing
            if freeOnly, !(pricing?.isFree ?? request.model.hasSuffix(":free")) {
                continuation.finish(throwing: CoreError.unknownModel(request.model, available: []))
                return
            }
            let upstream = inner.chat(request)
            do {
                for try await e in upstream.events {
                    var event = e
                    if case .usage(var u) = event, let pricing {
                        u.costUSD = pricing.cost(of: u)
                        event = .usage(u)
                    }
                    if case .terminated = continuation.yield(event) { upstream.cancel(); return }
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return ChatStream(events: stream, cancel: { task.cancel() })
    }
}
