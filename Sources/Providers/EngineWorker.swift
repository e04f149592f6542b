import Core
import Foundation
import Inference
import Kernels
import Synchronization

/// One loaded model and the engine thread that runs it. Requests wait in a bounded queue and are served one at a
/// time (batching comes later); past the queue's capacity `submit` refuses with `CoreError.overloaded`.
///
/// The engine thread is a plain thread, never Swift concurrency's cooperative pool: generation blocks it for as
/// long as it runs, and hands each token to async code through the job's callbacks.
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
        var queue: [Job] = []
        var running = false
        var current: CancelFlag?
        var stopping = false
        var lastUsed = Date()
        var served = 0
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

    /// Requests waiting (not counting the one running).
    public var queueLength: Int { state.withLock { $0.queue.count } }
    public var isBusy: Bool { state.withLock { $0.running } }
    public var lastUsed: Date { state.withLock { $0.lastUsed } }
    /// Idle with nothing queued: may be unloaded.
    public var isIdle: Bool { state.withLock { !$0.running && $0.queue.isEmpty } }
    public var defaults: SamplingSettings {
        get { state.withLock { $0.defaults } }
        set { state.withLock { $0.defaults = newValue } }
    }
    public var keepAlive: Duration? {
        get { state.withLock { $0.keepAlive } }
        set { state.withLock { $0.keepAlive = newValue } }
    }
    public var memoryBytes: Int { loaded.model.memoryBytes }

    func submit(_ job: Job) throws(CoreError) {
        let accepted = state.withLock { s -> Bool in
            guard !s.stopping, s.queue.count < queueCapacity else { return false }
            s.queue.append(job)
            s.lastUsed = Date()
            return true
        }
        guard accepted else { throw .overloaded(retryAfterSeconds: max(1, queueLength / 4)) }
        wake.lock(); wake.signal(); wake.unlock()
    }

    /// Cancels the running generation and every queued one (shutdown past its grace period).
    public func cancelAll() {
        let (dropped, current) = state.withLock { s -> ([Job], CancelFlag?) in
            let q = s.queue
            s.queue = []
            return (q, s.current)
        }
        current?.set()
        for job in dropped { job.onFinish(.failure(CancellationError())) }
    }

    /// Stops the thread after the running job; queued jobs fail with `cancelled`.
    func stop() {
        let dropped = state.withLock { s -> [Job] in
            s.stopping = true
            let q = s.queue
            s.queue = []
            return q
        }
        for job in dropped { job.onFinish(.failure(CancellationError())) }
        wake.lock(); wake.broadcast(); wake.unlock()
    }

    private func loop() {
        while true {
            wake.lock()
            var next: Job?
            while true {
                let (job, stop) = state.withLock { s -> (Job?, Bool) in
                    if s.stopping { return (nil, true) }
                    if s.queue.isEmpty { return (nil, false) }
                    s.running = true
                    let job = s.queue.removeFirst()
                    s.current = job.cancelled
                    return (job, false)
                }
                if stop { wake.unlock(); return }
                if let job { next = job; break }
                wake.wait()
            }
            wake.unlock()
            guard let job = next else { continue }
            let outcome: Result<GenerationResult, Error>
            if job.cancelled.isSet {
                outcome = .failure(CancellationError())
            } else {
                do {
                    outcome = .success(try Generator(loaded).generate(prompt: job.prompt, parameters: job.parameters) { step in
                        !job.cancelled.isSet && job.onToken(step)
                    })
                } catch {
                    outcome = .failure(error)
                }
            }
            // Idle again before the requester hears the result, so what it does next sees a free model.
            state.withLock { s in
                s.running = false
                s.current = nil
                s.lastUsed = Date()
                s.served += 1
            }
            job.onFinish(outcome)
        }
    }
}

/// Set once when the client goes away; the engine checks it between tokens.
final class CancelFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .relaxed) }
    func set() { flag.store(true, ordering: .relaxed) }
}
