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
    static let configuration = CommandConfiguration(commandName: "ps", abstract: "List the models a running server has loaded.")
    @OptionGroup var address: ServerAddress

    func run() async throws {
        let r = try await address.call("GET", "/api/v1/health")
        let models = r["loaded_models"] as? [[String: Any]] ?? []
        if models.isEmpty { print("no models loaded"); return }
        print("NAME".padding(toLength: 24, withPad: " ", startingAt: 0) + "STATUS  QUEUE  MEMORY")
        for m in models {
            let name = (m["name"] as? String ?? "?").padding(toLength: 24, withPad: " ", startingAt: 0)
            let status = (m["status"] as? String ?? "?").padding(toLength: 8, withPad: " ", startingAt: 0)
            let queue = String(m["queue_length"] as? Int ?? 0).padding(toLength: 7, withPad: " ", startingAt: 0)
            print(name + status + queue + String(format: "%.1f MB", Double(m["memory"] as? Int ?? 0) / 1e6))
        }
    }
}
