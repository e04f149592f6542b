import Foundation
@testable import Gateway
import Grammar
import Synchronization
import Testing

/// The Batch API's parts that need no server: when batch work may run (the gate over an injected clock), how an
/// input file is read (each bad line named), and the multipart uploads of the Files API, hostile ones included.
@Suite struct BatchCodecTests {
    typealias Gate = BatchGate<ContinuousClock.Instant>
    let t0 = ContinuousClock.now

    @Test func batchWorkRunsOnlyAfterInteractiveRequestsAndAQuietSpell() {
        var gate = Gate(quiet: .milliseconds(500))
        #expect(gate.mayRun(at: t0) == (true, nil))
        #expect(gate.interactiveBegan() == .preemptBatchWork)
        #expect(gate.interactiveBegan() == .preemptBatchWork)
        #expect(gate.mayRun(at: t0 + .seconds(10)) == (false, nil))
        gate.interactiveEnded(at: t0 + .seconds(1))
        #expect(gate.mayRun(at: t0 + .seconds(2)) == (false, nil), "one is still in flight")
        gate.interactiveEnded(at: t0 + .seconds(2))
        #expect(gate.mayRun(at: t0 + .milliseconds(2200)) == (false, .milliseconds(300)))
        #expect(gate.mayRun(at: t0 + .milliseconds(2500)) == (true, nil))
        gate.interactiveEnded(at: t0 + .seconds(3))   // an unmatched end never makes the count negative
        #expect(gate.interactive == 0)
    }

    @Test func anInteractiveRequestCancelsBatchWorkInFlight() async {
        let preempted = Mutex(0)
        let traffic = BatchTraffic(quiet: .zero, onPreempt: { n in preempted.withLock { $0 += n } })
        #expect(await traffic.run { 7 } == 7)
        let started = AsyncStream<Void>.makeStream()
        let work = Task {
            await traffic.run { () async -> Int in
                started.continuation.yield()
                try? await Task.sleep(for: .seconds(30))
                return Task.isCancelled ? -1 : 1
            }
        }
        var iterator = started.stream.makeAsyncIterator()
        _ = await iterator.next()
        traffic.interactiveBegan()
        #expect(await work.value == -1, "the work saw its cancellation")
        #expect(preempted.withLock { $0 } == 1, "counted once (switchyard_batch_preemptions_total)")
        traffic.interactiveEnded()
    }

    static func file(_ lines: [String]) -> Data { Data(lines.joined(separator: "\n").utf8) }
    static let good = #"{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m", "messages": []}}"#

