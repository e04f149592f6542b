import Core
import Foundation
import Grammar
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Storage
import Synchronization

/// Runs the Batch API's batches in the background, oldest first, in spare capacity (`BatchTraffic`): a request runs
/// only while no interactive request is in flight, and one arriving stops it (it runs again later). Each request goes
/// through the server's own routes in-process, as the batch's key (its limits, budget and usage apply), and its
/// outcome is written to the database as it ends, once: after a restart the batch resumes with the requests that had
/// not ended, and none is answered twice. When none is left (or the batch is cancelled, or its window passes) the
/// output and error files are written and the batch closes.
public final class BatchRunner: Sendable {
    let store: BatchStore
    let responder: RouterResponder<GatewayContext>
    let traffic: BatchTraffic
    let keys: KeyStore?
    let requireAuth: Bool
    /// Requests of one batch run at once.
    let concurrency: Int
    /// Signs the announcements of batches' ends; nil: none are sent.
    let webhook: BatchWebhook?
    /// When each undelivered announcement may be tried again (after a restart: at once).
    private let nextWebhookTry = Mutex<[String: Date]>([:])
    /// This runner among the replicas over one database (its host and port: a server restarted in its place takes its
    /// batches back at once), and how long a claim on a batch lasts unrenewed (renewed every 20 s while it runs).
    let runnerID: String
    static let lease: TimeInterval = 60
    /// A wake-up that came while the runner was busy, or the runner waiting for one.
    private let waiter = Mutex<(pending: Bool, waiting: CheckedContinuation<Void, Never>?)>((false, nil))
    let logger = Logger(label: "switchyard.batch")

    init(store: BatchStore, responder: RouterResponder<GatewayContext>, traffic: BatchTraffic, keys: KeyStore?, requireAuth: Bool,
         concurrency: Int, webhook: BatchWebhook? = nil, runnerID: String = OpenAISurface.newID("runner_")) {
        self.runnerID = runnerID
        self.store = store; self.responder = responder; self.traffic = traffic; self.keys = keys; self.requireAuth = requireAuth
        self.concurrency = max(1, concurrency)
        self.webhook = webhook
    }

