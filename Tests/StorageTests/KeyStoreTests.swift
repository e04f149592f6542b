import Foundation
@testable import Storage
import Testing

/// Every case runs against SQLite and PostgreSQL.
@Suite struct KeyStoreTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test(arguments: Backend.allCases) func createdKeyVerifies(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            let store = KeyStore(db.database)
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
    }

    @Test(arguments: Backend.allCases) func keysAreDistinctAndHighEntropy(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            let store = KeyStore(db.database)
            var seen = Set<String>()
            for i in 0..<20 {
                let created = try await store.create(name: "k\(i)")
                #expect(seen.insert(created.plaintext).inserted)
            }
            // 43 base62 characters of secret: every one of 62 symbols turns up across 20 keys, and no key repeats a block.
            let secrets = seen.map { String($0.suffix(43)) }
            #expect(Set(secrets.joined()).count >= 55)
        }
    }

    @Test(arguments: Backend.allCases) func wrongSecretIsUnknown(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            let store = KeyStore(db.database)
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
    }

    @Test(arguments: Backend.allCases,
          ["", "sk-sy-", "Bearer x", "sk-sy-abc-def", "sk-proj-0123456789", "sk-sy-0123456789ab_" + String(repeating: "a", count: 43),
           "sk-sy-0123456789ab-" + String(repeating: "a", count: 42) + "!"])
    func malformedKeysAreRefused(_ backend: Backend, _ presented: String) async throws {
        try await backend.withDatabase { db in
            let store = KeyStore(db.database)
            _ = try await store.create(name: "bot")
            #expect(try await store.verify(presented) == .refused(.malformed))
        }
    }

    @Test(arguments: Backend.allCases) func revokedKeyIsRefusedWithItsDate(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            let store = KeyStore(db.database)
            let created = try await store.create(name: "bot", now: now)
            let revoked = try await store.revoke("bot", now: now + 60)
            #expect(revoked.revokedAt == now + 60 && revoked.id == created.key.id)
            #expect(try await store.verify(created.plaintext, now: now + 120) == .refused(.revoked(at: now + 60)))
            await #expect(throws: StorageError.alreadyRevoked(name: "bot", id: created.key.id, at: now + 60)) {
                try await store.revoke(created.key.id, now: now + 180)
            }
        }
    }

    @Test(arguments: Backend.allCases) func expiredKeyIsRefusedWithItsDate(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            let store = KeyStore(db.database)
            let created = try await store.create(name: "bot", expiresAt: now + day, now: now)
            #expect(try await store.verify(created.plaintext, now: now + day - 1) == .accepted(created.key))
            #expect(try await store.verify(created.plaintext, now: now + day) == .refused(.expired(at: now + day)))
            #expect(created.key.state(at: now + 2 * day) == .expired(now + day))
        }
    }

    @Test(arguments: Backend.allCases) func revocationIsToldOnlyToTheHolderOfTheSecret(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            let store = KeyStore(db.database)
            let created = try await store.create(name: "bot", now: now)
            try await store.revoke("bot", now: now)
            let wrong = "sk-sy-\(created.key.id)-" + String(repeating: "Z", count: 43)
            #expect(try await store.verify(wrong, now: now) == .refused(.unknown))
        }
    }

    @Test(arguments: Backend.allCases) func listNeverExposesSecretsOrHashes(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            let store = KeyStore(db.database)
            let a = try await store.create(name: "alpha", limits: KeyLimits(requestsPerMinute: 5))
            let b = try await store.create(name: "beta")
            _ = try await store.rotate("beta")
            let stored = try await db.storedHashesAndSalts()
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
            let everything = try await db.dumpKeys()
            #expect(everything.contains(a.key.id))
            #expect(!everything.contains(String(a.plaintext.suffix(43))) && !everything.contains(String(b.plaintext.suffix(43))))
        }
    }

    @Test(arguments: Backend.allCases) func rotateInvalidatesTheOldKeyAndKeepsSettings(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            let store = KeyStore(db.database)
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
    }

    @Test(arguments: Backend.allCases) func rotatingAnExpiredKeyNeedsANewExpiry(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            let store = KeyStore(db.database)
            _ = try await store.create(name: "bot", expiresAt: now + day, now: now)
            await #expect(throws: StorageError.self) { try await store.rotate("bot", now: now + 2 * day) }
            let renewed = try await store.rotate("bot", expiresAt: now + 9 * day, now: now + 2 * day)
            #expect(try await store.verify(renewed.plaintext, now: now + 2 * day) == .accepted(renewed.key))
        }
    }

    @Test(arguments: Backend.allCases) func referencesByNameIdAndPrefix(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            let store = KeyStore(db.database)
            let created = try await store.create(name: "web")
            #expect(try await store.find("web") == created.key)
            #expect(try await store.find(created.key.id) == created.key)
            #expect(try await store.find(created.key.prefix) == created.key)
            await #expect(throws: StorageError.unknownKey("nope")) { try await store.find("nope") }
            await #expect(throws: StorageError.unknownKey("nope")) { try await store.revoke("nope") }
            await #expect(throws: StorageError.unknownKey("sk-sy-zzzzzzzzzzzz")) { try await store.rotate("sk-sy-zzzzzzzzzzzz") }
        }
    }

    @Test(arguments: Backend.allCases) func namesAreUniqueAmongActiveKeys(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            let store = KeyStore(db.database)
            _ = try await store.create(name: "bot")
            await #expect(throws: StorageError.duplicateName("bot")) { try await store.create(name: "bot") }
            try await store.revoke("bot")
            let again = try await store.create(name: "bot")
            #expect(try await store.find("bot").id == again.key.id)
        }
    }

    @Test(arguments: Backend.allCases) func invalidSettingsAreRefused(_ backend: Backend) async throws {
        try await backend.withDatabase { db async throws in
            let store = KeyStore(db.database)
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
    }

    @Test(arguments: Backend.allCases) func bothBudgetsAtOnceAreRefusedByTheSchemaToo(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            let store = KeyStore(db.database)
            let created = try await store.create(name: "bot", limits: KeyLimits(budget: .tokens(10)))
            await #expect(throws: StorageError.self) {
                try await db.execute("UPDATE api_keys SET budget_usd = 5 WHERE id = '\(created.key.id)'")
            }
        }
    }

    @Test(arguments: Backend.allCases) func createdKeyDescriptionHidesTheSecret(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            let store = KeyStore(db.database)
            let created = try await store.create(name: "bot")
            #expect(!"\(created)".contains(created.plaintext.suffix(43)))
            #expect("\(created)".contains(created.key.prefix))
        }
    }

    // MARK: Several processes on one database (replicas)

    @Test(arguments: Backend.allCases) func replicasSeeEachOthersKeys(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            try await db.withReplica { other in
                let here = KeyStore(db.database), there = KeyStore(other)
                let created = try await here.create(name: "shared", now: now)
                #expect(try await there.verify(created.plaintext, now: now) == .accepted(created.key))
                try await there.revoke("shared", now: now + 1)
                #expect(try await here.verify(created.plaintext, now: now + 2) == .refused(.revoked(at: now + 1)))
                #expect(try await here.list() == there.list())
            }
        }
    }

    @Test(arguments: Backend.allCases) func racingCreatesOfOneNameLeaveOneKey(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            try await db.withReplica { other async throws in
                let stores = [KeyStore(db.database), KeyStore(other)]
                let outcomes = await withTaskGroup(of: Bool?.self) { group in
                    for i in 0..<8 {
                        group.addTask {
                            do {
                                _ = try await stores[i % 2].create(name: "race")
                                return true
                            } catch StorageError.duplicateName("race") {
                                return false
                            } catch {
                                return nil
                            }
                        }
                    }
                    return await group.reduce(into: [Bool?]()) { $0.append($1) }
                }
                #expect(outcomes.filter { $0 == true }.count == 1)
                #expect(outcomes.filter { $0 == false }.count == 7)
                #expect(try await stores[0].list().count == 1)
            }
        }
    }

    @Test(arguments: Backend.allCases) func racingRotationsLeaveOneActiveKey(_ backend: Backend) async throws {
        try await backend.withDatabase { db in
            try await db.withReplica { other in
                let stores = [KeyStore(db.database), KeyStore(other)]
                let first = try await stores[0].create(name: "bot", now: now)
                let outcomes = await withTaskGroup(of: String?.self) { group in
                    for i in 0..<4 {
                        group.addTask {
                            do {
                                return try await stores[i % 2].rotate(first.key.id, now: now + 1).plaintext
                            } catch let error as StorageError {
                                if case .alreadyRevoked = error { return "" }
                                return nil
                            } catch {
                                return nil
                            }
                        }
                    }
                    return await group.reduce(into: [String?]()) { $0.append($1) }
                }
                let winners = outcomes.compactMap { $0 }.filter { !$0.isEmpty }
                #expect(winners.count == 1 && outcomes.filter { $0 == "" }.count == 3)
                let keys = try await stores[1].list()
                #expect(keys.count == 2 && keys.filter { $0.state(at: now + 2) == .active }.count == 1)
                if let winner = winners.first {
                    guard case .accepted(let key) = try await stores[1].verify(winner, now: now + 2) else {
                        Issue.record("the rotated key does not verify")
                        return
                    }
                    #expect(key.name == "bot")
                }
            }
        }
    }
}
