import Foundation

/// Turns the MODEL argument of the CLI into the path of a `.gguf` file.
public enum ModelResolver {
    /// Resolves `name`, trying in order:
    /// 1. a catalogue name or alias → its file in `directory` (``ModelStoreError/modelNotPulled(name:fileName:directory:)``
    ///    if it has not been pulled),
    /// 2. a file name in `directory`, with or without `.gguf`,
    /// 3. a path to a file (absolute, `~/…`, or relative to the working directory).
    ///
    /// Anything else throws ``ModelStoreError/unknownModel(name:catalogue:localFiles:directory:)``, which lists the
    /// catalogue names and the `.gguf` files present.
    public static func resolve(_ name: String,
                               in directory: URL = ModelDirectory.default,
                               catalogue: ModelCatalogue = .builtIn) throws -> URL {
        let trimmed = name.trimmingCharacters(in: .whitespaces)
        if let entry = catalogue.entry(named: trimmed) {
            let url = directory.appendingPathComponent(entry.fileName, isDirectory: false)
            guard isRegularFile(url) else {
                throw ModelStoreError.modelNotPulled(name: entry.name, fileName: entry.fileName, directory: directory.path)
            }
            return url
        }

        if !trimmed.isEmpty, !trimmed.contains("/"), trimmed != ".", trimmed != ".." {
            var candidates = [trimmed]
            if !trimmed.lowercased().hasSuffix(".gguf") { candidates.append(trimmed + ".gguf") }
            for candidate in candidates {
                let url = directory.appendingPathComponent(candidate, isDirectory: false)
                if isRegularFile(url) { return url }
            }
        }

        if !trimmed.isEmpty {
            let expanded = (trimmed as NSString).expandingTildeInPath
            let url = URL(fileURLWithPath: expanded, isDirectory: false).standardizedFileURL
            if isRegularFile(url) { return url }
        }

        throw ModelStoreError.unknownModel(
            name: name,
            catalogue: catalogue.names,
            localFiles: ModelDirectory.listModels(in: directory, catalogue: catalogue).map(\.fileName),
            directory: directory.path
        )
    }

    /// Whether `url` names a regular file (following symbolic links).
    static func isRegularFile(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && !isDirectory.boolValue
    }
}
