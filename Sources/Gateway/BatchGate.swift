import Foundation
import HTTPTypes
import Hummingbird
import Synchronization

/// When batch work may run: only in spare capacity. As a pure state machine over an injected clock's instants:
/// interactive requests starting and ending go in; out come whether batch work may start now, and — when an
/// interactive request arrives while batch work runs — that it must be preempted (stopped, to run again later), so
/// that an interactive request never shares the model with a batch's.
struct BatchGate<Instant: InstantProtocol>: Sendable where Instant: Sendable {
    /// How long after the last interactive request ended batch work waits (a chat's next turn usually comes sooner).
    let quiet: Instant.Duration
    private(set) var interactive = 0
    private var lastEnded: Instant?

    init(quiet: Instant.Duration) { self.quiet = quiet }

    enum Action: Equatable { case none, preemptBatchWork }

    /// An interactive request began: batch work in flight must stop.
    mutating func interactiveBegan() -> Action {
        interactive += 1
        return .preemptBatchWork
    }

    mutating func interactiveEnded(at now: Instant) {
        interactive = max(0, interactive - 1)
        lastEnded = now
    }

    /// Whether batch work may start at `now`; when not, how long to wait before asking again (nil: until an
    /// interactive request ends).
    func mayRun(at now: Instant) -> (allowed: Bool, wait: Instant.Duration?) {
        guard interactive == 0 else { return (false, nil) }
        guard let lastEnded else { return (true, nil) }
        let until = lastEnded.advanced(by: quiet)
        return now >= until ? (true, nil) : (false, now.duration(to: until))
    }
}

/// The gate driven by the server: interactive requests counted by `InteractiveTrafficMiddleware`, batch work
/// registered while it runs so that an arriving interactive request cancels it.
final class BatchTraffic: Sendable {
    private let gate: Mutex<BatchGate<ContinuousClock.Instant>>
    private let running = Mutex<[Int: @Sendable () -> Void]>([:])
    private let nextID = Mutex(0)
    private let onPreempt: @Sendable (Int) -> Void

    init(quiet: Duration = .milliseconds(500), onPreempt: @escaping @Sendable (Int) -> Void = { _ in }) {
        gate = Mutex(BatchGate(quiet: quiet))
        self.onPreempt = onPreempt
    }

    func interactiveBegan() {
        guard gate.withLock({ $0.interactiveBegan() }) == .preemptBatchWork else { return }
        let cancels = running.withLock { Array($0.values) }
        if !cancels.isEmpty { onPreempt(cancels.count) }
        for cancel in cancels { cancel() }
    }

    func interactiveEnded() { gate.withLock { $0.interactiveEnded(at: .now) } }

    var interactiveInFlight: Int { gate.withLock { $0.interactive } }

    /// Whether batch work may start, waiting up to `limit` for it (polling every 100 ms at most), so that the caller
    /// can see to other things (a cancel, a window that passed) while interactive requests keep the engine busy.
    func waitForSpareCapacity(upTo limit: Duration = .seconds(2)) async throws -> Bool {
        let deadline = ContinuousClock.now + limit
        while true {
            let (allowed, wait) = gate.withLock { $0.mayRun(at: .now) }
            if allowed { return true }
            if ContinuousClock.now >= deadline { return false }
            try await Task.sleep(for: min(wait ?? .milliseconds(100), .milliseconds(100)))
        }
    }

    /// Runs `work` as preemptible batch work: an interactive request beginning meanwhile cancels its task, and the
    /// work, seeing `Task.isCancelled`, reports that it was stopped (an answer it had already finished stands).
    func run<T: Sendable>(_ work: @escaping @Sendable () async -> T) async -> T {
        let id = nextID.withLock { $0 += 1; return $0 }
        let task = Task { await work() }
        running.withLock { $0[id] = { task.cancel() } }
        // Registered after an interactive request that began just now: it is stopped at once.
        if gate.withLock({ $0.interactive }) > 0 { task.cancel() }
        let value = await withTaskCancellationHandler { await task.value } onCancel: { task.cancel() }
        running.withLock { _ = $0.removeValue(forKey: id) }
        return value
    }
}

/// Counts the interactive model requests in flight (every request to a model endpoint that is not a batch's own),
/// from their arrival to the end of their answer's body, for `BatchTraffic`.
struct InteractiveTrafficMiddleware<Context: GatewayRequestContext>: RouterMiddleware {
    let traffic: BatchTraffic

    static var modelPaths: Set<String> {
        ["/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/messages", "/v1/embeddings", "/api/chat", "/api/generate",
         "/api/embed", "/api/embeddings", "/api/v1/chat", "/api/v1/generate", "/api/v1/embeddings"]
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .post, !context.batchWork, Self.modelPaths.contains(request.uri.path) else {
            return try await next(request, context)
        }
        let ticket = Ticket(traffic)
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            ticket.end()
            throw error
        }
        // The request ends with its body, or — should the body never be written (the client left before the head went
        // out) — when the response is let go.
        let body = response.body
        response.body = ResponseBody(contentLength: body.contentLength) { writer in
            defer { ticket.end() }
            try await body.write(writer)
        }
        return response
    }

    /// One interactive request in flight, ended exactly once: by `end()`, or when the last reference goes.
    final class Ticket: Sendable {
        private let traffic: BatchTraffic
        private let ended = Mutex(false)
        init(_ traffic: BatchTraffic) {
            self.traffic = traffic
            traffic.interactiveBegan()
        }
        func end() {
            guard ended.withLock({ let was = $0; $0 = true; return !was }) else { return }
            traffic.interactiveEnded()
        }
        deinit { end() }
    }
}

/// Where `BatchesSurface` reaches the runner, which is made after the routes that need it.
final class BatchWaker: Sendable {
    private let action = Mutex<(@Sendable () -> Void)?>(nil)
    func set(_ wake: @escaping @Sendable () -> Void) { action.withLock { $0 = wake } }
    func wake() { action.withLock { $0 }?() }
}
