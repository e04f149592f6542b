/// Continuous batching as a pure state machine (no I/O, no clock): sequences wait in a bounded queue, join a free
/// KV slot between steps, have their prompts processed in chunks beside running decodes, and leave when done.
///
/// Each `nextStep()` plans one forward pass: first one decode token for every sequence that is generating (so
/// running streams never stall), then prompt chunks for sequences still prefilling, oldest first, within the
/// step's token budget (so a long prompt cannot make one step long). A sequence is never starved: decoding ones
/// advance every step, and prefilling ones advance in admission order whenever budget remains.
public struct BatchScheduler: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// KV slots: sequences that may be active at once.
        public var slots: Int
        /// Tokens (decode + prompt) in one forward pass.
        public var tokenBudget: Int
        /// Sequences that may wait for a slot; past it `submit` refuses.
        public var queueCapacity: Int
        public init(slots: Int, tokenBudget: Int, queueCapacity: Int) {
            self.slots = max(1, slots); self.tokenBudget = max(1, tokenBudget); self.queueCapacity = max(0, queueCapacity)
        }
    }

    public enum SubmitAction: Equatable, Sendable { case queued, rejected }

    /// One sequence's share of a step.
    public struct Work: Equatable, Sendable {
        public enum Kind: Equatable, Sendable {
            /// Prompt tokens `range` go into the cache; `last` when the range ends the prompt (its logits are wanted).
            case prefill(Range<Int>, last: Bool)
            /// The sequence's pending token is fed.
            case decode
        }
        public var id: Int
        public var slot: Int
        public var kind: Kind
        public init(id: Int, slot: Int, kind: Kind) { self.id = id; self.slot = slot; self.kind = kind }
    }

    struct Active: Equatable {
        var id: Int
        var slot: Int
        var promptLength: Int
        var prefilled = 0
        var decoding: Bool { prefilled >= promptLength }
    }

    public let configuration: Configuration
    private(set) var waiting: [(id: Int, promptLength: Int)] = []
    private(set) var active: [Active] = []
    private var freeSlots: [Int]

    public init(_ configuration: Configuration) {
        self.configuration = configuration
        freeSlots = Array((0..<configuration.slots).reversed())
    }

    public var waitingCount: Int { waiting.count }
    public var activeCount: Int { active.count }
    public var isIdle: Bool { waiting.isEmpty && active.isEmpty }

    /// Queues a sequence whose prompt has `promptLength` tokens.
    public mutating func submit(id: Int, promptLength: Int) -> SubmitAction {
        guard waiting.count < configuration.queueCapacity || (waiting.isEmpty && !freeSlots.isEmpty) else { return .rejected }
        waiting.append((id, max(1, promptLength)))
        return .queued
    }

    /// The sequence finished, was cancelled or failed: it leaves the queue or frees its slot.
    public mutating func remove(id: Int) {
        waiting.removeAll { $0.id == id }
        if let i = active.firstIndex(where: { $0.id == id }) {
            freeSlots.append(active[i].slot)
            active.remove(at: i)
        }
    }

    /// Plans the next forward pass (empty when there is nothing to do). Prefill progress is recorded as planned.
    public mutating func nextStep() -> [Work] {
        while !freeSlots.isEmpty, !waiting.isEmpty {
            let w = waiting.removeFirst()
            active.append(Active(id: w.id, slot: freeSlots.removeLast(), promptLength: w.promptLength))
        }
        var plan: [Work] = []
        var budget = configuration.tokenBudget
        for a in active where a.decoding && budget > 0 {
            plan.append(Work(id: a.id, slot: a.slot, kind: .decode))
            budget -= 1
        }
        for i in active.indices where !active[i].decoding && budget > 0 {
            let start = active[i].prefilled
            let n = min(budget, active[i].promptLength - start)
            active[i].prefilled += n
            budget -= n
            plan.append(Work(id: active[i].id, slot: active[i].slot, kind: .prefill(start..<(start + n), last: active[i].decoding)))
        }
        return plan
    }
}
