import Foundation

/// A file of the Files API: a batch's input (JSONL uploaded with `purpose: batch`) or a batch's output or errors.
public struct StoredFile: Sendable, Equatable {
    /// `file-…`.
    public var id: String
    /// The API key's name that uploaded it (or whose batch made it); nil: no key (auth off) or the admin key.
    public var owner: String?
    /// `batch`, `batch_output`.
    public var purpose: String
    public var filename: String
    public var bytes: Int
    public var createdAt: Date

    public init(id: String, owner: String?, purpose: String, filename: String, bytes: Int, createdAt: Date) {
        self.id = id; self.owner = owner; self.purpose = purpose; self.filename = filename; self.bytes = bytes; self.createdAt = createdAt
    }
}

/// A batch of the Batch API: what was asked (endpoint, input file, window, metadata), where it stands (`status` and
/// the time of each step), what it produced (output and error files), and its requests counted by outcome.
public struct StoredBatch: Sendable, Equatable {
    public enum Status: String, Sendable, CaseIterable {
        case validating, failed, inProgress = "in_progress", finalizing, completed, expired, cancelling, cancelled
        /// Work remains (requests to run, or the output files to write).
        public var isOpen: Bool { [.validating, .inProgress, .finalizing, .cancelling].contains(self) }
    }

    /// `batch_…`.
    public var id: String
    public var owner: String?
    public var endpoint: String
    public var inputFileID: String
    public var completionWindow: String
    /// A JSON object.
    public var metadata: String
    public var status: Status
    public var createdAt: Date
    public var expiresAt: Date
    public var inProgressAt: Date?
    public var finalizingAt: Date?
    public var completedAt: Date?
    public var failedAt: Date?
    public var expiredAt: Date?
    public var cancellingAt: Date?
    public var cancelledAt: Date?
    public var outputFileID: String?
    public var errorFileID: String?
    /// Why the batch failed validation (a JSON array of `{code, message, line}`); nil when it did not.
    public var errors: String?
    /// Where the batch's end is announced (a Standard Webhooks POST); nil: nowhere.
    public var webhookURL: String?
    /// Deliveries of that announcement tried, and when one was accepted (nil: not yet).
    public var webhookAttempts = 0
    public var webhookDeliveredAt: Date?
    /// Read with the batch: its requests, and how many ended well or badly.
    public var total = 0
    public var completed = 0
    public var failed = 0

    public init(id: String, owner: String?, endpoint: String, inputFileID: String, completionWindow: String, metadata: String,
                status: Status, createdAt: Date, expiresAt: Date, webhookURL: String? = nil) {
        self.id = id; self.owner = owner; self.endpoint = endpoint; self.inputFileID = inputFileID
        self.completionWindow = completionWindow; self.metadata = metadata; self.status = status; self.createdAt = createdAt
        self.expiresAt = expiresAt; self.webhookURL = webhookURL
    }
}

/// One request of a batch: its line in the input file, the client's `custom_id`, the request body (JSON), and once
/// it ran, its output line (JSON) and whether that was an answer (`done`) or an error (`failed`).
public struct StoredBatchRequest: Sendable, Equatable {
    public enum Status: String, Sendable { case pending, done, failed }
    public var line: Int
    public var customID: String
    public var body: String
    public var status: Status
    public var result: String?

    public init(line: Int, customID: String, body: String, status: Status = .pending, result: String? = nil) {
        self.line = line; self.customID = customID; self.body = body; self.status = status; self.result = result
    }
}

/// A change of a batch's status, made only if the batch is in one of `from` (so a cancel and the runner never
/// overwrite each other), with the fields that change with it.
public struct BatchTransition: Sendable {
    public var from: [StoredBatch.Status]
    public var to: StoredBatch.Status
    public var at: Date
    public var outputFileID: String?
    public var errorFileID: String?
    public var errors: String?
    public init(from: [StoredBatch.Status], to: StoredBatch.Status, at: Date, outputFileID: String? = nil, errorFileID: String? = nil,
                errors: String? = nil) {
        self.from = from; self.to = to; self.at = at; self.outputFileID = outputFileID; self.errorFileID = errorFileID; self.errors = errors
    }
}

