import Foundation
import ModelStore
import Testing

/// `ollama:` and `hf:` pulls against a local server that follows the two registries' documented protocols: Ollama's
/// OCI manifest and blobs by digest (the blob redirected elsewhere, as the registry does to its CDN), Hugging Face's
/// file list with LFS hashes and `resolve` downloads (a gated repository answering 401 without a token, the token
/// sent to the Hub and not to the CDN it redirects to, a connection cut short).
@Suite(.serialized) struct RegistryPullTests {
    static let model = testBytes(200_000, seed: 3)
    static let otherModel = testBytes(120_000, seed: 9)

    /// The stand-in: blobs and files are the two payloads, written by the test to `served`.
    static func server(_ served: URL, modelHash: String, otherHash: String) async throws -> LocalServer {
        try await LocalServer.script("""
            import json, os, sys
            from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
            SERVED = \(String(reflecting: served.path))
            MODEL, OTHER = "\(modelHash)", "\(otherHash)"
            def blob(name): return open(os.path.join(SERVED, name), "rb").read()
            CONFIG, TOKENIZER = b'{"architectures": ["BertModel"]}', b'{"model": {"type": "WordPiece"}}'
            POOLING = b'{"pooling_mode_mean_tokens": true}'
            SYSTEM = "You are Tiny, a terse assistant.".encode()
            PARAMS = json.dumps({"stop": ["<|im_end|>", "<|endoftext|>"], "temperature": 0.2, "top_k": 20, "num_ctx": 8192,
                                 "num_predict": 128}).encode()
            class H(BaseHTTPRequestHandler):
                def log_message(self, *a): pass
                def send(self, status, body=b"", ctype="application/json", headers=()):
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                    for k, v in headers: self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(body)
                # The CDN is another host (127.0.0.2, same port), as the registries' CDNs are.
                def redirect(self, to): self.send(302, headers=[("Location", "http://127.0.0.2:%d%s" % (PORT, to))])
                def do_GET(self):
                    p, auth = self.path, self.headers.get("Authorization")
                    # Ollama's registry
                    if p == "/v2/library/tiny/manifests/latest" or p == "/v2/library/tiny/manifests/q8":
                        assert "manifest.v2+json" in self.headers.get("Accept", "")
                        layers = [{"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:" + "0" * 64, "size": 10},
                                  {"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:" + MODEL, "size": len(blob("model"))},
                                  {"mediaType": "application/vnd.ollama.image.params", "digest": "sha256:" + "1" * 64, "size": len(PARAMS)},
                                  {"mediaType": "application/vnd.ollama.image.system", "digest": "sha256:" + "2" * 64, "size": len(SYSTEM)}]
                        return self.send(200, json.dumps({"schemaVersion": 2, "layers": layers}).encode())
                    if p == "/v2/library/huge/manifests/latest":
                        layers = [{"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:" + MODEL, "size": 10 ** 16}]
                        return self.send(200, json.dumps({"schemaVersion": 2, "layers": layers}).encode())
                    if p == "/v2/library/huge/blobs/sha256:" + MODEL: return self.send(500, b"must not be fetched")
                    if p == "/v2/library/tiny/blobs/sha256:" + MODEL: return self.redirect("/cdn/model")
                    if p == "/v2/library/tiny/blobs/sha256:" + "1" * 64: return self.send(200, PARAMS)
                    if p == "/v2/library/tiny/blobs/sha256:" + "2" * 64: return self.send(200, SYSTEM, "text/plain")
                    if p.startswith("/v2/"): return self.send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
                    # Hugging Face
                    if p.startswith("/api/models/owner/gated/") and auth != "Bearer hf_good":
                        return self.send(401, b'{"error":"Access to model owner/gated is restricted."}')
                    if p in ("/api/models/owner/repo/tree/main?recursive=true", "/api/models/owner/gated/tree/main?recursive=true"):
                        files = [{"type": "file", "path": "README.md", "size": 10},
                                 {"type": "file", "path": "tiny-Q4_K_M.gguf", "size": len(blob("model")),
                                  "lfs": {"oid": MODEL, "size": len(blob("model")), "pointerSize": 134}},
                                 {"type": "file", "path": "tiny-Q8_0.gguf", "size": len(blob("other")),
                                  "lfs": {"oid": OTHER, "size": len(blob("other")), "pointerSize": 134}},
                                 {"type": "file", "path": "cut-Q2_K.gguf", "size": 5000, "lfs": {"oid": OTHER, "size": 5000}},
                                 {"type": "file", "path": "flaky-Q3_K.gguf", "size": len(blob("model")),
                                  "lfs": {"oid": MODEL, "size": len(blob("model"))}}]
                        return self.send(200, json.dumps(files).encode())
                    # A repository of safetensors: small files in git (no LFS hash), the weights in LFS, copies to skip
                    if p in ("/api/models/owner/folder/tree/main?recursive=true", "/api/models/owner/badfolder/tree/main?recursive=true"):
                        weights = {"oid": OTHER if "badfolder" in p else MODEL, "size": len(blob("model"))}
                        files = [{"type": "file", "path": "README.md", "size": 10},
                                 {"type": "file", "path": "config.json", "size": len(CONFIG)},
                                 {"type": "file", "path": "tokenizer.json", "size": len(TOKENIZER)},
                                 {"type": "directory", "path": "1_Pooling"},
                                 {"type": "file", "path": "1_Pooling/config.json", "size": len(POOLING)},
                                 {"type": "file", "path": "model.safetensors", "size": len(blob("model")), "lfs": weights},
                                 {"type": "file", "path": "pytorch_model.bin", "size": 5, "lfs": {"oid": OTHER, "size": 5}},
                                 {"type": "file", "path": "onnx/model.onnx", "size": 5, "lfs": {"oid": OTHER, "size": 5}}]
                        return self.send(200, json.dumps(files).encode())
                    if p.startswith("/api/models/"): return self.send(404, b'{"error":"Repository not found"}')
                    if p.startswith("/owner/folder/resolve/main/") or p.startswith("/owner/badfolder/resolve/main/"):
                        name = p.split("/resolve/main/", 1)[1]
                        if name == "model.safetensors": return self.redirect("/cdn/model")
                        body = {"config.json": CONFIG, "tokenizer.json": TOKENIZER, "1_Pooling/config.json": POOLING}.get(name)
                        if body is None: return self.send(500, b"must not be fetched")
                        return self.send(200, body)
                    if p.startswith("/owner/gated/resolve/main/") and auth != "Bearer hf_good": return self.send(401, b"")
                    if p in ("/owner/repo/resolve/main/tiny-Q4_K_M.gguf", "/owner/gated/resolve/main/tiny-Q4_K_M.gguf"): return self.redirect("/cdn/model")
                    if p == "/owner/repo/resolve/main/tiny-Q8_0.gguf": return self.redirect("/cdn/other")
                    if p == "/owner/repo/resolve/main/flaky-Q3_K.gguf":
                        # Without a Range: the first 80 000 bytes, then the connection drops (every time). With one:
                        # the rest, as 206 Partial Content.
                        data, rng = blob("model"), self.headers.get("Range")
                        if rng:
                            start = int(rng[len("bytes="):].rstrip("-"))
                            rest = data[start:]
                            return self.send(206, rest, "application/octet-stream",
                                             [("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))])
                        self.send_response(200); self.send_header("Content-Length", str(len(data))); self.end_headers()
                        self.wfile.write(data[:80000]); self.wfile.flush(); self.connection.close(); return
                    if p == "/owner/repo/resolve/main/cut-Q2_K.gguf":
                        self.send_response(200); self.send_header("Content-Length", "5000"); self.end_headers()
                        self.wfile.write(b"x" * 100); self.wfile.flush(); self.connection.close(); return
                    # The CDN: a signed URL, which refuses a token it was not meant for (as S3 does).
                    if p.startswith("/cdn/"):
                        if self.server.server_address[0] != "127.0.0.2": return self.send(404, b"{}")
                        if auth: return self.send(400, b"only one auth mechanism allowed")
                        return self.send(200, blob(p[len("/cdn/"):]), "application/octet-stream")
                    self.send(404, b"{}")
            import threading
            s = ThreadingHTTPServer(("127.0.0.1", 0), H)
            PORT = s.server_address[1]
            cdn = ThreadingHTTPServer(("127.0.0.2", PORT), H)
            threading.Thread(target=cdn.serve_forever, daemon=True).start()
            print("port", PORT, flush=True)
            s.serve_forever()
            """)
    }

