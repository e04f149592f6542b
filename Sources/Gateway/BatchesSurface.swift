import Core
import Foundation
import Grammar
import HTTPTypes
import Hummingbird
import NIOCore
import Storage

/// OpenAI's Batch API: `POST /v1/batches` (`input_file_id`, `endpoint`, `completion_window`, `metadata`),
/// `GET /v1/batches` (`limit`, `after`), `GET /v1/batches/{id}`, `POST /v1/batches/{id}/cancel`. The input file is
/// checked line by line when the batch is created (a file with bad lines makes a `failed` batch listing them, as
/// OpenAI does); the requests then run in the background (`BatchRunner`) in spare capacity, each through the same
/// pipeline as a client's request — the batch's key, its limits and usage — and the answers come back as the batch's
/// output file (and error file), in OpenAI's line format.
struct BatchesSurface {
    let store: BatchStore?
    /// Told when a batch is created or cancelled, so the runner need not wait for its next look.
    var wake: @Sendable () -> Void = {}
    /// Whether batches may ask for a `webhook_url` (the server has a signing secret).
    var webhooks = false

    static let endpoints: Set<String> = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses"]
    static let maxRequests = 50_000

    func register(on router: Router<GatewayContext>) {
        router.post("/v1/batches") { request, context in try await create(request, context) }
        router.get("/v1/batches") { request, context in
            let query = Dictionary(request.uri.queryParameters.map { (String($0.key), String($0.value)) }, uniquingKeysWith: { $1 })
            let visible = try await stored().batches().filter { ResponsesSurface.visible(owner: $0.owner, toKey: context.caller.key?.name) }
            return ResponsesSurface.jsonResponse(try ListPage.page(visible.reversed().map(Self.object), query: query.filter { $0.key != "order" },
                                                                   maxLimit: 100, defaultLimit: 20))
        }
        router.get("/v1/batches/{id}") { _, context in
            ResponsesSurface.jsonResponse(Self.object(try await find(try context.parameters.require("id"), for: context.caller)))
        }
        router.post("/v1/batches/{id}/cancel") { _, context in
            let batch = try await find(try context.parameters.require("id"), for: context.caller)
            let store = try stored()
            if try await !store.transition(batch.id, BatchTransition(from: [.validating, .inProgress], to: .cancelling, at: Date())) {
                let now = try await store.batch(batch.id) ?? batch
                guard now.status == .cancelling || now.status == .cancelled else {
                    throw APIError(.conflict, "batch \(batch.id) is \(now.status.rawValue) and can no longer be cancelled",
                                   code: "batch_not_cancellable")
                }
            }
            wake()
            return ResponsesSurface.jsonResponse(Self.object(try await store.batch(batch.id) ?? batch))
        }
    }

    private func stored() throws -> BatchStore {
        guard let store else { throw APIError(.notFound, "this server keeps no batches (it has no database)", code: "batch_not_found") }
        return store
    }

    private func find(_ id: String, for caller: GuardCaller) async throws -> StoredBatch {
        guard let batch = try await stored().batch(id), ResponsesSurface.visible(owner: batch.owner, toKey: caller.key?.name) else {
            throw APIError(.notFound, "no batch with id '\(id)' is stored here", code: "batch_not_found")
        }
        return batch
    }

    private func create(_ request: Request, _ context: GatewayContext) async throws -> Response {
        let store = try stored()
        let body = try await ConversationsSurface.body(request)
        guard case .string(let fileID)? = body["input_file_id"] else {
            throw APIError(.badRequest, "input_file_id: field required", param: "input_file_id")
        }
        guard case .string(let endpoint)? = body["endpoint"] else { throw APIError(.badRequest, "endpoint: field required", param: "endpoint") }
        guard Self.endpoints.contains(endpoint) else {
            throw APIError(.badRequest, "endpoint must be one of \(Self.endpoints.sorted().joined(separator: ", "))", param: "endpoint")
        }
        guard case .string(let window)? = body["completion_window"] else {
            throw APIError(.badRequest, "completion_window: field required", param: "completion_window")
        }
        guard let seconds = Units.seconds(window), seconds >= 1, seconds <= 7 * 86400 else {
            throw APIError(.badRequest, "completion_window must be a duration from 1s to 7d, such as 24h", param: "completion_window")
        }
        let metadata = try ConversationsSurface.metadata(body["metadata"] ?? .null)
        var webhookURL: String?
        switch body["webhook_url"] {
        case nil, .null?: break
        case .string(let url)? where BatchWebhook.acceptable(url):
            guard webhooks else {
                throw APIError(.badRequest, "webhook_url needs the server's signing secret: start it with SWITCHYARD_WEBHOOK_SECRET set",
                               param: "webhook_url")
            }
            webhookURL = url
        default: throw APIError(.badRequest, "webhook_url must be an http or https URL", param: "webhook_url")
        }
        guard let file = try await store.file(fileID), ResponsesSurface.visible(owner: file.owner, toKey: context.caller.key?.name),
              file.purpose == "batch", let content = try await store.content(ofFile: fileID) else {
            throw APIError(.badRequest, "no batch input file with id '\(fileID)' is stored here", param: "input_file_id", code: "file_not_found")
        }
        let now = Date()
        var batch = StoredBatch(id: OpenAISurface.newID("batch_"), owner: context.caller.key?.name, endpoint: endpoint, inputFileID: fileID,
                                completionWindow: window, metadata: metadata.text, status: .validating, createdAt: now,
                                expiresAt: now.addingTimeInterval(seconds), webhookURL: webhookURL)
        switch Self.requests(in: content, endpoint: endpoint) {
        case .success(let requests):
            try await store.create(batch, requests: requests)
            try await store.transition(batch.id, BatchTransition(from: [.validating], to: .inProgress, at: now))
            wake()
        case .failure(let problems):
            batch.status = .failed
            batch.failedAt = now
            batch.errors = OrderedJSON.array(problems.errors.map(\.json)).text
            try await store.create(batch, requests: [])
            wake()   // its webhook, if any
        }
        return ResponsesSurface.jsonResponse(Self.object(try await store.batch(batch.id) ?? batch))
    }

