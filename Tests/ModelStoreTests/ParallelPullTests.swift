import Foundation
@testable import ModelStore
import Testing

/// Large files over several connections (HTTP Range), against a local server in Hugging Face's protocol that logs
/// every range asked for: the file comes whole and verified; a range cut short leaves a record, and the next pull
/// asks only for what is missing; a server that ignores ranges gets one stream.
@Suite(.serialized) struct ParallelPullTests {
    static let model = testBytes(300_000, seed: 5)

    /// `/owner/repo` lists `big.gguf` (the payload, its hash as LFS oid); `/owner/plain` the same file from a server
    /// path that ignores Range. The first request for the range starting at CUT (once) is cut after 10 000 bytes.
    static func server(_ served: URL, hash: String, log: URL) async throws -> LocalServer {
        try await LocalServer.script("""
            import json, os
            from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
            SERVED, HASH, LOG = \(String(reflecting: served.path)), "\(hash)", \(String(reflecting: log.path))
            DATA = open(os.path.join(SERVED, "model"), "rb").read()
            CUT = [150000]
            class H(BaseHTTPRequestHandler):
                protocol_version = "HTTP/1.1"
                def log_message(self, *a): pass
                def send(self, status, body=b"", headers=()):
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    for k, v in headers: self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(body)
                def do_GET(self):
                    p = self.path
                    for repo in ("repo", "plain"):
                        if p == "/api/models/owner/%s/tree/main?recursive=true" % repo:
                            files = [{"type": "file", "path": "big.gguf", "size": len(DATA), "lfs": {"oid": HASH, "size": len(DATA)}}]
                            return self.send(200, json.dumps(files).encode())
                    rng = self.headers.get("Range")
                    with open(LOG, "a") as f: f.write("%s %s\\n" % (p, rng))
                    if p == "/owner/plain/resolve/main/big.gguf": return self.send(200, DATA)
                    if p != "/owner/repo/resolve/main/big.gguf": return self.send(404, b"{}")
                    if not rng: return self.send(200, DATA)
                    a, b = rng[len("bytes="):].split("-")
                    start, end = int(a), (int(b) if b else len(DATA) - 1)
                    body = DATA[start:end + 1]
                    if start in CUT:
                        CUT.remove(start)
                        self.send_response(206)
                        self.send_header("Content-Length", str(len(body)))
                        self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, len(DATA)))
                        self.end_headers()
                        self.wfile.write(body[:10000]); self.wfile.flush(); self.connection.close(); return
                    self.send(206, body, [("Content-Range", "bytes %d-%d/%d" % (start, end, len(DATA)))])
            s = ThreadingHTTPServer(("127.0.0.1", 0), H)
            print("port", s.server_address[1], flush=True)
            s.serve_forever()
            """)
    }

    func ranges(_ log: URL) -> [String] {
        ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// The payload served, a model directory, the server and a puller that splits anything (threshold 1 byte).
    struct Setup {
        let served: TempDirectory, models: TempDirectory, hash: String, log: URL, server: LocalServer, puller: ModelPuller
        func remove() { server.stop(); served.remove(); models.remove() }
    }

    static func setUp() async throws -> Setup {
        let served = try TempDirectory("served"), models = try TempDirectory("models")
        try model.write(to: served.file("model"))
        let hash = try sha256(of: model)
        let log = served.file("ranges.log")
        let server = try await Self.server(served.url, hash: hash, log: log)
        var puller = ModelPuller(directory: models.url, wheelFetcher: LocalWheelFetcher(wheels: [:]))
        puller.registries = RegistryEndpoints(ollama: server.baseURL, huggingFace: server.baseURL)
        puller.parallelThreshold = 1
        puller.connections = 4
        return Setup(served: served, models: models, hash: hash, log: log, server: server, puller: puller)
    }

    @Test func aLargeFileComesOverFourRangesAndResumesWhereEachStopped() async throws {
        let f = try await Self.setUp()
        defer { f.remove() }
        let (puller, log, hash, models) = (f.puller, f.log, f.hash, f.models)

        // The range from 150 000 is cut after 10 000 bytes: the pull fails, keeping what every range wrote.
        let cut = await expectStoreError { _ = try await puller.pull("hf:owner/repo") }
        guard case .downloadInterrupted(_, _, let kept, let path)? = cut else { Issue.record("got \(String(describing: cut))"); return }
        #expect(kept == 300_000 - 75_000 + 10_000)
        let record = try #require(ParallelDownloader.existingRecord(for: URL(fileURLWithPath: path), size: 300_000))
        #expect(record.parts.map(\.start) == [0, 75_000, 150_000, 225_000] && record.parts.map(\.done) == [75_000, 75_000, 10_000, 75_000])
        #expect(Set(ranges(log)) == ["/owner/repo/resolve/main/big.gguf bytes=0-74999", "/owner/repo/resolve/main/big.gguf bytes=75000-149999",
                                     "/owner/repo/resolve/main/big.gguf bytes=150000-224999", "/owner/repo/resolve/main/big.gguf bytes=225000-299999"])

        // The next pull asks for the rest of that range only, and the file is whole and verified.
        try Data().write(to: log)
        let done = try await puller.pullWithResult("hf:owner/repo")
        #expect(ranges(log) == ["/owner/repo/resolve/main/big.gguf bytes=160000-224999"])
        #expect(done.sha256 == hash && !done.alreadyPresent)
        #expect(try Data(contentsOf: done.url) == Self.model)
        #expect(models.contents() == ["big.gguf"], "no partial file or record left")
    }

    @Test func aServerThatIgnoresRangesGetsOneStream() async throws {
        let f = try await Self.setUp()
        defer { f.remove() }
        let (puller, log, hash, models) = (f.puller, f.log, f.hash, f.models)
        let result = try await puller.pullWithResult("hf:owner/plain")
        #expect(result.sha256 == hash)
        #expect(try Data(contentsOf: result.url) == Self.model)
        #expect(ranges(log).last == "/owner/plain/resolve/main/big.gguf None", "the whole file in one stream at the end")
        #expect(models.contents() == ["big.gguf"])
    }

    @Test func rangesCoverTheFileExactly() {
        for (size, parts) in [(Int64(10), 4), (300_000, 4), (7, 16), (1, 4), (1 << 30, 3)] {
            let r = ParallelDownloader.Record(size: size, parts: parts)
            #expect(r.parts.first?.start == 0 && r.parts.last?.end == size)
            #expect(zip(r.parts, r.parts.dropFirst()).allSatisfy { $0.end == $1.start && $0.start < $0.end })
            #expect(r.parts.count <= parts)
        }
    }
}
