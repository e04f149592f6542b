import Core
import Foundation
import Inference
import Kernels
import Synchronization

/// One loaded model and the engine thread that runs it with continuous batching: requests wait in a bounded
/// queue, join a KV slot between steps, and every step is one pass over the weights for all active sequences
/// (one decode token each, plus prompt chunks of newcomers within the step's token budget). Past the queue's
/// capacity `submit` refuses with `CoreError.overloaded`.
///
/// The engine thread is a plain thread, never Swift concurrency's cooperative pool; it hands each token to async
/// code through the job's callbacks.
public final class EngineWorker: @unchecked Sendable {
    public let name: String
    public let path: String
    public let loaded: LoadedModel
    public let loadedAt: Date
    public let queueCapacity: Int

    /// A unit of work for the engine thread.
    struct Job: Sendable {
        let prompt: [Int32]
        let parameters: GenerationParameters
        let cancelled: CancelFlag
        /// Each generated piece; returns false to stop.
        let onToken: @Sendable (GeneratedToken) -> Bool
        let onFinish: @Sendable (Result<GenerationResult, Error>) -> Void
    }

    private struct State {
        var inbox: [Job] = []
        var active = 0
        var waiting = 0
        var stopping = false
        var cancelEverything = false
        var lastUsed = Date()
        /// How long the model stays loaded after its last request (nil: the host's default; negative: forever).
        var keepAlive: Duration?
        /// Sampling defaults from the model's declaration.
        var defaults = SamplingSettings()
    }

    private let state = Mutex(State())
    private let wake = NSCondition()
    private var thread: Thread?

    init(name: String, path: String, loaded: LoadedModel, queueCapacity: Int, niceness: Int32 = 0) {
        self.name = name
        self.path = path
        self.loaded = loaded
        self.loadedAt = Date()
        self.queueCapacity = max(1, queueCapacity)
        let t = Thread { [weak self] in
            ThreadPool.setCurrentThreadNiceness(niceness)
            self?.loop()
        }
        t.name = "engine:\(name)"
        t.stackSize = 8 << 20
        thread = t
        t.start()
    }

    /// Requests waiting for a slot.
    public var queueLength: Int { state.withLock { $0.inbox.count + $0.waiting } }
    /// Sequences generating now.
    public var activeCount: Int { state.withLock { $0.active } }
    public var isBusy: Bool { activeCount > 0 }
    public var lastUsed: Date { state.withLock { $0.lastUsed } }
    /// Idle with nothing queued: may be unloaded.
    public var isIdle: Bool { state.withLock { $0.active == 0 && $0.waiting == 0 && $0.inbox.isEmpty } }
    public var defaults: SamplingSettings {
        get { state.withLock { $0.defaults } }
        set { state.withLock { $0.defaults = newValue } }
    }
    public var keepAlive: Duration? {
        get { state.withLock { $0.keepAlive } }
        set { state.withLock { $0.keepAlive = newValue } }
    }
    public var memoryBytes: Int { loaded.model.memoryBytes }
    public var slots: Int { loaded.model.slotCount }

    func submit(_ job: Job) throws(CoreError) {
        let accepted = state.withLock { s -> Bool in
            guard !s.stopping, s.inbox.count + s.waiting < queueCapacity else { return false }
            s.inbox.append(job)
            s.lastUsed = Date()
            return true
        }
        guard accepted else { throw .overloaded(retryAfterSeconds: max(1, queueLength / max(1, slots * 4))) }
        wake.lock(); wake.signal(); wake.unlock()
    }

    /// Cancels every running and queued generation (shutdown past its grace period).
    public func cancelAll() {
        state.withLock { $0.cancelEverything = true }
        wake.lock(); wake.signal(); wake.unlock()
    }

    /// Stops the thread after the current step; running and queued generations end as cancelled.
    func stop() {
        state.withLock { $0.stopping = true; $0.cancelEverything = true }
        wake.lock(); wake.broadcast(); wake.unlock()
    }

    /// A sequence in flight on the engine thread.
    private struct Sequence {
        let job: Job
        var runner: SequenceRunner
        let admitted: Double
        var firstToken: Double?
        var reusedPrompt = 0
        /// Positions of its slot that hold this sequence's keys and values.
        var inCache = 0
    }

