import Crypto
import Foundation

/// Provider API keys kept encrypted on disk: a JSON object of name → value sealed with AES-256-GCM, the key taken
/// from `SWITCHYARD_SECRET_KEY` (32 random bytes in base64, e.g. from `switchyard secrets generate-key`).
///
/// A provider's `api_key_env: NAME` is looked up in the environment first, then here under the same name. The file
/// (`~/.switchyard/secrets.enc`, or `SWITCHYARD_SECRETS_FILE`) is readable by its owner only; the values are never
/// printed, logged or sent anywhere but to the provider they are for. A wrong key or a file changed by anyone
/// without the key is an error that says so, never garbage.
public struct SecretsFile: Sendable {
    public static let keyVariable = "SWITCHYARD_SECRET_KEY"
    public static let fileVariable = "SWITCHYARD_SECRETS_FILE"
    static let magic = Data("SYSECRETS1".utf8)

    public let url: URL
    /// The key's bytes (SymmetricKey is not Sendable).
    private let keyBytes: Data
    private var key: SymmetricKey { SymmetricKey(data: keyBytes) }

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case noKey
        case badKey
        case cannotDecrypt(path: String)
        case unreadable(path: String, reason: String)
        case invalidName(String)

        public var description: String {
            switch self {
            case .noKey: return "\(SecretsFile.keyVariable) is not set: it holds the key of the secrets file (make one with `switchyard secrets generate-key`)"
            case .badKey: return "\(SecretsFile.keyVariable) must be 32 bytes in base64 (make one with `switchyard secrets generate-key`)"
            case .cannotDecrypt(let path): return "\(path) cannot be decrypted: \(SecretsFile.keyVariable) is not the key it was written with, or the file was changed"
            case .unreadable(let path, let reason): return "\(path): \(reason)"
            case .invalidName(let name): return "'\(name)' is not a secret name: use letters, digits and '_' (like an environment variable)"
            }
        }
    }

    /// The file's location for this environment: `SWITCHYARD_SECRETS_FILE`, else `secrets.enc` beside the database.
    public static func location(environment: [String: String]) -> URL {
        if let path = environment[fileVariable], !path.isEmpty {
            return URL(fileURLWithPath: (path as NSString).expandingTildeInPath)
        }
        return StorageDatabase.location(environment: environment).deletingLastPathComponent().appendingPathComponent("secrets.enc")
    }

    /// The file at `url`, sealed with `keyText` (base64 of 32 bytes).
    public init(url: URL, keyText: String?) throws {
        guard let keyText, !keyText.isEmpty else { throw Failure.noKey }
        guard let bytes = Data(base64Encoded: keyText.trimmingCharacters(in: .whitespacesAndNewlines)), bytes.count == 32 else {
            throw Failure.badKey
        }
        self.url = url
        self.keyBytes = bytes
    }

    /// The file for this process's environment.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        try self.init(url: Self.location(environment: environment), keyText: environment[Self.keyVariable])
    }

    /// A new random key, base64.
    public static func generateKey() -> String {
        SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() }
    }

    public var exists: Bool { FileManager.default.fileExists(atPath: url.path) }

    /// Every secret; empty when the file does not exist yet.
    public func read() throws -> [String: String] {
        guard exists else { return [:] }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw Failure.unreadable(path: url.path, reason: error.localizedDescription)
        }
        guard data.starts(with: Self.magic) else { throw Failure.unreadable(path: url.path, reason: "not a secrets file") }
        do {
            let box = try AES.GCM.SealedBox(combined: data.dropFirst(Self.magic.count))
            let plain = try AES.GCM.open(box, using: key, authenticating: Self.magic)
            return try JSONDecoder().decode([String: String].self, from: plain)
        } catch {
            throw Failure.cannotDecrypt(path: url.path)
        }
    }

    /// Replaces every secret (written to a temporary file readable by its owner only, then renamed over the old).
    public func write(_ secrets: [String: String]) throws {
        for name in secrets.keys where !Self.isValidName(name) { throw Failure.invalidName(name) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        do {
            let sealed = try AES.GCM.seal(try encoder.encode(secrets), using: key, authenticating: Self.magic)
            guard let combined = sealed.combined else { throw Failure.unreadable(path: url.path, reason: "could not seal") }
            let directory = url.deletingLastPathComponent()
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString)")
            guard FileManager.default.createFile(atPath: temporary.path, contents: Self.magic + combined,
                                                 attributes: [.posixPermissions: 0o600]) else {
                throw Failure.unreadable(path: temporary.path, reason: "cannot be written")
            }
            if rename(temporary.path, url.path) != 0 {
                try? FileManager.default.removeItem(at: temporary)
                throw Failure.unreadable(path: url.path, reason: String(cString: strerror(errno)))
            }
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure.unreadable(path: url.path, reason: "\(error)")
        }
    }

    /// Sets one secret.
    public func set(_ name: String, _ value: String) throws {
        guard Self.isValidName(name) else { throw Failure.invalidName(name) }
        var all = try read()
        all[name] = value
        try write(all)
    }

    /// Removes one secret; returns whether it was there.
    @discardableResult
    public func remove(_ name: String) throws -> Bool {
        var all = try read()
        guard all.removeValue(forKey: name) != nil else { return false }
        try write(all)
        return true
    }

    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 128 && name.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "_") }
    }
}
