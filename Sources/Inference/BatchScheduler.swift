/// Continuous batching as a pure state machine (no I/O, no clock): sequences wait in a bounded queue, join a free
/// KV slot between steps, have their prompts processed in chunks beside running decodes, and leave when done.
///
/// Each `nextStep()` plans one forward pass: first one decode token for every sequence that is generating (so
/// running streams never stall), then prompt chunks for sequences still prefilling, oldest first, within the
/// step's token budget (so a long prompt cannot make one step long). A sequence is never starved: decoding ones
/// advance every step, and prefilling ones advance in admission order whenever budget remains.
///
/// Prefix cache: a freed slot keeps its keys and values; a new prompt that starts with the tokens a free slot holds
/// takes that slot and skips computing them (the longest match wins; otherwise the least recently used slot). Only
/// within one context: keys and values computed with one set of adapters serve no prompt run with another.
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
    private(set) var waiting: [(id: Int, prompt: [Int32], context: Int)] = []
    private(set) var active: [Active] = []
    private var freeSlots: [Int]
    /// What each slot's KV cache holds (the tokens of its last sequence), for prefix reuse.
    private var cachedTokens: [[Int32]]
    /// The context (adapter combination) each slot's cache was computed in, and each active sequence's.
    private var cachedContext: [Int]
    private var activeContext: [Int: Int] = [:]
    /// Free slots, least recently released first.
    private var releaseOrder: [Int] = []
    /// Prompt tokens found already cached, by sequence id (read once with `takeReused`).
    private var reused: [Int: Int] = [:]

    public init(_ configuration: Configuration) {
        self.configuration = configuration
        freeSlots = Array((0..<configuration.slots).reversed())
        cachedTokens = Array(repeating: [], count: configuration.slots)
        cachedContext = Array(repeating: 0, count: configuration.slots)
    }

    public var waitingCount: Int { waiting.count }
    public var activeCount: Int { active.count }
    public var isIdle: Bool { waiting.isEmpty && active.isEmpty }

    /// Queues a sequence; `context` tells apart computations whose caches may not be shared (its adapters).
    public mutating func submit(id: Int, prompt: [Int32], context: Int = 0) -> SubmitAction {
        guard waiting.count < configuration.queueCapacity || (waiting.isEmpty && !freeSlots.isEmpty) else { return .rejected }
        waiting.append((id, prompt.isEmpty ? [0] : prompt, context))
        return .queued
    }

    /// The sequence finished, was cancelled or failed: it leaves the queue or frees its slot. `cached` are the
    /// tokens whose keys and values its slot now holds (prompt and fed tokens), reusable by a later prompt that
    /// starts the same way.
    public mutating func remove(id: Int, cached: [Int32] = []) {
        waiting.removeAll { $0.id == id }
        reused[id] = nil
        if let i = active.firstIndex(where: { $0.id == id }) {
            let slot = active[i].slot
            cachedTokens[slot] = cached
            cachedContext[slot] = activeContext.removeValue(forKey: id) ?? 0
            freeSlots.append(slot)
            releaseOrder.removeAll { $0 == slot }
            releaseOrder.append(slot)
            active.remove(at: i)
        }
    }

    /// How many prompt tokens of sequence `id` were found in its slot's cache (0 if none), once.
    public mutating func takeReused(id: Int) -> Int { reused.removeValue(forKey: id) ?? 0 }

    /// The free slot whose cache shares the longest prefix with `prompt` (at least 1 token is always computed,
    /// so the last prompt position yields logits); else the least recently used free slot.
    private mutating func chooseSlot(for prompt: [Int32], context: Int) -> (slot: Int, reuse: Int) {
        var best: (slot: Int, reuse: Int)?
        for slot in freeSlots where cachedContext[slot] == context {
            let cache = cachedTokens[slot]
            var n = 0
            while n < cache.count, n < prompt.count - 1, cache[n] == prompt[n] { n += 1 }
            if n > 0, n > (best?.reuse ?? 0) { best = (slot, n) }
        }
        let chosen = best ?? (releaseOrder.first { freeSlots.contains($0) } ?? freeSlots.last ?? 0, 0)
        freeSlots.removeAll { $0 == chosen.slot }
        releaseOrder.removeAll { $0 == chosen.slot }
        return chosen
    }

    /// Plans the next forward pass (empty when there is nothing to do). Prefill progress is recorded as planned.
    public mutating func nextStep() -> [Work] {
        while !freeSlots.isEmpty, !waiting.isEmpty {
            let w = waiting.removeFirst()
            let (slot, reuse) = chooseSlot(for: w.prompt, context: w.context)
            cachedTokens[slot] = []
            activeContext[w.id] = w.context
            if reuse > 0 { reused[w.id] = reuse }
            active.append(Active(id: w.id, slot: slot, promptLength: w.prompt.count, prefilled: reuse))
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