    private func loop() {
        let model = loaded.model
        var scheduler = BatchScheduler(.init(slots: model.slotCount, tokenBudget: 256, queueCapacity: Int.max))
        var sequences: [Int: Sequence] = [:]
        var nextID = 0

        /// What `isIdle`, `queueLength` and health report.
        func publish() {
            state.withLock { s in
                s.active = scheduler.activeCount
                s.waiting = scheduler.waitingCount
                s.lastUsed = Date()
            }
        }

        func finish(_ id: Int, error: Error? = nil) {
            guard let seq = sequences.removeValue(forKey: id) else { return }
            // The slot keeps what is in its cache for a later prompt with the same beginning.
            let r = seq.runner
            let cached = error == nil ? Array((r.prompt + r.generated).prefix(seq.inCache)) : []
            scheduler.remove(id: id, cached: cached)
            publish()   // idle again before the requester hears the result
            if let error {
                seq.job.onFinish(.failure(error))
                return
            }
            let now = monotonicSeconds()
            seq.job.onFinish(.success(GenerationResult(
                text: r.text, tokens: r.generated, promptTokenCount: r.prompt.count, finishReason: r.finishReason ?? .cancelled,
                promptSeconds: (seq.firstToken ?? now) - seq.admitted, generationSeconds: now - (seq.firstToken ?? now), seed: r.seed,
                cachedPromptTokens: seq.reusedPrompt)))
        }

        func deliver(_ id: Int, _ steps: [GeneratedToken]) {
            guard var seq = sequences[id] else { return }
            if seq.firstToken == nil, !steps.isEmpty { seq.firstToken = monotonicSeconds() }
            for step in steps where !seq.job.onToken(step) {
                for tail in seq.runner.finish(.cancelled) { _ = seq.job.onToken(tail) }
                break
            }
            sequences[id] = seq
            if seq.runner.finishReason != nil { finish(id) }
        }

        while true {
            // Take new requests; sleep when there is nothing to do.
            wake.lock()
            var (incoming, stop, cancelAll) = state.withLock { s -> ([Job], Bool, Bool) in
                let jobs = s.inbox
                s.inbox = []
                let c = s.cancelEverything
                s.cancelEverything = false
                return (jobs, s.stopping, c)
            }
            if incoming.isEmpty, !stop, !cancelAll, scheduler.isIdle {
                wake.wait()
                (incoming, stop, cancelAll) = state.withLock { s -> ([Job], Bool, Bool) in
                    let jobs = s.inbox
                    s.inbox = []
                    let c = s.cancelEverything
                    s.cancelEverything = false
                    return (jobs, s.stopping, c)
                }
            }
            wake.unlock()

            for job in incoming {
                do {
                    let runner = try SequenceRunner(prompt: job.prompt, parameters: job.parameters, tokenizer: loaded.tokenizer, shape: model.shape)
                    let id = nextID
                    nextID += 1
                    sequences[id] = Sequence(job: job, runner: runner, admitted: monotonicSeconds())
                    _ = scheduler.submit(id: id, prompt: job.prompt)
                    if runner.finishReason != nil { finish(id) }   // nothing to generate (max tokens 0)
                } catch {
                    job.onFinish(.failure(error))
                }
            }
            // Cancellations: clients gone, shutdown, or unload.
            for (id, seq) in sequences where cancelAll || stop || seq.job.cancelled.isSet {
                var runner = seq.runner
                let tail = runner.finish(.cancelled)
                sequences[id]?.runner = runner
                deliver(id, tail)
                finish(id)
            }
            if stop { return }

            let plan = scheduler.nextStep()
            for w in plan {
                let n = scheduler.takeReused(id: w.id)
                if n > 0 { sequences[w.id]?.reusedPrompt = n; sequences[w.id]?.inCache = n }
            }
            publish()
            if plan.isEmpty { continue }

            // One forward pass for the whole plan.
            var entries: [BatchEntry] = []
            var owners: [Int] = []   // sequence id per logits row
            for w in plan {
                guard let seq = sequences[w.id] else { continue }
                switch w.kind {
                case .decode:
                    guard let token = seq.runner.pendingToken else { continue }
                    entries.append(BatchEntry(token: token, slot: w.slot, position: seq.runner.cachedCount, wantsLogits: true))
                    owners.append(w.id)
                case .prefill(let range, let last):
                    for i in range {
                        entries.append(BatchEntry(token: seq.runner.prompt[i], slot: w.slot, position: i, wantsLogits: last && i == range.upperBound - 1))
                    }
                    if last { owners.append(w.id) }
                }
            }
            let logits: UnsafeBufferPointer<Float>
            do {
                logits = try model.forward(batch: entries)
            } catch {
                for id in Set(plan.map(\.id)) { finish(id, error: error) }
                continue
            }
            for w in plan {
                switch w.kind {
                case .decode: sequences[w.id]?.inCache += 1
                case .prefill(let range, _): sequences[w.id]?.inCache = range.upperBound
                }
            }
            let vocab = model.shape.vocabularySize
            for (row, id) in owners.enumerated() {
                guard var seq = sequences[id] else { continue }
                if seq.runner.pendingToken != nil { seq.runner.fed() }
                let steps = seq.runner.advance(UnsafeBufferPointer(rebasing: logits[(row * vocab)..<((row + 1) * vocab)]))
                sequences[id] = seq
                deliver(id, steps)
            }
        }
    }
}

/// Set once when the client goes away; the engine checks it between steps.
final class CancelFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .relaxed) }
    func set() { flag.store(true, ordering: .relaxed) }
}
