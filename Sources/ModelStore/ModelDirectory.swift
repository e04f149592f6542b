import Foundation

/// A `.gguf` file or a Hugging Face model folder in the model directory.
public struct LocalModel: Sendable, Hashable {
    /// The file name without `.gguf`; what `switchyard run NAME` takes.
    public let name: String
    /// The file name, e.g. `SmolLM2-135M-Instruct.Q4_1.gguf`.
    public let fileName: String
    /// The absolute path of the file.
    public let path: URL
    /// The size in bytes.
    public let size: Int64
    /// The catalogue entry this file belongs to, if it has a catalogue file name.
    public let catalogueName: String?

    public init(name: String, fileName: String, path: URL, size: Int64, catalogueName: String?) {
        self.name = name
        self.fileName = fileName
        self.path = path
        self.size = size
        self.catalogueName = catalogueName
    }
}

/// Where models live: `$SWITCHYARD_MODELS`, or `~/.switchyard/models`.
public enum ModelDirectory {
    /// The environment variable that overrides the model directory.
    public static let environmentVariable = "SWITCHYARD_MODELS"

    /// The model directory for this process's environment (not created; see `ensureExists`).
    public static var `default`: URL {
        location(environment: ProcessInfo.processInfo.environment)
    }

    /// The model directory for the given environment: `SWITCHYARD_MODELS` if set and not empty, else `~/.switchyard/models`.
    public static func location(environment: [String: String], home: URL? = nil) -> URL {
        if let value = environment[environmentVariable], !value.isEmpty {
            let expanded = (value as NSString).expandingTildeInPath
            return URL(fileURLWithPath: expanded, isDirectory: true).standardizedFileURL
        }
        let homeDirectory: URL
        if let home {
            homeDirectory = home
        } else if let value = environment["HOME"], !value.isEmpty {
            homeDirectory = URL(fileURLWithPath: value, isDirectory: true)
        } else {
            homeDirectory = FileManager.default.homeDirectoryForCurrentUser
        }
        return homeDirectory
            .appendingPathComponent(".switchyard", isDirectory: true)
            .appendingPathComponent("models", isDirectory: true)
    }

    /// Creates `directory` (and its parents) if it does not exist yet, and returns it.
    @discardableResult
    public static func ensureExists(_ directory: URL) throws -> URL {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw ModelStoreError.fileSystem(path: directory.path, reason: "exists but is not a directory")
            }
            return directory
        }
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw ModelStoreError.fileSystem(path: directory.path, reason: "cannot create the model directory: \(error.localizedDescription)")
        }
        return directory
    }

    /// The `.gguf` files and Hugging Face model folders in `directory` (hidden and partial ones left out), sorted by name.
    /// A missing or unreadable directory has none.
    public static func listModels(in directory: URL = ModelDirectory.default,
                                  catalogue: ModelCatalogue = .builtIn) -> [LocalModel] {
        let fileManager = FileManager.default
        guard let names = try? fileManager.contentsOfDirectory(atPath: directory.path) else { return [] }
        var models: [LocalModel] = []
        for fileName in names where !fileName.hasPrefix(".") {
            let url = directory.appendingPathComponent(fileName, isDirectory: true)
            guard isModelFolder(url) else { continue }
            models.append(LocalModel(name: fileName, fileName: fileName, path: url, size: folderSize(url),
                                     catalogueName: catalogue.entry(forFileName: fileName)?.name))
        }
        for fileName in names where !fileName.hasPrefix(".") && fileName.lowercased().hasSuffix(".gguf") {
            let url = directory.appendingPathComponent(fileName, isDirectory: false)
            guard let attributes = try? fileManager.attributesOfItem(atPath: url.path),
                  (attributes[.type] as? FileAttributeType) == .typeRegular
                    || (attributes[.type] as? FileAttributeType) == .typeSymbolicLink
            else { continue }
            var isDirectory: ObjCBool = false
            guard fileManager.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            // A LoRA adapter is attached to a model (`adapters:`), never served as one.
            guard !isLoRAAdapter(url) else { continue }
            let size = fileSize(url) ?? 0
            models.append(LocalModel(
                name: String(fileName.dropLast(".gguf".count)),
                fileName: fileName,
                path: url,
                size: size,
                catalogueName: catalogue.entry(forFileName: fileName)?.name
            ))
        }
        return models.sorted { $0.fileName.localizedStandardCompare($1.fileName) == .orderedAscending }
    }

    /// Whether a GGUF file says it is an adapter (`general.type` = `adapter`, as llama.cpp's `convert_lora_to_gguf.py`
    /// writes it among the first metadata entries): the key, GGUF's string type (8) and the 7-byte string, found in
    /// the file's first 64 KiB.
    public static func isLoRAAdapter(_ url: URL) -> Bool {
        guard let handle = try? FileHandle(forReadingFrom: url) else { return false }
        defer { try? handle.close() }
        guard let head = try? handle.read(upToCount: 1 << 16) else { return false }
        var pattern = Array("general.type".utf8) + [8, 0, 0, 0] + [7, 0, 0, 0, 0, 0, 0, 0]
        pattern += Array("adapter".utf8)
        return head.withUnsafeBytes { bytes in
            guard bytes.count >= pattern.count else { return false }
            for start in 0...(bytes.count - pattern.count) where bytes[start] == pattern[0] {
                var i = 1
                while i < pattern.count, bytes[start + i] == pattern[i] { i += 1 }
                if i == pattern.count { return true }
            }
            return false
        }
    }

    /// Whether `url` is a Hugging Face model folder: a folder with a `config.json` and safetensors weights
    /// (`model.safetensors`, or the shards' `model.safetensors.index.json`).
    public static func isModelFolder(_ url: URL) -> Bool {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else { return false }
        return ModelResolver.isRegularFile(url.appendingPathComponent("config.json"))
            && (ModelResolver.isRegularFile(url.appendingPathComponent("model.safetensors"))
                || ModelResolver.isRegularFile(url.appendingPathComponent("model.safetensors.index.json")))
    }

    /// The bytes of every file under a folder.
    public static func folderSize(_ url: URL) -> Int64 {
        guard let walker = FileManager.default.enumerator(at: url, includingPropertiesForKeys: [.fileSizeKey]) else { return 0 }
        var total: Int64 = 0
        for case let file as URL in walker {
            total += Int64((try? file.resourceValues(forKeys: [.fileSizeKey]))?.fileSize ?? 0)
        }
        return total
    }

    /// The size of the file at `url` (following symbolic links), if it can be read.
    static func fileSize(_ url: URL) -> Int64? {
        let path = url.resolvingSymlinksInPath().path
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return nil }
        if let number = attributes[.size] as? NSNumber { return number.int64Value }
        if let value = attributes[.size] as? Int64 { return value }
        if let value = attributes[.size] as? Int { return Int64(value) }
        if let value = attributes[.size] as? UInt64 { return Int64(clamping: value) }
        return nil
    }
}

/// `ModelDirectory.listModels(in:)` as a free function, for `switchyard list`.
public func listModels(in directory: URL = ModelDirectory.default) -> [LocalModel] {
    ModelDirectory.listModels(in: directory)
}
