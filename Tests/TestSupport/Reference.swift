import Foundation

/// Locates the reference data (what llama.cpp and Jinja2 answered, kept in the repository) and the real models.
public enum Reference {
    /// The repository root, derived from this file's location.
    public static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// `Tests/Fixtures/reference` in the repository (its README says how each file was made), or
    /// `SWITCHYARD_REFERENCE`.
    public static var directory: URL {
        if let env = ProcessInfo.processInfo.environment["SWITCHYARD_REFERENCE"] { return URL(fileURLWithPath: env) }
        return repositoryRoot.appendingPathComponent("Tests/Fixtures/reference")
    }

    public static func file(_ relative: String) -> URL { directory.appendingPathComponent(relative) }

    /// The model directory the CLI uses (`SWITCHYARD_MODELS` or `~/.switchyard/models`).
    public static var modelDirectory: URL {
        if let env = ProcessInfo.processInfo.environment["SWITCHYARD_MODELS"] { return URL(fileURLWithPath: env) }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".switchyard/models")
    }

    public struct MissingModel: Error, CustomStringConvertible {
        public let path: String
        /// The catalogue name to pull.
        public let model: String
        public init(path: String, model: String = "smollm2") {
            self.path = path
            self.model = model
        }
        public var description: String {
            "model file \(path) is missing: run `make pull` (switchyard pull \(model)) first"
        }
    }

    /// Path of SmolLM2-135M-Instruct Q4_1; throws with instructions if it has not been pulled.
    public static func smolLM2() throws -> String {
        try model("SmolLM2-135M-Instruct.Q4_1.gguf", pulledAs: "smollm2")
    }

    /// Path of Gemma 3 270M Q4_K_M; throws with instructions if it has not been pulled.
    public static func gemma3() throws -> String {
        try model("gemma-3-270m-q4_k_m.gguf", pulledAs: "gemma3-270m")
    }

    /// Path of the all-MiniLM-L6-v2 folder (safetensors, tokenizer.json); throws with instructions if it has not been pulled.
    public static func miniLM() throws -> String {
        try model("all-MiniLM-L6-v2", pulledAs: "minilm")
    }

    private static func model(_ fileName: String, pulledAs name: String) throws -> String {
        let url = modelDirectory.appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: url.path) else { throw MissingModel(path: url.path, model: name) }
        return url.path
    }

    /// Parses a JSON reference file.
    public static func json(_ relative: String) throws -> Any {
        let data = try Data(contentsOf: file(relative))
        return try JSONSerialization.jsonObject(with: data)
    }
}
