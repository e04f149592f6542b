import Core
import Foundation
import GGUF
import Inference
import ModelStore
import Tokenizers

extension ModelHost {
    /// Whether the file or folder holds an embedding model (BERT in GGUF, or a Hugging Face folder of an embedding
    /// architecture) rather than a generator.
    nonisolated static func isEmbeddingModel(_ path: URL) -> Bool {
        if ModelDirectory.isModelFolder(path) { return HuggingFaceFolder.isEmbedding(path) }
        guard let file = try? GGUFFile(path: path.path) else { return false }
        return EmbeddingModels.isEmbedding(file)
    }

    static func notForChat(_ name: String) -> CoreError {
        .badRequest("'\(name)' is an embedding model: it answers /v1/embeddings (or /api/embed), not chat or completions")
    }

    static func notForEmbeddings(_ name: String) -> CoreError {
        .badRequest("'\(name)' generates text and has no embeddings here; use an embedding model (e.g. `switchyard pull minilm`)")
    }

    /// The embedding worker for `name`, loading it first if needed (one load however many requests wait for it).
    public func embedder(for name: String) async throws -> EmbeddingWorker {
        if let w = embedders[name] { return w }
        if let pending = loadingEmbedders[name] { return try await pending.value }
        if workers[name] != nil { throw Self.notForEmbeddings(name) }
        let (path, declared) = try resolve(name)
        if declared == nil, let listed = available().first(where: { $0.path == path })?.name, listed != name {
            return try await embedder(for: listed)
        }
        guard Self.isEmbeddingModel(path) else { throw Self.notForEmbeddings(name) }
        var o = options
        if let d = declared { o.threads = d.threads ?? o.threads }
        let estimate = Self.estimate(path: path, contextLength: 512, parallel: 1, kvMemoryBytes: 0)
        try makeRoom(for: estimate, loading: name)
        let task = Task<EmbeddingWorker, Error> {
            try await Self.loadEmbedderOnThread(name: name, path: path, options: o)
        }
        setLoadingEmbedder(name, task)
        defer { setLoadingEmbedder(name, nil) }
        let worker = try await task.value
        if let keep = declared?.keepAlive { worker.keepAlive = keep }
        addEmbedder(worker)
        return worker
    }

    private static func loadEmbedderOnThread(name: String, path: URL, options: Options) async throws -> EmbeddingWorker {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<EmbeddingWorker, Error>) in
            let t = Thread {
                do {
                    let modelOptions = ModelOptions(threads: options.threads, niceness: options.niceness)
                    let model: any EmbeddingModel
                    let tokenizer: any Tokenizer
                    if ModelDirectory.isModelFolder(path) {
                        (model, tokenizer) = try HuggingFaceFolder.loadEmbedding(path, options: modelOptions)
                    } else {
                        let file = try GGUFFile(path: path.path)
                        tokenizer = try TokenizerFactory.load(from: file)
                        model = try EmbeddingModels.load(file, options: modelOptions)
                    }
                    c.resume(returning: EmbeddingWorker(name: name, path: path.path, model: model, tokenizer: tokenizer,
                                                        queueCapacity: options.queueCapacity, niceness: options.niceness))
                } catch {
                    c.resume(throwing: CoreError.modelLoadFailed(name, reason: "\(error)"))
                }
            }
            t.name = "load:\(name)"
            t.start()
        }
    }
}
