import Foundation
import ModelStore
import Testing

/// Pulls by URL from a `python3 -m http.server` on a loopback port.
@Suite(.serialized) struct URLPullTests {
    @Test func pullByURLWithTheRightHashThenAgain() async throws {
        let served = try TempDirectory("served")
        let models = try TempDirectory("models")
        defer { served.remove(); models.remove() }
        let payload = testBytes(250_000, seed: 42)
        try payload.write(to: served.file("tiny-model.gguf"))
        let hash = try sha256(of: payload)
        let server = try await LocalServer.serving(served.url)
        defer { server.stop() }

        let puller = ModelPuller(directory: models.url, wheelFetcher: LocalWheelFetcher(wheels: [:]))
        let log = ProgressLog()
        let url = try await puller.pull("\(server.baseURL)/tiny-model.gguf", sha256: hash.uppercased(), progress: log.report)
        #expect(url == models.file("tiny-model.gguf"))
        #expect(try Data(contentsOf: url) == payload)
        #expect(models.contents() == ["tiny-model.gguf"])
        let lastDownload = try #require(log.all.last { $0.phase == .downloading })
        #expect(lastDownload.bytesDone == Int64(payload.count))
        #expect(lastDownload.bytesTotal == Int64(payload.count))
        #expect(log.phases.contains(.verifying))

        // Same hash again: verified and left alone.
        let again = try await puller.pullWithResult("\(server.baseURL)/tiny-model.gguf", sha256: hash)
        #expect(again.alreadyPresent)

        // No hash: downloaded and kept whatever it is.
        let unchecked = try await puller.pullWithResult("\(server.baseURL)/tiny-model.gguf")
        #expect(!unchecked.alreadyPresent)
        #expect(unchecked.sha256 == hash)
        #expect(models.contents() == ["tiny-model.gguf"])
    }

    @Test func wrongHashKeepsNothing() async throws {
        let served = try TempDirectory("served")
        let models = try TempDirectory("models")
        defer { served.remove(); models.remove() }
        let payload = testBytes(50_000, seed: 9)
        try payload.write(to: served.file("m.gguf"))
        let actual = try sha256(of: payload)
        let server = try await LocalServer.serving(served.url)
        defer { server.stop() }

        let wrong = String(repeating: "1234", count: 16)
        let puller = ModelPuller(directory: models.url, wheelFetcher: LocalWheelFetcher(wheels: [:]))
        let error = await expectStoreError {
            try await puller.pull("\(server.baseURL)/m.gguf", sha256: wrong)
        }
        #expect(error == .sha256Mismatch(fileName: "m.gguf", expected: wrong, actual: actual))
        #expect(error?.description.contains(wrong) == true && error?.description.contains(actual) == true)
        #expect(models.contents().isEmpty)
    }

    @Test func notFoundNamesTheStatus() async throws {
        let served = try TempDirectory("served")
        let models = try TempDirectory("models")
        defer { served.remove(); models.remove() }
        let server = try await LocalServer.serving(served.url)
        defer { server.stop() }

        let puller = ModelPuller(directory: models.url, wheelFetcher: LocalWheelFetcher(wheels: [:]))
        let url = "\(server.baseURL)/missing.gguf"
        let error = await expectStoreError { try await puller.pull(url) }
        #expect(error == .httpStatus(url: url, status: 404))
        #expect(error?.description.contains("404") == true, "\(String(describing: error))")
        #expect(models.contents().isEmpty)
    }

    @Test func truncatedDownloadIsDiscarded() async throws {
        let models = try TempDirectory("models")
        defer { models.remove() }
        // Promises 100000 bytes, sends 1000, hangs up.
        let server = try await LocalServer.rawResponse(#"b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nContent-Type: application/octet-stream\r\n\r\n" + b"x" * 1000"#)
        defer { server.stop() }

        let puller = ModelPuller(directory: models.url, wheelFetcher: LocalWheelFetcher(wheels: [:]))
        let error = await expectStoreError { try await puller.pull("\(server.baseURL)/cut.gguf") }
        guard case .downloadFailed? = error else {
            Issue.record("wrong error \(String(describing: error))")
            return
        }
        #expect(models.contents().isEmpty)
    }

    @Test func redirectToPlainHTTPElsewhereIsRefused() async throws {
        let models = try TempDirectory("models")
        defer { models.remove() }
        let server = try await LocalServer.rawResponse(#"b"HTTP/1.1 302 Found\r\nLocation: http://example.invalid/x.gguf\r\nContent-Length: 0\r\n\r\n""#)
        defer { server.stop() }

        let puller = ModelPuller(directory: models.url, wheelFetcher: LocalWheelFetcher(wheels: [:]))
        let error = await expectStoreError { try await puller.pull("\(server.baseURL)/r.gguf") }
        #expect(error == .insecureURL(url: "http://example.invalid/x.gguf"))
        #expect(models.contents().isEmpty)
    }

    @Test func plainHTTPIsRefusedExceptOnLoopback() async throws {
        let models = try TempDirectory("models")
        defer { models.remove() }
        let puller = ModelPuller(directory: models.url, wheelFetcher: LocalWheelFetcher(wheels: [:]))
        let error = await expectStoreError { try await puller.pull("http://example.com/m.gguf") }
        #expect(error == .insecureURL(url: "http://example.com/m.gguf"))
        #expect(error?.description.contains("https") == true)
        let ftp = await expectStoreError { try await puller.pull("ftp://example.com/m.gguf") }
        guard case .invalidURL? = ftp else {
            Issue.record("wrong error \(String(describing: ftp))")
            return
        }
        let notGGUF = await expectStoreError { try await puller.pull("https://example.com/model.bin") }
        guard case .invalidURL? = notGGUF else {
            Issue.record("wrong error \(String(describing: notGGUF))")
            return
        }
        #expect(models.contents().isEmpty)
    }

    @Test func unreachableLoopbackPortIsADownloadError() async throws {
        let models = try TempDirectory("models")
        defer { models.remove() }
        // Port 9 (discard) is closed on a test machine: the connection is refused.
        let puller = ModelPuller(directory: models.url, wheelFetcher: LocalWheelFetcher(wheels: [:]))
        let error = await expectStoreError { try await puller.pull("http://127.0.0.1:9/m.gguf") }
        guard case .downloadFailed? = error else {
            Issue.record("wrong error \(String(describing: error))")
            return
        }
        #expect(models.contents().isEmpty)
    }

    @Test func fileNameIsSanitized() async throws {
        let served = try TempDirectory("served")
        let models = try TempDirectory("models")
        defer { served.remove(); models.remove() }
        let payload = testBytes(1000)
        try payload.write(to: served.file("..weird name.gguf"))
        let server = try await LocalServer.serving(served.url)
        defer { server.stop() }

        let puller = ModelPuller(directory: models.url, wheelFetcher: LocalWheelFetcher(wheels: [:]))
        let url = try await puller.pull("\(server.baseURL)/..weird%20name.gguf")
        #expect(url.lastPathComponent == "weird_name.gguf")
        #expect(url.deletingLastPathComponent().standardizedFileURL == models.url.standardizedFileURL)
        #expect(models.contents() == ["weird_name.gguf"])
        // An encoded slash cannot climb out of the model directory.
        let sneaky = await expectStoreError { try await puller.pull("\(server.baseURL)/a%2F..%2F..%2Fevil.gguf") }
        if let sneaky { // the server 404s; whatever the error, nothing lands outside
            #expect(!sneaky.description.isEmpty)
        }
        #expect(!FileManager.default.fileExists(atPath: models.url.deletingLastPathComponent().appendingPathComponent("evil.gguf").path))
    }
}
