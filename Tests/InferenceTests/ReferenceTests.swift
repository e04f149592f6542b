import Foundation
import GGUF
import Inference
import Kernels
import TestSupport
import Testing

/// SmolLM2-135M-Instruct Q4_1 against what llama.cpp computed (../shared/reference/…/llamacpp.json).
/// One model instance, so the suite is serialized.
@Suite(.serialized) struct SmolLM2ReferenceTests {
    struct Completion: Decodable {
        struct Step: Decodable { let id: Int32; let logprob: Double; let top: [[Double]] }
        let prompt: String
        let prompt_ids: [Int32]
        let greedy_ids: [Int32]
        let top5: [Step]
    }
    struct Chat: Decodable {
        struct Message: Decodable { let role: String; let content: String }
        let messages: [Message]
        let rendered_prompt: String
        let greedy_reply: String
    }
    struct File: Decodable { let completions: [Completion]; let chat: [Chat] }

    static let reference: File? = {
        guard let data = try? Data(contentsOf: Reference.file("smollm2-135m-instruct-q4_1/llamacpp.json")) else { return nil }
        return try? JSONDecoder().decode(File.self, from: data)
    }()

    nonisolated(unsafe) static var cached: LoadedModel?
    static func model() throws -> LoadedModel {
        if let m = cached { return m }
        let m = try LoadedModel(path: try Reference.smolLM2(), options: ModelOptions(contextLength: 1024))
        cached = m
        return m
    }

    func file() throws -> File {
        guard let f = Self.reference else { throw Reference.MissingModel(path: Reference.file("smollm2-135m-instruct-q4_1/llamacpp.json").path) }
        return f
    }

    /// First 32 greedy ids equal llama.cpp's, except that they may part where llama.cpp's top two
    /// log-probabilities are within 0.05; chosen-token log-probs within 0.05 until they part.
    @Test func greedyCompletionsMatchLlamaCpp() throws {
        let loaded = try Self.model()
        let model = loaded.model
        var report: [String] = []
        for (n, c) in try file().completions.enumerated() {
            #expect(loaded.tokenizer.encode(c.prompt, parseSpecial: true) == c.prompt_ids, "prompt ids of case \(n)")
            var logits = Array(try model.forward(c.prompt_ids, startingAt: 0, logits: .last))
            var position = c.prompt_ids.count
            var parted: Int?
            var maxDiff = 0.0
            for step in 0..<min(32, c.greedy_ids.count) {
                let ours = logits.withUnsafeBufferPointer { Sampler.argmax($0) }
                let ref = c.top5[step]
                let lp = logits.withUnsafeBufferPointer { Double(Sampler.logProbabilities($0, chosen: ref.id, top: 0).0) }
                if ours != c.greedy_ids[step] {
                    let gap = ref.top.count > 1 ? ref.top[0][1] - ref.top[1][1] : .infinity
                    #expect(gap <= 0.05, "case \(n) '\(c.prompt)' parts at step \(step): ours \(ours), llama.cpp \(c.greedy_ids[step]) with top-2 gap \(gap)")
                    parted = step
                    break
                }
                maxDiff = max(maxDiff, abs(lp - ref.logprob))
                #expect(abs(lp - ref.logprob) <= 0.05, "case \(n) step \(step): logprob \(lp) vs \(ref.logprob)")
                logits = Array(try model.forward([ours], startingAt: position, logits: .last))
                position += 1
            }
            report.append("case \(n): \(parted.map { "parted at step \($0)" } ?? "32/32 equal"), max |Δlogprob| \(String(format: "%.4f", maxDiff))")
        }
        print(report.joined(separator: "\n"))
    }

    @Test func chatPromptsRenderAndTokenizeAsLlamaCpp() throws {
        let loaded = try Self.model()
        for c in try file().chat {
            let rendered = loaded.chat.render(c.messages.map { PromptMessage(role: $0.role, content: $0.content) })
            #expect(rendered == c.rendered_prompt)
            let ids = loaded.tokenize(rendered)
            #expect(ids.first == loaded.tokenizer.tokenID(for: "<|im_start|>"))
            var params = GenerationParameters(sampling: .greedy, maxTokens: 48)
            params.logprobs = false
            let result = try Generator(loaded).generate(prompt: ids, parameters: params)
            // Greedy replies may part from llama.cpp's only after a near-tie; they must at least agree on a prefix.
            let common = zip(result.text, c.greedy_reply).prefix { $0 == $1 }.count
            print("chat reply: \(result.text.debugDescription) — llama.cpp: \(c.greedy_reply.debugDescription) — common prefix \(common)")
            #expect(common >= min(8, c.greedy_reply.count), "reply \(result.text.debugDescription) vs \(c.greedy_reply.debugDescription)")
        }
    }

    @Test func perplexityWithinOnePercentOfLlamaCpp() throws {
        let loaded = try Self.model()
        let text = try String(contentsOf: Reference.file("perplexity-text.txt"), encoding: .utf8)
        let tokens = loaded.tokenize(text)
        let result = try PerplexityEvaluator.evaluate(loaded.model, tokens: tokens, context: 512, bos: nil)
        print("PPL = \(result.perplexity) over \(result.chunks) chunks (llama.cpp: 18.3914 over 14)")
        #expect(result.chunks == 14)
        #expect(abs(result.perplexity - 18.3914) / 18.3914 < 0.01)
    }

    @Test func sameSeedSameText() throws {
        let loaded = try Self.model()
        let ids = loaded.tokenize(loaded.chat.render([PromptMessage(role: "user", content: "Tell me a story.")]))
        var sampling = SamplingParameters(); sampling.temperature = 0.9; sampling.seed = 42
        let params = GenerationParameters(sampling: sampling, maxTokens: 24)
        let a = try Generator(loaded).generate(prompt: ids, parameters: params)
        let b = try Generator(loaded).generate(prompt: ids, parameters: params)
        #expect(a.tokens == b.tokens && !a.tokens.isEmpty)
        #expect(a.seed == 42)
    }

    @Test func stopStringsAndMaxTokens() throws {
        let loaded = try Self.model()
        let ids = loaded.tokenize("The capital of France is")
        let free = try Generator(loaded).generate(prompt: ids, parameters: GenerationParameters(sampling: .greedy, maxTokens: 20))
        #expect(free.tokens.count == 20 && free.finishReason == .length)
        // stop at the first occurrence of a word the free run produced
        let words = free.text.split(separator: " ")
        guard words.count > 2 else { Issue.record("expected several words in \(free.text.debugDescription)"); return }
        let stop = String(words[2])
        let stopped = try Generator(loaded).generate(prompt: ids, parameters: GenerationParameters(sampling: .greedy, maxTokens: 20, stop: [stop]))
        #expect(stopped.finishReason == .stop)
        #expect(!stopped.text.contains(stop))
        #expect(free.text.hasPrefix(stopped.text))
    }
}
