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
        var defaultSystem: String?
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
    /// The system message of requests that bring none (from the model's defaults file: an Ollama pull's SYSTEM).
    public var defaultSystem: String? {
        get { state.withLock { $0.defaultSystem } }
        set { state.withLock { $0.defaultSystem = newValue } }
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

    /// Drives the engine's step (`BatchEngine`) on this thread: takes new jobs, cancels those whose clients went
    /// away, runs one step, and hands its events to the jobs' callbacks; sleeps when there is nothing to do.
    private func loop() {
        var engine = BatchEngine(model: loaded.model, tokenizer: loaded.tokenizer)
        var jobs: [Int: Job] = [:]
        var nextID = 0
        /// Jobs whose consumer refused a token: cancelled after this round of events.
        var refused: [Int] = []

        /// What `isIdle`, `queueLength` and health report.
        func publish() {
            state.withLock { s in
                s.active = engine.activeCount
                s.waiting = engine.waitingCount
                s.lastUsed = Date()
            }
        }

        func dispatch(_ events: [BatchEngine.Event]) {
            guard !events.isEmpty else { return }
            publish()   // idle again before a requester hears its result
            for event in events {
                switch event {
                case .tokens(let id, let pieces):
                    guard let job = jobs[id] else { continue }
                    for piece in pieces where !job.onToken(piece) {
                        refused.append(id)
                        break
                    }
                case .finished(let id, let result):
                    jobs.removeValue(forKey: id)?.onFinish(result.mapError { $0 })
                }
            }
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
            if incoming.isEmpty, !stop, !cancelAll, engine.isIdle {
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
                let id = nextID
                nextID += 1
                jobs[id] = job
                dispatch(engine.submit(id: id, prompt: job.prompt, parameters: job.parameters))
            }
            // Cancellations: clients gone, shutdown, or unload.
            for (id, job) in jobs where cancelAll || stop || job.cancelled.isSet {
                dispatch(engine.cancel(id: id))
            }
            if stop { return }

            dispatch(engine.step())
            while !refused.isEmpty {
                let ids = refused
                refused = []
                for id in ids { dispatch(engine.cancel(id: id)) }
            }
            publish()
        }
    }
}

/// Set once when the client goes away; the engine checks it between steps.
final class CancelFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .relaxed) }
    func set() { flag.store(true, ordering: .relaxed) }
}