    func setUp() throws -> (TempDirectory, TempDirectory, String, String) {
        let served = try TempDirectory("served"), models = try TempDirectory("models")
        try Self.model.write(to: served.file("model"))
        try Self.otherModel.write(to: served.file("other"))
        return (served, models, try sha256(of: Self.model), try sha256(of: Self.otherModel))
    }

    @Test func specsAreReadOrRefused() throws {
        #expect(try RegistrySpec.parse("ollama:tiny") == .ollama(namespace: "library", name: "tiny", tag: "latest"))
        #expect(try RegistrySpec.parse("ollama:me/tiny:q8") == .ollama(namespace: "me", name: "tiny", tag: "q8"))
        #expect(try RegistrySpec.parse("hf:owner/repo:Q4_K_M") == .huggingFace(repo: "owner/repo", selector: "Q4_K_M"))
        #expect(try RegistrySpec.parse("hf:owner/repo") == .huggingFace(repo: "owner/repo", selector: nil))
        #expect(try RegistrySpec.parse("smollm2") == nil)
        for bad in ["ollama:", "ollama:a/b/c", "ollama:../x", "hf:repo", "hf:owner/repo:", "hf:o/r/x"] {
            #expect(throws: ModelStoreError.self, "\(bad)") { try RegistrySpec.parse(bad) }
        }
    }

