import Inference
import Testing

@Suite struct BatchSchedulerTests {
    @Test func admitsIntoSlotsAndChunksPromptsBesideDecodes() {
        var s = BatchScheduler(.init(slots: 2, tokenBudget: 8, queueCapacity: 4))
        #expect(s.submit(id: 1, prompt: Array(repeating: Int32(1), count: 5)) == .queued)
        #expect(s.submit(id: 2, prompt: Array(repeating: Int32(2), count: 12)) == .queued)
        #expect(s.submit(id: 3, prompt: Array(repeating: Int32(3), count: 3)) == .queued)   // waits: two slots
        // step 1: prompts of 1 (5) and the first 3 of 2
        let p1 = s.nextStep()
        #expect(p1 == [.init(id: 1, slot: 0, kind: .prefill(0..<5, last: true)), .init(id: 2, slot: 1, kind: .prefill(0..<3, last: false))])
        // step 2: 1 decodes; 2 continues its prompt within the remaining budget of 7
        let p2 = s.nextStep()
        #expect(p2 == [.init(id: 1, slot: 0, kind: .decode), .init(id: 2, slot: 1, kind: .prefill(3..<10, last: false))])
        let p3 = s.nextStep()
        #expect(p3 == [.init(id: 1, slot: 0, kind: .decode), .init(id: 2, slot: 1, kind: .prefill(10..<12, last: true))])
        // 1 finishes: its slot goes to 3
        s.remove(id: 1)
        let p4 = s.nextStep()
        #expect(p4 == [.init(id: 2, slot: 1, kind: .decode), .init(id: 3, slot: 0, kind: .prefill(0..<3, last: true))])
        #expect(s.activeCount == 2 && s.waitingCount == 0)
    }

    @Test func reusesTheLongestCachedPrefix() {
        var s = BatchScheduler(.init(slots: 2, tokenBudget: 64, queueCapacity: 4))
        let system: [Int32] = Array(1...20)
        _ = s.submit(id: 1, prompt: system + [100, 101])
        _ = s.submit(id: 2, prompt: [7, 7, 7])
        _ = s.nextStep()
        s.remove(id: 1, cached: system + [100, 101, 555])
        s.remove(id: 2, cached: [7, 7, 7, 9])
        // a new prompt with the same system part goes to slot 0 and skips 20 tokens
        _ = s.submit(id: 3, prompt: system + [200, 201, 202])
        let plan = s.nextStep()
        #expect(plan == [.init(id: 3, slot: 0, kind: .prefill(20..<23, last: true))])
        #expect(s.takeReused(id: 3) == 20)
        // an identical prompt still computes its last token (for logits)
        s.remove(id: 3, cached: system + [200, 201, 202])
        _ = s.submit(id: 4, prompt: system + [200, 201, 202])
        #expect(s.nextStep() == [.init(id: 4, slot: 0, kind: .prefill(22..<23, last: true))])
    }

    @Test func boundedQueueRejects() {
        var s = BatchScheduler(.init(slots: 1, tokenBudget: 4, queueCapacity: 2))
        #expect(s.submit(id: 1, prompt: Array(repeating: Int32(1), count: 2)) == .queued)
        #expect(s.submit(id: 2, prompt: Array(repeating: Int32(2), count: 2)) == .queued)
        #expect(s.submit(id: 3, prompt: Array(repeating: Int32(3), count: 2)) == .rejected)
        _ = s.nextStep()   // 1 takes the slot; 2 waits
        #expect(s.submit(id: 3, prompt: Array(repeating: Int32(3), count: 2)) == .queued)
        #expect(s.submit(id: 4, prompt: Array(repeating: Int32(4), count: 2)) == .rejected)
    }

    @Test func removingAWaitingOrActiveSequenceFreesIt() {
        var s = BatchScheduler(.init(slots: 1, tokenBudget: 4, queueCapacity: 4))
        _ = s.submit(id: 1, prompt: Array(repeating: Int32(1), count: 2))
        _ = s.submit(id: 2, prompt: Array(repeating: Int32(2), count: 2))
        _ = s.nextStep()
        s.remove(id: 2)   // cancelled while waiting
        s.remove(id: 1)   // cancelled while running
        #expect(s.isIdle)
        #expect(s.nextStep().isEmpty)
    }

    /// Every step stays within the budget, every decoding sequence advances every step, and every queued sequence
    /// eventually runs (no starvation), under a long random workload.
    @Test func boundedStepsAndNoStarvation() {
        var s = BatchScheduler(.init(slots: 4, tokenBudget: 16, queueCapacity: 100))
        var rng = SeededGenerator(seed: 9)
        var remaining: [Int: Int] = [:]   // id → tokens still to generate
        var next = 0
        var finished = Set<Int>()
        for step in 0..<2000 {
            if step < 400, rng.next() % 3 == 0 {
                _ = s.submit(id: next, prompt: Array(repeating: Int32(next), count: Int(rng.next() % 40) + 1))
                remaining[next] = Int(rng.next() % 20) + 1
                next += 1
            }
            let plan = s.nextStep()
            let tokens = plan.reduce(0) { n, w in
                if case .prefill(let r, _) = w.kind { return n + r.count } else { return n + 1 }
            }
            #expect(tokens <= 16)
            #expect(Set(plan.map(\.slot)).count == plan.count, "one entry per slot per step")
            for w in plan {
                let sampled = if case .prefill(_, let last) = w.kind { last } else { true }
                guard sampled else { continue }
                remaining[w.id, default: 0] -= 1
                if remaining[w.id, default: 0] <= 0 { s.remove(id: w.id); finished.insert(w.id) }
            }
        }
        #expect(finished.count == next, "every sequence finished: \(finished.count) of \(next)")
        #expect(s.isIdle)
    }
}
