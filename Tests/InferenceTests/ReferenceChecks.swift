import Foundation
import Inference
import Testing

/// A model's llamacpp.json in Tests/Fixtures/reference: llama.cpp's greedy completions (with log-probabilities) and chats.
struct ReferenceFile: Decodable {
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
    let completions: [Completion]
    let chat: [Chat]
}

/// The comparisons with llama.cpp that every reference model goes through.
enum ReferenceChecks {
    /// Greedy continuations against llama.cpp's, 32 steps per case.
    ///
    /// The issue's target is: ids equal until a step where llama.cpp's top two log-probabilities are within 0.05,
    /// and chosen-token log-probabilities within 0.05 until then. That is NOT met: activation quantization noise
    /// (8-bit blocks before every quantized product) differs between any two implementations that are not bit-exact,
    /// and llama.cpp itself departs from an exact float64 evaluation of the same weights by up to 0.13 per step.
    /// What this asserts is what we measured and hold to (so a regression fails it): every prompt tokenizes
    /// identically; ids part only where llama.cpp's top-two gap is below 0.4; at least 65% of compared steps agree
    /// within 0.05 and every step within 0.4; on average within 0.05. It prints the per-case figures.
    /// `partingGap`: the widest llama.cpp top-two gap at which our ids may part from its ids.
    /// `adapters`: the LoRA adapters the reference ran with.
    /// Async so that it can yield between cases: the computing runs on the caller's thread, and a test that held a
    /// thread of the cooperative pool for minutes would starve the suites that wait on timers meanwhile.
    static func greedyCompletions(_ loaded: LoadedModel, _ file: ReferenceFile, partingGap: Double = 0.4, minimumWithin: Double = 0.65,
                                  adapters: [AdapterUse] = [], label: String? = nil) async throws {
        try await greedyCompletions(loaded, file.completions, partingGap: partingGap, minimumWithin: minimumWithin, adapters: adapters, label: label)
    }

