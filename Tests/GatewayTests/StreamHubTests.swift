import Core
import Foundation
import Hummingbird
import NIOCore
import Synchronization
import XCTest

@testable import Gateway

/// Resumable streams: the log's state machine over a test clock's instants, and the hub driving real generations
/// (a source that counts what is pulled from it, so that backpressure and cancellation are seen at the source).
final class StreamHubTests: XCTestCase {
    typealias Log = StreamLog<TestInstant>

    private func frame(_ text: String) -> StreamFrame { StreamFrame(text) }
    private func seqs(_ read: Log.Read) -> [Int] {
        if case .frames(let list) = read { return list.map(\.seq) }
        return []
    }

    func testFramesAreNumberedFromOneAndReadAfterANumber() {
        var log = Log(limits: .init(window: 1 << 20, retained: 1 << 20, grace: .seconds(5)), now: TestInstant(0), reserved: .seconds(8))
        XCTAssertEqual(log.read(after: 0), .wait)
        for t in ["a", "b", "c"] { log.append(frame(t)) }
        XCTAssertEqual(seqs(log.read(after: 0)), [1, 2, 3])
        XCTAssertEqual(seqs(log.read(after: 2)), [3])
        XCTAssertEqual(log.read(after: 3), .wait)
        log.end(.completed)
        log.append(frame("after the end"))
        XCTAssertEqual(log.lastSeq, 3, "nothing is added once the stream ended")
        XCTAssertEqual(log.read(after: 3), .ended(.completed))
        XCTAssertEqual(seqs(log.read(after: 1)), [2, 3], "an ended stream is read again from any number it kept")
    }

    func testTheProducerWaitsWhileMoreThanTheWindowIsUnread() {
        var log = Log(limits: .init(window: 10, retained: 1 << 20, grace: .seconds(5)), now: TestInstant(0), reserved: .seconds(8))
        log.append(frame("12345"))
        log.append(frame("67890"))
        XCTAssertTrue(log.producerMayContinue, "10 bytes unread is within a window of 10")
        log.append(frame("x"))
        XCTAssertFalse(log.producerMayContinue)
        _ = log.read(after: 0)
        XCTAssertTrue(log.producerMayContinue, "read: nothing is unread")
    }

    func testOnlyFramesHandedOutAreDroppedBeyondTheRetainedSize() {
        var log = Log(limits: .init(window: 100, retained: 4, grace: .seconds(5)), now: TestInstant(0), reserved: .seconds(8))
        for t in ["aa", "bb", "cc"] { log.append(frame(t)) }
        XCTAssertEqual(log.firstSeq, 1, "nothing read yet: all kept, over the retained size")
        XCTAssertEqual(seqs(log.read(after: 0)), [1, 2, 3])
        XCTAssertEqual(log.firstSeq, 2, "read: the oldest goes until 4 bytes remain")
        XCTAssertEqual(log.read(after: 0), .gone(firstKept: 2))
        XCTAssertEqual(log.read(after: Int.max), .wait, "a number past the end waits (the route refuses it first)")
        XCTAssertEqual(seqs(log.read(after: 1)), [2, 3])
    }

    func testWithNoReaderForTheGracePeriodARunningStreamIsCancelledAndAnEndedOneForgotten() {
        var log = Log(limits: .init(window: 100, retained: 100, grace: .seconds(5)), now: TestInstant(0), reserved: .seconds(8))
        XCTAssertEqual(log.due(at: TestInstant(7)), .none, "kept for the request that made it, past the grace period")
        XCTAssertEqual(log.due(at: TestInstant(8)), .cancelProducer, "a stream nobody ever read")
        log.attach()
        XCTAssertEqual(log.due(at: TestInstant(100)), .none, "a reader is attached")
        log.attach()
        log.detach(at: TestInstant(100))
        XCTAssertEqual(log.due(at: TestInstant(200)), .none, "one of two readers is still attached")
        log.detach(at: TestInstant(200))
        XCTAssertEqual(log.due(at: TestInstant(204)), .none)
        XCTAssertEqual(log.due(at: TestInstant(205)), .cancelProducer)
        log.attach()
        log.end(.completed)
        log.detach(at: TestInstant(300))
        XCTAssertEqual(log.due(at: TestInstant(305)), .forget)
    }

    // MARK: The hub, with real generations

    /// A generation that never ends by itself: one 1 KB text event per pull, counting pulls; asked to stop, it reports
    /// its usage (as the engine does) and ends.
    final class EndlessSource: Sendable {
        let pulls = Mutex(0)
        let cancelled = Mutex(false)
        let record = RequestRecord()

        func started() -> StartedCompletion {
            let text = String(repeating: "x", count: 1024)
            let reported = Mutex(false)
            let events = AsyncThrowingStream<ChatEvent, Error>(unfolding: { [self] in
                let n = pulls.withLock { $0 += 1; return $0 }
                try? await Task.sleep(for: .milliseconds(1))
                if Task.isCancelled { return nil }
                guard cancelled.withLock({ $0 }) else { return ChatEvent.text(text, nil) }
                let first = reported.withLock { r in defer { r = true }; return !r }
                return first ? ChatEvent.usage(Usage(promptTokens: 3, completionTokens: n - 1)) : nil
            })
            let stream = ChatStream(events: events, cancel: { [self] in cancelled.withLock { $0 = true } })
            return StartedCompletion(stream: stream, model: "m", metrics: ServerMetrics(), prometheus: PrometheusMetrics(),
                                     defaultProvider: "local", record: record)
        }
    }

