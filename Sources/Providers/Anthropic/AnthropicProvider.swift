import AsyncHTTPClient
import Core
import Foundation
import NIOCore
import NIOHTTP1

/// Anthropic's Messages API (`POST /v1/messages`, `x-api-key`, `anthropic-version`). Streams are passed on event by
/// event as the server-sent events arrive; answers, events and error bodies are read up to fixed sizes. Errors become
/// canonical ones: 429 (with `retry-after`) rate-limited, 529 / `overloaded_error` unavailable, 401 / 403 auth,
/// 400 bad request, "prompt is too long" context exceeded.
public struct AnthropicProvider: Provider {
    public static let defaultBaseURL = "https://api.anthropic.com"
    public static let apiVersion = "2023-06-01"

    public struct Configuration: Sendable {
        public var name: String
        /// Before `/v1`: `https://api.anthropic.com` (a trailing `/v1` is accepted too).
        public var baseURL: String
        /// Sent as `x-api-key` when set.
        public var apiKey: String?
        public var headers: [String: String]
        /// `max_tokens` for requests that do not set it (the API requires one).
        public var defaultMaxTokens: Int
        public var maxBodyBytes: Int
        public var maxEventBytes: Int
        public var maxDuration: TimeAmount

        public init(name: String, baseURL: String = AnthropicProvider.defaultBaseURL, apiKey: String? = nil, headers: [String: String] = [:],
                    defaultMaxTokens: Int = 1024, maxBodyBytes: Int = 16 << 20, maxEventBytes: Int = 1 << 20, maxDuration: TimeAmount = .hours(1)) {
            var base = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
            if base.hasSuffix("/v1") { base = String(base.dropLast(3)) }
            self.name = name; self.baseURL = base; self.apiKey = apiKey; self.headers = headers
            self.defaultMaxTokens = defaultMaxTokens
            self.maxBodyBytes = maxBodyBytes; self.maxEventBytes = maxEventBytes; self.maxDuration = maxDuration
        }
    }

    public let configuration: Configuration
    let client: HTTPClient
    public var name: String { configuration.name }

    public init(_ configuration: Configuration, client: HTTPClient = OpenAICompatibleProvider.sharedClient) {
        self.configuration = configuration
        self.client = client
    }

    /// `GET /v1/models`.
    public func models() async throws -> [ModelInfo] {
        struct List: Decodable {
            struct Entry: Decodable { var id: String }
            var data: [Entry]
        }
        let url = configuration.baseURL + "/v1/models"
        do {
            let response = try await UpstreamHTTP.send(request(url, method: .GET), client: client, timeout: .seconds(30), url: url)
            let list = try await UpstreamHTTP.decode(List.self, from: response, limit: configuration.maxBodyBytes, url: url, what: "a model list")
            return list.data.map { ModelInfo(name: $0.id, provider: name) }
        } catch {
            throw UpstreamHTTP.mapTransport(error, url: url)
        }
    }

    public func chat(_ request: ChatRequest) -> ChatStream {
        let url = configuration.baseURL + "/v1/messages"
        return UpstreamHTTP.chatStream(url: url) { try await self.run(request, url: url, continuation: $0) }
    }

    func request(_ url: String, method: HTTPMethod) -> HTTPClientRequest {
        var r = HTTPClientRequest(url: url)
        r.method = method
        for (k, v) in configuration.headers { r.headers.add(name: k, value: v) }
        if let key = configuration.apiKey, !key.isEmpty { r.headers.replaceOrAdd(name: "x-api-key", value: key) }
        if !r.headers.contains(name: "anthropic-version") { r.headers.add(name: "anthropic-version", value: Self.apiVersion) }
        r.headers.replaceOrAdd(name: "Accept", value: method == .POST ? "application/json, text/event-stream" : "application/json")
        return r
    }

    private func run(_ chat: ChatRequest, url: String, continuation: AsyncThrowingStream<ChatEvent, Error>.Continuation) async throws {
        if chat.responseFormat != .text, !chat.tools.isEmpty {
            throw CoreError.badRequest("response_format together with tools cannot be sent to Anthropic (the schema is sent as a forced tool)")
        }
        if chat.grammar != nil { throw CoreError.badRequest("grammar is not supported by Anthropic models") }
        if chat.sampling.adapters != nil { throw CoreError.badRequest("lora (per-request adapters) is not supported by Anthropic models") }
        if chat.logprobs { throw CoreError.badRequest("logprobs are not available from Anthropic models") }
        let asText = Self.schemaTool(chat) != nil
        func mapped(_ events: [ChatEvent]) -> [ChatEvent] { asText ? Self.schemaToolAsText(events) : events }
        var r = request(url, method: .POST)
        r.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
        let body = Self.body(for: chat, defaultMaxTokens: configuration.defaultMaxTokens)
        r.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        let response = try await UpstreamHTTP.send(r, client: client, timeout: configuration.maxDuration, url: url)
        var mapper = EventMapper(maxToolCallBytes: configuration.maxEventBytes)
        guard chat.stream else {
            let answer = try await UpstreamHTTP.decode(Event.self, from: response, limit: configuration.maxBodyBytes, url: url, what: "a message")
            // `events` also turns an `error` object into its canonical error.
            guard continuation.yieldAll(mapped(try mapper.events(for: answer))) else { return }
            guard mapper.finished else { throw CoreError.upstream("\(url) answered something other than a message") }
            continuation.finish()
            return
        }
        let decoder = JSONDecoder()
        var parser = ServerSentEventParser(maxEventBytes: configuration.maxEventBytes)
        func handle(_ payload: String) throws -> Bool {
            let event: Event
            do { event = try decoder.decode(Event.self, from: Data(payload.utf8)) } catch {
                throw CoreError.upstream("\(url) sent an event that is not a Messages API event: \(payload.prefix(200))")
            }
            return continuation.yieldAll(mapped(try mapper.events(for: event)))
        }
        guard try await UpstreamHTTP.pump(response.body, &parser, isDone: { mapper.finished }, handle: handle) else { return }
        // A stream cut off before `message_stop` must not pass for a complete answer.
        guard mapper.finished else { throw CoreError.upstream("\(url): the stream ended before the answer was complete") }
        continuation.finish()
    }
}
