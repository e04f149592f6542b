import Core
import Foundation
import Hummingbird

extension OpenAI {
    /// `/v1/embeddings`' request: `input` as a string, strings, token ids, or arrays of token ids.
    struct EmbeddingsBody: Decodable {
        enum Input: Decodable {
            case texts([String])
            case tokens([[Int32]])
            init(from decoder: Decoder) throws {
                let c = try decoder.singleValueContainer()
                if let s = try? c.decode(String.self) { self = .texts([s]); return }
                if let a = try? c.decode([String].self) { self = .texts(a); return }
                if let t = try? c.decode([Int32].self) { self = .tokens([t]); return }
                if let t = try? c.decode([[Int32]].self) { self = .tokens(t); return }
                throw DecodingError.dataCorruptedError(in: c, debugDescription:
                    "input must be a string, an array of strings, an array of token ids, or an array of arrays of token ids")
            }
            var canonical: [EmbeddingInput] {
                switch self {
                case .texts(let t): t.map(EmbeddingInput.text)
                case .tokens(let t): t.map(EmbeddingInput.tokens)
                }
            }
        }
        let model: String
        let input: Input
        let encoding_format: String?
        let dimensions: Int?
        let user: String?
    }

    struct EmbeddingList: Encodable {
        struct Item: Encodable {
            let object = "embedding"
            let index: Int
            let embedding: Vector
        }
        /// Floats, or their little-endian bytes in base64 (`encoding_format: base64`).
        enum Vector: Encodable {
            case floats([Float])
            case base64(String)
            func encode(to encoder: Encoder) throws {
                var c = encoder.singleValueContainer()
                switch self {
                case .floats(let v): try c.encode(v)
                case .base64(let s): try c.encode(s)
                }
            }
        }
        struct Usage: Encodable { let prompt_tokens: Int; let total_tokens: Int }
        let object = "list"
        let data: [Item]
        let model: String
        let usage: Usage
    }

    /// A vector's float32 values as little-endian bytes, base64-encoded (what the SDKs decode).
    static func base64(_ v: [Float]) -> String {
        var bytes = [UInt8]()
        bytes.reserveCapacity(v.count * 4)
        for x in v { withUnsafeBytes(of: x.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        return Data(bytes).base64EncodedString()
    }
}

extension OpenAISurface {
    func embeddings(_ request: Request, _ context: GatewayContext) async throws -> Response {
        var request = request
        let body = try await request.collectBody(limit: BodyLimit.maxBytes)
        let b = try JSONDecoder().decode(OpenAI.EmbeddingsBody.self, from: Data(buffer: body))
        let format = b.encoding_format ?? "float"
        guard format == "float" || format == "base64" else {
            throw APIError(.badRequest, "encoding_format must be 'float' or 'base64'", param: "encoding_format")
        }
        var core = EmbeddingRequest(model: b.model, inputs: b.input.canonical, dimensions: b.dimensions)
        core.hints = try RequestHints.from(request, metadata: nil)
        let result = try await backend.embed(core, caller: context.caller, record: context.record)
        let items = result.vectors.enumerated().map { i, v in
            OpenAI.EmbeddingList.Item(index: i, embedding: format == "base64" ? .base64(OpenAI.base64(v)) : .floats(v))
        }
        return try json(OpenAI.EmbeddingList(data: items, model: b.model,
                                             usage: .init(prompt_tokens: result.promptTokens, total_tokens: result.promptTokens)),
                        headers: RouteHeaders.fields(servedBy: result.route?.provider ?? "local", route: result.route))
    }
}
