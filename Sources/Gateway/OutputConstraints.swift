import Core
import Grammar
import NIOCore

/// The request fields that constrain an answer's shape — `response_format`, `grammar`, `tool_choice`,
/// `parallel_tool_calls` — read from the body with object members in the client's order (a schema's `properties`
/// order is the order its keys are generated in). Shared by the OpenAI and native surfaces.
enum OutputConstraints {
    struct Fields: Equatable {
        var responseFormat: ResponseFormat = .text
        var grammar: String?
        var toolChoice: ToolChoice = .auto
        var parallelToolCalls = true
    }

    private static let keys = ["\"response_format\"", "\"grammar\"", "\"tool_choice\"", "\"parallel_tool_calls\""].map { Array($0.utf8) }

    /// The fields of `body` (defaults when it has none of them); `toolNames`: the functions the request declares.
    static func read(_ body: ByteBuffer, toolNames: [String]) throws -> Fields {
        let bytes = body.readableBytesView
        guard keys.contains(where: { contains(bytes, $0) }) else { return Fields() }
        let json: OrderedJSON
        do { json = try OrderedJSON.parse(String(decoding: bytes, as: UTF8.self), maxDepth: 128) } catch { return Fields() }
        return try read(json, toolNames: toolNames)
    }

    static func read(_ json: OrderedJSON, toolNames: [String]) throws -> Fields {
        var f = Fields()
        switch json["response_format"] {
        case nil, .null?: break
        case .object(let members)?:
            let rf = OrderedJSON.object(members)
            guard case .string(let type)? = rf["type"] else {
                throw APIError(.badRequest, "response_format.type must be one of text, json_object, json_schema", param: "response_format.type")
            }
            switch type {
            case "text": break
            case "json_object": f.responseFormat = .jsonObject
            case "json_schema":
                guard case .object? = rf["json_schema"], let spec = rf["json_schema"] else {
                    throw APIError(.badRequest, "response_format.json_schema must be an object with a schema", param: "response_format.json_schema")
                }
                guard let schema = spec["schema"], schema != .null else {
                    throw APIError(.badRequest, "response_format.json_schema.schema is required", param: "response_format.json_schema.schema")
                }
                var name = "response"
                if case .string(let n)? = spec["name"] { name = n }
                var strict = false
                if case .bool(let s)? = spec["strict"] { strict = s }
                f.responseFormat = .jsonSchema(name: name, schema: schema.text, strict: strict)
            default:
                throw APIError(.badRequest, "response_format.type '\(type)' is not one of text, json_object, json_schema", param: "response_format.type")
            }
        default:
            throw APIError(.badRequest, "response_format must be an object", param: "response_format")
        }
        switch json["grammar"] {
        case nil, .null?: break
        case .string(let g)?: f.grammar = g
        default: throw APIError(.badRequest, "grammar must be a string (GBNF)", param: "grammar")
        }
        switch json["tool_choice"] {
        case nil, .null?: break
        case .string("auto")?: f.toolChoice = .auto
        case .string("none")?: f.toolChoice = .none
        case .string("required")?: f.toolChoice = .required
        case .object(let members)?:
            let tc = OrderedJSON.object(members)
            guard case .string(let name)? = tc["function"]?["name"] else {
                throw APIError(.badRequest, "tool_choice must be auto, none, required or {\"type\": \"function\", \"function\": {\"name\": …}}", param: "tool_choice")
            }
            guard toolNames.contains(name) else {
                throw APIError(.badRequest, "tool_choice names '\(name)', which is not among the request's tools", param: "tool_choice")
            }
            f.toolChoice = .function(name)
        default:
            throw APIError(.badRequest, "tool_choice must be auto, none, required or {\"type\": \"function\", \"function\": {\"name\": …}}", param: "tool_choice")
        }
        if f.toolChoice == .required, toolNames.isEmpty {
            throw APIError(.badRequest, "tool_choice is required but the request has no tools", param: "tool_choice")
        }
        switch json["parallel_tool_calls"] {
        case nil, .null?: break
        case .bool(let b)?: f.parallelToolCalls = b
        default: throw APIError(.badRequest, "parallel_tool_calls must be a boolean", param: "parallel_tool_calls")
        }
        return f
    }

    /// Applies the fields to a canonical request.
    static func apply(_ f: Fields, to request: inout ChatRequest) {
        request.responseFormat = f.responseFormat
        request.grammar = f.grammar
        request.toolChoice = f.toolChoice
        request.parallelToolCalls = f.parallelToolCalls
    }

    private static func contains(_ haystack: ByteBufferView, _ needle: [UInt8]) -> Bool {
        guard let first = needle.first, haystack.count >= needle.count else { return false }
        var i = haystack.startIndex
        let last = haystack.endIndex - needle.count
        while i <= last {
            if haystack[i] == first {
                var j = 1
                while j < needle.count, haystack[i + j] == needle[j] { j += 1 }
                if j == needle.count { return true }
            }
            i += 1
        }
        return false
    }
}
