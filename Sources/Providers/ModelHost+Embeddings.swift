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
        .badRequest("'\(name)' is a Hugging Face folder of an architecture the engine neither embeds nor generates with")
    }

    /// The embedding worker for `name`, loading it first if needed (one load however many requests wait for it).
    public func embedder(for name: String) async throws -> EmbeddingWorker {
        if let w = embedders[name] { return w }
        if let pending = loadingEmbedders[name] { return try await pending.value }
        let (path, declared) = try resolve(name)
        if declared == nil, let listed = available().first(where: { $0.path == path })?.name, listed != name {
            return try await embedder(for: listed)
        }
        if ModelDirectory.isModelFolder(path), !Self.isEmbeddingModel(path), !HuggingFaceConversion.isChat(path) {
            throw Self.notForEmbeddings(name)
        }
        var o = options
        if let d = declared {
            o.threads = d.threads ?? o.threads
            o.contextLength = d.contextLength ?? o.contextLength
        }
        let estimate = Self.estimate(path: path, contextLength: o.contextLength, parallel: 1, kvMemoryBytes: o.kvMemoryBytes)
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
                    let modelOptions = ModelOptions(contextLength: options.contextLength, threads: options.threads, niceness: options.niceness,
                                                    kvCache: options.kvCache, kvMemoryBytes: options.kvMemoryBytes)
                    let model: any EmbeddingModel
                    let tokenizer: any Tokenizer
                    var frames = true
                    if ModelDirectory.isModelFolder(path), HuggingFaceFolder.isEmbedding(path) {
                        (model, tokenizer) = try HuggingFaceFolder.loadEmbedding(path, options: modelOptions)
                    } else {
                        // a chat model's folder embeds from its conversion, as its chat worker generates from it
                        let gguf = ModelDirectory.isModelFolder(path)
                            ? try HuggingFaceConversion.convertedFile(folder: path, quantize: options.quantize) : path.path
                        let file = try GGUFFile(path: gguf)
                        tokenizer = try TokenizerFactory.load(from: file)
                        if EmbeddingModels.isEmbedding(file) {
                            model = try EmbeddingModels.load(file, options: modelOptions)
                        } else {
                            // a generator used as an embedder (last-token pooling), beside any chat worker of the same file
                            model = try DecoderEmbedder(file, options: modelOptions)
                            frames = false
                        }
                    }
                    c.resume(returning: EmbeddingWorker(name: name, path: path.path, model: model, tokenizer: tokenizer,
                                                        queueCapacity: options.queueCapacity, niceness: options.niceness, frames: frames))
                } catch {
                    c.resume(throwing: CoreError.modelLoadFailed(name, reason: "\(error)"))
                }
            }
            t.name = "load:\(name)"
            t.start()
        }
    }
}