    @Test func anInputFileBecomesRequestsInLineOrder() throws {
        let second = Self.good.replacingOccurrences(of: #""a""#, with: #""b""#)
        let requests = try BatchesSurface.requests(in: Self.file([Self.good, "", second, ""]), endpoint: "/v1/chat/completions").get()
        #expect(requests.map(\.line) == [1, 3])
        #expect(requests.map(\.customID) == ["a", "b"])
        #expect(requests[0].body == #"{"model":"m","messages":[]}"#)
    }

    @Test func linesMayEndInCRLF() throws {
        let second = Self.good.replacingOccurrences(of: #""a""#, with: #""b""#)
        let requests = try BatchesSurface.requests(in: Data((Self.good + "\r\n" + second + "\r\n").utf8), endpoint: "/v1/chat/completions").get()
        #expect(requests.map(\.customID) == ["a", "b"])
    }

    @Test func webhooksGoOnlyToPublicAddressesUnlessAllowed() {
        for url in ["http://127.0.0.1:9/hook", "http://localhost/hook", "http://10.1.2.3/", "https://192.168.1.5/x", "http://[::1]:80/",
                    "http://169.254.169.254/latest/meta-data", "http://0.0.0.0/", "http://[fd00::1]/", "http://172.20.0.1/"] {
            #expect(BatchWebhook.resolvesPrivately(url), "\(url)")
        }
        for url in ["http://8.8.8.8/hook", "https://[2001:4860:4860::8888]/hook", "http://1.1.1.1:8443/x"] {
            #expect(!BatchWebhook.resolvesPrivately(url), "\(url)")
        }
        #expect(BatchWebhook.acceptable("https://example.com/hook"))
        #expect(!BatchWebhook.acceptable("ftp://example.com/hook"))
        #expect(!BatchWebhook.acceptable("https:///nohost"))
    }

    @Test func eachBadLineIsNamed() {
        let lines = [
            Self.good, Self.good, "[1]", Self.good.replacingOccurrences(of: #""POST""#, with: #""GET""#).replacingOccurrences(of: #""a""#, with: #""m""#),
            Self.good.replacingOccurrences(of: "/v1/chat/completions", with: "/v1/embeddings").replacingOccurrences(of: #""a""#, with: #""u""#),
            Self.good.replacingOccurrences(of: #""model": "m", "#, with: "").replacingOccurrences(of: #""a""#, with: #""n""#),
            Self.good.replacingOccurrences(of: #""messages": []"#, with: #""messages": [], "stream": true"#).replacingOccurrences(of: #""a""#, with: #""s""#),
        ]
        guard case .failure(let problems) = BatchesSurface.requests(in: Self.file(lines), endpoint: "/v1/chat/completions") else {
            Issue.record("a file with bad lines was accepted"); return
        }
        #expect(problems.errors.map(\.line) == [2, 3, 4, 5, 6, 7])
        #expect(problems.errors.map(\.code) == ["duplicate_custom_id", "invalid_json_line", "invalid_method", "mismatched_endpoint",
                                               "missing_required_parameter", "invalid_request"])
        #expect(BatchesSurface.requests(in: Data([0xFF, 0xFE]), endpoint: "/v1/embeddings") ==
                .failure(.init(errors: [.init(code: "invalid_file", message: "the file is not UTF-8 text")])))
        #expect(BatchesSurface.requests(in: Data("\n\n".utf8), endpoint: "/v1/embeddings") ==
                .failure(.init(errors: [.init(code: "empty_file", message: "the file holds no requests")])))
    }

    static func form(_ boundary: String, _ parts: [(String, String?, String)]) -> [UInt8] {
        var text = "preamble\r\n"
        for (name, filename, content) in parts {
            text += "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\""
            if let filename { text += "; filename=\"\(filename)\"\r\nContent-Type: application/jsonl" }
            text += "\r\n\r\n\(content)\r\n"
        }
        return Array((text + "--\(boundary)--\r\n").utf8)
    }

    @Test func multipartFormsAreReadAsClientsSendThem() throws {
        #expect(MultipartForm.boundary(of: "multipart/form-data; boundary=\"abc def\"") == "abc def")
        #expect(MultipartForm.boundary(of: "Multipart/Form-Data;boundary=x-1") == "x-1")
        #expect(MultipartForm.boundary(of: "application/json") == nil)
        #expect(MultipartForm.boundary(of: "multipart/form-data") == nil)
        let content = "{\"a\": 1}\r\n{\"b\": \"--x not the boundary\"}\n"
        let form = try MultipartForm(Self.form("x", [("purpose", nil, "batch"), ("file", "in;put \\\"q\\\".jsonl", content)]), boundary: "x")
        #expect(form.part("purpose")?.text == "batch")
        #expect(form.part("file")?.filename == "in;put \"q\".jsonl")
        #expect(form.part("file")?.text == content)
    }

    @Test(arguments: [
        ("no boundary at all", "no boundary"),
        ("--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nnever ends", "a part does not end with the boundary"),
        ("--x\r\nContent-Disposition: form-data; name=\"a\"", "a part's headers do not end"),
        ("--x\r\nContent-Type: text/plain\r\n\r\nv\r\n--x--", "a part has no Content-Disposition header"),
        ("--xjunk", "a boundary line does not end in CRLF"),
    ])
    func malformedFormsAreA400NamingTheFault(_ body: String, _ why: String) {
        let error = #expect(throws: APIError.self) { try MultipartForm(Array(body.utf8), boundary: "x") }
        #expect(error?.status == .badRequest)
        #expect(error?.message == "the multipart/form-data body is malformed: \(why)")
    }
}
