import ArgumentParser
import Core
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Where a running `switchyard serve` listens, and the key to show it: `--server` / `SWITCHYARD_URL` (a base URL in
/// any of its usual forms: `10.0.0.5:8080`, `http://10.0.0.5:8080/`, `…/v1`, `…/api`), `--api-key` /
/// `SWITCHYARD_API_KEY`, and for operations that change the server, the admin key (`SWITCHYARD_ADMIN_KEY`, or
/// `--api-key`).
struct ServerAddress: ParsableArguments {
    static let defaultURL = "http://127.0.0.1:8080"

    @Option(help: ArgumentHelp("The running server, e.g. http://10.0.0.5:8080 (a trailing /v1 or /api is fine; env SWITCHYARD_URL; default \(ServerAddress.defaultURL)).",
                               valueName: "url"))
    var server: String?

    @Option(name: .customLong("api-key"), help: ArgumentHelp("The key to send (env SWITCHYARD_API_KEY; loading, unloading, pulling, removing and copying models need the admin key, env SWITCHYARD_ADMIN_KEY).",
                                                             valueName: "key"))
    var apiKey: String?

    static var environment: [String: String] { ProcessInfo.processInfo.environment }

    /// Whether a server was named (option or environment), rather than the default taken.
    var named: Bool { server != nil || !(Self.environment["SWITCHYARD_URL"] ?? "").isEmpty }

    /// The server's base URL, without a trailing `/`, `/v1` or `/api`.
    func baseURL() throws -> String {
        let (given, source) = server.map { ($0, "--server") }
            ?? Self.environment["SWITCHYARD_URL"].flatMap { $0.isEmpty ? nil : ($0, "SWITCHYARD_URL") }
            ?? (Self.defaultURL, "the default")
        return try Self.normalize(given, source: source)
    }

    static func normalize(_ given: String, source: String) throws -> String {
        var text = given.trimmingCharacters(in: .whitespaces)
        if !text.contains("://") { text = "http://" + text }
        while text.hasSuffix("/") { text.removeLast() }
        for suffix in ["/api/v1", "/v1", "/api"] where text.hasSuffix(suffix) {
            text.removeLast(suffix.count)
            break
        }
        guard let url = URLComponents(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme.lowercased()),
              let host = url.host, !host.isEmpty, url.path.isEmpty else {
            throw ValidationError("\(source) '\(given)' is not a server URL (expected one such as http://127.0.0.1:8080)")
        }
        return text
    }

    /// The key to send and where it came from: `--api-key`, else for admin operations `SWITCHYARD_ADMIN_KEY` then
    /// `SWITCHYARD_API_KEY`, for the others the other way round.
    func key(admin: Bool) -> (key: String, source: String)? {
        if let apiKey, !apiKey.isEmpty { return (apiKey, "--api-key") }
        let order = admin ? ["SWITCHYARD_ADMIN_KEY", "SWITCHYARD_API_KEY"] : ["SWITCHYARD_API_KEY", "SWITCHYARD_ADMIN_KEY"]
        for name in order { if let v = Self.environment[name], !v.isEmpty { return (v, name) } }
        return nil
    }

    /// Calls the server; its error answers become errors that name the server, the key sent and what to do.
    func call(_ method: String, _ path: String, body: [String: Any]? = nil, admin: Bool = false) async throws -> [String: Any] {
        let base = try baseURL()
        guard let url = URL(string: base + path) else { throw ValidationError("'\(base + path)' is not a URL") }
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.timeoutInterval = 600
        let key = key(admin: admin)
        if let key { request.setValue("Bearer \(key.key)", forHTTPHeaderField: "Authorization") }
        if let body {
            request.httpBody = try JSONSerialization.data(withJSONObject: body)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, response): (Data, URLResponse)
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            throw CLIError("no server answers at \(base) (\(error.localizedDescription)); start one with `switchyard serve`, or name another with --server or SWITCHYARD_URL")
        }
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        guard let status = (response as? HTTPURLResponse)?.statusCode, status >= 400 else { return object }
        let error = object["error"] as? [String: Any]
        let message = error?["message"] as? String ?? object["error"] as? String ?? String(decoding: data.prefix(300), as: UTF8.self)
        throw Self.failure(status: status, code: error?["code"] as? String, message: message, base: base, key: key?.source, admin: admin)
    }

    /// What to tell a person about an error answer.
    static func failure(status: Int, code: String?, message: String, base: String, key: String?, admin: Bool) -> CLIError {
        switch status {
        case 401 where key == nil:
            let which = admin ? "the admin key (SWITCHYARD_ADMIN_KEY, or --api-key)" : "an API key (--api-key or SWITCHYARD_API_KEY)"
            return CLIError("the server at \(base) needs \(which): \(message)")
        case 401:
            return CLIError("the server at \(base) refused the key from \(key ?? "?"): \(message)")
        case 403 where admin || code == "admin_required" || code == "admin_api_disabled":
            return CLIError("this operation needs the server's admin key; the key from \(key ?? "?") is not it (\(message)). Pass the admin key with --api-key or SWITCHYARD_ADMIN_KEY")
        default:
            return CLIError("the server at \(base) answered \(status): \(message)")
        }
    }
}

