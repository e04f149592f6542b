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
        if let url = try pulledFile(trimmed, in: directory, catalogue: catalogue, inside: false) { return url }

        if !trimmed.isEmpty, !trimmed.contains("/"), trimmed != ".", trimmed != ".." {
            var candidates = [trimmed]
            if !trimmed.lowercased().hasSuffix(".gguf") { candidates.append(trimmed + ".gguf") }
            for candidate in candidates {
                let url = directory.appendingPathComponent(candidate, isDirectory: false)
                if isRegularFile(url) { return url }
            }
            let folder = directory.appendingPathComponent(trimmed, isDirectory: true)
            if ModelDirectory.isModelFolder(folder) { return folder }
        }

        if !trimmed.isEmpty {
            let expanded = (trimmed as NSString).expandingTildeInPath
            let url = URL(fileURLWithPath: expanded, isDirectory: false).standardizedFileURL
            if isRegularFile(url) { return url }
            if ModelDirectory.isModelFolder(url) { return url }
            // A path (it has a '/'): say what is wrong with it rather than list the catalogue.
            if trimmed.contains("/") {
                var isDirectory: ObjCBool = false
                let exists = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory)
                throw ModelStoreError.fileSystem(path: url.path, reason: !exists ? "no such file" : isDirectory.boolValue ? "is a folder without config.json and model.safetensors, not a model folder" : "not a regular file")
            }
        }

        throw ModelStoreError.unknownModel(
            name: name,
            catalogue: catalogue.names,
            localFiles: ModelDirectory.listModels(in: directory, catalogue: catalogue).map(\.fileName),
            directory: directory.path
        )
    }

    /// Resolves a model name that arrived from outside (an HTTP request): only what the server serves, never a path.
    ///
    /// Accepted: a catalogue name or alias (its file must have been pulled), or the name of a `.gguf` file in
    /// `directory`, with or without the extension, whose real location (symbolic links followed) is inside
    /// `directory`. Refused, as ``ModelStoreError/unknownModel(name:catalogue:localFiles:directory:)`` whatever the
    /// reason so that nothing is learnt about files elsewhere: anything with `/`, `\\` or a NUL, names starting with
    /// `.` or `~`, other file types, and links that lead out of the directory. The CLI's ``resolve(_:in:catalogue:)``
    /// also takes paths; this is the stricter function the server uses.
    public static func resolveServed(_ name: String,
                                     in directory: URL = ModelDirectory.default,
                                     catalogue: ModelCatalogue = .builtIn) throws -> URL {
        let trimmed = name.trimmingCharacters(in: .whitespaces)
        if let url = try pulledFile(trimmed, in: directory, catalogue: catalogue, inside: true) { return url }
        if isPlainFileName(trimmed) {
            let fileName = trimmed.lowercased().hasSuffix(".gguf") ? trimmed : trimmed + ".gguf"
            let url = directory.appendingPathComponent(fileName, isDirectory: false)
            if isRegularFile(url), isInside(url, directory) { return url }
            let folder = directory.appendingPathComponent(trimmed, isDirectory: true)
            if ModelDirectory.isModelFolder(folder), isInside(folder, directory) { return folder }
        }
        throw ModelStoreError.unknownModel(
            name: name,
            catalogue: catalogue.names,
            localFiles: ModelDirectory.listModels(in: directory, catalogue: catalogue).filter { isInside($0.path, directory) }.map(\.fileName),
            directory: directory.path
        )
    }

    /// The file of the catalogue entry `name` names in `directory` (nil: not a catalogue name); throws
    /// ``ModelStoreError/modelNotPulled(name:fileName:directory:)`` when it is not there (or, with `inside`, when its
    /// real location is outside the directory).
    private static func pulledFile(_ name: String, in directory: URL, catalogue: ModelCatalogue, inside: Bool) throws -> URL? {
        guard let entry = catalogue.entry(named: name) else { return nil }
        let url = directory.appendingPathComponent(entry.fileName, isDirectory: entry.folder != nil)
        let present = entry.folder == nil ? isRegularFile(url) : ModelDirectory.isModelFolder(url)
        guard present, !inside || isInside(url, directory) else {
            throw ModelStoreError.modelNotPulled(name: entry.name, fileName: entry.fileName, directory: directory.path)
        }
        return url
    }

    /// A name that can only mean a file directly in a directory: not empty, no path separators or NUL, not hidden
    /// (which also rules out `.` and `..`), not home-relative.
    public static func isPlainFileName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first != ".", first != "~" else { return false }
        return !name.unicodeScalars.contains { $0 == "/" || $0 == "\\" || $0 == "\u{0}" }
    }

    /// Whether `url`, with every symbolic link followed, lies inside `directory` (itself resolved the same way).
    public static func isInside(_ url: URL, _ directory: URL) -> Bool {
        guard let file = realPath(url.path), let base = realPath(directory.path) else { return false }
        let prefix = base.hasSuffix("/") ? base : base + "/"
        return file.hasPrefix(prefix)
    }

    /// `realpath(3)`: the absolute path with every link, `.` and `..` resolved; nil when it does not exist.
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Whether `url` names a regular file (following symbolic links).
    static func isRegularFile(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && !isDirectory.boolValue
    }
}
