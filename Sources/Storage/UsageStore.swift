import Foundation
import Synchronization

/// Usage records: appended from the request path without waiting, written in batches by one background task,
/// summarised on demand.
///
/// `record` only enqueues. The writer inserts what has queued when `batchSize` records are waiting or every
/// `flushInterval`, one transaction per batch. `flush()` returns once everything recorded before it is in the
/// database (or throws, keeping the records for the next try); `close()` flushes and stops the writer.
/// A batch that fails is retried with the next one; skipping request ids already present (`INSERT OR IGNORE` on
/// SQLite, `ON CONFLICT DO NOTHING` on PostgreSQL) keeps a retry from writing a record twice, also when another
/// replica's store wrote it. If the database stays unwritable, at most `maxPending` records wait; later ones are
/// dropped and counted.
public final class UsageStore: Sendable {
    /// How the writer batches.
    public struct Options: Sendable {
        public var flushInterval: Duration
        public var batchSize: Int
        public var maxPending: Int

        public init(flushInterval: Duration = .milliseconds(200), batchSize: Int = 256, maxPending: Int = 100_000) {
            self.flushInterval = flushInterval
            self.batchSize = max(1, batchSize)
            self.maxPending = max(1, maxPending)
        }
    }

    /// What the writer has done so far.
    public struct Statistics: Sendable, Hashable {
        /// Records inserted (duplicates of a request id not counted).
        public var written = 0
        /// Records given up: recorded after `close()`, or past `maxPending` while the database failed.
        public var dropped = 0
        /// Batches that failed (and were kept for retry).
        public var failedBatches = 0
        /// The last write error.
        public var lastError: String?
    }

    private enum Message: Sendable {
        case record(UsageRecord)
        case tick
        case flush(CheckedContinuation<Void, any Error>)
    }

    public let database: StorageDatabase
    public let options: Options
    private let queue: AsyncStream<Message>.Continuation
    private let writer: Task<Void, Never>
    private let ticker: Task<Void, Never>
    private let stats: StatisticsBox

    public init(_ database: StorageDatabase, options: Options = Options()) {
        self.database = database
        self.options = options
        let (stream, queue) = AsyncStream<Message>.makeStream(bufferingPolicy: .unbounded)
        self.queue = queue
        let stats = StatisticsBox()
        self.stats = stats
        // Neither task holds `self`: the store can go away while they run; `deinit` stops them.
        self.writer = Task { await Self.drain(stream, database: database, options: options, stats: stats) }
        let interval = options.flushInterval
        self.ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                if case .terminated = queue.yield(.tick) { return }
            }
        }
    }

    deinit {
        ticker.cancel()
        queue.finish()
    }

    /// Enqueues one record; returns at once.
    public func record(_ record: UsageRecord) {
        if case .terminated = queue.yield(.record(record)) {
            stats.mutex.withLock { $0.dropped += 1 }
        }
    }

    /// Returns once every record enqueued before this call is in the database.
    /// Throws the write error if the database refused them; they stay queued for the next attempt.
    public func flush() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            if case .terminated = queue.yield(.flush(continuation)) {
                continuation.resume()   // closed: `close()` already wrote everything it could
            }
        }
    }

    /// Flushes, then stops the writer. Records after this are dropped (and counted).
    public func close() async throws {
        defer {
            ticker.cancel()
            queue.finish()
        }
        try await flush()
        queue.finish()
        await writer.value
    }

    /// What the writer has done so far.
    public var statistics: Statistics { stats.mutex.withLock { $0 } }

    /// The counters, shared by the store and its writer task.
    private final class StatisticsBox: Sendable {
        let mutex = Mutex(Statistics())
    }

    // MARK: The writer

    private static func drain(_ stream: AsyncStream<Message>, database: StorageDatabase, options: Options,
                              stats: StatisticsBox) async {
        var pending: [UsageRecord] = []
        for await message in stream {
            switch message {
            case .record(let record):
                pending.append(record)
                if pending.count >= options.batchSize { _ = await write(&pending, database, options, stats) }
            case .tick:
                if !pending.isEmpty { _ = await write(&pending, database, options, stats) }
            case .flush(let continuation):
                if let error = await write(&pending, database, options, stats) {
                    continuation.resume(throwing: error)
                } else {
                    continuation.resume()
                }
            }
        }
        if !pending.isEmpty { _ = await write(&pending, database, options, stats) }
        // Closed with the database still failing: what is left is lost, and counted.
        let lost = pending.count
        if lost > 0 { stats.mutex.withLock { $0.dropped += lost } }
    }

    /// Inserts `pending` in one transaction and empties it; on failure keeps it (trimmed to `maxPending`) and
    /// returns the error.
    private static func write(_ pending: inout [UsageRecord], _ database: StorageDatabase, _ options: Options,
                              _ stats: StatisticsBox) async -> (any Error)? {
        guard !pending.isEmpty else { return nil }
        let batch = pending
        do {
            let inserted = try await database.backend.insertUsage(batch)
            pending.removeAll(keepingCapacity: true)
            stats.mutex.withLock { $0.written += inserted }
            return nil
        } catch {
            let excess = max(0, pending.count - options.maxPending)
            if excess > 0 { pending.removeFirst(excess) }
            stats.mutex.withLock {
                $0.failedBatches += 1
                $0.dropped += excess
                $0.lastError = "\(error)"
            }
            return error
        }
    }
}
