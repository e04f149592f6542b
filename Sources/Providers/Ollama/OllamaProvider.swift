import AsyncHTTPClient
import Core
import Foundation
import NIOCore
import NIOHTTP1

/// An Ollama server's native API: `POST /api/chat` (streamed as newline-delimited JSON, passed on line by line) and
/// `GET /api/tags` for the models it has. Lines, answers and error bodies are read up to fixed sizes; its errors
/// (`{"error": "…"}` with a status) become canonical ones.
public struct OllamaProvider: Provider {
    public static let defaultBaseURL = "http://127.0.0.1:11434"

    public struct Configuration: Sendable {
        public var name: String
        /// Before `/api`: `http://127.0.0.1:11434`.
        public var baseURL: String
        /// Sent as `Authorization: Bearer …` when set (a proxy in front of Ollama may want one).
        public var apiKey: String?
        public var headers: [String: String]
        public var maxBodyBytes: Int
        public var maxLineBytes: Int
        public var maxDuration: TimeAmount

        public init(name: String, baseURL: String = OllamaProvider.defaultBaseURL, apiKey: String? = nil, headers: [String: String] = [:],
                    maxBodyBytes: Int = 16 << 20, maxLineBytes: Int = 1 << 20, maxDuration: TimeAmount = .hours(1)) {
            var base = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
            if base.hasSuffix("/api") { base = String(base.dropLast(4)) }
            self.name = name; self.baseURL = base; self.apiKey = apiKey; self.headers = headers
            self.maxBodyBytes = maxBodyBytes; self.maxLineBytes = maxLineBytes; self.maxDuration = maxDuration
        }
    }

    public let configuration: Configuration
    let client: HTTPClient
    public var name: String { configuration.name }

    public init(_ configuration: Configuration, client: HTTPClient = OpenAICompatibleProvider.sharedClient) {
        self.configuration = configuration
        self.client = client
    }

    /// The models the server has (`/api/tags`), with their sizes and quantizations.
    public func models() async throws -> [ModelInfo] {
        let url = configuration.baseURL + "/api/tags"
        do {
            let response = try await UpstreamHTTP.send(request(url, method: .GET), client: client, timeout: .seconds(30), url: url)
            let tags = try await UpstreamHTTP.decode(Tags.self, from: response, limit: configuration.maxBodyBytes, url: url, what: "a model list")
            return tags.models.map { ModelInfo(name: $0.name, provider: name, sizeBytes: $0.size, quantization: $0.details?.quantization_level) }
        } catch {
            throw UpstreamHTTP.mapTransport(error, url: url)
        }
    }

    public func chat(_ request: ChatRequest) -> ChatStream {
        let url = configuration.baseURL + "/api/chat"
        return UpstreamHTTP.chatStream(url: url) { try await self.run(request, url: url, continuation: $0) }
    }

    func request(_ url: String, method: HTTPMethod) -> HTTPClientRequest {
        var r = HTTPClientRequest(url: url)
        r.method = method
        for (k, v) in configuration.headers { r.headers.add(name: k, value: v) }
        if let key = configuration.apiKey, !key.isEmpty { r.headers.replaceOrAdd(name: "Authorization", value: "Bearer \(key)") }
        return r
    }

    private func run(_ chat: ChatRequest, url: String, continuation: AsyncThrowingStream<ChatEvent, Error>.Continuation) async throws {
        // Ollama has `format` (JSON, a schema) but no grammars: refused rather than sent without it.
        if chat.grammar != nil { throw CoreError.badRequest("grammar is not supported by Ollama models; use response_format") }
        if chat.sampling.adapters != nil { throw CoreError.badRequest("lora (per-request adapters) is not supported by Ollama models") }
        // Nor a way to force a tool call, nor log-probabilities: refused by name (`tool_choice: none` is kept by not
        // sending the tools).
        switch chat.toolChoice {
        case .required: throw CoreError.badRequest("tool_choice 'required' cannot be sent to Ollama models (Ollama's API has no tool_choice)")
        case .function(let name): throw CoreError.badRequest("tool_choice naming '\(name)' cannot be sent to Ollama models (Ollama's API has no tool_choice)")
        case .auto, .none: break
        }
        if chat.logprobs { throw CoreError.badRequest("logprobs are not available from Ollama models here") }
        var r = request(url, method: .POST)
        r.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
        r.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: Self.body(for: chat))))
        let response = try await UpstreamHTTP.send(r, client: client, timeout: configuration.maxDuration, url: url)
        var mapper = EventMapper(parallelToolCalls: chat.parallelToolCalls)
        guard chat.stream else {
            let answer = try await UpstreamHTTP.decode(Answer.self, from: response, limit: configuration.maxBodyBytes, url: url, what: "a chat answer")
            guard continuation.yieldAll(try mapper.events(for: answer)) else { return }
            guard mapper.finished else { throw CoreError.upstream("\(url) answered without `done`") }
            continuation.finish()
            return
        }
        let decoder = JSONDecoder()
        var lines = LineSplitter(maxLineBytes: configuration.maxLineBytes)
        func handle(_ line: String) throws -> Bool {
            let answer: Answer
            do { answer = try decoder.decode(Answer.self, from: Data(line.utf8)) } catch {
                throw CoreError.upstream("\(url) sent a line that is not a chat answer: \(line.prefix(200))")
            }
            return continuation.yieldAll(try mapper.events(for: answer))
        }
        guard try await UpstreamHTTP.pump(response.body, &lines, isDone: { mapper.finished }, handle: handle) else { return }
        guard mapper.finished else { throw CoreError.upstream("\(url): the stream ended before the answer was complete") }
        continuation.finish()
    }
}