    @Test func hfPullsAFolderOfSafetensorsFileByFile() async throws {
        let (served, models, modelHash, otherHash) = try setUp()
        defer { served.remove(); models.remove() }
        let server = try await Self.server(served.url, modelHash: modelHash, otherHash: otherHash)
        defer { server.stop() }
        var puller = ModelPuller(directory: models.url, wheelFetcher: LocalWheelFetcher(wheels: [:]))
        puller.registries = RegistryEndpoints(ollama: server.baseURL, huggingFace: server.baseURL)
        let first = try await puller.pullWithResult("hf:owner/folder")
        let folder = models.url.appendingPathComponent("folder")
        #expect(first.url.standardizedFileURL == folder.standardizedFileURL && !first.alreadyPresent && first.sha256 == modelHash)
        #expect(try Data(contentsOf: folder.appendingPathComponent("model.safetensors")) == Self.model)
        #expect(try String(contentsOf: folder.appendingPathComponent("1_Pooling/config.json"), encoding: .utf8) == #"{"pooling_mode_mean_tokens": true}"#)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() == ["1_Pooling", "config.json", "model.safetensors", "tokenizer.json"])
        #expect(models.contents() == ["folder"], "no partial folder left")
        #expect(ModelDirectory.listModels(in: models.url).map(\.name) == ["folder"])
        #expect(try await puller.pullWithResult("hf:owner/folder").alreadyPresent, "every file with its listed hash: kept")
        // weights that do not hash to what the Hub lists: refused, and no folder appears
        let bad = await expectStoreError { _ = try await puller.pull("hf:owner/badfolder") }
        guard case .sha256Mismatch(let file, let expected, let actual)? = bad else { Issue.record("got \(String(describing: bad))"); return }
        #expect(file == "badfolder/model.safetensors" && expected == otherHash && actual == modelHash)
        #expect(!FileManager.default.fileExists(atPath: models.url.appendingPathComponent("badfolder").path))
    }

