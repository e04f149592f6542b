import Core
import Foundation
import GGUF

extension ModelHost: LocalModels {
    public func list() async -> [LocalModelInfo] {
        let workers = Dictionary(uniqueKeysWithValues: loadedWorkers().map { ($0.name, $0) })
        return available().map { e in
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

    public func loaded() async -> [LoadedModelInfo] { loadedWorkers().map(Self.info) }

    public func load(_ name: String, keepAlive: Duration?) async throws -> LoadedModelInfo {
        let worker = try await worker(for: name)
        if let keepAlive { worker.keepAlive = keepAlive }
        return Self.info(worker)
    }

    public func cancelAll() async {
        for w in loadedWorkers() { w.cancelAll() }
    }

    static func info(_ w: EngineWorker) -> LoadedModelInfo {
        LoadedModelInfo(name: w.name, busy: w.isBusy, queueLength: w.queueLength, memoryBytes: w.memoryBytes)
    }

    /// The most common weight type among the 2-D tensors, e.g. "Q4_1".
    static func quantization(_ f: GGUFFile) -> String? {
        var counts: [String: Int] = [:]
        for t in f.tensors where t.dimensions.count >= 2 { counts[t.type.name, default: 0] += t.elementCount }
        return counts.max { $0.value < $1.value }?.key
    }
}
