import Foundation

/// Locates the shared reference data and the real model for tests.
public enum Reference {
    /// The repository root, derived from this file's location.
    public static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// `../shared/reference` beside the checkout, or `SWITCHYARD_REFERENCE`.
    public static var directory: URL {
        if let env = ProcessInfo.processInfo.environment["SWITCHYARD_REFERENCE"] { return URL(fileURLWithPath: env) }
        return repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/reference")
    }

    public static func file(_ relative: String) -> URL { directory.appendingPathComponent(relative) }

    /// The model directory the CLI uses (`SWITCHYARD_MODELS` or `~/.switchyard/models`).
    public static var modelDirectory: URL {
        if let env = ProcessInfo.processInfo.environment["SWITCHYARD_MODELS"] { return URL(fileURLWithPath: env) }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".switchyard/models")
    }

    public struct MissingModel: Error, CustomStringConvertible {
        public let path: String
        public init(path: String) { self.path = path }
        public var description: String { "model file \(path) is missing: run `make pull` (switchyard pull smollm2) first" }
    }

    /// Path of SmolLM2-135M-Instruct Q4_1; throws with instructions if it has not been pulled.
    public static func smolLM2() throws -> String {
        let url = modelDirectory.appendingPathComponent("SmolLM2-135M-Instruct.Q4_1.gguf")
        guard FileManager.default.fileExists(atPath: url.path) else { throw MissingModel(path: url.path) }
        return url.path
    }

    /// Parses a JSON reference file.
    public static func json(_ relative: String) throws -> Any {
        let data = try Data(contentsOf: file(relative))
        return try JSONSerialization.jsonObject(with: data)
    }
}