struct Load: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Load a model into a running server (admin key when keys are on).")
    @OptionGroup var address: ServerAddress
    @Argument(help: "Model name as the server lists it.") var model: String
    @Option(name: .customLong("keep-alive"), help: "Keep it loaded this long after its last request (300, 5m, 1h30m; -1: for ever).")
    var keepAlive: String?

    func validate() throws {
        if let keepAlive, Units.seconds(keepAlive) == nil {
            throw ValidationError("--keep-alive '\(keepAlive)' is not a duration such as 300, 5m or 1h30m (-1: for ever)")
        }
    }

    func run() async throws {
        var body: [String: Any] = ["model": model]
        if let keepAlive, let seconds = Units.seconds(keepAlive) { body["keep_alive"] = seconds }
        let r = try await address.call("POST", "/api/v1/models/load", body: body, admin: true)
        let mb = (r["memory"] as? Int).map { String(format: "%.1f MB", Double($0) / 1e6) } ?? "?"
        print("loaded \(model) in \(String(format: "%.2f", r["load_time"] as? Double ?? 0)) s, \(mb)")
    }
}

struct Unload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Unload a model from a running server, returning its memory (admin key when keys are on).",
                                                    aliases: ["stop"])
    @OptionGroup var address: ServerAddress
    @Argument(help: "Model name.") var model: String

    func run() async throws {
        let r = try await address.call("POST", "/api/v1/models/unload", body: ["model": model], admin: true)
        print((r["unloaded"] as? Bool ?? false) ? "unloaded \(model)" : "\(model) was not loaded")
    }
}

struct PS: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps", abstract: "List the models a running server has loaded, and the state of its routed deployments.",
        discussion: """
        MEMORY is the model's weights plus the key/value cache reserved for its sequences (--parallel × the context \
        of each), so it is larger than the file. A deployment is healthy, cooling down (its circuit is open after \
        failures), probing (one request is testing it) or down (its provider failed the last background check).
        """)
    @OptionGroup var address: ServerAddress

    func run() async throws {
        let r = try await address.call("GET", "/api/v1/health")
        let models = r["loaded_models"] as? [[String: Any]] ?? []
        func pad(_ s: String, _ n: Int) -> String { s.padding(toLength: max(n, s.count + 1), withPad: " ", startingAt: 0) }
        if models.isEmpty { print("no models loaded") } else {
            print(pad("NAME", 24) + "STATUS  QUEUE  MEMORY")
            for m in models {
                print(pad(m["name"] as? String ?? "?", 24) + pad(m["status"] as? String ?? "?", 8)
                      + pad(String(m["queue_length"] as? Int ?? 0), 7) + String(format: "%.1f MB", Double(m["memory"] as? Int ?? 0) / 1e6))
            }
        }
        let deployments = r["deployments"] as? [[String: Any]] ?? []
        guard !deployments.isEmpty else { return }
        print("")
        print(pad("DEPLOYMENT", 32) + pad("STATE", 14) + pad("LATENCY", 10) + pad("IN FLIGHT", 11) + "LAST CHECK")
        for d in deployments {
            let latency = (d["latency_ms"] as? Double).map { "\(Int($0)) ms" } ?? "-"
            var check = "-"
            if let error = d["check_error"] as? String { check = "failed: " + error.prefix(60) }
            else if let ms = d["check_ms"] as? Double { check = "ok in \(Int(ms)) ms" }
            print(pad(d["deployment"] as? String ?? "?", 32) + pad(d["state"] as? String ?? "?", 14) + pad(latency, 10)
                  + pad(String(d["in_flight"] as? Int ?? 0), 11) + check)
        }
    }
}