    /// Something changed (a batch made or cancelled): look now rather than at the next poll.
    func wake() {
        let waiting = waiter.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let c = state.waiting else { state.pending = true; return nil }
            state.waiting = nil
            return c
        }
        waiting?.resume()
    }

    /// Returns after `seconds`, or sooner when woken (a wake-up that came meanwhile counts). The wait is always
    /// ended, by a wake-up or by its timer.
    private func sleep(upTo seconds: Double) async {
        let timer = Task { [weak self] in
            do {
                try await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
                self?.wake()
            } catch {}
        }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = waiter.withLock { state -> Bool in
                if state.pending { state.pending = false; return true }
                state.waiting = c
                return false
            }
            if now { c.resume() }
        }
        timer.cancel()
    }

    /// Runs until cancelled: the batches, and beside them (so a slow receiver never holds batch work up) their
    /// announcements.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                while !Task.isCancelled {
                    do { try await announce() } catch {
                        RequestLogMiddleware<GatewayContext>.writeToStderr("batch webhooks: \(error)\n")
                    }
                    try? await Task.sleep(for: .seconds(1))
                }
            }
            while !Task.isCancelled {
                do {
                    if try await step() { continue }
                } catch is CancellationError {
                    break
                } catch {
                    RequestLogMiddleware<GatewayContext>.writeToStderr("batch runner: \(error)\n")
                }
                await sleep(upTo: 2)
            }
            group.cancelAll()
        }
    }

    /// Sends the announcements due: each closed batch with a `webhook_url` not yet delivered, tried again after
    /// 1, 2, 4, 8 and 16 s.
    func announce(now: Date = Date()) async throws {
        guard let webhook else { return }
        for batch in try await store.undeliveredWebhooks(maxAttempts: BatchWebhook.maxAttempts) {
            guard let url = batch.webhookURL, nextWebhookTry.withLock({ $0[batch.id].map { now >= $0 } ?? true }) else { continue }
            let delivered = await webhook.deliver(batch, to: url, now: now)
            try await store.recordWebhookAttempt(batch.id, delivered: delivered ? now : nil)
            nextWebhookTry.withLock { $0[batch.id] = delivered ? nil : now.addingTimeInterval(Double(1 << batch.webhookAttempts)) }
            if !delivered, batch.webhookAttempts + 1 >= BatchWebhook.maxAttempts {
                RequestLogMiddleware<GatewayContext>.writeToStderr("batch \(batch.id): \(url) did not take its webhook after \(BatchWebhook.maxAttempts) attempts\n")
            }
        }
    }

    /// One step of the oldest open batch; whether there may be more to do at once.
    func step(now: Date = Date()) async throws -> Bool {
        // The oldest open batch no other replica is running (a claim renewed at every step, lapsing when its runner stops).
        var claimed: StoredBatch?
        for open in try await store.openBatches() where try await store.claim(open.id, runner: runnerID, until: now + Self.lease, now: now) {
            claimed = open
            break
        }
        guard let batch = claimed else { return false }
        switch batch.status {
        case .validating:
            try await store.transition(batch.id, BatchTransition(from: [.validating], to: .inProgress, at: now))
        case .cancelling:
            try await close(batch, as: .cancelled, from: [.cancelling], now: now)
        case .finalizing:
            try await close(batch, as: .completed, from: [.finalizing], now: now)
        case .inProgress:
            if now >= batch.expiresAt {
                try await close(batch, as: .expired, from: [.inProgress], now: now)
                return true
            }
            let pending = try await store.pending(batch.id, limit: concurrency)
            if pending.isEmpty {
                if try await store.transition(batch.id, BatchTransition(from: [.inProgress], to: .finalizing, at: now)) {
                    try await close(batch, as: .completed, from: [.finalizing], now: now)
                }
                return true
            }
            // Interactive requests first; meanwhile the next step sees cancels and windows that pass.
            guard try await traffic.waitForSpareCapacity() else { return true }
            let caller = try await caller(of: batch)
            let renewal = Task { [store, runnerID] in
                while true {
                    try await Task.sleep(for: .seconds(20))
                    _ = try await store.claim(batch.id, runner: runnerID, until: Date() + Self.lease)
                }
            }
            defer { renewal.cancel() }
            let outcomes = await withTaskGroup(of: Outcome.self) { group in
                for request in pending {
                    group.addTask { [self] in
                        await traffic.run { [self] in await execute(request, of: batch, as: caller) }
                    }
                }
                var all: [Outcome] = []
                for await o in group { all.append(o) }
                return all
            }
            for outcome in outcomes {
                switch outcome {
                case .finished(let line, let status, let result):
                    try await store.finish(batch.id, line: line, status: status, result: result)
                case .preempted:
                    continue
                case .retryAfter(let seconds):
                    await sleep(upTo: min(60, max(1, seconds)))
                }
            }
        case .failed, .completed, .expired, .cancelled:
            return false
        }
        return true
    }

    enum Outcome: Sendable {
        case finished(line: Int, status: StoredBatchRequest.Status, result: String)
        case preempted
        case retryAfter(Double)
    }

    /// Who the batch's requests run as: its key (found again by name, so a rotated key carries on); the admin on a
    /// server with keys when the admin made it; anyone on a server without keys.
    /// nil: the key is gone (revoked, expired), and the requests are answered 401.
    private func caller(of batch: StoredBatch) async throws -> GuardCaller? {
        guard let owner = batch.owner else { return requireAuth ? .admin : .anonymous }
        guard let keys else { return nil }
        let key: APIKey
        do { key = try await keys.find(owner) } catch StorageError.unknownKey { return nil }
        return key.state() == .active ? .key(key) : nil
    }

    /// Runs one request through the server's routes and shapes its output line.
    func execute(_ request: StoredBatchRequest, of batch: StoredBatch, as caller: GuardCaller?) async -> Outcome {
        let requestID = "batch_req_" + OpenAISurface.newID("").suffix(24)
        guard let caller else {
            let e = APIError(.unauthorized, "the API key that made this batch is no longer active", type: "invalid_request_error",
                             code: "invalid_api_key")
            return Self.line(request, requestID: requestID, status: 401, body: Self.body(of: e))
        }
        var head = HTTPRequest(method: .post, scheme: "http", authority: "batch", path: batch.endpoint)
        head.headerFields[.contentType] = "application/json"
        head.headerFields[RequestID.header] = requestID
        let http = Request(head: head, body: RequestBody(buffer: ByteBuffer(string: request.body)))
        let context = GatewayContext(delegating: caller, logger: logger)
        var status: Int
        let collected = Collector()
        do {
            let response = try await responder.respond(to: http, context: context)
            status = response.status.code
            try await collected.read(response)
            if status == 429, let retry = response.headers[.retryAfter].flatMap(Double.init),
               !collected.text.contains("insufficient_quota") {
                return .retryAfter(retry)
            }
        } catch {
            if Task.isCancelled { return .preempted }
            let e = APIError.from(error)
            if e.status == .tooManyRequests, e.code != "insufficient_quota" { return .retryAfter(Double(e.retryAfter ?? 1)) }
            return Self.line(request, requestID: requestID, status: e.status.code, body: Self.body(of: e))
        }
        if Task.isCancelled { return .preempted }
        let body = (try? OrderedJSON.parse(collected.text, maxDepth: 512)) ?? .string(collected.text)
        return Self.line(request, requestID: requestID, status: status, body: body)
    }

    static func body(of e: APIError) -> OrderedJSON {
        (try? OrderedJSON.parse(String(buffer: e.body), maxDepth: 16)) ?? .string(e.message)
    }

    static func line(_ request: StoredBatchRequest, requestID: String, status: Int, body: OrderedJSON) -> Outcome {
        let line = OrderedJSON.object([
            ("id", .string(requestID)), ("custom_id", .string(request.customID)),
            ("response", .object([("status_code", .int(status)), ("request_id", .string(requestID)), ("body", body)])),
            ("error", .null),
        ])
        return .finished(line: request.line, status: (200..<300).contains(status) ? .done : .failed, result: line.text)
    }

    /// Writes the output file (answered requests) and the error file (the rest that ran; for an expired batch also a
    /// line per request that never ran), then closes the batch as `status`.
    private func close(_ batch: StoredBatch, as status: StoredBatch.Status, from: [StoredBatch.Status], now: Date) async throws {
        let requests = try await store.requests(batch.id)
        var output = "", errors = ""
        for r in requests {
            switch r.status {
            case .done: output += (r.result ?? "") + "\n"
            case .failed: errors += (r.result ?? "") + "\n"
            case .pending:
                guard status == .expired else { continue }
                let line = OrderedJSON.object([
                    ("id", .string("batch_req_" + OpenAISurface.newID("").suffix(24))), ("custom_id", .string(r.customID)), ("response", .null),
                    ("error", .object([("code", .string("batch_expired")),
                                       ("message", .string("This request could not be executed before the completion window expired."))])),
                ])
                errors += line.text + "\n"
            }
        }
        // Ids made from the batch's: a close that is run again (after a crash) writes the same files once.
        let suffix = batch.id.dropFirst("batch_".count)
        var outputID: String?, errorID: String?
        if !output.isEmpty { outputID = try await save("file-out-\(suffix)", output, batch: batch, kind: "output", now: now) }
        if !errors.isEmpty { errorID = try await save("file-err-\(suffix)", errors, batch: batch, kind: "error", now: now) }
        try await store.transition(batch.id, BatchTransition(from: from, to: status, at: now, outputFileID: outputID, errorFileID: errorID))
    }

    private func save(_ id: String, _ text: String, batch: StoredBatch, kind: String, now: Date) async throws -> String {
        try await store.deleteFile(id)
        let data = Data(text.utf8)
        try await store.saveFile(StoredFile(id: id, owner: batch.owner, purpose: "batch_output", filename: "\(batch.id)_\(kind).jsonl",
                                            bytes: data.count, createdAt: now), content: data)
        return id
    }

    /// Gathers a response body.
    final class Collector: Sendable {
        private let buffer = Mutex(ByteBuffer())
        var text: String { buffer.withLock { String(buffer: $0) } }
        var writer: Writer { Writer(collector: self) }
        func append(_ b: ByteBuffer) { var b = b; buffer.withLock { _ = $0.writeBuffer(&b) } }
        /// Writes `response`'s body into this collector.
        func read(_ response: Response) async throws {
            var writer = self.writer
            try await response.body.write(writer)
            _ = writer
        }
        /// A whole response body as text (an in-process request's answer).
        static func text(of response: Response) async throws -> String {
            let collector = Collector()
            try await collector.read(response)
            return collector.text
        }
        struct Writer: ResponseBodyWriter {
            let collector: Collector
            mutating func write(_ b: ByteBuffer) async throws { collector.append(b) }
            consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
        }
    }
}