/// Files and batches in the server's database (SQLite or PostgreSQL): a batch outlives a restart and resumes where
/// it stopped, each request's outcome written once, as it ends.
public struct BatchStore: Sendable {
    let database: StorageDatabase

    public init(_ database: StorageDatabase) {
        self.database = database
    }

    public func saveFile(_ file: StoredFile, content: Data) async throws { try await database.backend.insertFile(file, content: content) }
    public func file(_ id: String) async throws -> StoredFile? { try await database.backend.file(id: id) }
    public func content(ofFile id: String) async throws -> Data? { try await database.backend.fileContent(id: id) }
    /// Files, newest first.
    public func files(purpose: String? = nil) async throws -> [StoredFile] { try await database.backend.files(purpose: purpose) }
    @discardableResult
    public func deleteFile(_ id: String) async throws -> Bool { try await database.backend.deleteFile(id: id) }

    /// Stores a batch and its requests in one transaction.
    public func create(_ batch: StoredBatch, requests: [StoredBatchRequest]) async throws {
        try await database.backend.insertBatch(batch, requests: requests)
    }
    /// The batch with its request counts.
    public func batch(_ id: String) async throws -> StoredBatch? { try await database.backend.batch(id: id) }
    /// Every batch, newest first, with counts.
    public func batches() async throws -> [StoredBatch] { try await database.backend.batches(openOnly: false) }
    /// The batches with work left (validating, in progress, finalizing, cancelling), oldest first.
    public func openBatches() async throws -> [StoredBatch] { try await database.backend.batches(openOnly: true) }
    /// Applies `transition` if the batch is in one of its `from` states; whether it did.
    @discardableResult
    public func transition(_ id: String, _ transition: BatchTransition) async throws -> Bool {
        try await database.backend.transitionBatch(id: id, transition)
    }
    /// Up to `limit` requests of a batch that have not run, in line order.
    public func pending(_ id: String, limit: Int) async throws -> [StoredBatchRequest] {
        try await database.backend.pendingBatchRequests(batchID: id, limit: limit)
    }
    /// Records a request's outcome once: false when it was already recorded (nothing changes).
    @discardableResult
    public func finish(_ id: String, line: Int, status: StoredBatchRequest.Status, result: String) async throws -> Bool {
        try await database.backend.finishBatchRequest(batchID: id, line: line, status: status, result: result)
    }
    /// Closed batches whose webhook has not been accepted after fewer than `maxAttempts` tries, oldest first.
    public func undeliveredWebhooks(maxAttempts: Int) async throws -> [StoredBatch] {
        try await database.backend.undeliveredWebhooks(maxAttempts: maxAttempts)
    }
    /// Counts a webhook delivery attempt; `delivered` when the receiver accepted it.
    public func recordWebhookAttempt(_ id: String, delivered: Date?) async throws {
        try await database.backend.recordWebhookAttempt(id: id, delivered: delivered)
    }
    /// Takes (or keeps) the batch for `runner` until `until`, unless another runner holds it past `now`: replicas
    /// over one database run each batch once. Whether it is this runner's.
    public func claim(_ id: String, runner: String, until: Date, now: Date = Date()) async throws -> Bool {
        try await database.backend.claimBatch(id: id, runner: runner, until: until, now: now)
    }
    /// Every request of a batch, in line order, with outcomes.
    public func requests(_ id: String) async throws -> [StoredBatchRequest] { try await database.backend.batchRequests(batchID: id) }
}

/// The column that records when a batch reached a status (none for `validating`, which `created_at` records).
enum BatchColumns {
    static func timestamp(_ status: StoredBatch.Status) -> String? {
        switch status {
        case .validating: nil
        case .inProgress: "in_progress_at"
        case .finalizing: "finalizing_at"
        case .completed: "completed_at"
        case .failed: "failed_at"
        case .expired: "expired_at"
        case .cancelling: "cancelling_at"
        case .cancelled: "cancelled_at"
        }
    }
}
