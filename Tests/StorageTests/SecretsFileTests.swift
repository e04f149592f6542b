import Foundation
import Storage
import Testing

@Suite struct SecretsFileTests {
    func temporaryFile() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("secrets-\(UUID().uuidString)/secrets.enc")
    }

    @Test func roundTripsEncryptedAndOwnerOnly() throws {
        let url = temporaryFile()
        let file = try SecretsFile(url: url, keyText: SecretsFile.generateKey())
        #expect(try file.read().isEmpty)
        try file.set("ANTHROPIC_API_KEY", "sk-ant-very-secret")
        try file.set("A_KEY", "value-2")
        #expect(try file.read() == ["ANTHROPIC_API_KEY": "sk-ant-very-secret", "A_KEY": "value-2"])
        let raw = try Data(contentsOf: url)
        #expect(raw.range(of: Data("very-secret".utf8)) == nil)   // not in clear
        #expect(raw.range(of: Data("ANTHROPIC".utf8)) == nil)     // names neither
        let mode = try FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try file.remove("A_KEY"))
        #expect(try !file.remove("A_KEY"))
        #expect(try file.read() == ["ANTHROPIC_API_KEY": "sk-ant-very-secret"])
    }

    @Test func aWrongKeyOrAChangedFileIsAClearError() throws {
        let url = temporaryFile()
        try SecretsFile(url: url, keyText: SecretsFile.generateKey()).set("X", "1")
        let other = try SecretsFile(url: url, keyText: SecretsFile.generateKey())
        #expect(throws: SecretsFile.Failure.cannotDecrypt(path: url.path)) { try other.read() }

        let key = SecretsFile.generateKey()
        let file = try SecretsFile(url: url, keyText: key)
        try file.write(["X": "1"])
        var bytes = try Data(contentsOf: url)
        bytes[bytes.count - 1] ^= 1
        try bytes.write(to: url)
        #expect(throws: SecretsFile.Failure.cannotDecrypt(path: url.path)) { try file.read() }
    }

    @Test func keysAndNamesAreChecked() throws {
        #expect(throws: SecretsFile.Failure.noKey) { try SecretsFile(url: temporaryFile(), keyText: nil) }
        #expect(throws: SecretsFile.Failure.badKey) { try SecretsFile(url: temporaryFile(), keyText: "password") }
        let file = try SecretsFile(url: temporaryFile(), keyText: SecretsFile.generateKey())
        #expect(throws: SecretsFile.Failure.invalidName("a-b")) { try file.set("a-b", "x") }
        #expect(!SecretsFile.Failure.badKey.description.contains("password"))
    }
}
