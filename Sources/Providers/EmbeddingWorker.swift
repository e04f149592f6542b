import Core
import Foundation
import Inference
import Kernels
import Synchronization
import Tokenizers

/// One loaded embedding model and the engine thread that runs it. Requests wait in a bounded queue; each pass takes
/// every waiting request's inputs, up to a token budget, and computes them together (batched across requests, as
/// chat is). The thread is a plain thread, never Swift concurrency's cooperative pool.
public final class EmbeddingWorker: @unchecked Sendable {
    public let name: String
    public let path: String
    public let model: any EmbeddingModel
    public let tokenizer: any Tokenizer
    public let queueCapacity: Int
    /// Tokens computed together in one pass at most (one input longer than this still runs, alone).
    public let tokenBudget: Int
    /// An encoder (BERT): inputs framed by `[CLS]` … `[SEP]`, token-id inputs too. Otherwise a decoder used as an
    /// embedder: texts get what its vocabulary adds (BOS…) with special tokens parsed, as llama-server does, and
    /// token-id inputs are used as given.
    public let frames: Bool

    struct Job {
        let sequences: [[Int32]]
        let finish: @Sendable (Result<[[Float]], Error>) -> Void
    }

    private struct State {
        var inbox: [Job] = []
        var running = 0
        var stopping = false
        var lastUsed = Date()
        var keepAlive: Duration?
    }
    private let state = Mutex(State())
    private let wake = NSCondition()

    init(name: String, path: String, model: any EmbeddingModel, tokenizer: any Tokenizer, queueCapacity: Int, niceness: Int32,
         frames: Bool = true, tokenBudget: Int = 8192) {
        self.frames = frames
        self.name = name
        self.path = path
        self.model = model
        self.tokenizer = tokenizer
        self.queueCapacity = max(1, queueCapacity)
        self.tokenBudget = max(model.maxTokens, tokenBudget)
        let t = Thread { [weak self] in
            ThreadPool.setCurrentThreadNiceness(niceness)
            self?.loop()
        }
        t.name = "embed:\(name)"
        t.stackSize = 8 << 20
        t.start()
    }

    public var queueLength: Int { state.withLock { $0.inbox.count } }
    public var isBusy: Bool { state.withLock { $0.running > 0 } }
    public var isIdle: Bool { state.withLock { $0.running == 0 && $0.inbox.isEmpty } }
    public var lastUsed: Date { state.withLock { $0.lastUsed } }
    public var keepAlive: Duration? {
        get { state.withLock { $0.keepAlive } }
        set { state.withLock { $0.keepAlive = newValue } }
    }
    public var memoryBytes: Int { model.memoryBytes }

    /// The token ids of one input text (framed, see `frames`); cut to the model's limit when `truncate`, else
    /// refused as too long.
    public func tokens(_ text: String, truncate: Bool) throws -> [Int32] {
        let ids = tokenizer.encode(text, addSpecial: true, parseSpecial: !frames)
        guard !ids.isEmpty else { throw CoreError.badRequest("an input is empty (it has no tokens)") }
        return try fit(ids, truncate: truncate)
    }

    /// Token ids given by the client, framed by `[CLS]` … `[SEP]` unless they already are (encoders only).
    public func fit(_ given: [Int32], truncate: Bool, frame: Bool = false) throws -> [Int32] {
        var ids = given
        guard !ids.isEmpty else { throw CoreError.badRequest("an input is empty (it has no tokens)") }
        if frame, frames {
            if let cls = tokenizer.bosTokenID, ids.first != cls { ids.insert(cls, at: 0) }
            if let sep = tokenizer.eosTokenID, ids.last != sep { ids.append(sep) }
        }
        let vocabulary = tokenizer.vocabularySize
        if let bad = ids.first(where: { $0 < 0 || Int($0) >= vocabulary }) {
            throw CoreError.badRequest("token id \(bad) is outside the model's vocabulary of \(vocabulary)")
        }
        let limit = model.maxTokens
        guard ids.count > limit else { return ids }
        guard truncate else { throw CoreError.contextTooLong(needed: ids.count, limit: limit) }
        // keep the frame: [CLS], as much of the text as fits, [SEP]
        var cut = Array(ids.prefix(limit))
        if let sep = tokenizer.eosTokenID, ids.last == sep { cut[limit - 1] = sep }
        return cut
    }

    /// The vectors of `sequences`, in order: computed in passes of at most `tokenBudget` tokens (with other requests'
    /// inputs where they fit), so a request of many inputs never needs more memory than one pass.
    public func embed(_ sequences: [[Int32]]) async throws -> [[Float]] {
        var vectors: [[Float]] = []
        vectors.reserveCapacity(sequences.count)
        var start = 0
        while start < sequences.count {
            var end = start, tokens = 0
            while end < sequences.count, end == start || tokens + sequences[end].count <= tokenBudget {
                tokens += sequences[end].count
                end += 1
            }
            vectors += try await pass(Array(sequences[start..<end]))
            start = end
        }
        return vectors
    }

    private func pass(_ sequences: [[Int32]]) async throws -> [[Float]] {
        return try await withCheckedThrowingContinuation { (c: CheckedContinuation<[[Float]], Error>) in
            let accepted = state.withLock { s -> Bool in
                guard !s.stopping, s.inbox.count < queueCapacity else { return false }
                s.inbox.append(Job(sequences: sequences, finish: { c.resume(with: $0) }))
                s.lastUsed = Date()
                return true
            }
            guard accepted else {
                c.resume(throwing: CoreError.overloaded(retryAfterSeconds: 1))
                return
            }
            wake.lock(); wake.signal(); wake.unlock()
        }
    }

    /// Stops the thread; queued requests fail as cancelled.
    func stop() {
        state.withLock { $0.stopping = true }
        wake.lock(); wake.broadcast(); wake.unlock()
    }

    private func loop() {
        while true {
            wake.lock()
            var (jobs, stop) = state.withLock { s in (s.inbox, s.stopping) }
            while jobs.isEmpty, !stop {
                wake.wait()
                (jobs, stop) = state.withLock { s in (s.inbox, s.stopping) }
            }
            wake.unlock()
            if stop {
                let left = state.withLock { s -> [Job] in defer { s.inbox = [] }; return s.inbox }
                for j in left { j.finish(.failure(CancellationError())) }
                return
            }
            // Take whole requests, oldest first, while they fit the budget (always at least one).
            let batch = state.withLock { s -> [Job] in
                var taken: [Job] = [], tokens = 0
                while let next = s.inbox.first {
                    let n = next.sequences.reduce(0) { $0 + $1.count }
                    if !taken.isEmpty, tokens + n > tokenBudget { break }
                    taken.append(s.inbox.removeFirst())
                    tokens += n
                }
                s.running = taken.count
                return taken
            }
            let result: Result<[[Float]], Error>
            do {
                result = .success(try model.embed(batch.flatMap(\.sequences)))
            } catch {
                result = .failure(LocalProvider.canonical(error))
            }
            state.withLock { s in s.running = 0; s.lastUsed = Date() }
            var offset = 0
            for job in batch {
                switch result {
                case .success(let vectors):
                    job.finish(.success(Array(vectors[offset..<offset + job.sequences.count])))
                case .failure(let e):
                    job.finish(.failure(e))
                }
                offset += job.sequences.count
            }
        }
    }
}