    /// `banned`: tokens the reference never chose (its `logit_bias`); they still count in the log-probabilities.
    /// `routerMargin`: for a mixture of experts, the smallest router margin of the pass that gave the logits (how near
    /// a dropped expert came to a kept one): a part at any gap is allowed where it is below 0.05 — the deviation these
    /// checks count as agreement between the two implementations, so a choice between experts that close is a tie
    /// either may break, after which the token runs through a different expert.
    static func greedyCompletions(_ loaded: LoadedModel, _ completions: [ReferenceFile.Completion], partingGap: Double = 0.4,
                                  minimumWithin: Double = 0.65, adapters: [AdapterUse] = [], label: String? = nil,
                                  banned: Set<Int32> = [], routerMargin: (() -> Double)? = nil, maximumMean: Double = 0.05) async throws {
        let model = loaded.model
        var report: [String] = []
        var diffs: [Double] = []
        for (n, c) in completions.enumerated() {
            await Task.yield()
            // prompt_ids are the text's tokens; the model ran them after a BOS when its vocabulary asks for one
            let bos = loaded.tokenizer.addBOS ? loaded.tokenizer.bosTokenID.map { [$0] } ?? [] : []
            let ids = loaded.tokenize(c.prompt)
            #expect(ids == bos + c.prompt_ids, "prompt ids of case \(n)")
            var logits = Array(try model.forward(ids, startingAt: 0, logits: .last, adapters: adapters))
            var position = ids.count
            var parted: (step: Int, gap: Double)?
            var caseMax = 0.0
            for step in 0..<min(32, c.greedy_ids.count) {
                let ours = bestToken(logits, banned: banned)
                let ref = c.top5[step]
                let lp = logits.withUnsafeBufferPointer { Double(Sampler.logProbabilities($0, chosen: ref.id, top: 0).0) }
                if ours != c.greedy_ids[step] {
                    // the gap between the two best tokens the reference could choose (with fewer than two of them in
                    // its top five, the best against the fifth: a lower bound)
                    let allowed = ref.top.filter { !banned.contains(Int32($0[0])) }
                    let gap = allowed.count > 1 ? allowed[0][1] - allowed[1][1]
                        : allowed.count == 1 && ref.top.count > 1 ? allowed[0][1] - (ref.top.last?[1] ?? 0) : .infinity
                    let margin = routerMargin?() ?? .infinity
                    #expect(gap < partingGap || margin < 0.05,
                            "case \(n) '\(c.prompt)' parts at step \(step): ours \(ours), llama.cpp \(c.greedy_ids[step]), top-2 gap \(gap), router margin \(margin)")
                    parted = (step, gap)
                    if gap >= partingGap { report.append("case \(n): a router margin of \(String(format: "%.4f", margin)) at step \(step)") }
                    break
                }
                let d = abs(lp - ref.logprob)
                diffs.append(d)
                caseMax = max(caseMax, d)
                #expect(d <= 0.4, "case \(n) step \(step): logprob \(lp) vs llama.cpp \(ref.logprob)")
                logits = Array(try model.forward([ours], startingAt: position, logits: .last, adapters: adapters))
                position += 1
            }
            let how = parted.map { "parted at step \($0.step) (llama.cpp top-2 gap \(String(format: "%.3f", $0.gap)))" } ?? "32/32 ids equal"
            report.append("case \(n): \(how); max |Δlogprob| \(String(format: "%.3f", caseMax))")
        }
        let within = Double(diffs.filter { $0 <= 0.05 }.count) / Double(max(1, diffs.count))
        let mean = diffs.reduce(0, +) / Double(max(1, diffs.count))
        report.append(String(format: "%@: %d steps compared: %.0f%% within 0.05, mean |Δ| %.4f, max %.4f",
                             label ?? loaded.name, diffs.count, within * 100, mean, diffs.max() ?? 0))
        print(report.joined(separator: "\n"))
        #expect(within >= minimumWithin)
        #expect(mean <= maximumMean)
    }

    /// The most likely token that is not banned.
    static func bestToken(_ logits: [Float], banned: Set<Int32>) -> Int32 {
        banned.isEmpty ? logits.withUnsafeBufferPointer { Sampler.argmax($0) }
            : Int32(logits.indices.filter { !banned.contains(Int32($0)) }.max { logits[$0] < logits[$1] } ?? 0)
    }

    /// Distances from an exact (float64) evaluation of the same weights, teacher-forced along llama.cpp's greedy
    /// completions (`exact[case][step]`: the exact log-probability of llama.cpp's token at that step, from
    /// tools/exact_arch_forward.py): ours and llama.cpp's, each as (mean |Δ|, max |Δ|, fraction within 0.05), over
    /// every step of every case whatever the ids would have done.
    /// Also, on the way: at the steps where llama.cpp's two best allowed tokens are more than 0.15 apart, how many of
    /// them our best allowed token is llama.cpp's (`topAgreement`, of `clearSteps`).
    struct ExactDistance { let mean: Double; let max: Double; let within: Double; let steps: Int }

    /// `exact` nil: only the agreement (the distances come back nil).
    static func teacherForced(_ loaded: LoadedModel, _ completions: [ReferenceFile.Completion], exact: [[Double]]?,
                              banned: Set<Int32> = []) async throws
        -> (ours: ExactDistance?, llamaCpp: ExactDistance?, topAgreement: Int, clearSteps: Int) {
        var ours: [Double] = [], theirs: [Double] = []
        var agree = 0, clear = 0
        for (n, c) in completions.enumerated() {
            let steps = exact.map { n < $0.count ? $0[n] : [] } ?? c.top5.map(\.logprob)
            await Task.yield()
            let bos = loaded.tokenizer.addBOS ? loaded.tokenizer.bosTokenID.map { [$0] } ?? [] : []
            let ids = bos + c.prompt_ids + c.greedy_ids
            let vocab = loaded.model.shape.vocabularySize
            let all = Array(try loaded.model.forward(ids, startingAt: 0, logits: .all, adapters: []))
            let start = bos.count + c.prompt_ids.count - 1
            for (s, (token, e)) in zip(c.greedy_ids, steps).enumerated() {
                let row = Array(all[(start + s) * vocab ..< (start + s + 1) * vocab])
                let lp = row.withUnsafeBufferPointer { Double(Sampler.logProbabilities($0, chosen: token, top: 0).0) }
                ours.append(abs(lp - e))
                theirs.append(abs(c.top5[s].logprob - e))
                let allowed = c.top5[s].top.filter { !banned.contains(Int32($0[0])) }
                if allowed.count > 1, allowed[0][1] - allowed[1][1] > 0.15 {
                    clear += 1
                    if bestToken(row, banned: banned) == Int32(allowed[0][0]) { agree += 1 }
                }
            }
        }
        func summary(_ d: [Double]) -> ExactDistance {
            ExactDistance(mean: d.reduce(0, +) / Double(max(1, d.count)), max: d.max() ?? 0,
                          within: Double(d.filter { $0 <= 0.05 }.count) / Double(max(1, d.count)), steps: d.count)
        }
        return exact == nil ? (nil, nil, agree, clear) : (summary(ours), summary(theirs), agree, clear)
    }

    /// The chat prompts render exactly as the model's template does, and greedy replies follow llama.cpp's token for
    /// token (teacher-forced on llama.cpp's reply), parting only where our own top two choices are within 0.3 —
    /// a near-tie that quantization noise may decide either way. (The reference has no log-probabilities for chat.)
    static func chatReplies(_ loaded: LoadedModel, _ file: ReferenceFile, firstToken: Int32?) async throws {
        let model = loaded.model
        for c in file.chat {
            await Task.yield()
            let rendered = try loaded.chat.render(c.messages.map { PromptMessage(role: $0.role, content: $0.content) })
            #expect(rendered == c.rendered_prompt)
            let prompt = loaded.tokenize(rendered)
            #expect(prompt.first == firstToken)
            let reply = loaded.tokenizer.encode(c.greedy_reply, parseSpecial: false)
            var logits = Array(try model.forward(prompt, startingAt: 0, logits: .last))
            var followed = 0
            for want in reply {
                let ours = logits.withUnsafeBufferPointer { Sampler.argmax($0) }
                if ours != want {
                    let (lpOurs, lpWant) = logits.withUnsafeBufferPointer {
                        (Sampler.logProbabilities($0, chosen: ours, top: 0).0, Sampler.logProbabilities($0, chosen: want, top: 0).0)
                    }
                    #expect(lpOurs - lpWant <= 0.3, "reply to \(c.messages.last?.content ?? "") parts at token \(followed): gap \(lpOurs - lpWant)")
                    break
                }
                followed += 1
                logits = Array(try model.forward([want], startingAt: prompt.count + followed - 1, logits: .last))
            }
            print("chat: followed \(followed)/\(reply.count) tokens of llama.cpp's reply \(c.greedy_reply.debugDescription)")
        }
    }
}
