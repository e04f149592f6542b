import Core
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// How a surface writes a completion's events as a stream: its first frames, each event's, the last ones once the
/// completion ends, and an error's (the stream ends after them).
protocol StreamRenderer: Sendable {
    mutating func start() throws -> [StreamFrame]
    mutating func next(_ event: ChatEvent) throws -> [StreamFrame]
    mutating func end() async throws -> [StreamFrame]
    mutating func failed(_ error: APIError) -> [StreamFrame]
}

/// How frames go on the wire: server-sent events (each with its number as `id:`) or NDJSON lines.
enum StreamFraming: Sendable {
    case sse, ndjson

    var contentType: String { self == .sse ? "text/event-stream" : "application/x-ndjson" }

    func encode(_ list: [StreamLog<ContinuousClock.Instant>.Numbered]) -> ByteBuffer {
        var buffer = ByteBuffer()
        for n in list {
            switch self {
            case .sse:
                buffer.writeString("id: \(n.seq)\n")
                if let event = n.frame.event { buffer.writeString("event: \(event)\ndata: ") } else { buffer.writeString("data: ") }
                buffer.writeImmutableBuffer(n.frame.data)
                buffer.writeString("\n\n")
            case .ndjson:
                buffer.writeImmutableBuffer(n.frame.data)
                buffer.writeString("\n")
            }
        }
        return buffer
    }
}

/// One resumable stream: its generation runs in a task of its own, writing frames to the log, read by the request that
/// started it and by any that resume it (`GET /api/v1/streams/{id}`); cancelled by id, or when no one has read it for
/// the grace period.
final class ResumableStream: Sendable {
    typealias Log = StreamLog<ContinuousClock.Instant>

    let id: String
    /// The key that started it (its id); nil for an anonymous caller or the admin.
    let owner: String?
    let framing: StreamFraming

    private struct State {
        var log: Log
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        /// Waiters cancelled before they were registered.
        var cancelledWaiters: Set<Int> = []
        var nextWaiter = 0
        var producer: Task<Void, Never>?
        /// Asks the completion's source to stop (thread-safe, unlike the rest of `StartedCompletion`).
        var stopSource: @Sendable () -> Void = {}
        var cancelRequested = false
    }

    private let state: Mutex<State>
    private let onUnattended: @Sendable (ResumableStream) -> Void

    init(id: String, owner: String?, framing: StreamFraming, limits: Log.Limits, reserve: Duration,
         onUnattended: @escaping @Sendable (ResumableStream) -> Void) {
        self.id = id
        self.owner = owner
        self.framing = framing
        self.onUnattended = onUnattended
        state = Mutex(State(log: Log(limits: limits, now: .now, reserved: max(limits.grace, reserve))))
    }

    // MARK: The producer

    /// Runs the generation: `started`'s events through `renderer` into the log, until the completion ends or fails.
    /// A cancelled stream asks its source to stop and reads on to the source's end without sending more (so that the
    /// engine's last events, the usage among them, still reach the request's record); its readers then get the
    /// renderer's error for a cancelled stream.
    func run(_ started: StartedCompletion, renderer: some StreamRenderer) {
        state.withLock { $0.stopSource = { started.stopGenerating() } }
        let task = Task { [self] in
            var renderer = renderer
            var stopped = false
            do {
                append(try renderer.start())
                while true {
                    let event: ChatEvent?
                    do { event = try await started.next() } catch {
                        stopped = cancelled
                        if !stopped { append(renderer.failed(APIError.from(error))) }
                        break
                    }
                    stopped = stopped || cancelled
                    guard let event else {
                        if !stopped { append(try await renderer.end()) }
                        break
                    }
                    if stopped { continue }
                    append(try renderer.next(event))
                    await waitUntil { $0.log.producerMayContinue || $0.cancelRequested }
                }
            } catch {
                // A frame that could not be made (the renderer threw): the generation stops here.
                stopped = cancelled
                started.cancel()
                if !stopped { append(renderer.failed(APIError.from(error))) }
            }
            if stopped {
                started.cancel()
                append(renderer.failed(Self.cancelledError))
            }
            update { $0.log.end(stopped ? .cancelled : .completed) }
        }
        state.withLock { $0.producer = task }
    }

    static let cancelledError = APIError(HTTPResponse.Status(code: 499, reasonPhrase: "Client Closed Request"),
                                         "the stream was cancelled", type: "invalid_request_error", code: "stream_cancelled")