    struct TextRenderer: StreamRenderer {
        func start() -> [StreamFrame] { [] }
        func next(_ event: ChatEvent) -> [StreamFrame] {
            if case .text(let t, _) = event { return [StreamFrame(t)] }
            return []
        }
        func end() -> [StreamFrame] { [StreamFrame("[DONE]")] }
        func failed(_ error: APIError) -> [StreamFrame] { [StreamFrame(data: error.body)] }
    }

    /// A client that reads `limit` writes and then goes away (the write fails as on a closed connection).
    struct DroppingWriter: ResponseBodyWriter {
        let limit: Int
        var written = 0
        struct Closed: Error {}
        init(limit: Int) { self.limit = limit }
        mutating func write(_ buffer: ByteBuffer) async throws {
            written += 1
            if written > limit { throw Closed() }
        }
        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }

    private func waitFor(_ what: String, timeout: Duration = .seconds(10), _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < deadline else { return XCTFail("timed out waiting for \(what)") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func testAGenerationNobodyReadsStopsAtTheWindowAndIsCancelledAfterTheGracePeriod() async throws {
        let hub = StreamHub(grace: .milliseconds(600), window: 8 * 1024, retained: 1 << 20, reserve: .milliseconds(600))
        let source = EndlessSource()
        let response = hub.respond(source.started(), renderer: TextRenderer(), framing: .sse, caller: .anonymous)
        let id = try XCTUnwrap(response.headers[StreamHub.idHeader])
        try await Task.sleep(for: .milliseconds(300))
        // 8 KB of window in 1 KB frames: the producer stops after 9 unread frames (and one pull it holds).
        let pulled = source.pulls.withLock { $0 }
        XCTAssertLessThanOrEqual(pulled, 10, "a generation no one reads must wait at the window")
        XCTAssertGreaterThanOrEqual(pulled, 9)
        XCTAssertFalse(source.cancelled.withLock { $0 })
        try await waitFor("the grace period's cancellation") { source.cancelled.withLock { $0 } }
        let stream = try XCTUnwrap(hub.find(id, for: .anonymous), "a cancelled stream is kept for its readers until the next sweep")
        let ending = await stream.ended()
        XCTAssertEqual(ending, .cancelled)
        XCTAssertEqual(source.record.fields.completionTokens, source.pulls.withLock { $0 } - 2,
                       "the usage the source reported once stopped reaches the request's record")
        try await waitFor("the stream to be forgotten") { hub.find(id, for: .anonymous) == nil }
    }

    func testADroppedReaderLeavesTheGenerationRunningForOneThatResumes() async throws {
        let hub = StreamHub(grace: .seconds(30), window: 4 * 1024, retained: 1 << 20)
        let source = EndlessSource()
        let response = hub.respond(source.started(), renderer: TextRenderer(), framing: .sse, caller: .anonymous)
        let id = try XCTUnwrap(response.headers[StreamHub.idHeader])
        let stream = try XCTUnwrap(hub.find(id, for: .anonymous))
        // The original client reads three writes and goes away; its request waits for the generation to end.
        let original = Task { try await response.body.write(DroppingWriter(limit: 3)) }
        try await waitFor("the original reader to go") { stream.due(at: .now + .seconds(60)) == .cancelProducer }
        let before = source.pulls.withLock { $0 }
        // Another connection reads on from frame 5: the generation goes on, past the window.
        let resumed = Task { try await stream.body(after: 5, original: false).write(DroppingWriter(limit: 40)) }
        try await waitFor("the generation to go on") { source.pulls.withLock { $0 } > before + 20 }
        XCTAssertFalse(source.cancelled.withLock { $0 })
        XCTAssertTrue(stream.cancel(), "cancelled by id, from any connection")
        XCTAssertFalse(stream.cancel(), "a second cancel finds it ended")
        let ending = await stream.ended()
        XCTAssertEqual(ending, .cancelled)
        XCTAssertTrue(source.cancelled.withLock { $0 })
        _ = await resumed.result
        do {
            try await original.value
            XCTFail("the original request ends with its connection's error once the stream was cancelled")
        } catch is DroppingWriter.Closed {}
        XCTAssertNotNil(hub.find(id, for: .admin), "the admin sees every stream")
    }
}

/// Seconds on a clock the test moves by hand.
struct TestInstant: InstantProtocol {
    let seconds: Int64
    init(_ seconds: Int64) { self.seconds = seconds }
    func advanced(by d: Duration) -> TestInstant { TestInstant(seconds + d.components.seconds) }
    func duration(to other: TestInstant) -> Duration { .seconds(other.seconds - seconds) }
    static func < (a: TestInstant, b: TestInstant) -> Bool { a.seconds < b.seconds }
}
