import NIOCore
import Providers

/// The common chat request — text messages and sampling settings — read straight from parsed JSON, because decoding
/// through `Codable` costs more than the rest of a routed request. Anything else (tools, content parts, tool calls,
/// metadata, `keep_alive`, `lora`, a member of an unexpected type, text that is not JSON) is left to `Decodable`, which
/// reads it with its precise errors: `direct` answers nil then.
extension OpenAI.WithSampling where Body == OpenAI.ChatRequestBody {
    private struct Fallback: Error {}

    static func direct(_ body: ByteBuffer) -> Self? {
        guard let json = try? JSONReader.parse(body.readableBytesView) else { return nil }
        return direct(json)
    }

    /// The same, from JSON already parsed.
    static func direct(_ json: JSONValue) -> Self? {
        guard case .object = json else { return nil }
        for key in ["tools", "metadata", "keep_alive", "lora"] where json[key] != nil { return nil }
        do {
            guard let model = try string(json["model"]), let list = try array(json["messages"]) else { return nil }
            let messages = try list.map { m -> OpenAI.Message in
                guard case .object = m, let role = try string(m["role"]), m["tool_calls"] == nil else { throw Fallback() }
                return OpenAI.Message(role: role, content: try string(m["content"]).map { OpenAI.Content(text: $0) },
                                      tool_calls: nil, tool_call_id: try string(m["tool_call_id"]))
            }
            let stop: OpenAI.Stop? = switch json["stop"] {
            case nil: nil
            case .string(let s)?: OpenAI.Stop(values: [s])
            case .array(let a)?: OpenAI.Stop(values: try a.map { v in
                guard case .string(let s) = v else { throw Fallback() }
                return s
            })
            default: throw Fallback()
            }
            let streamOptions = try object(json["stream_options"]).map { OpenAI.StreamOptions(include_usage: try bool($0["include_usage"])) }
            let sampling = OpenAI.Sampling(
                temperature: try double(json["temperature"]), top_p: try double(json["top_p"]), top_k: try int(json["top_k"]),
                min_p: try double(json["min_p"]), repeat_penalty: try double(json["repeat_penalty"]),
                max_tokens: try int(json["max_tokens"]), max_completion_tokens: try int(json["max_completion_tokens"]), stop: stop,
                seed: try int(json["seed"]).map(Int64.init), presence_penalty: try double(json["presence_penalty"]),
                frequency_penalty: try double(json["frequency_penalty"]), n: try int(json["n"]), user: try string(json["user"]),
                stream: try bool(json["stream"]), stream_options: streamOptions, keep_alive: nil, ignore_eos: try bool(json["ignore_eos"]))
            return Self(body: OpenAI.ChatRequestBody(model: model, messages: messages, tools: nil, logprobs: try bool(json["logprobs"]),
                                                     top_logprobs: try int(json["top_logprobs"]), metadata: nil),
                        sampling: sampling)
        } catch {
            return nil
        }
    }

    private static func string(_ v: JSONValue?) throws -> String? {
        guard let v else { return nil }
        guard case .string(let s) = v else { throw Fallback() }
        return s
    }

    private static func double(_ v: JSONValue?) throws -> Double? {
        guard let v else { return nil }
        guard case .number(let d) = v else { throw Fallback() }
        return d
    }

    /// Integers only where the number is exactly one (2^53 and beyond are left to `Decodable`).
    private static func int(_ v: JSONValue?) throws -> Int? {
        guard let d = try double(v) else { return nil }
        guard d == d.rounded(), abs(d) < 9_007_199_254_740_992 else { throw Fallback() }
        return Int(d)
    }

    private static func bool(_ v: JSONValue?) throws -> Bool? {
        guard let v else { return nil }
        guard case .bool(let b) = v else { throw Fallback() }
        return b
    }

    private static func array(_ v: JSONValue?) throws -> [JSONValue]? {
        guard let v else { return nil }
        guard case .array(let a) = v else { throw Fallback() }
        return a
    }

    private static func object(_ v: JSONValue?) throws -> JSONValue? {
        guard let v else { return nil }
        guard case .object = v else { throw Fallback() }
        return v
    }
}