    private var cancelled: Bool { Task.isCancelled || state.withLock { $0.cancelRequested } }

    private func append(_ frames: [StreamFrame]) {
        guard !frames.isEmpty else { return }
        update { s in for f in frames { s.log.append(f) } }
    }

    /// Stops the generation: its source is asked to stop (the engine ends the sequence at its next token, an upstream
    /// request is closed), and after `forceAfter` without an end the producer's task is cancelled. Its readers get the
    /// surface's error for a cancelled stream, then the end. False when it had already ended or been cancelled.
    @discardableResult
    func cancel(forceAfter: Duration = .seconds(5)) -> Bool {
        let found: (stop: @Sendable () -> Void, producer: Task<Void, Never>?)? = state.withLock { s in
            guard s.log.ending == nil, !s.cancelRequested else { return nil }
            s.cancelRequested = true
            return (s.stopSource, s.producer)
        }
        guard let found else { return false }
        found.stop()
        notifyAll()
        Task { [weak self] in
            try? await Task.sleep(for: forceAfter)
            if self?.ending == nil { found.producer?.cancel() }
        }
        return true
    }

    // MARK: Readers

    var ending: Log.Ending? { state.withLock { $0.log.ending } }
    var status: (ending: Log.Ending?, readers: Int) { state.withLock { ($0.log.ending, $0.log.readers) } }
    var firstSeq: Int { state.withLock { $0.log.firstSeq } }
    var lastSeq: Int { state.withLock { $0.log.lastSeq } }

    func due(at now: ContinuousClock.Instant) -> Log.Due { state.withLock { $0.log.due(at: now) } }

    /// Waits until the stream has ended; how.
    func ended() async -> Log.Ending {
        await waitUntil { $0.log.ending != nil }
        return state.withLock { $0.log.ending } ?? .cancelled
    }

    /// A response body that writes the frames after `after` as they come. `original`: the body of the request that
    /// started the stream — when its client goes away it waits for the generation to end (continued for a reader
    /// that resumes, or cancelled after the grace period), so that the request's usage counts every token.
    func body(after: Int, original: Bool) -> ResponseBody {
        ResponseBody { [self] writer in
            update { $0.log.attach() }
            var last = after
            var attached = true
            do {
                reading: while true {
                    let read: Log.Read = update { $0.log.read(after: last) }
                    switch read {
                    case .frames(let list):
                        try await writer.write(framing.encode(list))
                        last = list.last?.seq ?? last
                    case .wait:
                        let seen = last
                        await waitUntil { $0.log.lastSeq > seen || $0.log.ending != nil }
                        try Task.checkCancellation()
                    case .ended:
                        break reading
                    case .gone:
                        // Another reader ran so far ahead that what this one needs next was dropped: its answer would
                        // have a hole, so it ends as a broken connection rather than a whole-looking one.
                        throw StreamGap()
                    }
                }
                attached = false
                detach()
                try await writer.finish(nil)
            } catch {
                if attached { detach() }
                // Waited for outside this task, which may be cancelled with its connection.
                let ending = original ? await Task(operation: { await self.ended() }).value : nil
                if ending == .completed, !(error is StreamGap) { return }
                throw error
            }
        }
    }

    struct StreamGap: Error {}

    private func detach() {
        let due: Log.Due = update { s in
            s.log.detach(at: .now)
            return s.log.due(at: .now)
        }
        if due != .none { onUnattended(self) }
    }

    // MARK: Waiting

    /// Applies `change` and wakes every waiter (each checks its own condition again).
    private func update<T>(_ change: (inout State) -> T) -> T {
        let (result, woken) = state.withLock { s -> (T, [CheckedContinuation<Void, Never>]) in
            let r = change(&s)
            let w = Array(s.waiters.values)
            s.waiters.removeAll()
            return (r, w)
        }
        for w in woken { w.resume() }
        return result
    }

    private func notifyAll() { update { _ in () } }

    /// Returns once `ready` holds (checked at each change of state) or the task is cancelled.
    private func waitUntil(_ ready: @escaping @Sendable (State) -> Bool) async {
        while !Task.isCancelled {
            let id = state.withLock { s -> Int in s.nextWaiter += 1; return s.nextWaiter }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                    let now: Bool = state.withLock { s in
                        if ready(s) || s.cancelledWaiters.remove(id) != nil { return true }
                        s.waiters[id] = c
                        return false
                    }
                    if now { c.resume() }
                }
            } onCancel: {
                let c: CheckedContinuation<Void, Never>? = state.withLock { s in
                    if let c = s.waiters.removeValue(forKey: id) { return c }
                    s.cancelledWaiters.insert(id)
                    return nil
                }
                c?.resume()
            }
            if state.withLock({ ready($0) }) { return }
        }
    }
}

