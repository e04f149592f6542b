import Core
import Foundation
import GGUF
import Inference
import ModelStore
import Tokenizers

extension ModelHost: LocalModels {
    public func list() async -> [LocalModelInfo] {
        let workers = Dictionary(uniqueKeysWithValues: loadedWorkers().map { ($0.name, $0) })
        return available().map { e in
            if ModelDirectory.isModelFolder(e.path) {
                let summary = HuggingFaceFolder.summary(e.path)
                return LocalModelInfo(name: e.name, path: e.path.path, sizeBytes: e.sizeBytes, quantization: summary?.dtype,
                                      architecture: summary?.architecture, contextLength: summary?.contextLength,
                                      loaded: loadedEmbedders().first { $0.name == e.name }.map(Self.info))
            }
            let worker = workers[e.name]
            let file = worker.map { $0.loaded.file } ?? (try? GGUFFile(path: e.path.path))
            let architecture = file?.string("general.architecture")
            return LocalModelInfo(
                name: e.name, path: e.path.path, sizeBytes: e.sizeBytes, quantization: file.flatMap(Self.quantization),
                architecture: architecture,
                contextLength: worker.map { $0.loaded.model.shape.contextLength } ?? architecture.flatMap { file?.int("\($0).context_length") },
                loaded: worker.map(Self.info))
        }
    }

    public func loaded() async -> [LoadedModelInfo] { loadedWorkers().map(Self.info) + loadedEmbedders().map(Self.info) }

    public func adapters(of name: String, setting scales: [AdapterSelection]?) async throws -> LoadedModelInfo {
        if embedders[name] != nil || (try? resolve(name)).map({ Self.isEmbeddingModel($0.0) }) == true { throw Self.notForChat(name) }
        let worker = try await worker(for: name)
        if let scales {
            do { try worker.loaded.model.setAdapterScales(scales.map { AdapterUse(id: $0.id, scale: Float($0.scale)) }) } catch {
                throw CoreError.badRequest(error.description)
            }
        }
        return Self.info(worker)
    }

    public func load(_ name: String, keepAlive: Duration?) async throws -> LoadedModelInfo {
        if embedders[name] != nil || (try? resolve(name)).map({ Self.isEmbeddingModel($0.0) }) == true {
            let embedder = try await embedder(for: name)
            if let keepAlive { embedder.keepAlive = keepAlive }
            return Self.info(embedder)
        }
        let worker = try await worker(for: name)
        if let keepAlive { worker.keepAlive = keepAlive }
        return Self.info(worker)
    }

    public func cancelAll() async {
        for w in loadedWorkers() { w.cancelAll() }
    }

    static func info(_ w: EngineWorker) -> LoadedModelInfo {
        LoadedModelInfo(name: w.name, busy: w.isBusy, queueLength: w.queueLength, memoryBytes: w.memoryBytes,
                        adapters: w.loaded.model.adapters.enumerated().map { id, a in
                            AdapterInfo(id: id, path: a.adapter.path, scale: Double(a.scale), rank: a.adapter.rank, matrices: a.adapter.tensorCount)
                        })
    }

    static func info(_ w: EmbeddingWorker) -> LoadedModelInfo {
        LoadedModelInfo(name: w.name, busy: w.isBusy, queueLength: w.queueLength, memoryBytes: w.memoryBytes)
    }

    /// The most common weight type among the 2-D tensors, e.g. "Q4_1".
    static func quantization(_ f: GGUFFile) -> String? {
        var counts: [String: Int] = [:]
        for t in f.tensors where t.dimensions.count >= 2 { counts[t.type.name, default: 0] += t.elementCount }
        return counts.max { $0.value < $1.value }?.key
    }
}

// MARK: Ollama-style model management: show, pull, delete, copy

