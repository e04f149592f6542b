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
}
