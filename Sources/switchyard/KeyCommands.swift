import ArgumentParser
import Foundation
import ModelStore
import Storage

/// Which database: `--database-url URL` (PostgreSQL, shared by replicas), `--database PATH` (SQLite),
/// `SWITCHYARD_DATABASE_URL`, `SWITCHYARD_DATABASE`, or `~/.switchyard/switchyard.sqlite`.
struct DatabaseLocation: ParsableArguments {
    @Option(name: .customLong("database"),
            help: ArgumentHelp("SQLite file holding keys and usage (env SWITCHYARD_DATABASE; default ~/.switchyard/switchyard.sqlite).",
                               valueName: "path"))
    var path: String?

    @Option(name: .customLong("database-url"),
            help: ArgumentHelp("PostgreSQL database instead, shared by several servers: postgres://user:password@host:5432/dbname, ?sslmode=disable|require|verify-full (env SWITCHYARD_DATABASE_URL, which keeps the password out of the process list).",
                               valueName: "url"))
    var url: String?

    func validate() throws {
        if path != nil && url != nil {
            throw ValidationError("--database (a SQLite file) and --database-url (PostgreSQL) are alternatives: give one")
        }
    }

    var target: StorageDatabase.Target { StorageDatabase.target(databaseURL: url, path: path) }

    func open() async throws -> StorageDatabase {
        try await StorageDatabase.open(target)
    }

    /// Opens the database, runs `body`, closes it.
    func with<T>(_ body: (StorageDatabase) async throws -> T) async throws -> T {
        let database = try await open()
        do {
            let value = try await body(database)
            await database.close()
            return value
        } catch {
            await database.close()
            throw error
        }
    }