extension ModelHost {
    public func details(_ name: String) async throws -> ModelDetails {
        guard let entry = available().first(where: { $0.name == name }) else {
            throw CoreError.unknownModel(name, available: available().map(\.name))
        }
        if ModelDirectory.isModelFolder(entry.path) {
            guard let summary = HuggingFaceFolder.summary(entry.path) else {
                throw CoreError.modelLoadFailed(name, reason: "\(entry.path.path) has no readable config.json")
            }
            return ModelDetails(name: name, template: HuggingFaceBPE.template(inFolder: entry.path), architecture: summary.architecture, quantization: summary.dtype,
                                parameterCount: summary.parameterCount, contextLength: summary.contextLength, sizeBytes: entry.sizeBytes,
                                metadata: summary.config, parameters: [:])
        }
        let file: GGUFFile
        if let w = workers[name] { file = w.loaded.file } else {
            do { file = try GGUFFile(path: entry.path.path) } catch { throw CoreError.modelLoadFailed(name, reason: "\(error)") }
        }
        let architecture = file.string("general.architecture")
        var metadata: [String: String] = [:]
        for (key, value) in file.metadata {
            guard key.hasPrefix("general.") || (architecture.map { key.hasPrefix($0 + ".") } ?? false) || key == "tokenizer.ggml.model"
                    || key == "tokenizer.ggml.pre" else { continue }
            switch value {
            case .string(let s): metadata[key] = s
            case .array: continue
            case .bool(let b): metadata[key] = b ? "true" : "false"
            case .float32(let f): metadata[key] = "\(f)"
            case .float64(let f): metadata[key] = "\(f)"
            default: if let n = value.intValue { metadata[key] = String(n) } else if case .uint64(let u) = value { metadata[key] = String(u) }
            }
        }
        var parameters: [String: String] = [:]
        if let d = declared[name]?.defaults {
            if let v = d.temperature { parameters["temperature"] = "\(v)" }
            if let v = d.topP { parameters["top_p"] = "\(v)" }
            if let v = d.topK { parameters["top_k"] = "\(v)" }
            if let v = d.maxTokens { parameters["num_predict"] = "\(v)" }
        }
        let count = file.tensors.reduce(0) { $0 + $1.elementCount }
        return ModelDetails(name: name, template: file.string("tokenizer.chat_template"), architecture: architecture,
                            quantization: Self.quantization(file), parameterCount: count,
                            contextLength: architecture.flatMap { file.int("\($0).context_length") }, sizeBytes: entry.sizeBytes,
                            metadata: metadata, parameters: parameters)
    }

    /// A catalogue name, a URL, an `ollama:` or `hf:` spec; any other name is taken from Ollama's registry, as
    /// `ollama pull NAME[:TAG]` would (what Ollama's clients send to `/api/pull`).
    public func pull(_ spec: String, progress: @escaping @Sendable (PullReport) -> Void) async throws -> String {
        let puller = ModelPuller(directory: options.directory)
        var spec = spec
        if puller.catalogue.entry(named: spec) == nil, !spec.contains("://"), (try? RegistrySpec.parse(spec)) == nil {
            spec = "ollama:" + spec
        }
        let url = try await puller.pull(spec) { p in
            progress(PullReport(phase: p.phase.rawValue, file: p.fileName, done: p.bytesDone, total: p.bytesTotal))
        }
        return available().first { $0.path.standardizedFileURL == url.standardizedFileURL }?.name
            ?? url.deletingPathExtension().lastPathComponent
    }

    public func delete(_ name: String) async throws {
        guard let entry = available().first(where: { $0.name == name }) else {
            throw CoreError.unknownModel(name, available: available().map(\.name))
        }
        guard declared[name] == nil, ModelResolver.isInside(entry.path, options.directory) else {
            throw CoreError.badRequest("'\(name)' is declared in the configuration; remove it there")
        }
        _ = unload(name)
        let isFolder = ModelDirectory.isModelFolder(entry.path)
        do { try FileManager.default.removeItem(at: entry.path) } catch {
            throw CoreError.badRequest("cannot remove \(entry.path.lastPathComponent): \(error.localizedDescription)")
        }
        if isFolder { HuggingFaceConversion.removeConversions(folder: entry.path) }
    }

    public func copy(_ source: String, to destination: String) async throws {
        guard let entry = available().first(where: { $0.name == source }) else {
            throw CoreError.unknownModel(source, available: available().map(\.name))
        }
        let allowed = destination.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || ("0"..."9").contains($0) || "-_.:".unicodeScalars.contains($0) }
        guard allowed, !destination.isEmpty, !destination.hasPrefix("."), destination.count <= 128 else {
            throw CoreError.badRequest("destination must be a name of letters, digits, '-', '_', '.' and ':' (not starting with '.')")
        }
        guard !available().contains(where: { $0.name == destination }) else {
            throw CoreError.badRequest("a model named '\(destination)' exists already")
        }
        let isFolder = ModelDirectory.isModelFolder(entry.path)
        let target = options.directory.appendingPathComponent(isFolder ? destination : destination + ".gguf")
        do {
            if isFolder {
                try FileManager.default.copyItem(at: entry.path.resolvingSymlinksInPath(), to: target)
            } else {
                try FileManager.default.linkItem(at: entry.path.resolvingSymlinksInPath(), to: target)
            }
        } catch {
            do { try FileManager.default.copyItem(at: entry.path.resolvingSymlinksInPath(), to: target) } catch {
                throw CoreError.badRequest("cannot copy \(source) to \(destination): \(error.localizedDescription)")
            }
        }
    }
}

extension ModelHost {
    public func countPromptTokens(_ request: ChatRequest) async throws -> Int {
        let worker = try await worker(for: request.model)
        let (text, _) = try LocalProvider.renderPrompt(request, loaded: worker.loaded, name: worker.name)
        return worker.loaded.tokenize(text).count
    }

    public func contextLength(of name: String) async throws -> Int {
        try await worker(for: name).loaded.model.shape.contextLength
    }
}