    // MARK: the input file

    struct LineError: Error, Equatable {
        var code: String
        var message: String
        var line: Int?
        var param: String?
        var json: OrderedJSON {
            .object([("code", .string(code)), ("message", .string(message)), ("param", .optional(param)),
                     ("line", line.map(OrderedJSON.int) ?? .null)])
        }
    }

    struct Problems: Error, Equatable { var errors: [LineError] }

    /// The requests of a JSONL input file: each line `{"custom_id", "method": "POST", "url": endpoint, "body": {…}}`,
    /// custom ids unique, bodies naming a model and not streamed; at most 50,000. Bad lines are listed (the first 100).
    static func requests(in content: Data, endpoint: String) -> Result<[StoredBatchRequest], Problems> {
        var requests: [StoredBatchRequest] = []
        var errors: [LineError] = []
        var seen: Set<String> = []
        func fail(_ line: Int, _ code: String, _ message: String, _ param: String? = nil) {
            if errors.count < 100 { errors.append(LineError(code: code, message: message, line: line, param: param)) }
        }
        guard String(data: content, encoding: .utf8) != nil else {
            return .failure(Problems(errors: [LineError(code: "invalid_file", message: "the file is not UTF-8 text")]))
        }
        // Lines end in LF or CRLF (split on the byte: a String takes CRLF for one character).
        for (index, raw) in content.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
            let line = index + 1
            let trimmed = String(decoding: raw, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            guard requests.count + errors.count < maxRequests else {
                fail(line, "too_many_requests", "a batch holds at most \(maxRequests) requests")
                break
            }
            guard let value = try? OrderedJSON.parse(trimmed, maxDepth: 256), case .object = value else {
                fail(line, "invalid_json_line", "line \(line) is not a JSON object"); continue
            }
            guard case .string(let customID)? = value["custom_id"], !customID.isEmpty, customID.count <= 512 else {
                fail(line, "missing_required_parameter", "custom_id must be a string of 1 to 512 characters", "custom_id"); continue
            }
            guard seen.insert(customID).inserted else {
                fail(line, "duplicate_custom_id", "custom_id '\(customID.prefix(64))' is used on an earlier line", "custom_id"); continue
            }
            guard value["method"]?.stringValue == "POST" else { fail(line, "invalid_method", "method must be POST", "method"); continue }
            guard value["url"]?.stringValue == endpoint else {
                fail(line, "mismatched_endpoint", "url must be the batch's endpoint, \(endpoint)", "url"); continue
            }
            guard let body = value["body"], case .object = body else { fail(line, "missing_required_parameter", "body must be an object", "body"); continue }
            guard case .string? = body["model"] else { fail(line, "missing_required_parameter", "body.model: field required", "body.model"); continue }
            if body["stream"] == .bool(true) { fail(line, "invalid_request", "batch requests are not streamed", "body.stream"); continue }
            requests.append(StoredBatchRequest(line: line, customID: customID, body: body.text))
        }
        if requests.isEmpty && errors.isEmpty { errors.append(LineError(code: "empty_file", message: "the file holds no requests")) }
        return errors.isEmpty ? .success(requests) : .failure(Problems(errors: errors))
    }

    // MARK: the batch object

    static func object(_ b: StoredBatch) -> OrderedJSON {
        func time(_ d: Date?) -> OrderedJSON { d.map { .int(Int($0.timeIntervalSince1970)) } ?? .null }
        var errors = OrderedJSON.null
        if let e = b.errors, let list = try? OrderedJSON.parse(e, maxDepth: 8) {
            errors = .object([("object", .string("list")), ("data", list)])
        }
        return .object([
            ("id", .string(b.id)), ("object", .string("batch")), ("endpoint", .string(b.endpoint)), ("errors", errors),
            ("input_file_id", .string(b.inputFileID)), ("completion_window", .string(b.completionWindow)),
            ("status", .string(b.status.rawValue)), ("output_file_id", .optional(b.outputFileID)), ("error_file_id", .optional(b.errorFileID)),
            ("created_at", time(b.createdAt)), ("in_progress_at", time(b.inProgressAt)), ("expires_at", time(b.expiresAt)),
            ("finalizing_at", time(b.finalizingAt)), ("completed_at", time(b.completedAt)), ("failed_at", time(b.failedAt)),
            ("expired_at", time(b.expiredAt)), ("cancelling_at", time(b.cancellingAt)), ("cancelled_at", time(b.cancelledAt)),
            ("request_counts", .object([("total", .int(b.total)), ("completed", .int(b.completed)), ("failed", .int(b.failed))])),
            ("metadata", (try? OrderedJSON.parse(b.metadata, maxDepth: 4)) ?? .object([])),
            ("webhook_url", .optional(b.webhookURL)),
        ])
    }
}
