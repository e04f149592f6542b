import ChatTemplates
@testable import Inference
import Testing

@Suite struct SamplerTests {
    func logits(_ values: [Float]) -> [Float] { values }

    func draw(_ p: SamplingParameters, _ values: [Float], times: Int = 1, history: [Int32] = []) -> [Int32] {
        var s = Sampler(p)
        return (0..<times).map { _ in
            var v = values
            return v.withUnsafeMutableBufferPointer { s.sample($0, history: history, generatedCount: history.count) }
        }
    }

    @Test func greedyPicksArgmax() {
        #expect(draw(.greedy, [0.1, 3, 2.9, -1]) == [1])
    }

    @Test func sameSeedSameTokens() {
        var p = SamplingParameters(); p.temperature = 1.5; p.topK = 0; p.topP = 1; p.minP = 0; p.seed = 1234
        let values = (0..<50).map { Float($0 % 7) * 0.3 }
        let a = draw(p, values, times: 200), b = draw(p, values, times: 200)
        #expect(a == b)
        p.seed = 99
        #expect(draw(p, values, times: 200) != a)
        #expect(Set(a).count > 3, "a hot temperature explores several tokens")
    }

    @Test func topKOneIsGreedy() {
        var p = SamplingParameters(); p.temperature = 5; p.topK = 1; p.seed = 7
        #expect(Set(draw(p, [0, 1, 5, 2], times: 50)) == [2])
    }

    @Test func topPAndMinPCutTheTail() {
        var p = SamplingParameters(); p.temperature = 1; p.topK = 0; p.minP = 0; p.topP = 0.5; p.seed = 3
        // token 0 holds ~88% of the mass: top-p 0.5 keeps it alone
        #expect(Set(draw(p, [4, 2, 1, 0], times: 100)) == [0])
        p.topP = 1; p.minP = 0.5
        // min-p 0.5 keeps tokens with p ≥ half the best: 0 and 1 (equal logits), never 2 or 3
        let picked = Set(draw(p, [3, 3, 0, -2], times: 200))
        #expect(picked == [0, 1])
    }

    @Test func penalties() {
        var p = SamplingParameters.greedy
        p.repeatPenalty = 2
        // token 0 (logit 3) seen → 1.5 < token 1's 2
        #expect(draw(p, [3, 2, 0], history: [0]) == [1])
        p = .greedy
        p.frequencyPenalty = 0.6
        #expect(draw(p, [3, 2, 0], history: [0, 0]) == [1])   // 3 − 1.2 = 1.8 < 2
        p = .greedy
        p.presencePenalty = 0.5
        #expect(draw(p, [3, 2, 0], history: [0, 0]) == [0])   // 3 − 0.5 = 2.5 > 2
    }

    @Test func logProbabilitiesNormalize() {
        let values: [Float] = [1, 2, 3]
        values.withUnsafeBufferPointer { buf in
            let (lp, top) = Sampler.logProbabilities(buf, chosen: 2, top: 2)
            let z = log(exp(1.0) + exp(2.0) + exp(3.0))
            #expect(abs(Double(lp) - (3 - z)) < 1e-5)
            #expect(top.map(\.0) == [2, 1])
        }
    }

    @Test func stopMatcherHoldsBackPrefixes() {
        var m = StopMatcher(["</end>", "STOP"])
        let a = m.feed("Hello </"), b = m.feed("en"), c = m.feed("d> tail")
        #expect(a == ("Hello ", false))
        #expect(b == ("", false))
        #expect(c == ("", true))
        var n = StopMatcher(["STOP"])
        let d = n.feed("ST"), e = n.feed("ay"), f = n.finish("ST", stopped: false)
        #expect(d == ("", false))
        #expect(e == ("STay", false))
        #expect(f == "ST")
    }

    @Test func modelTemplateRendersMessagesToolsAndSpecialTokens() throws {
        let template = """
        {{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% if m.tool_calls %}{% for c in m.tool_calls %}[{{ c.function.name }} {{ c.function.arguments | tojson }}]{% endfor %}{% endif %}</{{ m.role }}>
        {% endfor %}{% if tools %}tools: {{ tools | map(attribute='function') | map(attribute='name') | join(',') }}
        {% endif %}{% if add_generation_prompt %}<assistant>{% endif %}
        """
        let r = ChatPromptRenderer(template: template, bosToken: "<s>", eosToken: "</s>")
        #expect(r.usesModelTemplate)
        let messages = [PromptMessage(role: "user", content: "Hi"),
                        PromptMessage(role: "assistant", content: "", toolCalls: [PromptToolCall(id: "1", name: "f", arguments: #"{"b": 1, "a": "x"}"#)])]
        let out = try r.render(messages, tools: [PromptTool(name: "f"), PromptTool(name: "g")])
        #expect(out == "<s><user>Hi</user>\n<assistant>[f {\"b\": 1, \"a\": \"x\"}]</assistant>\ntools: f,g\n<assistant>")
        #expect(try r.render(messages.prefix(1).map { $0 }, addGenerationPrompt: false) == "<s><user>Hi</user>\n")
    }

    @Test func templateErrorsAreReportedNotRenderedAround() {
        let broken = ChatPromptRenderer(template: "{% for m in messages %}{{ m.content | nosuchfilter }}{% endfor %}")
        #expect(broken.templateError?.line == 1)
        #expect(throws: TemplateError.self) { try broken.render([PromptMessage(role: "user", content: "Hi")]) }
        let raising = ChatPromptRenderer(template: "{% if messages[0].role != 'system' %}{{ raise_exception('system first') }}{% endif %}")
        #expect(raising.templateError == nil)
        #expect(throws: TemplateError.self) { try raising.render([PromptMessage(role: "user", content: "Hi")]) }
    }

    @Test func withoutTemplateChatMLIsUsed() throws {
        let r = ChatPromptRenderer(template: nil)
        #expect(!r.usesModelTemplate)
        #expect(try r.render([PromptMessage(role: "user", content: "Hi")]) == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    }
}

#if canImport(Glibc)
import Glibc
#endif
