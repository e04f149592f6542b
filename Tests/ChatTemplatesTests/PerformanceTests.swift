import ChatTemplates
import Foundation
import Testing

struct PerformanceTests {
    /// A ChatML-style template with tools, in the shape most published templates take.
    static let source = """
    {%- if tools %}
        {{- '<|im_start|>system\\n' }}
        {%- if messages[0].role == 'system' %}{{- messages[0].content + '\\n\\n' }}{%- endif %}
        {{- "# Tools\\n\\n<tools>" }}
        {%- for tool in tools %}{{- "\\n" }}{{- tool | tojson }}{%- endfor %}
        {{- "\\n</tools><|im_end|>\\n" }}
    {%- elif messages[0].role == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}
    {%- endif %}
    {%- set ns = namespace(last_user=0) %}
    {%- for message in messages %}
        {%- if message.role == 'user' %}{%- set ns.last_user = loop.index0 %}{%- endif %}
    {%- endfor %}
    {%- for message in messages %}
        {%- if message.role in ['user', 'system'] and not (message.role == 'system' and loop.first) %}
            {{- '<|im_start|>' + message.role + '\\n' + message.content | trim + '<|im_end|>\\n' }}
        {%- elif message.role == 'assistant' %}
            {%- set content = message.content.split('</think>')[-1].lstrip('\\n') %}
            {{- '<|im_start|>assistant\\n' + content + '<|im_end|>\\n' }}
        {%- endif %}
    {%- endfor %}
    {%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}
    """

    @Test func typicalRenderIsFast() throws {
        let template = try ChatTemplate(source: Self.source)
        let context: [String: JinjaValue] = [
            "messages": [
                ["role": "system", "content": "You are helpful."],
                ["role": "user", "content": "Hi"],
                ["role": "assistant", "content": "<think>hmm</think>\nHello!"],
                ["role": "user", "content": "Tell me a joke."],
            ],
            "tools": [["type": "function", "function": ["name": "get_weather", "parameters": ["type": "object"]]]],
            "add_generation_prompt": true,
        ]
        let first = try template.render(context)
        #expect(first.hasPrefix("<|im_start|>system\nYou are helpful.\n\n# Tools"))
        #expect(first.hasSuffix("<|im_start|>user\nTell me a joke.<|im_end|>\n<|im_start|>assistant\n"))
        #expect(first.contains("<|im_start|>assistant\nHello!<|im_end|>"))

        let iterations = 500
        let start = Date()
        for _ in 0..<iterations { _ = try template.render(context) }
        let perRender = Date().timeIntervalSince(start) / Double(iterations)
        print("chat templates: \(String(format: "%.1f", perRender * 1_000_000)) µs per render")
        // Generous bound so that unoptimized debug builds on slow machines pass too.
        #expect(perRender < 0.02)
    }
}
