import Foundation
import GRDB
@testable import Storage
import Testing

@Suite struct KeyStoreTests {
    let database: StorageDatabase
    let store: KeyStore
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    init() throws {
        database = try openTemporaryDatabase()
        store = KeyStore(database)
    }

    @Test func createdKeyVerifies() async throws {
        let limits = KeyLimits(requestsPerMinute: 60, tokensPerMinute: 10_000, budget: .usd(12.5),
                               allowedModels: ["smollm2", "gemma3-270m"], localOnly: true)
        let created = try await store.create(name: "email-worker", limits: limits, expiresAt: now + 30 * day, now: now)
        #expect(created.plaintext.hasPrefix("sk-sy-" + created.key.id + "-"))
        #expect(created.plaintext.count == 62)   // "sk-sy-", 12, "-", 43
        #expect(created.key.prefix == "sk-sy-" + created.key.id)
        #expect(created.key.limits == limits && created.key.name == "email-worker")
        let expiry = now + 30 * day
        #expect(created.key.createdAt == now)
        #expect(created.key.expiresAt == expiry)
        #expect(created.key.revokedAt == nil)

        let verdict = try await store.verify(created.plaintext, now: now + day)
        #expect(verdict == .accepted(created.key))
        // Surrounding whitespace (a header value, a pasted line) does not matter.
        #expect(try await store.verify(" \(created.plaintext)\n", now: now) == .accepted(created.key))
    }

    @Test func keysAreDistinctAndHighEntropy() async throws {
        var seen = Set<String>()
        for i in 0..<20 {
            let created = try await store.create(name: "k\(i)")
            #expect(seen.insert(created.plaintext).inserted)
        }
        // 43 base62 characters of secret: every one of 62 symbols turns up across 20 keys, and no key repeats a block.
        let secrets = seen.map { String($0.suffix(43)) }
        #expect(Set(secrets.joined()).count >= 55)
    }

    @Test func wrongSecretIsUnknown() async throws {
        let created = try await store.create(name: "bot")
        var bytes = Array(created.plaintext.utf8)
        bytes[bytes.count - 1] = bytes[bytes.count - 1] == UInt8(ascii: "a") ? UInt8(ascii: "b") : UInt8(ascii: "a")
        let tampered = String(decoding: bytes, as: UTF8.self)
        #expect(try await store.verify(tampered) == .refused(.unknown))
        // Another key's secret under this id.
        let other = try await store.create(name: "other")
        let spliced = "sk-sy-\(created.key.id)-\(other.plaintext.suffix(43))"
        #expect(try await store.verify(spliced) == .refused(.unknown))
        // An id nobody has.
        #expect(try await store.verify("sk-sy-000000000000-" + String(repeating: "a", count: 43)) == .refused(.unknown))
    }

    @Test(arguments: ["", "sk-sy-", "Bearer x", "sk-sy-abc-def", "sk-proj-0123456789", "sk-sy-0123456789ab_" + String(repeating: "a", count: 43),
                      "sk-sy-0123456789ab-" + String(repeating: "a", count: 42) + "!"])
    func malformedKeysAreRefused(_ presented: String) async throws {
        _ = try await store.create(name: "bot")
        #expect(try await store.verify(presented) == .refused(.malformed))
    }

