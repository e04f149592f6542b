/// One chat message for prompt rendering.
public struct PromptMessage: Sendable, Equatable, Codable {
    public var role: String
    public var content: String
    public init(role: String, content: String) { self.role = role; self.content = content }
}

/// ChatML rendering (`<|im_start|>role\ncontent<|im_end|>\n`), used until the Jinja engine renders a model's own
/// template. A default system prompt, when the model's template inserts one, is taken from that template.
public struct ChatMLRenderer: Sendable {
    public var defaultSystemPrompt: String?

    public init(defaultSystemPrompt: String? = nil) { self.defaultSystemPrompt = defaultSystemPrompt }

    /// Reads the default system prompt out of a ChatML-style template, e.g. SmolLM2's
    /// `{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n…<|im_end|>\n' }}`.
    public init(template: String?) {
        guard let template, template.contains("messages[0]['role'] != 'system'"),
              let open = template.firstRange(of: "<|im_start|>system\n"),
              let close = template[open.upperBound...].firstRange(of: "<|im_end|>")
        else { self.init(); return }
        self.init(defaultSystemPrompt: String(template[open.upperBound..<close.lowerBound]))
    }

    public func render(_ messages: [PromptMessage], addGenerationPrompt: Bool = true) -> String {
        var out = ""
        if let system = defaultSystemPrompt, messages.first?.role != "system" {
            out += "<|im_start|>system\n\(system)<|im_end|>\n"
        }
        for m in messages { out += "<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n" }
        if addGenerationPrompt { out += "<|im_start|>assistant\n" }
        return out
    }
}
