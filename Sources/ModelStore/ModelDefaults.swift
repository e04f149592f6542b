import Foundation

/// Sampling defaults that travel with a model file: `NAME.defaults.json` beside `NAME.gguf`, written when a pull
/// brings them (Ollama's `params` and `system` layers) and used for requests that leave a setting unset, as a
/// declared model's `defaults:` are (a declaration in the configuration wins).
public struct ModelDefaults: Codable, Equatable, Sendable {
    public var temperature: Double?
    public var top_p: Double?
    public var top_k: Int?
    public var min_p: Double?
    public var repeat_penalty: Double?
    public var max_tokens: Int?
    public var stop: [String]?
    /// The system message for requests that bring none (Ollama's SYSTEM).
    public var system: String?

    public init(temperature: Double? = nil, top_p: Double? = nil, top_k: Int? = nil, min_p: Double? = nil,
                repeat_penalty: Double? = nil, max_tokens: Int? = nil, stop: [String]? = nil, system: String? = nil) {
        self.temperature = temperature; self.top_p = top_p; self.top_k = top_k; self.min_p = min_p
        self.repeat_penalty = repeat_penalty; self.max_tokens = max_tokens; self.stop = stop; self.system = system
    }

    public var isEmpty: Bool { self == ModelDefaults() }

    /// The file beside `model` (`NAME.gguf` → `NAME.defaults.json`; a folder `Qwen2.5-0.5B` → `Qwen2.5-0.5B.defaults.json`).
    public static func file(for model: URL) -> URL {
        if model.pathExtension.lowercased() == "gguf" { return model.deletingPathExtension().appendingPathExtension("defaults.json") }
        return model.deletingLastPathComponent().appendingPathComponent(model.lastPathComponent + ".defaults.json")
    }

    /// The defaults beside `model`, if it has a readable file of them; for a Hugging Face folder without one, its
    /// `generation_config.json`'s sampling settings.
    public static func read(for model: URL) -> ModelDefaults? {
        if let data = try? Data(contentsOf: file(for: model)), data.count < 1 << 20 {
            return try? JSONDecoder().decode(ModelDefaults.self, from: data)
        }
        guard let data = try? Data(contentsOf: model.appendingPathComponent("generation_config.json")), data.count < 1 << 20,
              let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return nil }
        let defaults = ModelDefaults(generationConfig: object)
        return defaults.isEmpty ? nil : defaults
    }

    /// From a Hugging Face `generation_config.json`: temperature, top_p, top_k, min_p and repetition_penalty, when
    /// `do_sample` is true (transformers uses them only then; without it generation is greedy, and the request's own
    /// settings or the server's are left to decide).
    public init(generationConfig object: [String: Any]) {
        self.init()
        guard object["do_sample"] as? Bool == true else { return }
        func number(_ key: String) -> Double? { (object[key] as? NSNumber)?.doubleValue }
        temperature = number("temperature"); top_p = number("top_p"); min_p = number("min_p")
        repeat_penalty = number("repetition_penalty")
        top_k = number("top_k").flatMap { $0 > 0 ? Int($0) : nil }
    }

    public func write(for model: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do { try encoder.encode(self).write(to: Self.file(for: model), options: .atomic) } catch {
            throw ModelStoreError.fileSystem(path: Self.file(for: model).path, reason: error.localizedDescription)
        }
    }

    /// From Ollama's `params` layer (its Modelfile's PARAMETER lines as JSON): the settings this engine has;
    /// `num_predict` is `max_tokens`, and resource settings (`num_ctx`, `num_gpu`, …) are left out.
    public init(ollamaParams object: [String: Any]) {
        func number(_ key: String) -> Double? { (object[key] as? NSNumber)?.doubleValue }
        temperature = number("temperature"); top_p = number("top_p"); min_p = number("min_p")
        repeat_penalty = number("repeat_penalty")
        top_k = number("top_k").map { Int($0) }
        max_tokens = number("num_predict").flatMap { $0 > 0 ? Int($0) : nil }
        stop = (object["stop"] as? [String]) ?? (object["stop"] as? String).map { [$0] }
    }
}
