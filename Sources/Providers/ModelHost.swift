import Core
import Foundation
import Inference
import ModelStore

/// Loaded models by name: loads lazily on first use (one load however many requests wait for it), unloads on request.
public actor ModelHost {
    public struct Options: Sendable {
        public var directory: URL
        public var threads: Int?
        public var contextLength: Int?
        /// Requests that may wait per model before new ones are refused with 429.
        public var queueCapacity: Int
        /// Niceness of the engine threads: above 0 so that HTTP event loops win the CPU when they need it.
        public var niceness: Int32
        /// Memory all loaded models may use together; loading past it unloads the least recently used idle ones.
        public var maxMemoryBytes: Int
        /// How long a model stays loaded after its last request (a request's `keep_alive` overrides it).
        public var keepAlive: Duration
        /// Models declared in configuration, by name; they come before files discovered in the directory.
        public var declared: [String: Declared]
        /// Models declared on the command line (`serve --preload PATH`): kept across profile switches, and overridden
        /// by a configuration that declares the same name.
        public var pinned: [String: Declared] = [:]
        /// Sequences each model generates at once (continuous batching); each has its own KV cache.
        public var parallel: Int
        public var kvCache: KVCacheType
        /// Memory for each model's KV caches (all its slots); the context per slot shrinks to fit (nil: no limit).
        public var kvMemoryBytes: Int?
        /// How Hugging Face folders of chat models are stored once converted (`serve --quantize`).
        public var quantize: HuggingFaceConversion.Quantization = .none
        /// The adapters of the model being loaded (from its declaration).
        var adapters: [AdapterSpec] = []
        public init(directory: URL = ModelDirectory.default, threads: Int? = nil, contextLength: Int? = nil, queueCapacity: Int = 128,
                    niceness: Int32 = 5, maxMemoryBytes: Int = ModelHost.defaultMemoryBudget, keepAlive: Duration = .seconds(300),
                    declared: [String: Declared] = [:], parallel: Int = 8, kvCache: KVCacheType = .f16, kvMemoryBytes: Int? = nil) {
            self.directory = directory; self.threads = threads; self.contextLength = contextLength; self.queueCapacity = queueCapacity
            self.niceness = niceness; self.maxMemoryBytes = maxMemoryBytes; self.keepAlive = keepAlive; self.declared = declared
            self.parallel = max(1, parallel)
            self.kvCache = kvCache
            self.kvMemoryBytes = kvMemoryBytes
        }
    }

    /// Half of physical memory.
    public static var defaultMemoryBudget: Int { Int(ProcessInfo.processInfo.physicalMemory / 2) }

    /// Memory a model will take before it is loaded: its file (mapped) and the caches its context needs.
    static func estimate(path: URL, contextLength: Int?, parallel: Int, kvMemoryBytes: Int?) -> Int {
        let size = ModelDirectory.isModelFolder(path) ? Int(ModelDirectory.folderSize(path))
            : (try? FileManager.default.attributesOfItem(atPath: path.resolvingSymlinksInPath().path)[.size] as? Int) ?? 0
        let generous = parallel * (contextLength ?? 4096) * 16 * 1024   // KV caches and buffers
        return size + min(generous, kvMemoryBytes.map { $0 + (64 << 20) } ?? generous)
    }

    /// A model declared in configuration (the registry), with its own settings.
    public struct Declared: Sendable, Equatable {
        public var source: String          // catalogue name, file name in the model directory, or path
        public var contextLength: Int?
        public var threads: Int?
        public var keepAlive: Duration?
        public var maxMemoryBytes: Int?
        public var defaults: SamplingSettings
        /// LoRA adapters attached at load; a relative path is in the model directory.
        public var adapters: [AdapterSpec]
        public init(source: String, contextLength: Int? = nil, threads: Int? = nil, keepAlive: Duration? = nil,
                    maxMemoryBytes: Int? = nil, defaults: SamplingSettings = SamplingSettings(), adapters: [AdapterSpec] = []) {
            self.source = source; self.contextLength = contextLength; self.threads = threads; self.keepAlive = keepAlive
            self.maxMemoryBytes = maxMemoryBytes; self.defaults = defaults; self.adapters = adapters
        }
    }

    /// A model the host can serve, loaded or not.
    public struct Entry: Sendable {
        public var name: String
        public var path: URL
        public var sizeBytes: Int64
        public var loaded: Bool
    }

    public let options: Options
    /// The declared models now: `options.declared`, until a profile switch replaces them (`redeclare`).
    private(set) var declared: [String: Declared]
    private(set) var workers: [String: EngineWorker] = [:]
    private var loading: [String: Task<EngineWorker, Error>] = [:]
    /// Loaded embedding models (BERT from GGUF or a Hugging Face folder), by name.
    private(set) var embedders: [String: EmbeddingWorker] = [:]
    private(set) var loadingEmbedders: [String: Task<EmbeddingWorker, Error>] = [:]
    /// Why each model's last load failed (cleared when one succeeds).
    private var failures: [String: String] = [:]

    public init(options: Options = Options()) {
        self.options = options
        self.declared = options.pinned.merging(options.declared) { _, configured in configured }
    }

    /// Replaces the declared models (a profile switch). A loaded model whose declaration changed or went is
    /// unloaded if idle, so that its next request loads it as now declared; a busy one finishes its requests
    /// and keeps its old settings until it is unloaded.
    public func redeclare(_ new: [String: Declared]) {
        let new = options.pinned.merging(new) { _, configured in configured }
        let changed = Set(declared.keys).union(new.keys).filter { declared[$0] != new[$0] }
        declared = new
        for name in changed { if let w = workers[name], w.isIdle { unload(name) } }
    }

    /// Memory a model would take if loaded (its file and default-sized caches), by catalogue name, file name or
    /// path; nil when it does not resolve to a file.
    public nonisolated func memoryEstimate(source: String) -> Int? {
        guard let path = try? ModelResolver.resolve(source, in: options.directory) else { return nil }
        return Self.estimate(path: path, contextLength: options.contextLength, parallel: options.parallel, kvMemoryBytes: options.kvMemoryBytes)
    }

    /// Models that can be served: pulled catalogue models by their catalogue name, other .gguf files by file name
    /// without the extension.
    public func available() -> [Entry] {
        var entries: [String: Entry] = [:]
        for m in listModels(in: options.directory) where ModelResolver.isInside(m.path, options.directory) {
            let name = m.catalogueName ?? m.name
            entries[name] = Entry(name: name, path: m.path, sizeBytes: m.size, loaded: workers[name] != nil || embedders[name] != nil)
        }
        for (name, d) in declared {
            guard let url = try? ModelResolver.resolve(d.source, in: options.directory) else { continue }
            let size = (try? FileManager.default.attributesOfItem(atPath: url.resolvingSymlinksInPath().path)[.size] as? Int64) ?? 0
            entries[name] = Entry(name: name, path: url, sizeBytes: size, loaded: workers[name] != nil || embedders[name] != nil)
        }
        return entries.values.sorted { $0.name < $1.name }
    }

    public func loadedWorkers() -> [EngineWorker] { workers.values.sorted { $0.name < $1.name } }

    /// Where a servable model stands: `loading`, `ready` (loaded, idle), `busy` (loaded, generating), `error` (its
    /// last load failed; `detail` says why) or `stopped` (not loaded).
    public struct Status: Sendable, Equatable {
        public var name: String
        public var state: String
        public var detail: String?
    }

    public func statuses() -> [Status] {
        available().map { e in
            if let w = workers[e.name] { return Status(name: e.name, state: w.isBusy ? "busy" : "ready") }
            if let w = embedders[e.name] { return Status(name: e.name, state: w.isBusy ? "busy" : "ready") }
            if loading[e.name] != nil || loadingEmbedders[e.name] != nil { return Status(name: e.name, state: "loading") }
            if let why = failures[e.name] { return Status(name: e.name, state: "error", detail: why) }
            return Status(name: e.name, state: "stopped")
        }
    }

    /// The worker for `name`, loading it first if needed. `name` may come from a client: it is a declared model
    /// (whose source, from configuration, may be any path) or resolved by ``ModelResolver/resolveServed(_:in:catalogue:)``
    /// — a catalogue name or a `.gguf` file inside the model directory, never a path.
    public func worker(for name: String) async throws -> EngineWorker {
        if let w = workers[name] { return w }
        if let pending = loading[name] { return try await pending.value }
        if let e = embedders[name], e.frames { throw Self.notForChat(name) }
        let (path, declared) = try resolve(name)
        // Another spelling of a file the host lists ("x.gguf" for "x"): one worker under the listed name, so a file
        // is never loaded twice.
        if declared == nil, let listed = available().first(where: { $0.path == path })?.name, listed != name {
            return try await worker(for: listed)
        }
        if Self.isEmbeddingModel(path) { throw Self.notForChat(name) }
        var o = options
        if let d = declared {
            o.contextLength = d.contextLength ?? o.contextLength
            o.threads = d.threads ?? o.threads
            o.adapters = d.adapters.map { spec in
                let expanded = (spec.path as NSString).expandingTildeInPath
                let path = expanded.hasPrefix("/") ? expanded : options.directory.appendingPathComponent(expanded).standardizedFileURL.path
                return AdapterSpec(path: path, scale: spec.scale)
            }
        }
        let estimate = Self.estimate(path: path, contextLength: o.contextLength, parallel: o.parallel, kvMemoryBytes: o.kvMemoryBytes)
        if let cap = declared?.maxMemoryBytes, estimate > cap {
            throw CoreError.modelLoadFailed(name, reason: "it needs about \(estimate >> 20) MiB, more than its max_memory of \(cap >> 20) MiB (lower its context_length or raise max_memory)")
        }
        try makeRoom(for: estimate, loading: name)
        let task = Task<EngineWorker, Error> {
            try await Self.loadOnThread(name: name, path: path.path, options: o)
        }
        loading[name] = task
        defer { loading[name] = nil }
        let worker: EngineWorker
        do {
            worker = try await task.value
            failures[name] = nil
        } catch {
            failures[name] = "\(error)"
            throw error
        }
        if let d = declared {
            worker.keepAlive = d.keepAlive
            worker.defaults = d.defaults
        } else if let d = ModelDefaults.read(for: path) {
            // Defaults that came with the file (an Ollama pull's parameters).
            worker.defaults = SamplingSettings(temperature: d.temperature, topP: d.top_p, topK: d.top_k, minP: d.min_p,
                                               repeatPenalty: d.repeat_penalty, maxTokens: d.max_tokens, stop: d.stop ?? [])
            worker.defaultSystem = d.system
        }
        workers[name] = worker
        return worker
    }

    func setLoadingEmbedder(_ name: String, _ task: Task<EmbeddingWorker, Error>?) { loadingEmbedders[name] = task }
    func addEmbedder(_ worker: EmbeddingWorker) { embedders[worker.name] = worker }
    public func loadedEmbedders() -> [EmbeddingWorker] { embedders.values.sorted { $0.name < $1.name } }

    /// The file or folder `name` stands for, and its declaration if it has one. `name` may come from a client: it is
    /// a declared model (whose source, from configuration, may be any path) or resolved by
    /// ``ModelResolver/resolveServed(_:in:catalogue:)``.
    func resolve(_ name: String) throws -> (URL, Declared?) {
        let declared = self.declared[name]
        do {
            if let declared { return (try ModelResolver.resolve(declared.source, in: options.directory), declared) }
            return (try ModelResolver.resolveServed(name, in: options.directory), nil)
        } catch {
            if let declared { throw CoreError.modelLoadFailed(name, reason: "its source '\(declared.source)': \(error)") }
            throw CoreError.unknownModel(name, available: available().map(\.name))
        }
    }

    /// Idle loaded models of both kinds, least recently used first: what may be unloaded.
    private var idleModels: [(name: String, memory: Int, lastUsed: Date)] {
        let chat = workers.values.filter(\.isIdle).map { ($0.name, $0.memoryBytes, $0.lastUsed) }
        let embed = embedders.values.filter(\.isIdle).map { ($0.name, $0.memoryBytes, $0.lastUsed) }
        return (chat + embed).sorted { $0.2 < $1.2 }
    }

    /// Unloads least-recently-used idle models until `bytes` more fit in the budget.
    func makeRoom(for bytes: Int, loading name: String) throws {
        var used = workers.values.map(\.memoryBytes).reduce(0, +) + embedders.values.map(\.memoryBytes).reduce(0, +)
        guard used + bytes > options.maxMemoryBytes else { return }
        for w in idleModels {
            unload(w.name)
            used -= w.memory
            FileHandle.standardError.write(Data("unloaded \(w.name) (least recently used) to make room for \(name)\n".utf8))
            if used + bytes <= options.maxMemoryBytes { return }
        }
        if used + bytes > options.maxMemoryBytes, !workers.isEmpty || !embedders.isEmpty {
            throw CoreError.overloaded(retryAfterSeconds: 5)
        }
    }

    /// Unloads models idle for longer than their keep-alive. The server calls this periodically.
    public func unloadExpired(now: Date = Date()) {
        let idle = workers.values.filter(\.isIdle).map { ($0.name, $0.keepAlive, $0.lastUsed) }
            + embedders.values.filter(\.isIdle).map { ($0.name, $0.keepAlive, $0.lastUsed) }
        for w in idle.map({ (name: $0.0, keepAlive: $0.1, lastUsed: $0.2) }) {
            let keep = w.keepAlive ?? options.keepAlive
            if keep < .zero { continue }
            let seconds = Double(keep.components.seconds) + Double(keep.components.attoseconds) / 1e18
            if now.timeIntervalSince(w.lastUsed) >= seconds {
                unload(w.name)
                FileHandle.standardError.write(Data("unloaded \(w.name) (idle past its keep-alive)\n".utf8))
            }
        }
    }

    /// Unloads `name`; returns whether it was loaded. The running request finishes first; queued ones are cancelled.
    @discardableResult
    public func unload(_ name: String) -> Bool {
        let e = embedders.removeValue(forKey: name)
        e?.stop()
        let w = workers.removeValue(forKey: name)
        w?.stop()
        return e != nil || w != nil
    }

    public func unloadAll() {
        for name in Array(workers.keys) + Array(embedders.keys) { unload(name) }
    }

    /// Loading maps the file and builds the tokenizer: done on its own thread, never on the cooperative pool.
    private static func loadOnThread(name: String, path: String, options: Options) async throws -> EngineWorker {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<EngineWorker, Error>) in
            let t = Thread {
                do {
                    var modelOptions = ModelOptions(contextLength: options.contextLength, threads: options.threads, niceness: options.niceness,
                                                    slots: options.parallel, kvCache: options.kvCache, kvMemoryBytes: options.kvMemoryBytes)
                    modelOptions.quantize = options.quantize
                    modelOptions.adapters = options.adapters
                    let loaded = try LoadedModel(path: path, options: modelOptions)
                    c.resume(returning: EngineWorker(name: name, path: path, loaded: loaded, queueCapacity: options.queueCapacity,
                                                     niceness: options.niceness))
                } catch {
                    c.resume(throwing: CoreError.modelLoadFailed(name, reason: "\(error)"))
                }
            }
            t.name = "load:\(name)"
            t.start()
        }
    }
}