    @Test func ollamaPullsTheModelLayerByDigestThroughTheRedirect() async throws {
        let (served, models, modelHash, otherHash) = try setUp()
        defer { served.remove(); models.remove() }
        let server = try await Self.server(served.url, modelHash: modelHash, otherHash: otherHash)
        defer { server.stop() }
        var puller = ModelPuller(directory: models.url, wheelFetcher: LocalWheelFetcher(wheels: [:]))
        puller.registries = RegistryEndpoints(ollama: server.baseURL, huggingFace: server.baseURL)
        let first = try await puller.pullWithResult("ollama:tiny")
        #expect(first.url == models.file("tiny.gguf") && first.sha256 == modelHash && !first.alreadyPresent)
        #expect(try Data(contentsOf: first.url) == Self.model)
        #expect(try await puller.pullWithResult("ollama:tiny").alreadyPresent, "the same digest again: kept, not fetched")
        // Its parameters became the file's sampling defaults (num_ctx, a resource setting, is not one).
        // Its SYSTEM became the system message of requests that bring none.
        #expect(ModelDefaults.read(for: first.url) == ModelDefaults(temperature: 0.2, top_k: 20, max_tokens: 128,
                                                                     stop: ["<|im_end|>", "<|endoftext|>"],
                                                                     system: "You are Tiny, a terse assistant."))
        #expect(FileManager.default.fileExists(atPath: models.file("tiny.defaults.json").path))
        let tagged = try await puller.pullWithResult("ollama:tiny:q8")
        #expect(tagged.url == models.file("tiny-q8.gguf"))
        let missing = await expectStoreError { _ = try await puller.pull("ollama:nothing:7b") }
        guard case .notInRegistry(let what, _)? = missing else { Issue.record("got \(String(describing: missing))"); return }
        #expect(what == "ollama:nothing:7b")
        // A model larger than the disk's free space: refused before anything is fetched.
        let huge = await expectStoreError { _ = try await puller.pull("ollama:huge") }
        guard case .notEnoughSpace(_, 10_000_000_000_000_000, _)? = huge else { Issue.record("got \(String(describing: huge))"); return }
        #expect(models.contents().sorted() == ["tiny-q8.defaults.json", "tiny-q8.gguf", "tiny.defaults.json", "tiny.gguf"])
    }

    @Test func huggingFacePicksTheFileVerifiesItAndKeepsTheTokenFromTheCDN() async throws {
        let (served, models, modelHash, otherHash) = try setUp()
        defer { served.remove(); models.remove() }
        let server = try await Self.server(served.url, modelHash: modelHash, otherHash: otherHash)
        defer { server.stop() }
        var puller = ModelPuller(directory: models.url, wheelFetcher: LocalWheelFetcher(wheels: [:]))
        puller.registries = RegistryEndpoints(ollama: server.baseURL, huggingFace: server.baseURL)
        // No selector and several files: the Q4_K_M one.
        let chosen = try await puller.pullWithResult("hf:owner/repo")
        #expect(chosen.url == models.file("tiny-Q4_K_M.gguf") && chosen.sha256 == modelHash)
        let q8 = try await puller.pullWithResult("hf:owner/repo:q8_0")
        #expect(q8.url == models.file("tiny-Q8_0.gguf") && q8.sha256 == otherHash)
        let ambiguous = await expectStoreError { _ = try await puller.pull("hf:owner/repo:tiny") }
        #expect(ambiguous == .ambiguousFile(spec: "hf:owner/repo:tiny", candidates: ["cut-Q2_K.gguf", "flaky-Q3_K.gguf", "tiny-Q4_K_M.gguf", "tiny-Q8_0.gguf"], matched: 2))
        // A gated repository: 401 without the token; with it, the Hub gets the token and the CDN does not.
        let denied = await expectStoreError { _ = try await puller.pull("hf:owner/gated:Q4_K_M") }
        guard case .accessDenied(_, 401)? = denied else { Issue.record("got \(String(describing: denied))"); return }
        #expect(denied?.description.contains("HF_TOKEN") == true)
        puller.registries.huggingFaceToken = "hf_good"
        try FileManager.default.removeItem(at: models.file("tiny-Q4_K_M.gguf"))
        let gated = try await puller.pullWithResult("hf:owner/gated:tiny-Q4_K_M.gguf")
        #expect(gated.sha256 == modelHash)
        // A connection cut short: what arrived is kept, and the next pull asks for the rest only.
        let flaky = await expectStoreError { _ = try await puller.pull("hf:owner/repo:Q3_K") }
        guard case .downloadInterrupted(_, _, 80_000, _)? = flaky else { Issue.record("got \(String(describing: flaky))"); return }
        #expect(models.contents().sorted() == [".flaky-Q3_K.gguf.partial", "tiny-Q4_K_M.gguf", "tiny-Q8_0.gguf"])
        let resumed = try await puller.pullWithResult("hf:owner/repo:Q3_K")
        #expect(resumed.sha256 == modelHash && resumed.size == Int64(Self.model.count))
        // A server that ignores the Range and cuts again: started over (the kept part is not appended to twice).
        let cut = await expectStoreError { _ = try await puller.pull("hf:owner/repo:Q2_K") }
        guard case .downloadInterrupted(_, _, 100, _)? = cut else { Issue.record("got \(String(describing: cut))"); return }
        let again = await expectStoreError { _ = try await puller.pull("hf:owner/repo:Q2_K") }
        guard case .downloadInterrupted(_, _, 100, _)? = again else { Issue.record("got \(String(describing: again))"); return }
        #expect(models.contents() == [".cut-Q2_K.gguf.partial", "flaky-Q3_K.gguf", "tiny-Q4_K_M.gguf", "tiny-Q8_0.gguf"])
        let none = await expectStoreError { _ = try await puller.pull("hf:owner/none") }
        guard case .notInRegistry? = none else { Issue.record("got \(String(describing: none))"); return }
    }
}
