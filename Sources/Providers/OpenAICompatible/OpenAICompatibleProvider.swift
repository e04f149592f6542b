import AsyncHTTPClient
import Core
import Foundation
import NIOCore
import NIOHTTP1

/// Any server that speaks OpenAI's `/v1/chat/completions` (OpenAI, vLLM, llama-server, LM Studio, Together, Groq,
/// another Switchyard). Streams are passed on event by event as the upstream's server-sent events arrive; answers,
/// events and error bodies are read up to fixed sizes. Upstream errors become canonical `CoreError`s with the
/// upstream's message.
public struct OpenAICompatibleProvider: Provider {
    public struct Configuration: Sendable {
        public var name: String
        /// Up to and including the version: `http://127.0.0.1:9001/v1`.
        public var baseURL: String
        /// Sent as `Authorization: Bearer …` when set.
        public var apiKey: String?
        public var headers: [String: String]
        /// The largest whole (non-streamed) answer or model list read.
        public var maxBodyBytes: Int
        /// The largest single server-sent event read.
        public var maxEventBytes: Int
        /// No request, streamed or not, runs longer than this.
        public var maxDuration: TimeAmount

        public init(name: String, baseURL: String, apiKey: String? = nil, headers: [String: String] = [:],
                    maxBodyBytes: Int = 16 << 20, maxEventBytes: Int = 1 << 20, maxDuration: TimeAmount = .hours(1)) {
            self.name = name
            self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
            self.apiKey = apiKey; self.headers = headers
            self.maxBodyBytes = maxBodyBytes; self.maxEventBytes = maxEventBytes; self.maxDuration = maxDuration
        }
    }

    public let configuration: Configuration
    let client: HTTPClient
    public var name: String { configuration.name }

