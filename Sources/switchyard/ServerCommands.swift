import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Where a running `switchyard serve` listens.
struct ServerAddress: ParsableArguments {
    @Option(help: "URL of the running server (env SWITCHYARD_URL).")
    var server: String = ProcessInfo.processInfo.environment["SWITCHYARD_URL"] ?? "http://127.0.0.1:8080"

    func call(_ method: String, _ path: String, body: [String: Any]? = nil) async throws -> [String: Any] {
        guard let url = URL(string: server.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + path) else {
            throw ValidationError("--server '\(server)' is not a URL")
        }
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.timeoutInterval = 600
        if let body {
            request.httpBody = try JSONSerialization.data(withJSONObject: body)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, response): (Data, URLResponse)
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            throw CLIError("no server answers at \(server) (\(error.localizedDescription)); start one with `switchyard serve`")
        }
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        if let status = (response as? HTTPURLResponse)?.statusCode, status >= 400 {
            let message = (object["error"] as? [String: Any])?["message"] as? String ?? String(decoding: data, as: UTF8.self)
            throw CLIError("server answered \(status): \(message)")
        }
        return object
    }
}

struct Load: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Load a model into a running server.")
    @OptionGroup var address: ServerAddress
    @Argument(help: "Model name as the server lists it.") var model: String
    @Option(name: .customLong("keep-alive"), help: "Keep it loaded this long after its last request (seconds or 5m, 1h; -1: for ever).")
    var keepAlive: String?

    func run() async throws {
        var body: [String: Any] = ["model": model]
        if let keepAlive { body["keep_alive"] = Double(keepAlive) ?? keepAlive as Any }
        let r = try await address.call("POST", "/api/v1/models/load", body: body)
        let mb = (r["memory"] as? Int).map { String(format: "%.1f MB", Double($0) / 1e6) } ?? "?"
        print("loaded \(model) in \(String(format: "%.2f", r["load_time"] as? Double ?? 0)) s, \(mb)")
    }
}

struct Unload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Unload a model from a running server (its memory is returned).")
    @OptionGroup var address: ServerAddress
    @Argument(help: "Model name.") var model: String

    func run() async throws {
        let r = try await address.call("POST", "/api/v1/models/unload", body: ["model": model])
        print((r["unloaded"] as? Bool ?? false) ? "unloaded \(model)" : "\(model) was not loaded")
    }
}

struct PS: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps", abstract: "List the models a running server has loaded, and the state of its routed deployments.",
        discussion: "A deployment is healthy, cooling down (its circuit is open after failures), probing (one request is testing it) or down (its provider failed the last background check).")
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
