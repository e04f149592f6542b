import Tokenizers

/// Continuous batching over one model: the engine's step. `BatchScheduler` plans which tokens go into a forward
/// pass; this runs the pass, samples each sequence's next token (`SequenceRunner`) and says what happened, as
/// events. It owns no thread and no queue: whoever drives it (the server's engine thread) calls `submit`,
/// `cancel` and `step` from one thread, and passes the events on.
///
/// Each `step()` is one pass over the weights for all active sequences: one decode token each, plus prompt chunks
/// of newcomers within the token budget. A slot keeps its keys and values after its sequence ends, so a later
/// prompt that starts the same way skips them (`GenerationResult.cachedPromptTokens`).
public struct BatchEngine {
    public enum Event {
        /// Output pieces of sequence `id`, in order.
        case tokens(id: Int, [GeneratedToken])
        /// Sequence `id` ended: its result, or the error that ended it. Nothing of it follows.
        case finished(id: Int, Result<GenerationResult, InferenceError>)
    }

    /// A sequence in flight.
    private struct Sequence {
        var runner: SequenceRunner
        /// Its LoRA adapters, resolved at submission.
        let adapters: [AdapterUse]
        let admitted: Double
        var firstToken: Double?
        var reusedPrompt = 0
        /// Positions of its slot that hold this sequence's keys and values.
        var inCache = 0
    }

    public let model: any LanguageModel
    public let tokenizer: any Tokenizer
    private let now: () -> Double
    private var scheduler: BatchScheduler
    private var sequences: [Int: Sequence] = [:]
    /// A number per distinct adapter combination (0: none): cached keys and values are reused only within one.
    private var adapterContexts: [[AdapterUse]: Int] = [[]: 0]

    /// `tokenBudget`: tokens in one forward pass (decodes and prompt chunks); `now`: the clock the results' timings
    /// read (seconds, monotonic).
    public init(model: any LanguageModel, tokenizer: any Tokenizer, tokenBudget: Int = 256, now: @escaping () -> Double = monotonicSeconds) {
        self.model = model
        self.tokenizer = tokenizer
        self.now = now
        scheduler = BatchScheduler(.init(slots: model.slotCount, tokenBudget: tokenBudget, queueCapacity: Int.max))
    }

    /// Sequences generating or prefilling now.
    public var activeCount: Int { scheduler.activeCount }
    /// Sequences waiting for a slot.
    public var waitingCount: Int { scheduler.waitingCount }
    /// Nothing to step.
    public var isIdle: Bool { scheduler.isIdle }
    /// The ids of every sequence not yet finished.
    public var ids: [Int] { Array(sequences.keys) }

    /// Queues sequence `id` (an id not in use). A prompt the model cannot take ends it at once (`.finished` with the
    /// error), as does a request for no tokens at all.
    public mutating func submit(id: Int, prompt: [Int32], parameters: GenerationParameters) -> [Event] {
        let runner: SequenceRunner
        let adapters: [AdapterUse]
        do {
            runner = try SequenceRunner(prompt: prompt, parameters: parameters, tokenizer: tokenizer, shape: model.shape)
            adapters = try model.resolveAdapters(parameters.adapters)
        } catch {
            return [.finished(id: id, .failure(error))]
        }
        sequences[id] = Sequence(runner: runner, adapters: adapters, admitted: now())
        let context: Int
        if let known = adapterContexts[adapters] { context = known } else {
            context = adapterContexts.count
            adapterContexts[adapters] = context
        }
        _ = scheduler.submit(id: id, prompt: prompt, context: context)
        if runner.finishReason != nil { return finish(id) }   // nothing to generate (max tokens 0)
        return []
    }

    /// Ends sequence `id` as cancelled (its client went away): the text it held back, then `.finished`.
    public mutating func cancel(id: Int) -> [Event] {
        guard var seq = sequences[id] else { return [] }
        let tail = seq.runner.finish(.cancelled)
        sequences[id] = seq
        return (tail.isEmpty ? [] : [.tokens(id: id, tail)]) + finish(id)
    }

    /// Cancels every sequence.
    public mutating func cancelAll() -> [Event] {
        ids.sorted().flatMap { cancel(id: $0) }
    }

    /// One forward pass for the planned work of every active sequence; empty when idle. A failed pass ends the
    /// sequences that were in it with its error.
    public mutating func step() -> [Event] {
        let plan = scheduler.nextStep()
        guard !plan.isEmpty else { return [] }
        for w in plan {
            let n = scheduler.takeReused(id: w.id)
            if n > 0 { sequences[w.id]?.reusedPrompt = n; sequences[w.id]?.inCache = n }
        }
        var entries: [BatchEntry] = []
        var owners: [Int] = []   // sequence id per logits row
        for w in plan {
            guard let seq = sequences[w.id] else { continue }
            switch w.kind {
            case .decode:
                guard let token = seq.runner.pendingToken else { continue }
                entries.append(BatchEntry(token: token, slot: w.slot, position: seq.runner.cachedCount, wantsLogits: true, adapters: seq.adapters))
                owners.append(w.id)
            case .prefill(let range, let last):
                for i in range {
                    entries.append(BatchEntry(token: seq.runner.prompt[i], slot: w.slot, position: i, wantsLogits: last && i == range.upperBound - 1,
                                              adapters: seq.adapters))
                }
                if last { owners.append(w.id) }
            }
        }
        let logits: UnsafeBufferPointer<Float>
        do {
            logits = try model.forward(batch: entries)
        } catch {
            var events: [Event] = []
            var seen: Set<Int> = []
            for w in plan where seen.insert(w.id).inserted { events += finish(w.id, error: error) }
            return events
        }
        for w in plan {
            switch w.kind {
            case .decode: sequences[w.id]?.inCache += 1
            case .prefill(let range, _): sequences[w.id]?.inCache = range.upperBound
            }
        }
        let vocab = model.shape.vocabularySize
        let stepped = now()
        var events: [Event] = []
        for (row, id) in owners.enumerated() {
            guard var seq = sequences[id] else { continue }
            if seq.runner.pendingToken != nil { seq.runner.fed() }
            let pieces = seq.runner.advance(UnsafeBufferPointer(rebasing: logits[(row * vocab)..<((row + 1) * vocab)]))
            if seq.firstToken == nil, !pieces.isEmpty { seq.firstToken = stepped }
            sequences[id] = seq
            if !pieces.isEmpty { events.append(.tokens(id: id, pieces)) }
            if seq.runner.finishReason != nil { events += finish(id) }
        }
        return events
    }

    /// Removes a sequence; its slot keeps what is in its cache for a later prompt with the same beginning.
    private mutating func finish(_ id: Int, error: InferenceError? = nil) -> [Event] {
        guard let seq = sequences.removeValue(forKey: id) else { return [] }
        let r = seq.runner
        scheduler.remove(id: id, cached: error == nil ? Array((r.prompt + r.generated).prefix(seq.inCache)) : [])
        if let error { return [.finished(id: id, .failure(error))] }
        let t = now()
        return [.finished(id: id, .success(GenerationResult(
            text: r.text, tokens: r.generated, promptTokenCount: r.prompt.count, finishReason: r.finishReason ?? .cancelled,
            promptSeconds: (seq.firstToken ?? t) - seq.admitted, generationSeconds: t - (seq.firstToken ?? t), seed: r.seed,
            cachedPromptTokens: seq.reusedPrompt)))]
    }
}