    /// The options that name this database again, for a hint (`--database PATH`, `--database-url URL` with the
    /// password left out), or "" when it came from the environment or the default.
    var hint: String {
        if let path { return " --database \(path)" }
        if url != nil { return " --database-url URL" }
        return ""
    }
}

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, list, revoke and rotate API keys.",
        discussion: """
        A key is printed once, when it is created or rotated; only a salted hash is stored, so a lost key cannot be \
        recovered: rotate it. KEY arguments take a key's name, its id, or its sk-sy-<id> prefix as `keys list` shows it.
        `serve` checks keys when it binds a non-loopback address, or with --require-auth; a running server sees a \
        change here within 5 s. The same operations are at /admin/keys, behind the admin key (SWITCHYARD_ADMIN_KEY).
        """,
        subcommands: [Create.self, List.self, Revoke.self, Rotate.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a key and print it, once.",
            discussion: """
            The key alone goes to stdout (KEY=$(switchyard keys create --name bot) works); the note about it goes to stderr.
            DATE is 2027-01-31 (00:00 UTC), 2027-01-31T12:00:00Z, or a duration from now such as 90d, 12h, 2w.
            """)
        @OptionGroup var database: DatabaseLocation
        @Option(help: "A name for the key's holder (letters, digits, '-', '_', '.'), e.g. email-worker.") var name: String
        @Option(help: "Requests per minute (default: no limit).") var rpm: Int?
        @Option(help: "Prompt plus completion tokens per minute (default: no limit).") var tpm: Int?
        @Option(name: .customLong("budget-tokens"), help: "Stop the key after this many tokens in all.") var budgetTokens: Int?
        @Option(name: .customLong("budget-usd"), help: "Stop the key after this estimated cost in US dollars.") var budgetUSD: Double?
        @Option(help: ArgumentHelp("Comma-separated model names the key may use (default: every model).", valueName: "a,b"))
        var models: String?
        @Flag(name: .customLong("local-only"), help: "Only local models, never a remote provider.") var localOnly = false
        @Option(name: .customLong("allow-ip"), help: ArgumentHelp("Comma-separated client addresses or CIDR ranges the key may be used from (default: any).", valueName: "list"))
        var allowIP: String?
        @Option(help: ArgumentHelp("When the key stops working (default: never).", valueName: "date")) var expires: String?

        func validate() throws {
            if budgetTokens != nil && budgetUSD != nil {
                throw ValidationError("--budget-tokens and --budget-usd are alternatives: give one budget, in tokens or in dollars")
            }
            if let expires { _ = try parseExpiry(expires) }
        }

        func run() async throws {
            let modelList = (models ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            if models != nil && modelList.isEmpty { throw ValidationError("--models needs at least one model name") }
            warnUnknown(modelList)
            let budget: Budget? = budgetTokens.map(Budget.tokens) ?? budgetUSD.map(Budget.usd)
            let limits = KeyLimits(requestsPerMinute: rpm, tokensPerMinute: tpm, budget: budget,
                                   allowedModels: modelList, localOnly: localOnly,
                                   allowedIPs: (allowIP ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
            let expiry = try expires.map(parseExpiry)
            try await database.with { db in
                let created = try await KeyStore(db).create(name: name, limits: limits, expiresAt: expiry)
                announce(created, verb: "created", in: db)
            }
        }
    }

    /// Names no model here answers to are kept (the key may be for another server's models) but said, with the
    /// nearest known name: a typo would otherwise lock the key out of the model meant.
    static func warnUnknown(_ names: [String]) {
        var known = Set(ModelCatalogue.builtIn.names)
        known.formUnion(ModelDirectory.listModels(in: ModelDirectory.default).map { ($0.fileName as NSString).deletingPathExtension })
        if let location = try? ConfigLocation.parse([]), let registry = try? location.registry() {
            known.formUnion(registry.models.keys)
            known.formUnion(registry.routes.keys)
            known.formUnion(registry.aliases.keys)
        }
        for name in names where !known.contains(name) && !name.hasPrefix("role:") && name != "auto" {
            let near = Switchyard.nearest(name, in: Array(known)).map { "; did you mean '\($0)'?" } ?? ""
            note("warning: no model here is named '\(name)'\(near) (the key allows it anyway, for models served elsewhere)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys: name, prefix, limits, dates. Never a secret.")
        @OptionGroup var database: DatabaseLocation
        @Flag(name: .customLong("active"), help: "Leave out revoked and expired keys.") var activeOnly = false

        func run() async throws {
            let now = Date()
            let (keys, location) = try await database.with { db in
                (try await KeyStore(db).list().filter { !activeOnly || $0.state(at: now) == .active }, db.location)
            }
            if keys.isEmpty {
                print("no keys in \(location); create one with `switchyard keys create --name NAME\(database.hint)`")
                return
            }
            let rows = keys.map { key in
                [key.name, key.prefix, describe(key.limits), StorageDates.display(key.createdAt),
                 key.expiresAt.map { StorageDates.display($0) + ($0 <= now ? " (expired)" : "") } ?? "never",
                 key.revokedAt.map(StorageDates.display) ?? "-"]
            }
            print(table(header: ["NAME", "PREFIX", "LIMITS", "CREATED", "EXPIRES", "REVOKED"], rows: rows))
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key: it is refused from now on.")
        @OptionGroup var database: DatabaseLocation
        @Argument(help: ArgumentHelp("The key's name, id or sk-sy-<id> prefix.", valueName: "key")) var key: String

        func run() async throws {
            let revoked = try await database.with { try await KeyStore($0).revoke(key) }
            print("revoked '\(revoked.name)' (\(revoked.prefix))")
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Give a key a new secret: same name and limits, the old secret revoked at once. Prints the new key, once.",
            discussion: "DATE is as for `keys create`; without --expires the new key keeps the old one's expiry.")
        @OptionGroup var database: DatabaseLocation
        @Argument(help: ArgumentHelp("The key's name, id or sk-sy-<id> prefix.", valueName: "key")) var key: String
        @Option(help: ArgumentHelp("A new expiry for the new key.", valueName: "date")) var expires: String?

        func validate() throws {
            if let expires { _ = try parseExpiry(expires) }
        }

        func run() async throws {
            let expiry = try expires.map(parseExpiry)
            try await database.with { db in
                let rotated = try await KeyStore(db).rotate(key, expiresAt: expiry)
                announce(rotated, verb: "rotated", in: db)
            }
        }
    }
}

/// `--expires DATE`, as a `ValidationError` that names the option when it is not a date.
private func parseExpiry(_ text: String) throws -> Date {
    do { return try StorageDates.parse(text, direction: .future) } catch let error as StorageError {
        throw ValidationError("--expires: \(error)")
    }
}

/// Prints a new key to stdout and what to do with it to stderr.
private func announce(_ created: CreatedKey, verb: String, in database: StorageDatabase) {
    let key = created.key
    note("\(verb) key '\(key.name)' (\(key.prefix)) in \(database.location)")
    note("  limits: \(describe(key.limits)); expires: \(key.expiresAt.map(StorageDates.display) ?? "never")")
    note("")
    print(created.plaintext)
    note("")
    note("Copy it now: this is the only time it is shown. Only a salted hash is stored, so it cannot be shown again;")
    note("if it is lost, `switchyard keys rotate \(key.name)` makes a new one.")
}

/// `rpm 60, tpm 10000, budget 1000000 tokens, models a b, local only`, or `none`.
func describe(_ limits: KeyLimits) -> String {
    var parts: [String] = []
    if let rpm = limits.requestsPerMinute { parts.append("rpm \(rpm)") }
    if let tpm = limits.tokensPerMinute { parts.append("tpm \(tpm)") }
    switch limits.budget {
    case .tokens(let n): parts.append("budget \(n) tokens")
    case .usd(let x): parts.append(String(format: "budget $%.2f", x))
    case nil: break
    }
    if !limits.allowedModels.isEmpty { parts.append("models " + limits.allowedModels.joined(separator: " ")) }
    if limits.localOnly { parts.append("local only") }
    if !limits.allowedIPs.isEmpty { parts.append("from " + limits.allowedIPs.joined(separator: " ")) }
    return parts.isEmpty ? "none" : parts.joined(separator: ", ")
}

/// Left-aligned columns two spaces apart.
func table(header: [String], rows: [[String]]) -> String {
    let all = [header] + rows
    let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
    return all.map { row in
        row.indices.map { i in i == row.count - 1 ? row[i] : row[i].padding(toLength: widths[i], withPad: " ", startingAt: 0) }
            .joined(separator: "  ")
    }.joined(separator: "\n")
}