    @Test func revokedKeyIsRefusedWithItsDate() async throws {
        let created = try await store.create(name: "bot", now: now)
        let revoked = try await store.revoke("bot", now: now + 60)
        #expect(revoked.revokedAt == now + 60 && revoked.id == created.key.id)
        #expect(try await store.verify(created.plaintext, now: now + 120) == .refused(.revoked(at: now + 60)))
        await #expect(throws: StorageError.alreadyRevoked(name: "bot", id: created.key.id, at: now + 60)) {
            try await store.revoke(created.key.id, now: now + 180)
        }
    }

    @Test func expiredKeyIsRefusedWithItsDate() async throws {
        let created = try await store.create(name: "bot", expiresAt: now + day, now: now)
        #expect(try await store.verify(created.plaintext, now: now + day - 1) == .accepted(created.key))
        #expect(try await store.verify(created.plaintext, now: now + day) == .refused(.expired(at: now + day)))
        #expect(created.key.state(at: now + 2 * day) == .expired(now + day))
    }

    @Test func revocationIsToldOnlyToTheHolderOfTheSecret() async throws {
        let created = try await store.create(name: "bot", now: now)
        try await store.revoke("bot", now: now)
        let wrong = "sk-sy-\(created.key.id)-" + String(repeating: "Z", count: 43)
        #expect(try await store.verify(wrong, now: now) == .refused(.unknown))
    }

    @Test func listNeverExposesSecretsOrHashes() async throws {
        let a = try await store.create(name: "alpha", limits: KeyLimits(requestsPerMinute: 5))
        let b = try await store.create(name: "beta")
        _ = try await store.rotate("beta")
        let stored = try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT key_hash, salt FROM api_keys").map { row -> (Data, Data) in
                (row["key_hash"], row["salt"])
            }
        }
        #expect(stored.count == 3 && stored.allSatisfy { $0.0.count == 32 && $0.1.count == 16 })

        let keys = try await store.list()
        #expect(keys.map(\.name) == ["alpha", "beta", "beta"])
        var rendered = ""
        dump(keys, to: &rendered)
        rendered += String(describing: keys) + String(reflecting: keys)
        rendered += String(describing: a) + String(describing: b)
        for plaintext in [a.plaintext, b.plaintext] {
            #expect(!rendered.contains(plaintext))
            #expect(!rendered.contains(String(plaintext.suffix(43))))
        }
        for (hash, salt) in stored {
            for encoded in [hash.base64EncodedString(), hash.map { String(format: "%02x", $0) }.joined(), "\(Array(hash))",
                            salt.base64EncodedString(), salt.map { String(format: "%02x", $0) }.joined()] {
                #expect(!rendered.contains(encoded))
            }
        }
        // The database holds no plaintext either.
        let everything = try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM api_keys").map { row in row.databaseValues.map(\.description).joined(separator: "|") }
        }.joined(separator: "\n")
        #expect(!everything.contains(String(a.plaintext.suffix(43))) && !everything.contains(String(b.plaintext.suffix(43))))
    }

    @Test func rotateInvalidatesTheOldKeyAndKeepsSettings() async throws {
        let limits = KeyLimits(requestsPerMinute: 10, budget: .tokens(1_000_000), allowedModels: ["smollm2"])
        let old = try await store.create(name: "chat-bot", limits: limits, expiresAt: now + 10 * day, now: now)
        let new = try await store.rotate("chat-bot", now: now + day)
        #expect(new.key.id != old.key.id && new.plaintext != old.plaintext)
        #expect(new.key.name == "chat-bot" && new.key.limits == limits && new.key.expiresAt == now + 10 * day)
        #expect(try await store.verify(old.plaintext, now: now + day) == .refused(.revoked(at: now + day)))
        #expect(try await store.verify(new.plaintext, now: now + day) == .accepted(new.key))
        // The name now means the new key; the old id still finds the old one.
        #expect(try await store.find("chat-bot").id == new.key.id)
        #expect(try await store.find(old.key.id).revokedAt == now + day)
        await #expect(throws: StorageError.self) { try await store.rotate(old.key.prefix, now: now + day) }
        // A new expiry can be given, but not one in the past.
        let third = try await store.rotate("chat-bot", expiresAt: now + 20 * day, now: now + 2 * day)
        #expect(third.key.expiresAt == now + 20 * day)
        await #expect(throws: StorageError.self) { try await store.rotate("chat-bot", expiresAt: now, now: now + 3 * day) }
        #expect(try await store.verify(third.plaintext, now: now + 3 * day) == .accepted(third.key))
    }

    @Test func rotatingAnExpiredKeyNeedsANewExpiry() async throws {
        _ = try await store.create(name: "bot", expiresAt: now + day, now: now)
        await #expect(throws: StorageError.self) { try await store.rotate("bot", now: now + 2 * day) }
        let renewed = try await store.rotate("bot", expiresAt: now + 9 * day, now: now + 2 * day)
        #expect(try await store.verify(renewed.plaintext, now: now + 2 * day) == .accepted(renewed.key))
    }

    @Test func referencesByNameIdAndPrefix() async throws {
        let created = try await store.create(name: "web")
        #expect(try await store.find("web") == created.key)
        #expect(try await store.find(created.key.id) == created.key)
        #expect(try await store.find(created.key.prefix) == created.key)
        await #expect(throws: StorageError.unknownKey("nope")) { try await store.find("nope") }
        await #expect(throws: StorageError.unknownKey("nope")) { try await store.revoke("nope") }
        await #expect(throws: StorageError.unknownKey("sk-sy-zzzzzzzzzzzz")) { try await store.rotate("sk-sy-zzzzzzzzzzzz") }
    }

    @Test func namesAreUniqueAmongActiveKeys() async throws {
        _ = try await store.create(name: "bot")
        await #expect(throws: StorageError.duplicateName("bot")) { try await store.create(name: "bot") }
        try await store.revoke("bot")
        let again = try await store.create(name: "bot")
        #expect(try await store.find("bot").id == again.key.id)
    }

    @Test func invalidSettingsAreRefused() async throws {
        for name in ["", "has space", "sk-sy-looks-like-a-key", String(repeating: "x", count: 65), "naïve"] {
            await #expect(throws: StorageError.self, "name \(name)") { try await store.create(name: name) }
        }
        for limits in [KeyLimits(requestsPerMinute: 0), KeyLimits(tokensPerMinute: -5), KeyLimits(budget: .tokens(0)),
                       KeyLimits(budget: .usd(-1)), KeyLimits(budget: .usd(.nan)), KeyLimits(allowedModels: ["a", " "])] {
            await #expect(throws: StorageError.self) { try await store.create(name: "x", limits: limits) }
        }
        await #expect(throws: StorageError.self) { try await store.create(name: "late", expiresAt: now - 1, now: now) }
        #expect(try await store.list().isEmpty)
    }

    @Test func bothBudgetsAtOnceAreRefusedByTheSchemaToo() async throws {
        let created = try await store.create(name: "bot", limits: KeyLimits(budget: .tokens(10)))
        await #expect(throws: StorageError.self) {
            try await database.write { db in
                try db.execute(sql: "UPDATE api_keys SET budget_usd = 5 WHERE id = ?", arguments: [created.key.id])
            }
        }
    }

    @Test func createdKeyDescriptionHidesTheSecret() async throws {
        let created = try await store.create(name: "bot")
        #expect(!"\(created)".contains(created.plaintext.suffix(43)))
        #expect("\(created)".contains(created.key.prefix))
    }
}