    /// The client upstream requests go through by default. A refused connection fails the request at once (the
    /// router then falls back instead of waiting while the client retries); connecting may take 10 s; no redirects;
    /// no read timeout (the router's per-deployment timeout watches for silence). Never shut down.
    public static let sharedClient: HTTPClient = {
        var pool = HTTPClient.Configuration.ConnectionPool()
        pool.retryConnectionEstablishment = false
        let configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(10)),
                                                     connectionPool: pool)
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    /// Where a plain-HTTP upstream is (its answers read whole go through `PlainHTTPClient`); nil for HTTPS.
    let plain: (endpoint: PlainHTTPClient.Endpoint, path: String)?
    let plainClient: PlainHTTPClient

    public init(_ configuration: Configuration, client: HTTPClient = OpenAICompatibleProvider.sharedClient) {
        self.configuration = configuration
        self.client = client
        self.plainClient = .shared
        self.plain = Self.plainEndpoint(configuration.baseURL)
    }

    /// Host, port and path of an `http://` base URL without user information, query or fragment.
    static func plainEndpoint(_ baseURL: String) -> (endpoint: PlainHTTPClient.Endpoint, path: String)? {
        guard let c = URLComponents(string: baseURL), c.scheme?.lowercased() == "http", let host = c.host, !host.isEmpty,
              c.user == nil, c.password == nil, c.query == nil, c.fragment == nil else { return nil }
        let path = c.percentEncodedPath.hasSuffix("/") ? String(c.percentEncodedPath.dropLast()) : c.percentEncodedPath
        return (PlainHTTPClient.Endpoint(host: host, port: c.port ?? 80), path)
    }

    /// The upstream's `/models`.
    public func models() async throws -> [ModelInfo] {
        struct List: Decodable {
            struct Entry: Decodable { var id: String }
            var data: [Entry]
        }
        let url = configuration.baseURL + "/models"
        do {
            let response = try await UpstreamHTTP.send(request(url, method: .GET), client: client, timeout: .seconds(30), url: url)
            let list = try await UpstreamHTTP.decode(List.self, from: response, limit: configuration.maxBodyBytes, url: url, what: "a model list")
            return list.data.map { ModelInfo(name: $0.id, provider: name) }
        } catch {
            throw UpstreamHTTP.mapTransport(error, url: url)
        }
    }

    public func chat(_ request: ChatRequest) -> ChatStream {
        let url = configuration.baseURL + (request.rawPrompt == nil ? "/chat/completions" : "/completions")
        return UpstreamHTTP.chatStream(url: url) { try await self.run(request, url: url, continuation: $0) }
    }

    func request(_ url: String, method: HTTPMethod) -> HTTPClientRequest {
        var r = HTTPClientRequest(url: url)
        r.method = method
        r.headers = headers(method: method, json: false)
        return r
    }

    /// The configured headers, the API key, `Accept`, and (`json`) `Content-Type: application/json`.
    func headers(method: HTTPMethod, json: Bool) -> HTTPHeaders {
        var h = HTTPHeaders()
        for (k, v) in configuration.headers { h.add(name: k, value: v) }
        if let key = configuration.apiKey, !key.isEmpty { h.replaceOrAdd(name: "Authorization", value: "Bearer \(key)") }
        h.replaceOrAdd(name: "Accept", value: method == .POST ? "application/json, text/event-stream" : "application/json")
        if json { h.replaceOrAdd(name: "Content-Type", value: "application/json") }
        return h
    }

    public var answersWhole: Bool { true }

    /// The answer to a request read in one piece (asked for unstreamed whatever `stream` says), within `timeout`
    /// and the configuration's `maxDuration`.
    public func complete(_ chat: ChatRequest, timeout: Duration?) async throws -> CompletedAnswer {
        var chat = chat
        chat.stream = false
        let url = configuration.baseURL + (chat.rawPrompt == nil ? "/chat/completions" : "/completions")
        do {
            var limit = configuration.maxDuration
            if let timeout {
                let c = timeout.components
                limit = min(limit, .nanoseconds(max(1, c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000)))
            }
            let body: ByteBuffer
            if let plain {
                let path = plain.path + (chat.rawPrompt == nil ? "/chat/completions" : "/completions")
                let answer = try await plainClient.execute(plain.endpoint, method: .POST, path: path, headers: headers(method: .POST, json: true),
                                                           body: try Self.body(for: chat), timeout: limit, maxBody: configuration.maxBodyBytes)
                body = try UpstreamHTTP.check(answer)
            } else {
                let response = try await UpstreamHTTP.send(try post(chat, url: url), client: client, timeout: limit, url: url)
                body = try await UpstreamHTTP.read(response.body, limit: configuration.maxBodyBytes, url: url)
            }
            var mapper = EventMapper(maxToolCallBytes: configuration.maxEventBytes)
            return CompletedAnswer(events: try mapper.events(for: try Self.decode(body.readableBytesView, url: url)) + mapper.close())
        } catch {
            throw UpstreamHTTP.mapTransport(error, url: url)
        }
    }

    /// The POST of `chat` to `url`, its body written directly as JSON.
    private func post(_ chat: ChatRequest, url: String) throws -> HTTPClientRequest {
        var r = request(url, method: .POST)
        r.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
        r.body = .bytes(try Self.body(for: chat))
        return r
    }

    private static func decode(_ bytes: some Collection<UInt8>, url: String) throws -> Answer {
        // Read directly; an answer carrying an error object (rare) goes through Decodable, which knows its shapes.
        if let json = try? JSONReader.parse(bytes), json["error"] == nil, let answer = try? Answer(json: json) { return answer }
        let data = Data(bytes)
        do { return try JSONDecoder().decode(Answer.self, from: data) } catch {
            throw CoreError.upstream("\(url) sent an answer that is not a chat completion: \(String(decoding: data.prefix(200), as: UTF8.self))")
        }
    }

    private func run(_ chat: ChatRequest, url: String, continuation: AsyncThrowingStream<ChatEvent, Error>.Continuation) async throws {
        let response = try await UpstreamHTTP.send(try post(chat, url: url), client: client, timeout: configuration.maxDuration, url: url)
        var mapper = EventMapper(maxToolCallBytes: configuration.maxEventBytes)
        func decode(_ data: Data) throws -> Answer { try Self.decode(data, url: url) }
        guard chat.stream else {
            let body = try await UpstreamHTTP.read(response.body, limit: configuration.maxBodyBytes, url: url)
            guard continuation.yieldAll(try mapper.events(for: try decode(Data(body.readableBytesView)))), continuation.yieldAll(mapper.close()) else { return }
            continuation.finish()
            return
        }
        var parser = ServerSentEventParser(maxEventBytes: configuration.maxEventBytes)
        var done = false
        func handle(_ payload: String) throws -> Bool {
            if payload.trimmingCharacters(in: .whitespaces) == "[DONE]" { done = true; return true }
            return continuation.yieldAll(try mapper.events(for: try decode(Data(payload.utf8))))
        }
        guard try await UpstreamHTTP.pump(response.body, &parser, isDone: { done }, handle: handle) else { return }
        // A stream cut off before its end must not pass for a complete answer.
        guard done || mapper.finished else { throw CoreError.upstream("\(url): the stream ended before the answer was complete") }
        guard continuation.yieldAll(mapper.close()) else { return }
        continuation.finish()
    }
}