/// The server's resumable streams: every streamed completion of the OpenAI, Responses, Anthropic and native surfaces
/// is one, with an id (`x-switchyard-stream-id`). A client that loses its connection reads the rest from
/// `GET /api/v1/streams/{id}` (SSE `Last-Event-ID`, or `?after=N`); `DELETE /api/v1/streams/{id}` cancels it. The
/// generation goes on for `grace` after its last reader left, then is cancelled; an ended stream is kept as long.
/// Streams live in the memory of the server that runs them: behind a load balancer, resumption needs the same replica.
final class StreamHub: Sendable {
    let limits: ResumableStream.Log.Limits
    /// How long a new stream waits for the request that made it to start reading (if the grace period is shorter).
    let reserve: Duration
    private let streams = Mutex<[String: ResumableStream]>([:])
    private let sweeper = Mutex<Task<Void, Never>?>(nil)

    init(grace: Duration = .seconds(15), window: Int = 1 << 20, retained: Int = 8 << 20, reserve: Duration = .seconds(30)) {
        limits = .init(window: window, retained: retained, grace: grace)
        self.reserve = reserve
    }

    static let idHeader = HTTPField.Name("x-switchyard-stream-id")!

    /// Streams generating now, and those of them no one reads.
    func counts() -> (running: Int, unattended: Int) {
        var running = 0, unattended = 0
        for s in streams.withLock({ Array($0.values) }) {
            let (ending, readers) = s.status
            guard ending == nil else { continue }
            running += 1
            if readers == 0 { unattended += 1 }
        }
        return (running, unattended)
    }

    /// A streamed response for `started`, its frames made by `renderer`; the generation starts at once.
    func respond(_ started: StartedCompletion, renderer: some StreamRenderer, framing: StreamFraming, caller: GuardCaller,
                 headers extra: HTTPFields = [:]) -> Response {
        let stream = ResumableStream(id: OpenAISurface.newID("strm_"), owner: caller.key?.id, framing: framing, limits: limits, reserve: reserve,
                                     onUnattended: { [weak self] s in self?.settle(s, at: .now) })
        var headers: HTTPFields = [.contentType: framing.contentType, .cacheControl: "no-cache"]
        headers[Self.idHeader] = stream.id
        headers.append(contentsOf: started.routeHeaders)   // read before the generation goes on in its own task
        headers.append(contentsOf: extra)
        streams.withLock { $0[stream.id] = stream }
        stream.run(started, renderer: renderer)
        startSweeper()
        return Response(status: .ok, headers: headers, body: stream.body(after: 0, original: true))
    }

    /// The stream `id` if `caller` may read it: the key that started it, or the admin.
    func find(_ id: String, for caller: GuardCaller) -> ResumableStream? {
        guard let stream = streams.withLock({ $0[id] }) else { return nil }
        if case .admin = caller { return stream }
        return stream.owner == caller.key?.id ? stream : nil
    }

    /// Cancels or forgets what is due.
    func sweep(at now: ContinuousClock.Instant = .now) {
        for stream in streams.withLock({ Array($0.values) }) { settle(stream, at: now) }
    }

    private func settle(_ stream: ResumableStream, at now: ContinuousClock.Instant) {
        switch stream.due(at: now) {
        case .none: break
        case .cancelProducer: stream.cancel()
        case .forget: streams.withLock { _ = $0.removeValue(forKey: stream.id) }
        }
    }

    /// One loop while there are streams: every second (or the grace period, if shorter) settles what is due.
    private func startSweeper() {
        let period = min(Duration.seconds(1), max(limits.grace, .milliseconds(100)))
        sweeper.withLock { task in
            guard task == nil else { return }
            task = Task { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: period)
                    guard let self else { return }
                    self.sweep()
                    let stop = self.streams.withLock { $0.isEmpty }
                    if stop {
                        // Ends unless a stream came meanwhile (then it loops on).
                        let ended = self.sweeper.withLock { t -> Bool in
                            guard self.streams.withLock({ $0.isEmpty }) else { return false }
                            t = nil
                            return true
                        }
                        if ended { return }
                    }
                }
            }
        }
    }
}
