import NIOCore

/// One event of a stream as its surface wrote it: a server-sent event's name (nil: none) and data, or one NDJSON line.
struct StreamFrame: Sendable, Equatable {
    var event: String?
    var data: ByteBuffer

    init(event: String? = nil, data: ByteBuffer) { self.event = event; self.data = data }
    init(event: String? = nil, _ text: String) { self.init(event: event, data: ByteBuffer(string: text)) }

    var size: Int { data.readableBytes + (event?.utf8.count ?? 0) }
}

/// What a resumable stream has produced and who reads it, as a pure state machine over an injected clock's instants.
///
/// Frames are numbered from 1 (`seq`, the SSE event id a client sends back as `Last-Event-ID`). The generation runs on
/// whether or not anyone reads; it waits only while more than `window` bytes are produced and not yet handed to any
/// reader (so a slow reader, or none, never grows memory without bound). Frames already handed out are kept for a
/// reader that reconnects, up to `retained` bytes (the oldest handed-out ones go first). With no reader attached for
/// `grace`, a running stream's generation is to be cancelled and an ended stream forgotten.
struct StreamLog<Instant: InstantProtocol>: Sendable where Instant: Sendable {
    struct Limits: Sendable {
        var window: Int
        var retained: Int
        var grace: Instant.Duration
    }

    enum Ending: Sendable, Equatable { case completed, cancelled }

    enum Read: Sendable, Equatable {
        /// Frames after the asked sequence number, each with its own.
        case frames([Numbered])
        /// Nothing new yet: wait for the producer.
        case wait
        /// Nothing more will come.
        case ended(Ending)
        /// The frames after the asked number were dropped (more than `retained` came after them); the oldest kept is
        /// `firstKept`.
        case gone(firstKept: Int)
    }

    struct Numbered: Sendable, Equatable {
        let seq: Int
        let frame: StreamFrame
    }

    enum Due: Sendable, Equatable { case none, cancelProducer, forget }

    let limits: Limits
    private var frames: [StreamFrame] = []
    /// The number of `frames[0]`.
    private(set) var firstSeq = 1
    var lastSeq: Int { firstSeq + frames.count - 1 }
    /// The highest number handed to a reader.
    private(set) var delivered = 0
    private var retainedBytes = 0
    private var undeliveredBytes = 0
    private(set) var ending: Ending?
    private(set) var readers = 0
    /// Since when no reader has been attached (nil while one is).
    private var unattendedSince: Instant?
    /// Until when the stream waits for its first reader (the request that started it) before counting as unattended.
    private var reservedUntil: Instant?

    /// A stream made at `now`, kept for its first reader until `now + reserved` (longer than the grace period, so that a
    /// stream is never stopped before the request that made it starts reading).
    init(limits: Limits, now: Instant, reserved: Instant.Duration) {
        self.limits = limits
        unattendedSince = now
        reservedUntil = now.advanced(by: reserved)
    }

    /// Whether the producer may make more now (it waits otherwise, until a reader takes some).
    var producerMayContinue: Bool { undeliveredBytes <= limits.window }

    mutating func append(_ frame: StreamFrame) {
        guard ending == nil else { return }
        frames.append(frame)
        retainedBytes += frame.size
        undeliveredBytes += frame.size
        trim()
    }

    mutating func end(_ how: Ending) {
        if ending == nil { ending = how }
    }

    /// Everything after `seq` that there is (and marks it handed out).
    mutating func read(after seq: Int) -> Read {
        if seq < firstSeq - 1 { return .gone(firstKept: firstSeq) }
        if seq < lastSeq {
            let from = max(seq + 1, firstSeq)
            let list = (from...lastSeq).map { Numbered(seq: $0, frame: frames[$0 - firstSeq]) }
            if lastSeq > delivered {
                delivered = lastSeq
                undeliveredBytes = 0
                trim()
            }
            return .frames(list)
        }
        if let ending { return .ended(ending) }
        return .wait
    }

    mutating func attach() {
        readers += 1
        unattendedSince = nil
        reservedUntil = nil
    }

    mutating func detach(at now: Instant) {
        readers = max(0, readers - 1)
        if readers == 0 { unattendedSince = now }
    }

    /// What is due at `now`: with no reader for the grace period (or, before the first came, past the reservation), a
    /// running generation is cancelled and an ended stream forgotten.
    func due(at now: Instant) -> Due {
        guard readers == 0, let since = unattendedSince else { return .none }
        // Before its first reader came, the reservation counts; after, the grace period since the last left.
        guard now >= reservedUntil ?? since.advanced(by: limits.grace) else { return .none }
        return ending == nil ? .cancelProducer : .forget
    }

    /// Drops the oldest frames already handed out while more than `retained` bytes are kept.
    private mutating func trim() {
        var drop = 0
        while retainedBytes > limits.retained, drop < frames.count, firstSeq + drop <= delivered {
            retainedBytes -= frames[drop].size
            drop += 1
        }
        if drop > 0 {
            frames.removeFirst(drop)
            firstSeq += drop
        }
    }
}
