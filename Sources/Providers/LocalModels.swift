import Core
import Foundation

/// What the server's surfaces need of the local models — list, load, unload, states, memory — in plain values, so
/// that they know nothing of the engine, its workers or the GGUF format. `ModelHost` is the implementation.
public protocol LocalModels: Sendable {
    /// Every model that can be served, loaded or not, with what its file says.
    func list() async -> [LocalModelInfo]
    /// The models loaded now, by name.
    func loaded() async -> [LoadedModelInfo]
    /// Where each servable model stands (`loading`, `ready`, `busy`, `error`, `stopped`).
    func statuses() async -> [ModelHost.Status]
    /// Loads `name` (a name the server serves) if it is not loaded; `keepAlive` replaces how long it stays loaded.
    func load(_ name: String, keepAlive: Duration?) async throws -> LoadedModelInfo
    /// Unloads `name`; whether it was loaded. Its running requests finish first; queued ones are cancelled.
    func unload(_ name: String) async -> Bool
    /// Cancels every generation now (the end of a graceful shutdown).
    func cancelAll() async
    /// What a model's file says: its chat template, architecture, metadata (Ollama's `/api/show`).
    func details(_ name: String) async throws -> ModelDetails
    /// Fetches a catalogue model or a URL into the model directory, reporting progress; returns the name it is
    /// served under.
    func pull(_ spec: String, progress: @escaping @Sendable (PullReport) -> Void) async throws -> String
    /// Unloads `name` and removes its file from the model directory.
    func delete(_ name: String) async throws
    /// Serves the file of `source` also under `destination` (a link in the model directory, no second copy).
    func copy(_ source: String, to destination: String) async throws
    /// The prompt tokens `request` would take on its (local) model: rendered with the model's template, tokenized.
    func countPromptTokens(_ request: ChatRequest) async throws -> Int
    /// The context (prompt and answer, in tokens) a local model runs with, loading it if needed; `CoreError.unknownModel`
    /// for a name no local model has.
    func contextLength(of name: String) async throws -> Int
    /// Loads `name` if needed and sets its adapters' default scales (the listed ones, the others 0), as llama-server's
    /// `POST /lora-adapters`; nil leaves them. Returns the model with its adapters.
    func adapters(of name: String, setting scales: [AdapterSelection]?) async throws -> LoadedModelInfo
}

/// What a model's file says, for `/api/show`.
public struct ModelDetails: Sendable, Equatable {
    public var name: String
    public var template: String?
    public var architecture: String?
    public var quantization: String?
    public var parameterCount: Int?
    public var contextLength: Int?
    public var sizeBytes: Int64
    /// Scalar metadata (`general.*`, `<architecture>.*`, `tokenizer.ggml.model`…) as text, arrays left out.
    public var metadata: [String: String]
    /// Sampling defaults declared for the model, as Ollama's `parameters` lines.
    public var parameters: [String: String]
    public init(name: String, template: String?, architecture: String?, quantization: String?, parameterCount: Int?,
                contextLength: Int?, sizeBytes: Int64, metadata: [String: String], parameters: [String: String]) {
        self.name = name; self.template = template; self.architecture = architecture; self.quantization = quantization
        self.parameterCount = parameterCount; self.contextLength = contextLength; self.sizeBytes = sizeBytes
        self.metadata = metadata; self.parameters = parameters
    }
}

/// One step of a pull, as a surface reports it.
public struct PullReport: Sendable, Equatable {
    /// `downloading`, `extracting`, `verifying`, `already present`.
    public var phase: String
    public var file: String
    public var done: Int64
    public var total: Int64?
    public init(phase: String, file: String, done: Int64, total: Int64?) {
        self.phase = phase; self.file = file; self.done = done; self.total = total
    }
}

/// A servable model as the model list shows it.
public struct LocalModelInfo: Sendable, Equatable {
    public var name: String
    public var path: String
    public var sizeBytes: Int64
    /// The most common weight type of its matrices (`Q4_K`, `Q8_0`…), when the file can be read.
    public var quantization: String?
    public var architecture: String?
    /// The context it runs with when loaded, else the one it was trained for.
    public var contextLength: Int?
    /// Set when loaded.
    public var loaded: LoadedModelInfo?
}

/// A loaded model's state.
public struct LoadedModelInfo: Sendable, Equatable {
    public var name: String
    public var busy: Bool
    public var queueLength: Int
    public var memoryBytes: Int
    /// Its LoRA adapters, by id.
    public var adapters: [AdapterInfo] = []
}

/// A LoRA adapter of a loaded model: its id in requests' `lora` lists, where it came from, its default scale.
public struct AdapterInfo: Sendable, Equatable {
    public var id: Int
    public var path: String
    public var scale: Double
    public var rank: Int
    public var matrices: Int
}
