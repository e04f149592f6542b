import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Pull specs that name a model in a registry: `ollama:NAME[:TAG]` (Ollama's registry, `NAMESPACE/NAME` for
/// others than `library`) and `hf:OWNER/REPO[:QUANT or FILE.gguf]` (a GGUF file of a Hugging Face repository).
public enum RegistrySpec: Equatable, Sendable {
    case ollama(namespace: String, name: String, tag: String)
    case huggingFace(repo: String, selector: String?)

    /// The spec, or nil when `text` does not start with `ollama:` or `hf:`; a malformed one throws.
    public static func parse(_ text: String) throws -> RegistrySpec? {
        func part(_ s: Substring) -> Bool {
            !s.isEmpty && s.count <= 96 && s.first != "." && s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
        }
        if text.hasPrefix("ollama:") {
            let rest = text.dropFirst("ollama:".count)
            let pieces = rest.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            let path = pieces[0].split(separator: "/", omittingEmptySubsequences: false)
            let tag = pieces.count > 1 ? pieces[1] : "latest"
            guard (1...2).contains(path.count), path.allSatisfy(part), part(tag) else {
                throw ModelStoreError.invalidPullSpec(spec: text, expected: "ollama:NAME[:TAG] or ollama:NAMESPACE/NAME[:TAG], e.g. ollama:smollm2:135m")
            }
            return .ollama(namespace: path.count == 2 ? String(path[0]) : "library", name: String(path.last ?? ""), tag: String(tag))
        }
        if text.hasPrefix("hf:") {
            let rest = text.dropFirst("hf:".count)
            let pieces = rest.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            let path = pieces[0].split(separator: "/", omittingEmptySubsequences: false)
            guard path.count == 2, path.allSatisfy(part), pieces.count == 1 || !pieces[1].isEmpty else {
                throw ModelStoreError.invalidPullSpec(spec: text, expected: "hf:OWNER/REPO, hf:OWNER/REPO:Q4_K_M or hf:OWNER/REPO:FILE.gguf")
            }
            return .huggingFace(repo: String(pieces[0]), selector: pieces.count > 1 ? String(pieces[1]) : nil)
        }
        return nil
    }
}

/// Reading registries: JSON documents (manifests, file lists) over HTTPS (or HTTP on loopback, for tests), with their
/// refusals turned into errors that say what to do.
enum RegistryHTTP {
    static func json(_ url: URL, headers: [String: String], what: String) async throws -> Any {
        let data = try await self.data(url, headers: headers, what: what)
        guard let value = try? JSONSerialization.jsonObject(with: data) else {
            throw ModelStoreError.downloadFailed(url: url.absoluteString, reason: "the answer is not JSON")
        }
        return value
    }

    /// A small document (at most 16 MiB).
    static func data(_ url: URL, headers: [String: String], what: String) async throws -> Data {
        _ = try DownloadURL.validateScheme(url)
        var request = URLRequest(url: url)
        request.timeoutInterval = 60
        for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
        let (data, response): (Data, URLResponse)
        do { (data, response) = try await URLSession.shared.data(for: request) } catch {
            throw ModelStoreError.downloadFailed(url: url.absoluteString, reason: error.localizedDescription)
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        switch status {
        case 200..<300: break
        case 401, 403: throw ModelStoreError.accessDenied(url: url.absoluteString, status: status)
        case 404: throw ModelStoreError.notInRegistry(what: what, url: url.absoluteString)
        default: throw ModelStoreError.httpStatus(url: url.absoluteString, status: status)
        }
        guard data.count <= 16 << 20 else {
            throw ModelStoreError.downloadFailed(url: url.absoluteString, reason: "the answer is larger than 16 MiB")
        }
        return data
    }
}

/// Where registry pulls go, and the Hugging Face token.
public struct RegistryEndpoints: Sendable, Equatable {
    /// Ollama's registry (`SWITCHYARD_OLLAMA_REGISTRY` for another, e.g. a mirror).
    public var ollama: String
    /// Hugging Face (`HF_ENDPOINT`, as its own tools read it).
    public var huggingFace: String
    /// Sent to Hugging Face for gated and private repositories (`HF_TOKEN`, or `HUGGING_FACE_HUB_TOKEN`).
    public var huggingFaceToken: String?

    public init(ollama: String = "https://registry.ollama.ai", huggingFace: String = "https://huggingface.co", huggingFaceToken: String? = nil) {
        self.ollama = ollama; self.huggingFace = huggingFace; self.huggingFaceToken = huggingFaceToken
    }

    /// The endpoints this process's environment names.
    public static var fromEnvironment: RegistryEndpoints {
        let env = ProcessInfo.processInfo.environment
        func value(_ name: String) -> String? { env[name].flatMap { $0.isEmpty ? nil : $0 } }
        return RegistryEndpoints(ollama: value("SWITCHYARD_OLLAMA_REGISTRY") ?? "https://registry.ollama.ai",
                                 huggingFace: value("HF_ENDPOINT") ?? "https://huggingface.co",
                                 huggingFaceToken: value("HF_TOKEN") ?? value("HUGGING_FACE_HUB_TOKEN"))
    }
}

extension ModelPuller {
    /// Pulls a registry's model into the model directory, verified against the registry's SHA-256.
    public func pull(registry spec: RegistrySpec, progress: @escaping @Sendable (PullProgress) -> Void) async throws -> PullResult {
        switch spec {
        case .ollama(let namespace, let name, let tag): return try await pullOllama(namespace: namespace, name: name, tag: tag, progress: progress)
        case .huggingFace(let repo, let selector): return try await pullHuggingFace(repo: repo, selector: selector, progress: progress)
        }
    }

    /// The model layer of an Ollama manifest (its GGUF file), by digest, saved as `NAME.gguf` (`NAME-TAG.gguf` for
    /// a tag other than `latest`).
    func pullOllama(namespace: String, name: String, tag: String, progress: @escaping @Sendable (PullProgress) -> Void) async throws -> PullResult {
        let base = registries.ollama.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        let spec = "ollama:\(namespace == "library" ? "" : namespace + "/")\(name):\(tag)"
        guard let manifestURL = URL(string: "\(base)/v2/\(namespace)/\(name)/manifests/\(tag)") else {
            throw ModelStoreError.invalidURL(url: base, reason: "not a registry URL")
        }
        let manifest = try await RegistryHTTP.json(manifestURL, headers: ["Accept": "application/vnd.docker.distribution.manifest.v2+json"],
                                                   what: spec)
        let layers = (manifest as? [String: Any])?["layers"] as? [[String: Any]] ?? []
        guard let model = layers.first(where: { $0["mediaType"] as? String == "application/vnd.ollama.image.model" }),
              let digest = model["digest"] as? String else {
            throw ModelStoreError.notInRegistry(what: "a model layer in \(spec)'s manifest", url: manifestURL.absoluteString)
        }
        let hex = String(digest.dropFirst("sha256:".count))
        guard digest.hasPrefix("sha256:"), hex.count == 64, hex.allSatisfy(\.isHexDigit) else {
            throw ModelStoreError.downloadFailed(url: manifestURL.absoluteString, reason: "the model layer's digest '\(digest)' is not a SHA-256")
        }
        guard let blobURL = URL(string: "\(base)/v2/\(namespace)/\(name)/blobs/\(digest)") else {
            throw ModelStoreError.invalidURL(url: base, reason: "not a registry URL")
        }
        let fileName = Self.safeFileName(tag == "latest" ? name : "\(name)-\(tag)") + ".gguf"
        let result = try await fetch(blobURL, headers: [:], fileName: fileName, expected: hex.lowercased(), size: model["size"] as? Int64,
                                     progress: progress)
        // Its PARAMETER lines (a small JSON blob) become the file's sampling defaults, its SYSTEM the system message
        // of requests that bring none.
        var defaults = ModelDefaults()
        if let params = layers.first(where: { $0["mediaType"] as? String == "application/vnd.ollama.image.params" }),
           let paramsDigest = params["digest"] as? String, (params["size"] as? Int ?? 0) < 1 << 20,
           let paramsURL = URL(string: "\(base)/v2/\(namespace)/\(name)/blobs/\(paramsDigest)"),
           let object = try await RegistryHTTP.json(paramsURL, headers: [:], what: "\(spec)'s parameters") as? [String: Any] {
            defaults = ModelDefaults(ollamaParams: object)
        }
        if let system = layers.first(where: { $0["mediaType"] as? String == "application/vnd.ollama.image.system" }),
           let systemDigest = system["digest"] as? String, (system["size"] as? Int ?? 0) < 1 << 20,
           let systemURL = URL(string: "\(base)/v2/\(namespace)/\(name)/blobs/\(systemDigest)") {
            let text = String(decoding: try await RegistryHTTP.data(systemURL, headers: [:], what: "\(spec)'s system message"), as: UTF8.self)
            if !text.isEmpty { defaults.system = text }
        }
        if !defaults.isEmpty { try defaults.write(for: result.url) }
        return result
    }

    /// A GGUF file of a Hugging Face repository: the one the selector names (a quantization such as `Q4_K_M`, or a
    /// file name), or the only one, or the Q4_K_M one; its SHA-256 from the repository's LFS metadata. `HF_TOKEN`
    /// is sent for gated and private repositories.
    func pullHuggingFace(repo: String, selector: String?, progress: @escaping @Sendable (PullProgress) -> Void) async throws -> PullResult {
        let endpoint = registries.huggingFace.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        let headers = registries.huggingFaceToken.map { ["Authorization": "Bearer \($0)"] } ?? [:]
        guard let listURL = URL(string: "\(endpoint)/api/models/\(repo)/tree/main?recursive=true") else {
            throw ModelStoreError.invalidURL(url: endpoint, reason: "not a Hugging Face endpoint")
        }
        let list = try await RegistryHTTP.json(listURL, headers: headers, what: "hf:\(repo)") as? [[String: Any]] ?? []
        let files = list.compactMap { f -> (path: String, sha: String?, size: Int64?)? in
            guard f["type"] as? String == "file", let path = f["path"] as? String, path.lowercased().hasSuffix(".gguf") else { return nil }
            let lfs = f["lfs"] as? [String: Any]
            return (path, lfs?["oid"] as? String, (lfs?["size"] as? Int64) ?? (f["size"] as? Int64))
        }
        let spec = "hf:\(repo)" + (selector.map { ":" + $0 } ?? "")
        // A repository of safetensors (no GGUF, or `:safetensors` asked for): the model folder.
        let paths = Set(list.compactMap { $0["type"] as? String == "file" ? $0["path"] as? String : nil })
        if (files.isEmpty && selector == nil || selector?.lowercased() == "safetensors"), paths.contains("config.json"),
           paths.contains(where: { $0.hasSuffix(".safetensors") }) {
            return try await pullHuggingFaceFolder(repo: repo, list: list, endpoint: endpoint, headers: headers, progress: progress)
        }
        guard !files.isEmpty else { throw ModelStoreError.notInRegistry(what: "a .gguf file (or config.json and safetensors) in hf:\(repo)", url: listURL.absoluteString) }
        let chosen: [(path: String, sha: String?, size: Int64?)]
        if let selector, selector.lowercased().hasSuffix(".gguf") {
            chosen = files.filter { $0.path == selector || ($0.path as NSString).lastPathComponent == selector }
        } else if let selector {
            chosen = files.filter { ($0.path as NSString).lastPathComponent.lowercased().contains(selector.lowercased()) }
        } else if files.count == 1 {
            chosen = files
        } else {
            chosen = files.filter { ($0.path as NSString).lastPathComponent.lowercased().contains("q4_k_m") }
        }
        guard chosen.count == 1, let file = chosen.first else {
            throw ModelStoreError.ambiguousFile(spec: spec, candidates: files.map(\.path).sorted(), matched: chosen.count)
        }
        let encoded = file.path.split(separator: "/").map { $0.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? String($0) }
            .joined(separator: "/")
        guard let url = URL(string: "\(endpoint)/\(repo)/resolve/main/\(encoded)") else {
            throw ModelStoreError.invalidURL(url: endpoint, reason: "cannot make a download URL for \(file.path)")
        }
        let expected = file.sha.flatMap { $0.count == 64 && $0.allSatisfy(\.isHexDigit) ? $0.lowercased() : nil }
        let name = Self.safeFileName(String((file.path as NSString).lastPathComponent.dropLast(".gguf".count))) + ".gguf"
        return try await fetch(url, headers: headers, fileName: name, expected: expected, size: file.size, progress: progress)
    }

    /// The files of a Hugging Face model folder the engine reads: the config, the safetensors weights (and their
    /// index), the tokenizer and chat template, the generation defaults and sentence-transformers' pooling files —
    /// not PyTorch `.bin`, ONNX or other copies of the weights.
    static func isFolderFile(_ path: String) -> Bool {
        let parts = path.split(separator: "/").map(String.init)
        guard let name = parts.last, !parts.contains(where: { $0.hasPrefix(".") || $0 == ".." }) else { return false }
        if parts.count == 2 { return parts[0].hasSuffix("_Pooling") && name == "config.json" }
        guard parts.count == 1 else { return false }
        if name.hasSuffix(".safetensors") { return name.hasPrefix("model") }
        return ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                "chat_template.jinja", "model.safetensors.index.json", "modules.json", "sentence_bert_config.json",
                "config_sentence_transformers.json"].contains(name)
    }

    /// A Hugging Face model folder (`isFolderFile`'s files) into `<models>/<REPO>/`: each file checked against the
    /// SHA-256 the Hub lists for it (large files are stored with LFS, which gives one; small ones in git, which does
    /// not, and are taken as sent). Files arrive in `.<REPO>.partial/`, where a pull cut short leaves those already
    /// complete for the next try; the folder takes its name when every file is in.
    func pullHuggingFaceFolder(repo: String, list: [[String: Any]], endpoint: String, headers: [String: String],
                               progress: @escaping @Sendable (PullProgress) -> Void) async throws -> PullResult {
        let files = list.compactMap { f -> (path: String, sha: String?, size: Int64?)? in
            guard f["type"] as? String == "file", let path = f["path"] as? String, Self.isFolderFile(path) else { return nil }
            let lfs = f["lfs"] as? [String: Any]
            let sha = (lfs?["oid"] as? String).flatMap { $0.count == 64 && $0.allSatisfy(\.isHexDigit) ? $0.lowercased() : nil }
            return (path, sha, (lfs?["size"] as? Int64) ?? (f["size"] as? Int64))
        }.sorted { $0.path < $1.path }
        let name = Self.safeFileName(String(repo.split(separator: "/").last ?? "model"))
        try ModelDirectory.ensureExists(directory)
        let finalURL = directory.appendingPathComponent(name, isDirectory: true)
        let partialURL = Self.partialFileURL(for: name, in: directory)
        Self.cleanupPartialFiles(in: directory, keeping: partialURL)
        let total = files.reduce(Int64(0)) { $0 + ($1.size ?? 0) }
        // the folder's hash, as the catalogue gives one: its (first) weights file's
        let weightsHash = (files.first { $0.path == "model.safetensors" } ?? files.first { $0.path.hasSuffix(".safetensors") })?.sha ?? ""

        // Already here, every file with its listed hash: kept.
        if ModelDirectory.isModelFolder(finalURL) {
            let intact = try await runBlocking { cancellation -> Bool in
                for f in files {
                    let url = finalURL.appendingPathComponent(f.path)
                    guard ModelResolver.isRegularFile(url) else { return false }
                    if let sha = f.sha, try FileOps.sha256(of: url, cancellation: cancellation, progress: { _ in }) != sha { return false }
                }
                return true
            }
            if intact {
                progress(PullProgress(phase: .alreadyPresent, fileName: name, bytesDone: total, bytesTotal: total))
                return PullResult(url: finalURL, sha256: weightsHash, size: ModelDirectory.folderSize(finalURL), alreadyPresent: true)
            }
        }
        if let free = Self.freeBytes(at: directory), free < total + (64 << 20) {
            throw ModelStoreError.notEnoughSpace(path: directory.path, needed: total, available: free)
        }
        var done: Int64 = 0
        for (i, f) in files.enumerated() {
            let target = partialURL.appendingPathComponent(f.path)
            do {
                try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            } catch {
                throw ModelStoreError.fileSystem(path: target.path, reason: "cannot create the download folder: \(error.localizedDescription)")
            }
            let detail = "file \(i + 1) of \(files.count): \(f.path)"
            // complete from an earlier try
            if let sha = f.sha, ModelResolver.isRegularFile(target),
               try await runBlocking({ cancellation in try FileOps.sha256(of: target, cancellation: cancellation, progress: { _ in }) }) == sha {
                done += f.size ?? 0
                continue
            }
            let encoded = f.path.split(separator: "/").map { $0.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? String($0) }
                .joined(separator: "/")
            guard let url = URL(string: "\(endpoint)/\(repo)/resolve/main/\(encoded)") else {
                throw ModelStoreError.invalidURL(url: endpoint, reason: "cannot make a download URL for \(f.path)")
            }
            let base = done
            let outcome: HTTPDownloader.Outcome
            do {
                outcome = try await HTTPDownloader.download(url, to: target, headers: headers, resume: f.sha != nil) { bytes, _ in
                    progress(PullProgress(phase: .downloading, fileName: name, bytesDone: base + bytes, bytesTotal: total, detail: detail))
                }
            } catch ModelStoreError.downloadFailed(let failedURL, let reason) where f.sha != nil && (ModelDirectory.fileSize(target) ?? 0) > 0 {
                throw ModelStoreError.downloadInterrupted(url: failedURL, reason: reason, kept: ModelDirectory.fileSize(target) ?? 0, path: partialURL.path)
            }
            if let sha = f.sha, outcome.sha256 != sha {
                FileOps.removeIfPresent(target)
                throw ModelStoreError.sha256Mismatch(fileName: "\(name)/\(f.path)", expected: sha, actual: outcome.sha256)
            }
            done += outcome.bytes
            try Task.checkCancellation()
        }
        guard ModelDirectory.isModelFolder(partialURL) else {
            throw ModelStoreError.notInRegistry(what: "config.json and model.safetensors (or its index) in hf:\(repo)", url: "\(endpoint)/\(repo)")
        }
        FileOps.removeIfPresent(finalURL)
        try FileOps.atomicRename(partialURL, to: finalURL)
        return PullResult(url: finalURL, sha256: weightsHash, size: ModelDirectory.folderSize(finalURL), alreadyPresent: false)
    }

    /// Letters, digits and `._-+` (others become `_`), no leading dot.
    static func safeFileName(_ name: String) -> String {
        var out = String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber || "._-+".contains($0)) ? $0 : "_" })
        while out.hasPrefix(".") { out.removeFirst() }
        return out.isEmpty ? "model" : out
    }
}
