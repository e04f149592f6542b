import ChatTemplates
import Foundation

/// One chat message for prompt rendering, in the shape chat templates expect (OpenAI's, with tool-call arguments
/// given to the template as an object, as Hugging Face transformers does).
public struct PromptMessage: Sendable, Equatable, Codable {
    public var role: String
    public var content: String
    /// Calls an assistant message makes.
    public var toolCalls: [PromptToolCall]
    /// For a `tool` message: the call it answers and the tool's name.
    public var toolCallID: String?
    public var name: String?

    public init(role: String, content: String, toolCalls: [PromptToolCall] = [], toolCallID: String? = nil, name: String? = nil) {
        self.role = role; self.content = content; self.toolCalls = toolCalls; self.toolCallID = toolCallID; self.name = name
    }
}

public struct PromptToolCall: Sendable, Equatable, Codable {
    public var id: String
    public var name: String
    /// The arguments as JSON text.
    public var arguments: String
    public init(id: String, name: String, arguments: String) { self.id = id; self.name = name; self.arguments = arguments }
}

/// A tool offered to the model.
public struct PromptTool: Sendable, Equatable, Codable {
    public var name: String
    public var description: String?
    /// The JSON Schema of the parameters, as JSON text.
    public var parametersJSON: String?
    public init(name: String, description: String? = nil, parametersJSON: String? = nil) {
        self.name = name; self.description = description; self.parametersJSON = parametersJSON
    }
}

/// Turns chat messages into a model's prompt text with the model's own chat template (`tokenizer.chat_template`),
/// rendered the way Hugging Face transformers renders it; a model whose file has no template gets ChatML.
/// A template that cannot be parsed or rendered is an error naming the line — never a different prompt.
public struct ChatPromptRenderer: Sendable {
    /// The template text from the model file, if it has one.
    public let source: String?
    public let bosToken: String
    public let eosToken: String
    private let compiled: Result<ChatTemplate, TemplateError>?

    public init(template: String?, bosToken: String = "", eosToken: String = "") {
        source = template
        self.bosToken = bosToken
        self.eosToken = eosToken
        if let template, !template.isEmpty {
            do throws(TemplateError) { compiled = .success(try ChatTemplate(source: template)) } catch { compiled = .failure(error) }
        } else {
            compiled = nil
        }
    }

    /// Whether the prompt comes from the model's own template (false: built-in ChatML).
    public var usesModelTemplate: Bool { compiled != nil }

    /// The reason the model's template cannot be used, if it cannot be parsed.
    public var templateError: TemplateError? {
        if case .failure(let e) = compiled { return e }
        return nil
    }

    public func render(_ messages: [PromptMessage], tools: [PromptTool] = [], addGenerationPrompt: Bool = true,
                       now: Date = Date()) throws(TemplateError) -> String {
        guard let compiled else { return Self.chatML(messages, addGenerationPrompt: addGenerationPrompt) }
        let template = try compiled.get()
        var context: [String: JinjaValue] = [
            "messages": .array(messages.map(Self.value)),
            "add_generation_prompt": .bool(addGenerationPrompt),
            "bos_token": .string(bosToken),
            "eos_token": .string(eosToken),
        ]
        if !tools.isEmpty { context["tools"] = .array(tools.map(Self.value)) }
        return try template.render(context, now: now)
    }

    /// `<|im_start|>role\ncontent<|im_end|>\n` per message, then `<|im_start|>assistant\n`.
    public static func chatML(_ messages: [PromptMessage], addGenerationPrompt: Bool) -> String {
        var out = ""
        for m in messages { out += "<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n" }
        if addGenerationPrompt { out += "<|im_start|>assistant\n" }
        return out
    }

    /// JSON text as a template value, keys in their order; text that is not JSON stays a string.
    static func json(_ text: String) -> JinjaValue {
        (try? JinjaValue(jsonString: text)) ?? .string(text)
    }

    static func value(_ m: PromptMessage) -> JinjaValue {
        var o: JinjaObject = ["role": .string(m.role), "content": .string(m.content)]
        if !m.toolCalls.isEmpty {
            o["tool_calls"] = .array(m.toolCalls.map { call in
                .object(["id": .string(call.id), "type": "function",
                         "function": .object(["name": .string(call.name), "arguments": json(call.arguments)])])
            })
        }
        if let id = m.toolCallID { o["tool_call_id"] = .string(id) }
        if let name = m.name { o["name"] = .string(name) }
        return .object(o)
    }

    static func value(_ t: PromptTool) -> JinjaValue {
        var function: JinjaObject = ["name": .string(t.name)]
        if let d = t.description { function["description"] = .string(d) }
        function["parameters"] = t.parametersJSON.map(json) ?? .object(["type": "object", "properties": .object([:])])
        return .object(["type": "function", "function": .object(function)])
    }
}
